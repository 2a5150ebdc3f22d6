"""``agentinfra diff``: what a change to the program does to each environment, read from two plan manifests.

Resources are matched by URN (or through an alias), and each is a create, delete, update, replace or
same. An update lists its property changes as ``(path, before, after)`` with paths such as
``rules[0].expiration.days``; unknown and secret values show as ``(unknown)`` and ``(secret)``, and a
secret's value never reaches the output. Whether a change replaces the resource comes from
``data/replacement.yaml`` (the Terraform AWS provider's ForceNew attributes, which pulumi-aws
bridges) and the resource's ``replaceOnChanges`` option. What hurts users is flagged: replacing or
deleting a stateful resource, touching a protected one, and moving a security setting away from its
safe value (``data/weakening.yaml``).

The report is Markdown sized for a pull-request comment (trimmed to a limit, flags always kept) and a
JSON document with everything. Base and head can also be git revisions: :func:`plan_revision` plans a
revision's program and config with this checkout's engine, in a subprocess of its own.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentinfra_policies.yamlio import safe_load

from . import manifest as mf
from .engine import PlanError
from .errors import InputError

if TYPE_CHECKING:
    from .gate import GateResult

DATA_DIR = Path(__file__).resolve().parent / "data"
DIFF_SCHEMA_VERSION = 1
KINDS = ("create", "update", "replace", "delete", "same")
WARN = "\u26a0\ufe0f"
_TOP = re.compile(r"^[^.\[(]+")
_TOKEN = re.compile(r"\[\*\]|\[\d+\]|[^.\[\]]+")
_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


class DiffInputError(InputError, ValueError):
    """Input the diff cannot use (a bad revision, mismatched stacks): exit status 2, one message."""


class RevisionError(DiffInputError):
    """A git revision that does not exist, or whose program could not be planned."""


class _Absent:
    """A property missing on one side of a change (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


# --------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ReplaceRule:
    """One input whose change forces replacement (a top-level name or a dotted nested path)."""

    path: str
    certain: bool = True
    when: str = "changed"
    """``changed`` or ``removed`` (replaces only when the property goes away)."""
    note: str = ""


@dataclass(frozen=True)
class WeakeningRule:
    """A security setting and the values that are safe for it."""

    type: str
    path: str
    message: str
    safe: tuple[Any, ...] = ()
    gains: Any = None
    removed: bool = False
    where: tuple[tuple[str, Any], ...] = ()
    target: str | None = None


@dataclass(frozen=True)
class Knowledge:
    """The shipped tables: replacement rules per type, stateful types, security settings."""

    replace: dict[str, tuple[ReplaceRule, ...]]
    any_aws: tuple[ReplaceRule, ...]
    stateful: frozenset[str]
    weakening: tuple[WeakeningRule, ...]


def _replace_rule(entry: Any, source: str) -> ReplaceRule:
    if isinstance(entry, str):
        return ReplaceRule(entry)
    if isinstance(entry, dict) and isinstance(entry.get("property"), str):
        when = entry.get("when", "changed")
        if when not in ("changed", "removed"):
            raise ValueError(f"{source}: {entry['property']}: `when` must be changed or removed, found {when!r}")
        return ReplaceRule(entry["property"], bool(entry.get("certain", True)), when, str(entry.get("note", "")))
    raise ValueError(f"{source}: expected a property name or {{property: ...}}, found {entry!r}")


def _weakening_rule(entry: Any, source: str) -> WeakeningRule:
    if not isinstance(entry, dict) or not {"type", "path", "message"} <= set(entry):
        raise ValueError(f"{source}: each rule needs type, path and message, found {entry!r}")
    checks = [k for k in ("safe", "gains", "removed") if k in entry]
    if len(checks) != 1:
        raise ValueError(f"{source}: {entry['type']} {entry['path']}: expected exactly one of safe, gains, removed")
    return WeakeningRule(
        type=entry["type"],
        path=entry["path"],
        message=entry["message"],
        safe=tuple(entry.get("safe", ())),
        gains=entry.get("gains"),
        removed=bool(entry.get("removed", False)),
        where=tuple(sorted((entry.get("where") or {}).items())),
        target=entry.get("target"),
    )


@functools.lru_cache(maxsize=1)
def knowledge() -> Knowledge:
    """Load and check ``data/replacement.yaml`` and ``data/weakening.yaml`` (once per process)."""
    repl_path, weak_path = DATA_DIR / "replacement.yaml", DATA_DIR / "weakening.yaml"
    repl = safe_load(repl_path.read_text(encoding="utf-8"))
    weak = safe_load(weak_path.read_text(encoding="utf-8"))
    replace = {
        type_: tuple(_replace_rule(e, f"{repl_path.name}: {type_}") for e in entries or [])
        for type_, entries in repl["replace"].items()
    }
    return Knowledge(
        replace=replace,
        any_aws=tuple(_replace_rule(e, f"{repl_path.name}: any_aws") for e in repl.get("any_aws") or []),
        stateful=frozenset(repl["stateful"]),
        weakening=tuple(_weakening_rule(e, weak_path.name) for e in weak["rules"]),
    )


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class PropertyChange:
    """One leaf that differs. ``before``/``after`` are manifest values, or ABSENT."""

    path: str
    before: Any
    after: Any

    def __iter__(self) -> Iterator[Any]:
        return iter((self.path, self.before, self.after))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path}
        if self.before is not ABSENT:
            data["before"] = _sanitize(self.before)
        if self.after is not ABSENT:
            data["after"] = _sanitize(self.after)
        return data


