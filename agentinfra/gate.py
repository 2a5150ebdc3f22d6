"""The offline compliance gate: the policy pack's own rule objects, run with the real analyser's semantics.

It drives pulumi-policy's analyzer servicer (the object ``PolicyPack`` serves over gRPC) in-process:
``Configure`` with the same policy-config file the CLI takes with ``--policy-pack-config``, ``Analyze``
for every resource and ``AnalyzeStack`` once, with requests built from the manifest. So props are
camelCase behind the unknown-checking proxy, enforcement levels and settings come from the file,
stack rules see parents and dependencies, and ``not_applicable`` is honoured exactly as in a preview.
This and ``engine.py`` are the only modules that touch SDK internals; tests pin them to the installed
versions.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentinfra_policies.framework import Rule
from agentinfra_policies.pack import PACK_NAME, all_rules
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import PolicyResource, _PolicyAnalyzerServicer
from pulumi_policy.proxy import _DictProxy, _ListProxy, _raise_if_unknown

from .engine import PlanError, patched, project_root

_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_CANT_RUN = "can't run policy"
_LEVELS = {e.value: e for e in EnforcementLevel}
_PROTO_LEVEL = {
    proto.ADVISORY: "advisory",
    proto.MANDATORY: "mandatory",
    proto.REMEDIATE: "mandatory",
    proto.DISABLED: "disabled",
}
PACK_VERSION = "0.1.0"

#: Whether ``evaluate`` gives each resource only the policies that read its type (tests compare both ways).
SUBSET_BY_TYPE = True
#: Whether ``evaluate`` runs the analyser with its conversions remembered (``_Accelerated``; tests compare).
ACCELERATE = True


@dataclass(frozen=True)
class Finding:
    """One result: a violation, or a rule that could not run because a value was unknown."""

    kind: str
    """``violation`` or ``unknown``."""
    rule_id: str
    policy: str
    level: str
    """``mandatory`` or ``advisory`` (``unknown`` findings carry the rule's configured level)."""
    urn: str
    message: str

    @property
    def resource(self) -> str:
        return self.urn.rsplit("::", 1)[-1] if self.urn else "(stack)"


@dataclass
class GateResult:
    environment: str
    rules_evaluated: int
    """Rules not disabled by the environment's policy config."""
    resources: int
    findings: list[Finding] = field(default_factory=list)
    not_applicable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def mandatory_violations(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "violation" and f.level == "mandatory"]

    @property
    def passed(self) -> bool:
        return not self.mandatory_violations

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "rulesEvaluated": self.rules_evaluated,
            "resources": self.resources,
            "passed": self.passed,
            "findings": [asdict(f) for f in self.findings],
            "notApplicable": [{"policy": p, "reason": r} for p, r in self.not_applicable],
        }


def policy_config_path(environment: str, root: Path | None = None) -> Path:
    return (root or project_root()) / "policies" / "config" / f"{environment}.json"


def load_policy_config(environment: str, path: Path | None = None) -> dict[str, Any]:
    """The environment's ``--policy-pack-config`` file; none means the rules' defaults."""
    path = path or policy_config_path(environment)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PlanError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PlanError(f"{path}: expected a JSON object of policy names to settings, found {type(data).__name__}")
    return data


def checked_policy_config(environment: str, path: Path | None = None) -> dict[str, Any]:
    """``load_policy_config``, then checked against the pack, so a bad file is reported before anything is planned."""
    path = path or policy_config_path(environment)
    config = load_policy_config(environment, path)
    _resolve_config(config, all_rules(), str(path))
    return config


