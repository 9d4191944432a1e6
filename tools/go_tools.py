"""`make tools`: build the Go programs the tests run, from source, at the versions we deploy.

Prometheus and promtool, Alertmanager and amtool and the blackbox exporter are built at the
versions the charts run (monitoring/versions.py), so every rule test, routing test and live
scenario exercises what is deployed. The Prometheus Operator the chart deploys writes the live
tests' Prometheus configuration, against kube-apiserver of the Kubernetes release the stack targets,
on the etcd the HA tracker runs. Helm (v3, as pulumi-kubernetes embeds it) renders the charts for
the chart check; Sloth generates the reference SLO alerts ours are compared with. Each tool is built
once into `.tools/<name>-<version>/` (gitignored) and reused until its version changes; Go's module
and build caches make a rebuild in a fresh clone quick. Two small programs of ours use the deployed
Prometheus' own Go packages: backtest-rules (the PromQL parser and engine, for `make backtest`) and
tsdbgen (the TSDB, for the backtest benchmark's history); each is a module of its own in this
repository (go.mod and go.sum beside its source, requiring the Prometheus module of
PROMETHEUS_VERSION), rebuilt whenever its files change.

`go install <module>/cmd/<tool>@<version>` builds none of these: it refuses a module whose go.mod
has replace directives, and Alertmanager embeds a web UI that is built by npm and absent from the
module. So a tool is built one of two ways:

- inside its own module, downloaded with `go mod download` and built as the main module with `go
  build` (Prometheus, Alertmanager, ...); where the module lacks embedded UI files, a writable copy
  gets a placeholder page (no test uses the web UIs);
- from a module of ours that requires it (Kubernetes, etcd, the Operator): their go.mod replaces
  modules of their own repository with its folders, which the published module does not hold. Ours
  replaces each with its published release instead (k8s.io/api v0.34.12 for Kubernetes v1.34.12),
  takes the tool's `go` and `godebug` lines (the language version and runtime defaults it is
  built with upstream), and `go get` resolves what the commands import.

    python -m tools.go_tools build [tool ...]   build what is missing (all tools by default)
    python -m tools.go_tools versions           print each built command's version line
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from monitoring import versions

ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = Path(os.environ.get("WEBHOOK_MONITORING_TOOLS", ROOT / ".tools"))
GO_MINIMUM = (1, 26)
PROMETHEUS_COMMON_VERSION = "github.com/prometheus/common/version.Version"


def prometheus_module_version(version: str) -> str:
    """Prometheus 3.x publishes its Go module as v0.<major><minor:02>.<patch>: 3.14.0 is v0.314.0."""
    major, minor, patch = (int(part) for part in version.split("."))
    return f"v0.{major}{minor:02d}.{patch}"


@dataclass(frozen=True)
class GoTool:
    name: str
    """Folder name under .tools/ (with the version appended)."""
    module: str
    module_version: str
    version: str
    """What the commands report with --version."""
    commands: dict[str, str]
    """Command name -> package path inside the module."""
    version_variable: str
    """The linker variable that carries the version (what `--version` prints)."""
    version_value: str = ""
    """The value given to it; the version when empty."""
    placeholder_embeds: tuple[str, ...] = ()
    """Directories the source embeds that the module does not ship (built web UIs)."""
    build_facts: tuple[tuple[str, str], ...] = ()
    """Further linker variables and their values: what else the commands report about their build."""
    siblings_version: str = ""
    """Set for a tool built from a module of ours: the version the modules of its repository that its
    go.mod replaces with folders are published at. Empty: built inside its own module."""
    on_demand: bool = False
    """Built only when named (`build <name>`), not by `make tools`."""
    source: str = ""
    """A module of ours: its folder in this repository, built with its own go.mod and go.sum in
    place of a downloaded module (`module_version` is then the Prometheus module it requires)."""

    @property
    def directory(self) -> Path:
        if self.source:
            return TOOLS_DIR / f"{self.name}-{source_digest(ROOT / self.source)}"
        return TOOLS_DIR / f"{self.name}-{self.version}"


def source_digest(folder: Path) -> str:
    """Of every file of a module of ours: its build folder changes with any of them."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def kubernetes_tool(name: str, version: str, on_demand: bool = False) -> GoTool:
    """kube-apiserver of a Kubernetes release. Its staging modules (k8s.io/api, ...) are published as
    v0.<minor>.<patch> of the release; without the version variables it reports v0.0.0, and clients
    (the Operator) decide what it serves by that."""
    major, minor, _ = version.split(".")
    return GoTool(
        name, "k8s.io/kubernetes", f"v{version}", version, {"kube-apiserver": "./cmd/kube-apiserver"},
        "k8s.io/component-base/version.gitVersion", version_value=f"v{version}",
        build_facts=(("k8s.io/component-base/version.gitMajor", major), ("k8s.io/component-base/version.gitMinor", minor),
                     ("k8s.io/component-base/version.gitTreeState", "clean")),
        siblings_version="v0." + version.split(".", 1)[1], on_demand=on_demand,
    )


