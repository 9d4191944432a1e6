"""Monitoring content: plain data built by functions of settings. No Pulumi imports here."""
