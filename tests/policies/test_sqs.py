"""SQS rules: encryption, dead-letter queues, TLS-only and no wildcard principals."""

from __future__ import annotations

import json

import pytest
from fixtures import manifest
from helpers import DROP, UNKNOWN, findings, mutate

SQS_RULES = ["sqs-encryption", "sqs-dead-letter-queue", "sqs-tls-only", "sqs-no-wildcard-principal"]


@pytest.mark.parametrize("policy", SQS_RULES)
def test_quiet_on_compliant_queues(policy: str) -> None:
    assert findings(policy, manifest("sqs_program")) == []


def _open_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}
            ],
        }
    )


CASES = [
    (
        "sqs-encryption",
        ("tasks", "kmsMasterKeyId", DROP),
        "tasks",
        "[AI-SQS-001] queue 'tasks' is not encrypted at rest.",
    ),
    (
        "sqs-dead-letter-queue",
        ("tasks", "redrivePolicy", DROP),
        "tasks",
        "[AI-SQS-002] queue 'tasks' has no dead-letter queue.",
    ),
    (
        "sqs-tls-only",
        ("tasks-policy", "policy", json.dumps({"Statement": []})),
        "tasks",
        "[AI-SQS-003] queue 'tasks' has no policy denying non-TLS requests.",
    ),
    (
        "sqs-no-wildcard-principal",
        ("tasks-policy", "policy", _open_policy()),
        "tasks-policy",
        "[AI-SQS-004] 'tasks-policy' allows every principal (Open).",
    ),
]


@pytest.mark.parametrize(("policy", "change", "resource", "text"), CASES, ids=[c[0] for c in CASES])
def test_fires_on_one_changed_property(policy: str, change: tuple, resource: str, text: str) -> None:
    m = manifest("sqs_program")
    result = findings(policy, mutate(m, *change))
    assert len(result) == 1 and result[0][:2] == ("violation", resource)
    assert result[0][2].startswith(text)


def test_sqs_managed_encryption_is_accepted() -> None:
    changed = mutate(
        mutate(manifest("sqs_program"), "tasks", "kmsMasterKeyId", DROP), "tasks", "sqsManagedSseEnabled", True
    )
    assert findings("sqs-encryption", changed) == []


def test_unknown_policy_is_reported_not_passed() -> None:
    result = findings("sqs-no-wildcard-principal", mutate(manifest("sqs_program"), "tasks-policy", "policy", UNKNOWN))
    assert [r[0] for r in result] == ["unknown"]


def test_unknown_key_arn_still_counts_as_encrypted() -> None:
    assert findings("sqs-encryption", mutate(manifest("sqs_program"), "tasks", "kmsMasterKeyId", UNKNOWN)) == []
