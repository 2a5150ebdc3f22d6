"""Verify a deployed stack: does what runs in the account match its offline plan, and keep the rules?

The plan (``engine.plan(env)``) says what should exist; its inputs are the expected settings, read in
one place (:func:`expected_state`). One check function per service area reads the live settings with
boto3 and records two kinds of finding, kept apart:

* **drift**: a live value differs from the plan's value (a lifecycle expiration, a retention period);
* **violation**: a live setting breaks a rule whatever the plan says (versioning suspended, no
  dead-letter queue, encryption off, a resource missing). A setting that breaks a rule is reported
  once, as a violation, not also as drift.

Values the plan cannot know (``{"$unknown": true}``, such as KMS key ARNs) are never compared; rules
about them still run (a queue must have *a* KMS key). A call that fails for any reason other than
credentials or connectivity (access denied to one API, an emulator that does not implement it) is
listed as "not checked" with its reason instead of passing silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from .errors import InputError
from .manifest import UNKNOWN_MARK, is_secret, is_unknown

#: Error codes that mean the credentials themselves were refused: exit 2, not "not checked".
AUTH_ERROR_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
    }
)
#: Public-access-block flags, plan name to S3 API name; every one must be on.
PUBLIC_ACCESS_FLAGS = {
    "blockPublicAcls": "BlockPublicAcls",
    "blockPublicPolicy": "BlockPublicPolicy",
    "ignorePublicAcls": "IgnorePublicAcls",
    "restrictPublicBuckets": "RestrictPublicBuckets",
}
#: Redis settings that must be on, plan name to (ElastiCache API field, what it protects).
REDIS_REQUIRED = {
    "automaticFailoverEnabled": ("AutomaticFailover", "failover to a replica when the primary fails"),
    "multiAzEnabled": ("MultiAZ", "replicas in other AZs"),
    "atRestEncryptionEnabled": ("AtRestEncryptionEnabled", "encryption at rest"),
    "transitEncryptionEnabled": ("TransitEncryptionEnabled", "TLS in transit"),
    "authToken": ("AuthTokenEnabled", "AUTH on every connection"),
}
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
S3_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
S3_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
S3_LOGGING = "aws:s3/bucketLogging:BucketLogging"
SQS_QUEUE = "aws:sqs/queue:Queue"
LOCALSTACK_SWITCH = "AGENTINFRA_USE_LOCALSTACK"


class VerifyInputError(InputError):
    """Outputs, credentials or an endpoint that cannot be used: exit status 2 with this one message."""


# --- expected state: everything read from the plan -------------------------------------------------


@dataclass(frozen=True)
class BucketSpec:
    name: str
    region: str
    sse_algorithm: Any
    """Planned default encryption algorithm (None: no encryption configuration in the plan)."""
    bucket_key: Any
    access_log_target: bool
    """Receives server access logs, which cannot be written with SSE-KMS: SSE-S3 is allowed."""
    versioning: Any
    lifecycle: dict[str, dict[str, Any]] | None
    """Planned lifecycle rules by id, normalised by :func:`_lifecycle_rule` (None: none planned)."""
    replication_rules: tuple[str, ...] | None
    """Planned replication rule ids (None: the bucket does not replicate)."""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    region: str
    retention_seconds: Any
    kms: bool
    """The plan encrypts the queue with a KMS key (its ARN is usually unknown offline)."""
    dlq: Any
    """The planned dead-letter queue's name (None: no redrive policy planned)."""
    max_receive_count: Any


@dataclass(frozen=True)
class CacheSpec:
    group_id: Any
    description: Any
    region: str
    required: dict[str, bool]
    """Planned value of each :data:`REDIS_REQUIRED` setting."""
    node_type: Any


@dataclass(frozen=True)
class NodeGroupSpec:
    cluster: str
    name: str
    region: str
    ami_type: Any
    taints: list[dict[str, Any]] | None
    azs: tuple[str, ...] | None
    """AZs of the planned subnets (None: not known offline)."""


