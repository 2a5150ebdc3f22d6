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
