"""What only tests and benches use: the chart check and intent, Kubernetes validation, the security
scan, the live-test helpers and the benches. Imports tools/ and the layers, never tests/; tools/ never
imports it."""
