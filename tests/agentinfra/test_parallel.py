"""Environments planned in parallel come back in order, from worker processes."""

from __future__ import annotations

import os

from agentinfra.parallel import map_environments


def _tag(env: str) -> tuple[str, int]:
    return env.upper(), os.getpid()


def test_results_keep_their_order_and_run_in_worker_processes() -> None:
    results = map_environments(_tag, ["dev", "staging", "prod"], jobs=2)
    assert [r[0] for r in results] == ["DEV", "STAGING", "PROD"]
    assert os.getpid() not in {pid for _, pid in results}


def test_one_job_runs_here() -> None:
    assert {pid for _, pid in map_environments(_tag, ["dev", "prod"], jobs=1)} == {os.getpid()}


def test_default_is_one_process_per_environment() -> None:
    from agentinfra.parallel import MAX_DEFAULT_JOBS, default_jobs

    assert default_jobs(3) == 3
    assert default_jobs(1) == 1
    assert default_jobs(50) == MAX_DEFAULT_JOBS


def test_preloaded_packages_cover_every_provider_package_a_plan_imports() -> None:
    """A plan of every shipped environment, in a fresh process, imports no provider package the parent missed."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = """
import json, sys, types
from agentinfra.engine import environments, plan
for env in environments():
    plan(env)
loaded = sorted(
    name for name, module in sys.modules.items()
    if name.split(".")[0] in ("pulumi_aws", "pulumi_kubernetes", "pulumi_random")
    and hasattr(module, "__path__") and type(module) is types.ModuleType
)
print(json.dumps(loaded))
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=240, check=True
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))

    from agentinfra.parallel import PROVIDER_PACKAGES

    # A listed package brings in its parents; the three top-level packages come with any of them.
    covered = set(PROVIDER_PACKAGES) | {".".join(p.split(".")[:i]) for p in PROVIDER_PACKAGES for i in (1, 2)}
    missing = sorted(loaded - covered)
    assert not missing, f"add these to agentinfra.parallel.PROVIDER_PACKAGES: {missing}"
    unused = sorted(set(PROVIDER_PACKAGES) - loaded)
    assert not unused, f"no shipped environment imports {unused}; drop them from PROVIDER_PACKAGES"


def test_preload_runs_the_lazily_imported_packages() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = """
import sys, types
from agentinfra.parallel import PROVIDER_PACKAGES, preload
preload()
print(sorted(n for n in PROVIDER_PACKAGES if type(sys.modules.get(n)) is not types.ModuleType))
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
