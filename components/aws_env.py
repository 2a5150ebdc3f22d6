"""The AWS account, region and partition a stack deploys to, known from config (never looked up)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AwsEnvironment:
    """Where the resources go; used to write ARNs and service principals in policies."""

    account_id: str
    """The 12-digit account id (``aws:allowedAccountIds``)."""
    region: str
    """The stack's region (``aws:region``)."""
    partition: str = "aws"
    """The ARN partition: ``aws`` (default), ``aws-cn`` or ``aws-us-gov``."""

    @property
    def root_principal(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:root"

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        """``arn:<partition>:<service>:<region>:<account>:<resource>`` (region left empty when False)."""
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account_id}:{resource}"

    def service_principal(self, service: str) -> str:
        """``<service>.amazonaws.com``; CloudWatch Logs uses a regional principal."""
        if service == "logs":
            return f"logs.{self.region}.amazonaws.com"
        return f"{service}.amazonaws.com"
