"""What the program intends, asserted on what the charts make of its values (testkit/chart_check.py).

Each check reads the objects `helm template` produced for one stack and fails with a message
naming the object and the value. Expected values come from the settings and the program's own
constants, never from the chart output itself.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from components.alerting import CONFIG_KEY as ALERTMANAGER_CONFIG_KEY
from monitoring import ha_tracker, versions, web_auth
from monitoring.grafana import (
    ADMIN_PASSWORD_KEY,
    ADMIN_RESET_CONTAINER,
    ADMIN_USER_KEY,
    CLUSTER_ISSUER_ANNOTATION,
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    FOLDER_ANNOTATION,
    SIDECAR_RULES,
)
from monitoring.helm.kube_prometheus_stack import fullname, remote_write, retention_size
from monitoring.capacity import loki_replication_factor
from monitoring.capacity import mimir_replication_factor as replication_factor
from monitoring.helm.mimir import MIMIR_SERVICE_ACCOUNT, mimir_urls
from monitoring.helm.mimir import fullname as mimir_fullname
from monitoring.logging.loki import LOKI_SERVICE_ACCOUNT, SCHEMA
from monitoring.rules.alerts import CHART_GUARD_ALERTS
from monitoring.rules.config import rule_config
from monitoring.scrape import BLACKBOX_MODULES
from monitoring.security import PROBE_EXCEPTIONS
from tools.go_tools import binary
from tools.templating import StackOutput
from testkit import rotation
from testkit.k8s import granted_rules, label_selector_matches, pod_template

KPS = versions.KUBE_PROMETHEUS_STACK.name
CRDS = versions.PROMETHEUS_OPERATOR_CRDS.name
MIMIR = versions.MIMIR.name


@dataclass(frozen=True)
class Check:
    name: str
    chart: Optional[str]
    """The release whose output it reads (skipped with it); None: every release templated."""
    run: Callable[[StackOutput], None]

    def applies(self, output: StackOutput) -> bool:
        return self.chart is None or self.chart in output.releases

    def skip_reason(self, output: StackOutput) -> Optional[str]:
        """Why the check cannot run on this stack's output (None when it can)."""
        if self.chart is None:
            return output.unavailable()
        if self.chart not in output.releases:
            return f"stack {output.stack} installs no {self.chart}"
        return output.releases[self.chart].skipped


CHECKS: list[Check] = []


def check(chart: Optional[str]) -> Callable[[Callable[[StackOutput], None]], Callable[[StackOutput], None]]:
    def register(function: Callable[[StackOutput], None]) -> Callable[[StackOutput], None]:
        CHECKS.append(Check(function.__name__, chart, function))
        return function
    return register


def equal(what: str, actual: Any, expected: Any) -> None:
    assert actual == expected, f"{what}: {actual!r}, expected {expected!r}"


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict, name: str) -> dict:
    found = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    assert found, f"{workload['kind']} {workload['metadata']['name']} has no container {name}"
    return found[0]


