"""A customer-managed KMS key with rotation on and a key policy naming the services that may use it.

Every component that encrypts something takes its key from here instead of writing its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from . import iam
from .aws_env import AwsEnvironment
from .validation import Checker

#: What a service needs to encrypt and decrypt with the key on a caller's behalf.
SERVICE_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")


@dataclass(frozen=True)
class EncryptionKeyArgs:
    description: str
    """What the key protects; shown in the console."""
    env: AwsEnvironment
    """Account, region and partition the key policy names."""
    alias: str
    """Alias without the ``alias/`` prefix, e.g. ``agent-infra-prod-logs``."""
    services: tuple[str, ...] = ()
    """AWS services that may use the key through their integrations, e.g. ``("logs",)``. Default none."""
    deletion_window_days: int = 30
    """Days a scheduled deletion waits, 7-30 (default 30)."""
    protect: bool = False
    """``protect`` and retain-on-delete on the key (stateful: losing it loses the data). Default False."""
    region: str | None = None
    """Create the key in another region (pulumi-aws's per-resource region), e.g. for a DR replica."""


class EncryptionKey(pulumi.ComponentResource):
    """A rotating KMS key and its alias."""

    key: aws.kms.Key
    """The key."""
    arn: pulumi.Output[str]
    """The key's ARN."""

    def __init__(self, name: str, args: EncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:security:EncryptionKey", name, None, opts)
        checker = Checker(f"EncryptionKey {name}")
        checker.check("deletion_window_days", args.deletion_window_days, lambda v: 7 <= v <= 30, "7 to 30 days")
        checker.check(
            "alias",
            args.alias,
            lambda v: bool(v) and not v.startswith("alias/"),
            "a non-empty alias without the alias/ prefix",
        )
        checker.check(
            "services",
            args.services,
            lambda v: all(isinstance(s, str) and s for s in v),
            "service names such as logs or sqs",
        )
        checker.done()

        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        self.key = aws.kms.Key(
            f"{name}-key",
            aws.kms.KeyArgs(
                description=args.description,
                enable_key_rotation=True,
                deletion_window_in_days=args.deletion_window_days,
                policy=key_policy(args.env, args.services, args.region),
                region=args.region,
            ),
            opts=stateful,
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            aws.kms.AliasArgs(name=f"alias/{args.alias}", target_key_id=self.key.key_id, region=args.region),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.alias_name = f"alias/{args.alias}"
        self._key_arns = f"arn:{args.env.partition}:kms:{args.region or args.env.region}:{args.env.account_id}:key/*"
        self.register_outputs({"arn": self.arn, "keyId": self.key.key_id, "alias": self.alias.name})

    def grant_statement(
        self, sid: str, actions: tuple[str, ...] | list[str], conditions: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An IAM statement allowing ``actions`` on this key, selected by its alias.

        ``kms:ResourceAliases`` names the key through its alias, which is known before deployment, so the
        whole policy document is known in a preview (a key ARN is not) and the policy pack can read it.
        """
        merged: dict[str, Any] = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": [self.alias_name]}}
        for operator, values in (conditions or {}).items():
            merged.setdefault(operator, {}).update(values)
        return iam.statement(sid, actions, [self._key_arns], conditions=merged)


def key_policy(env: AwsEnvironment, services: tuple[str, ...], region: str | None = None) -> pulumi.Output[str]:
    """The account administers the key through IAM; each named service may use it only for this account."""
    key_region = region or env.region
    statements = [
        iam.statement("AccountAdministersKeyThroughIam", ["kms:*"], ["*"], principal={"AWS": env.root_principal})
    ]
    for service in services:
        principal = f"logs.{key_region}.amazonaws.com" if service == "logs" else f"{service}.amazonaws.com"
        conditions: dict[str, Any]
        if service == "logs":
            # CloudWatch Logs passes the log group's ARN as encryption context; scope the grant to ours.
            log_groups = f"arn:{env.partition}:logs:{key_region}:{env.account_id}:log-group:*"
            conditions = {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}}
        else:
            conditions = {"StringEquals": {"aws:SourceAccount": env.account_id}}
        statements.append(
            iam.statement(
                f"Allow{_sid(service)}ToUseKey",
                SERVICE_ACTIONS,
                ["*"],
                principal={"Service": principal},
                conditions=conditions,
            )
        )
    return iam.document(*statements)


def _sid(service: str) -> str:
    return "".join(part.capitalize() for part in service.replace(".", "-").split("-"))
