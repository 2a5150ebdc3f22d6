"""Compose one environment: read its settings once, build the explicit provider, export the markers.

This is the only module that knows about environments; components receive typed Args.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .settings import Settings, load_settings

#: Version of the stack-output contract (marker outputs and the names below them). Bump on a break.
OUTPUT_SCHEMA_VERSION = 1


def build() -> Settings:
    """Build the stack for ``pulumi.get_stack()``; returns the settings it was built from."""
    settings = load_settings()
    provider = aws_provider(settings)
    export_markers(settings)
    _ = provider
    return settings


def aws_provider(settings: Settings) -> aws.Provider:
    """The one AWS provider every component uses.

    Explicit, so that its default tags are part of the program (and visible to the policy pack and the
    offline plan), and so that a deploy to any account other than the configured ones is refused.
    """
    return aws.Provider(
        "aws",
        aws.ProviderArgs(
            region=settings.region,
            allowed_account_ids=list(settings.account_ids),
            default_tags=aws.ProviderDefaultTagsArgs(tags=settings.default_tags),
        ),
    )


def export_markers(settings: Settings) -> None:
    """Outputs that let tools tell whose outputs they are reading (``agentinfra verify`` checks them)."""
    pulumi.export("project", settings.project)
    pulumi.export("stack", settings.environment)
    pulumi.export("schemaVersion", OUTPUT_SCHEMA_VERSION)
