"""The plan manifest: the JSON record of one environment's resources, and how to read, write and show it.

Layout (``schemaVersion`` 1)::

    {"schemaVersion": 1, "project": "agent-infra", "stack": "prod", "mode": "preview" | "placeholders",
     "config": "config/Pulumi.prod.yaml",
     "resources": [{"urn", "type", "name", "custom", "parent", "provider", "inputs",
                    "dependencies", "propertyDependencies", "options"}, ...],   # sorted by URN
     "outputs": {...}}                                                           # stack outputs

Values the engine could not know are ``{"$unknown": true}``; secret values are ``{"$secret": "redacted"}``
and never appear in clear.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from .errors import InputError

MANIFEST_SCHEMA_VERSION = 1
UNKNOWN_MARK = {"$unknown": True}
SECRET = {"$secret": "redacted"}


class ManifestError(InputError):
    """A manifest file that cannot be used: exit status 2."""


def is_unknown(value: Any) -> bool:
    return isinstance(value, dict) and value.get("$unknown") is True


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and "$secret" in value


def dumps(manifest: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline (two runs give identical bytes)."""
    return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a failed run never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: Path) -> dict[str, Any]:
    """Read a manifest written by ``agentinfra plan --out``; every problem is a ManifestError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest file") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("schemaVersion") != MANIFEST_SCHEMA_VERSION:
        found = data.get("schemaVersion") if isinstance(data, dict) else type(data).__name__
        raise ManifestError(
            f"{path}: expected a manifest with schemaVersion {MANIFEST_SCHEMA_VERSION}, found {found!r}"
        )
    if not isinstance(data.get("resources"), list) or not isinstance(data.get("stack"), str):
        raise ManifestError(f"{path}: expected `stack` and a `resources` list")
    return data


def count_by_type(manifest: dict[str, Any]) -> Counter[str]:
    return Counter(r["type"] for r in manifest["resources"])


def render_tree(manifest: dict[str, Any]) -> str:
    """The resources as a tree of parents and children, with a count by type underneath."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in manifest["resources"]:
        children.setdefault(resource.get("parent"), []).append(resource)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for res in sorted(children.get(parent, []), key=lambda r: (r["type"], r["name"])):
            flags = [
                f
                for f, on in (
                    ("protect", res["options"].get("protect")),
                    ("retain", res["options"].get("retainOnDelete")),
                )
                if on
            ]
            suffix = f"  [{', '.join(flags)}]" if flags else ""
            lines.append(f"{'  ' * depth}{res['type']}  {res['name']}{suffix}")
            walk(res["urn"], depth + 1)

    walk(None, 0)
    counts = count_by_type(manifest)
    lines.append("")
    lines.append(f"{sum(counts.values())} resources in stack {manifest['stack']} ({manifest['mode']}):")
    width = max((len(t) for t in counts), default=0)
    lines.extend(f"  {t.ljust(width)}  {n}" for t, n in sorted(counts.items()))
    return "\n".join(lines)
