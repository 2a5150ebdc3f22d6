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


# preload() in a fresh process (lazy packages executed, every package a plan imports listed) is tested in
# test_sdkload.py, which shares its planning subprocesses.


def test_default_is_one_process_per_environment() -> None:
    from agentinfra.parallel import MAX_DEFAULT_JOBS, default_jobs

    assert default_jobs(3) == 3
    assert default_jobs(1) == 1
    assert default_jobs(50) == MAX_DEFAULT_JOBS
