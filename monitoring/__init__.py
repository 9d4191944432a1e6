"""Pure content of the monitoring stack: plain data built from settings, no Pulumi."""

from config.schema import PROJECT

# What every object the program defines itself is part of.
PART_OF = {"app.kubernetes.io/part-of": PROJECT}