@dataclass(frozen=True)
class AutoScalingGroupSpec:
    name: str
    region: str
    min_size: Any
    max_size: Any
    azs: tuple[str, ...] | None


@dataclass
class Expected:
    """What the plan says should exist, per service area."""

    region: str
    allowed_accounts: list[str]
    buckets: list[BucketSpec] = field(default_factory=list)
    queues: list[QueueSpec] = field(default_factory=list)
    caches: list[CacheSpec] = field(default_factory=list)
    node_groups: list[NodeGroupSpec] = field(default_factory=list)
    auto_scaling_groups: list[AutoScalingGroupSpec] = field(default_factory=list)
    unchecked: list[tuple[str, str, str]] = field(default_factory=list)
    """(service, resource, reason) for planned resources verify does not check."""
    outputs: dict[str, Any] = field(default_factory=dict)


class _Plan:
    """Look-ups over one manifest: by URN, by type, and the children that name a resource."""

    def __init__(self, manifest: dict[str, Any]):
        self.resources: list[dict[str, Any]] = manifest["resources"]
        self.by_urn = {r["urn"]: r for r in self.resources}

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_]

    def attached(self, target_urn: str, type_: str, key: str = "bucket") -> dict[str, Any] | None:
        """The resource of ``type_`` whose input ``key`` depends on ``target_urn`` (a bucket's versioning)."""
        return next((r for r in self.of_type(type_) if target_urn in r["propertyDependencies"].get(key, [])), None)

    def depends_on(self, resource: dict[str, Any], key: str, type_: str) -> list[dict[str, Any]]:
        urns = resource["propertyDependencies"].get(key, [])
        return [self.by_urn[u] for u in urns if u in self.by_urn and self.by_urn[u]["type"] == type_]


def planned(resource: dict[str, Any] | None, path: str) -> Any:
    """A planned input by dotted path: None when absent, unknown when unknown or in ``ignoreChanges``."""
    if resource is None:
        return None
    if path in resource["options"].get("ignoreChanges", []):
        return dict(UNKNOWN_MARK)
    value: Any = resource["inputs"]
    for part in path.split("."):
        if is_unknown(value) or not isinstance(value, dict):
            return value if is_unknown(value) else None
        value = value.get(part)
    return value


def expected_state(manifest: dict[str, Any], region: str | None = None) -> Expected:
    """Read every expected setting from the plan. ``region`` replaces the provider's default region."""
    plan = _Plan(manifest)
    providers = {r["urn"]: r["inputs"] for r in plan.of_type("pulumi:providers:aws")}
    planned_region = next((p["region"] for p in providers.values() if isinstance(p.get("region"), str)), None)
    default = region or planned_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not default:
        raise VerifyInputError("the plan names no AWS region: pass --region")
    accounts = next((p["allowedAccountIds"] for p in providers.values() if p.get("allowedAccountIds")), "[]")

    def region_of(res: dict[str, Any]) -> str:
        pinned = res["inputs"].get("region")
        if isinstance(pinned, str):
            return pinned
        provider_region = providers.get(res.get("provider") or "", {}).get("region")
        return str(default if region or not isinstance(provider_region, str) else provider_region)

    expected = Expected(
        region=default,
        allowed_accounts=json.loads(accounts) if isinstance(accounts, str) else list(accounts),
        outputs=manifest.get("outputs", {}),
    )
    _expect_buckets(plan, region_of, expected)
    _expect_queues(plan, region_of, expected)
    _expect_compute(plan, region_of, expected)
    for res in plan.of_type("aws:elasticache/replicationGroup:ReplicationGroup"):
        expected.caches.append(
            CacheSpec(
                group_id=planned(res, "replicationGroupId"),
                description=planned(res, "description"),
                region=region_of(res),
                required={key: _truthy(planned(res, key)) for key in REDIS_REQUIRED},
                node_type=planned(res, "nodeType"),
            )
        )
    for res in plan.of_type("aws:apigateway/restApi:RestApi") + plan.of_type("aws:apigatewayv2/api:Api"):
        expected.unchecked.append(("apigateway", res["name"], "verify does not check API Gateway yet"))
    return expected


