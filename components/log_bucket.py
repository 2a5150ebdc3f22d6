"""S3 storage for agent logs: execution logs, conversation histories and audit trails.

Layout (documented for log writers): ``<stream>/dt=YYYY-MM-DD/agent_id=<id>/<file>.json.gz`` with the date
first, so lifecycle rules and queries select by day cheaply; streams are ``executions/``,
``conversations/`` and ``audit/``. One JSON record per line, in the seed's shape (``agent_id``,
``session_id``, ``timestamp``, ``log_level``, ``event_type``, ``data``).

Queryable without a crawler: a Glue table per stream with partition projection. ``dt`` is projected as a
date range; ``agent_id`` is **injected**: agents come and go, so an enumerated list would always be
stale, and a crawler would add cost and lag. Injected means a query names the agent
(``WHERE agent_id = 'data-analyst-001'``), which is the debugging question the seed asks; a query across
all agents of a day reads the ``dt=`` prefix through the ``<stream>_all_agents`` table, partitioned by
date only.

Everything is encrypted with a customer-managed key (bucket keys on), versioned, private, TLS-only; a
bucket policy refuses puts that ask for an encryption other than ``aws:kms`` (puts without the header
are covered by default encryption, which AWS services rely on). Audit objects can be put under Object
Lock in compliance mode: the policy then refuses audit puts without it.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from . import iam
from .aws_env import AwsEnvironment
from .kms_key import EncryptionKey, EncryptionKeyArgs
from .naming import Naming
from .validation import Checker


class StorageClass(enum.Enum):
    """Lifecycle transition targets, cheapest last."""

    STANDARD_IA = "STANDARD_IA"
    INTELLIGENT_TIERING = "INTELLIGENT_TIERING"
    GLACIER_IR = "GLACIER_IR"
    GLACIER = "GLACIER"
    DEEP_ARCHIVE = "DEEP_ARCHIVE"


_TIER = {
    StorageClass.STANDARD_IA: 1,
    StorageClass.INTELLIGENT_TIERING: 1,
    StorageClass.GLACIER_IR: 2,
    StorageClass.GLACIER: 3,
    StorageClass.DEEP_ARCHIVE: 4,
}
#: AWS refuses a transition to STANDARD_IA (or ONEZONE_IA) before an object is 30 days old.
MIN_IA_DAYS = 30
#: Audit trails are kept at least a year, whatever the config says.
AUDIT_MINIMUM_DAYS = 365


@dataclass(frozen=True)
class Transition:
    days: int
    """Object age in days at which it moves."""
    storage_class: StorageClass
    """Where it moves."""


@dataclass(frozen=True)
class Retention:
    """How long one stream of logs lives, and where it sits on the way."""

    expiration_days: int
    """Age at which objects are deleted; after the last transition."""
    transitions: tuple[Transition, ...] = (
        Transition(30, StorageClass.STANDARD_IA),
        Transition(90, StorageClass.GLACIER_IR),
    )
    """Moves to cheaper classes, in increasing days and tiers (default IA at 30, Glacier IR at 90)."""
    noncurrent_days: int = 30
    """Days an overwritten or deleted version is kept (default 30)."""


def retention_problems(retention: Retention, *, audit: bool = False) -> list[tuple[str, str]]:
    """(field, message) for every invalid lifecycle setting; shared by the settings layer and the component."""
    problems: list[tuple[str, str]] = []
    last_day, last_tier = 0, 0
    for index, step in enumerate(retention.transitions):
        where = f"transitions[{index}]"
        if step.storage_class in (StorageClass.STANDARD_IA,) and step.days < MIN_IA_DAYS:
            problems.append(
                (f"{where}.days", f"expected at least {MIN_IA_DAYS} for STANDARD_IA (AWS's minimum), found {step.days}")
            )
        if step.days <= last_day and index:
            problems.append(
                (f"{where}.days", f"expected more days than the previous transition ({last_day}), found {step.days}")
            )
        if _TIER[step.storage_class] < last_tier:
            problems.append(
                (
                    f"{where}.storage_class",
                    f"expected a class no warmer than the previous one, found {step.storage_class.value}",
                )
            )
        last_day, last_tier = step.days, _TIER[step.storage_class]
    if retention.transitions and retention.expiration_days <= last_day:
        problems.append(
            (
                "expiration_days",
                f"expected an expiration after the last transition (day {last_day}), found {retention.expiration_days}",
            )
        )
    if audit and retention.expiration_days < AUDIT_MINIMUM_DAYS:
        problems.append(
            (
                "expiration_days",
                f"expected at least the audit minimum of {AUDIT_MINIMUM_DAYS} days, found {retention.expiration_days}",
            )
        )
    if retention.noncurrent_days < 1:
        problems.append(("noncurrent_days", f"expected at least 1, found {retention.noncurrent_days}"))
    return problems


@dataclass(frozen=True)
class LogBucketArgs:
    naming: Naming
    """Bucket, database and workgroup names."""
    env: AwsEnvironment
    """Account and region."""
    retention: Retention
    """Lifecycle of execution logs and conversation histories."""
    audit_retention: Retention
    """Lifecycle of audit trails: at least a year, and at least ``retention``."""
    audit_object_lock: bool = False
    """Audit objects must be written under Object Lock in COMPLIANCE mode (bucket created with Object Lock)."""
    log_prefixes: tuple[str, ...] = ("executions/", "conversations/")
    """Streams kept for ``retention``."""
    audit_prefix: str = "audit/"
    """Stream kept for ``audit_retention``."""
    abort_multipart_days: int = 3
    """Days before an unfinished multipart upload is discarded (default 3)."""
    access_log_retention_days: int = 90
    """Expiration of server access logs (default 90)."""
    replication_region: str | None = None
    """Replicate to a bucket in this region (another one); None for no replication."""
    athena_bytes_scanned_cutoff: int = 10 * 1024**3
    """Largest scan one Athena query may make, in bytes (default 10 GiB; AWS minimum 10 MB)."""
    kms_deletion_window_days: int = 30
    """Deletion window of the bucket keys."""
    protect: bool = False
    """``protect`` and retain-on-delete on buckets and keys."""


class LogBucket(pulumi.ComponentResource):
    """The log bucket, its access-log bucket, optional DR replica, and the Glue/Athena query layer."""

    bucket: aws.s3.Bucket
    """The log bucket."""
    bucket_name: str
    """Its name (known before deployment)."""
    bucket_arn: str
    """Its ARN, written from the name."""
    key: EncryptionKey
    """The key that encrypts it."""
    access_log_bucket: aws.s3.Bucket
    """Where S3 server access logs of the log bucket go."""
    replica_bucket: aws.s3.Bucket | None
    """The DR copy in ``replication_region``, or None."""
    database: aws.glue.CatalogDatabase
    """Glue database of the log tables."""
    workgroup: aws.athena.Workgroup
    """Athena workgroup with encrypted results and a scan limit."""

    def __init__(self, name: str, args: LogBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:storage:LogBucket", name, None, opts)
        _validate(name, args)
        env, naming = args.env, args.naming
        self._name, self._env = name, env

        self.key = EncryptionKey(
            f"{name}-key",
            EncryptionKeyArgs(
                description=f"{naming.prefix}: agent logs",
                env=env,
                alias=naming.name("log-bucket"),
                deletion_window_days=args.kms_deletion_window_days,
                protect=args.protect,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        access_logs = _SecureBucket(
            self, f"{name}-access-logs", naming.name("access-logs", env.account_id, env.region), env.region, args
        )
        access_logs.finish(
            kms_key_arn=None,
            log_target=None,
            lifecycle=_expire_all(args.access_log_retention_days, args.abort_multipart_days),
            extra_statements=[access_logs.allow_server_access_logging(env)],
        )
        self.access_log_bucket = access_logs.bucket

        main = _SecureBucket(
            self,
            name,
            naming.name("logs", env.account_id, env.region),
            env.region,
            args,
            object_lock=args.audit_object_lock,
        )
        main.finish(
            kms_key_arn=self.key.arn,
            log_target=access_logs,
            lifecycle=self._lifecycle(args),
            extra_statements=self._put_guards(main.arn, args),
        )
        self.bucket, self.bucket_name, self.bucket_arn = main.bucket, main.name, main.arn

        self.replica_bucket = None
        if args.replication_region:
            self.replica_bucket = self._replicate(name, args, main)

        self._query_layer(name, args)
        self.register_outputs(
            {
                "bucketName": self.bucket_name,
                "bucketArn": self.bucket_arn,
                "keyArn": self.key.arn,
                "accessLogBucketName": access_logs.name,
                "replicaBucketName": self.replica_bucket.bucket if self.replica_bucket else None,
                "glueDatabase": self.database.name,
                "athenaWorkgroup": self.workgroup.name,
            }
        )

    def grant_write(
        self, role: aws.iam.Role | str, prefixes: tuple[str, ...] | list[str], *, label: str
    ) -> aws.iam.RolePolicy:
        """Let ``role`` write (never read or delete) objects under ``prefixes``, encrypting with the bucket key.

        Bucket keys mean S3 asks KMS for a data key, so ``kms:GenerateDataKey`` through S3 is all the key
        grant needs; the key is named through its alias, so the document is known in a preview.
        """
        return iam.grant_policy(
            self,
            f"{self._name}-write-{label}",
            role,
            iam.statement("WriteLogs", ["s3:PutObject"], [f"{self.bucket_arn}/{p}*" for p in prefixes]),
            self.key.grant_statement(
                "EncryptLogs",
                ["kms:GenerateDataKey"],
                {"StringEquals": {"kms:ViaService": f"s3.{self._env.region}.amazonaws.com"}},
            ),
        )

    # -- the log bucket's rules ------------------------------------------------------------------------

    def _lifecycle(self, args: LogBucketArgs) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        rules = [_stream_rule(prefix, args.retention) for prefix in args.log_prefixes]
        rules.append(_stream_rule(args.audit_prefix, args.audit_retention))
        rules.append(_stream_rule("athena-results/", Retention(expiration_days=30, transitions=(), noncurrent_days=1)))
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=args.abort_multipart_days
                ),
            )
        )
        return rules

    @staticmethod
    def _put_guards(arn: str, args: LogBucketArgs) -> list[dict[str, Any]]:
        header = "s3:x-amz-server-side-encryption"
        guards = [
            iam.statement(
                "DenyPutsAskingForOtherEncryption",
                ["s3:PutObject"],
                [f"{arn}/*"],
                principal="*",
                effect="Deny",
                # Only puts that name an encryption are checked: Null=false means the header is present.
                conditions={"StringNotEquals": {header: "aws:kms"}, "Null": {header: "false"}},
            )
        ]
        if args.audit_object_lock:
            guards.append(
                iam.statement(
                    "DenyAuditPutsWithoutComplianceLock",
                    ["s3:PutObject"],
                    [f"{arn}/{args.audit_prefix}*"],
                    principal="*",
                    effect="Deny",
                    conditions={"StringNotEquals": {"s3:object-lock-mode": "COMPLIANCE"}},
                )
            )
            guards.append(
                iam.statement(
                    "DenyAuditPutsWithShortLock",
                    ["s3:PutObject"],
                    [f"{arn}/{args.audit_prefix}*"],
                    principal="*",
                    effect="Deny",
                    conditions={
                        "NumericLessThan": {
                            "s3:object-lock-remaining-retention-days": str(args.audit_retention.expiration_days)
                        }
                    },
                )
            )
        return guards

    def _replicate(self, name: str, args: LogBucketArgs, source: _SecureBucket) -> aws.s3.Bucket:
        env, naming, region = args.env, args.naming, args.replication_region
        assert region is not None
        replica_key = EncryptionKey(
            f"{name}-replica-key",
            EncryptionKeyArgs(
                description=f"{naming.prefix}: agent logs, DR replica in {region}",
                env=env,
                alias=naming.name("log-bucket-replica"),
                deletion_window_days=args.kms_deletion_window_days,
                protect=args.protect,
                region=region,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        dr_env = AwsEnvironment(env.account_id, region, env.partition)
        replica_logs = _SecureBucket(
            self, f"{name}-replica-access-logs", naming.name("access-logs", env.account_id, region), region, args
        )
        replica_logs.finish(
            kms_key_arn=None,
            log_target=None,
            lifecycle=_expire_all(args.access_log_retention_days, args.abort_multipart_days),
            extra_statements=[replica_logs.allow_server_access_logging(dr_env)],
        )
        replica = _SecureBucket(self, f"{name}-replica", naming.name("logs", env.account_id, region), region, args)
        replica.finish(
            kms_key_arn=replica_key.arn, log_target=replica_logs, lifecycle=self._lifecycle(args), extra_statements=[]
        )

        role = aws.iam.Role(
            f"{name}-replication",
            aws.iam.RoleArgs(
                description="Lets S3 replicate agent logs to the DR bucket",
                assume_role_policy=iam.assume_role_policy("s3", env, source_arn=source.arn),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-replication",
            aws.iam.RolePolicyArgs(
                role=role.id,
                policy=iam.document(
                    iam.statement(
                        "ReadReplicationConfiguration",
                        ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                        [source.arn],
                    ),
                    iam.statement(
                        "ReadSourceVersions",
                        ["s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication", "s3:GetObjectVersionTagging"],
                        [f"{source.arn}/*"],
                    ),
                    iam.statement(
                        "WriteReplicas",
                        ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
                        [f"{replica.arn}/*"],
                    ),
                    self.key.grant_statement(
                        "DecryptSource",
                        ["kms:Decrypt"],
                        {"StringEquals": {"kms:ViaService": f"s3.{env.region}.amazonaws.com"}},
                    ),
                    replica_key.grant_statement(
                        "EncryptReplicas",
                        ["kms:Encrypt", "kms:GenerateDataKey"],
                        {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.s3.BucketReplicationConfig(
            f"{name}-replication",
            aws.s3.BucketReplicationConfigArgs(
                bucket=source.bucket.id,
                role=role.arn,
                rules=[
                    aws.s3.BucketReplicationConfigRuleArgs(
                        id="disaster-recovery",
                        status="Enabled",
                        priority=1,
                        filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                        delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                            status="Enabled"
                        ),
                        source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                            sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                                status="Enabled"
                            )
                        ),
                        destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                            bucket=replica.bucket.arn,
                            encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                                replica_kms_key_id=replica_key.arn
                            ),
                        ),
                    )
                ],
            ),
            # S3 refuses a replication configuration until versioning is on at both ends.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[source.versioning, replica.versioning]),
        )
        return replica.bucket

    def _query_layer(self, name: str, args: LogBucketArgs) -> None:
        naming = args.naming
        self.database = aws.glue.CatalogDatabase(
            f"{name}-db",
            aws.glue.CatalogDatabaseArgs(
                name=naming.name("logs").replace("-", "_"),
                description="Agent execution logs, conversation histories and audit trails (seed log record)",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for stream in (*args.log_prefixes, args.audit_prefix):
            table = stream.strip("/").replace("-", "_")
            _log_table(
                self, f"{name}-{table}", self.database, table, f"s3://{self.bucket_name}/{stream}", by_agent=True
            )
            _log_table(
                self,
                f"{name}-{table}-all-agents",
                self.database,
                f"{table}_all_agents",
                f"s3://{self.bucket_name}/{stream}",
                by_agent=False,
            )
        self.workgroup = aws.athena.Workgroup(
            f"{name}-athena",
            aws.athena.WorkgroupArgs(
                name=naming.name("logs"),
                description="Queries over agent logs: encrypted results, capped scans",
                force_destroy=False,
                configuration=aws.athena.WorkgroupConfigurationArgs(
                    enforce_workgroup_configuration=True,
                    publish_cloudwatch_metrics_enabled=True,
                    bytes_scanned_cutoff_per_query=args.athena_bytes_scanned_cutoff,
                    result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                        output_location=f"s3://{self.bucket_name}/athena-results/",
                        encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                            encryption_option="SSE_KMS", kms_key_arn=self.key.arn
                        ),
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


class _SecureBucket:
    """A bucket with every secure default; ``finish`` adds encryption, policy, lifecycle and logging."""

    def __init__(
        self,
        parent: LogBucket,
        name: str,
        bucket_name: str,
        region: str,
        args: LogBucketArgs,
        *,
        object_lock: bool = False,
    ):
        self.resource_name, self.name, self.region = name, bucket_name, region
        self.arn = f"arn:{args.env.partition}:s3:::{bucket_name}"
        self._parent = parent
        region_arg = region if region != args.env.region else None
        self._region_arg = region_arg
        child = pulumi.ResourceOptions(parent=parent)
        self.bucket = aws.s3.Bucket(
            name,
            aws.s3.BucketArgs(
                bucket=bucket_name, region=region_arg, object_lock_enabled=object_lock or None, force_destroy=False
            ),
            opts=pulumi.ResourceOptions(parent=parent, protect=args.protect, retain_on_delete=args.protect),
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            aws.s3.BucketOwnershipControlsArgs(
                bucket=self.bucket.id,
                region=region_arg,
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            ),
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            aws.s3.BucketPublicAccessBlockArgs(
                bucket=self.bucket.id,
                region=region_arg,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
            ),
            opts=child,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            aws.s3.BucketVersioningInitArgs(
                bucket=self.bucket.id,
                region=region_arg,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            ),
            opts=child,
        )

    def allow_server_access_logging(self, env: AwsEnvironment) -> dict[str, Any]:
        """S3's logging service may write here, for source buckets of this account only."""
        return iam.statement(
            "AllowServerAccessLogs",
            ["s3:PutObject"],
            [f"{self.arn}/*"],
            principal={"Service": "logging.s3.amazonaws.com"},
            conditions={"StringEquals": {"aws:SourceAccount": env.account_id}},
        )

    def finish(
        self,
        *,
        kms_key_arn: pulumi.Input[str] | None,
        log_target: _SecureBucket | None,
        lifecycle: list[aws.s3.BucketLifecycleConfigurationRuleArgs],
        extra_statements: list[dict[str, Any]],
    ) -> None:
        name, child = self.resource_name, pulumi.ResourceOptions(parent=self._parent)
        default = (
            aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
            )
            if kms_key_arn is not None
            else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                # S3 server access logs can only be delivered to a bucket encrypted with SSE-S3.
                sse_algorithm="AES256"
            )
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            aws.s3.BucketServerSideEncryptionConfigurationInitArgs(
                bucket=self.bucket.id,
                region=self._region_arg,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=default, bucket_key_enabled=kms_key_arn is not None
                    )
                ],
            ),
            opts=child,
        )
        deny_http = iam.statement(
            "DenyInsecureTransport",
            ["s3:*"],
            [self.arn, f"{self.arn}/*"],
            principal="*",
            effect="Deny",
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            aws.s3.BucketPolicyArgs(
                bucket=self.bucket.id,
                region=self._region_arg,
                policy=json.dumps({"Version": "2012-10-17", "Statement": [deny_http, *extra_statements]}),
            ),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            aws.s3.BucketLifecycleConfigurationArgs(bucket=self.bucket.id, region=self._region_arg, rules=lifecycle),
            opts=pulumi.ResourceOptions(parent=self._parent, depends_on=[self.versioning]),
        )
        if log_target is not None:
            aws.s3.BucketLogging(
                f"{name}-logging",
                aws.s3.BucketLoggingInitArgs(
                    bucket=self.bucket.id,
                    region=self._region_arg,
                    target_bucket=log_target.bucket.id,
                    target_prefix=f"{self.name}/",
                    target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                        partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                            partition_date_source="EventTime"
                        )
                    ),
                ),
                opts=child,
            )


