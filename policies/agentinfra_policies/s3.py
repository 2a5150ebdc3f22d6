"""S3 rules. In pulumi-aws v6+ a bucket's settings are separate resources, so these are stack rules
that find each bucket's settings through property dependencies (``bucket`` computed from the bucket),
never through names or ARNs, which a preview of a new stack does not know."""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from .documents import denies_insecure_transport, parse_document
from .framework import Reporter, Rule, attached, depends_through, of_type, present, stack_rule

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
LIFECYCLE = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
REPLICATION = ("aws:s3/bucketReplicationConfig:BucketReplicationConfig",)


def settings_of(
    resources: list[PolicyResource], types: tuple[str, ...], bucket: PolicyResource
) -> list[PolicyResource]:
    return [r for t in types for r in attached(resources, t, "bucket", bucket)]


def access_log_targets(resources: list[PolicyResource]) -> set[str]:
    """URNs of buckets that receive server access logs (AWS allows only SSE-S3 there)."""
    targets: set[str] = set()
    for logging in of_type(resources, *LOGGING):
        targets.update(dep.urn for dep in logging.property_dependencies.get("targetBucket", []))
    return targets


def replica_buckets(resources: list[PolicyResource]) -> set[str]:
    """URNs of buckets that are replication destinations (they are the copy, not the source)."""
    replicas: set[str] = set()
    for config in of_type(resources, *REPLICATION):
        replicas.update(dep.urn for dep in config.property_dependencies.get("rules", []))
    return replicas


def _label(bucket: PolicyResource) -> str:
    return f"bucket {bucket.name!r}"


KMS_ENCRYPTION = Rule(
    id="AI-S3-001",
    name="s3-kms-encryption",
    description="S3 buckets encrypt objects by default with a customer-managed KMS key (SSE-KMS).",
    severity=Severity.HIGH,
    fix="Add a BucketServerSideEncryptionConfiguration with sse_algorithm 'aws:kms', kms_master_key_id set to "
    "a key from components.kms_key, and bucket_key_enabled (access-log target buckets may use AES256).",
    resource_types=BUCKET_TYPES + SSE,
    checkov=("CKV_AWS_145", "CKV_AWS_19"),
    cdk_nag=("AwsSolutions-S1",),
)


@stack_rule(KMS_ENCRYPTION)
def kms_encryption(
    resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs
) -> None:
    log_targets = access_log_targets(resources)
    for bucket in of_type(resources, *BUCKET_TYPES):
        configs = settings_of(resources, SSE, bucket)
        if not configs:
            report(f"{_label(bucket)} has no default encryption configuration.", bucket.urn)
            continue
        allowed = {"aws:kms", "aws:kms:dsse"} | ({"AES256"} if bucket.urn in log_targets else set())
        for config in configs:
            for rule in config.props.get("rules") or []:
                default = rule.get("applyServerSideEncryptionByDefault") or {}
                algorithm = default.get("sseAlgorithm")
                if algorithm not in allowed:
                    report(
                        f"{_label(bucket)} encrypts with {algorithm!r}; expected one of {sorted(allowed)}.", bucket.urn
                    )
                elif algorithm.startswith("aws:kms") and not present(default, "kmsMasterKeyId"):
                    report(
                        f"{_label(bucket)} uses SSE-KMS with the AWS-managed key; name a customer-managed key.",
                        bucket.urn,
                    )


VERSIONING_RULE = Rule(
    id="AI-S3-002",
    name="s3-versioning",
    description="S3 buckets keep object versions, so overwritten or deleted logs can be recovered.",
    severity=Severity.MEDIUM,
    fix="Add a BucketVersioning with versioning_configuration status 'Enabled'.",
    resource_types=BUCKET_TYPES + VERSIONING,
    checkov=("CKV_AWS_21",),
    cdk_nag=("AwsSolutions-S1",),
)


