"""ElastiCache and MemoryDB rules: both encryptions, authentication, Multi-AZ failover, snapshots."""

from __future__ import annotations

from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from .framework import Reporter, Rule, present, resource_rule

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
MEMORYDB = "aws:memorydb/cluster:Cluster"

ENCRYPTION = Rule(
    id="AI-EC-001",
    name="cache-encryption",
    description="Redis caches encrypt data at rest with a KMS key and in transit with TLS.",
    severity=Severity.HIGH,
    fix="Set at_rest_encryption_enabled with kms_key_id and transit_encryption_enabled (components.redis_cache).",
    resource_types=(REPLICATION_GROUP, MEMORYDB),
    checkov=("CKV_AWS_29", "CKV_AWS_30", "CKV_AWS_191"),
    cdk_nag=("AwsSolutions-AEC4", "AwsSolutions-AEC5"),
)


@resource_rule(ENCRYPTION)
def encryption(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    props = args.props
    if args.resource_type == REPLICATION_GROUP:
        if props.get("atRestEncryptionEnabled") is not True or not present(props, "kmsKeyId"):
            report(f"cache {args.name!r} is not encrypted at rest with a KMS key.")
        if props.get("transitEncryptionEnabled") is not True:
            report(f"cache {args.name!r} does not require TLS in transit.")
    else:
        if not present(props, "kmsKeyArn"):
            report(f"MemoryDB cluster {args.name!r} is not encrypted with a customer-managed key.")
        if props.get("tlsEnabled") is False:
            report(f"MemoryDB cluster {args.name!r} has TLS off.")


AUTH = Rule(
    id="AI-EC-002",
    name="cache-auth",
    description="Redis caches require authentication: an AUTH token or RBAC user groups (ACLs).",
    severity=Severity.HIGH,
    fix="Set auth_token from a RandomPassword stored in Secrets Manager (components.redis_cache does), or "
    "user_group_ids; on MemoryDB an ACL other than open-access.",
    resource_types=(REPLICATION_GROUP, MEMORYDB),
    checkov=("CKV_AWS_31",),
    cdk_nag=("AwsSolutions-AEC6",),
)


@resource_rule(AUTH)
def auth(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    props = args.props
    if args.resource_type == REPLICATION_GROUP:
        if not present(props, "authToken") and not list(props.get("userGroupIds") or []):
            report(f"cache {args.name!r} accepts clients without authentication.")
    elif props.get("aclName") in (None, "open-access"):
        report(f"MemoryDB cluster {args.name!r} uses the open-access ACL.")


FAILOVER = Rule(
    id="AI-EC-003",
    name="cache-multi-az-failover",
    description="Redis caches replicate across AZs with automatic failover.",
    severity=Severity.HIGH,
    fix="Keep at least one replica per shard with multi_az_enabled and automatic_failover_enabled.",
    resource_types=(REPLICATION_GROUP, MEMORYDB),
    cdk_nag=("AwsSolutions-AEC3",),
)


@resource_rule(FAILOVER)
def failover(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    props = args.props
    if args.resource_type == REPLICATION_GROUP:
        if props.get("automaticFailoverEnabled") is not True or props.get("multiAzEnabled") is not True:
            report(f"cache {args.name!r} has no Multi-AZ automatic failover.")
    elif int(props.get("numReplicasPerShard", 1) or 0) < 1:
        report(f"MemoryDB cluster {args.name!r} has no replicas to fail over to.")


SNAPSHOTS = Rule(
    id="AI-EC-004",
    name="cache-snapshots",
    description="Redis caches keep daily snapshots for at least the configured number of days.",
    severity=Severity.MEDIUM,
    fix="Set snapshot_retention_limit (components.redis_cache keeps 7 by default).",
    resource_types=(REPLICATION_GROUP, MEMORYDB),
    checkov=("CKV_AWS_134",),
    cdk_nag=("AwsSolutions-AEC1",),
    config={"minDays": {"type": "integer", "minimum": 1, "default": 1}},
)


@resource_rule(SNAPSHOTS)
def snapshots(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    days = int(args.props.get("snapshotRetentionLimit") or 0)
    if days < int(cfg["minDays"]):
        report(f"cache {args.name!r} keeps snapshots for {days} day(s); expected at least {cfg['minDays']}.")


RULES = [encryption, auth, failover, snapshots]
