"""The operations handbook (docs/operations/) names only what exists, and every link of the docs resolves.

What the documents name is checked against the rendered stacks and the code: alerts against the
rendered rules (the charts' own against the pinned chart's rule templates), recorded series against
the rendered recording rules, other metrics against what the rules, dashboards and charts use,
configuration keys against the schema, dashboard UIDs against the rendered dashboards, `make`
targets against the Makefile, `python -m` modules against the tree, Kubernetes objects against the
program's resources and the charts' output, tool paths against the pinned versions. Placeholders
in angle brackets (`<service>`) are not checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from config import sizing
from config.schema import describe
from config.settings import Settings
from monitoring import versions
from tests.support import ROOT, run_stack
from tools import charts
from tools.templating import template_stack
from tools.render import write_files
from tools.rendered import RenderedStack

OPERATIONS = sorted((ROOT / "docs" / "operations").glob("*.md"))
EVERY_DOC = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
STACKS = ("dev", "prod")

# CamelCase words of the handbook that are not alert names: Kubernetes kinds and states, Helm and
# Grafana terms.
NOT_ALERTS = {
    "ServiceMonitor", "ServiceMonitors", "PodMonitor", "PodMonitors", "PrometheusRule", "PrometheusRules",
    "AlertmanagerConfig", "StatefulSet", "DaemonSet", "PersistentVolume", "ReadWriteOnce", "RollingUpdate",
    "CrashLoopBackOff", "ClusterIssuer", "ClusterRole", "NetworkPolicy", "PodDisruptionBudget", "InfoInhibitor",
    "FileSystemResizeSuccessful",
}
# Metrics of the components that no rule, dashboard or chart rule of the stack reads, named by the
# handbook for investigation; each checked by hand against the version deployed.
OTHER_METRICS = {
    "prometheus_remote_storage_samples_retried_total",  # Prometheus 3.14
    "loki_write_sent_entries_total", "loki_write_dropped_entries_total",  # Alloy's loki.write 1.11
    "cortex_discarded_samples_total",  # Mimir 2.x/3.x
}
METRIC_PREFIXES = ("webhook_", "prometheus_", "alertmanager_", "loki_", "scrape_", "kube_", "container_",
                   "kubelet_", "cortex_", "node_")
# Placeholders and example values the handbook uses in commands.
PLACEHOLDER = re.compile(r"<[^>]*>")


# ------------------------------------------------------------------------------ what exists


def rendered(stack: str, root: Path) -> Path:
    directory = root / stack
    write_files(RenderedStack.from_run(stack, run_stack(stack)), directory)
    return directory


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rendered")
    return {stack: rendered(stack, root) for stack in STACKS}


def rule_groups(directory: Path) -> list[dict]:
    return [*yaml.safe_load((directory / "prometheus-rules.yaml").read_text())["groups"],
            *yaml.safe_load((directory / "logging" / "loki-rules.yaml").read_text())["groups"]]


def our_alerts(stacks: dict[str, Path]) -> set[str]:
    return {r["alert"] for d in stacks.values() for g in rule_groups(d) for r in g["rules"] if "alert" in r}


def recorded(stacks: dict[str, Path]) -> set[str]:
    return {r["record"] for d in stacks.values() for g in rule_groups(d) for r in g["rules"] if "record" in r}


def resources(stacks: dict[str, Path]) -> list[dict]:
    return [r for d in stacks.values() for r in json.loads((d / "resources.json").read_text())]


def chart_text() -> str | None:
    """The pinned kube-prometheus-stack chart's rule templates, or None when the chart is not fetched."""
    chart = charts.chart_dir(versions.KUBE_PROMETHEUS_STACK)
    if chart is None:
        return None
    return "\n".join(p.read_text() for p in sorted((chart / "templates" / "prometheus" / "rules-1.14").glob("*.yaml")))


def config_keys() -> set[str]:
    return {doc.key for doc in describe(Settings, "")}


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


# ------------------------------------------------------------------------------ what the documents name