@stack_rule(VERSIONING_RULE)
def versioning(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    for bucket in of_type(resources, *BUCKET_TYPES):
        statuses = [
            (v.props.get("versioningConfiguration") or {}).get("status")
            for v in settings_of(resources, VERSIONING, bucket)
        ]
        if "Enabled" not in statuses:
            found = statuses[0] if statuses else "no BucketVersioning"
            report(f"{_label(bucket)} does not have versioning enabled (found {found}).", bucket.urn)


PUBLIC_ACCESS = Rule(
    id="AI-S3-003",
    name="s3-public-access-blocked",
    description="S3 buckets block all four kinds of public access.",
    severity=Severity.CRITICAL,
    fix="Add a BucketPublicAccessBlock with block_public_acls, block_public_policy, ignore_public_acls and "
    "restrict_public_buckets all true.",
    resource_types=BUCKET_TYPES + PUBLIC_ACCESS_BLOCK,
    checkov=("CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56", "CKV2_AWS_6"),
    cdk_nag=("AwsSolutions-S2",),
)

_PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@stack_rule(PUBLIC_ACCESS)
def public_access(
    resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs
) -> None:
    for bucket in of_type(resources, *BUCKET_TYPES):
        blocks = settings_of(resources, PUBLIC_ACCESS_BLOCK, bucket)
        if not blocks:
            report(f"{_label(bucket)} has no public access block.", bucket.urn)
            continue
        off = sorted({flag for b in blocks for flag in _PAB_FLAGS if b.props.get(flag) is not True})
        if off:
            report(f"{_label(bucket)} leaves {', '.join(off)} off.", bucket.urn)


TLS_ONLY = Rule(
    id="AI-S3-004",
    name="s3-tls-only",
    description="S3 bucket policies deny every request that does not use TLS.",
    severity=Severity.HIGH,
    fix="Attach a BucketPolicy with a Deny statement for Principal '*' on the bucket and its objects when "
    "aws:SecureTransport is false (components.log_bucket does this).",
    resource_types=BUCKET_TYPES + POLICY,
    checkov=("CKV_AWS_379",),
    cdk_nag=("AwsSolutions-S10",),
)


@stack_rule(TLS_ONLY)
def tls_only(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    for bucket in of_type(resources, *BUCKET_TYPES):
        documents = [parse_document(p.props.get("policy")) for p in settings_of(resources, POLICY, bucket)]
        if not any(denies_insecure_transport(d) for d in documents):
            report(f"{_label(bucket)} has no bucket policy denying non-TLS requests.", bucket.urn)


LIFECYCLE_RULE = Rule(
    id="AI-S3-005",
    name="s3-lifecycle-expiration",
    description="S3 buckets have an enabled lifecycle rule that expires objects, so retention is enforced.",
    severity=Severity.MEDIUM,
    fix="Add a BucketLifecycleConfiguration with an enabled rule carrying an expiration (days).",
    resource_types=BUCKET_TYPES + LIFECYCLE,
    checkov=("CKV2_AWS_61",),
)


@stack_rule(LIFECYCLE_RULE)
def lifecycle(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    for bucket in of_type(resources, *BUCKET_TYPES):
        rules = [r for c in settings_of(resources, LIFECYCLE, bucket) for r in (c.props.get("rules") or [])]
        if not any(r.get("status") == "Enabled" and r.get("expiration") for r in rules):
            report(f"{_label(bucket)} has no enabled lifecycle rule with an expiration.", bucket.urn)


ACCESS_LOGGING = Rule(
    id="AI-S3-006",
    name="s3-access-logging",
    description="S3 buckets send server access logs to a separate bucket (the log target itself excepted).",
    severity=Severity.MEDIUM,
    fix="Add a BucketLogging whose target_bucket is the environment's access-log bucket.",
    resource_types=BUCKET_TYPES + LOGGING,
    checkov=("CKV_AWS_18",),
    cdk_nag=("AwsSolutions-S1",),
)


@stack_rule(ACCESS_LOGGING)
def access_logging(
    resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs
) -> None:
    log_targets = access_log_targets(resources)
    for bucket in of_type(resources, *BUCKET_TYPES):
        if bucket.urn in log_targets:
            continue
        if not settings_of(resources, LOGGING, bucket):
            report(f"{_label(bucket)} has no server access logging.", bucket.urn)


REPLICATION_RULE = Rule(
    id="AI-S3-007",
    name="s3-replication",
    description="S3 log buckets replicate to a bucket in another region (required where enabled: prod).",
    severity=Severity.HIGH,
    fix="Enable replication for the environment (components.log_bucket replicates to a DR bucket with its "
    "own KMS key in the DR region).",
    resource_types=BUCKET_TYPES + REPLICATION,
    checkov=("CKV_AWS_144",),
)


@stack_rule(REPLICATION_RULE)
def replication(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    exempt = access_log_targets(resources) | replica_buckets(resources)
    for bucket in of_type(resources, *BUCKET_TYPES):
        if bucket.urn in exempt:
            continue
        configs = settings_of(resources, REPLICATION, bucket)
        enabled = [r for c in configs for r in (c.props.get("rules") or []) if r.get("status") == "Enabled"]
        if not enabled:
            report(f"{_label(bucket)} is not replicated to another region.", bucket.urn)


RULES = [kms_encryption, versioning, public_access, tls_only, lifecycle, access_logging, replication]

__all__ = ["RULES", "BUCKET_TYPES", "depends_through"]