def program_object(output: StackOutput, kind: str, name: str) -> dict:
    found = [o for o in output.program if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"the program registers no {kind} {name}"
    return found[0]


# ------------------------------------------------------------------------------ the Operator's CRDs


OPERATOR_VERSION_ANNOTATION = "operator.prometheus.io/version"


@check(CRDS)
def the_operators_crds_are_their_own_releases_at_the_operators_version_and_kept(output: StackOutput) -> None:
    crds = output.objects(CRDS, "CustomResourceDefinition")
    assert {c["spec"]["group"] for c in crds} == {"monitoring.coreos.com"}, "no Operator CRDs in the CRDs release"
    for crd in crds:
        annotations = crd["metadata"].get("annotations") or {}
        equal(f"{crd['metadata']['name']} resource policy", annotations.get("helm.sh/resource-policy"), "keep")
    if output.releases[KPS].skipped:
        return
    # The version of the Operator the stack runs is its image's tag.
    (operator,) = [d for d in output.objects(KPS, "Deployment") if d["metadata"]["name"].endswith("-operator")]
    tag = container(operator, "kube-prometheus-stack").get("image", "").rsplit(":", 1)[-1]
    for crd in crds:
        equal(f"{crd['metadata']['name']} Operator version", f"v{crd['metadata']['annotations'][OPERATOR_VERSION_ANNOTATION]}", tag)
    # kube-prometheus-stack brings no CRD and no job applying them (and so pulls no kubectl image for it).
    equal("CRDs in kube-prometheus-stack's output", output.objects(KPS, "CustomResourceDefinition"), [])
    jobs = [j["metadata"]["name"] for j in output.objects(KPS, "Job")]
    assert not [j for j in jobs if "crd" in j], f"a CRD job in kube-prometheus-stack's output: {jobs}"


# ------------------------------------------------------------------------------ Prometheus


@check(KPS)
def prometheus_keeps_the_hot_tier_as_configured(output: StackOutput) -> None:
    p = output.settings.prometheus
    spec = output.one(KPS, "Prometheus")["spec"]
    equal("Prometheus retention", spec["retention"], p.retention.text)
    equal("Prometheus retentionSize", spec["retentionSize"], retention_size(output.settings))
    equal("Prometheus replicas", spec["replicas"], p.replicas)
    claim = spec["storage"]["volumeClaimTemplate"]["spec"]
    equal("Prometheus volume class", claim["storageClassName"], output.settings.storage.class_name)
    equal("Prometheus volume size", claim["resources"]["requests"]["storage"], p.volume_size.text)
    equal("Prometheus external labels", spec["externalLabels"],
          {"cluster": output.settings.cluster.name, "environment": output.settings.environment})
    equal("Prometheus image", spec["image"], f"quay.io/prometheus/prometheus:{versions.PROMETHEUS_IMAGE_TAG}")


@check(KPS)
def prometheus_replicas_all_write_to_the_long_term_store_labelled_for_deduplication(output: StackOutput) -> None:
    push_url = mimir_urls(MIMIR, output.settings.namespace)[0]
    (queue,) = output.one(KPS, "Prometheus")["spec"]["remoteWrite"]
    expected = remote_write(output.settings, push_url)
    equal("remote write URL", queue["url"], push_url)
    equal("remote write relabelling", queue["writeRelabelConfigs"], expected["writeRelabelConfigs"])
    equal("remote write queue", queue["queueConfig"], expected["queueConfig"])
    spec = output.one(KPS, "Prometheus")["spec"]
    equal("replica label", spec["replicaExternalLabelName"], ha_tracker.REPLICA_LABEL)
    if ha_tracker.enabled(output.settings):
        # What Mimir's HA tracker reads reaches it: the replica label is not relabelled away.
        assert all(c.get("regex") != ha_tracker.REPLICA_LABEL for c in queue["writeRelabelConfigs"]), queue
        tracker = program_object(output, "Deployment", ha_tracker.NAME)
        equal("HA tracker store replicas", tracker["spec"]["replicas"], 1)


def _selected(selector: dict, namespace_selector: dict, obj: dict) -> bool:
    namespace = obj["metadata"].get("namespace", "")
    return (label_selector_matches(namespace_selector, {"kubernetes.io/metadata.name": namespace})
            and label_selector_matches(selector, obj["metadata"].get("labels") or {}))


@check(KPS)
def prometheus_selects_every_monitor_and_rule_of_the_stack_and_no_other_teams(output: StackOutput) -> None:
    spec = output.one(KPS, "Prometheus")["spec"]
    for kind, field in (("ServiceMonitor", "serviceMonitor"), ("PodMonitor", "podMonitor"),
                        ("PrometheusRule", "rule"), ("Probe", "probe")):
        objects = output.objects(kind=kind)
        for obj in objects:
            owner = "the program" if obj in output.program else "a chart"
            assert _selected(spec[f"{field}Selector"], spec[f"{field}NamespaceSelector"], obj), \
                f"{kind} {obj['metadata']['name']} (from {owner}) is not selected by the Prometheus {field}Selector"
        other_team = {"metadata": {"namespace": "payments", "labels": {"team": "payments", "release": KPS}}}
        assert not _selected(spec[f"{field}Selector"], spec[f"{field}NamespaceSelector"], other_team), \
            f"another team's {kind} would be selected"
    assert output.objects(kind="ServiceMonitor") and output.objects(kind="PrometheusRule")


# ------------------------------------------------------------------------------ Alertmanager


@check(KPS)
def alertmanager_runs_the_programs_configuration_and_nothing_else(output: StackOutput) -> None:
    am = output.settings.alerting.alertmanager
    spec = output.one(KPS, "Alertmanager")["spec"]
    equal("Alertmanager retention", spec["retention"], am.retention.hours)
    equal("Alertmanager replicas", spec["replicas"], am.replicas)
    equal("Alertmanager image", spec["image"], f"quay.io/prometheus/alertmanager:{versions.ALERTMANAGER_IMAGE_TAG}")
    secret = program_object(output, "Secret", spec["configSecret"])
    assert ALERTMANAGER_CONFIG_KEY in secret["stringData"], f"Secret {spec['configSecret']} holds no {ALERTMANAGER_CONFIG_KEY}"
    # The chart renders no configuration of its own beside the program's Secret.
    chart_secrets = [s["metadata"]["name"] for s in output.objects(KPS, "Secret") if "alertmanager" in s["metadata"]["name"]]
    equal("Alertmanager Secrets of the chart", chart_secrets, [])
    # No AlertmanagerConfig, of any labels, in any namespace (its own included), changes the routing.
    for namespace in (output.settings.namespace, "webhook-delivery", "kube-system"):
        for labels in ({}, {"team": output.settings.team_label}, {"release": KPS}):
            candidate = {"metadata": {"namespace": namespace, "labels": labels}}
            assert not _selected(spec["alertmanagerConfigSelector"], spec["alertmanagerConfigNamespaceSelector"] or {
                "matchLabels": {"kubernetes.io/metadata.name": output.settings.namespace}}, candidate), \
                f"an AlertmanagerConfig labelled {labels} in {namespace} would be merged into the routing"


def _chart_alerts(output: StackOutput) -> dict[str, list[dict]]:
    """The alert rules of the chart's PrometheusRules, by rule group name."""
    return {group["name"]: [r for r in group["rules"] if "alert" in r]
            for rule in output.objects(KPS, "PrometheusRule") for group in rule["spec"]["groups"]}


@check(KPS)
def the_charts_pipeline_alerts_are_the_teams_with_our_runbooks(output: StackOutput) -> None:
    team, config = output.settings.team_label, rule_config(output.settings)
    groups = _chart_alerts(output)
    by_name = {rule["alert"]: (group, rule) for group, rules in groups.items() for rule in rules}
    for name in CHART_GUARD_ALERTS:
        assert name in by_name, f"the chart renders no alert {name} (renamed or disabled?)"
        equal(f"{name} runbook", by_name[name][1]["annotations"]["runbook_url"], config.runbook_url(name))
    for group, rules in groups.items():
        for rule in rules:
            owned = group in ("prometheus", "alertmanager.rules")
            equal(f"team label of the chart's {rule['alert']} ({group})", rule["labels"].get("team"), team if owned else None)


def _expected_receiver(output: StackOutput, labels: dict[str, str], receivers: set[str]) -> str:
    """Who an alert must reach, from its labels: the routing decision of docs/alerting.md, restated."""
    severity = labels.get("severity", "")
    if labels["alertname"] == "Watchdog":
        return "heartbeat" if "heartbeat" in receivers else "null"
    if labels["alertname"] == "InfoInhibitor" or severity in ("none", "info"):
        return "null"
    if labels.get("team") == output.settings.team_label:
        return "pagerduty" if severity == "critical" and "pagerduty" in receivers else "slack"
    return "platform-pagerduty" if severity == "critical" and "platform-pagerduty" in receivers else "platform"


@check(KPS)
def every_alert_of_the_stack_reaches_its_owner_through_amtool(output: StackOutput) -> None:
    """Every alert rule the stack deploys (the chart's and ours), routed by the real amtool through the
    program's Alertmanager configuration. Routing reads alertname, severity and team only (and a
    notifier failure's `integration`, a label of the metric, not of the rule): one amtool run per
    distinct combination."""
    spec = output.one(KPS, "Alertmanager")["spec"]
    config = yaml.safe_load(program_object(output, "Secret", spec["configSecret"])["stringData"][ALERTMANAGER_CONFIG_KEY])
    receivers = {r["name"] for r in config["receivers"]}
    rules = [r for rule in output.objects(kind="PrometheusRule") for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    special = {"Watchdog", "InfoInhibitor"}
    combinations = {tuple(sorted({"alertname": r["alert"] if r["alert"] in special else "AnyAlert",
                                  **{k: v for k, v in r.get("labels", {}).items() if k in ("severity", "team")}}.items()))
                    for r in rules}
    assert {"InfoInhibitor", "Watchdog"} <= {dict(c)["alertname"] for c in combinations}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / ALERTMANAGER_CONFIG_KEY
        path.write_text(yaml.safe_dump(config))
        for combination in sorted(combinations):
            labels = dict(combination)
            result = subprocess.run([binary("amtool"), "config", "routes", "test", f"--config.file={path}",
                                     *[f"{k}={v}" for k, v in labels.items()]], capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
            equal(f"receiver of {labels}", result.stdout.strip(), _expected_receiver(output, labels, receivers))


# ------------------------------------------------------------------------------ Grafana


def _grafana(output: StackOutput) -> dict:
    return output.one(KPS, "Deployment", f"{fullname(output.settings)}-grafana")


def _mounted_files(workload: dict, container_name: str, output: StackOutput) -> dict[str, str]:
    """path -> `secret/key` of every key of every Secret volume mounted in the workload's container,
    the Secret being one the program makes."""
    volumes = {v["name"]: v["secret"]["secretName"] for v in pod_spec(workload).get("volumes") or [] if "secret" in v}
    files = {}
    for mount in container(workload, container_name).get("volumeMounts", []):
        if mount["name"] in volumes:
            secret = program_object(output, "Secret", volumes[mount["name"]])
            for key in secret.get("stringData") or {}:
                files[f"{mount['mountPath']}/{key}"] = f"{volumes[mount['name']]}/{key}"
    return files


@check(KPS)
def grafana_takes_its_admin_and_sso_secrets_by_reference(output: StackOutput) -> None:
    deployment = _grafana(output)
    env = {e["name"]: e for e in container(deployment, "grafana").get("env", [])}
    admin = program_object(output, "Secret", env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"])
    equal("admin password key", env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"], ADMIN_PASSWORD_KEY)
    equal("admin user key", env["GF_SECURITY_ADMIN_USER"]["valueFrom"]["secretKeyRef"]["key"], ADMIN_USER_KEY)
    assert set(admin["stringData"]) == {ADMIN_USER_KEY, ADMIN_PASSWORD_KEY}
    ini = output.one(KPS, "ConfigMap", f"{fullname(output.settings)}-grafana")["data"]["grafana.ini"]
    files = _mounted_files(deployment, "grafana", output)
    sso = output.settings.grafana.sso
    assert "[auth.anonymous]\nenabled = false" in ini, "anonymous access is not off"
    if sso is None:
        assert "[auth.generic_oauth]" not in ini
        return
    for line in (f"client_id = {sso.client_id}", f"auth_url = {sso.auth_url}", f"token_url = {sso.token_url}",
                 f"role_attribute_strict = {str(sso.strict_role_mapping).lower()}", "use_pkce = true"):
        assert line in ini, f"grafana.ini lacks `{line}`"
    secret_line = next(line for line in ini.splitlines() if line.startswith("client_secret = "))
    path = secret_line.removeprefix("client_secret = $__file{").removesuffix("}")
    assert path in files and files[path].endswith("/client-secret"), f"the SSO client secret file {path} is not mounted"
    assert not any("CLIENT_SECRET" in name for name in env), "the SSO client secret is in an environment variable"


@check(KPS)
def grafana_resets_its_admin_password_from_the_secret_before_it_starts(output: StackOutput) -> None:
    deployment = _grafana(output)
    grafana = container(deployment, "grafana")
    (reset,) = [c for c in pod_spec(deployment).get("initContainers", []) if c["name"] == ADMIN_RESET_CONTAINER]
    equal("admin reset image (Grafana's own CLI)", reset["image"], grafana["image"])
    env = {e["name"]: e for e in grafana["env"]}
    reset_env = {e["name"]: e for e in reset["env"]}
    equal("admin reset password source", reset_env["GF_SECURITY_ADMIN_PASSWORD"], env["GF_SECURITY_ADMIN_PASSWORD"])
    equal("admin reset data path", reset_env["GF_PATHS_DATA"]["value"].rstrip("/"), env["GF_PATHS_DATA"]["value"].rstrip("/"))
    mounts = {m["name"]: m for m in grafana["volumeMounts"]}
    for mount in reset["volumeMounts"]:
        equal(f"admin reset mount {mount['name']}", mount, mounts[mount["name"]])
    assert {m["name"] for m in reset["volumeMounts"]} == {"config", "storage"}


@check(KPS)
def grafana_loads_our_dashboards_into_their_folders_from_configmaps(output: StackOutput) -> None:
    sidecar = {e["name"]: e.get("value") for e in container(_grafana(output), "grafana-sc-dashboard")["env"]}
    equal("dashboard sidecar label", (sidecar.get("LABEL"), sidecar.get("LABEL_VALUE")), (DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE))
    equal("dashboard sidecar folder annotation", sidecar.get("FOLDER_ANNOTATION"), FOLDER_ANNOTATION)
    provider = yaml.safe_load(output.one(KPS, "ConfigMap", f"{fullname(output.settings)}-grafana-config-dashboards")["data"]["provider.yaml"])
    (entry,) = provider["providers"]
    equal("dashboard provider folders from files", entry["options"].get("foldersFromFilesStructure"), True)
    equal("dashboard provider path", entry["options"]["path"], sidecar.get("FOLDER"))
    labelled = [o for o in output.program if o["kind"] == "ConfigMap"
                and (o["metadata"].get("labels") or {}).get(DASHBOARD_LABEL) == DASHBOARD_LABEL_VALUE]
    assert labelled and all(FOLDER_ANNOTATION in o["metadata"]["annotations"] for o in labelled)


@check(KPS)
def grafana_data_sources_authenticate_with_mounted_credentials(output: StackOutput) -> None:
    files = _mounted_files(_grafana(output), "grafana", output)
    provisioning = yaml.safe_load(output.one(KPS, "ConfigMap", f"{fullname(output.settings)}-grafana-datasource")["data"]["datasource.yaml"])
    for entry in provisioning["datasources"]:
        if entry["uid"] not in ("prometheus", "alertmanager"):
            continue
        server = {"prometheus": web_auth.PROMETHEUS, "alertmanager": web_auth.ALERTMANAGER}[entry["uid"]]
        assert entry.get("basicAuth") is True and entry["basicAuthUser"] == "grafana", f"{entry['uid']} without basic auth"
        path = entry["secureJsonData"]["basicAuthPassword"].removeprefix("$__file{").removesuffix("}")
        equal(f"{entry['uid']} password file", files.get(path),
              f"{server.resource_name('client', 'grafana')}/{web_auth.PASSWORD_KEY}")


@check(KPS)
def grafana_ingress_serves_tls_with_a_certificate_cert_manager_issues(output: StackOutput) -> None:
    g = output.settings.grafana
    ingress = output.one(KPS, "Ingress", f"{fullname(output.settings)}-grafana")
    equal("Grafana ingress TLS", ingress["spec"]["tls"], [{"hosts": [g.host], "secretName": g.tls_secret}])
    equal("Grafana ingress hosts", [r["host"] for r in ingress["spec"]["rules"]], [g.host])
    annotations = ingress["metadata"].get("annotations") or {}
    equal("Grafana ingress issuer", annotations.get(CLUSTER_ISSUER_ANNOTATION), g.cluster_issuer)


@check(KPS)
def grafana_is_replaced_not_surged_on_its_single_volume(output: StackOutput) -> None:
    deployment = _grafana(output)
    equal("Grafana replicas", deployment["spec"]["replicas"], 1)
    equal("Grafana update strategy", deployment["spec"]["strategy"], {"type": "Recreate"})
    claim = output.one(KPS, "PersistentVolumeClaim", f"{fullname(output.settings)}-grafana")
    equal("Grafana volume access", claim["spec"]["accessModes"], ["ReadWriteOnce"])


@check(KPS)
def grafana_reads_configmaps_of_its_namespace_and_no_secret(output: StackOutput) -> None:
    namespace = output.settings.namespace
    deployment = _grafana(output)
    account = pod_spec(deployment)["serviceAccountName"]
    rules = granted_rules(output.objects(), namespace, account)
    equal(f"RBAC of Grafana's service account {account}", rules, [(namespace, rule) for rule in SIDECAR_RULES])
    for sidecar in ("grafana-sc-dashboard", "grafana-sc-datasources"):
        env = {e["name"]: e.get("value") for e in container(deployment, sidecar).get("env", [])}
        # Unset, it is the pod's own namespace.
        assert env.get("NAMESPACE") in (None, namespace), f"{sidecar} watches namespace {env['NAMESPACE']}"
        equal(f"{sidecar} resource", env.get("RESOURCE"), "configmap")


# ------------------------------------------------------------------------------ Loki


def _loki_config(output: StackOutput) -> dict:
    return yaml.safe_load(output.one("loki", "ConfigMap", "loki")["data"]["config.yaml"])


@check("loki")
def loki_keeps_logs_for_the_retention_in_the_logs_bucket(output: StackOutput) -> None:
    config = _loki_config(output)
    logging = output.settings.logging
    equal("Loki retention", config["limits_config"]["retention_period"], logging.retention.hours)
    equal("Loki compactor", {k: config["compactor"][k] for k in ("retention_enabled", "delete_request_store")},
          {"retention_enabled": True, "delete_request_store": "s3"})
    assert "table_manager" not in config, "the deprecated table manager is configured"
    s3 = config["common"]["storage"]["s3"]
    equal("Loki S3 bucket", s3["bucketnames"], output.releases["loki"].values["loki"]["storage"]["bucketNames"]["chunks"])
    equal("Loki S3 region", s3["region"], output.settings.cluster.region)
    assert "access_key_id" not in s3 and "secret_access_key" not in s3, "Loki reaches S3 with static keys, not IRSA"
    equal("Loki schema", config["schema_config"]["configs"], [SCHEMA])


@check("loki")
def loki_ruler_reads_the_programs_rules_and_calls_the_api_of_no_one(output: StackOutput) -> None:
    ruler = _loki_config(output)["ruler"]
    equal("Loki ruler Alertmanager", ruler["alertmanager_url"], f"http://{fullname(output.settings)}-alertmanager."
          f"{output.settings.namespace}.svc.cluster.local:9093")
    equal("Loki ruler storage", ruler["storage"], {"type": "local", "local": {"directory": "/rules"}})
    workload = next(o for o in output.objects("loki", "StatefulSet") if o["metadata"]["name"] in ("loki", "loki-backend"))
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    mount = next(m for m in container(workload, pod_spec(workload)["containers"][0]["name"])["volumeMounts"]
                 if m["mountPath"] == "/rules/fake")
    rules = program_object(output, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    assert rules["data"], "the ruler's rules ConfigMap is empty"
    # No Loki pod holds an API token, and no role grants Loki's service account anything.
    for pod in output.objects("loki", "StatefulSet") + output.objects("loki", "Deployment"):
        assert pod_spec(pod).get("automountServiceAccountToken") is False or \
            pod_spec(pod).get("serviceAccountName") != LOKI_SERVICE_ACCOUNT, f"{pod['metadata']['name']} mounts an API token"
    equal("Loki's RBAC", granted_rules(output.objects(), output.settings.namespace, LOKI_SERVICE_ACCOUNT), [])
    equal("Loki's RBAC objects", [o["kind"] for o in output.objects("loki") if "Role" in o["kind"]], [])


@check("loki")
def loki_runs_the_deployment_mode_of_the_environment(output: StackOutput) -> None:
    logging = output.settings.logging
    sets = {o["metadata"]["name"]: o for o in output.objects("loki", "StatefulSet") + output.objects("loki", "Deployment")}
    if logging.mode == "Monolithic":
        equal("Loki single binary replicas", sets["loki"]["spec"]["replicas"], logging.replicas)
        assert not {"loki-read", "loki-write", "loki-backend"} & set(sets), "SimpleScalable targets run beside the single binary"
        return
    # The write path keeps `replicas` copies of each stream; reading and the backend run two (monitoring/logging/loki.py).
    for target, replicas in (("loki-write", logging.replicas), ("loki-read", min(logging.replicas, 2)),
                             ("loki-backend", min(logging.replicas, 2))):
        equal(f"{target} replicas", sets[target]["spec"]["replicas"], replicas)
    assert "loki" not in sets, "the single binary runs beside the SimpleScalable targets"
    policy = sets["loki-backend"]["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    if output.settings.protect:
        # Absent: Kubernetes' default, Retain.
        equal("loki-backend volume retention", {k: policy.get(k, "Retain") for k in ("whenScaled", "whenDeleted")},
              {"whenScaled": "Retain", "whenDeleted": "Retain"})


@check("loki")
def loki_reaches_s3_through_its_irsa_role(output: StackOutput) -> None:
    account = output.one("loki", "ServiceAccount", LOKI_SERVICE_ACCOUNT)
    assert account["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "").startswith("arn:aws:iam::"), \
        "the loki service account carries no IRSA role"
    for workload in output.objects("loki", "StatefulSet") + output.objects("loki", "Deployment"):
        if workload["metadata"]["name"].startswith(("loki-read", "loki-write", "loki-backend")) or workload["metadata"]["name"] == "loki":
            equal(f"{workload['metadata']['name']} service account", pod_spec(workload)["serviceAccountName"], LOKI_SERVICE_ACCOUNT)


# ------------------------------------------------------------------------------ log agent and probes


@check("alloy")
def alloy_runs_on_every_node_with_the_rendered_pipeline(output: StackOutput) -> None:
    daemonset = output.one("alloy", "DaemonSet")
    spec = pod_spec(daemonset)
    assert {"operator": "Exists"} in spec.get("tolerations", []), "Alloy does not tolerate every taint"
    assert any(v.get("hostPath", {}).get("path") == "/var/log" for v in spec["volumes"]), "Alloy does not mount /var/log"
    content = output.releases["alloy"].values["alloy"]["configMap"]["content"]
    # The chart trims the trailing newline.
    equal("Alloy configuration", output.one("alloy", "ConfigMap", "alloy")["data"]["config.alloy"], content.rstrip("\n"))


@check("promtail")
def promtail_runs_on_every_node_with_the_rendered_pipeline(output: StackOutput) -> None:
    daemonset = output.one("promtail", "DaemonSet")
    assert {"operator": "Exists"} in pod_spec(daemonset).get("tolerations", []), "Promtail does not tolerate every taint"
    secret = output.one("promtail", "Secret")
    equal("Promtail configuration", secret["stringData"]["promtail.yaml"],
          output.releases["promtail"].values["config"]["file"])


@check(versions.BLACKBOX_EXPORTER.name)
def blackbox_exporter_offers_the_probe_modules(output: StackOutput) -> None:
    chart = versions.BLACKBOX_EXPORTER.name
    config = yaml.safe_load(output.one(chart, "ConfigMap")["data"]["blackbox.yaml"])
    equal("blackbox modules", config["modules"], BLACKBOX_MODULES)
    image = container(output.one(chart, "Deployment"), "blackbox-exporter")["image"]
    equal("blackbox exporter image", image, f"quay.io/prometheus/blackbox-exporter:{versions.BLACKBOX_EXPORTER_IMAGE_TAG}")
    for probe in output.objects(kind="Probe"):
        assert probe["spec"]["module"] in config["modules"], f"Probe {probe['metadata']['name']} uses an unknown module"


# ------------------------------------------------------------------------------ Mimir


def _mimir_config(output: StackOutput) -> dict:
    """Mimir's configuration file, wherever the chart keeps it (ConfigMap or Secret)."""
    for holder in output.objects(MIMIR, "ConfigMap") + output.objects(MIMIR, "Secret"):
        for text in (holder.get("data") or {}).values() if holder["kind"] == "ConfigMap" else (holder.get("stringData") or {}).values():
            try:
                config = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(config, dict) and "blocks_storage" in config:
                return config
    raise AssertionError("no Mimir configuration (a file with blocks_storage) in the chart's output")


@check(MIMIR)
def mimir_keeps_blocks_in_the_metrics_bucket_for_the_cold_retention(output: StackOutput) -> None:
    config = _mimir_config(output)
    lts = output.settings.long_term_storage
    s3 = config["blocks_storage"]["s3"]
    equal("Mimir bucket", s3["bucket_name"], output.releases[MIMIR].values["mimir"]["structuredConfig"]["blocks_storage"]["s3"]["bucket_name"])
    equal("Mimir region", s3["region"], output.settings.cluster.region)
    equal("Mimir retention", config["limits"]["compactor_blocks_retention_period"], lts.retention.hours)
    assert not (config.get("ingest_storage") or {}).get("enabled"), "Mimir runs Kafka-based ingest storage"
    account = output.one(MIMIR, "ServiceAccount", MIMIR_SERVICE_ACCOUNT)
    assert "eks.amazonaws.com/role-arn" in account["metadata"].get("annotations", {}), "Mimir's service account has no IRSA role"


@check(MIMIR)
def mimir_gateway_answers_where_prometheus_and_grafana_look(output: StackOutput) -> None:
    push_url, query_url = mimir_urls(MIMIR, output.settings.namespace)
    host, port = push_url.split("//")[1].split("/")[0].split(":")
    service = output.one(MIMIR, "Service", host.split(".")[0])
    assert int(port) in [p["port"] for p in service["spec"]["ports"]], f"Service {host} does not serve port {port}"


# ------------------------------------------------------------------------------ pod security


def _workloads(output: StackOutput) -> list[tuple[str, dict, dict]]:
    """(namespace, workload, pod spec) of every workload templated or registered by the program."""
    found = []
    for release in [*output.releases.values(), None]:
        objects = output.program if release is None else release.objects
        for obj in objects:
            template = pod_template(obj)
            if template is not None:
                namespace = obj["metadata"].get("namespace") or (release.namespace if release else "default")
                found.append((namespace, obj, template["spec"]))
    return found


@check(None)
def every_replicated_workload_lets_a_node_rotation_proceed_and_survives_a_zone(output: StackOutput) -> None:
    """A managed node group upgrade drains every node without PodEvictionFailure, no drain or node loss
    breaks a quorum, and no zone's loss breaks a store's (testkit/rotation.py); replicas not pinned to
    zones are spread over them."""
    placed = [(namespace, obj) for namespace, obj, _ in _workloads(output)]
    placed += [(o["metadata"]["namespace"], o) for o in output.objects(KPS, "Prometheus") + output.objects(KPS, "Alertmanager")]
    placed += [(o["metadata"].get("namespace") or r.namespace, o) for r in output.releases.values()
               for o in r.objects if o["kind"] == "PodDisruptionBudget"]
    found = rotation.workloads(placed)
    problems = rotation.problems(found, output.settings.cluster.availability_zones, _quorum(output))
    assert not problems, "\n".join(problems)
    for workload in found:
        for pods in workload.pods:
            assert pods.spec.get("nodeSelector", {}).get(rotation.ZONE) or any(
                c["topologyKey"] == rotation.ZONE and label_selector_matches(c["labelSelector"], pods.labels)
                for c in pods.spec.get("topologySpreadConstraints") or []), f"{workload.name}: {pods.where} is not spread over zones"
    names = {w.name.split("/", 1)[1] for w in found}
    if output.settings.is_prod and KPS in output.releases:
        assert {f"{fullname(output.settings)}-prometheus", f"{fullname(output.settings)}-alertmanager"} <= names, names
        if MIMIR in output.releases and replication_factor(output.settings) == 3:
            assert f"{mimir_fullname(output.releases[MIMIR].name)}-ingester" in names, names


def _quorum(output: StackOutput) -> dict[str, int]:
    """Pods each store needs up: a majority of its replication factor where writes need one (Mimir's
    ingesters, Loki's write path); one elsewhere (a full copy, or any replica, serves)."""
    settings, namespace = output.settings, output.settings.namespace
    quorum = {}
    if MIMIR in output.releases:
        quorum[f"{namespace}/{mimir_fullname(output.releases[MIMIR].name)}-ingester"] = replication_factor(settings) // 2 + 1
    if "loki" in output.releases:
        quorum[f"{namespace}/loki-write"] = loki_replication_factor(settings) // 2 + 1
    return quorum


@check(None)
def every_container_has_requests_a_memory_limit_and_probes(output: StackOutput) -> None:
    for namespace, workload, spec in _workloads(output):
        long_running = workload["kind"] not in ("Job", "CronJob", "Pod")
        for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
            where = f"{workload['kind']} {namespace}/{workload['metadata']['name']} container {container['name']}"
            resources = container.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            assert requests.get("cpu") and requests.get("memory") and limits.get("memory"), \
                f"{where} lacks a CPU or memory request or a memory limit: {resources}"
            if long_running and container in spec["containers"] and container["name"] not in PROBE_EXCEPTIONS:
                assert container.get("livenessProbe") and container.get("readinessProbe"), f"{where} has no probes"


# ------------------------------------------------------------------------------ authentication


def _proxied(output: StackOutput, kind: str, server: web_auth.ProtectedServer) -> None:
    spec = output.one(KPS, kind)["spec"]
    assert spec.get("listenLocal") is True, f"{kind} listens on the pod's address, bypassing its proxy"
    (proxy,) = [c for c in spec["containers"] if c["name"] == server.container]
    equal(f"{kind} proxy image", proxy["image"], versions.AUTH_PROXY_IMAGE)
    equal(f"{kind} proxy port", [p["containerPort"] for p in proxy["ports"]], [server.proxy_port])
    volumes = {v["name"]: v for v in spec["volumes"]}
    config = program_object(output, "ConfigMap", volumes[f"{server.name}-auth-config"]["configMap"]["name"])
    assert f"proxy_pass http://127.0.0.1:{server.upstream_port};" in config["data"][web_auth.CONFIG_FILE]
    users = program_object(output, "Secret", volumes[f"{server.name}-auth-users"]["secret"]["secretName"])
    assert web_auth.USERS_FILE in users["stringData"]
    service = output.one(KPS, "Service", f"{fullname(output.settings)}-{server.name}")
    web = next(p for p in service["spec"]["ports"] if p["name"] == "http-web")
    equal(f"{kind} Service target port", web["targetPort"], server.proxy_port)
    # Its metrics are scraped through the proxy, with Prometheus' credentials, by the program's monitor.
    (monitor,) = [m for m in output.program if m["kind"] == "ServiceMonitor"
                  and m["spec"]["selector"]["matchLabels"] == {"app": service["metadata"]["labels"]["app"],
                                                               "release": output.releases[KPS].name}]
    refs = monitor["spec"]["endpoints"][0]["basicAuth"]
    program_object(output, "Secret", refs["password"]["name"])
    assert label_selector_matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert not [m for m in output.objects(KPS, "ServiceMonitor") if m["metadata"]["name"] == service["metadata"]["name"]], \
        f"the chart still scrapes {kind} without credentials"


@check(KPS)
def prometheus_is_reached_only_through_its_authenticating_proxy(output: StackOutput) -> None:
    _proxied(output, "Prometheus", web_auth.PROMETHEUS)
    (endpoint,) = output.one(KPS, "Prometheus")["spec"]["alerting"]["alertmanagers"]
    program_object(output, "Secret", endpoint["basicAuth"]["password"]["name"])
    equal("alerting credentials", endpoint["basicAuth"], web_auth.basic_auth_refs(web_auth.ALERTMANAGER, "prometheus"))


@check(KPS)
def alertmanager_is_reached_only_through_its_authenticating_proxy(output: StackOutput) -> None:
    _proxied(output, "Alertmanager", web_auth.ALERTMANAGER)
    (server,) = [c for c in output.one(KPS, "Alertmanager")["spec"]["containers"] if c["name"] == "alertmanager"]
    assert server["livenessProbe"] and server["readinessProbe"], "Alertmanager is not probed on localhost"


@check("loki")
def loki_ruler_authenticates_to_alertmanager(output: StackOutput) -> None:
    client = _loki_config(output)["ruler"]["alertmanager_client"]
    ruler = next(o for o in output.objects("loki", "StatefulSet") if o["metadata"]["name"] in ("loki", "loki-backend"))
    files = _mounted_files(ruler, pod_spec(ruler)["containers"][0]["name"], output)
    equal("Loki ruler credentials", (client["type"], files.get(client["credentials_file"])),
          ("Basic", f"{web_auth.ALERTMANAGER.resource_name('client', 'loki')}/{web_auth.BASIC_CREDENTIALS_KEY}"))