_RegionOf = Callable[[dict[str, Any]], str]


def _expect_buckets(plan: _Plan, region_of: _RegionOf, expected: Expected) -> None:
    log_targets = {u for r in plan.of_type(S3_LOGGING) for u in r["propertyDependencies"].get("targetBucket", [])}
    for res in plan.of_type("aws:s3/bucket:Bucket"):
        name = planned(res, "bucket")
        if not isinstance(name, str):
            expected.unchecked.append(("s3", res["name"], "the bucket name is not known in the plan"))
            continue
        encryption = plan.attached(res["urn"], S3_ENCRYPTION)
        rules = planned(encryption, "rules")
        rule = rules[0] if isinstance(rules, list) and rules else {}
        lifecycle = planned(plan.attached(res["urn"], S3_LIFECYCLE), "rules")
        replication = planned(plan.attached(res["urn"], S3_REPLICATION), "rules")
        expected.buckets.append(
            BucketSpec(
                name=name,
                region=region_of(res),
                sse_algorithm=rule.get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm"),
                bucket_key=rule.get("bucketKeyEnabled"),
                access_log_target=res["urn"] in log_targets,
                versioning=planned(plan.attached(res["urn"], S3_VERSIONING), "versioningConfiguration.status"),
                lifecycle={r["id"]: _lifecycle_rule(r, camel=True) for r in lifecycle}
                if isinstance(lifecycle, list)
                else None,
                replication_rules=tuple(sorted(r.get("id", "") for r in replication))
                if isinstance(replication, list)
                else None,
            )
        )


def _expect_queues(plan: _Plan, region_of: _RegionOf, expected: Expected) -> None:
    for res in plan.of_type(SQS_QUEUE):
        name = planned(res, "name")
        if not isinstance(name, str):
            expected.unchecked.append(("sqs", res["name"], "the queue name is not known in the plan"))
            continue
        redrive = planned(res, "redrivePolicy")
        policy = json.loads(redrive) if isinstance(redrive, str) else {}
        dlq: Any = None
        if redrive is not None:
            # The DLQ is the queue the policy depends on; its name is known even when the ARN is not.
            targets = plan.depends_on(res, "redrivePolicy", SQS_QUEUE)
            from_arn = str(policy.get("deadLetterTargetArn", "")).rsplit(":", 1)[-1]
            dlq = planned(targets[0], "name") if targets else (from_arn or dict(UNKNOWN_MARK))
        expected.queues.append(
            QueueSpec(
                name=name,
                region=region_of(res),
                retention_seconds=planned(res, "messageRetentionSeconds"),
                kms=planned(res, "kmsMasterKeyId") is not None,
                dlq=dlq,
                max_receive_count=policy.get("maxReceiveCount", dict(UNKNOWN_MARK)),
            )
        )


def _expect_compute(plan: _Plan, region_of: _RegionOf, expected: Expected) -> None:
    def azs_of(res: dict[str, Any], key: str) -> tuple[str, ...] | None:
        azs = [planned(s, "availabilityZone") for s in plan.depends_on(res, key, "aws:ec2/subnet:Subnet")]
        return tuple(sorted(set(azs))) if azs and all(isinstance(a, str) for a in azs) else None

    for res in plan.of_type("aws:eks/nodeGroup:NodeGroup"):
        cluster, name = planned(res, "clusterName"), planned(res, "nodeGroupName")
        if not (isinstance(cluster, str) and isinstance(name, str)):
            expected.unchecked.append(("eks", res["name"], "the cluster or node group name is not known in the plan"))
            continue
        taints = planned(res, "taints")
        expected.node_groups.append(
            NodeGroupSpec(
                cluster=cluster,
                name=name,
                region=region_of(res),
                ami_type=planned(res, "amiType"),
                taints=None if is_unknown(taints) else _taints(taints or []),
                azs=azs_of(res, "subnetIds"),
            )
        )
    for res in plan.of_type("aws:autoscaling/group:Group"):
        name = planned(res, "name")
        if not isinstance(name, str):
            expected.unchecked.append(("autoscaling", res["name"], "the group name is not known in the plan"))
            continue
        zones = planned(res, "availabilityZones")
        expected.auto_scaling_groups.append(
            AutoScalingGroupSpec(
                name=name,
                region=region_of(res),
                min_size=planned(res, "minSize"),
                max_size=planned(res, "maxSize"),
                azs=tuple(sorted(zones))
                if isinstance(zones, list) and zones and all(isinstance(z, str) for z in zones)
                else azs_of(res, "vpcZoneIdentifiers"),
            )
        )


