"""How a rule is declared: stable id, kebab-case name, description, severity, default enforcement, fix.

``resource_rule`` and ``stack_rule`` turn a plain function into a real pulumi-policy Policy object, so
the same objects run in ``pulumi preview --policy-pack policies`` and in the offline gate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

PACK_NAME = "agent-infra"
FRAMEWORK = "agent-infra"


@dataclass(frozen=True)
class Rule:
    """A rule's identity and documentation; ``policy`` is the pulumi-policy object that enforces it."""

    id: str
    """Stable id such as ``AI-S3-001``: never reused, never renumbered."""
    name: str
    """Kebab-case policy name, the key in policy-config files."""
    description: str
    """One sentence: what a compliant resource looks like."""
    severity: Severity
    fix: str
    """How to fix a violation; appended to every violation message."""
    resource_types: tuple[str, ...]
    """Types the rule reads (for the README's per-kind rule count)."""
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY
    """Default level when no policy-config file says otherwise."""
    checkov: tuple[str, ...] = ()
    cdk_nag: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    """JSON-schema properties of the rule's settings (with defaults)."""
    policy: Policy | None = None
    applies_to: Callable[[str], bool] | None = field(default=None, compare=False)
    """For a resource rule, the resource types its check runs on (its ``validate`` returns at once for any
    other); the offline gate uses it to hand each resource only the policies that read it. None: every type."""

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config.items() if "default" in v}


class Reporter:
    """Wraps ReportViolation so every message carries the rule id and its fix."""

    def __init__(self, rule: Rule, report: ReportViolation):
        self._rule = rule
        self._report = report

    def __call__(self, message: str, urn: str | None = None) -> None:
        self._report(f"[{self._rule.id}] {message} Fix: {self._rule.fix}", urn)


def _common(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "description": rule.description,
        "enforcement_level": rule.enforcement,
        "severity": rule.severity,
        "tags": [rule.id, *(f"checkov:{c}" for c in rule.checkov), *(f"cdk-nag:{c}" for c in rule.cdk_nag)],
        "remediation_steps": rule.fix,
        "framework": PolicyComplianceFramework(name=FRAMEWORK, version="1", reference=rule.id),
        "config_schema": PolicyConfigSchema(properties=dict(rule.config)) if rule.config else None,
    }


def settings(rule: Rule, args: ResourceValidationArgs | StackValidationArgs) -> dict[str, Any]:
    """The rule's settings: schema defaults overlaid with the policy-config file's values."""
    return {**rule.defaults(), **dict(args.get_config() or {})}


ResourceCheck = Callable[[ResourceValidationArgs, Reporter, dict[str, Any]], None]
StackCheck = Callable[[list[PolicyResource], Reporter, dict[str, Any], StackValidationArgs], None]


def resource_rule(rule: Rule, applies: Callable[[str], bool] | None = None) -> Callable[[ResourceCheck], Rule]:
    """Declare a rule checked on each resource of ``rule.resource_types`` (or every type ``applies`` accepts)."""

    def wrap(check: ResourceCheck) -> Rule:
        types = set(rule.resource_types)
        wanted = applies or types.__contains__

        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if wanted(args.resource_type):
                check(args, Reporter(rule, report), settings(rule, args))

        policy = ResourceValidationPolicy(validate=validate, **_common(rule))
        return _with_policy(rule, policy, applies_to=wanted)

    return wrap


def stack_rule(rule: Rule) -> Callable[[StackCheck], Rule]:
    """Declare a rule that sees every resource at once (cross-resource checks through URNs)."""

    def wrap(check: StackCheck) -> Rule:
        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            check(list(args.resources), Reporter(rule, report), settings(rule, args), args)

        policy = StackValidationPolicy(validate=validate, **_common(rule))
        return _with_policy(rule, policy)

    return wrap


def _with_policy(rule: Rule, policy: Policy, applies_to: Callable[[str], bool] | None = None) -> Rule:
    from dataclasses import replace

    return replace(rule, policy=policy, applies_to=applies_to)


def present(props: Mapping[str, Any], key: str) -> bool:
    """True when ``key`` is set, without reading its value: a value unknown in a preview (a key ARN
    computed by the provider) still counts as set, where ``props.get(key)`` would stop the rule."""
    return any(k == key for k in props)


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def depends_through(resource: PolicyResource, prop: str, target: PolicyResource) -> bool:
    """True when ``resource``'s property ``prop`` was computed from ``target`` (its id, ARN or name)."""
    return any(dep.urn == target.urn for dep in resource.property_dependencies.get(prop, []))


def attached(
    resources: Iterable[PolicyResource], type_: str, prop: str, target: PolicyResource
) -> list[PolicyResource]:
    """Resources of ``type_`` whose ``prop`` depends on ``target``: e.g. the versioning of a bucket."""
    return [r for r in resources if r.resource_type == type_ and depends_through(r, prop, target)]
