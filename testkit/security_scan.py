"""`make security-scan`: checkov on what the chart check templates, against the accepted findings.

Every stack's releases (tools/templating.py) and the program's own objects are written to
build/chart-output/<stack>/ and scanned with checkov's Kubernetes checks. A failing check that is
not in monitoring/security.py CHECKOV_ACCEPTED, with its reason, fails the scan. checkov runs from
its own virtualenv (.venv-checkov): its pins clash with the program's.

    python -m testkit.security_scan <checkov executable>
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from monitoring.security import CHECKOV_ACCEPTED
from policy.kubernetes import CLUSTER_SCOPED
from tools.stacks import stacks
from tools.templating import template_stack

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "chart-output"


# Kinds without a namespace: every other object a chart leaves without one, Helm installs in the release's.


def installed(obj: dict, namespace: str) -> dict:
    """The object as Helm installs it: in the release's namespace when the chart names none."""
    if obj["kind"] in CLUSTER_SCOPED or (obj.get("metadata") or {}).get("namespace"):
        return obj
    return {**obj, "metadata": {**obj.get("metadata", {}), "namespace": namespace}}


def write_output(stack: str) -> Path:
    """The stack's templated objects (CRDs aside: schemas, not workloads) as one file per release."""
    output = template_stack(stack)
    directory = OUT / stack
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for name, release in output.releases.items():
        if not release.skipped:
            objects = [installed(o, release.namespace) for o in release.objects if o["kind"] != "CustomResourceDefinition"]
            (directory / f"{name}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=True))
    (directory / "program.yaml").write_text(yaml.safe_dump_all(output.program, sort_keys=True))
    return directory


def failed_checks(checkov: str, directory: Path) -> list[dict]:
    result = subprocess.run([checkov, "-d", str(directory), "--framework", "kubernetes", "--compact", "--quiet",
                             "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=600)
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return [check for report in reports for check in report["results"]["failed_checks"]]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    unexpected = 0
    for stack in sorted(stacks()):
        failed = failed_checks(argv[0], write_output(stack))
        counts = Counter(check["check_id"] for check in failed)
        print(f"== stack {stack}: {len(failed)} failed checks")
        for check_id, count in sorted(counts.items()):
            accepted = check_id in CHECKOV_ACCEPTED
            unexpected += 0 if accepted else count
            resources = sorted({c["resource"].split(".app.kubernetes.io")[0] for c in failed if c["check_id"] == check_id})
            print(f"  {check_id:12s} {count:3d} {'accepted' if accepted else 'NOT ACCEPTED'}: {', '.join(resources)}")
    if unexpected:
        print(f"{unexpected} failures not accepted in monitoring/security.py CHECKOV_ACCEPTED", file=sys.stderr)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
