"""Renovate (renovate.json): its custom regex managers find exactly the charts, images and tool
versions pinned in monitoring/versions.py and tools/go_tools.py, an update rewrites what it
should, and the rules that group or hold back updates name dependencies that exist.

The regex managers are applied here as Renovate applies them (strategy "any": every match of
every matchString is one dependency; named groups or the manager's templates give its fields; an
update replaces every occurrence of the current value inside the matched text), so a renamed
constant or a reformatted line fails here rather than silently dropping out of Renovate's view.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from monitoring import versions
from tools import go_tools

ROOT = Path(__file__).resolve().parents[1]
CONFIG_FILE = ROOT / "renovate.json"
# The fields a regex manager can capture or template (Renovate's validMatchFields).
MATCH_FIELDS = ("depName", "packageName", "currentValue", "currentDigest", "datasource", "versioning",
                "extractVersion", "registryUrl", "depType")
# Renovate runs matchStrings with RE2 where it can: no lookaround, no backreferences.
NOT_RE2 = re.compile(r"\(\?<?[=!]|\\k<|\\[1-9]")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return json.loads(CONFIG_FILE.read_text())


@functools.lru_cache(maxsize=1)
def repository_files() -> tuple[str, ...]:
    """Repository-relative paths of the files Renovate sees, the repository's own (tracked and new,
    not ignored), as it matches managerFilePatterns against them."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return tuple(sorted(f for f in listed if (ROOT / f).is_file()))


def pattern_regex(pattern: str) -> re.Pattern[str]:
    assert pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 2, (
        f"{pattern!r}: this test reads managerFilePatterns written as /regex/ only"
    )
    return re.compile(pattern[1:-1])


def files_of(manager: dict[str, Any]) -> list[str]:
    patterns = [pattern_regex(p) for p in manager["managerFilePatterns"]]
    return [f for f in repository_files() if any(p.search(f) for p in patterns)]


def python_regex(js_pattern: str) -> re.Pattern[str]:
    """A JavaScript matchString as Python's re: named groups (?<name>...) become (?P<name>...)."""
    assert not NOT_RE2.search(js_pattern), f"{js_pattern!r}: RE2 (Renovate's engine) has no lookaround or backreference"
    return re.compile(js_pattern.replace("(?<", "(?P<"))


def render(template: str, groups: dict[str, str]) -> str:
    """Renovate's Handlebars templates, as far as this config uses them: {{group}} and {{{group}}}."""
    rendered = re.sub(r"\{\{\{?\s*(\w+)\s*\}?\}\}", lambda m: groups[m[1]], template)
    assert "{{" not in rendered, f"{template!r}: a template construct this test does not evaluate"
    return rendered


def extract(manager: dict[str, Any], content: str) -> list[dict[str, str]]:
    """The dependencies a regex manager finds in one file's content."""
    assert manager.get("matchStringsStrategy", "any") == "any"
    deps = []
    for match_string in manager["matchStrings"]:
        for match in python_regex(match_string).finditer(content):
            groups = {name: value for name, value in match.groupdict().items() if value is not None}
            dep = {"replaceString": match[0]}
            for field in MATCH_FIELDS:
                if f"{field}Template" in manager:
                    dep[field] = render(manager[f"{field}Template"], groups)
                elif field in groups:
                    dep[field] = groups[field]
            # Renovate drops a match without a name or a version (isValidDependency).
            if (dep.get("depName") or dep.get("packageName")) and (dep.get("currentValue") or dep.get("currentDigest")):
                deps.append(dep)
    return deps


def regex_managers(config: dict[str, Any]) -> list[dict[str, Any]]:
    managers = config.get("customManagers", [])
    assert managers and all(m["customType"] == "regex" for m in managers)
    return managers


