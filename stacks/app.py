"""Compose one environment: read its settings once, build each component's Args, wire them together.

This is the only module that knows about environments; components receive typed Args.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from agentinfra_policies.catalog import load_catalog

from components.aws_env import AwsEnvironment
from components.cluster_services import ClusterServices, ClusterServicesArgs
from components.eks_cluster import EksCluster, EksClusterArgs, NodeGroupSize
from components.gpu_node_group import Capacity, GpuAmi, GpuNodePool, GpuNodePoolArgs
from components.kms_key import EncryptionKey, EncryptionKeyArgs
from components.log_bucket import LogBucket, LogBucketArgs
from components.naming import Naming
from components.network import Network, NetworkArgs
from components.observability import alarm_topic
from components.redis_cache import RedisCache, RedisCacheArgs
from components.task_queues import TaskQueues, TaskQueuesArgs
from components.worker_pool import WorkerPool, WorkerPoolArgs, WorkerScaling

from .settings import Persistence, Settings, load_settings
from .workloads import build_observability, build_workloads

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
    cluster: EksCluster | None
    queues: TaskQueues
    redis: RedisCache | None


def build() -> Platform:
    """Build the stack for ``pulumi.get_stack()``."""
    settings = load_settings()
    for warning in settings.warnings:
        pulumi.log.warn(warning)

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

    built = build_cluster(settings, env, naming, network, logs_key, opts)
    cluster, services = built if built else (None, None)
    queues = TaskQueues(
        "task-queues",
        TaskQueuesArgs(
            naming=naming,
            env=env,
            queues=settings.queues.queues,
            oldest_message_alarm_seconds=settings.queues.oldest_message_alarm_seconds,
            # The queues' own age and DLQ alarms notify the observability topic when there is one.
            alarm_topic_arn=alarm_topic(naming, env)[1] if settings.observability else None,
            protect=settings.protect_stateful,
        ),
        opts=opts,
    )
    redis = build_redis(settings, env, naming, network, cluster, opts)
    workers = [
        WorkerPool(
            f"workers-{pool.name}",
            WorkerPoolArgs(
                naming=naming,
                env=env,
                pool=pool.name,
                instance_types=pool.instance_types,
                vpc_id=network.vpc_id,
                vpc_cidr=settings.network.cidr,
                subnet_ids=network.private_subnet_ids,
                scaling=WorkerScaling(
                    min_instances=pool.scaling_policy.min_instances,
                    max_instances=pool.scaling_policy.max_instances,
                    target_metric=pool.scaling_policy.target_metric.value,
                    target_value=pool.scaling_policy.target_value,
                    scale_up_cooldown=pool.scaling_policy.scale_up_cooldown,
                    scale_down_cooldown=pool.scaling_policy.scale_down_cooldown,
                    desired=pool.desired_instances,
                    latency_p95_ms=pool.latency_p95_ms,
                    error_rate_percent=pool.error_rate_percent,
                ),
                queues=queues,
                consumes=pool.consumes,
                log_bucket=log_bucket,
                redis=redis,
                user_data=pool.user_data,
                warm_up_seconds=pool.warm_up_seconds,
                spot=pool.spot,
                warm_pool=pool.warm_pool,
                schedules=pool.schedules,
                instance_tags=settings.default_tags,
            ),
            opts=opts,
        )
        for pool in settings.worker_pools
    ]

    edge = None
    if cluster is not None and services is not None:
        edge = build_workloads(settings, env, naming, network, logs_key, cluster, services, redis, opts)
    build_observability(settings, env, naming, queues, redis, workers, cluster, edge, opts)

    export_markers(settings)

    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("azs", list(network.azs))
    pulumi.export("privateSubnetIds", network.private_subnet_ids)
    pulumi.export("publicSubnetIds", network.public_subnet_ids)
    pulumi.export("logBucketName", log_bucket.bucket_name)
    pulumi.export("logsAthenaWorkgroup", log_bucket.workgroup.name)
    if cluster is not None:
        pulumi.export("eksClusterName", cluster.name)
    pulumi.export("queueNames", queues.queue_names)
    pulumi.export("workerGroupNames", [w.group_name for w in workers])

    if edge is not None:
        edge.export()
    if redis is not None:
        pulumi.export("redisEndpoint", redis.endpoint)
        pulumi.export("redisAuthSecretArn", redis.auth_secret_arn)
    return Platform(settings, env, naming, provider, logs_key, network, log_bucket, cluster, queues, redis)


def build_redis(
    settings: Settings,
    env: AwsEnvironment,
    naming: Naming,
    network: Network,
    cluster: EksCluster | None,
    opts: pulumi.ResourceOptions,
) -> RedisCache | None:
    """ElastiCache Redis for agent state; reachable only from the named client security groups."""
    redis = settings.redis
    if redis is None:
        return None
    clients = {"eks": cluster.security_group_id} if cluster is not None else {}
    return RedisCache(
        "redis",
        RedisCacheArgs(
            naming=naming,
            env=env,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            node_type=redis.node_type,
            shards=redis.shards,
            replicas_per_shard=redis.replicas_per_shard,
            cluster_mode=redis.cluster_mode,
            multi_az=redis.replication,
            memory_policy=redis.memory_policy,
            maxmemory_bytes=redis.maxmemory_bytes,
            client_security_group_ids=clients,
            snapshot_retention_limit=7 if redis.persistence is Persistence.SNAPSHOT else 0,
            engine=redis.engine,
            protect=settings.protect_stateful,
        ),
        opts=opts,
    )


def build_cluster(
    settings: Settings,
    env: AwsEnvironment,
    naming: Naming,
    network: Network,
    logs_key: EncryptionKey,
    opts: pulumi.ResourceOptions,
) -> tuple[EksCluster, ClusterServices] | None:
    """The EKS cluster, one GPU node pool per model pool (a node group per AZ), and cluster services."""
    eks = settings.eks
    if eks is None:
        return None
    cluster = EksCluster(
        "eks",
        EksClusterArgs(
            naming=naming,
            env=env,
            version=eks.version,
            private_subnet_ids=network.private_subnet_ids,
            log_kms_key_arn=logs_key.arn,
            addon_versions=eks.addon_versions,
            system_nodes=NodeGroupSize(eks.system_instance_types, eks.system_min, eks.system_desired, eks.system_max),
            public_access_cidrs=eks.public_access_cidrs,
            log_retention_days=settings.logs.retention_days,
            kms_deletion_window_days=settings.kms.deletion_window_days,
            protect=settings.protect_stateful,
        ),
        opts=opts,
    )
    catalog = load_catalog()
    for pool in settings.model_pools:
        spec = catalog.get(pool.instance_type)
        assert spec is not None and spec.gpu_model  # checked by the settings
        GpuNodePool(
            f"gpu-{pool.name}",
            GpuNodePoolArgs(
                naming=naming,
                cluster=cluster,
                pool=pool.name,
                instance_type=pool.instance_type,
                gpu_model=spec.gpu_model,
                subnets_by_az={az: network.private_subnets[az].id for az in pool.azs},
                min_per_az=pool.min_nodes,
                desired_per_az=pool.desired_nodes,
                max_per_az=pool.max_nodes,
                ami=pool.ami,
                capacity=Capacity.SPOT if pool.capacity_type.value == "spot" else Capacity.ON_DEMAND,
                root_volume_gib=pool.root_volume_gib,
                data_volume_gib=pool.data_volume_gib,
            ),
            opts=opts,
        )
    services = ClusterServices(
        "cluster-services",
        ClusterServicesArgs(
            cluster=cluster,
            region=env.region,
            device_plugin=any(p.ami is GpuAmi.AL2023_NVIDIA for p in settings.model_pools),
        ),
        opts=opts,
    )
    return cluster, services


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
