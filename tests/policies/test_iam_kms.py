"""IAM and KMS rules."""

from __future__ import annotations

import json

import pytest
from fixtures import ACCOUNT, manifest
from helpers import UNKNOWN, findings, mutate

ADMIN_DOC = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


@pytest.mark.parametrize(
    "policy", ["iam-no-star-on-star", "iam-no-admin-managed-policy", "kms-key-rotation", "kms-no-wildcard-principal"]
)
def test_quiet_on_compliant_fixture(policy: str) -> None:
    assert findings(policy, manifest("iam_program")) == []


@pytest.mark.parametrize(
    ("policy", "change", "resource", "text"),
    [
        (
            "iam-no-star-on-star",
            ("worker-extra", "policy", ADMIN_DOC),
            "worker-extra",
            "[AI-IAM-001] 'worker-extra' allows '*' on '*' (Everything).",
        ),
        (
            "iam-no-star-on-star",
            ("worker", "inlinePolicies.0.policy", ADMIN_DOC),
            "worker",
            "[AI-IAM-001] 'worker' allows '*' on '*' (Everything).",
        ),
        (
            "iam-no-admin-managed-policy",
            ("worker-ssm", "policyArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
            "worker-ssm",
            "[AI-IAM-002] 'worker-ssm' attaches the administrator-level policy",
        ),
        (
            "iam-no-admin-managed-policy",
            ("worker", "managedPolicyArns", ["arn:aws:iam::aws:policy/PowerUserAccess"]),
            "worker",
            "[AI-IAM-002] 'worker' attaches the administrator-level policy",
        ),
        ("kms-key-rotation", ("key", "enableKeyRotation", False), "key", "[AI-KMS-001] key 'key' does not rotate."),
        (
            "kms-no-wildcard-principal",
            (
                "key",
                "policy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Sid": "Anyone",
                                "Effect": "Allow",
                                "Principal": {"AWS": "*"},
                                "Action": "kms:*",
                                "Resource": "*",
                            }
                        ]
                    }
                ),
            ),
            "key",
            "[AI-KMS-002] key 'key' allows every principal (Anyone).",
        ),
    ],
)
def test_fires_on_one_changed_property(policy: str, change: tuple, resource: str, text: str) -> None:
    result = findings(policy, mutate(manifest("iam_program"), *change))
    assert len(result) == 1 and result[0][:2] == ("violation", resource)
    assert result[0][2].startswith(text)


def test_a_wildcard_principal_with_a_condition_is_allowed() -> None:
    doc = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}},
                }
            ]
        }
    )
    assert findings("kms-no-wildcard-principal", mutate(manifest("iam_program"), "key", "policy", doc)) == []


def test_asymmetric_keys_need_no_rotation() -> None:
    changed = mutate(
        mutate(manifest("iam_program"), "key", "enableKeyRotation", False), "key", "customerMasterKeySpec", "RSA_2048"
    )
    assert findings("kms-key-rotation", changed) == []


@pytest.mark.parametrize(
    ("policy", "change"),
    [
        ("iam-no-star-on-star", ("worker-extra", "policy", UNKNOWN)),
        ("kms-no-wildcard-principal", ("key", "policy", UNKNOWN)),
    ],
)
def test_unknown_documents_are_reported_not_passed(policy: str, change: tuple) -> None:
    assert [r[0] for r in findings(policy, mutate(manifest("iam_program"), *change))] == ["unknown"]
