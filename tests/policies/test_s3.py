"""S3 rules: quiet on the compliant fixture, one changed property per firing case, unknowns reported."""

from __future__ import annotations

import pytest
from fixtures import manifest
from helpers import DROP, UNKNOWN, findings, mutate, remove

S3_RULES = [
    "s3-kms-encryption",
    "s3-versioning",
    "s3-public-access-blocked",
    "s3-tls-only",
    "s3-lifecycle-expiration",
    "s3-access-logging",
    "s3-replication",
]


@pytest.mark.parametrize("policy", S3_RULES)
def test_quiet_on_compliant_buckets(policy: str) -> None:
    assert findings(policy, manifest("s3_program")) == []


def violation(rule_id: str, bucket: str, text: str) -> tuple[str, str, str]:
    return ("violation", bucket, text)


CASES = [
    (
        "s3-kms-encryption",
        mutate,
        ("logs-sse", "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256"),
        "logs",
        "[AI-S3-001] bucket 'logs' encrypts with 'AES256'; expected one of ['aws:kms', 'aws:kms:dsse'].",
    ),
    (
        "s3-kms-encryption",
        mutate,
        ("logs-sse", "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", DROP),
        "logs",
        "[AI-S3-001] bucket 'logs' uses SSE-KMS with the AWS-managed key; name a customer-managed key.",
    ),
    (
        "s3-kms-encryption",
        remove,
        ("replica-sse",),
        "replica",
        "[AI-S3-001] bucket 'replica' has no default encryption configuration.",
    ),
    (
        "s3-versioning",
        mutate,
        ("logs-versioning", "versioningConfiguration.status", "Suspended"),
        "logs",
        "[AI-S3-002] bucket 'logs' does not have versioning enabled (found Suspended).",
    ),
    (
        "s3-versioning",
        remove,
        ("logs-versioning",),
        "logs",
        "[AI-S3-002] bucket 'logs' does not have versioning enabled (found no BucketVersioning).",
    ),
    (
        "s3-public-access-blocked",
        mutate,
        ("logs-pab", "restrictPublicBuckets", False),
        "logs",
        "[AI-S3-003] bucket 'logs' leaves restrictPublicBuckets off.",
    ),
    (
        "s3-public-access-blocked",
        remove,
        ("access-logs-pab",),
        "access-logs",
        "[AI-S3-003] bucket 'access-logs' has no public access block.",
    ),
    (
        "s3-tls-only",
        mutate,
        ("logs-policy", "policy", '{"Version": "2012-10-17", "Statement": []}'),
        "logs",
        "[AI-S3-004] bucket 'logs' has no bucket policy denying non-TLS requests.",
    ),
    (
        "s3-lifecycle-expiration",
        mutate,
        ("logs-lifecycle", "rules.0.status", "Disabled"),
        "logs",
        "[AI-S3-005] bucket 'logs' has no enabled lifecycle rule with an expiration.",
    ),
    ("s3-access-logging", remove, ("logs-logging",), "logs", "[AI-S3-006] bucket 'logs' has no server access logging."),
    (
        "s3-replication",
        mutate,
        ("logs-replication", "rules.0.status", "Disabled"),
        "logs",
        "[AI-S3-007] bucket 'logs' is not replicated to another region.",
    ),
]


@pytest.mark.parametrize(
    ("policy", "change", "change_args", "bucket", "text"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_fires_on_one_changed_property(policy: str, change, change_args: tuple, bucket: str, text: str) -> None:
    result = findings(policy, change(manifest("s3_program"), *change_args))
    assert len(result) == 1
    kind, resource, message = result[0]
    assert (kind, resource) == ("violation", bucket)
    assert message.startswith(text)
    assert " Fix: " in message


def test_access_log_target_may_use_sse_s3_but_a_log_bucket_may_not() -> None:
    # access-logs already uses AES256 in the compliant fixture; taking its logging role away makes it a plain bucket.
    changed = remove(manifest("s3_program"), "logs-logging")
    changed = remove(changed, "replica-logging")
    assert [f[1] for f in findings("s3-kms-encryption", changed)] == ["access-logs"]


@pytest.mark.parametrize(
    ("policy", "name", "path"),
    [
        ("s3-versioning", "logs-versioning", "versioningConfiguration"),
        ("s3-tls-only", "logs-policy", "policy"),
        ("s3-public-access-blocked", "logs-pab", "blockPublicAcls"),
    ],
)
def test_unknown_values_are_reported_not_passed(policy: str, name: str, path: str) -> None:
    result = findings(policy, mutate(manifest("s3_program"), name, path, UNKNOWN))
    assert len(result) == 1 and result[0][0] == "unknown"
    assert "can't be known during preview" in result[0][2]


def test_an_unknown_kms_key_id_still_counts_as_set() -> None:
    # A new stack's key ARN is unknown in every real preview: presence is all the rule needs.
    changed = mutate(
        manifest("s3_program"), "logs-sse", "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", UNKNOWN
    )
    assert findings("s3-kms-encryption", changed) == []
