"""Say in the test log which builds of the deployed servers the tests run (`make tools`)."""

from __future__ import annotations

from tools.go_tools import TOOLS, is_built, version_line


def pytest_report_header(config) -> list[str]:
    lines = []
    for tool in TOOLS:
        for command in tool.commands:
            lines.append(version_line(command) if is_built(tool) else f"{command} {tool.version}: not built (make tools)")
    return ["Go tools at the deployed versions:", *(f"  {line}" for line in lines)]
