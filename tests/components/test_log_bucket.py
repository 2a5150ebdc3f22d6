"""Log storage: encryption, lifecycle from config, replication with its own key, query layer, protection."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import by_name, record_component, resources_of

from components.aws_env import AwsEnvironment
from components.log_bucket import LogBucket, LogBucketArgs, Retention, StorageClass, Transition
from components.naming import Naming
from components.validation import InputPropertiesError

BUCKET = "aws:s3/bucket:Bucket"


def _settings_of(m: dict[str, Any], bucket_name: str, type_suffix: str) -> list[dict[str, Any]]:
    bucket = by_name(m, bucket_name)
    return [
        r
        for r in m["resources"]
        if r["type"].endswith(type_suffix) and r["propertyDependencies"].get("bucket") == [bucket["urn"]]
    ]


def test_prod_log_bucket_has_every_secure_setting(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    bucket = by_name(prod, "agent-logs")
    assert bucket["inputs"]["bucket"] == "agent-infra-prod-logs-333333333333-us-east-1"
    assert bucket["inputs"]["objectLockEnabled"] is True
    assert bucket["options"]["protect"] is True and bucket["options"]["retainOnDelete"] is True
    (sse,) = _settings_of(prod, "agent-logs", ":BucketServerSideEncryptionConfiguration")
    rule = sse["inputs"]["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms" and rule["bucketKeyEnabled"]
    assert sse["propertyDependencies"]["rules"] == [by_name(prod, "agent-logs-key-key")["urn"]]
    (pab,) = _settings_of(prod, "agent-logs", ":BucketPublicAccessBlock")
    assert all(
        pab["inputs"][k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    (ownership,) = _settings_of(prod, "agent-logs", ":BucketOwnershipControls")
    assert ownership["inputs"]["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    (versioning,) = _settings_of(prod, "agent-logs", ":BucketVersioning")
    assert versioning["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    (logging,) = _settings_of(prod, "agent-logs", ":BucketLogging")
    assert logging["propertyDependencies"]["targetBucket"] == [by_name(prod, "agent-logs-access-logs")["urn"]]


def test_bucket_policy_denies_plain_http_and_other_encryption_but_not_headerless_puts(plans: dict[str, Any]) -> None:
    (policy,) = _settings_of(plans["prod"], "agent-logs", ":BucketPolicy")
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    tls = statements["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    enc = statements["DenyPutsAskingForOtherEncryption"]
    assert enc["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
        "Null": {"s3:x-amz-server-side-encryption": "false"},
    }
    lock = statements["DenyAuditPutsWithoutComplianceLock"]
    assert lock["Resource"] == ["arn:aws:s3:::agent-infra-prod-logs-333333333333-us-east-1/audit/*"]
    assert statements["DenyAuditPutsWithShortLock"]["Condition"] == {
        "NumericLessThan": {"s3:object-lock-remaining-retention-days": "2557"}
    }


def test_lifecycle_rules_match_the_config(plans: dict[str, Any]) -> None:
    (lifecycle,) = _settings_of(plans["prod"], "agent-logs", ":BucketLifecycleConfiguration")
    rules = {r["id"]: r for r in lifecycle["inputs"]["rules"]}
    for stream in ("executions", "conversations"):
        rule = rules[f"retain-{stream}"]
        assert rule["filter"] == {"prefix": f"{stream}/"}
        assert [(t["days"], t["storageClass"]) for t in rule["transitions"]] == [
            (30, "STANDARD_IA"),
            (90, "GLACIER_IR"),
        ]
        assert rule["expiration"] == {"days": 365}
        assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    audit = rules["retain-audit"]
    assert audit["expiration"] == {"days": 2557}
    assert [(t["days"], t["storageClass"]) for t in audit["transitions"]] == [(90, "GLACIER_IR"), (365, "DEEP_ARCHIVE")]
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 3}


def test_prod_replicates_kms_objects_to_another_region_with_its_own_key(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    replica = by_name(prod, "agent-logs-replica")
    assert replica["inputs"]["region"] == "us-west-2"
    assert replica["inputs"]["bucket"] == "agent-infra-prod-logs-333333333333-us-west-2"
    assert replica["options"]["protect"] is True
    replica_key = by_name(prod, "agent-logs-replica-key-key")
    assert replica_key["inputs"]["region"] == "us-west-2" and replica_key["inputs"]["enableKeyRotation"]
    (config,) = resources_of(prod, "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    rule = config["inputs"]["rules"][0]
    assert rule["status"] == "Enabled"
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"
    assert set(config["propertyDependencies"]["rules"]) == {replica["urn"], replica_key["urn"]}
    assert by_name(prod, "agent-logs-versioning")["urn"] in config["dependencies"]
    role_policy = next(
        r for r in resources_of(prod, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "agent-logs-replication"
    )
    statements = {s["Sid"]: s for s in json.loads(role_policy["inputs"]["policy"])["Statement"]}
    assert statements["EncryptReplicas"]["Condition"]["ForAnyValue:StringEquals"] == {
        "kms:ResourceAliases": ["alias/agent-infra-prod-log-bucket-replica"]
    }


def test_query_layer_uses_partition_projection(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    table = by_name(prod, "agent-logs-executions")
    params = table["inputs"]["parameters"]
    assert params["projection.enabled"] == "true" and params["projection.dt.type"] == "date"
    assert params["projection.agent_id.type"] == "injected"
    assert params["storage.location.template"] == (
        "s3://agent-infra-prod-logs-333333333333-us-east-1/executions/dt=${dt}/agent_id=${agent_id}/"
    )
    assert [p["name"] for p in table["inputs"]["partitionKeys"]] == ["dt", "agent_id"]
    wide = by_name(prod, "agent-logs-executions-all-agents")
    assert [p["name"] for p in wide["inputs"]["partitionKeys"]] == ["dt"]
    (workgroup,) = resources_of(prod, "aws:athena/workgroup:Workgroup")
    config = workgroup["inputs"]["configuration"]
    assert config["enforceWorkgroupConfiguration"] is True
    assert config["bytesScannedCutoffPerQuery"] == 10 * 1024**3
    assert config["resultConfiguration"]["encryptionConfiguration"]["encryptionOption"] == "SSE_KMS"


def test_access_log_bucket_uses_sse_s3_and_expires(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    (sse,) = _settings_of(prod, "agent-logs-access-logs", ":BucketServerSideEncryptionConfiguration")
    assert sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    (lifecycle,) = _settings_of(prod, "agent-logs-access-logs", ":BucketLifecycleConfiguration")
    assert lifecycle["inputs"]["rules"][0]["expiration"] == {"days": 90}


def test_dev_has_no_replication_and_a_shorter_retention(plans: dict[str, Any]) -> None:
    dev = plans["dev"]
    assert resources_of(dev, "aws:s3/bucketReplicationConfig:BucketReplicationConfig") == []
    assert len(resources_of(dev, BUCKET)) == 2
    (lifecycle,) = _settings_of(dev, "agent-logs", ":BucketLifecycleConfiguration")
    rules = {r["id"]: r for r in lifecycle["inputs"]["rules"]}
    assert rules["retain-executions"]["expiration"] == {"days": 30}
    assert "transitions" not in rules["retain-executions"]
    assert "protect" not in by_name(dev, "agent-logs")["options"]


def _args(**changes: Any) -> LogBucketArgs:
    base: dict[str, Any] = dict(
        naming=Naming("agent-infra", "test"),
        env=AwsEnvironment("123456789012", "eu-west-1"),
        retention=Retention(365),
        audit_retention=Retention(730),
    )
    base.update(changes)
    return LogBucketArgs(**base)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (
            {"retention": Retention(365, (Transition(10, StorageClass.STANDARD_IA),))},
            "retention.transitions[0].days: expected at least 30 for STANDARD_IA (AWS's minimum), found 10",
        ),
        (
            {
                "retention": Retention(
                    60, (Transition(30, StorageClass.STANDARD_IA), Transition(90, StorageClass.GLACIER))
                )
            },
            "retention.expiration_days: expected an expiration after the last transition (day 90), found 60",
        ),
        (
            {"audit_retention": Retention(200, ())},
            "audit_retention.expiration_days: expected at least the audit minimum",
        ),
        ({"replication_region": "eu-west-1"}, "replication_region: expected a region other than eu-west-1"),
    ],
)
def test_component_rejects_invalid_args(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputPropertiesError, match=re.escape(fragment)):
        record_component(lambda: LogBucket("logs", _args(**changes)))