def _resolve_config(config: dict[str, Any], rules: list[Rule], source: str) -> dict[str, tuple[str, dict]]:
    """Expand the file as the CLI does: ``all`` first, then per-policy entries. Returns level and settings."""
    names = {r.name for r in rules}
    problems = [f"{key}: no such policy in pack {PACK_NAME}" for key in config if key != "all" and key not in names]
    resolved: dict[str, tuple[str, dict]] = {}
    for rule in rules:
        level, props = rule.enforcement.value, {}
        for key in ("all", rule.name):
            if key not in config:
                continue
            value = config[key]
            if isinstance(value, str):
                level = value
            elif isinstance(value, dict):
                level = value.get("enforcementLevel", level)
                props.update({k: v for k, v in value.items() if k != "enforcementLevel"})
            else:
                problems.append(f"{key}: expected an enforcement level or an object, found {value!r}")
            if level not in _LEVELS:
                problems.append(f"{key}: expected one of {', '.join(sorted(_LEVELS))}, found {level!r}")
        unknown = set(props) - set(rule.config)
        if unknown:
            problems.append(
                f"{rule.name}: unknown setting(s) {sorted(unknown)}; the rule takes {sorted(rule.config) or 'none'}"
            )
        resolved[rule.name] = (level, props)
    if problems:
        raise PlanError(
            f"{source}: {len(problems)} invalid policy setting(s)\n"
            + "\n".join(f"  - {p}" for p in sorted(set(problems)))
        )
    return resolved


def _wire(value: Any) -> Any:
    """Manifest form back to what the engine sends an analyzer."""
    if isinstance(value, dict):
        if value.get("$unknown") is True:
            return _UNKNOWN
        if "$secret" in value:
            return {_SIG_KEY: _SECRET_SIG, "value": "[secret]"}
        if "$resourceRef" in value:
            return value["$resourceRef"]
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(_wire(props), struct_pb2.Struct())


def _options(resource: dict[str, Any]) -> Any:
    opts = resource.get("options", {})
    dbr = opts.get("deleteBeforeReplace")
    return proto.AnalyzerResourceOptions(
        protect=bool(opts.get("protect")),
        ignoreChanges=opts.get("ignoreChanges", []),
        deleteBeforeReplace=bool(dbr),
        deleteBeforeReplaceDefined=dbr is not None,
        additionalSecretOutputs=opts.get("additionalSecretOutputs", []),
        aliases=[a for a in opts.get("aliases", []) if isinstance(a, str)],
        parent=resource.get("parent") or "",
    )


