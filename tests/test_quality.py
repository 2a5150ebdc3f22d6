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


def test_mypy_follows_every_provider_package_the_program_uses() -> None:
    """Provider services mypy skips are Any to it; every one the program uses must be followed (pyproject)."""
    import tomllib

    from agentinfra.parallel import PROVIDER_PACKAGES

    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    followed = {m for o in overrides if o.get("follow_imports") == "normal" for m in o["module"]}
    skipped = {m for o in overrides if o.get("follow_imports") == "skip" for m in o["module"]}
    assert skipped == {"pulumi_aws.*", "pulumi_kubernetes.*"}
    under_skip = [p for p in PROVIDER_PACKAGES if p.split(".")[0] in ("pulumi_aws", "pulumi_kubernetes")]
    missing = [p for p in under_skip if f"{p}.*" not in followed]
    assert not missing, f"add to [[tool.mypy.overrides]] follow_imports = normal: {missing}"
    assert {"pulumi_aws", "pulumi_aws.provider", "pulumi_kubernetes", "pulumi_kubernetes.provider"} <= followed
