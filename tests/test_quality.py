"""The code passes ruff and mypy: run as tests so the one test command covers them."""

from __future__ import annotations

import shutil
import subprocess
import sys

from helpers import ROOT

SOURCES = ["agentinfra", "stacks", "components", "policies/agentinfra_policies", "bench"]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(ROOT / ".venv" / "bin")) or shutil.which(name)
    assert path, f"{name} is not installed: install the test extras (pip install -e '.[test]')"
    return path


def test_ruff_is_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", *SOURCES], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
