"""The test log says which builds of the deployed servers the tests run (`make tools`), and each
phase records what ran and what was skipped, for the one-line account at the end of `make test`."""

from __future__ import annotations

import os

from testkit.account import OUTCOMES, record
from tools.go_tools import TOOLS, is_built, version_line


def pytest_report_header(config) -> list[str]:
    lines = []
    for tool in TOOLS:
        for command in tool.commands:
            if is_built(tool):
                lines.append(version_line(command, tool.version))
            elif not tool.on_demand:
                lines.append(f"{command} {tool.version}: not built (make tools)")
    return ["Go tools at the deployed versions:", *(f"  {line}" for line in lines)]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Record the phase named by $TEST_PHASE (`make test` sets it); nothing otherwise."""
    phase = os.environ.get("TEST_PHASE")
    if not phase or hasattr(config, "workerinput"):  # the xdist controller records, not its workers
        return
    stats = terminalreporter.stats
    counts = {outcome: len(stats.get(outcome, [])) for outcome in OUTCOMES}
    reasons = [_skip_reason(r) for r in stats.get("skipped", [])]
    record(phase, counts, reasons)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")
