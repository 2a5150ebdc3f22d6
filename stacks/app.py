"""Compose one environment: read its settings once, build each component's Args, wire them together.

This is the only module that knows about environments; components receive typed Args.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws_env import AwsEnvironment
from components.kms_key import EncryptionKey, EncryptionKeyArgs
from components.log_bucket import LogBucket, LogBucketArgs
from components.naming import Naming
from components.network import Network, NetworkArgs

from .settings import Settings, load_settings

#: Version of the stack-output contract (marker outputs and the names below them). Bump on a break.
OUTPUT_SCHEMA_VERSION = 1


@dataclass
class Platform:
    """What the stack built, for the components composed after it."""

    settings: Settings
    env: AwsEnvironment
    naming: Naming
    provider: aws.Provider
    logs_key: EncryptionKey
    network: Network
    log_bucket: LogBucket


def build() -> Platform:
    """Build the stack for ``pulumi.get_stack()``."""
    settings = load_settings()
    env = AwsEnvironment(account_id=settings.account_id, region=settings.region)
    naming = Naming(settings.project, settings.environment)
    provider = aws_provider(settings)
    # Every component inherits the explicit provider (and so its default tags) through `providers`.
    opts = pulumi.ResourceOptions(providers=[provider])

    logs_key = EncryptionKey(
        "logs-key",
        EncryptionKeyArgs(
            description=f"{naming.prefix}: CloudWatch Logs (flow logs, control-plane and access logs)",
            env=env,
            alias=naming.name("logs"),
            services=("logs",),
            deletion_window_days=settings.kms.deletion_window_days,
            protect=settings.protect_stateful,
        ),
        opts=opts,
    )

    net = settings.network
    network = Network(
        "network",
        NetworkArgs(
            naming=naming,
            env=env,
            cidr=net.cidr,
            azs=net.azs,
            public_subnets=net.public_subnets,
            private_subnets=net.private_subnets,
            nat_gateways=net.nat_gateways,
            log_kms_key_arn=logs_key.arn,
            flow_log_traffic=net.flow_log_traffic,
            flow_log_retention_days=settings.logs.retention_days,
            cluster_name=naming.cluster_name,
        ),
        opts=opts,
    )

    storage = settings.log_storage
    log_bucket = LogBucket(
        "agent-logs",
        LogBucketArgs(
            naming=naming,
            env=env,
            retention=storage.retention,
            audit_retention=storage.audit_retention,
            audit_object_lock=storage.audit_object_lock,
            abort_multipart_days=storage.abort_multipart_days,
            access_log_retention_days=storage.access_log_retention_days,
            replication_region=storage.replication_region,
            athena_bytes_scanned_cutoff=storage.athena_scan_limit_gb * 1024**3,
            kms_deletion_window_days=settings.kms.deletion_window_days,
            protect=settings.protect_stateful,
        ),
        opts=opts,
    )

    export_markers(settings)
    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("azs", list(network.azs))
    pulumi.export("privateSubnetIds", network.private_subnet_ids)
    pulumi.export("publicSubnetIds", network.public_subnet_ids)
    pulumi.export("logBucketName", log_bucket.bucket_name)
    pulumi.export("logsAthenaWorkgroup", log_bucket.workgroup.name)
    return Platform(settings, env, naming, provider, logs_key, network, log_bucket)


def aws_provider(settings: Settings) -> aws.Provider:
    """The one AWS provider every component uses.

    Explicit, so that its default tags are part of the program (and visible to the policy pack and the
    offline plan), and so that a deploy to any account other than the configured one is refused.
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
