"""IAM policy documents as data: built once here so no component hand-writes JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from .aws_env import AwsEnvironment


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]] | None = None,
    *,
    principal: Mapping[str, Any] | str | None = None,
    conditions: Mapping[str, Any] | None = None,
    effect: str = "Allow",
) -> dict[str, Any]:
    """One policy statement with an explicit Sid and action list (never a wildcard by accident)."""
    stmt: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": sorted(actions)}
    if principal is not None:
        stmt["Principal"] = principal if isinstance(principal, str) else dict(principal)
    if resources is not None:
        stmt["Resource"] = list(resources)
    if conditions:
        stmt["Condition"] = dict(conditions)
    return stmt


def document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    """A policy document; resources may be Outputs (unknown ARNs stay unknown in a preview)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(service: str, env: AwsEnvironment, *, source_arn: str | None = None) -> pulumi.Output[str]:
    """Trust policy for an AWS service, limited to this account (guards against the confused deputy)."""
    conditions: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": env.account_id}}
    if source_arn:
        conditions["ArnLike"] = {"aws:SourceArn": source_arn}
    return document(
        statement(
            "AssumeFromService",
            ["sts:AssumeRole"],
            principal={"Service": env.service_principal(service)},
            conditions=conditions,
        )
    )


def grant_policy(
    owner: pulumi.Resource, resource_name: str, role: Any, *statements: dict[str, Any], named: bool = False
) -> Any:
    """The inline role policy a component's ``grant_*`` method attaches to ``role`` (an aws.iam.Role or a role's
    name), owned by the component that holds the resources, so the grant lives and dies with them."""
    import pulumi_aws as aws

    role_ref = role if isinstance(role, str) else (role.name if named else role.id)
    return aws.iam.RolePolicy(
        resource_name,
        aws.iam.RolePolicyArgs(name=resource_name if named else None, role=role_ref, policy=document(*statements)),
        opts=pulumi.ResourceOptions(parent=owner),
    )
