"""Logging: Loki values, the two agents' configs, LogQL alert rules, and the Logging component.

The Loki ruler's rule files are Prometheus rule files with LogQL expressions. promtool cannot
parse LogQL (line filters and parsers are not PromQL), so the rule files are checked here in
Python against the Prometheus rule-file structure instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pulumi
import pytest
import yaml

from tests.support import SECRET_VALUES, minimal_settings
from monitoring.logging.agent import alloy_values, promtail_values
from monitoring.logging.alloy import alloy_config
from monitoring.logging.logql import (
    correlation_id_lookup,
    delivery_failures_by_endpoint,
    error_burst,
    loki_rule_groups,
    panics,
)
from monitoring.logging.loki import (
    LOKI_SERVICE_ACCOUNT,
    RULES_CONFIGMAP_LABEL,
    RULES_CONFIGMAP_LABEL_VALUE,
    loki_values,
    push_url,
)
from monitoring.logging.promtail import promtail_config
from monitoring.versions import ALLOY, LOKI, PROMTAIL

ROOT = Path(__file__).resolve().parent.parent
NS = "webhook-monitoring:"
ROLE_ARN = "arn:aws:iam::123456789012:role/webhook-logs-loki"
BUCKET = "webhook-logs-bucket"
REGION = "eu-west-1"
ALERTMANAGER = "http://alertmanager-operated.monitoring.svc:9093"
PUSH = push_url("monitoring")


def loki_for(settings) -> dict[str, Any]:
    return loki_values(
        settings, bucket_name=BUCKET, region=REGION, role_arn=ROLE_ARN, storage_class="gp3", attributes_classes={},
        service_account=LOKI_SERVICE_ACCOUNT, alertmanager_url=ALERTMANAGER, rules_config_map="logging-loki-rules",
    )


def walk(tree: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every mapping entry in a nested tree, YAML text values parsed too."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield f"{path}.{key}", str(key), value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from walk(value, f"{path}[{i}]")


# ------------------------------------------------------------------ an Alloy config-syntax reader

_TOKEN = re.compile(
    r'\s+|//[^\n]*|(?P<string>"(?:\\.|[^"\\])*")|(?P<raw>`[^`]*`)|(?P<number>-?\d+(?:\.\d+)?)'
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(?P<punct>[{}\[\](),=+])"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"unexpected character in Alloy config at {text[pos:pos + 30]!r}"
        pos = m.end()
        if m.lastgroup:
            out.append((m.lastgroup, m.group(m.lastgroup)))
    return out


class AlloyReader:
    """Reads the subset of Alloy syntax the renderer writes: blocks, attributes, expressions."""

    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        assert value is None or token[1] == value, f"expected {value!r}, got {token!r}"
        self.pos += 1
        return token

    def body(self, closing: str | None) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        blocks: list[dict[str, Any]] = []
        while self.peek()[1] != (closing or "") and self.peek()[0] != "end":
            kind, name = self.take()
            assert kind == "ident", f"expected a name, got {name!r}"
            if self.peek()[1] == "=":
                self.take("=")
                assert name not in attrs, f"attribute {name} set twice"
                attrs[name] = self.expr()
                continue
            label = json.loads(self.take()[1]) if self.peek()[0] == "string" else None
            self.take("{")
            blocks.append({"name": name, "label": label, **self.body("}")})
            self.take("}")
        return {"attrs": attrs, "blocks": blocks}

    def expr(self) -> Any:
        terms = [self.term()]
        while self.peek()[1] == "+":
            self.take("+")
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else ("concat", terms)

    def term(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return json.loads(value)
        if kind == "raw":
            return value[1:-1]
        if kind == "number":
            return float(value)
        if value == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.expr())
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("]")
            return items
        if value == "{":
            obj = {}
            while self.peek()[1] != "}":
                key = self.take()[1]
                self.take("=")
                obj[key] = self.expr()
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("}")
            return obj
        assert kind == "ident", f"unexpected {value!r}"
        if value in ("true", "false"):
            return value == "true"
        if self.peek()[1] == "(":
            self.take("(")
            args = []
            while self.peek()[1] != ")":
                args.append(self.expr())
                if self.peek()[1] == ",":
                    self.take(",")
            self.take(")")
            return ("call", value, args)
        return ("ref", value)


def read_alloy(text: str) -> dict[str, dict[str, Any]]:
    """Top-level components of an Alloy config by `name.label`."""
    reader = AlloyReader(text)
    top = reader.body(None)
    assert reader.peek()[0] == "end" and not top["attrs"]
    components = {f"{b['name']}.{b['label']}": b for b in top["blocks"]}
    assert len(components) == len(top["blocks"]), "two components share a name"
    return components


def alloy_steps(text: str) -> tuple[list[dict], list[tuple[str, Any]]]:
    components = read_alloy(text)
    relabels = [rule["attrs"] for rule in components["discovery.relabel.pod_logs"]["blocks"]]
    stage_args = {"stage.json": "expressions", "stage.structured_metadata": "values", "stage.labels": "values"}
    steps = []
    for block in components["loki.process.pod_logs"]["blocks"]:
        kind = block["name"].removeprefix("stage.")
        arg = stage_args.get(block["name"])
        steps.append((kind, block["attrs"][arg] if arg else block["attrs"]))
    return relabels, steps


def promtail_steps(config_text: str) -> tuple[list[dict], list[tuple[str, Any]]]:
    config = yaml.safe_load(config_text)
    (job,) = config["scrape_configs"]
    steps = []
    for stage in job["pipeline_stages"]:
        ((kind, args),) = stage.items()
        steps.append((kind, args["expressions"] if kind == "json" else args))
    return job["relabel_configs"], steps


def rendered_agents(settings) -> tuple[str, str]:
    """The Alloy config and the Promtail config file exactly as their Helm values carry them."""
    alloy_text = alloy_values(settings, alloy_config(settings, PUSH))["alloy"]["configMap"]["content"]
    promtail_text = promtail_values(settings, promtail_config(settings, PUSH))["config"]["file"]
    return alloy_text, promtail_text


# ------------------------------------------------------------------ Loki values


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_loki_stores_in_the_logs_bucket_through_irsa(environment):
    values = loki_for(minimal_settings(environment))
    storage = values["loki"]["storage"]
    assert storage["type"] == "s3"
    assert storage["bucketNames"] == {"chunks": BUCKET}
    assert storage["s3"] == {"region": REGION}
    assert values["minio"] == {"enabled": False}
    assert values["serviceAccount"] == {
        "create": True,
        "name": "loki",
        "annotations": {"eks.amazonaws.com/role-arn": ROLE_ARN},
        "automountServiceAccountToken": False,
    }
    # No static credentials at any depth.
    keys = {key.lower() for _, key, _ in walk(values)}
    assert not keys & {"accesskeyid", "secretaccesskey", "access_key_id", "secret_access_key"}


def test_schema_is_v13_on_tsdb_with_structured_metadata():
    loki = loki_for(minimal_settings())["loki"]
    assert loki["schemaConfig"] == {
        "configs": [
            {"from": "2024-04-01", "store": "tsdb", "object_store": "s3", "schema": "v13",
             "index": {"prefix": "loki_index_", "period": "24h"}}
        ]
    }
    assert loki["limits_config"]["allow_structured_metadata"] is True


@pytest.mark.parametrize(("retention", "hours"), [(None, "336h"), ("30d", "720h")])
def test_retention_is_the_configured_days_everywhere_and_enforced_by_the_compactor(retention, hours):
    sections = {"logging": {"retention": retention, "bucketExpiration": "40d"}} if retention else {}
    values = loki_for(minimal_settings(**sections))
    periods = {path: value for path, key, value in walk(values) if "retention" in key.lower() and key != "retention_enabled"}
    assert periods == {".loki.limits_config.retention_period": hours}
    assert values["loki"]["compactor"]["retention_enabled"] is True
    assert values["loki"]["compactor"]["delete_request_store"] == "s3"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_no_table_manager_anywhere(environment):
    values = loki_for(minimal_settings(environment))
    assert not [path for path, key, _ in walk(values) if key.replace("_", "").lower() == "tablemanager"]


def test_dev_runs_a_single_binary_and_no_scalable_targets():
    values = loki_for(minimal_settings("dev"))
    assert values["deploymentMode"] == "Monolithic"
    assert values["singleBinary"]["replicas"] == 1
    assert [values[t]["replicas"] for t in ("read", "write", "backend")] == [0, 0, 0]
    assert values["loki"]["commonConfig"]["replication_factor"] == 1
    # The chart defaults to an 8 GiB memcached chunks cache; dev runs none.
    assert values["chunksCache"] == values["resultsCache"] == values["lokiCanary"] == {"enabled": False}
    # The chart's Helm test needs the canary.
    assert values["test"] == {"enabled": False}


def test_prod_runs_simple_scalable_with_replicas():
    values = loki_for(minimal_settings("prod"))
    assert values["deploymentMode"] == "SimpleScalable"
    # The single binary stays at the chart's zero replicas: none of its settings are given.
    assert "singleBinary" not in values and "test" not in values
    # Three copies of each stream on the write path; two pods read and two run the backend.
    assert [values[t]["replicas"] for t in ("read", "write", "backend")] == [2, 3, 2]
    # The backend's volumes outlive its StatefulSet and scale-downs in a protected stack.
    assert values["backend"]["persistence"]["whenScaled"] == values["backend"]["persistence"]["whenDeleted"] == "Retain"
    assert values["loki"]["commonConfig"]["replication_factor"] == 3
    assert values["chunksCache"] == {"enabled": True, "allocatedMemory": 1024}
    assert values["gateway"]["enabled"] is True and values["gateway"]["replicas"] == 2


@pytest.mark.parametrize("mode, targets", [("Monolithic", ("singleBinary",)), ("SimpleScalable", ("write", "backend"))])
def test_volumes_are_on_the_gp3_class_with_the_configured_size(mode, targets):
    values = loki_for(minimal_settings("prod", logging={"volumeSize": "25Gi", "mode": mode,
                                                        "resources": {"memoryRequest": "1Gi", "memoryLimit": "2Gi"}}))
    for target in targets:
        assert values[target]["persistence"]["storageClass"] == "gp3"
        assert values[target]["persistence"]["size"] == "25Gi"
        assert values[target]["resources"]["limits"]["memory"] == "2Gi"


@pytest.mark.parametrize("environment, target", [("dev", "singleBinary"), ("prod", "backend")])
def test_ruler_reads_the_mounted_rules_and_sends_to_alertmanager(environment, target):
    values = loki_for(minimal_settings(environment))
    ruler = values["loki"]["rulerConfig"]
    assert ruler["alertmanager_url"] == ALERTMANAGER
    assert ruler["external_labels"] == {"cluster": "webhook-test-use1", "environment": environment}
    # Single tenant (`fake`): local rule storage reads <directory>/fake, where the ConfigMap is mounted.
    assert values["loki"]["auth_enabled"] is False
    assert ruler["storage"] == {"type": "local", "local": {"directory": "/rules"}}
    assert {"name": "ruler-rules", "mountPath": "/rules/fake", "readOnly": True} in values[target]["extraVolumeMounts"]
    assert {"name": "ruler-rules", "configMap": {"name": "logging-loki-rules"}} in values[target]["extraVolumes"]
    assert not ruler["rule_path"].startswith(ruler["storage"]["local"]["directory"] + "/")
    # No sidecar, so no role reading the namespace's Secrets, and no API token in any Loki pod.
    assert values["sidecar"] == {"rules": {"enabled": False}}
    assert values["serviceAccount"]["automountServiceAccountToken"] is False


# ------------------------------------------------------------------ agents


def test_alloy_runs_on_every_node_and_reads_host_logs():
    settings = minimal_settings()
    values = alloy_values(settings, alloy_config(settings, PUSH))
    assert values["controller"]["type"] == "daemonset"
    # An empty key with Exists tolerates every taint; anything narrower misses some nodes.
    assert values["controller"]["tolerations"] == [{"operator": "Exists"}]
    assert values["alloy"]["mounts"]["varlog"] is True
    assert values["alloy"]["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}


def test_promtail_runs_on_every_node():
    settings = minimal_settings(logging={"agent": "promtail"})
    values = promtail_values(settings, promtail_config(settings, PUSH))
    assert values["daemonset"] == {"enabled": True}
    assert values["deployment"] == {"enabled": False}
    assert values["tolerations"] == [{"operator": "Exists"}]
    config = yaml.safe_load(values["config"]["file"])
    assert config["clients"] == [{"url": PUSH}]
    assert config["server"]["http_listen_port"] == values["config"]["serverPort"]


def test_both_agents_carry_the_same_pipeline():
    alloy_text, promtail_text = rendered_agents(minimal_settings())
    alloy_relabels, alloy_stages = alloy_steps(alloy_text)
    promtail_relabels, promtail_stages = promtail_steps(promtail_text)
    assert alloy_stages == promtail_stages
    assert alloy_relabels == promtail_relabels
    # And the steps are the ones asked for, in order.
    fields = {"level": "level", "correlation_id": "correlation_id", "trace_id": "trace_id", "path": "path"}
    assert [kind for kind, _ in alloy_stages] == ["cri", "json", "drop", "structured_metadata", "labels"]
    assert alloy_stages[1] == ("json", fields)
    assert alloy_stages[3] == ("structured_metadata", {"correlation_id": "correlation_id", "trace_id": "trace_id"})
    assert alloy_stages[4] == ("labels", {"level": "level"})
    assert [r["target_label"] for r in alloy_relabels] == ["namespace", "pod", "container", "app", "__path__"]


def test_request_ids_are_never_labels():
    alloy_text, promtail_text = rendered_agents(minimal_settings())
    for relabels, stages in (alloy_steps(alloy_text), promtail_steps(promtail_text)):
        labels = {r["target_label"] for r in relabels} | set(dict(stages)["labels"])
        assert not labels & {"correlation_id", "trace_id"}


def test_health_checks_are_dropped_and_real_requests_kept():
    alloy_text, promtail_text = rendered_agents(minimal_settings(logging={"dropPaths": ["/healthz", "/ready.z"]}))
    for _, stages in (alloy_steps(alloy_text), promtail_steps(promtail_text)):
        drop = dict(stages)["drop"]
        assert drop["source"] == "path" and drop["drop_counter_reason"] == "health_check"
        pattern = re.compile(drop["expression"])
        assert all(pattern.search(p) for p in ("/healthz", "/healthz?verbose=1", "/ready.z"))
        assert not any(pattern.search(p) for p in ("/readyz", "/api/healthz", "/healthz/deep", "/deliveries"))


def test_no_drop_stage_without_drop_paths():
    alloy_text, promtail_text = rendered_agents(minimal_settings(logging={"dropPaths": []}))
    for _, stages in (alloy_steps(alloy_text), promtail_steps(promtail_text)):
        assert "drop" not in dict(stages)


def test_alloy_components_are_wired_to_components_that_exist():
    alloy_text, _ = rendered_agents(minimal_settings())
    components = read_alloy(alloy_text)
    references = re.findall(r"\b((?:discovery|local|loki)\.[a-z_]+\.[a-z_]+)\.(?:targets|output|receiver)\b", alloy_text)
    assert references and all(ref in components for ref in references)
    assert components["loki.write.loki"]["blocks"][0]["attrs"]["url"] == PUSH
    selector = components["discovery.kubernetes.pods"]["blocks"][0]["attrs"]["field"]
    assert selector == ("concat", ["spec.nodeName=", ("call", "sys.env", ["HOSTNAME"])])


# ------------------------------------------------------------------ LogQL and log-based rules

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def test_log_rules_have_the_loki_ruler_structure():
    settings = minimal_settings()
    groups = loki_rule_groups(settings)
    # What the ruler receives is YAML: it must survive the trip unchanged.
    assert yaml.safe_load(yaml.safe_dump({"groups": groups})) == {"groups": groups}
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names))
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit"} and _DURATION.match(group["interval"])
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert _DURATION.match(rule["for"])
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["labels"]["team"] == "webhook-delivery"
            assert "service" in rule["labels"]
            assert all(isinstance(v, str) for v in [*rule["labels"].values(), *rule["annotations"].values()])
            assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
            assert rule["annotations"]["runbook_url"] == (
                "https://git.example.com/sre/webhook-monitoring/blob/main/docs/runbooks/" + rule["alert"] + ".md"
            )
            assert (ROOT / "docs" / "runbooks" / f"{rule['alert']}.md").is_file()
            expr = rule["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
            assert '{namespace=~"webhook-delivery"' in expr


def test_log_rule_thresholds():
    rules = {r["alert"]: r for r in loki_rule_groups(minimal_settings(logging={"errorBurstLines": 20}))[0]["rules"]}
    assert rules["WebhookLogErrorBurst"]["expr"].endswith(" > 20")
    assert rules["WebhookServicePanicked"]["expr"].endswith(" > 0")
    assert rules["WebhookLogErrorBurst"]["labels"]["service"] == '{{ or $labels.app "webhook-delivery" }}'


def test_queries_select_the_configured_services_and_failures():
    settings = minimal_settings(metrics={
        "services": [
            {"name": "api", "namespace": "webhooks", "selector": {"app": "api"}},
            {"name": "worker", "namespace": "delivery", "selector": {"app": "worker"}},
        ],
        "failureStatuses": ["error", "timed.out"],
    })
    assert error_burst(settings) == (
        'sum by (namespace, app) (count_over_time({namespace=~"delivery|webhooks", '
        'level=~"(?i)(error|fatal|critical|panic)"} [5m]))'
    )
    assert panics(settings, "10m").endswith('|= "panic: " [10m]))')
    failures = delivery_failures_by_endpoint(settings)
    assert failures.startswith("sum by (namespace, app, endpoint) (")
    # Statuses are regex-escaped: "timed.out" must not match "timedXout".
    assert '| status=~"^(error|timed\\\\.out)$"' in failures


def test_correlation_lookup_searches_structured_metadata_of_all_namespaces():
    assert correlation_id_lookup() == '{namespace=~".+"} | correlation_id!="" | correlation_id="$correlation_id"'
    assert correlation_id_lookup('a"b') == '{namespace=~".+"} | correlation_id!="" | correlation_id="a\\"b"'


def test_no_secret_in_any_values():
    settings = minimal_settings("prod")
    rendered = json.dumps([
        loki_for(settings),
        alloy_values(settings, alloy_config(settings, PUSH)),
        promtail_values(settings, promtail_config(settings, PUSH)),
        loki_rule_groups(settings),
    ])
    assert not any(secret in rendered for secret in SECRET_VALUES.values())


# ------------------------------------------------------------------ the component under mocks


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def _run_component(settings, check):
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="webhook-monitoring", stack="test", preview=False)
    from components.logging import Logging, LoggingArgs

    outputs: dict = {}

    @pulumi.runtime.test
    def program():
        role_arn = pulumi.Output.from_input(ROLE_ARN).apply(lambda arn: arn)
        logging = Logging(
            "logging",
            LoggingArgs(
                settings=settings, namespace="monitoring", agent_namespace="monitoring-agents", storage_class="gp3", attributes_classes={}, bucket_name=BUCKET,
                bucket_region=REGION, role_arn=role_arn, alertmanager_url=ALERTMANAGER,
                agent_role_name="logging-alloy-pod-discovery",
            ),
        )
        return logging.loki_push_url.apply(lambda url: outputs.update(loki_push=url))

    program()
    # Checked once the run is over: every registration has reached the mocks by then.
    check(mocks.resources, outputs["loki_push"])


def _releases(resources) -> dict[str, dict]:
    return {r.inputs["chart"]: r.inputs for r in resources if r.typ == "kubernetes:helm.sh/v3:Release"}


def test_component_registers_loki_and_alloy_with_pinned_charts_and_the_role_arn():
    def check(resources, loki_push):
        assert resources, "the component registered nothing"
        releases = _releases(resources)
        assert set(releases) == {"loki", "alloy"}
        assert sorted(r.name for r in resources if r.typ == "kubernetes:helm.sh/v3:Release") == [
            "logging-agent", "logging-loki"]
        for chart, namespace in ((LOKI, "monitoring"), (ALLOY, "monitoring-agents")):
            assert releases[chart.name]["version"] == chart.version
            assert releases[chart.name]["repositoryOpts"]["repo"] == chart.repo
            assert releases[chart.name]["namespace"] == namespace
        # Alloy's service account may discover pods, and nothing else (the chart's role would read Secrets).
        (role,) = [r for r in resources if r.typ == "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"]
        assert role.inputs["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
        (binding,) = [r for r in resources if r.typ == "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"]
        assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": "alloy", "namespace": "monitoring-agents"}]
        assert releases["alloy"]["values"]["rbac"] == {"create": False}
        loki = releases["loki"]["values"]
        assert loki["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE_ARN
        assert loki["loki"]["storage"]["bucketNames"]["chunks"] == BUCKET
        assert PUSH == loki_push
        assert PUSH in releases["alloy"]["values"]["alloy"]["configMap"]["content"]
        (configmap,) = [r for r in resources if r.typ == "kubernetes:core/v1:ConfigMap"]
        assert configmap.name == "logging-loki-rules"
        assert configmap.inputs["metadata"]["labels"][RULES_CONFIGMAP_LABEL] == RULES_CONFIGMAP_LABEL_VALUE
        rules = yaml.safe_load(configmap.inputs["data"]["webhook-logs.yaml"])
        assert rules == {"groups": loki_rule_groups(settings)}
        (component,) = [r for r in resources if r.typ == "webhook-monitoring:logging:Logging"]
        assert component.name == "logging"

    settings = minimal_settings()
    _run_component(settings, check)


def test_component_installs_promtail_when_selected():
    def check(resources, _):
        releases = _releases(resources)
        assert set(releases) == {"loki", "promtail"}
        assert releases["promtail"]["version"] == PROMTAIL.version
        assert yaml.safe_load(releases["promtail"]["values"]["config"]["file"])["clients"] == [{"url": PUSH}]

    _run_component(minimal_settings(logging={"agent": "promtail"}), check)