class _IdentityMemo:
    """Results remembered per object identity. Each object is kept alive with its result, so its id cannot be
    reused by another object while the memo lives."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Any, Any]] = {}

    def get(self, obj: Any, compute: Callable[[Any], Any]) -> Any:
        hit = self._seen.get(id(obj))
        if hit is None or hit[0] is not obj:
            hit = (obj, compute(obj))
            self._seen[id(obj)] = hit
        return hit[1]


class _MemoizedJsonFormat:
    """``json_format`` for pulumi-policy's analyzer with ``MessageToDict`` remembered per message content.

    ``AnalyzeStack`` converts every resource's properties once per stack policy (dozens of times per resource);
    the conversion is pure and its result is only read (``deserialize_properties`` builds new objects), so
    converting each message once gives identical results. Installed only while ``evaluate`` runs.
    """

    def __init__(self, original: Any):
        self._original = original
        self._cache: dict[bytes, Any] = {}
        self._by_object = _IdentityMemo()

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 (protobuf's name)
        if args or kwargs:
            return self._original.MessageToDict(message, *args, **kwargs)
        # protobuf hands out the same wrapper for a field while it is alive: a hit by identity is the same
        # message. Otherwise keyed by content (another request carrying the same Struct).
        return self._by_object.get(message, self._by_content)

    def _by_content(self, message: Any) -> Any:
        key = message.DESCRIPTOR.full_name.encode() + b"\0" + message.SerializeToString(deterministic=True)
        if key not in self._cache:
            self._cache[key] = self._original.MessageToDict(message)
        return self._cache[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _Accelerated:
    """pulumi-policy's analyser with its pure per-policy conversions done once, for the duration of ``evaluate``.

    The analyser converts a resource's properties (``MessageToDict``, then ``deserialize_properties``) for every
    policy it runs, and wraps them in a fresh unknown-checking proxy. The first two are pure functions whose
    results are only read (``_proxy_helper`` copies every container), so they are remembered: by message content
    and by the identity of the remembered dict. The proxy stays fresh per policy (a policy may write through it);
    ``_unknown_checking_proxy`` builds it lazily, wrapping children as a rule reads them.
    ``tests/agentinfra/test_gate_fast.py`` checks the proxies are identical and the results equal the plain
    analyser's.
    """

    def __init__(self) -> None:
        from pulumi_policy import deserialize

        self._json_format = _MemoizedJsonFormat(json_format)
        self._deserialize = deserialize.deserialize_properties
        self._deserialized = _IdentityMemo()

    def deserialize_properties(self, props: dict[str, Any], proxy_secrets: bool = False) -> Any:
        if proxy_secrets:
            return self._deserialize(props, proxy_secrets)
        # The dict comes from the MessageToDict memo, so the same content arrives as the same dict.
        return self._deserialized.get(props, self._deserialize)

    def call(self, servicer: Any, method: str, request: Any) -> Any:
        from pulumi_policy import policy as policy_module

        replacements = {
            "json_format": self._json_format,
            "deserialize_properties": self.deserialize_properties,
            "unknown_checking_proxy": _unknown_checking_proxy,
        }
        if method != "AnalyzeStack":
            with patched(policy_module, replacements):
                return getattr(servicer, method)(request, None)
        # AnalyzeStack builds every resource again for each stack policy (props, options, provider), though
        # a policy reads those of the few types it checks: build each on first read instead.
        replacements["unknown_checking_proxy"] = lambda props: _Deferred(_unknown_checking_proxy, props)
        replacements["PolicyResource"] = _LazyPolicyResource
        methods = {
            "_get_resource_options": lambda request: _Deferred(type(servicer)._get_resource_options, servicer, request),
            "_get_provider_resource": lambda request: _Deferred(self.provider_resource, request),
        }
        with patched(policy_module, replacements), patched(servicer, methods):
            return servicer.AnalyzeStack(request, None)

    def provider_resource(self, request: Any) -> Any:
        """pulumi-policy's ``_get_provider_resource``, with the conversions remembered and its own proxy."""
        from pulumi_policy.policy import PolicyProviderResource

        if not request.HasField("provider"):
            return None
        provider = request.provider
        props = self.deserialize_properties(self._json_format.MessageToDict(provider.properties))
        return PolicyProviderResource(provider.type, _unknown_checking_proxy(props), provider.urn, provider.name)


class _Deferred:
    """A value to build on first read: ``make(*args)``."""

    __slots__ = ("args", "make")

    def __init__(self, make: Callable[..., Any], *args: Any):
        self.make, self.args = make, args


def _deferred_field(name: str) -> property:
    def get(self: Any) -> Any:
        value = self._fields[name]
        if isinstance(value, _Deferred):
            value = self._fields[name] = value.make(*value.args)
        return value

    def set_(self: Any, value: Any) -> None:
        self._fields[name] = value

    return property(get, set_)


