"""Reading IAM-style policy documents and tags out of engine-style (camelCase) props."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def parse_document(value: Any) -> dict[str, Any] | None:
    """A policy document from a JSON string or a mapping; None when it is not one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, Mapping):
        return dict(value)
    return None


def statements(document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not document:
        return []
    raw = document.get("Statement", [])
    items = [raw] if isinstance(raw, Mapping) else list(raw)
    return [dict(s) for s in items if isinstance(s, Mapping)]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    return list(value)


def principals(stmt: Mapping[str, Any]) -> list[str]:
    """Every principal named in a statement, flattened (``"*"`` for a wildcard)."""
    principal = stmt.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return [p for value in principal.values() for p in as_list(value)]
    return []


def is_wildcard_principal(stmt: Mapping[str, Any]) -> bool:
    return "*" in principals(stmt)


def denies_insecure_transport(document: Mapping[str, Any] | None) -> bool:
    """True when some Deny statement matches ``aws:SecureTransport = false`` for every principal."""
    for stmt in statements(document):
        if stmt.get("Effect") != "Deny" or not is_wildcard_principal(stmt):
            continue
        condition = stmt.get("Condition", {}) or {}
        for operator in ("Bool", "BoolIfExists"):
            if str((condition.get(operator) or {}).get("aws:SecureTransport", "")).lower() == "false":
                return True
    return False


def allows_admin(stmt: Mapping[str, Any]) -> bool:
    """An Allow of every action on every resource."""
    return stmt.get("Effect") == "Allow" and "*" in as_list(stmt.get("Action")) and "*" in as_list(stmt.get("Resource"))


def provider_default_tags(provider_props: Mapping[str, Any] | None) -> dict[str, str]:
    """The ``defaultTags.tags`` of an aws provider (the engine passes nested provider config as JSON)."""
    if not provider_props:
        return {}
    raw = provider_props.get("defaultTags")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if isinstance(raw, Mapping):
        tags = raw.get("tags") or {}
        return {str(k): str(v) for k, v in dict(tags).items()}
    return {}
