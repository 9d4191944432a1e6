"""`make tools`: build the Go programs the tests run, from source, at the versions we deploy.

Prometheus and promtool, Alertmanager and amtool and the blackbox exporter are built at the
versions the charts run (monitoring/versions.py), so every rule test, routing test and live
scenario exercises what is deployed. Helm (v3, as pulumi-kubernetes embeds it) renders the charts
for the chart check; Sloth generates the reference SLO alerts ours are compared with. Each tool is built once into `.tools/<name>-<version>/` (gitignored) and
reused until its version changes; Go's module and build caches make a rebuild in a fresh clone
quick. Two small programs of ours use the deployed Prometheus' own Go packages: backtest-rules (the
PromQL parser and engine, for `make backtest`) and tsdbgen (the TSDB, for the backtest benchmark's history);
each is a module of its own in this repository (go.mod and go.sum beside its source, requiring the
Prometheus module of PROMETHEUS_VERSION), rebuilt whenever its files change.

`go install <module>/cmd/<tool>@<version>` cannot build these two: Prometheus' go.mod has
replace directives (refused by `go install pkg@version`) and Alertmanager embeds a web UI that is
built by npm and absent from the module. So the module is downloaded with `go mod download`, and
built as the main module with `go build`; where the module lacks embedded UI files, a writable copy
gets a placeholder page (no test uses the web UIs).

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


def tool_of(command: str) -> GoTool:
    for tool in TOOLS:
        if command in tool.commands:
            return tool
    raise KeyError(f"no Go tool provides {command!r}")


def binary(command: str) -> str:
    """Path of a built command; a clear error when `make tools` has not built it."""
    tool = tool_of(command)
    path = tool.directory / command
    if not path.exists():
        raise FileNotFoundError(f"{command} {tool.version} is not built: run `make tools` (needs Go 1.26+)")
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
                "Alertmanager, the blackbox exporter and Helm from source with it.")
    installed = _go("env", "GOVERSION").strip()
    found = re.match(r"go(\d+)\.(\d+)", installed)
    if not found or (int(found[1]), int(found[2])) < GO_MINIMUM:
        return f"go: {installed} is too old; install Go 1.26 or newer (https://go.dev/dl/)."
    return None


def is_built(tool: GoTool) -> bool:
    return (tool.directory / ".built").exists() and all((tool.directory / c).exists() for c in tool.commands)


def build(tool: GoTool) -> float:
    """Build every command of `tool` into its directory; seconds taken."""
    started = time.monotonic()
    if tool.source:
        source = ROOT / tool.source
    else:
        source = Path(json.loads(_go("mod", "download", "-json", f"{tool.module}@{tool.module_version}"))["Dir"])
    if tool.placeholder_embeds:
        # The module cache is read-only: build from a writable copy holding the placeholder pages.
        copy = TOOLS_DIR / "src" / f"{tool.name}-{tool.version}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source, copy, copy_function=shutil.copy)
        for embed in tool.placeholder_embeds:
            (copy / embed).mkdir(parents=True, exist_ok=True)
            (copy / embed / "index.html").write_text("<!doctype html><title>UI not built</title>\n")
        source = copy
    tool.directory.mkdir(parents=True, exist_ok=True)
    ldflags = "-s -w" + (f" -X {tool.version_variable}={tool.version_value or tool.version}" if tool.version_variable else "")
    for command, package in tool.commands.items():
        _go("build", "-trimpath", "-ldflags", ldflags, "-o", str(tool.directory / command), package, cwd=source)
    if tool.placeholder_embeds:
        shutil.rmtree(source)
    (tool.directory / ".built").write_text(f"{tool.module}@{tool.module_version}\n")
    return time.monotonic() - started


VERSION_ARGUMENTS = {"helm": ("version",), "sloth": ("--no-log", "version")}


def version_line(command: str) -> str:
    """The first line a built command prints about its version, named after the command (for a
    program of ours, its module and the Prometheus module it is built with)."""
    tool = tool_of(command)
    if tool.source:
        return f"{command}: {tool.source} ({tool.directory.name}), github.com/prometheus/prometheus {tool.module_version}"
    arguments = VERSION_ARGUMENTS.get(command, ("--version",))
    result = subprocess.run([binary(command), *arguments], capture_output=True, text=True, timeout=30)
    line = (result.stdout or result.stderr).splitlines()[0]
    if re.fullmatch(r"v?\d+\.\d+\.\d+", line):  # a bare version (sloth)
        return f"{command}, version {line}"
    return line if line.startswith(command) else f"{command}: {line}"


def reported_version(command: str) -> str:
    """The bare version a built command reports: `promtool, version 3.14.0 (...)` -> 3.14.0."""
    found = re.search(r"[Vv]ersion[: ]+\"?v?(\d+\.\d+\.\d+)", version_line(command))
    if not found:
        raise ValueError(f"{command}: no version in {version_line(command)!r}")
    return found[1]


def main(argv: list[str]) -> int:
    if argv[:1] == ["versions"]:
        for tool in TOOLS:
            for command in tool.commands:
                print(version_line(command))
        return 0
    if argv[:1] != ["build"]:
        print(__doc__, file=sys.stderr)
        return 2
    wanted = [t for t in TOOLS if not argv[1:] or t.name in argv[1:]]
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
