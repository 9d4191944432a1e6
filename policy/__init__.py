"""Platform rules as code: what AWS, Kubernetes, Slack and PagerDuty accept, for the policy pack and the
offline checks alike."""
