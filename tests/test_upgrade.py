"""Upgrading a deployed stack replaces none of its data-bearing resources: the identities of the last
release's render (testkit/upgrade.py) are all in this one's, unchanged.

The last release is `$UPGRADE_BASE` (a git revision: the tag or branch deployed, the base branch in a
pull request's checks, where the checkout is the pull request merged into it), else where this branch
left `main` (a branch does not hold what `main` gained since); its files are taken from git, rendered
and templated with its own code, the same charts and tools. Without git history (a shallow clone) or
such a revision the test says so and skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import io
from pathlib import Path

import pytest

from testkit import upgrade
from tools import charts
from tools.go_tools import TOOLS_DIR
from tools.render import stacks

pytestmark = pytest.mark.charts

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def base_checkout(tmp_path_factory) -> Path:
    revision = os.environ.get("UPGRADE_BASE")
    commit = (_git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}") if revision
              else _git("merge-base", "HEAD", "main"))
    if commit.returncode != 0:
        pytest.skip(f"no revision {revision or 'main'!r} of the last release in this clone (set UPGRADE_BASE, "
                    "fetch its history)")
    archive = _git("archive", "--format=tar", commit.stdout.decode().strip())
    assert archive.returncode == 0, archive.stderr.decode()
    target = tmp_path_factory.mktemp("base")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def identities_of(checkout: Path, stack: str) -> dict:
    env = {**os.environ, "CHART_SOURCES": str(charts.sources_root().resolve()),
           "WEBHOOK_MONITORING_TOOLS": str(TOOLS_DIR.resolve())}
    runner = f"import runpy; runpy.run_path({str(Path(upgrade.__file__))!r}, run_name='__main__')"
    # The checkout first on the path ('' is the working directory): its own code reads its own stack.
    result = subprocess.run([sys.executable, "-c", runner, stack], cwd=checkout, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("stack", sorted(stacks()))
def test_upgrading_from_the_last_release_replaces_no_data_bearing_resource(base_checkout, stack):
    if not (base_checkout / f"Pulumi.{stack}.yaml").exists():
        pytest.skip(f"stack {stack} is new since the last release")
    base, head = identities_of(base_checkout, stack), identities_of(ROOT, stack)
    unavailable = sorted(k for k, v in {**base, **head}.items() if "skipped" in v)
    if unavailable:
        pytest.skip(f"charts unavailable: {unavailable}")
    assert any(k.startswith("StatefulSet ") for k in base) and any(k.startswith("pulumi aws:s3") for k in base)
    assert upgrade.replaced(base, head) == []


def test_a_renamed_release_a_new_bucket_name_and_a_changed_claim_are_replacements():
    """The comparison's negative case, on made-up identities."""
    base = {
        "pulumi kubernetes:helm.sh/v3:Release metrics-kube-prometheus-stack (parent p)": {"name": "kube-prometheus-stack", "namespace": "monitoring"},
        "pulumi aws:s3/bucket:Bucket metrics-bucket (parent p)": {"bucket": None, "bucketPrefix": None},
        "StatefulSet monitoring/loki-write": {"volumeClaimTemplates": [{"name": "data", "spec": {"storageClassName": "gp3"}}]},
        "Prometheus monitoring/kube-prometheus-stack-prometheus": {"volumeClaimTemplate": {}},
    }
    head = {
        "pulumi kubernetes:helm.sh/v3:Release metrics-kube-prometheus-stack (parent p)": {"name": "webhook-delivery-prod", "namespace": "monitoring"},
        "pulumi aws:s3/bucket:Bucket metrics-bucket (parent p)": {"bucket": None, "bucketPrefix": "c-prod-metrics-"},
        "StatefulSet monitoring/loki-write": {"volumeClaimTemplates": [{"name": "data", "spec": {"storageClassName": "fast"}}]},
        "Prometheus monitoring/webhook-delivery-prod-prometheus": {"volumeClaimTemplate": {}},
    }
    found = upgrade.replaced(base, head)
    assert [line.split(":")[0] for line in found] == [
        "Prometheus monitoring/kube-prometheus-stack-prometheus",
        "StatefulSet monitoring/loki-write",
        "pulumi aws",
        "pulumi kubernetes",
    ]
    assert upgrade.replaced(base, base) == []