TOOLS = (
    GoTool(
        "prometheus", "github.com/prometheus/prometheus", prometheus_module_version(versions.PROMETHEUS_VERSION),
        versions.PROMETHEUS_VERSION, {"prometheus": "./cmd/prometheus", "promtool": "./cmd/promtool"},
        PROMETHEUS_COMMON_VERSION,
    ),
    GoTool(
        "alertmanager", "github.com/prometheus/alertmanager", f"v{versions.ALERTMANAGER_VERSION}",
        versions.ALERTMANAGER_VERSION, {"alertmanager": "./cmd/alertmanager", "amtool": "./cmd/amtool"},
        PROMETHEUS_COMMON_VERSION, placeholder_embeds=("ui/app/dist",),
    ),
    GoTool(
        "blackbox-exporter", "github.com/prometheus/blackbox_exporter", f"v{versions.BLACKBOX_EXPORTER_VERSION}",
        versions.BLACKBOX_EXPORTER_VERSION, {"blackbox_exporter": "."}, PROMETHEUS_COMMON_VERSION,
    ),
    # Not deployed: the SLO alerts are compared with what Sloth generates for the same SLO (tests/test_slo.py).
    GoTool(
        "sloth", "github.com/slok/sloth", f"v{versions.SLOTH_VERSION}", versions.SLOTH_VERSION,
        {"sloth": "./cmd/sloth"}, "github.com/slok/sloth/internal/info.Version", version_value=f"v{versions.SLOTH_VERSION}",
    ),
    # Helm 3, as pulumi-kubernetes' helm.v3.Release embeds it (its provider's go.mod names v3.20).
    GoTool(
        "helm", "helm.sh/helm/v3", "v3.20.2", "3.20.2", {"helm": "./cmd/helm"},
        "helm.sh/helm/v3/internal/version.version", version_value="v3.20.2",
    ),
    # The API server the tests apply every object to (testkit/apiserver.py), and the next minor's.
    kubernetes_tool("kubernetes", versions.KUBERNETES_VERSION),
    kubernetes_tool("kubernetes-next", versions.KUBERNETES_NEXT_VERSION, on_demand=True),
    # The API server's store; its version is compiled in, the variable holds the release's commit.
    GoTool(
        "etcd", "go.etcd.io/etcd/server/v3", f"v{versions.ETCD_VERSION}", versions.ETCD_VERSION, {"etcd": "."},
        "go.etcd.io/etcd/api/v3/version.GitSHA", version_value=f"v{versions.ETCD_VERSION}",
        siblings_version=f"v{versions.ETCD_VERSION}",
    ),
    GoTool(
        "prometheus-operator", "github.com/prometheus-operator/prometheus-operator",
        f"v{versions.PROMETHEUS_OPERATOR_VERSION}", versions.PROMETHEUS_OPERATOR_VERSION,
        {"prometheus-operator": "./cmd/operator"}, PROMETHEUS_COMMON_VERSION,
        siblings_version=f"v{versions.PROMETHEUS_OPERATOR_VERSION}",
    ),
    # Ours: the rules as expressions over raw series, and the PromQL engine over series of its own (tools/backtest.py).
    GoTool(
        "backtest-rules", "webhook-monitoring/tools/backtest_rules", prometheus_module_version(versions.PROMETHEUS_VERSION),
        versions.PROMETHEUS_VERSION, {"backtest-rules": "."}, "", source="tools/backtest_rules",
    ),
    # Ours: TSDB blocks of synthetic history for the backtest benchmark (testkit/backtest_bench.py).
    GoTool(
        "tsdbgen", "webhook-monitoring/testkit/tsdbgen", prometheus_module_version(versions.PROMETHEUS_VERSION),
        versions.PROMETHEUS_VERSION, {"tsdbgen": "."}, "", source="testkit/tsdbgen",
    ),
)


