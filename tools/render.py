"""`make render STACK=<name>`: run the program offline for Pulumi.<name>.yaml; write build/<name>/.

Everything written is read back from what the program registered under the mock runtime, so
the files show what `pulumi up` would apply: resources.json, helm/<chart>.yaml,
prometheus-rules.yaml, alertmanager.yaml, dashboards/<uid>.json, and logging/ (the log agent's
own configuration and the Loki ruler's rules). Secrets are placeholders.
"""

from __future__ import annotations

import gc

if __name__ == "__main__":
    # A short-lived process that allocates heavily while importing the provider SDKs: the cyclic
    # collector would walk the heap again and again for garbage that the exit frees anyway
    # (measured: 2.3 s -> 2.0 s per render). Tests importing this module keep their collector.
    gc.disable()

import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from config import ConfigError, load
from config.secrets import SECRET_KEYS
from monitoring.logging.loki import RULES_CONFIGMAP_LABEL, RULES_CONFIGMAP_LABEL_VALUE
from monitoring.versions import ALLOY, PROMTAIL
from tools.mock_runtime import ROOT, Run, encode_config, plain, run_program

NAMESPACE = "webhook-monitoring"
RELEASE = "kubernetes:helm.sh/v3:Release"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DASHBOARD = "grafana:oss/dashboard:Dashboard"


def secret_placeholder(key: str) -> str:
    """A readable stand-in for a secret; URL-shaped where the secret is a URL, so the rendered
    Alertmanager configuration still passes `amtool check-config`."""
    name = key.split(":", 1)[1]
    if any(k.name == name and k.example.startswith("https://") for k in SECRET_KEYS):
        return f"https://secret.invalid/{name}"
    return f"<secret {key}>"


def stack_file(stack: str) -> Path:
    return ROOT / f"Pulumi.{stack}.yaml"


def stack_config(path: Path) -> tuple[dict[str, str], list[str]]:
    """A stack file as the engine hands it over, secrets as placeholders.

    A secret gets a placeholder when the stack file holds it (a `secure:` value) or when the
    stack's settings require it, as `pulumi up` would insist; an optional secret the stack does
    not set stays unset, so the render shows what happens without it.
    """
    values = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    declared = {key if ":" in key else f"{NAMESPACE}:{key}"
                for key, value in values.items() if isinstance(value, dict) and set(value) == {"secure"}}
    config = encode_config(NAMESPACE, {k: v for k, v in values.items() if k not in declared})
    every = {f"{NAMESPACE}:{k.name}" for k in SECRET_KEYS} | declared
    try:
        settings, _ = load({**config, **{k: secret_placeholder(k) for k in every}}, every, lambda name: name)
    except ConfigError:
        secrets = every  # the program reports the problems; placeholders change none of them
    else:
        secrets = declared | {f"{NAMESPACE}:{k.name}" for k in SECRET_KEYS if k.required(settings)}
    config.update({key: secret_placeholder(key) for key in secrets})
    return config, sorted(secrets)


def stacks() -> list[str]:
    return [p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml")]


class _ReviewDumper(yaml.CSafeDumper):
    """libyaml's safe dumper (several times faster than PyYAML's), with multi-line strings (agent
    configs, embedded files) as literal blocks a reviewer can read and diff line by line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_ReviewDumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_ReviewDumper, sort_keys=True, default_flow_style=False, width=120)


def write_files(run: Run, out: Path) -> dict[str, int]:
    """Write build/<stack>/; returns the number of files per kind."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written: Counter = Counter()
    (out / "resources.json").write_text(json.dumps([r.as_json() for r in run.resources], indent=2) + "\n")
    written["resources.json"] += 1

    for release in run.of_type(RELEASE):
        values = plain(release.inputs.get("values", {}), reveal_secrets=True)
        (out / "helm").mkdir(exist_ok=True)
        (out / "helm" / f"{release.inputs['chart']}.yaml").write_text(dump_yaml(values))
        written["helm"] += 1

    groups = [g for rule in run.of_type(PROMETHEUS_RULE) for g in plain(rule.inputs, reveal_secrets=True)["spec"]["groups"]]
    if groups:
        (out / "prometheus-rules.yaml").write_text(dump_yaml({"groups": groups}))
        written["prometheus-rules.yaml"] += 1

    for secret in run.of_type(SECRET):
        data = plain(secret.inputs.get("stringData") or {}, reveal_secrets=True)
        if "alertmanager.yaml" in data:
            (out / "alertmanager.yaml").write_text(data["alertmanager.yaml"])
            written["alertmanager.yaml"] += 1

    for name, text in logging_configs(run).items():
        (out / "logging").mkdir(exist_ok=True)
        (out / "logging" / name).write_text(text)
        written["logging"] += 1

    for dashboard in run.of_type(DASHBOARD):
        model = json.loads(plain(dashboard.inputs["configJson"], reveal_secrets=True))
        (out / "dashboards").mkdir(exist_ok=True)
        (out / "dashboards" / f"{model['uid']}.json").write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
        written["dashboards"] += 1
    return dict(written)


def logging_configs(run: Run) -> dict[str, str]:
    """The log agent's configuration in its own format, and the Loki ruler's rules."""
    configs = {}
    for release in run.of_type(RELEASE):
        values = plain(release.inputs.get("values", {}), reveal_secrets=True)
        if release.inputs["chart"] == ALLOY.name:
            configs["config.alloy"] = values["alloy"]["configMap"]["content"]
        elif release.inputs["chart"] == PROMTAIL.name:
            configs["promtail.yaml"] = values["config"]["file"]
    for config_map in run.of_type(CONFIG_MAP):
        labels = config_map.inputs["metadata"].get("labels", {})
        if labels.get(RULES_CONFIGMAP_LABEL) == RULES_CONFIGMAP_LABEL_VALUE:
            configs["loki-rules.yaml"] = "".join(config_map.inputs["data"].values())
    return configs


def summary(run: Run) -> str:
    by_type = Counter(r.type for r in run.resources)
    lines = [f"{count:4d}  {typ}" for typ, count in sorted(by_type.items())]
    lines.append(f"{len(run.resources):4d}  resources in all")
    if run.exports.get("criticalAlertsGoTo") == "slack":
        lines.append("note: PagerDuty is off in this stack: critical alerts go to Slack")
    return "\n".join(lines)


def render(stack: str, path: Path | None = None, out_root: Path = ROOT / "build") -> int:
    path = path or stack_file(stack)
    if not path.exists():
        print(f"no stack file {path.name}: stacks are {', '.join(sorted(stacks()))}", file=sys.stderr)
        return 2
    config, secret_keys = stack_config(path)
    run = run_program(stack, config, secret_keys)
    if run.error is not None:
        print(f"{stack}: {run.error}", file=sys.stderr)
        return 2
    if not run.resources:
        print(f"{stack}: the program registered no resources", file=sys.stderr)
        return 1
    written = write_files(run, out_root / stack)
    print(f"rendered stack {stack} into {out_root / stack}")
    print(summary(run))
    print("files: " + ", ".join(f"{k} ({v})" for k, v in sorted(written.items())))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tools.render <stack>", file=sys.stderr)
        return 2
    return render(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
