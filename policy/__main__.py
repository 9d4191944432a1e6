"""The policy pack `pulumi preview --policy-pack policy` runs (PulumiPolicy.yaml; its virtualenv
`.venv-policy`, from policy/requirements.txt: `make policy-venv`)."""

import sys
from pathlib import Path

# Pulumi runs this file from the pack's folder; the rules live in the `policy` package beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.pack import policies  # noqa: E402

PolicyPack(name="webhook-monitoring-platform-rules", policies=policies(),
           enforcement_level=EnforcementLevel.MANDATORY)