def tool_of(command: str, version: str | None = None) -> GoTool:
    """The tool that provides `command` (at `version`, where two releases of it are built)."""
    for tool in TOOLS:
        if command in tool.commands and version in (None, tool.version):
            return tool
    raise KeyError(f"no Go tool provides {command!r}" + (f" {version}" if version else ""))


def binary(command: str, version: str | None = None) -> str:
    """Path of a built command; a clear error when it has not been built."""
    tool = tool_of(command, version)
    path = tool.directory / command
    if not path.exists():
        how = f"python -m tools.go_tools build {tool.name}" if tool.on_demand else "make tools"
        raise FileNotFoundError(f"{command} {tool.version} is not built: run `{how}` (needs Go 1.26+)")
    return str(path)


def _go(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=readonly -buildvcs=false", "CGO_ENABLED": "0"}
    result = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def check_go() -> str | None:
    """None when a Go toolchain new enough is on PATH; else the one line saying what to install."""
    if shutil.which("go") is None:
        return ("go: not found. Install Go 1.26 or newer (https://go.dev/dl/): `make test` builds Prometheus, "
                "Alertmanager, the blackbox exporter, the Operator, kube-apiserver, etcd and Helm from source with it.")
    installed = _go("env", "GOVERSION").strip()
    found = re.match(r"go(\d+)\.(\d+)", installed)
    if not found or (int(found[1]), int(found[2])) < GO_MINIMUM:
        return f"go: {installed} is too old; install Go 1.26 or newer (https://go.dev/dl/)."
    return None


def is_built(tool: GoTool) -> bool:
    return (tool.directory / ".built").exists() and all((tool.directory / c).exists() for c in tool.commands)


def own_module_source(tool: GoTool, directory: Path) -> str:
    """The go.mod of a module of ours that builds `tool`: its `go` and `godebug` lines, the
    requirement, and every module the tool replaces with a folder of its repository (and requires)
    replaced with its published release."""
    downloaded = json.loads(_go("mod", "download", "-json", f"{tool.module}@{tool.module_version}"))
    # `go mod edit -json` parses a go.mod file; a copy, as it refuses one outside a module folder.
    (directory / "go.mod").write_text(Path(downloaded["GoMod"]).read_text())
    theirs = json.loads(_go("mod", "edit", "-json", cwd=directory))
    required = {r["Path"] for r in theirs.get("Require") or []}
    siblings = sorted(r["Old"]["Path"] for r in theirs.get("Replace") or []
                      if r["New"]["Path"].startswith(".") and r["Old"]["Path"] in required)
    lines = [f"module local/{tool.name}-build", "", f"go {theirs['Go']}", ""]
    lines += [f"godebug {d['Key']}={d['Value']}" for d in theirs.get("Godebug") or []]
    lines += ["", f"require {tool.module} {tool.module_version}", ""]
    lines += [f"replace {m} => {m} {tool.siblings_version}" for m in siblings]
    return "\n".join(lines) + "\n"


def package_path(tool: GoTool, package: str) -> str:
    """A command's package as an import path: `./cmd/x` of the module is `<module>/cmd/x`."""
    return tool.module + package.removeprefix(".")


def own_module(tool: GoTool) -> tuple[Path, dict[str, str]]:
    """A module of ours that builds `tool`, with what its commands import resolved: (its folder,
    command -> package import path)."""
    source = TOOLS_DIR / "src" / f"{tool.name}-{tool.version}"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    (source / "go.mod").write_text(own_module_source(tool, source))
    packages = {command: package_path(tool, package) for command, package in tool.commands.items()}
    # Only what the commands import: `go mod tidy` would also resolve the tests of every dependency
    # (for the Operator, an import it finds ambiguous).
    _go("get", *(f"{package}@{tool.module_version}" for package in packages.values()), cwd=source)
    return source, packages


def module_copy(tool: GoTool, module: Path) -> Path:
    """A writable copy of the downloaded module with placeholder pages where it embeds a web UI it
    does not ship (the module cache is read-only)."""
    copy = TOOLS_DIR / "src" / f"{tool.name}-{tool.version}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(module, copy, copy_function=shutil.copy)
    for embed in tool.placeholder_embeds:
        (copy / embed).mkdir(parents=True, exist_ok=True)
        (copy / embed / "index.html").write_text("<!doctype html><title>UI not built</title>\n")
    return copy


def build(tool: GoTool) -> float:
    """Build every command of `tool` into its directory; seconds taken."""
    started = time.monotonic()
    if tool.source:
        source, packages = ROOT / tool.source, tool.commands
    elif tool.siblings_version:
        source, packages = own_module(tool)
    else:
        module = Path(json.loads(_go("mod", "download", "-json", f"{tool.module}@{tool.module_version}"))["Dir"])
        source, packages = (module_copy(tool, module) if tool.placeholder_embeds else module), tool.commands
    ldflags = " ".join(["-s -w", *(f"-X {variable}={value}" for variable, value in (
        (tool.version_variable, tool.version_value or tool.version), *tool.build_facts) if variable)])
    tool.directory.mkdir(parents=True, exist_ok=True)
    for command, package in packages.items():
        _go("build", "-trimpath", "-ldflags", ldflags, "-o", str(tool.directory / command), package, cwd=source)
    if source.is_relative_to(TOOLS_DIR / "src"):
        shutil.rmtree(source)
    (tool.directory / ".built").write_text(f"{tool.module}@{tool.module_version}\n")
    return time.monotonic() - started


VERSION_ARGUMENTS = {"helm": ("version",), "sloth": ("--no-log", "version")}


def version_line(command: str, version: str | None = None) -> str:
    """The first line a built command prints about its version, named after the command (for a
    program of ours, its module and the Prometheus module it is built with)."""
    tool = tool_of(command, version)
    if tool.source:
        return f"{command}: {tool.source} ({tool.directory.name}), github.com/prometheus/prometheus {tool.module_version}"
    arguments = VERSION_ARGUMENTS.get(command, ("--version",))
    result = subprocess.run([binary(command, version), *arguments], capture_output=True, text=True, timeout=30)
    line = (result.stdout or result.stderr).splitlines()[0]
    if re.fullmatch(r"v?\d+\.\d+\.\d+", line):  # a bare version (sloth)
        return f"{command}, version {line}"
    return line if line.startswith(command) else f"{command}: {line}"


def reported_version(command: str) -> str:
    """The bare version a built command reports: `promtool, version 3.14.0 (...)` -> 3.14.0."""
    # `Kubernetes v1.34.12` is what kube-apiserver says.
    found = re.search(r"(?:[Vv]ersion[: ]+\"?|Kubernetes )v?(\d+\.\d+\.\d+)", version_line(command))
    if not found:
        raise ValueError(f"{command}: no version in {version_line(command)!r}")
    return found[1]


def main(argv: list[str]) -> int:
    if argv[:1] == ["versions"]:
        for tool in TOOLS:
            for command in tool.commands if is_built(tool) or not tool.on_demand else ():
                print(version_line(command, tool.version))
        return 0
    if argv[:1] != ["build"]:
        print(__doc__, file=sys.stderr)
        return 2
    wanted = [t for t in TOOLS if t.name in argv[1:] or (not argv[1:] and not t.on_demand)]
    missing = [t for t in wanted if not is_built(t)]
    if missing:
        problem = check_go()
        if problem:
            print(problem, file=sys.stderr)
            return 2
    for tool in missing:
        print(f"building {tool.name} {tool.version} ({tool.module}@{tool.module_version}) ...", flush=True)
        print(f"built {', '.join(tool.commands)} {tool.version} in {build(tool):.0f} s", flush=True)
    for tool in wanted:
        print(f"{tool.name} {tool.version}: {', '.join(str(tool.directory / c) for c in tool.commands)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
