"""Task queues: a DLQ per queue, KMS encryption, TLS-only policies, FIFO naming, alarms and exact grants."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import by_name, record_component, resources_of

from components.alarms import metric_alarm
from components.aws_env import AwsEnvironment
from components.naming import Naming
from components.task_queues import QueueKind, QueueSpec, TaskQueues, TaskQueuesArgs
from components.validation import InputPropertiesError

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ARN = "arn:aws:sqs:eu-west-1:123456789012:agent-infra-test-"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:on-call"

SPECS = (
    QueueSpec("tasks", processing_timeout_seconds=120),
    QueueSpec("inference", kind=QueueKind.PRIORITY, max_receive_count=3),
    QueueSpec("followups", kind=QueueKind.DELAYED, delay_seconds=300, fifo=True, content_based_deduplication=True),
)
WORK = ["followups", "inference-high", "inference-low", "tasks"]


def _args(**changes: Any) -> TaskQueuesArgs:
    base: dict[str, Any] = dict(
        naming=Naming("agent-infra", "test"),
        env=AwsEnvironment("123456789012", "eu-west-1"),
        queues=SPECS,
    )
    base.update(changes)
    return TaskQueuesArgs(**base)


def _plan(**changes: Any) -> dict[str, Any]:
    return record_component(lambda: TaskQueues("queues", _args(**changes)))


def _built(build: Any) -> tuple[dict[str, Any], TaskQueues]:
    """Record ``build(component)`` after constructing the component; returns the manifest and the component."""
    made: list[TaskQueues] = []

    def program() -> None:
        queues = TaskQueues("queues", _args(alarm_topic_arn=TOPIC, protect=True))
        made.append(queues)
        build(queues)

    return record_component(program), made[0]


@pytest.fixture(scope="module")
def queues() -> tuple[dict[str, Any], TaskQueues]:
    """Three specs (task, priority, delayed FIFO), protected, with an alarm topic and two grants."""

    def grants(q: TaskQueues) -> None:
        q.grant_send("producers")
        q.grant_consume("inference-workers", ["inference"])

    return _built(grants)


def _queue(m: dict[str, Any], logical: str) -> dict[str, Any]:
    return by_name(m, f"queues-{logical}")


def test_priority_spec_creates_high_and_low_queues_polled_in_that_order(
    queues: tuple[dict[str, Any], TaskQueues],
) -> None:
    m, component = queues
    assert sorted(component.queues) == WORK
    assert component.priority_queues == {"inference": ("inference-high", "inference-low")}
    names = sorted(q["inputs"]["name"] for q in resources_of(m, QUEUE))
    assert names == sorted(
        [f"agent-infra-test-{n}" for n in ["inference-high", "inference-low", "tasks"]]
        + [f"agent-infra-test-{n}-dlq" for n in ["inference-high", "inference-low", "tasks"]]
        + ["agent-infra-test-followups.fifo", "agent-infra-test-followups-dlq.fifo"]
    )


@pytest.mark.parametrize("logical", WORK)
def test_every_work_queue_redrives_to_its_own_dead_letter_queue(
    queues: tuple[dict[str, Any], TaskQueues], logical: str
) -> None:
    m, component = queues
    queue, dlq = _queue(m, logical), _queue(m, f"{logical}-dlq")
    assert queue["propertyDependencies"]["redrivePolicy"] == [dlq["urn"]]
    redrive = json.loads(queue["inputs"]["redrivePolicy"])
    assert redrive["deadLetterTargetArn"] == component.dead_letter_queue_arns[logical]
    assert redrive["deadLetterTargetArn"].endswith(":" + dlq["inputs"]["name"])
    assert redrive["maxReceiveCount"] == (3 if logical.startswith("inference") else 5)
    assert dlq["inputs"]["messageRetentionSeconds"] == 1_209_600
    allow = json.loads(dlq["inputs"]["redriveAllowPolicy"])
    assert allow == {"redrivePermission": "byQueue", "sourceQueueArns": [component.queue_arns[logical]]}
    assert "redrivePolicy" not in dlq["inputs"]


def test_every_queue_is_encrypted_with_the_component_key(queues: tuple[dict[str, Any], TaskQueues]) -> None:
    m, _ = queues
    key = by_name(m, "queues-key-key")
    assert key["inputs"]["enableKeyRotation"] is True
    for queue in resources_of(m, QUEUE):
        assert queue["propertyDependencies"]["kmsMasterKeyId"] == [key["urn"]], queue["name"]
        assert queue["inputs"]["kmsDataKeyReusePeriodSeconds"] == 300
        assert "sqsManagedSseEnabled" not in queue["inputs"]
        assert queue["inputs"]["receiveWaitTimeSeconds"] == 20


def test_every_queue_has_a_tls_only_policy_and_no_allow(queues: tuple[dict[str, Any], TaskQueues]) -> None:
    m, _ = queues
    policies = resources_of(m, QUEUE_POLICY)
    for queue in resources_of(m, QUEUE):
        (policy,) = [p for p in policies if p["propertyDependencies"]["queueUrl"] == [queue["urn"]]]
        (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
        assert statement == {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["sqs:*"],
            "Resource": [f"arn:aws:sqs:eu-west-1:123456789012:{queue['inputs']['name']}"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }


def test_fifo_spec_makes_fifo_queue_and_fifo_dlq(queues: tuple[dict[str, Any], TaskQueues]) -> None:
    m, component = queues
    for logical in ("followups", "followups-dlq"):
        queue = _queue(m, logical)["inputs"]
        assert queue["fifoQueue"] is True and queue["name"].endswith(".fifo")
        assert queue["contentBasedDeduplication"] is True
    assert component.queue_names["followups"] == "agent-infra-test-followups.fifo"
    assert "fifoQueue" not in _queue(m, "tasks")["inputs"]


def test_delay_visibility_and_retention(queues: tuple[dict[str, Any], TaskQueues]) -> None:
    m, _ = queues
    followups, tasks, high = (_queue(m, q)["inputs"] for q in ("followups", "tasks", "inference-high"))
    assert followups["delaySeconds"] == 300 and tasks["delaySeconds"] == 0
    # 6 x the processing timeout: 6 x 120 for tasks, 6 x the default 60 elsewhere.
    assert tasks["visibilityTimeoutSeconds"] == 720
    assert high["visibilityTimeoutSeconds"] == 360
    assert _queue(m, "tasks-dlq")["inputs"]["visibilityTimeoutSeconds"] == 720
    assert tasks["messageRetentionSeconds"] == 345_600


def test_explicit_visibility_timeout_is_kept() -> None:
    m = _plan(queues=(QueueSpec("tasks", processing_timeout_seconds=30, visibility_timeout_seconds=900),))
    assert _queue(m, "tasks")["inputs"]["visibilityTimeoutSeconds"] == 900


def test_queue_names_and_arns_are_plain_strings_from_names(queues: tuple[dict[str, Any], TaskQueues]) -> None:
    _, component = queues
    assert component.queue_names["tasks"] == "agent-infra-test-tasks"
    assert component.queue_arns == {
        "tasks": ARN + "tasks",
        "inference-high": ARN + "inference-high",
        "inference-low": ARN + "inference-low",
        "followups": ARN + "followups.fifo",
    }
    assert component.dead_letter_queue_names["tasks"] == "agent-infra-test-tasks-dlq"
    assert sorted(component.dead_letter_queues) == WORK


@pytest.mark.parametrize("logical", WORK)
def test_work_queue_alarms_on_age_of_oldest_message(queues: tuple[dict[str, Any], TaskQueues], logical: str) -> None:
    m, component = queues
    alarm = by_name(m, f"queues-{logical}-oldest-message")["inputs"]
    assert alarm["namespace"] == "AWS/SQS"
    assert alarm["metricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["dimensions"] == {"QueueName": component.queue_names[logical]}
    assert alarm["statistic"] == "Maximum"
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    # Delayed messages wait out their delay before they count as late.
    assert alarm["threshold"] == (900 + 300 if logical == "followups" else 900)
    assert alarm["alarmActions"] == [TOPIC] and alarm["okActions"] == [TOPIC]


@pytest.mark.parametrize("logical", WORK)
def test_dead_letter_queue_alarms_on_any_visible_message(
    queues: tuple[dict[str, Any], TaskQueues], logical: str
) -> None:
    m, component = queues
    alarm = by_name(m, f"queues-{logical}-dlq-messages")["inputs"]
    assert alarm["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["dimensions"] == {"QueueName": component.dead_letter_queue_names[logical]}
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["alarmActions"] == [TOPIC]


def test_alarm_threshold_comes_from_args_and_actions_are_optional() -> None:
    m = _plan(queues=(QueueSpec("tasks"),), oldest_message_alarm_seconds=300)
    alarm = by_name(m, "queues-tasks-oldest-message")["inputs"]
    assert alarm["threshold"] == 300
    assert alarm["alarmActions"] == [] and alarm["okActions"] == []
    assert len(resources_of(m, ALARM)) == 2


def test_grants_are_role_policies_of_the_component_that_depend_on_its_key(
    queues: tuple[dict[str, Any], TaskQueues],
) -> None:
    m, _ = queues
    key_urn = by_name(m, "queues-key-key")["urn"]
    send = by_name(m, "queues-send-producers")
    consume = by_name(m, "queues-consume-inference-workers")
    assert send["type"] == consume["type"] == ROLE_POLICY
    assert send["inputs"]["role"] == "producers" and consume["inputs"]["role"] == "inference-workers"
    # The key is named through its alias, so the documents are known in a preview of a new stack.
    for policy in (send, consume):
        statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
        key = statements["UseQueueKey"]
        assert key["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": ["alias/agent-infra-test-sqs"]}
        assert key["Condition"]["StringEquals"] == {"kms:ViaService": "sqs.eu-west-1.amazonaws.com"}
        assert key_urn not in policy["propertyDependencies"].get("policy", [])
        assert policy["parent"] == by_name(m, "queues")["urn"]


def test_grant_documents_in_a_placeholder_plan() -> None:
    from agentinfra.engine import record

    def program() -> None:
        q = TaskQueues("queues", _args())
        q.grant_send("producers")
        q.grant_consume("inference-workers", ["inference"])
        q.grant_consume("operators", ["tasks-dlq"])

    m = record(program, stack="test", placeholders=True)
    key_arn = "arn:aws:kms:eu-west-1:123456789012:key/*"

    def statements(name: str) -> dict[str, dict[str, Any]]:
        return {s["Sid"]: s for s in json.loads(by_name(m, name)["inputs"]["policy"])["Statement"]}

    send = statements("queues-send-producers")
    assert send["SendMessages"]["Action"] == ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]
    work_arns = sorted(ARN + q for q in ["tasks", "inference-high", "inference-low", "followups.fifo"])
    assert send["SendMessages"]["Resource"] == work_arns
    assert send["UseQueueKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert send["UseQueueKey"]["Resource"] == [key_arn]

    consume = statements("queues-consume-inference-workers")
    assert consume["ConsumeMessages"]["Action"] == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
    ]
    assert consume["ConsumeMessages"]["Resource"] == [ARN + "inference-high", ARN + "inference-low"]
    assert consume["UseQueueKey"]["Action"] == ["kms:Decrypt"]
    assert statements("queues-consume-operators")["ConsumeMessages"]["Resource"] == [ARN + "tasks-dlq"]


def test_grant_to_a_role_object_is_named_after_the_role_and_depends_on_it() -> None:
    import pulumi_aws as aws

    def grant(q: TaskQueues) -> None:
        role = aws.iam.Role("workers", aws.iam.RoleArgs(assume_role_policy="{}"))
        q.grant_consume(role, ["tasks"])

    m, _ = _built(grant)
    policy = by_name(m, "queues-consume-workers")
    assert policy["propertyDependencies"]["role"] == [by_name(m, "workers")["urn"]]


def test_grant_rejects_unknown_queue_names() -> None:
    with pytest.raises(InputPropertiesError, match=re.escape("queue_names: expected names among followups")):
        _built(lambda q: q.grant_send("producers", ["nope"]))


@pytest.mark.parametrize("logical", [*WORK, *(f"{q}-dlq" for q in WORK)])
def test_queues_and_key_are_protected_and_retained(queues: tuple[dict[str, Any], TaskQueues], logical: str) -> None:
    m, _ = queues
    for resource in (_queue(m, logical), by_name(m, "queues-key-key")):
        assert resource["options"]["protect"] is True and resource["options"]["retainOnDelete"] is True


def test_component_manifest_passes_the_policy_gate(queues: tuple[dict[str, Any], TaskQueues]) -> None:
    from agentinfra.gate import evaluate

    m, _ = queues
    result = evaluate(m, {"all": "mandatory", "required-tags": "disabled", "protect-stateful": "disabled"})
    assert [f for f in result.findings if f.kind == "violation"] == []
    # Every SQS and KMS document is known in a preview, so those rules all ran.
    assert [f for f in result.findings if f.policy.startswith(("sqs-", "kms-"))] == []
    # The grant documents name the key through its alias, so every rule ran: nothing is unknown.
    assert result.findings == []


def test_the_gate_recognises_every_dlq_through_the_redrive_dependency() -> None:
    from agentinfra.gate import evaluate

    m = _plan()
    result = evaluate(m, {"all": "disabled", "sqs-dead-letter-queue": "mandatory"})
    assert result.findings == []
    assert result.rules_evaluated == 1


def _spec(**changes: Any) -> tuple[QueueSpec, ...]:
    return (QueueSpec(**{"name": "tasks", **changes}),)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"queues": _spec(delay_seconds=901)}, "queues[0].delay_seconds: expected 0 to 900 seconds, found 901"),
        (
            {"queues": _spec(processing_timeout_seconds=60, visibility_timeout_seconds=300)},
            "queues[0].visibility_timeout_seconds: expected 6 x processing_timeout_seconds (360) to 43200 seconds, "
            "found 300",
        ),
        (
            {"queues": _spec(processing_timeout_seconds=60, visibility_timeout_seconds=43_201)},
            "queues[0].visibility_timeout_seconds: expected 6 x processing_timeout_seconds (360) to 43200",
        ),
        (
            {"queues": _spec(processing_timeout_seconds=7_201)},
            "queues[0].visibility_timeout_seconds: expected 6 x processing_timeout_seconds (43206)",
        ),
        (
            {"queues": _spec(message_retention_seconds=172_800)},
            "queues[0].message_retention_seconds: expected 259200 (3 days, a weekend outage) to 1209600 seconds",
        ),
        ({"queues": _spec(max_receive_count=0)}, "queues[0].max_receive_count: expected 1 to 1000, found 0"),
        (
            {"queues": (QueueSpec("tasks"), QueueSpec("tasks"))},
            "queues[1].name: expected a queue name used by no other spec, found 'tasks'",
        ),
        (
            {"queues": (QueueSpec("inference", kind=QueueKind.PRIORITY), QueueSpec("inference-high"))},
            "queues[1].name: expected a queue name used by no other spec, found 'inference-high'",
        ),
        (
            {"queues": _spec(kind=QueueKind.DELAYED)},
            "queues[0].delay_seconds: expected at least 1 second for a delayed queue, found 0",
        ),
        (
            {"queues": _spec(content_based_deduplication=True)},
            "queues[0].content_based_deduplication: expected False on a standard queue",
        ),
        ({"queues": _spec(name="Tasks_1")}, "queues[0].name: expected 2-40 lower-case letters, digits and dashes"),
        ({"queues": ()}, "queues: expected at least one queue spec"),
        ({"oldest_message_alarm_seconds": 30}, "oldest_message_alarm_seconds: expected at least 60 seconds"),
    ],
)
def test_component_rejects_invalid_args(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputPropertiesError, match=re.escape(fragment)):
        _plan(**changes)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InputPropertiesError) as error:
        _plan(queues=_spec(delay_seconds=1_000, max_receive_count=0, message_retention_seconds=60))
    fields = [p.split(":", 1)[0] for p in error.value.problems]
    assert fields == ["queues[0].delay_seconds", "queues[0].message_retention_seconds", "queues[0].max_receive_count"]


# The shared alarm helper (components/alarms.py), exercised here with its first user.
def test_alarm_helper_rejects_periods_cloudwatch_does_not_accept() -> None:
    def build() -> None:
        queues = TaskQueues("queues", _args(queues=(QueueSpec("tasks"),)))
        metric_alarm(
            "bad",
            alarm_name="bad",
            description="bad period",
            namespace="AWS/SQS",
            metric_name="NumberOfMessagesSent",
            dimensions={"QueueName": "x"},
            statistic="Sum",
            comparison="LessThanThreshold",
            threshold=1,
            period_seconds=90,
            evaluation_periods=2,
            datapoints_to_alarm=3,
            parent=queues,
        )

    with pytest.raises(InputPropertiesError) as error:
        record_component(build)
    assert error.value.problems == [
        "period_seconds: expected 10, 20, 30 or a multiple of 60, found 90",
        "datapoints_to_alarm: expected 1 to evaluation_periods, found 3",
    ]