def _truthy(value: Any) -> bool:
    """A planned flag: a secret (an auth token) or unknown value counts as set."""
    return bool(value) if not (is_secret(value) or is_unknown(value)) else True


def _taints(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Taints in one order (the plan and the EKS API both name them key, value, effect)."""
    return sorted(({"key": t.get("key"), "value": t.get("value"), "effect": t.get("effect")} for t in items), key=str)


def _lifecycle_rule(rule: dict[str, Any], *, camel: bool) -> dict[str, Any]:
    """A lifecycle rule as comparable settings, from the plan (camelCase) or the S3 API (PascalCase)."""

    def get(path: str) -> Any:
        value: Any = rule
        for part in path.split("."):
            key = part if camel else (part[0].upper() + part[1:])
            value = value.get(key) if isinstance(value, dict) else None
        return value

    transitions = get("transitions") or []
    return {
        "status": get("status"),
        "filter.prefix": get("filter.prefix") or "",
        "expiration.days": get("expiration.days"),
        "noncurrentVersionExpiration.noncurrentDays": get("noncurrentVersionExpiration.noncurrentDays"),
        "abortIncompleteMultipartUpload.daysAfterInitiation": get("abortIncompleteMultipartUpload.daysAfterInitiation"),
        "transitions": [
            f"{t.get('days' if camel else 'Days')}d:{t.get('storageClass' if camel else 'StorageClass')}"
            for t in transitions
        ],
    }


# --- findings and the report ---------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    kind: str
    """``drift`` or ``violation``."""
    service: str
    resource: str
    """The resource's name in AWS (bucket, queue, replication group, node group)."""
    setting: str
    """The setting, named as the plan's input (``lifecycle[retain-audit].expiration.days``)."""
    expected: Any
    actual: Any
    message: str

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("service", "resource", "setting", "expected", "actual", "message")}


@dataclass
class Report:
    environment: str
    account: str | None = None
    checked: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def drift(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "drift"]

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "violation"]

    @property
    def passed(self) -> bool:
        return not self.findings

    def recorder(self, service: str, resource: str) -> _Recorder:
        self.checked.append((service, resource))
        return _Recorder(self, service, resource)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "account": self.account,
            "passed": self.passed,
            "violations": [f.to_json() for f in self.violations],
            "drift": [f.to_json() for f in self.drift],
            "notChecked": [{"service": s, "resource": r, "reason": why} for s, r, why in self.not_checked],
            "checked": [{"service": s, "resource": r} for s, r in self.checked],
            "notes": self.notes,
        }


@dataclass
class _Recorder:
    report: Report
    service: str
    resource: str

    def violation(self, setting: str, expected: Any, actual: Any, message: str) -> None:
        self.report.findings.append(
            Finding("violation", self.service, self.resource, setting, expected, actual, message)
        )

    def drift(self, setting: str, expected: Any, actual: Any, message: str | None = None) -> None:
        """Record drift when a planned value that is known offline differs from the live one."""
        if is_unknown(expected) or is_secret(expected) or expected == actual:
            return
        text = message or f"the plan has {show(expected)}, the account {show(actual)}"
        self.report.findings.append(Finding("drift", self.service, self.resource, setting, expected, actual, text))


# --- AWS access -------------------------------------------------------------------------------------