def code(text: str) -> list[str]:
    """Inline code spans and the lines of fenced code blocks, in order."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.M | re.S))
    return inline + [line for block in blocks for line in block.splitlines()]


def named(pattern: str, docs=OPERATIONS) -> dict[str, list[str]]:
    """Each match of `pattern` in the documents' code, placeholders removed -> the documents naming it."""
    found: dict[str, list[str]] = {}
    for doc in docs:
        for snippet in code(doc.read_text()):
            for match in re.findall(pattern, PLACEHOLDER.sub(" ", snippet)):
                found.setdefault(match, []).append(doc.name)
    return found


def missing(names: dict[str, list[str]], known: set[str]) -> list[str]:
    return sorted(f"{name} (in {', '.join(sorted(set(docs)))})" for name, docs in names.items() if name not in known)


def test_the_handbook_has_its_documents():
    assert {p.name for p in OPERATIONS} == {
        "investigation.md", "incident-response.md", "troubleshooting.md", "capacity.md", "backup-and-restore.md",
        "volumes.md", "grafana-admin.md", "upgrades.md", "rollback.md", "failed-release.md", "volume-resize.md"}


def test_every_alert_named_is_one_of_ours_or_of_the_chart(stacks):
    alerts = named(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+$")
    link_texts = {m: ["links"] for doc in OPERATIONS for m in re.findall(r"\[([A-Z][A-Za-z0-9]+)\]\(\.\./runbooks/", doc.read_text())}
    ours = our_alerts(stacks)
    assert {"WebhookHighErrorRate", "Watchdog", "PrometheusHeadSeriesAboveSizing"} <= ours
    candidates = {name: docs for name, docs in {**alerts, **link_texts}.items() if name not in NOT_ALERTS}
    chart = chart_text()
    if chart is None:
        unchecked = sorted(name for name in candidates if name not in ours)
        pytest.skip(f"kube-prometheus-stack chart not fetched (make charts): {unchecked} unchecked")
    chart_alerts = set(re.findall(r"^\s*- alert: (\w+)", chart, re.M))
    assert len(chart_alerts) > 100
    assert missing(candidates, ours | chart_alerts) == []


def test_a_misspelled_alert_is_caught(stacks):
    assert missing({"WebhookHighErrorRatio": ["x.md"]}, our_alerts(stacks)) == ["WebhookHighErrorRatio (in x.md)"]


def test_every_recorded_series_named_is_recorded(stacks):
    # Not a Pulumi type inside a URN (`...$pulumi:providers:grafana::name`).
    series = named(r"(?<![$\w:-])[a-z][a-z0-9_]*:[a-z0-9_]+:[a-z0-9_]+\b(?!::)")
    assert len(series) >= 5
    assert missing(series, recorded(stacks)) == []


def test_every_metric_named_is_one_the_stack_uses(stacks):
    """Application metrics from the catalog; the components' own from what the rendered rules and
    dashboards and the charts' rules read, or the short list checked by hand."""
    catalog = set(re.findall(r"`(webhook_[a-z0-9_]+)`", (ROOT / "docs" / "metrics.md").read_text()))
    catalog |= {f"{m}{suffix}" for m in catalog for suffix in ("_bucket", "_sum", "_count")}
    used = "\n".join([*((d / "prometheus-rules.yaml").read_text() for d in stacks.values()),
                      *(p.read_text() for d in stacks.values() for p in (d / "dashboards").glob("*.json")),
                      *((d / "logging" / "loki-rules.yaml").read_text() for d in stacks.values()),
                      chart_text() or ""])
    known = catalog | OTHER_METRICS | set(re.findall(r"\b[a-z][a-z0-9_]*\b", used))
    metrics = named(rf"\b(?:{'|'.join(METRIC_PREFIXES)})[a-z0-9_]+\b")
    metrics = {m: d for m, d in metrics.items() if not m.endswith("_")}
    assert "webhook_deliveries_total" in metrics
    assert missing(metrics, known) == []


def test_every_configuration_key_named_exists():
    top = "|".join(sorted({key.split(".")[0] for key in config_keys()}, key=len, reverse=True))
    keys = named(rf"(?<![\w.-])(?:webhook-monitoring:)?((?:{top})\.[A-Za-z0-9.\[\]]*[A-Za-z0-9\]])")
    normalized = {re.sub(r"\[[0-9]*\]", "[]", key): docs for key, docs in keys.items()
                  if not re.search(r"\.(py|md|yaml|json)$", key)}  # files such as components/alerting.py
    # A key written with its list index: `metrics.services[].sampleLimit` as the schema lists it.
    assert "prometheus.expectedSeries" in normalized and len(normalized) > 30
    known = config_keys() | {re.sub(r"\[\]$", "", k) for k in config_keys()}
    assert missing(normalized, known) == []


def test_every_dashboard_named_is_rendered(stacks):
    uids = {json.loads(p.read_text())["uid"] for d in stacks.values() for p in (d / "dashboards").glob("*.json")}
    linked = {uid: [doc.name] for doc in OPERATIONS for uid in re.findall(r"/d/([a-z0-9-]+)", doc.read_text())}
    quoted = {uid: docs for uid, docs in named(r"^(webhook-[a-z]+)$").items()
              if uid not in ("webhook-delivery", "webhook-alerts", "webhook-api", "webhook-monitoring")}
    assert "webhook-capacity" in {**linked, **quoted}
    assert missing({**linked, **quoted}, uids) == []


def test_every_make_target_and_module_named_exists():
    targets = named(r"\bmake ([a-z][a-z-]*)")
    assert {"verify", "render", "bench"} <= set(targets)
    assert missing(targets, make_targets()) == []
    modules = named(r"python -m ([a-z_.]+)")
    assert missing(modules, {m for m in modules if (ROOT / (m.replace(".", "/") + ".py")).exists()}) == []


def test_every_tool_path_is_of_the_pinned_version():
    tools = named(r"\.tools/([a-z]+-[0-9.]+)/")
    pinned = {f"prometheus-{versions.PROMETHEUS_VERSION}", f"alertmanager-{versions.ALERTMANAGER_VERSION}"}
    assert tools and missing(tools, pinned) == []


def test_every_secret_named_is_one_the_program_makes(stacks):
    program = {(r["type"].rsplit(":", 1)[1], (r["inputs"].get("metadata") or {}).get("name")) for r in resources(stacks)}
    secrets = named(r"get secret ([a-z0-9-]+)")
    assert secrets and missing(secrets, {name for kind, name in program if kind == "Secret"}) == []


@pytest.mark.charts
def test_every_workload_and_service_named_is_in_the_chart_output():
    """Against every object the stacks' releases template to and the program registers (skipped, with
    the reason, unless every chart is available)."""
    outputs = [template_stack(stack) for stack in STACKS]
    for output in outputs:
        if output.unavailable():
            pytest.skip(output.unavailable())
    objects = {(o["kind"], o["metadata"]["name"]) for output in outputs for o in output.objects() if o.get("metadata")}
    kinds = {"deploy": "Deployment", "ds": "DaemonSet", "sts": "StatefulSet", "svc": "Service", "job": "Job",
             "pvc": "PersistentVolumeClaim"}
    workloads = {f"{kinds[kind]}/{name}": docs for (kind, name), docs in _kubectl_objects().items()}
    assert "Deployment/kube-prometheus-stack-grafana" in workloads
    assert missing(workloads, {f"{kind}/{name}" for kind, name in objects}) == []
    pods = named(r"\b((?:prometheus|alertmanager)-[a-z0-9-]+-[0-9]+)\b")
    # The Operator names the pods of a Prometheus or Alertmanager `<kind>-<name>-<ordinal>`.
    operator_pods = {f"{kind.lower()}-{name}-{i}" for kind, name in objects if kind in ("Prometheus", "Alertmanager")
                     for i in range(3)}
    assert pods and missing(pods, operator_pods) == []


def _kubectl_objects() -> dict[tuple[str, str], list[str]]:
    """(kind abbreviation, name) of every `kind/name` and `get kind name` of a kubectl command."""
    found: dict[tuple[str, str], list[str]] = {}
    for pattern in (r"\b(deploy|ds|sts|svc|job)/([a-z0-9-]+)", r"kubectl .*\bget (deploy|ds|sts|svc|pvc) ([a-z0-9][a-z0-9-]*)"):
        for (kind, name), docs in named(pattern).items():
            found.setdefault((kind, name), []).extend(docs)
    return found


def test_every_helm_release_and_init_container_named_exists(stacks):
    """`helm ... <release>` and `helm ... rollback <release>` name releases the program installs; a
    `-c <container>` names a container of the stack."""
    releases = {r["inputs"]["name"] for r in resources(stacks) if r["type"] == "kubernetes:helm.sh/v3:Release"}
    named_releases = named(r"\bhelm -n [a-z-]+ (?:history|rollback|uninstall|status|get manifest) ([a-z0-9-]+)")
    assert {"kube-prometheus-stack"} <= set(named_releases) and missing(named_releases, releases) == []
    containers = named(r"\bkubectl .* -c ([a-z-]+)")
    assert "reset-admin-password" in containers
    values = json.dumps([r["inputs"].get("values") for r in resources(stacks)])
    assert missing(containers, {c for c in containers if f'"name": "{c}"' in values or c == "grafana"}) == []


def test_no_runbook_rolls_the_crds_back():
    """Helm would apply older CRDs: stored objects lose the fields the newer ones added."""
    rollbacks = named(r"\bhelm -n [a-z-]+ rollback ([a-z0-9-]+)")
    assert rollbacks and "prometheus-operator-crds" not in rollbacks


def test_every_pulumi_resource_named_is_registered(stacks):
    """URNs in `pulumi` commands, and `pulumi import` type and name, against the rendered resources."""
    registered = {(r["type"], r["name"]) for r in resources(stacks)}
    urns = named(r"urn:pulumi:[^:]*::webhook-monitoring::(?:[^$\s']*\$)?([a-z0-9-]+:[^:$\s']*:[A-Za-z]+)::([a-z0-9-]+)")
    imports = named(r"pulumi import ([a-z]+:[^ ]+:[A-Za-z]+) ([a-z0-9-]+)")
    found = {f"{t} {n}": docs for (t, n), docs in {**urns, **imports}.items()}
    assert len(found) >= 4
    # The Grafana provider the first upgrade takes out of the state was the program's before it.
    known = {f"{t} {n}" for t, n in registered} | {"pulumi:providers:grafana dashboards-provider"}
    assert missing(found, known) == []


def test_the_sizing_table_is_the_sizing_rule():
    text = (ROOT / "docs" / "operations" / "capacity.md").read_text()
    rows = re.findall(r"^\| ([0-9,]+)[^|]*\| ([0-9]+)Mi \| ([0-9.]+) \|$", text, re.M)
    assert len(rows) >= 5
    for series, memory, cores in rows:
        series = int(series.replace(",", ""))
        assert (int(memory) * sizing.MIB, float(cores)) == (sizing.memory_limit_for(series), sizing.cpu_limit_for(series)), series


# ------------------------------------------------------------------------------ links


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def broken_links(doc: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)
    where = doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc.name
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{where}: {target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{where}: {target} (no such heading)")
    return broken


def test_every_link_of_the_docs_resolves():
    assert len(EVERY_DOC) > 30
    assert [line for doc in EVERY_DOC for line in broken_links(doc)] == []


def test_a_broken_link_is_caught(tmp_path):
    doc = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("# B\n\n## The part\n")
    doc.write_text("[ok](b.md#the-part) [no file](c.md) [no heading](b.md#other) [self](#a)\n\n# A\n")
    broken = broken_links(doc)
    assert [line.split(": ", 1)[1] for line in broken] == ["c.md (no such file)", "b.md#other (no such heading)"]
