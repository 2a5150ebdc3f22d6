"""Plan (and check) several environments at once, one process per environment.

Each plan runs the mock runtime in its own event loop; separate processes let them use every core.
Processes are forked after the heavy imports, so each starts warm. With one job or one environment
everything runs in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def default_jobs(count: int) -> int:
    return max(1, min(count, os.cpu_count() or 1))


def map_environments(work: Callable[[str], T], environments: Sequence[str], jobs: int | None = None) -> list[T]:
    """``[work(env) for env in environments]``, in order, over ``jobs`` processes (default: one per core)."""
    jobs = default_jobs(len(environments)) if jobs is None else jobs
    if jobs <= 1 or len(environments) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [work(env) for env in environments]
    # Import the program (and through it every provider SDK module it uses) before forking, so each process
    # starts warm instead of loading pulumi-aws's lazily imported modules itself.
    import stacks.app  # noqa: F401

    with multiprocessing.get_context("fork").Pool(processes=min(jobs, len(environments))) as pool:
        return pool.map(work, environments)