def extract_all(config: dict[str, Any], contents: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Every dependency every regex manager finds, with its file (contents: files to read as given)."""
    found = []
    for index, manager in enumerate(regex_managers(config)):
        for file in files_of(manager):
            text = (contents or {}).get(file) or (ROOT / file).read_text()
            found += [{**dep, "file": file, "manager": index} for dep in extract(manager, text)]
    return found


SUMMARY_FIELDS = ("file", "depName", "datasource", "currentValue", "currentDigest", "registryUrl")


def summary(dep: dict[str, str]) -> tuple[str, ...]:
    return tuple(dep.get(field, "") for field in SUMMARY_FIELDS)


def pinned() -> list[tuple[str, ...]]:
    """What the Python modules pin, read through Python rather than through any regex."""
    charts = [c for c in vars(versions).values() if isinstance(c, versions.Chart)]
    # Full image references (registry/repository:tag[@sha256:digest]): GRAPHITE_EXPORTER_IMAGE, ...
    images = [value for name, value in vars(versions).items() if name.endswith("_IMAGE")]
    assert versions.GRAPHITE_EXPORTER_IMAGE in images
    helm = go_tools.tool_of("helm")
    deps = [("monitoring/versions.py", c.name, "helm", c.version, "", c.repo) for c in charts]
    for image in images:
        reference, _, digest = image.partition("@")
        repository, tag = reference.rsplit(":", 1)
        deps.append(("monitoring/versions.py", repository, "docker", tag, digest, ""))
    deps += [
        ("monitoring/versions.py", "quay.io/prometheus/prometheus", "docker", versions.PROMETHEUS_VERSION, "", ""),
        ("monitoring/versions.py", "quay.io/prometheus/alertmanager", "docker", versions.ALERTMANAGER_VERSION, "", ""),
        ("monitoring/versions.py", "quay.io/prometheus/blackbox-exporter", "docker", versions.BLACKBOX_EXPORTER_VERSION,
         "", ""),
        ("monitoring/versions.py", "github.com/slok/sloth", "go", versions.SLOTH_VERSION, "", ""),
        ("tools/go_tools.py", helm.module, "go", helm.version, "", ""),
    ]
    return sorted(deps)


def test_the_regex_managers_find_exactly_what_is_pinned(config) -> None:
    found = extract_all(config)
    assert sorted(summary(d) for d in found) == pinned()


def test_every_literal_version_in_the_pinned_files_is_seen_by_renovate(config) -> None:
    """A constant added to versions.py, or a Go tool given a literal version, needs a manager too.

    Literal strings of versions.py that hold a version (not the chart repository URLs) and the
    literal versions of the Go tools must each lie inside some match; f-strings derived from them
    (PROMETHEUS_IMAGE_TAG, ...) move with them."""
    matched = {}
    for dep in extract_all(config):
        matched.setdefault(dep["file"], []).append(dep["replaceString"])

    versions_tree = ast.parse((ROOT / "monitoring" / "versions.py").read_text())
    literals = [
        (node.targets[0].id, node.value.value) for node in versions_tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        and re.search(r"\d+\.\d+", node.value.value) and not node.value.value.startswith("https://")
    ]
    assert {name for name, _ in literals} >= {"PROMETHEUS_VERSION", "GRAPHITE_EXPORTER_IMAGE"}
    unseen = [name for name, value in literals
              if not any(f'{name} = "{value}"' in text for text in matched["monitoring/versions.py"])]
    assert unseen == []

    tools_tree = ast.parse((ROOT / "tools" / "go_tools.py").read_text())
    literal_tools = [
        node.args[0].value for node in ast.walk(tools_tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "GoTool"
        and isinstance(node.args[2], ast.Constant)
    ]
    assert literal_tools == ["helm"]
    assert [t for t in literal_tools if not any(f'"{t}"' in text for text in matched["tools/go_tools.py"])] == []


def bumped(value: str) -> str:
    """A later version of the same shape: its last number plus one (3.20.2 -> 3.20.3, v0.16.0 -> v0.16.1,
    1.29.4-alpine -> 1.29.5-alpine)."""
    head, number, tail = re.fullmatch(r"(.*?)(\d+)(\D*)", value).groups()
    return f"{head}{int(number) + 1}{tail}"


def helm_tool_strings(source: str) -> tuple[str, str, str]:
    """(module version, version, version_value) of the GoTool("helm", ...) call in go_tools.py source."""
    (call,) = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
               and getattr(node.func, "id", None) == "GoTool" and node.args[0].value == "helm"]
    keywords = {k.arg: k.value.value for k in call.keywords}
    return call.args[2].value, call.args[3].value, keywords["version_value"]


@pytest.mark.parametrize("name", [dep[1] for dep in pinned()])
def test_an_update_rewrites_its_own_version_and_nothing_else(config, name) -> None:
    """Renovate's update of one dependency: every occurrence of the current value inside the
    matched text replaced, at the match; extracting again finds the new version for it and the
    same as before for every other dependency."""
    before = extract_all(config)
    (dep,) = [d for d in before if d["depName"] == name]
    new_value = bumped(dep["currentValue"])
    content = (ROOT / dep["file"]).read_text()
    replaced = dep["replaceString"].replace(dep["currentValue"], new_value)
    assert replaced != dep["replaceString"]
    new_content = content.replace(dep["replaceString"], replaced, 1)

    after = extract_all(config, {dep["file"]: new_content})
    expected = [{**d, "currentValue": new_value} if d is dep else d for d in before]
    assert sorted(summary(d) for d in after) == sorted(summary(d) for d in expected)

    if dep["depName"] == "helm.sh/helm/v3":
        # Module version, version and version_value move together.
        assert helm_tool_strings(content) == (f"v{dep['currentValue']}", dep["currentValue"], f"v{dep['currentValue']}")
        assert helm_tool_strings(new_content) == (f"v{new_value}", new_value, f"v{new_value}")


def test_the_helm_tool_versions_agree() -> None:
    """Renovate moves the three strings only while they are the same version."""
    helm = go_tools.tool_of("helm")
    assert (helm.module_version, helm.version_value) == (f"v{helm.version}", f"v{helm.version}")


def test_the_chart_managers_use_the_repository_urls_of_versions_py(config) -> None:
    urls = {name: value for name, value in vars(versions).items()
            if isinstance(value, str) and value.startswith("https://")}
    for manager in regex_managers(config):
        if manager.get("datasourceTemplate") != "helm":
            continue
        (constant,) = re.findall(r"\\s\*([A-Z_]+)\\s\*\\\)", manager["matchStrings"][0])
        assert manager["registryUrlTemplate"] == urls[constant]
    assert {d["registryUrl"] for d in extract_all(config) if d["datasource"] == "helm"} == set(urls.values())


def test_a_reformatted_or_renamed_pin_is_no_longer_found(config) -> None:
    """The failure mode these tests guard against, shown once."""
    content = (ROOT / "monitoring" / "versions.py").read_text()
    renamed = content.replace("PROMETHEUS_VERSION = ", "PROM_VERSION = ")
    reformatted = content.replace('Chart("loki", ', 'Chart(name="loki", version=').replace(
        ", GRAFANA_COMMUNITY)", ", repo=GRAFANA_COMMUNITY)")
    for changed in (renamed, reformatted):
        found = extract_all(config, {"monitoring/versions.py": changed})
        assert sorted(summary(d) for d in found) != pinned()
        assert len(found) == len(pinned()) - 1


def test_an_image_pinned_by_digest_is_found_with_its_tag_and_digest(config) -> None:
    content = (ROOT / "monitoring" / "versions.py").read_text()
    reference = versions.GRAPHITE_EXPORTER_IMAGE.partition("@")[0]
    digest = "sha256:" + "0123456789abcdef" * 4
    pinned_by_digest = content.replace(f'"{versions.GRAPHITE_EXPORTER_IMAGE}"', f'"{reference}@{digest}"')
    assert pinned_by_digest != content
    (dep,) = [d for d in extract_all(config, {"monitoring/versions.py": pinned_by_digest})
              if d["depName"] == reference.rsplit(":", 1)[0]]
    assert (dep["currentValue"], dep["currentDigest"]) == (reference.rsplit(":", 1)[1], digest)


def package_rules(config: dict[str, Any], **match: str) -> list[dict[str, Any]]:
    return [r for r in config["packageRules"] if all(v in r.get(k, []) for k, v in match.items())]


def test_a_chart_and_the_versions_its_tests_build_are_updated_together(config) -> None:
    groups = {}
    for rule in config["packageRules"]:
        if "groupName" in rule and "matchDepNames" in rule:
            groups[rule["groupName"]] = set(rule["matchDepNames"])
    assert groups["kube-prometheus-stack"] >= {
        versions.KUBE_PROMETHEUS_STACK.name, versions.PROMETHEUS_OPERATOR_CRDS.name,
        "quay.io/prometheus/prometheus", "quay.io/prometheus/alertmanager"}
    assert groups["prometheus-blackbox-exporter"] >= {
        versions.BLACKBOX_EXPORTER.name, "quay.io/prometheus/blackbox-exporter"}
    # Every dependency a rule names exists: a typo would silently match nothing.
    names = {d["depName"] for d in extract_all(config)}
    named = {name for rule in config["packageRules"] if rule.get("matchManagers") == ["custom.regex"]
             for name in rule.get("matchDepNames", [])}
    assert named - names == set()


def test_mimir_stays_on_chart_5(config) -> None:
    (rule,) = package_rules(config, matchDepNames="mimir-distributed")
    assert rule["allowedVersions"] == "<6"
    assert versions.MIMIR.version.startswith("5.")


def requirement(name: str) -> str:
    (line,) = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith(f"{name}==")]
    return line.split("==", 1)[1]


def test_the_epoch_versioned_grafana_sdk_is_never_offered_an_epoch_less_version(config) -> None:
    (rule,) = package_rules(config, matchPackageNames="grafana-foundation-sdk")
    assert rule["versioning"] == "pep440"
    allowed = pattern_regex(rule["allowedVersions"])
    current = requirement("grafana-foundation-sdk")
    assert "!" in current
    assert allowed.search(current)
    assert allowed.search("1799999999!12.0.0")
    assert not allowed.search("11.6.0") and not allowed.search("10.1.0")
    assert rule["description"]


def test_the_config_covers_every_kind_of_dependency_weekly_with_labels(config) -> None:
    assert set(config["enabledManagers"]) == {"custom.regex", "pip_requirements", "npm", "github-actions"}
    assert "helpers:pinGitHubActionDigests" in config["extends"]
    assert "schedule:weekly" in config["extends"]
    assert config["labels"]
    pip_files = [f for f in repository_files()
                 if any(pattern_regex(p).search(f) for p in config["pip_requirements"]["managerFilePatterns"])]
    # The policy pack's pins too: its pulumi moves with the program's, in the pulumi group.
    assert pip_files == ["policy/requirements.txt", "requirements-dev.txt", "requirements.txt"]
    assert {"package.json", "package-lock.json"} <= set(repository_files())
    for manager in regex_managers(config):
        assert manager.get("description") and files_of(manager), manager
