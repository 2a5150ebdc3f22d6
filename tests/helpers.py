"""Helpers shared by the tests: raw environment config and manifest look-ups."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def raw_config(env: str) -> dict[str, Any]:
    """The ``config:`` mapping of config/Pulumi.<env>.yaml, as YAML gives it."""
    return yaml.safe_load((ROOT / "config" / f"Pulumi.{env}.yaml").read_text())["config"]


def settings_inputs(env: str) -> dict[str, Any]:
    """Keyword arguments for ``parse_settings`` built from an environment's config file."""
    config = raw_config(env)
    return {
        "raw": {k.split(":", 1)[1]: copy.deepcopy(v) for k, v in config.items() if k.startswith("agent-infra:")},
        "environment": env,
        "region": config["aws:region"],
        "account_ids": config["aws:allowedAccountIds"],
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def resources_of(manifest: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in manifest["resources"] if r["type"] == type_]


def by_name(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in manifest["resources"] if r["name"] == name)


def children_of(manifest: dict[str, Any], parent_urn: str) -> list[dict[str, Any]]:
    return [r for r in manifest["resources"] if r.get("parent") == parent_urn]


def record_component(build: Any, stack: str = "test") -> dict[str, Any]:
    """Run ``build()`` as a whole Pulumi program under fresh mocks and return what it registered."""
    from agentinfra.engine import record

    return record(build, stack=stack)
