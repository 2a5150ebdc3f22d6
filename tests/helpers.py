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


def check_rule(policy: str, manifest: dict[str, Any], **settings: Any) -> Any:
    """Run one rule (every other disabled) over a manifest at mandatory level; returns the GateResult."""
    from agentinfra.gate import evaluate

    return evaluate(manifest, {"all": "disabled", policy: {"enforcementLevel": "mandatory", **settings}})


def findings(policy: str, manifest: dict[str, Any], **settings: Any) -> list[tuple[str, str, str]]:
    """(kind, resource name, message) for each finding of one rule, sorted."""
    result = check_rule(policy, manifest, **settings)
    return sorted((f.kind, f.resource, f.message) for f in result.findings)


def mutate(manifest: dict[str, Any], name: str, path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``manifest`` with one input of resource ``name`` changed (``a.b.0.c`` paths).

    The value ``DROP`` removes the key; the path ``@options.x`` changes an option instead of an input.
    """
    import copy

    changed = copy.deepcopy(manifest)
    resource = next(r for r in changed["resources"] if r["name"] == name)
    target: Any = resource["options"] if path.startswith("@options.") else resource["inputs"]
    parts = path.removeprefix("@options.").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is DROP:
        del target[last]
    else:
        target[last] = value
    return changed


def remove(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    import copy

    changed = copy.deepcopy(manifest)
    changed["resources"] = [r for r in changed["resources"] if r["name"] != name]
    return changed


DROP = object()
UNKNOWN = {"$unknown": True}