@dataclass(frozen=True)
class ReplaceReason:
    path: str
    """The changed property path (or ``provider``)."""
    source: str
    """``table``, ``replaceOnChanges``, ``provider`` or ``inferred: unknown type``."""
    certain: bool
    note: str = ""


@dataclass(frozen=True)
class Replacement:
    reasons: tuple[ReplaceReason, ...]
    delete_before_replace: bool = False

    @property
    def certain(self) -> bool:
        return any(r.certain for r in self.reasons)

    def describe(self) -> str:
        """The reasons in words, for the report and the flags."""
        parts = []
        for r in self.reasons:
            if r.source == "provider":
                parts.append(f"a provider change ({r.note})")
                continue
            qualifiers = [s for s in (r.source if r.source != "table" else "", "" if r.certain else "uncertain") if s]
            if r.note:
                qualifiers.append(r.note)
            parts.append(f"`{r.path}`" + (f" ({'; '.join(qualifiers)})" if qualifiers else ""))
        order = "; the old resource is deleted first (deleteBeforeReplace)" if self.delete_before_replace else ""
        return ", ".join(parts) + order

    def to_json(self) -> dict[str, Any]:
        return {
            "certain": self.certain,
            "deleteBeforeReplace": self.delete_before_replace,
            "reasons": [
                {"path": r.path, "source": r.source, "certain": r.certain, "note": r.note} for r in self.reasons
            ],
        }


@dataclass
class ResourceChange:
    urn: str
    type: str
    name: str
    kind: str
    """``create``, ``update``, ``replace``, ``delete`` or ``same``."""
    properties: list[PropertyChange] = field(default_factory=list)
    options: list[PropertyChange] = field(default_factory=list)
    """Changed resource options (``protect``, ``retainOnDelete``, ...) and a changed ``parent``."""
    replacement: Replacement | None = None
    """Set for a replace, and for an update that may replace (``certain`` False)."""
    ignored: list[str] = field(default_factory=list)
    """Changed paths left out because the head's ``ignoreChanges`` covers them."""
    previous_urn: str | None = None
    """The base URN when the head took this resource over through an alias."""
    stateful: bool = False
    protected: bool = False
    retained: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"urn": self.urn, "type": self.type, "name": self.name, "kind": self.kind}
        if self.properties:
            data["properties"] = [p.to_json() for p in self.properties]
        if self.options:
            data["options"] = [p.to_json() for p in self.options]
        if self.replacement:
            data["replacement"] = self.replacement.to_json()
        if self.ignored:
            data["ignored"] = self.ignored
        if self.previous_urn:
            data["previousUrn"] = self.previous_urn
        data.update(stateful=self.stateful, protected=self.protected, retainOnDelete=self.retained)
        return data


@dataclass(frozen=True)
class Flag:
    kind: str
    """``stateful``, ``protected`` or ``weakened``."""
    urn: str
    type: str
    name: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "urn": self.urn, "type": self.type, "name": self.name, "message": self.message}


@dataclass
class StackDiff:
    environment: str
    changes: list[ResourceChange] = field(default_factory=list)
    """Every resource that is not the same, in URN order."""
    unchanged: list[str] = field(default_factory=list)
    """URNs classified ``same``."""
    flags: list[Flag] = field(default_factory=list)
    gate: GateResult | None = None
    """The head's policy results, when the gate ran."""
    cost_delta: float | None = None
    """Monthly cost change in USD; None when not estimated."""
    base_present: bool = True
    head_present: bool = True

    def of_kind(self, kind: str) -> list[ResourceChange]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def counts(self) -> dict[str, int]:
        counts = {k: 0 for k in KINDS}
        for change in self.changes:
            counts[change.kind] += 1
        counts["same"] = len(self.unchanged)
        return counts

    @property
    def possible_replacements(self) -> int:
        return sum(1 for c in self.changes if c.kind == "update" and c.replacement is not None)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)


# ------------------------------------------------------------------------------------ value walking


def _join(path: str, key: str) -> str:
    segment = key if _IDENT.match(key) else json.dumps(key)
    if not _IDENT.match(key):
        return f"{path}[{segment}]"
    return f"{path}.{segment}" if path else segment


def _json_container(value: Any) -> Any:
    """A string that holds a JSON object or array (IAM policies, provider settings), parsed; else None."""
    if not isinstance(value, str) or value[:1] not in ("{", "["):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _is_marker(value: Any) -> bool:
    return mf.is_unknown(value) or mf.is_secret(value)


