"""CloudWatch log groups: retention from config and encryption with a KMS key, for every component."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .validation import Checker

#: CloudWatch Logs accepts only these retention periods (days).
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def encrypted_log_group(
    resource_name: str,
    *,
    log_group_name: str,
    retention_days: int,
    kms_key_arn: pulumi.Input[str],
    parent: pulumi.Resource,
    protect: bool = False,
) -> aws.cloudwatch.LogGroup:
    """A log group with a fixed name, a retention period and a customer-managed KMS key.

    Created before whatever writes to it (EKS, API Gateway, flow logs), so the service never creates
    an unencrypted group with infinite retention of its own.
    """
    checker = Checker(f"log group {resource_name}")
    checker.check(
        "retention_days", retention_days, lambda v: v in RETENTION_DAYS, "one of CloudWatch's retention periods"
    )
    checker.check(
        "log_group_name",
        log_group_name,
        lambda v: v.startswith("/") and len(v) <= 512,
        "a path starting with / of at most 512 characters",
    )
    checker.done()
    return aws.cloudwatch.LogGroup(
        resource_name,
        aws.cloudwatch.LogGroupArgs(name=log_group_name, retention_in_days=retention_days, kms_key_id=kms_key_arn),
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
