"""Pulumi ComponentResources, one per file. Components take args, never read config."""