def _same(before: Any, after: Any) -> bool:
    if mf.is_unknown(before) and mf.is_unknown(after):
        return True  # both unknown: the plan cannot tell, and a preview would not show a change either
    if mf.is_secret(before) and mf.is_secret(after):
        return True  # both redacted: equal as far as anyone reading the manifest can know
    if _numbers_equal(before, after):
        return True  # 30 and 30.0 are the same setting
    return type(before) is type(after) and bool(before == after)


def _numbers_equal(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and a == b


def property_changes(before: Any, after: Any, path: str = "") -> list[PropertyChange]:
    """Every leaf that differs between two input trees, with dotted/indexed paths, in path order."""
    out: list[PropertyChange] = []
    _walk(before, after, path, out)
    return out


def _walk(before: Any, after: Any, path: str, out: list[PropertyChange]) -> None:
    if _same(before, after):
        return
    if _is_marker(before) or _is_marker(after):
        out.append(PropertyChange(path, before, after))
    elif isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            _walk(before.get(key, ABSENT), after.get(key, ABSENT), _join(path, key), out)
    elif isinstance(before, list) and isinstance(after, list):
        for i in range(max(len(before), len(after))):
            b = before[i] if i < len(before) else ABSENT
            a = after[i] if i < len(after) else ABSENT
            _walk(b, a, f"{path}[{i}]", out)
    elif (pb := _json_container(before)) is not None and (pa := _json_container(after)) is not None:
        _walk(pb, pa, f"{path}(json)", out)
    else:
        out.append(PropertyChange(path, before, after))


def _tokens(path: str) -> list[str]:
    return _TOKEN.findall(path)


def _get(value: Any, path: str) -> Any:
    """The value at a concrete path (no wildcards), or ABSENT."""
    for token in _tokens(path):
        if token.startswith("["):
            index = int(token[1:-1])
            if not isinstance(value, list) or index >= len(value):
                return ABSENT
            value = value[index]
        else:
            if not isinstance(value, dict) or token not in value:
                return ABSENT
            value = value[token]
    return value


def _expand(value: Any, pattern: str) -> dict[str, Any]:
    """Concrete paths (and their values) matching a pattern with ``[*]`` wildcards."""
    found: dict[str, Any] = {"": value}
    for token in _tokens(pattern):
        step: dict[str, Any] = {}
        for prefix, current in found.items():
            if token == "[*]":
                if isinstance(current, list):
                    step.update({f"{prefix}[{i}]": v for i, v in enumerate(current)})
            elif token.startswith("["):
                index = int(token[1:-1])
                if isinstance(current, list) and index < len(current):
                    step[f"{prefix}{token}"] = current[index]
            elif isinstance(current, dict) and token in current:
                step[f"{prefix}.{token}" if prefix else token] = current[token]
        found = step
    return found


def _covers(rule_path: str, change_path: str) -> bool:
    """True when a change at ``change_path`` touches ``rule_path`` (equal, inside it, or containing it)."""
    if rule_path == "*" or change_path == rule_path:
        return True
    return change_path.startswith((rule_path + ".", rule_path + "[", rule_path + "(")) or rule_path.startswith(
        (change_path + ".", change_path + "[")
    )


def _top(path: str) -> str:
    match = _TOP.match(path)
    return match.group(0) if match else path


# ------------------------------------------------------------------------------------ classification


def _options_of(resource: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((resource or {}).get("options") or {})


def _ignored(path: str, ignore: Iterable[str]) -> bool:
    return any(p == "*" or path == p or path.startswith((p + ".", p + "[", p + "(")) for p in ignore)


def _replace_reasons(
    res_type: str, changes: list[PropertyChange], head: Mapping[str, Any], base: Mapping[str, Any], know: Knowledge
) -> list[ReplaceReason]:
    reasons: dict[str, ReplaceReason] = {}
    table = know.replace.get(res_type)
    rules = list(table or ()) + (list(know.any_aws) if res_type.startswith("aws:") else [])
    head_inputs, base_inputs = head.get("inputs") or {}, base.get("inputs") or {}
    for rule in rules:
        hit = next((c for c in changes if _covers(rule.path, c.path)), None)
        if hit is None:
            continue
        if rule.when == "removed" and _get(head_inputs, rule.path) is not ABSENT:
            continue
        if rule.path in reasons or _same(_get(base_inputs, rule.path), _get(head_inputs, rule.path)):
            continue
        reasons[rule.path] = ReplaceReason(rule.path, "table", rule.certain, rule.note)
    for entry in _options_of(head).get("replaceOnChanges") or []:
        for change in changes:
            if _covers(entry, change.path) and entry not in reasons:
                reasons[entry] = ReplaceReason(entry, "replaceOnChanges", True)
    if table is None and head.get("custom", True) and not res_type.startswith("pulumi:"):
        for change in changes:
            top = _top(change.path)
            if (top in ("name", "namePrefix") or top.endswith("Name")) and top not in reasons:
                note = "a name is usually fixed at creation; this type is not in data/replacement.yaml"
                reasons[top] = ReplaceReason(top, "inferred: unknown type", False, note)
    return list(reasons.values())


def _option_changes(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[PropertyChange]:
    changes = property_changes(_options_of(base), _options_of(head))
    if base.get("parent") != head.get("parent"):
        changes.append(PropertyChange("parent", base.get("parent"), head.get("parent")))
    return changes


def _compare(base: Mapping[str, Any], head: Mapping[str, Any], know: Knowledge, previous: str | None) -> ResourceChange:
    ignore = _options_of(head).get("ignoreChanges") or []
    all_changes = property_changes(base.get("inputs") or {}, head.get("inputs") or {})
    props = [c for c in all_changes if not _ignored(c.path, ignore)]
    change = ResourceChange(
        urn=head["urn"],
        type=head["type"],
        name=head["name"],
        kind="same",
        properties=props,
        options=_option_changes(base, head),
        ignored=[c.path for c in all_changes if c not in props],
        previous_urn=previous,
    )
    reasons = _replace_reasons(head["type"], props, head, base, know)
    if base.get("provider") != head.get("provider"):
        reasons.append(ReplaceReason("provider", "provider", True, f"{base.get('provider')} -> {head.get('provider')}"))
    if reasons:
        dbr = bool(_options_of(head).get("deleteBeforeReplace") or _options_of(base).get("deleteBeforeReplace"))
        change.replacement = Replacement(tuple(reasons), dbr)
    if change.replacement is not None and change.replacement.certain:
        change.kind = "replace"
    elif props or change.options or previous:
        change.kind = "update"
    return change


def _alias_urns(resource: Mapping[str, Any]) -> list[str]:
    urns = []
    for alias in _options_of(resource).get("aliases") or []:
        if isinstance(alias, str):
            urns.append(alias)
        elif isinstance(alias, dict) and isinstance(alias.get("urn"), str):
            urns.append(alias["urn"])
    return urns


def _resources(manifest: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in (manifest or {}).get("resources", [])}


def _annotate(
    change: ResourceChange, base: Mapping[str, Any] | None, head: Mapping[str, Any] | None, know: Knowledge
) -> None:
    opts_b, opts_h = _options_of(base), _options_of(head)
    change.stateful = change.type in know.stateful
    change.protected = bool(opts_b.get("protect") or opts_h.get("protect"))
    change.retained = bool((opts_b if change.kind == "delete" else opts_h).get("retainOnDelete"))


def diff_manifests(
    base: Mapping[str, Any] | None,
    head: Mapping[str, Any] | None,
    *,
    gate: GateResult | None = None,
    cost_delta: float | None = None,
) -> StackDiff:
    """Compare two manifests of one stack; either may be None (the environment is new, or removed)."""
    names = [m["stack"] for m in (base, head) if m is not None]
    if not names:
        raise DiffInputError("diff_manifests needs at least one manifest")
    if len(set(names)) > 1:
        raise DiffInputError(f"base is stack {names[0]!r} but head is stack {names[1]!r}: compare one stack at a time")
    modes = [m.get("mode") for m in (base, head) if m is not None]
    if len(set(modes)) > 1:
        raise DiffInputError(
            f"{names[0]}: base was planned in {modes[0]!r} mode and head in {modes[1]!r} mode; plan both the same way "
            "(with or without --placeholders), or every computed value shows as a change"
        )
    know = knowledge()
    before, after = _resources(base), _resources(head)
    result = StackDiff(
        environment=names[0],
        gate=gate,
        cost_delta=cost_delta,
        base_present=base is not None,
        head_present=head is not None,
    )
    claimed: dict[str, str] = {}  # head URN -> base URN it took over through an alias
    for urn, res in after.items():
        if urn not in before:
            old = next((a for a in _alias_urns(res) if a in before and a not in after), None)
            if old is not None:
                claimed[urn] = old
    for urn in sorted(set(before) | set(after)):
        change = _classify(urn, before, after, claimed, know)
        if change is None:
            continue
        if change.kind == "same":
            result.unchanged.append(urn)
        else:
            result.changes.append(change)
    result.flags = _flags(result.changes, before, after, know)
    return result


def _classify(
    urn: str,
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    claimed: dict[str, str],
    know: Knowledge,
) -> ResourceChange | None:
    if urn in before and urn in claimed.values():
        return None  # reported under the head URN that took it over
    b, h = before.get(urn), after.get(urn)
    if urn in claimed:
        b = before[claimed[urn]]
    if b is not None and h is not None:
        change = _compare(b, h, know, claimed.get(urn))
    else:
        res: dict[str, Any] = h if h is not None else b  # type: ignore[assignment]
        change = ResourceChange(urn=urn, type=res["type"], name=res["name"], kind="create" if h else "delete")
    _annotate(change, b, h, know)
    return change


# ---------------------------------------------------------------------------------------------- flags


def _flags(
    changes: list[ResourceChange], before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], know: Knowledge
) -> list[Flag]:
    flags: list[Flag] = []
    for change in changes:
        base = before.get(change.previous_urn or change.urn)
        head = after.get(change.urn)

        def flag(kind: str, message: str, change: ResourceChange = change) -> None:
            flags.append(Flag(kind, change.urn, change.type, change.name, message))

        if change.stateful:
            message = _stateful_message(change)
            if message:
                flag("stateful", message)
        if change.protected and change.kind != "create":
            flag("protected", _protected_message(change))
        for message in _weakened(change, base, head, after, know):
            flag("weakened", message)
    return flags


def _stateful_message(change: ResourceChange) -> str | None:
    if change.kind == "delete":
        if change.retained:
            return "stateful resource removed from the stack (retainOnDelete: the cloud resource and its data are kept)"
        return "stateful resource deleted: its data goes with it"
    if change.replacement is None:
        return None
    verb = "replaced" if change.kind == "replace" else "may be replaced"
    return f"stateful resource {verb}, a new and empty one takes its place: {change.replacement.describe()}"


def _protected_message(change: ResourceChange) -> str:
    if change.kind in ("delete", "replace"):
        return f"protected resource would be {change.kind}d: `pulumi up` refuses until protect is removed"
    paths = [p.path for p in change.properties] + [f"option {p.path}" for p in change.options]
    shown = ", ".join(f"`{p}`" for p in paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return f"protected resource changes in place: {shown}"


def _matches_where(rule: WeakeningRule, inputs: Mapping[str, Any]) -> bool:
    return all(inputs.get(key) == value for key, value in rule.where)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _weakened(
    change: ResourceChange,
    base: Mapping[str, Any] | None,
    head: Mapping[str, Any] | None,
    after: dict[str, dict[str, Any]],
    know: Knowledge,
) -> list[str]:
    b_inputs = (base or {}).get("inputs") or {}
    h_inputs = (head or {}).get("inputs") or {}
    messages = []
    for rule in know.weakening:
        if rule.type != change.type or not _matches_where(rule, h_inputs if head else b_inputs):
            continue
        if head is None and not _setting_target_survives(rule, base or {}, after):
            continue
        messages.extend(_check_rule(rule, b_inputs, h_inputs, deleted=head is None))
    return messages


def _setting_target_survives(rule: WeakeningRule, base: Mapping[str, Any], after: dict[str, Any]) -> bool:
    """A deleted setting weakens something only if what it configured is still there."""
    if rule.target is None:
        return False  # the resource itself is gone: the stateful and protected flags speak for it
    targets = (base.get("propertyDependencies") or {}).get(rule.target) or []
    return not targets or any(t in after for t in targets)


def _check_rule(rule: WeakeningRule, before: Mapping[str, Any], after: Mapping[str, Any], deleted: bool) -> list[str]:
    where = " (resource deleted)" if deleted else ""
    if rule.gains is not None:
        had = {json.dumps(v, sort_keys=True) for v in _leaves(list(_expand(before, rule.path).values()))}
        now = [v for v in _leaves(list(_expand(after, rule.path).values())) if v == rule.gains]
        if now and json.dumps(rule.gains, sort_keys=True) not in had:
            return [f"{rule.message}: `{rule.path}` now includes {_show(rule.gains)}"]
        return []
    messages = []
    for path, value in _expand(before, rule.path).items():
        now = ABSENT if deleted else _get(after, path)
        if mf.is_unknown(now):
            continue
        if rule.removed:
            if value not in (None, "", [], ABSENT) and now in (None, "", [], ABSENT):
                messages.append(f"{rule.message}: `{path}` {_show(value)} \u2192 {_show(now)}{where}")
        elif value in rule.safe and (now is ABSENT or now not in rule.safe):
            messages.append(f"{rule.message}: `{path}` {_show(value)} \u2192 {_show(now)}{where}")
    return messages


# ------------------------------------------------------------------------------------ loading inputs


ManifestSource = Path | str | Mapping[str, Mapping[str, Any]]


def load_manifests(source: ManifestSource) -> dict[str, dict[str, Any]]:
    """Manifests by environment from a dict, a manifest file, or a directory of ``<env>.json``."""
    if isinstance(source, Mapping):
        return {env: dict(m) for env, m in source.items()}
    path = Path(source)
    if path.is_file():
        m = mf.load(path)
        return {m["stack"]: m}
    if path.is_dir():
        found = {}
        for file in sorted(path.glob("*.json")):
            m = mf.load(file)
            if m["stack"] in found:
                raise DiffInputError(f"{path}: two manifests hold stack {m['stack']!r}")
            found[m["stack"]] = m
        if not found:
            raise DiffInputError(f"{path}: no <env>.json manifests in this directory")
        return found
    raise DiffInputError(f"{path}: no such manifest file or directory")


def diff_all(
    base: ManifestSource,
    head: ManifestSource,
    *,
    environments: Iterable[str] | None = None,
    gate_results: Mapping[str, GateResult] | None = None,
    cost_deltas: Mapping[str, float | None] | None = None,
) -> list[StackDiff]:
    """Diff every environment found on either side (or just ``environments``), sorted by name."""
    before, after = load_manifests(base), load_manifests(head)
    wanted = sorted(set(environments) if environments is not None else set(before) | set(after))
    missing = [env for env in wanted if env not in before and env not in after]
    if missing:
        raise DiffInputError(f"environment(s) {', '.join(missing)} in neither base nor head")
    return [
        diff_manifests(
            before.get(env),
            after.get(env),
            gate=(gate_results or {}).get(env),
            cost_delta=(cost_deltas or {}).get(env),
        )
        for env in wanted
    ]


# ------------------------------------------------------------------------------------- git revisions

#: Runs in the subprocess: this checkout's ``agentinfra`` package (argv[1]) is loaded by path, so the
#: engine is HEAD's, while ``stacks``, ``components`` and the policies resolve from the revision's tree
#: (first on sys.path). argv: package dir, program root, output dir, environments...
_PLAN_SCRIPT = """
import gc, importlib.util, sys
from pathlib import Path
gc.disable()  # a batch job, as in the CLI
package, root, out, *envs = sys.argv[1:]
spec = importlib.util.spec_from_file_location(
    "agentinfra", Path(package) / "__init__.py", submodule_search_locations=[package])
module = importlib.util.module_from_spec(spec)
sys.modules["agentinfra"] = module
spec.loader.exec_module(module)
from agentinfra import sdkload
sdkload.install()
from agentinfra import manifest as mf
from agentinfra.engine import PlanError, plan
for env in envs:
    try:
        result = plan(env, root=Path(root))
    except PlanError as exc:
        (Path(out) / "plan-error.txt").write_text(f"{env}: {exc}", encoding="utf-8")
        raise SystemExit(2)
    mf.write_atomic(Path(out) / f"{env}.json", mf.dumps(result))
"""


_WORKTREE_LOCK = threading.Lock()


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def resolve_revision(rev: str, repo_root: Path) -> str:
    """The commit id of ``rev`` in ``repo_root``; RevisionError naming it when there is none."""
    found = _git(repo_root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        if _git(repo_root, "rev-parse", "--git-dir").returncode != 0:
            raise RevisionError(f"{repo_root} is not a git repository, so {rev!r} cannot be read as a revision")
        raise RevisionError(f"git revision {rev!r} not found in {repo_root}")
    return found.stdout.strip()


def plan_tree(root: Path, environments: Iterable[str] | None = None, *, label: str | None = None) -> dict[str, Any]:
    """Plan the program in ``root`` (a checkout other than this one) in a subprocess; manifests by env.

    A subprocess because the program's modules (``stacks``, ``components``) are imported by name and
    this process may already hold another tree's copies. Environments missing from ``root`` are skipped.
    """
    from .engine import environments as environments_in

    label = label or str(root)
    present = environments_in(root)
    envs = [e for e in (environments if environments is not None else present) if e in present]
    if not envs:
        return {}
    package = Path(__file__).resolve().parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root), str(root / "policies")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="agentinfra-plan-") as out:
        done = subprocess.run(
            [sys.executable, "-c", _PLAN_SCRIPT, str(package), str(root), out, *envs],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        error = Path(out) / "plan-error.txt"
        if done.returncode == 2 and error.exists():
            raise PlanError(f"{label}: {error.read_text(encoding='utf-8')}")
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise RevisionError(f"{label}: planning failed (exit {done.returncode}):\n{tail}")
        return {e: json.loads((Path(out) / f"{e}.json").read_text(encoding="utf-8")) for e in envs}


def plan_revision(rev: str, env_list: Iterable[str] | None, repo_root: Path) -> dict[str, Any]:
    """Plan a git revision's program and config with this checkout's engine; manifests by environment.

    A detached worktree of ``rev`` is created in a temporary directory and always removed afterwards.
    Only environments that exist in that revision are planned (``env_list`` None: all of them).
    """
    repo_root = Path(repo_root).resolve()
    commit = resolve_revision(rev, repo_root)
    holder = Path(tempfile.mkdtemp(prefix="agentinfra-diff-"))
    worktree = holder / holder.name  # git names the worktree after the directory: unique per call
    try:
        with _WORKTREE_LOCK:  # BASE and HEAD may be planned at once; git's worktree bookkeeping one at a time
            added = _git(repo_root, "worktree", "add", "--detach", "--quiet", str(worktree), commit)
        if added.returncode != 0:
            raise RevisionError(f"git worktree add for {rev!r} failed: {added.stderr.strip()}")
        return plan_tree(worktree, env_list, label=f"revision {rev} ({commit[:12]})")
    finally:
        with _WORKTREE_LOCK:
            if worktree.exists():
                _git(repo_root, "worktree", "remove", "--force", str(worktree))
            _git(repo_root, "worktree", "prune")
        shutil.rmtree(holder, ignore_errors=True)


# --------------------------------------------------------------------------------------- rendering


def _sanitize(value: Any) -> Any:
    """Manifest value for output: secrets reduced to the redaction marker, whatever they held."""
    if mf.is_secret(value):
        return dict(mf.SECRET)
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    return value


def _display(value: Any) -> Any:
    if mf.is_secret(value):
        return "(secret)"
    if mf.is_unknown(value):
        return "(unknown)"
    if isinstance(value, dict):
        if set(value) == {"$resourceRef"}:
            return f"(ref {str(value['$resourceRef']).rsplit('::', 1)[-1]})"
        return {k: _display(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_display(v) for v in value]
    return value


def _show(value: Any, width: int = 80) -> str:
    """A value in one short line: markers as (unknown)/(secret)/(absent), long text cut with an ellipsis."""
    if value is ABSENT:
        return "(absent)"
    shown = _display(value)
    text = shown if isinstance(shown, str) and shown.startswith("(") and not isinstance(value, str) else None
    if text is None:
        text = json.dumps(shown, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    text = text.replace("`", "'")
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _policy_status(gate: GateResult | None) -> str:
    if gate is None:
        return "not run"
    advisory = sum(1 for f in gate.findings if f.kind == "violation" and f.level == "advisory")
    extra = f" ({advisory} advisory)" if advisory else ""
    if gate.passed:
        return f"\u2705 passed{extra}"
    return f"\u274c {len(gate.mandatory_violations)} mandatory{extra}"


def format_cost(delta: float | None) -> str:
    return "not estimated" if delta is None else f"{delta:+,.2f} USD/month"


def _replace_cell(diff: StackDiff) -> str:
    count, maybe = diff.counts["replace"], diff.possible_replacements
    return f"{count} (+{maybe} possible)" if maybe else str(count)


def _summary_table(diffs: list[StackDiff], gates: Mapping[str, Any], costs: Mapping[str, Any]) -> list[str]:
    lines = [
        "| Environment | Create | Update | Replace | Delete | Flagged | Policy | Cost |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for d in diffs:
        c = d.counts
        flagged = f"{WARN} {len(d.flags)}" if d.flags else "0"
        lines.append(
            f"| {d.environment} | {c['create']} | {c['update']} | {_replace_cell(d)} | {c['delete']} | {flagged} "
            f"| {_policy_status(gates.get(d.environment))} | {format_cost(costs.get(d.environment))} |"
        )
    return lines


def _change_lines(change: ResourceChange) -> list[str]:
    label = f"`{change.name}` (`{change.type}`)"
    if change.previous_urn:
        label += f", renamed from `{change.previous_urn.rsplit('::', 1)[-1]}` through an alias"
    lines = [f"- {label}"]
    if change.replacement is not None:
        verb = "replaces because of" if change.kind == "replace" else "may replace because of"
        lines.append(f"  - {verb} {change.replacement.describe()}")
    for prop in change.properties:
        lines.append(f"  - `{prop.path}`: `{_show(prop.before)}` \u2192 `{_show(prop.after)}`")
    for opt in change.options:
        lines.append(f"  - option `{opt.path}`: `{_show(opt.before)}` \u2192 `{_show(opt.after)}`")
    if change.ignored:
        lines.append(f"  - ignored by ignoreChanges: {', '.join(f'`{p}`' for p in change.ignored)}")
    return lines


_SECTIONS = (
    ("replace", "Replace"),
    ("delete", "Delete"),
    ("update", "Update"),
    ("create", "Create"),
)


def _env_parts(diff: StackDiff, gate: GateResult | None, cost: float | None) -> tuple[list[str], list[str], list[str]]:
    """(essential head, trimmable detail, essential tail) lines of one environment's section."""
    c = diff.counts
    parts = [f"{c[k]} to {k}" for k in ("create", "update", "replace", "delete") if c[k]]
    summary = ", ".join(parts) or "no changes"
    if diff.flags:
        summary += f", {WARN} {len(diff.flags)} flagged"
    head = ["<details>", f"<summary><b>{diff.environment}</b>: {summary}</summary>", ""]
    if not diff.base_present:
        head.append("_New environment: not in the base._")
    if not diff.head_present:
        head.append("_Environment removed: not in the head._")
    if diff.flags:
        head.append(f"**{WARN} Flagged**")
        head.extend(f"- {WARN} **{f.kind}** `{f.name}` (`{f.type}`): {f.message}" for f in diff.flags)
        head.append("")
    if gate is not None and gate.mandatory_violations:
        shown = gate.mandatory_violations[:10]
        head.append(f"**Policy**: {len(gate.mandatory_violations)} mandatory violation(s)")
        head.extend(f"- \u274c `{f.rule_id}` `{f.resource}`: {f.message.splitlines()[0]}" for f in shown)
        if len(gate.mandatory_violations) > len(shown):
            head.append(f"- and {len(gate.mandatory_violations) - len(shown)} more (JSON artifact)")
        head.append("")
    detail: list[str] = []
    for kind, title in _SECTIONS:
        items = sorted(diff.of_kind(kind), key=lambda c: (c.name, c.type))
        if not items:
            continue
        detail.append(f"**{title}** ({len(items)})")
        for change in items:
            detail.extend(
                _change_lines(change) if kind in ("update", "replace") else [f"- `{change.name}` (`{change.type}`)"]
            )
        detail.append("")
    tail = [f"cost: {format_cost(cost)}", f"policy: {_policy_status(gate)}", "", "</details>", ""]
    return head, detail, tail


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def render_markdown(
    diffs: list[StackDiff],
    gate_results: Mapping[str, GateResult] | None = None,
    cost_deltas: Mapping[str, float | None] | None = None,
    limit: int = 60000,
    *,
    title: str | None = None,
) -> str:
    """The report for a pull-request comment, at most ``limit`` characters.

    ``gate_results`` and ``cost_deltas`` (by environment) override what each StackDiff carries. When
    the full text is too long, per-resource detail is trimmed from the end of each environment's
    section; the summary table, flags, policy and cost lines are kept, and a note says what was cut.
    """
    gates = {d.environment: d.gate for d in diffs} | dict(gate_results or {})
    costs = {d.environment: d.cost_delta for d in diffs} | dict(cost_deltas or {})
    top = [f"### Infrastructure diff{f': {title}' if title else ''}", ""] + _summary_table(diffs, gates, costs) + [""]
    sections = [_env_parts(d, gates.get(d.environment), costs.get(d.environment)) for d in diffs]
    full = top + [line for head, detail, tail in sections for line in head + detail + tail]
    if _size(full) <= limit:
        return "\n".join(full)
    return _trimmed(top, sections, limit)


def _trimmed(top: list[str], sections: list[tuple[list[str], list[str], list[str]]], limit: int) -> str:
    note_reserve = 200
    per_env_note = 60
    essential = _size(top) + sum(_size(h) + _size(t) + per_env_note for h, _, t in sections) + note_reserve
    budget = limit - essential
    out = list(top)
    trimmed_total = 0
    for head, detail, tail in sections:
        kept: list[str] = []
        for i, line in enumerate(detail):
            if len(line) + 1 > budget:
                trimmed = len(detail) - i
                trimmed_total += trimmed
                kept.append(f"_\u2026 {trimmed} more line(s) trimmed_")
                break
            budget -= len(line) + 1
            kept.append(line)
        out.extend(head + kept + tail)
    out.append(
        f"_Trimmed {trimmed_total} line(s) of detail to fit {limit} characters; "
        "the full report is in the JSON artifact._"
    )
    text = "\n".join(out)
    if len(text) <= limit:
        return text
    # Even the flags do not fit: cut at a line boundary and say so.
    note = "\n\n_Report cut to fit the comment limit; the full report is in the JSON artifact._"
    cut = text[: max(0, limit - len(note))]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    return cut + note


def render_text(diffs: list[StackDiff]) -> str:
    """A terminal summary: one line per environment, then its flags and changes."""
    marks = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}
    lines = []
    for d in diffs:
        c = d.counts
        counts = ", ".join(f"{c[k]} to {k}" for k in ("create", "update", "replace", "delete"))
        lines.append(f"{d.environment}: {counts}; {len(d.flags)} flagged; cost: {format_cost(d.cost_delta)}")
        lines.extend(f"  ! {f.kind}: {f.name} ({f.type}): {f.message}" for f in d.flags)
        for change in d.changes:
            lines.append(f"  {marks[change.kind]:>2} {change.type}  {change.name}")
            lines.extend(f"       {p.path}: {_show(p.before)} -> {_show(p.after)}" for p in change.properties)
    return "\n".join(lines)


def to_json(
    diffs: list[StackDiff],
    gate_results: Mapping[str, GateResult] | None = None,
    cost_deltas: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """Everything in machine-readable form (secrets stay redacted)."""
    gates = {d.environment: d.gate for d in diffs} | dict(gate_results or {})
    costs = {d.environment: d.cost_delta for d in diffs} | dict(cost_deltas or {})
    environments = []
    for d in diffs:
        gate = gates.get(d.environment)
        environments.append(
            {
                "environment": d.environment,
                "basePresent": d.base_present,
                "headPresent": d.head_present,
                "summary": d.counts | {"possibleReplace": d.possible_replacements, "flagged": len(d.flags)},
                "flags": [f.to_json() for f in d.flags],
                "changes": [c.to_json() for c in d.changes],
                "unchanged": d.unchanged,
                "policy": gate.to_json() if gate is not None else None,
                "costDelta": costs.get(d.environment),
            }
        )
    return {
        "schemaVersion": DIFF_SCHEMA_VERSION,
        "environments": environments,
        "flagged": sum(len(d.flags) for d in diffs),
    }
