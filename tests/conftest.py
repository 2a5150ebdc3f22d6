"""Shared fixtures."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Where tests run (an xdist worker, or a run without workers), preload the SDKs and freeze them.

    They define tens of thousands of classes: imported once and moved out of the collector's sight, as the CLI
    does, in-process plans do not pay for full collections walking them over and over. xdist's controller runs
    no test, so it skips the few seconds of imports while its workers start.
    """
    if getattr(config, "workerinput", None) is None and config.getoption("numprocesses", default=None):
        return
    from agentinfra import parallel

    parallel.preload()
    gc.freeze()


@pytest.fixture(scope="session")
def plans() -> dict[str, dict[str, Any]]:
    """One offline plan per shipped environment, shared read-only by tests that only inspect it."""
    from agentinfra.engine import environments, plan

    return {env: json.loads(json.dumps(plan(env))) for env in environments()}


#: Tests that take longest on a fresh checkout, started first so they run beside the rest instead of after it:
#: mypy without its cache analyses the provider SDKs it type-checks our calls against (over a minute).
SLOWEST_FIRST = ("tests/test_quality.py::test_mypy_is_clean",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid not in SLOWEST_FIRST)  # stable: the rest keep their order
