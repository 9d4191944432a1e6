"""The one view of a rendered stack: everything the program registers for a stack, and the files
`make render` writes from it.

A `RenderedStack` is built from a mock run of the program (`from_run`) or read back from the
`resources.json` of a rendered folder (`load`): every other view (Helm values per release, rule
groups, the Alertmanager configuration, dashboards, the log agents' configurations, the program's
own Kubernetes objects) is derived from the registered resources, so a render, `make verify`, the
chart templating, the live harness and the load benchmark all read the same thing. Secrets are the
render's placeholders: wrapped as `{"__secret__": value}` in `resources`, revealed in every view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

import yaml

from monitoring.grafana import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE, FOLDER_ANNOTATION, FOLDER_JOB_LABELS
from monitoring.logging.loki import RULES_CONFIGMAP_LABEL, RULES_CONFIGMAP_LABEL_VALUE
from monitoring.scrape import MONITOR_LABEL
from monitoring.versions import ALLOY, KUBE_PROMETHEUS_STACK, PROMETHEUS_OPERATOR_CRDS, PROMTAIL
from policy.model import RELEASE, api_version_and_kind
from tools.mock_runtime import Run

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
NAMESPACE = "kubernetes:core/v1:Namespace"
JOB = "kubernetes:batch/v1:Job"
ALERTMANAGER_CONFIG_KEY = "alertmanager.yaml"
FIRST_RELEASES = (PROMETHEUS_OPERATOR_CRDS.name, KUBE_PROMETHEUS_STACK.name)


def reveal(value: Any) -> Any:
    """`resources.json` inputs with each `{"__secret__": value}` replaced by its value."""
    if isinstance(value, dict):
        if list(value) == ["__secret__"]:
            return reveal(value["__secret__"])
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


@dataclass(frozen=True)
class Release:
    """One Helm release as the program installs it."""

    name: str
    chart: str
    version: str
    repo: str
    namespace: str
    values: dict[str, Any]
    """Secrets revealed (placeholders in a render)."""


@dataclass(frozen=True)
class RenderedStack:
    stack: str
    resources: tuple[dict[str, Any], ...]
    """Every registered resource as `resources.json` holds it: type, name, parent, inputs (secrets
    wrapped), and options (protect, retainOnDelete) where set; in URN order."""
    exports: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_run(cls, stack: str, run: Run) -> "RenderedStack":
        return cls(stack, tuple(r.as_json() for r in run.resources), dict(run.exports))

    @classmethod
    def load(cls, directory: Path) -> "RenderedStack":
        """A folder `make render` wrote (`build/<stack>/`)."""
        return cls(directory.name, tuple(json.loads((directory / "resources.json").read_text())))

    # ------------------------------------------------------------------------------ resources

    def of_type(self, type_token: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_token]

    def inputs(self, type_token: str) -> list[dict[str, Any]]:
        """The revealed inputs of every resource of a type."""
        return [reveal(r["inputs"]) for r in self.of_type(type_token)]

    @cached_property
    def releases(self) -> dict[str, Release]:
        """By chart name (the program installs each chart once), in the order the program installs them:
        the CRDs, then kube-prometheus-stack (whose Operator admits the monitors and rules the other
        charts ship), then the rest."""
        found = [Release(i["name"], i["chart"], i["version"], i["repositoryOpts"]["repo"], i["namespace"],
                         i.get("values") or {}) for i in self.inputs(RELEASE)]
        found.sort(key=lambda r: FIRST_RELEASES.index(r.chart) if r.chart in FIRST_RELEASES else len(FIRST_RELEASES))
        return {r.chart: r for r in found}

    def manifests(self, only: str | None = None) -> list[dict[str, Any]]:
        """The Kubernetes objects the program registers itself (not Helm releases, nor what it reads), as
        manifests; `only`: those of that kind."""
        manifests = []
        for resource in self.resources:
            if not resource["type"].startswith("kubernetes:") or resource["type"] == RELEASE or resource.get("read"):
                continue
            api_version, kind = api_version_and_kind(resource["type"])
            if only is not None and kind != only:
                continue
            body = {k: v for k, v in reveal(resource["inputs"]).items() if k not in ("apiVersion", "kind")}
            manifests.append({"apiVersion": api_version, "kind": kind, **body})
        return manifests

    # ------------------------------------------------------------------------------ content

    @cached_property
    def rule_groups(self) -> list[dict[str, Any]]:
        return [g for rule in self.inputs(PROMETHEUS_RULE) for g in rule["spec"]["groups"]]

    @cached_property
    def alertmanager_text(self) -> Optional[str]:
        """The Alertmanager configuration as deployed (the Secret the Operator reads)."""
        return next((data[ALERTMANAGER_CONFIG_KEY] for secret in self.inputs(SECRET)
                     if ALERTMANAGER_CONFIG_KEY in (data := secret.get("stringData") or {})), None)

    @cached_property
    def alertmanager(self) -> dict[str, Any]:
        return yaml.load(self.alertmanager_text or "{}", Loader=yaml.CSafeLoader)

    @cached_property
    def _dashboard_config_maps(self) -> list[dict[str, Any]]:
        return [c for c in self.inputs(CONFIG_MAP)
                if (c["metadata"].get("labels") or {}).get(DASHBOARD_LABEL) == DASHBOARD_LABEL_VALUE]

    @cached_property
    def dashboards(self) -> dict[str, dict[str, Any]]:
        """Dashboard models by UID (from the ConfigMaps Grafana's dashboard sidecar loads)."""
        models = (json.loads(text) for c in self._dashboard_config_maps for text in c["data"].values())
        return {m["uid"]: m for m in sorted(models, key=lambda m: m["uid"])}

    @cached_property
    def dashboard_folders(self) -> dict[str, str]:
        """Dashboard UID -> title of the folder the sidecar puts it in."""
        return {json.loads(text)["uid"]: c["metadata"]["annotations"][FOLDER_ANNOTATION]
                for c in self._dashboard_config_maps for text in c["data"].values()}

    @cached_property
    def folder_permissions(self) -> list[dict[str, str]]:
        """What the folder Job gives every folder: {"role" or "team", "permission"} (monitoring/grafana_folders.py)."""
        for job in self.inputs(JOB):
            if FOLDER_JOB_LABELS.items() <= (job["metadata"].get("labels") or {}).items():
                (container,) = job["spec"]["template"]["spec"]["containers"]
                return json.loads(next(e["value"] for e in container["env"] if e["name"] == "PERMISSIONS"))
        return []

    @cached_property
    def logging(self) -> dict[str, str]:
        """The log agent's configuration in its own format, and the Loki ruler's rules, by file name."""
        configs = {}
        if ALLOY.name in self.releases:
            configs["config.alloy"] = self.releases[ALLOY.name].values["alloy"]["configMap"]["content"]
        if PROMTAIL.name in self.releases:
            configs["promtail.yaml"] = self.releases[PROMTAIL.name].values["config"]["file"]
        for config_map in self.inputs(CONFIG_MAP):
            if (config_map["metadata"].get("labels") or {}).get(RULES_CONFIGMAP_LABEL) == RULES_CONFIGMAP_LABEL_VALUE:
                configs["loki-rules.yaml"] = "".join(config_map["data"].values())
        return configs

    @cached_property
    def service_monitors(self) -> dict[str, dict[str, Any]]:
        """The configured services' ServiceMonitors (those labelling their targets with the monitor's
        name), whole, by name, in the order configured."""
        configured = [m for m in self.manifests("ServiceMonitor") if any(
            relabel.get("targetLabel") == MONITOR_LABEL
            for endpoint in m["spec"]["endpoints"] for relabel in endpoint.get("relabelings") or [])]
        return {m["metadata"]["name"]: m for m in configured}

    @property
    def kube_prometheus_stack(self) -> Release:
        return self.releases[KUBE_PROMETHEUS_STACK.name]

    @property
    def fullname(self) -> str:
        """kube-prometheus-stack's fullname, the prefix of its objects' names: its release name."""
        return self.kube_prometheus_stack.name

    @property
    def prometheus_job(self) -> str:
        """Prometheus' own scrape job: the chart's Service `<fullname>-prometheus`."""
        return f"{self.fullname}-prometheus"

    def prometheus_pod(self, replica: int) -> str:
        """The name the Operator gives a Prometheus replica's pod."""
        return f"prometheus-{self.prometheus_job}-{replica}"

    @property
    def prometheus_spec(self) -> dict[str, Any]:
        return self.kube_prometheus_stack.values["prometheus"]["prometheusSpec"]

    @property
    def alertmanager_spec(self) -> dict[str, Any]:
        return self.kube_prometheus_stack.values["alertmanager"]["alertmanagerSpec"]

    @property
    def namespace(self) -> str:
        """Where the charts run: the namespace label of Prometheus' own targets."""
        return self.kube_prometheus_stack.namespace

    # ------------------------------------------------------------------------------ files

    def files(self) -> dict[str, str]:
        """`build/<stack>/`, path -> text: resources.json, helm/<chart>.yaml, prometheus-rules.yaml,
        alertmanager.yaml, logging/<file>, dashboards/<uid>.json."""
        files = {"resources.json": json.dumps(list(self.resources), indent=2) + "\n"}
        for release in self.releases.values():
            files[f"helm/{release.chart}.yaml"] = dump_yaml(release.values)
        if self.rule_groups:
            files["prometheus-rules.yaml"] = dump_yaml({"groups": self.rule_groups})
        if self.alertmanager_text is not None:
            files[ALERTMANAGER_CONFIG_KEY] = self.alertmanager_text
        for name, text in self.logging.items():
            files[f"logging/{name}"] = text
        # The files Grafana's dashboard sidecar writes, as it writes them.
        files.update(sorted((f"dashboards/{name}", text)
                            for config_map in self._dashboard_config_maps for name, text in config_map["data"].items()))
        return files


class _ReviewDumper(yaml.CSafeDumper):
    """libyaml's safe dumper (several times faster than PyYAML's), with multi-line strings (agent
    configs, embedded files) as literal blocks a reviewer can read and diff line by line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_ReviewDumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_ReviewDumper, sort_keys=True, default_flow_style=False, width=120)