def _stream_rule(prefix: str, retention: Retention) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=f"retain-{prefix.strip('/') or 'all'}",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
        transitions=[
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=t.days, storage_class=t.storage_class.value)
            for t in retention.transitions
        ]
        or None,
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=retention.expiration_days),
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=retention.noncurrent_days
        ),
    )


def _expire_all(days: int, abort_days: int) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    return [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-access-logs",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=1
            ),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=abort_days
            ),
        )
    ]


#: The seed's log record. ``data.inputs`` and ``data.outputs`` are free-form objects: the OpenX JSON SerDe
#: returns a nested object as its JSON text when the column is a string, so they stay queryable with
#: json_extract.
LOG_COLUMNS = (
    ("session_id", "string"),
    ("timestamp", "string"),
    ("log_level", "string"),
    ("event_type", "string"),
    ("data", "struct<tool:string,inputs:string,outputs:string,duration_ms:bigint>"),
)


def _log_table(
    parent: pulumi.Resource,
    resource_name: str,
    database: aws.glue.CatalogDatabase,
    table: str,
    location: str,
    *,
    by_agent: bool,
) -> aws.glue.CatalogTable:
    parameters = {
        "classification": "json",
        "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2024-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "storage.location.template": f"{location}dt=${{dt}}/" + ("agent_id=${agent_id}/" if by_agent else ""),
    }
    partitions = [aws.glue.CatalogTablePartitionKeyArgs(name="dt", type="string")]
    columns = [aws.glue.CatalogTableStorageDescriptorColumnArgs(name=n, type=t) for n, t in LOG_COLUMNS]
    if by_agent:
        parameters["projection.agent_id.type"] = "injected"
        partitions.append(aws.glue.CatalogTablePartitionKeyArgs(name="agent_id", type="string"))
    else:
        columns.insert(0, aws.glue.CatalogTableStorageDescriptorColumnArgs(name="agent_id", type="string"))
    return aws.glue.CatalogTable(
        resource_name,
        aws.glue.CatalogTableArgs(
            database_name=database.name,
            name=table,
            table_type="EXTERNAL_TABLE",
            parameters=parameters,
            partition_keys=partitions,
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=location,
                columns=columns,
                input_format="org.apache.hadoop.mapred.TextInputFormat",
                output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library="org.openx.data.jsonserde.JsonSerDe",
                    parameters={"ignore.malformed.json": "true"},
                ),
            ),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _validate(name: str, args: LogBucketArgs) -> None:
    checker = Checker(f"LogBucket {name}")
    for field_name, message in retention_problems(args.retention):
        checker.problems.append(f"retention.{field_name}: {message}")
    for field_name, message in retention_problems(args.audit_retention, audit=True):
        checker.problems.append(f"audit_retention.{field_name}: {message}")
    checker.check(
        "audit_retention",
        args.audit_retention,
        lambda a: a.expiration_days >= args.retention.expiration_days,
        f"an expiration of at least the log retention ({args.retention.expiration_days} days)",
    )
    checker.check(
        "replication_region",
        args.replication_region,
        lambda r: r is None or r != args.env.region,
        f"a region other than {args.env.region}",
    )
    checker.check("abort_multipart_days", args.abort_multipart_days, lambda d: 1 <= d <= 30, "1 to 30 days")
    checker.check(
        "athena_bytes_scanned_cutoff",
        args.athena_bytes_scanned_cutoff,
        lambda b: b >= 10 * 1024**2,
        "at least 10 MB (Athena's minimum)",
    )
    checker.check(
        "log_prefixes",
        (*args.log_prefixes, args.audit_prefix),
        lambda p: all(x.endswith("/") and not x.startswith("/") for x in p) and len(set(p)) == len(p),
        "distinct prefixes ending in /",
    )
    checker.done()
