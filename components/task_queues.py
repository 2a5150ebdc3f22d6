"""SQS queues for the agents' task, priority and delayed patterns, each with its own dead-letter queue.

Every queue (work and dead-letter) is encrypted with the component's KMS key, has a policy denying
requests without TLS, and carries a fixed name from :class:`~components.naming.Naming`. Every ARN
written into a JSON document (redrive policies, queue policies, grants) is computed from that name,
so the documents are known during a preview and the policy pack can read them.

Access is granted with :meth:`TaskQueues.grant_send` and :meth:`TaskQueues.grant_consume`, never with
Allow statements in the queue policies.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from . import iam
from .alarms import metric_alarm
from .aws_env import AwsEnvironment
from .kms_key import EncryptionKey, EncryptionKeyArgs
from .naming import Naming
from .validation import Checker, InputPropertiesError

MAX_DELAY_SECONDS = 900
"""SQS's limit on a queue's delivery delay (15 minutes)."""
MAX_VISIBILITY_SECONDS = 43_200
"""SQS's limit on the visibility timeout (12 hours)."""
VISIBILITY_PER_PROCESSING = 6
"""Visibility timeout per second of processing: a slow attempt, retries and jitter never make a message
visible to a second worker while the first still holds it."""
MIN_RETENTION_SECONDS = 259_200
"""Three days: a message survives a weekend outage of its consumers."""
MAX_RETENTION_SECONDS = 1_209_600
"""SQS's limit on retention (14 days)."""
DEFAULT_RETENTION_SECONDS = 345_600
"""Four days, SQS's own default."""
DLQ_RETENTION_SECONDS = MAX_RETENTION_SECONDS
"""A message keeps its original enqueue time when moved to a dead-letter queue, so the DLQ keeps the
maximum or messages could expire there within moments of arriving."""
KMS_DATA_KEY_REUSE_SECONDS = 300
"""How long SQS reuses a data key before asking KMS again (fewer KMS calls, same key)."""
LONG_POLL_SECONDS = 20
"""Receive wait time: long polling, so idle workers do not spin on empty receives."""

#: Exact actions of each grant (plus the KMS actions the queue key needs for it).
SEND_ACTIONS = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage")
SEND_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
CONSUME_ACTIONS = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
)
CONSUME_KMS_ACTIONS = ("kms:Decrypt",)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")


class QueueKind(enum.Enum):
    """The seed's queue patterns."""

    TASK = "task"
    """One work queue."""
    PRIORITY = "priority"
    """Two work queues, ``<name>-high`` and ``<name>-low``; workers poll high first and low only when high
    is empty."""
    DELAYED = "delayed"
    """One work queue whose messages become visible ``delay_seconds`` after they are sent."""


@dataclass(frozen=True)
class QueueSpec:
    """One queue pattern; its work queues each get a dead-letter queue of the same type."""

    name: str
    """Logical name: lower-case letters, digits and dashes, 2-40 characters; unique."""
    kind: QueueKind = QueueKind.TASK
    """``TASK`` (default), ``PRIORITY`` or ``DELAYED``."""
    processing_timeout_seconds: int = 60
    """Longest time a worker spends on one message, >= 1 (default 60)."""
    visibility_timeout_seconds: int | None = None
    """At least 6 x processing timeout, at most 43200; default exactly 6 x processing timeout."""
    fifo: bool = False
    """FIFO queues (name ends in ``.fifo``, the DLQ is FIFO too). Default False."""
    content_based_deduplication: bool = False
    """FIFO only: deduplicate on a hash of the body instead of a producer-supplied id. Default False."""
    delay_seconds: int = 0
    """Delivery delay of every message, 0-900; at least 1 for ``DELAYED``. Default 0."""
    message_retention_seconds: int = DEFAULT_RETENTION_SECONDS
    """259200 (3 days) to 1209600 (14 days); default 345600 (4 days)."""
    max_receive_count: int = 5
    """Receives before a message moves to the dead-letter queue, 1-1000 (default 5)."""

    @property
    def visibility_timeout(self) -> int:
        if self.visibility_timeout_seconds is not None:
            return self.visibility_timeout_seconds
        return self.processing_timeout_seconds * VISIBILITY_PER_PROCESSING

    @property
    def work_queues(self) -> tuple[str, ...]:
        """Logical names of the work queues this spec creates, in polling order."""
        if self.kind is QueueKind.PRIORITY:
            return (f"{self.name}-high", f"{self.name}-low")
        return (self.name,)


