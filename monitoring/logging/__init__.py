"""Logging content: the log pipeline, agent configs, Loki values and LogQL. No Pulumi imports."""
