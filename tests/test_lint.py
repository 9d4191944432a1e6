"""No unused imports, undefined names or dead assignments anywhere in the program or its tests."""

import subprocess
import sys

from tests.support import ROOT


def test_pyflakes_finds_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "pyflakes", "__main__.py", "connection.py", "config", "components", "monitoring", "policy", "tools", "testkit", "tests"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
