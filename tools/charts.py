"""`make charts`: the chart sources of the pinned versions, for the chart check.

Every chart the program installs (monitoring/versions.py) is needed unpacked, with its
dependencies in its `charts/` folder, exactly as `helm pull --untar` leaves it. They come from,
in this order:

1. `$CHART_SOURCES`, a folder of unpacked charts named `<chart>-<version>/`, when it is set
   (nothing is fetched then: the folder is used as it is);
2. the cache `.charts/` (gitignored), filled by `helm pull` of the pinned version from the
   chart's repository where that repository is reachable (CI on GitHub);
3. else, when `$CHART_GIT_MIRRORS` names a folder of git clones of the chart repositories
   (prometheus-community/helm-charts, grafana-community/helm-charts, grafana/helm-charts,
   grafana/alloy, minio/minio, ragudiko/alloysetup for mimir-distributed 5.7.0, ...), from the
   commit of each clone whose `Chart.yaml` has the pinned name and version, dependencies taken from
   the chart's own `charts/` folder where it holds them at the locked version, else resolved the
   same way.

Chart sources are never committed. A chart that none of these provides is reported, with the
reason, and the chart check skips the releases that need it.

    python -m tools.charts fetch       fill .charts/ with what is missing; print where each came from
"""

from __future__ import annotations

import fnmatch
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import yaml

from monitoring import versions
from monitoring.versions import Chart
from tools.go_tools import binary

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".charts"
CHARTS = (versions.PROMETHEUS_OPERATOR_CRDS, versions.KUBE_PROMETHEUS_STACK, versions.MIMIR,
          versions.BLACKBOX_EXPORTER, versions.LOKI, versions.ALLOY, versions.PROMTAIL)
# Where a chart's source sits in the repositories that publish charts, or at a repository's top level
# (a repository holding a chart with its dependencies, as mimir-distributed 5.7.0's copy in
# ragudiko/alloysetup does).
CHART_PATHS = ("charts/{name}", "helm/{name}", "operations/helm/charts/{name}", "production/helm/{name}", "{name}")


def sources_root() -> Path:
    return Path(os.environ["CHART_SOURCES"]) if os.environ.get("CHART_SOURCES") else CACHE


def chart_dir(chart: Chart) -> Optional[Path]:
    """The unpacked chart, or None when it is not available."""
    path = sources_root() / f"{chart.name}-{chart.version}"
    return path if (path / "Chart.yaml").exists() else None


def unavailable_reason(chart: Chart) -> str:
    where = "$CHART_SOURCES" if os.environ.get("CHART_SOURCES") else "the cache .charts/"
    reason = (f"chart {chart.name} {chart.version} is not in {where} ({sources_root()})")
    tried = _failure_note(chart)
    if tried.exists():
        return f"{reason}: {tried.read_text().strip()}"
    return (f"{reason}: `make charts` pulls it from {chart.repo}, or set CHART_SOURCES (unpacked charts) "
            "or CHART_GIT_MIRRORS (git clones)")


def _failure_note(chart: Chart) -> Path:
    """Where `fetch` notes why a chart could not be had, for the check to report."""
    return CACHE / f"{chart.name}-{chart.version}.unavailable"


# ------------------------------------------------------------------------------ helm pull


def helm_pull(chart: Chart, into: Path) -> Optional[str]:
    """Pull and unpack the chart into `into`/<name>-<version>; None on success, else why not."""
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [binary("helm"), "pull", chart.name, "--repo", chart.repo, "--version", chart.version,
             "--untar", "--untardir", tmp],
            capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            return (result.stderr.strip().splitlines() or ["helm pull failed"])[-1]
        shutil.move(str(Path(tmp) / chart.name), into / f"{chart.name}-{chart.version}")
    return None


# ------------------------------------------------------------------------------ git mirrors


@dataclass(frozen=True)
class GitSource:
    repository: Path
    commit: str
    path: str

    def unpack(self, into: Path) -> None:
        """The chart folder at that commit, as a directory at `into`."""
        archive = subprocess.run(["git", "-C", str(self.repository), "archive", "--format=tar", self.commit, self.path],
                                 capture_output=True, check=True).stdout
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(tmp, filter="data")
            shutil.move(str(Path(tmp) / self.path), into)


def _git(repository: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repository), *args], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def git_repositories(root: Path) -> list[Path]:
    """Git repositories (bare or not) at most two levels under `root`."""
    found = []
    for candidate in [root, *root.glob("*"), *root.glob("*/*")]:
        if candidate.is_dir() and ((candidate / "HEAD").exists() and (candidate / "objects").exists()
                                   or (candidate / ".git").exists()):
            found.append(candidate)
    return sorted(found)


def _chart_at(repository: Path, commit: str, path: str) -> Optional[dict]:
    text = _git(repository, "show", f"{commit}:{path}/Chart.yaml")
    try:
        return yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return None


@lru_cache(maxsize=None)
def _tags(repository: Path) -> tuple[str, ...]:
    return tuple(_git(repository, "tag").split())