class AwsClients:
    """boto3 clients by (service, region): real AWS, one endpoint URL, or LocalStack's settings.

    * ``endpoint_url``: every client talks to it, with the standard credential chain;
    * otherwise, when ``AGENTINFRA_USE_LOCALSTACK=1`` or ``LOCALSTACK_HOST`` is set, sessions come from
      ``localstack_client`` (its endpoint from ``LOCALSTACK_HOST``/``AWS_ENDPOINT_URL``/``USE_SSL``, its
      own test credentials);
    * otherwise boto3's defaults (``AWS_PROFILE``, environment, SSO, instance roles).

    Retries follow botocore's own settings (``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``); connecting gives up
    after 10 s and reading after 30 s.
    """

    def __init__(self, endpoint_url: str | None = None, localstack: bool | None = None):
        self.endpoint_url = endpoint_url
        self.localstack = use_localstack() if localstack is None and not endpoint_url else bool(localstack)
        emulated = bool(endpoint_url or self.localstack or os.environ.get("AWS_ENDPOINT_URL"))
        # Emulators answer on one host name: virtual-hosted bucket names would not resolve.
        self._config = Config(
            connect_timeout=10,
            read_timeout=30,
            user_agent_extra="agentinfra-verify",
            s3={"addressing_style": "path"} if emulated else None,
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._session: Any = None

    def describe(self) -> str:
        if self.endpoint_url:
            return f"endpoint {self.endpoint_url}"
        if self.localstack:
            from localstack_client import config as localstack_config

            return f"LocalStack at {localstack_config.get_service_endpoint('sts')}"
        return "AWS"

    def __call__(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            if self.localstack:
                from localstack_client.session import Session as LocalStackSession

                self._clients[key] = LocalStackSession(region_name=region).client(service, config=self._config)
            else:
                self._clients[key] = self._botocore_session().create_client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=self._config
                )
        return self._clients[key]

    def _botocore_session(self) -> Any:
        """One session (credentials, profile, retries from the environment) that reads no model twice."""
        if self._session is None:
            import botocore.session

            self._session = botocore.session.get_session()
            self._session.register_component("data_loader", _model_loader())
        return self._session


@cache
def _model_loader() -> Any:
    """botocore's API models, parsed once per process (read-only data, as clients of one session share it)."""
    from botocore.loaders import create_loader

    return create_loader(os.environ.get("AWS_DATA_PATH"))


def use_localstack(environ: Mapping[str, str] | None = None) -> bool:
    """The LocalStack switches: ``AGENTINFRA_USE_LOCALSTACK=1`` or a ``LOCALSTACK_HOST``."""
    env = os.environ if environ is None else environ
    return env.get(LOCALSTACK_SWITCH, "").lower() in ("1", "true", "yes") or bool(env.get("LOCALSTACK_HOST"))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _fetch(call: Callable[..., dict[str, Any]], missing: tuple[str, ...], **kwargs: Any) -> dict[str, Any] | None:
    """The API's answer, or None when it reports one of the ``missing`` error codes (not configured)."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if _code(exc) in missing:
            return None
        raise


def _guarded(report: Report, service: str, resource: str, check: Callable[[], None]) -> None:
    """Run one resource's check; a refused or unsupported call makes it "not checked", never a pass."""
    try:
        check()
    except ClientError as exc:
        code, text = _code(exc), exc.response.get("Error", {}).get("Message", "")
        if code in AUTH_ERROR_CODES:
            raise VerifyInputError(f"AWS refused the credentials ({code}): {text}") from None
        report.not_checked.append((service, resource, f"{exc.operation_name} failed: {code} {text}".strip()))
    except NotImplementedError as exc:  # moto in process: an API it does not implement
        report.not_checked.append((service, resource, f"the endpoint does not implement it: {exc}"))
    except ResponseParserError:  # an emulator's HTML error page (moto server: an API it does not implement)
        report.not_checked.append((service, resource, "the endpoint answered with an error page, not an AWS reply"))


# --- the checks, one per service area -------------------------------------------------------------


def check_s3(spec: BucketSpec, clients: AwsClients, report: Report) -> None:
    s3, rec = clients("s3", spec.region), report.recorder("s3", spec.name)
    versioning = _fetch(s3.get_bucket_versioning, ("NoSuchBucket", "404"), Bucket=spec.name)
    if versioning is None:
        rec.violation("exists", True, False, f"bucket {spec.name} does not exist in {spec.region}")
        return
    status = versioning.get("Status") or "never enabled"
    if status != "Enabled":
        rec.violation("versioning", "Enabled", status, "versioning must be Enabled (recovery from overwrites)")
    elif spec.versioning is not None:
        rec.drift("versioning", spec.versioning, status)

    encryption = _fetch(s3.get_bucket_encryption, ("ServerSideEncryptionConfigurationNotFoundError",), Bucket=spec.name)
    rules = (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [{}])
    algorithm = rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
    allowed = KMS_ALGORITHMS + (("AES256",) if spec.access_log_target else ())
    if algorithm not in allowed:
        rule = "SSE-KMS or SSE-S3 (an access-log target)" if spec.access_log_target else "SSE-KMS (a log bucket)"
        rec.violation("serverSideEncryption.sseAlgorithm", list(allowed), algorithm, f"default encryption: {rule}")
    else:
        rec.drift("serverSideEncryption.sseAlgorithm", spec.sse_algorithm, algorithm)
        if spec.bucket_key is not None:
            rec.drift("serverSideEncryption.bucketKeyEnabled", spec.bucket_key, rules[0].get("BucketKeyEnabled", False))

    block = _fetch(s3.get_public_access_block, ("NoSuchPublicAccessBlockConfiguration",), Bucket=spec.name)
    flags = (block or {}).get("PublicAccessBlockConfiguration", {})
    for setting, api_name in PUBLIC_ACCESS_FLAGS.items():
        if flags.get(api_name) is not True:
            rec.violation(f"publicAccessBlock.{setting}", True, flags.get(api_name), "all four flags must be on")

    _check_lifecycle(spec, s3, rec)
    if spec.replication_rules is not None:
        found = _fetch(s3.get_bucket_replication, ("ReplicationConfigurationNotFoundError",), Bucket=spec.name)
        live_rules = (found or {}).get("ReplicationConfiguration", {}).get("Rules", [])
        if not any(r.get("Status") == "Enabled" for r in live_rules):
            rec.violation("replication", list(spec.replication_rules), None, "the plan replicates this bucket (DR)")
        else:
            rec.drift("replication.rules", list(spec.replication_rules), sorted(r.get("ID", "") for r in live_rules))


def _check_lifecycle(spec: BucketSpec, s3: Any, rec: _Recorder) -> None:
    if spec.lifecycle is None:
        return
    found = _fetch(s3.get_bucket_lifecycle_configuration, ("NoSuchLifecycleConfiguration",), Bucket=spec.name)
    live = {r.get("ID", ""): _lifecycle_rule(r, camel=False) for r in (found or {}).get("Rules", [])}
    rec.drift("lifecycle.rules", sorted(spec.lifecycle), sorted(live))
    for rule_id in sorted(spec.lifecycle.keys() & live.keys()):
        for setting, value in spec.lifecycle[rule_id].items():
            rec.drift(f"lifecycle[{rule_id}].{setting}", value, live[rule_id][setting])


def check_sqs(spec: QueueSpec, clients: AwsClients, report: Report) -> None:
    sqs, rec = clients("sqs", spec.region), report.recorder("sqs", spec.name)
    url = _queue_url(sqs, spec.name)
    if url is None:
        rec.violation("exists", True, False, f"queue {spec.name} does not exist in {spec.region}")
        return
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
    if spec.kms and not attrs.get("KmsMasterKeyId"):
        rec.violation("kmsMasterKeyId", "a KMS key", None, "the queue must be encrypted with its KMS key")
    elif not attrs.get("KmsMasterKeyId") and attrs.get("SqsManagedSseEnabled") != "true":
        rec.violation("encryption", "SSE-KMS or SSE-SQS", None, "encryption is off")
    if spec.retention_seconds is not None:
        rec.drift("messageRetentionSeconds", spec.retention_seconds, _int(attrs.get("MessageRetentionPeriod")))
    if spec.dlq is None:
        return
    policy = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else None
    if policy is None:
        rec.violation("redrivePolicy", spec.dlq, None, "no dead-letter queue: a failing message is retried forever")
        return
    arn = str(policy.get("deadLetterTargetArn", "")).split(":")  # arn:aws:sqs:<region>:<account>:<name>
    target, target_region = arn[-1], arn[3] if len(arn) == 6 else spec.region
    if _queue_url(clients("sqs", target_region), target) is None:
        message = f"the dead-letter queue {target} does not exist"
        rec.violation("redrivePolicy.deadLetterTargetArn", spec.dlq, target, message)
        return
    rec.drift("redrivePolicy.deadLetterTargetArn", spec.dlq, target)
    rec.drift("redrivePolicy.maxReceiveCount", spec.max_receive_count, _int(policy.get("maxReceiveCount")))


def _queue_url(sqs: Any, name: str) -> str | None:
    found = _fetch(sqs.get_queue_url, ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"), QueueName=name)
    return None if found is None else str(found["QueueUrl"])


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def check_elasticache(spec: CacheSpec, clients: AwsClients, report: Report, endpoint: Any) -> None:
    client = clients("elasticache", spec.region)
    group = _find_replication_group(client, spec, endpoint if isinstance(endpoint, str) else None)
    rec = report.recorder("elasticache", str(group["ReplicationGroupId"] if group else spec.group_id))
    if group is None:
        rec.violation("exists", True, False, f"no replication group {spec.group_id} (or with the stack's endpoint)")
        return
    rec.drift("replicationGroupId", spec.group_id, group["ReplicationGroupId"])
    for setting, (api_name, protects) in REDIS_REQUIRED.items():
        live = group.get(api_name)
        on = live in ("enabled", "enabling") if isinstance(live, str) else bool(live)
        if spec.required[setting] and not on:
            rec.violation(setting, True, live, f"{api_name} must be on: {protects}")
        else:
            rec.drift(setting, spec.required[setting], on)
    rec.drift("nodeType", spec.node_type, group.get("CacheNodeType"))


def _find_replication_group(client: Any, spec: CacheSpec, endpoint: str | None) -> dict[str, Any] | None:
    if isinstance(spec.group_id, str):
        missing = ("ReplicationGroupNotFoundFault",)
        found = _fetch(client.describe_replication_groups, missing, ReplicationGroupId=spec.group_id)
        if found and found.get("ReplicationGroups"):
            return dict(found["ReplicationGroups"][0])
    for page in client.get_paginator("describe_replication_groups").paginate():
        for group in page.get("ReplicationGroups", []):
            addresses = {group.get("ConfigurationEndpoint", {}).get("Address")}
            addresses |= {g.get("PrimaryEndpoint", {}).get("Address") for g in group.get("NodeGroups", [])}
            if (endpoint and endpoint.split(":")[0] in addresses) or group.get("Description") == spec.description:
                return dict(group)
    return None


def check_eks(spec: NodeGroupSpec, clients: AwsClients, report: Report) -> None:
    rec = report.recorder("eks", spec.name)
    found = _fetch(
        clients("eks", spec.region).describe_nodegroup,
        ("ResourceNotFoundException",),
        clusterName=spec.cluster,
        nodegroupName=spec.name,
    )
    if found is None:
        rec.violation("exists", True, False, f"node group {spec.name} does not exist in cluster {spec.cluster}")
        return
    group = found["nodegroup"]
    rec.drift("amiType", spec.ami_type, group.get("amiType"))
    if spec.taints is not None:
        rec.drift("taints", spec.taints, _taints(group.get("taints") or []))
    _check_azs(rec, "subnetIds", spec.azs, _subnet_azs(clients("ec2", spec.region), group.get("subnets") or []))


def check_autoscaling(spec: AutoScalingGroupSpec, clients: AwsClients, report: Report) -> None:
    rec = report.recorder("autoscaling", spec.name)
    client = clients("autoscaling", spec.region)
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[spec.name]).get("AutoScalingGroups", [])
    if not groups:
        rec.violation("exists", True, False, f"auto-scaling group {spec.name} does not exist in {spec.region}")
        return
    rec.drift("minSize", spec.min_size, groups[0].get("MinSize"))
    rec.drift("maxSize", spec.max_size, groups[0].get("MaxSize"))
    _check_azs(rec, "availabilityZones", spec.azs, tuple(sorted(groups[0].get("AvailabilityZones", []))))


def _subnet_azs(ec2: Any, subnet_ids: list[str]) -> tuple[str, ...]:
    if not subnet_ids:
        return ()
    found = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": subnet_ids}]).get("Subnets", [])
    return tuple(sorted({s["AvailabilityZone"] for s in found}))


def _check_azs(rec: _Recorder, setting: str, expected: tuple[str, ...] | None, live: tuple[str, ...]) -> None:
    if expected is None:
        return
    missing = sorted(set(expected) - set(live))
    if missing:
        message = f"not in {', '.join(missing)}: the plan spreads it over {', '.join(expected)} for AZ outages"
        rec.violation(setting, list(expected), list(live), message)
    else:
        rec.drift(setting, list(expected), list(live))


def check_outputs(expected: Expected, outputs: dict[str, Any], report: Report) -> None:
    """Planned stack outputs that are known offline (names) against the deployed ones."""
    rec = report.recorder("stack", "outputs")
    for key, value in sorted(expected.outputs.items()):
        if key in ("project", "stack", "schemaVersion") or _has_placeholder(value):
            continue
        rec.drift(key, value, outputs.get(key), None if key in outputs else "the deployed stack has no such output")


def _has_placeholder(value: Any) -> bool:
    if is_unknown(value) or is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_has_placeholder(v) for v in value.values())
    return isinstance(value, list) and any(_has_placeholder(v) for v in value)


