"""Shared fixtures."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.fixture(scope="session")
def plans() -> dict[str, dict[str, Any]]:
    """One offline plan per shipped environment, shared read-only by tests that only inspect it."""
    from agentinfra.engine import environments, plan

    return {env: json.loads(json.dumps(plan(env))) for env in environments()}