def find_in_git(name: str, version_pattern: str, repositories: tuple[Path, ...]) -> Optional[tuple[GitSource, str]]:
    """(source, version) of the newest release of chart `name` matching `version_pattern` (a version,
    or a wildcard such as `0.12.*`): tagged `<name>-<version>` or `helm-chart/<version>`, or else the
    newest commit whose Chart.yaml has that name and version."""
    candidates: list[tuple[tuple[int, ...], GitSource, str]] = []
    for repository in repositories:
        for tag in _tags(repository):
            for prefix in (f"{name}-", "helm-chart/"):
                version = tag[len(prefix):] if tag.startswith(prefix) else None
                if not version or not fnmatch.fnmatchcase(version, version_pattern) or not version[0].isdigit():
                    continue
                for template in CHART_PATHS:
                    path = template.format(name=name)
                    meta = _chart_at(repository, tag, path)
                    if meta and meta.get("name") == name and str(meta.get("version")) == version:
                        candidates.append((version_key(version), GitSource(repository, tag, path), version))
    if candidates:
        _, source, version = max(candidates, key=lambda c: c[0])
        return source, version
    if any(ch in version_pattern for ch in "*?["):
        return None
    for repository in repositories:
        for template in CHART_PATHS:
            path = template.format(name=name)
            for commit in _git(repository, "log", "--format=%H", "-n", "400", "HEAD", "--", f"{path}/Chart.yaml").split():
                meta = _chart_at(repository, commit, path)
                if meta and meta.get("name") == name and str(meta.get("version")) == version_pattern:
                    return GitSource(repository, commit, path), version_pattern
    return None


def version_key(version: str) -> tuple[int, ...]:
    """A chart version as numbers, for ordering: 88.5.3 -> (88, 5, 3)."""
    return tuple(int(part) if part.isdigit() else -1 for part in version.replace("-", ".").split("."))


def _is_chart(path: Path, name: str, version: str) -> bool:
    """Whether `path` holds chart `name` at `version`."""
    try:
        meta = yaml.safe_load((path / "Chart.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(meta, dict) and meta.get("name") == name and str(meta.get("version")) == version


def assemble_from_git(chart: Chart, into: Path, repositories: tuple[Path, ...]) -> Optional[str]:
    """Unpack the chart and, recursively, its dependencies into `into`/<name>-<version>; None on success."""
    found = find_in_git(chart.name, chart.version, repositories)
    if found is None:
        return f"no commit of {chart.name} {chart.version} in the git mirrors"
    target = into / f"{chart.name}-{chart.version}"
    found[0].unpack(target)
    return _add_dependencies(target, repositories)


def _add_dependencies(chart_root: Path, repositories: tuple[Path, ...]) -> Optional[str]:
    meta = yaml.safe_load((chart_root / "Chart.yaml").read_text())
    # Chart.lock, when there is one, names the exact versions a published package carries.
    lock = chart_root / "Chart.lock"
    locked = {d["name"]: d["version"] for d in (yaml.safe_load(lock.read_text()) or {}).get("dependencies", [])} \
        if lock.exists() else {}
    for dependency in meta.get("dependencies") or []:
        dependency = {**dependency, "version": locked.get(dependency["name"], dependency["version"])}
        local = chart_root / "charts" / dependency["name"]
        if _is_chart(local, dependency["name"], str(dependency["version"])):
            # Already in the chart's charts/ folder at the locked version, as in a packaged chart.
            problem = _add_dependencies(local, repositories)
        elif not dependency.get("repository") or dependency["repository"].startswith("file://"):
            if not (local / "Chart.yaml").exists():
                return f"{meta['name']}: local dependency {dependency['name']} is missing"
            problem = _add_dependencies(local, repositories)
        else:
            found = find_in_git(dependency["name"], str(dependency["version"]), repositories)
            if found is None:
                return f"{meta['name']}: dependency {dependency['name']} {dependency['version']} not in the git mirrors"
            shutil.rmtree(local, ignore_errors=True)
            local.parent.mkdir(exist_ok=True)
            found[0].unpack(local)
            problem = _add_dependencies(local, repositories)
        if problem:
            return problem
    return None


# ------------------------------------------------------------------------------ command line


def _mirrors() -> tuple[Optional[str], tuple[Path, ...]]:
    mirrors = os.environ.get("CHART_GIT_MIRRORS")
    return mirrors, tuple(git_repositories(Path(mirrors))) if mirrors and Path(mirrors).is_dir() else ()


def ensure(chart: Chart) -> str:
    """Make one chart version available in the cache (any version: `make diff` templates an older
    revision's pins); where it came from, or `unavailable: <why>`."""
    if os.environ.get("CHART_SOURCES"):
        return "CHART_SOURCES" if chart_dir(chart) else f"unavailable: {unavailable_reason(chart)}"
    if chart_dir(chart):
        return "cached"
    CACHE.mkdir(exist_ok=True)
    mirrors, repositories = _mirrors()
    key = f"{chart.name}-{chart.version}"
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        why = helm_pull(chart, Path(tmp))
        source = f"helm pull {chart.repo}"
        if why and repositories:
            shutil.rmtree(Path(tmp) / key, ignore_errors=True)
            git_why = assemble_from_git(chart, Path(tmp), repositories)
            why, source = (f"{why}; {git_why}", source) if git_why else (None, f"git mirrors in {mirrors}")
        if why is None:
            shutil.move(str(Path(tmp) / key), CACHE / key)
            _failure_note(chart).unlink(missing_ok=True)
        else:
            _failure_note(chart).write_text(f"{why}\n")
    return source if why is None else f"unavailable: {why}"


def fetch() -> dict[str, str]:
    """Make every pinned chart available in the cache; where each came from, or why it is missing."""
    return {f"{c.name}-{c.version}": ensure(c) for c in CHARTS}


def main(argv: list[str]) -> int:
    if argv != ["fetch"]:
        print(__doc__, file=sys.stderr)
        return 2
    for key, where in fetch().items():
        print(f"{key:40s} {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