def verify(manifest: dict[str, Any], outputs: dict[str, Any], clients: AwsClients, region: str | None = None) -> Report:
    """Check the account against the plan. Credential and connection errors propagate (botocore's own)."""
    expected = expected_state(manifest, region)
    report = Report(environment=str(manifest["stack"]))
    try:  # fails fast, before any check, on missing credentials or an unreachable endpoint
        identity = clients("sts", expected.region).get_caller_identity()
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise VerifyInputError(f"{clients.describe()} refused the credentials ({_code(exc)}): {message}") from None
    report.account = str(identity.get("Account"))
    if expected.allowed_accounts and report.account not in expected.allowed_accounts:
        report.notes.append(
            f"the credentials are for account {report.account}; the stack allows {', '.join(expected.allowed_accounts)}"
        )
    report.not_checked.extend(expected.unchecked)
    check_outputs(expected, outputs, report)
    for service, resource, check in _checks(expected, outputs, clients, report):
        _guarded(report, service, resource, check)
    if not expected.auto_scaling_groups:
        report.notes.append("the plan has no auto-scaling groups: none checked")
    return report


def _checks(
    expected: Expected, outputs: dict[str, Any], clients: AwsClients, report: Report
) -> Iterator[tuple[str, str, Callable[[], None]]]:
    """(service, resource, check) for every planned resource, in plan order per service area."""
    for bucket in expected.buckets:
        yield "s3", bucket.name, partial(check_s3, bucket, clients, report)
    for queue in expected.queues:
        yield "sqs", queue.name, partial(check_sqs, queue, clients, report)
    for group in expected.caches:
        endpoint = outputs.get("redisEndpoint")
        yield "elasticache", str(group.group_id), partial(check_elasticache, group, clients, report, endpoint)
    for node_group in expected.node_groups:
        yield "eks", node_group.name, partial(check_eks, node_group, clients, report)
    for asg in expected.auto_scaling_groups:
        yield "autoscaling", asg.name, partial(check_autoscaling, asg, clients, report)


def show(value: Any, width: int = 60) -> str:
    """A value in one short line, for tables and messages."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, list):
        text = ",".join(show(v, 10**6) for v in value) or "[]"
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."