@dataclass(frozen=True)
class TaskQueuesArgs:
    naming: Naming
    """Physical queue and alarm names."""
    env: AwsEnvironment
    """Account and region, for queue ARNs and the key policy."""
    queues: tuple[QueueSpec, ...]
    """The queue patterns, at least one."""
    oldest_message_alarm_seconds: int = 900
    """Alarm when a work queue's oldest message is older than this (plus its delivery delay), >= 60.
    Default 900."""
    alarm_topic_arn: pulumi.Input[str] | None = None
    """SNS topic notified when an alarm fires and clears; None for no notification (default)."""
    protect: bool = False
    """``protect`` and retain-on-delete on the queues and their key. Default False."""


@dataclass(frozen=True)
class _Planned:
    """One work queue with its names, worked out before any resource exists."""

    logical: str
    spec: QueueSpec
    name: str
    dlq_name: str


class TaskQueues(pulumi.ComponentResource):
    """Work queues with dead-letter queues, KMS encryption, TLS-only policies, alarms and grant helpers.

    For a ``PRIORITY`` spec named ``inference`` the work queues are ``inference-high`` and
    ``inference-low``; workers poll ``-high`` first and ``-low`` only when ``-high`` returned nothing
    (``priority_queues`` lists them in that order).
    """

    key: EncryptionKey
    """The key that encrypts every queue."""
    queues: dict[str, aws.sqs.Queue]
    """Work queues by logical name (priority specs contribute ``<name>-high`` and ``<name>-low``)."""
    dead_letter_queues: dict[str, aws.sqs.Queue]
    """Each work queue's dead-letter queue, by the work queue's logical name."""
    queue_names: dict[str, str]
    """Physical work queue names by logical name (the ``QueueName`` dimension of SQS metrics)."""
    queue_arns: dict[str, str]
    """Work queue ARNs by logical name, computed from the names (known in a preview)."""
    queue_urls: dict[str, pulumi.Output[str]]
    """Work queue URLs by logical name, for the workers' configuration."""
    dead_letter_queue_names: dict[str, str]
    """Physical dead-letter queue names by the work queue's logical name."""
    dead_letter_queue_arns: dict[str, str]
    """Dead-letter queue ARNs by the work queue's logical name."""
    priority_queues: dict[str, tuple[str, str]]
    """Priority spec name to its (high, low) logical work queue names, in polling order."""
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """Alarms by resource name: oldest-message age on work queues, visible messages on DLQs."""

    def __init__(self, name: str, args: TaskQueuesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:messaging:TaskQueues", name, None, opts)
        _validate(name, args)
        self._args = args
        planned = _plan(args)

        self.key = EncryptionKey(
            f"{name}-key",
            EncryptionKeyArgs(
                description=f"{args.naming.prefix}: SQS task queues",
                env=args.env,
                alias=args.naming.name("sqs"),
                protect=args.protect,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        arn = args.env.arn
        self.queue_names = {p.logical: p.name for p in planned}
        self.queue_arns = {p.logical: arn("sqs", p.name) for p in planned}
        self.dead_letter_queue_names = {p.logical: p.dlq_name for p in planned}
        self.dead_letter_queue_arns = {p.logical: arn("sqs", p.dlq_name) for p in planned}
        self.priority_queues = {
            s.name: (s.work_queues[0], s.work_queues[1]) for s in args.queues if s.kind is QueueKind.PRIORITY
        }
        self.queues, self.dead_letter_queues, self.alarms = {}, {}, {}
        for queue in planned:
            self._build_queue(name, queue)
        self.queue_urls = {logical: q.url for logical, q in self.queues.items()}

        self.register_outputs(
            {
                "keyArn": self.key.arn,
                "queueNames": self.queue_names,
                "queueArns": self.queue_arns,
                "queueUrls": self.queue_urls,
                "deadLetterQueueNames": self.dead_letter_queue_names,
                "deadLetterQueueArns": self.dead_letter_queue_arns,
                "priorityQueues": {k: list(v) for k, v in self.priority_queues.items()},
            }
        )

    def _build_queue(self, name: str, planned: _Planned) -> None:
        args, spec = self._args, planned.spec
        env = args.env
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        # A standard queue leaves both FIFO settings unset rather than false.
        fifo = True if spec.fifo else None
        deduplication = spec.content_based_deduplication if spec.fifo else None
        resource = f"{name}-{planned.logical}"

        dlq = aws.sqs.Queue(
            f"{resource}-dlq",
            aws.sqs.QueueArgs(
                name=planned.dlq_name,
                message_retention_seconds=DLQ_RETENTION_SECONDS,
                visibility_timeout_seconds=spec.visibility_timeout,
                receive_wait_time_seconds=LONG_POLL_SECONDS,
                # Only the work queue may move messages here; written from its name, so known in a preview.
                redrive_allow_policy=json.dumps(
                    {"redrivePermission": "byQueue", "sourceQueueArns": [env.arn("sqs", planned.name)]}
                ),
                kms_master_key_id=self.key.arn,
                kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
                fifo_queue=fifo,
                content_based_deduplication=deduplication,
                tags={"Name": planned.dlq_name},
            ),
            opts=stateful,
        )
        max_receives = spec.max_receive_count
        queue = aws.sqs.Queue(
            resource,
            aws.sqs.QueueArgs(
                name=planned.name,
                delay_seconds=spec.delay_seconds,
                visibility_timeout_seconds=spec.visibility_timeout,
                message_retention_seconds=spec.message_retention_seconds,
                receive_wait_time_seconds=LONG_POLL_SECONDS,
                # Computed from the DLQ's name Output: the ARN stays known, and the property dependency
                # on the DLQ is how the policy pack recognises it as this queue's dead-letter queue.
                redrive_policy=dlq.name.apply(
                    lambda dlq_name: json.dumps(
                        {"deadLetterTargetArn": env.arn("sqs", dlq_name), "maxReceiveCount": max_receives}
                    )
                ),
                kms_master_key_id=self.key.arn,
                kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
                fifo_queue=fifo,
                content_based_deduplication=deduplication,
                tags={"Name": planned.name},
            ),
            opts=stateful,
        )
        for suffix, target, queue_name in (("", queue, planned.name), ("-dlq", dlq, planned.dlq_name)):
            aws.sqs.QueuePolicy(
                f"{resource}{suffix}-tls-only",
                aws.sqs.QueuePolicyArgs(queue_url=target.url, policy=_tls_only_policy(env.arn("sqs", queue_name))),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.queues[planned.logical] = queue
        self.dead_letter_queues[planned.logical] = dlq
        self._build_alarms(resource, planned)

    def _build_alarms(self, resource: str, planned: _Planned) -> None:
        args = self._args
        # Delayed messages are not late while they wait out their delay, so the delay adds to the threshold.
        threshold = args.oldest_message_alarm_seconds + planned.spec.delay_seconds
        self.alarms[f"{resource}-oldest-message"] = metric_alarm(
            f"{resource}-oldest-message",
            alarm_name=args.naming.name(planned.logical, "oldest-message", max_length=255),
            description=f"{planned.name}: oldest message waited over {threshold}s; workers are behind or down.",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": planned.name},
            statistic="Maximum",
            comparison="GreaterThanThreshold",
            threshold=threshold,
            period_seconds=60,
            evaluation_periods=3,
            topic_arn=args.alarm_topic_arn,
            parent=self,
        )
        self.alarms[f"{resource}-dlq-messages"] = metric_alarm(
            f"{resource}-dlq-messages",
            alarm_name=args.naming.name(planned.logical, "dlq-messages", max_length=255),
            description=f"{planned.dlq_name}: messages failed {planned.spec.max_receive_count} times; "
            "inspect them, then redrive.",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": planned.dlq_name},
            statistic="Maximum",
            comparison="GreaterThanThreshold",
            threshold=0,
            period_seconds=60,
            evaluation_periods=1,
            topic_arn=args.alarm_topic_arn,
            parent=self,
        )

    def grant_send(
        self, role: aws.iam.Role | str, queue_names: Sequence[str] | None = None, *, label: str | None = None
    ) -> aws.iam.RolePolicy:
        """Let ``role`` (a Role or a role name) send to ``queue_names`` (default every work queue).

        Names are logical work queue names, priority spec names (both of their queues) or
        ``<work queue>-dlq``. Adds ``kms:GenerateDataKey`` and ``kms:Decrypt`` on the queue key, which
        SQS needs to encrypt the message on the sender's behalf.
        """
        return self._grant("send", role, queue_names, label, SEND_ACTIONS, SEND_KMS_ACTIONS)

    def grant_consume(
        self, role: aws.iam.Role | str, queue_names: Sequence[str] | None = None, *, label: str | None = None
    ) -> aws.iam.RolePolicy:
        """Let ``role`` receive, delete and extend the visibility of messages of ``queue_names``
        (default every work queue), with ``kms:Decrypt`` on the queue key. Names as for :meth:`grant_send`.
        """
        return self._grant("consume", role, queue_names, label, CONSUME_ACTIONS, CONSUME_KMS_ACTIONS)

    def _grant(
        self,
        verb: str,
        role: aws.iam.Role | str,
        queue_names: Sequence[str] | None,
        label: str | None,
        actions: Sequence[str],
        kms_actions: Sequence[str],
    ) -> aws.iam.RolePolicy:
        arns = self._resolve(queue_names)
        role_label = label or (role if isinstance(role, str) else role.pulumi_resource_name)
        resource = f"{self.pulumi_resource_name}-{verb}-{role_label}"
        # Parented to this component, not to the role: the grant is about these queues and this key, lives
        # and dies with them, and works for a role created anywhere (or only named).
        return iam.grant_policy(
            self,
            resource,
            role,
            iam.statement(f"{verb.capitalize()}Messages", actions, arns),
            # The key is named through its alias (known in a preview, unlike its ARN) and may be
            # used only through SQS.
            self.key.grant_statement(
                "UseQueueKey",
                list(kms_actions),
                {"StringEquals": {"kms:ViaService": f"sqs.{self._args.env.region}.amazonaws.com"}},
            ),
            named=True,
        )

    def _resolve(self, queue_names: Sequence[str] | None) -> list[str]:
        """Queue ARNs for logical names; every unknown name is reported at once."""
        if queue_names is None:
            return sorted(self.queue_arns.values())
        known: dict[str, list[str]] = {logical: [a] for logical, a in self.queue_arns.items()}
        known.update({f"{logical}-dlq": [a] for logical, a in self.dead_letter_queue_arns.items()})
        known.update({spec: [self.queue_arns[q] for q in pair] for spec, pair in self.priority_queues.items()})
        unknown = [n for n in queue_names if n not in known]
        if unknown or not queue_names:
            raise InputPropertiesError(
                f"TaskQueues {self.pulumi_resource_name} grant",
                [f"queue_names: expected names among {', '.join(sorted(known))}, found {list(queue_names)!r}"],
            )
        return sorted({a for n in queue_names for a in known[n]})


def _tls_only_policy(queue_arn: str) -> pulumi.Output[str]:
    return iam.document(
        iam.statement(
            "DenyInsecureTransport",
            ["sqs:*"],
            [queue_arn],
            principal={"AWS": "*"},
            conditions={"Bool": {"aws:SecureTransport": "false"}},
            effect="Deny",
        )
    )


def _plan(args: TaskQueuesArgs) -> list[_Planned]:
    planned = []
    for spec in args.queues:
        suffix = ".fifo" if spec.fifo else ""
        # SQS names are at most 80 characters, including the .fifo suffix.
        limit = 80 - len(suffix)
        for logical in spec.work_queues:
            planned.append(
                _Planned(
                    logical=logical,
                    spec=spec,
                    name=args.naming.name(logical, max_length=limit) + suffix,
                    dlq_name=args.naming.name(logical, "dlq", max_length=limit) + suffix,
                )
            )
    return planned


def _validate(name: str, args: TaskQueuesArgs) -> None:
    checker = Checker(f"TaskQueues {name}")
    checker.check("queues", args.queues, lambda v: len(v) >= 1, "at least one queue spec")
    checker.check(
        "oldest_message_alarm_seconds", args.oldest_message_alarm_seconds, lambda v: v >= 60, "at least 60 seconds"
    )
    seen: set[str] = set()
    for index, spec in enumerate(args.queues):
        field = f"queues[{index}]"
        checker.check(
            f"{field}.name", spec.name, lambda v: bool(_NAME.match(v)), "2-40 lower-case letters, digits and dashes"
        )
        # Names are compared after expansion: a priority spec "inference" takes inference-high and -low.
        for logical in (*spec.work_queues, *(f"{q}-dlq" for q in spec.work_queues)):
            checker.check(f"{field}.name", logical, lambda v: v not in seen, "a queue name used by no other spec")
            seen.add(logical)
        _validate_spec(checker, field, spec)
    checker.done()


def _validate_spec(checker: Checker, field: str, spec: QueueSpec) -> None:
    checker.check(
        f"{field}.delay_seconds", spec.delay_seconds, lambda v: 0 <= v <= MAX_DELAY_SECONDS, "0 to 900 seconds"
    )
    if spec.kind is QueueKind.DELAYED:
        checker.check(
            f"{field}.delay_seconds", spec.delay_seconds, lambda v: v >= 1, "at least 1 second for a delayed queue"
        )
    checker.check(
        f"{field}.processing_timeout_seconds", spec.processing_timeout_seconds, lambda v: v >= 1, "at least 1 second"
    )
    minimum = spec.processing_timeout_seconds * VISIBILITY_PER_PROCESSING
    checker.check(
        f"{field}.visibility_timeout_seconds",
        spec.visibility_timeout,
        lambda v: minimum <= v <= MAX_VISIBILITY_SECONDS,
        f"{VISIBILITY_PER_PROCESSING} x processing_timeout_seconds ({minimum}) to {MAX_VISIBILITY_SECONDS} seconds",
    )
    checker.check(
        f"{field}.message_retention_seconds",
        spec.message_retention_seconds,
        lambda v: MIN_RETENTION_SECONDS <= v <= MAX_RETENTION_SECONDS,
        f"{MIN_RETENTION_SECONDS} (3 days, a weekend outage) to {MAX_RETENTION_SECONDS} seconds",
    )
    checker.check(f"{field}.max_receive_count", spec.max_receive_count, lambda v: 1 <= v <= 1000, "1 to 1000")
    if not spec.fifo:
        checker.check(
            f"{field}.content_based_deduplication",
            spec.content_based_deduplication,
            lambda v: not v,
            "False on a standard queue (only FIFO queues deduplicate)",
        )
