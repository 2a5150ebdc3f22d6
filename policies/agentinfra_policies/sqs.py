"""SQS rules: encryption, a dead-letter queue on every work queue, TLS-only and no public queue policies."""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from .documents import denies_insecure_transport, is_wildcard_principal, parse_document, statements
from .framework import Reporter, Rule, depends_through, of_type, present, resource_rule, stack_rule

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
REDRIVE_POLICY = "aws:sqs/redrivePolicy:RedrivePolicy"


def dead_letter_queues(resources: list[PolicyResource]) -> set[str]:
    """URNs of queues that some other queue's redrive policy points at."""
    dlqs: set[str] = set()
    for queue in of_type(resources, QUEUE):
        dlqs.update(dep.urn for dep in queue.property_dependencies.get("redrivePolicy", []))
    for redrive in of_type(resources, REDRIVE_POLICY):
        dlqs.update(dep.urn for dep in redrive.property_dependencies.get("redrivePolicy", []))
    return dlqs


ENCRYPTION = Rule(
    id="AI-SQS-001",
    name="sqs-encryption",
    description="SQS queues encrypt messages at rest, with a KMS key or SQS-managed keys.",
    severity=Severity.HIGH,
    fix="Set kms_master_key_id to a key from components.kms_key, or sqs_managed_sse_enabled=True.",
    resource_types=(QUEUE,),
    checkov=("CKV_AWS_27",),
    cdk_nag=("AwsSolutions-SQS2",),
)


@resource_rule(ENCRYPTION)
def encryption(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    if not present(args.props, "kmsMasterKeyId") and args.props.get("sqsManagedSseEnabled") is not True:
        report(f"queue {args.name!r} is not encrypted at rest.")


DEAD_LETTER = Rule(
    id="AI-SQS-002",
    name="sqs-dead-letter-queue",
    description="Every SQS work queue has a dead-letter queue, so poison messages stop being retried.",
    severity=Severity.MEDIUM,
    fix="Give the queue a redrive_policy naming a dead-letter queue (components.task_queues creates one "
    "per queue with max_receive_count from config).",
    resource_types=(QUEUE, REDRIVE_POLICY),
    cdk_nag=("AwsSolutions-SQS3",),
)


@stack_rule(DEAD_LETTER)
def dead_letter(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    dlqs = dead_letter_queues(resources)
    redriven = {
        dep.urn for r in of_type(resources, REDRIVE_POLICY) for dep in r.property_dependencies.get("queueUrl", [])
    }
    for queue in of_type(resources, QUEUE):
        if queue.urn in dlqs or queue.urn in redriven:
            continue
        if not present(queue.props, "redrivePolicy"):
            report(f"queue {queue.name!r} has no dead-letter queue.", queue.urn)


TLS_ONLY = Rule(
    id="AI-SQS-003",
    name="sqs-tls-only",
    description="SQS queue policies deny every request that does not use TLS.",
    severity=Severity.HIGH,
    fix="Attach a QueuePolicy with a Deny statement for Principal '*' when aws:SecureTransport is false.",
    resource_types=(QUEUE, QUEUE_POLICY),
    cdk_nag=("AwsSolutions-SQS4",),
)


@stack_rule(TLS_ONLY)
def tls_only(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    policies = of_type(resources, QUEUE_POLICY)
    for queue in of_type(resources, QUEUE):
        documents = [parse_document(p.props.get("policy")) for p in policies if depends_through(p, "queueUrl", queue)]
        inline = parse_document(queue.props.get("policy"))
        if not any(denies_insecure_transport(d) for d in [*documents, inline]):
            report(f"queue {queue.name!r} has no policy denying non-TLS requests.", queue.urn)


NO_WILDCARD = Rule(
    id="AI-SQS-004",
    name="sqs-no-wildcard-principal",
    description="SQS queue policies never allow every principal without a condition.",
    severity=Severity.CRITICAL,
    fix="Name the principals (roles of the producers and consumers) or add a condition such as "
    "aws:SourceArn; grant access with TaskQueues.grant_send / grant_consume instead of a queue policy.",
    resource_types=(QUEUE, QUEUE_POLICY),
    checkov=("CKV_AWS_72",),
)


@resource_rule(NO_WILDCARD)
def no_wildcard(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    for stmt in statements(parse_document(args.props.get("policy"))):
        if stmt.get("Effect") == "Allow" and is_wildcard_principal(stmt) and not stmt.get("Condition"):
            report(f"{args.name!r} allows every principal ({stmt.get('Sid') or 'unnamed statement'}).")


RULES = [encryption, dead_letter, tls_only, no_wildcard]
