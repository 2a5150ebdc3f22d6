"""Cross-cutting rules: required tags, ``protect`` on stateful resources, instance types per environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from .catalog import load_catalog
from .documents import provider_default_tags
from .framework import Reporter, Rule, resource_rule

#: Resources whose loss loses data: protected (and retained on delete) where the rule is enforced.
STATEFUL_TYPES = (
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:kms/key:Key",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:memorydb/cluster:Cluster",
    "aws:sqs/queue:Queue",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:eks/cluster:Cluster",
    "aws:dynamodb/table:Table",
    "aws:secretsmanager/secret:Secret",
)

REQUIRED_TAGS = ("environment", "project", "owner", "cost-centre", "managed-by")

TAGS = Rule(
    id="AI-TAG-001",
    name="required-tags",
    description="Every AWS resource carries the required tags, from its provider's default tags or its own.",
    severity=Severity.LOW,
    fix="Deploy through the stack's explicit aws.Provider (its default_tags carry the environment, project, "
    "owner, cost-centre and managed-by tags) or tag the resource itself.",
    resource_types=("aws:*",),
    config={"requiredTags": {"type": "array", "items": {"type": "string"}, "default": list(REQUIRED_TAGS)}},
)


def resource_tags(raw: Any) -> dict[str, str]:
    """A resource's own tags: a map for most types, a list of ``{key, value, propagateAtLaunch}`` for an
    auto-scaling group."""
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        return {str(t["key"]): str(t["value"]) for t in raw if isinstance(t, Mapping) and "key" in t}
    return {}


def _is_aws_resource(resource_type: str) -> bool:

    return resource_type.startswith("aws:")


@resource_rule(TAGS, applies=_is_aws_resource)
def required_tags(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    tags = provider_default_tags(args.provider.props if args.provider else None)
    tags.update(resource_tags(args.props.get("tags")))

    missing = [t for t in cfg["requiredTags"] if not tags.get(t)]
    if missing:
        report(f"{args.name!r} ({args.resource_type}) lacks the tag(s) {', '.join(missing)}.")


PROTECT = Rule(
    id="AI-OPS-001",
    name="protect-stateful",
    description="Stateful resources (buckets, keys, caches, queues, databases, clusters, secrets) are "
    "protected against deletion where the environment requires it.",
    severity=Severity.HIGH,
    fix="Set agent-infra:protect_stateful to true for the stack; components then set protect and "
    "retain_on_delete on what they create.",
    resource_types=STATEFUL_TYPES,
)


@resource_rule(PROTECT)
def protect_stateful(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    if not args.opts.protect:
        report(f"{args.name!r} ({args.resource_type}) is not protected.")


INSTANCE_TYPES = Rule(
    id="AI-OPS-002",
    name="allowed-instance-types",
    description="EC2, GPU and cache node types come from the instance catalog's allow-list for the environment.",
    severity=Severity.HIGH,
    fix="Pick a type from the allow-list of policies/agentinfra_policies/catalog/instances.yaml for this "
    "environment, or extend the catalog and allow-list in a reviewed change.",
    resource_types=(
        "aws:ec2/instance:Instance",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:autoscaling/group:Group",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:elasticache/cluster:Cluster",
        "aws:memorydb/cluster:Cluster",
    ),
    config={"allowlist": {"type": "string", "enum": ["dev", "staging", "prod"], "default": "prod"}},
)


def _instance_types(resource_type: str, props: Any) -> list[str]:
    if resource_type in ("aws:ec2/instance:Instance", "aws:ec2/launchTemplate:LaunchTemplate"):
        return [props["instanceType"]] if props.get("instanceType") else []
    if resource_type == "aws:autoscaling/group:Group":
        policy = props.get("mixedInstancesPolicy") or {}
        overrides = (policy.get("launchTemplate") or {}).get("overrides") or []
        return [o["instanceType"] for o in overrides if o.get("instanceType")]
    if resource_type == "aws:eks/nodeGroup:NodeGroup":
        return list(props.get("instanceTypes") or [])
    return [props["nodeType"]] if props.get("nodeType") else []


@resource_rule(INSTANCE_TYPES)
def allowed_instance_types(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    catalog = load_catalog()
    allowlist = cfg["allowlist"]
    for itype in _instance_types(args.resource_type, args.props):
        if not catalog.allowed(itype, allowlist):
            report(f"{args.name!r} uses {itype}, which the {allowlist} allow-list of the catalog does not include.")


RULES = [required_tags, protect_stateful, allowed_instance_types]
