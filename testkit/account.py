"""The one-line account of a `make test`: what ran, what was skipped and why.

Each pytest phase of `make test` records its outcome (tests/conftest.py writes
`build/test-account/<phase>.json`); `python -m testkit.account` prints them as one line, skips
grouped by their reason, so a run that skipped a whole part of the suite says so at the end of the
log rather than in the middle of it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "build" / "test-account"
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def record(phase: str, counts: dict[str, int], skip_reasons: list[str]) -> Path:
    """Write one phase's outcome."""
    DIRECTORY.mkdir(parents=True, exist_ok=True)
    path = DIRECTORY / f"{phase}.json"
    path.write_text(json.dumps({"counts": counts, "skipped": skip_reasons}, indent=1) + "\n")
    return path


def account(directory: Path = DIRECTORY) -> str:
    """Every recorded phase summed into one line."""
    phases = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not phases:
        return "make test: no test phase recorded"
    counts: Counter = Counter()
    reasons: Counter = Counter()
    for path in phases:
        data = json.loads(path.read_text())
        counts.update(data["counts"])
        reasons.update(data["skipped"])
    ran = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])
    why = "; ".join(f"{n} × {reason}" for reason, n in sorted(reasons.items(), key=lambda r: (-r[1], r[0])))
    return f"make test ({', '.join(p.stem for p in phases)}): {ran}" + (f" — skipped: {why}" if why else "")


def clear(directory: Path = DIRECTORY) -> None:
    for path in directory.glob("*.json") if directory.is_dir() else []:
        path.unlink()


if __name__ == "__main__":
    if sys.argv[1:] == ["clear"]:
        clear()
    else:
        print(account())