class _LazyPolicyResource(PolicyResource):
    """pulumi-policy's ``PolicyResource`` whose ``props``, ``opts`` and ``provider`` are built on first read.

    Each is built from the same request by the same functions the analyser would have called, once per
    resource object, so every stack policy still gets its own proxies; ``test_gate_fast`` compares results
    with the plain analyser's. Copies and pickles carry the built values; ``vars()`` does not list the three.
    """

    props = _deferred_field("props")
    opts = _deferred_field("opts")
    provider = _deferred_field("provider")

    def __init__(self, *args: Any, **kwargs: Any):
        self._fields: dict[str, Any] = {}
        super().__init__(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        """What ``copy`` and ``pickle`` see: the plain attributes of a ``PolicyResource``, each one built."""
        state = {k: v for k, v in vars(self).items() if k != "_fields"}
        state.update(props=self.props, opts=self.opts, provider=self.provider)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._fields = {}
        for name, value in state.items():
            setattr(self, name, value)


def _unknown_checking_proxy(props: dict[str, Any]) -> Any:
    """``pulumi_policy.proxy.unknown_checking_proxy`` that wraps a container's children on first access.

    pulumi-policy copies and wraps the whole property tree for every policy and resource, though a rule reads
    a few properties of a few resource types. These proxies are the same classes (``_DictProxy``/``_ListProxy``
    subclasses) and behave the same: reading an unknown value raises ``UnknownValueError`` with the same path,
    a child is the same object on every read, writes go to the proxy's own copy (never to the shared
    deserialised data), ``["__target"]`` gives the fully wrapped container. ``tests/agentinfra/test_gate_fast.py``
    compares them with pulumi-policy's, object by object, and the gate's results either way.
    """
    return _wrap(props, []) if isinstance(props, (dict, list)) else props


def _wrap(value: Any, path: list[str]) -> Any:
    return _LazyDictProxy(value, path) if isinstance(value, dict) else _LazyListProxy(value, path)


class _LazyDictProxy(_DictProxy):
    def __init__(self, target: dict[str, Any], props_acc: list[str]):
        super().__init__(dict(target), props_acc)
        self._pending = {k for k, v in target.items() if isinstance(v, (dict, list))}

    def _child(self, key: Any) -> Any:
        target = self._DictProxy__target  # type: ignore[attr-defined]
        if key in self._pending:
            self._pending.discard(key)
            target[key] = _wrap(target[key], [*self._DictProxy__props_acc, str(key)])  # type: ignore[attr-defined]
        return target[key]

    def __getitem__(self, key: Any) -> Any:
        if key == "__target":
            for pending in list(self._pending):
                self._child(pending)
            return self._DictProxy__target  # type: ignore[attr-defined]
        return _raise_if_unknown(key, self._child(key), self._DictProxy__props_acc)  # type: ignore[attr-defined]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._pending.discard(key)
        super().__setitem__(key, value)


class _LazyListProxy(_ListProxy):
    def __init__(self, target: list[Any], props_acc: list[str]):
        super().__init__(list(target), props_acc)
        self._pending = {i for i, v in enumerate(target) if isinstance(v, (dict, list))}

    def _child(self, index: int) -> Any:
        target = self._ListProxy__target  # type: ignore[attr-defined]
        position = index + len(target) if index < 0 else index
        if position in self._pending:
            self._pending.discard(position)
            target[position] = _wrap(target[position], [*self._ListProxy__props_acc, str(position)])  # type: ignore[attr-defined]
        return target[index]

    def __getitem__(self, key: Any) -> Any:
        target, path = self._ListProxy__target, self._ListProxy__props_acc  # type: ignore[attr-defined]
        if key == "__target" or isinstance(key, slice):
            for pending in list(self._pending):
                self._child(pending)
            return target if key == "__target" else _raise_if_unknown(key, target[key], path)
        try:
            position = operator.index(key)  # ints, bools, numpy integers: whatever a list accepts
        except TypeError:
            return _raise_if_unknown(key, target[key], path)
        if -len(target) <= position < len(target):
            return _raise_if_unknown(key, self._child(position), path)
        return _raise_if_unknown(key, target[position], path)


def evaluate(
    manifest: dict[str, Any],
    policy_config: dict[str, Any] | None = None,
    *,
    source: str = "policy config",
    rules: list[Rule] | None = None,
) -> GateResult:
    """Run every rule over a manifest with the given policy config; returns findings, never raises on them."""
    rules = rules if rules is not None else all_rules()
    by_name = {r.name: r for r in rules}
    resolved = _resolve_config(policy_config or {}, rules, source)
    policies = [r for r in rules if r.policy]

    def new_servicer(chosen: list[Rule]) -> Any:
        return _PolicyAnalyzerServicer(
            PACK_NAME, PACK_VERSION, [r.policy for r in chosen if r.policy], EnforcementLevel.MANDATORY
        )

    whole_pack = new_servicer(policies)
    configure = proto.ConfigureAnalyzerRequest(
        policyConfig={
            name: proto.PolicyConfig(
                enforcementLevel=whole_pack._map_enforcement_level(_LEVELS[level]),
                properties=json_format.ParseDict(props, struct_pb2.Struct()),
            )
            for name, (level, props) in resolved.items()
        }
    )
    whole_pack.Configure(configure, None)
    servicers: dict[tuple[str, ...], Any] = {tuple(r.name for r in policies): whole_pack}

    def servicer_for(chosen: list[Rule]) -> Any:
        """A servicer holding ``chosen`` policies (in pack order), configured from the same file."""
        key = tuple(r.name for r in chosen)
        if key not in servicers:
            servicer = new_servicer(chosen)
            servicer.Configure(configure, None)
            servicers[key] = servicer
        return servicers[key]

    by_type: dict[str, Any] = {}
    fast = _Accelerated()

    def resource_servicer(resource_type: str) -> Any:
        """The servicer for one resource type: every policy except resource rules that skip the type.

        A resource rule's ``validate`` returns before reading anything for a type outside ``applies_to``
        (see ``framework.resource_rule``), so leaving it out changes no result; it only spares the analyser
        deserialising and proxying the resource once per skipped policy. ``test_gate`` checks that results
        equal those of one servicer holding the whole pack.
        """
        if resource_type not in by_type:
            chosen = [
                r
                for r in policies
                if not (SUBSET_BY_TYPE and r.applies_to is not None and not r.applies_to(resource_type))
            ]
            by_type[resource_type] = servicer_for(chosen) if chosen else None
        return by_type[resource_type]

    resources = manifest["resources"]
    by_urn = {r["urn"]: r for r in resources}
    structs = {r["urn"]: _struct(r.get("inputs", {})) for r in resources}
    providers: dict[str, Any] = {}
    for r in resources:
        if r["type"].startswith("pulumi:providers:"):
            providers[r["urn"]] = proto.AnalyzerProviderResource(
                type=r["type"], properties=structs[r["urn"]], urn=r["urn"], name=r["name"]
            )

    result = GateResult(
        environment=manifest.get("stack", "?"),
        resources=len(resources),
        rules_evaluated=sum(1 for level, _ in resolved.values() if level != "disabled"),
    )

    def collect(response: Any, urn_if_unknown: str) -> None:
        for diag in response.diagnostics:
            rule = by_name[diag.policyName]
            if diag.message.startswith(_CANT_RUN):
                level = resolved[rule.name][0]
                result.findings.append(
                    Finding(
                        "unknown",
                        rule.id,
                        rule.name,
                        level,
                        diag.urn or urn_if_unknown,
                        diag.message.split(" during preview: ", 1)[-1],
                    )
                )
            else:
                message = diag.message.split("\n", 1)[-1]
                result.findings.append(
                    Finding(
                        "violation",
                        rule.id,
                        rule.name,
                        _PROTO_LEVEL[diag.enforcementLevel],
                        diag.urn or urn_if_unknown,
                        message,
                    )
                )
        result.not_applicable.extend((n.policy_name, n.reason) for n in response.not_applicable)

    for r in resources:
        request = proto.AnalyzeRequest(
            type=r["type"], properties=structs[r["urn"]], urn=r["urn"], name=r["name"], options=_options(r)
        )
        servicer = resource_servicer(r["type"])
        if servicer is None:
            continue
        provider = providers.get(r.get("provider") or "")
        if provider is not None:
            request.provider.CopyFrom(provider)
        collect(fast.call(servicer, "Analyze", request) if ACCELERATE else servicer.Analyze(request, None), r["urn"])

    stack_request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type=r["type"],
                properties=structs[r["urn"]],
                urn=r["urn"],
                name=r["name"],
                options=_options(r),
                parent=r.get("parent") or "",
                dependencies=[d for d in r.get("dependencies", []) if d in by_urn],
                propertyDependencies={
                    k: proto.AnalyzerPropertyDependencies(urns=v) for k, v in r.get("propertyDependencies", {}).items()
                },
                **({"provider": providers[r["provider"]]} if r.get("provider") in providers else {}),
            )
            for r in resources
        ]
    )
    collect(
        fast.call(whole_pack, "AnalyzeStack", stack_request)
        if ACCELERATE
        else whole_pack.AnalyzeStack(stack_request, None),
        "",
    )
    result.findings.sort(key=lambda f: (f.kind != "violation", f.level != "mandatory", f.rule_id, f.urn))
    return result
