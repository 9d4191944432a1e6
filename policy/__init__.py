"""The policy pack: the rules of the platforms the stack runs on (AWS, the EBS CSI driver, Kubernetes,
Helm, Slack, PagerDuty) as code.

`pulumi preview --policy-pack policy` runs them on the resources of a preview (`__main__.py`,
`pack.py`); `make policy STACK=<name>` runs the same functions offline over the render and the
charts' output (tools/policy.py). Pure Python (PyYAML aside): the settings' checks read the limits
here too, so a rule lives in one place. docs/platform-rules.md lists every rule and its source.
"""
