"""Compose what runs in the cluster (mesh and tracing, model servers, the model gateway, the API in front)
and the observability that watches everything. Part of the stack, like ``app.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from agentinfra_policies.catalog import load_catalog

from components.api_gateway import ApiGateway, ApiGatewayArgs, MeshIngressRef
from components.aws_env import AwsEnvironment
from components.cluster_services import ClusterServices
from components.eks_cluster import EksCluster
from components.kms_key import EncryptionKey
from components.model_gateway import LocalModel, ModelGateway, ModelGatewayArgs, RedisConnection, egress_hosts
from components.model_platform import ModelPlatform, ModelPlatformArgs
from components.model_server import ModelServer, ModelServerArgs, shm_gib_for
from components.naming import Naming
from components.network import Network
from components.observability import Observability, ObservabilityArgs, redis_member_cluster_ids
from components.redis_cache import RedisCache
from components.service_mesh import (
    EgressPort,
    EgressRule,
    MeshService,
    ServiceMesh,
    ServiceMeshArgs,
    aws_api_egress,
    hugging_face_egress,
    model_provider_egress,
    redis_egress,
)
from components.task_queues import TaskQueues
from components.telemetry import MetricsExporter, OtelCollector, OtelCollectorArgs
from components.worker_pool import WorkerPool

from .settings import Settings

GATEWAY_PORT = 4000


@dataclass
class Edge:
    """What runs in the cluster, for the observability component and the stack outputs."""

    mesh: ServiceMesh | None = None
    collector: OtelCollector | None = None
    servers: list[ModelServer] = field(default_factory=list)
    gateway: ModelGateway | None = None
    api: ApiGateway | None = None

    def export(self) -> None:
        if self.gateway is not None:
            pulumi.export("modelGatewayUrl", self.gateway.base_url)
        if self.api is not None:
            pulumi.export("apiUrl", self.api.invoke_url)
        if self.collector is not None:
            pulumi.export("otlpEndpoint", self.collector.otlp_grpc_endpoint)


def build_workloads(
    settings: Settings,
    env: AwsEnvironment,
    naming: Naming,
    network: Network,
    logs_key: EncryptionKey,
    cluster: EksCluster,
    services: ClusterServices,
    redis: RedisCache | None,
    opts: pulumi.ResourceOptions,
) -> Edge:
    edge = Edge()
    served = [p for p in settings.model_pools if p.server is not None]
    gateway_settings = settings.model_gateway
    if settings.mesh is not None:
        edge.collector, edge.mesh = _mesh(settings, env, network, cluster, services, bool(gateway_settings), opts)
    # With a mesh, the mesh creates the application namespaces (with sidecar injection) and workloads wait for
    # istiod, so their pods start with sidecars.
    after_mesh = [edge.mesh.istiod, *edge.mesh.namespaces.values()] if edge.mesh else []
    if served:
        platform = ModelPlatform(
            "models",
            ModelPlatformArgs(
                naming=naming,
                cluster=cluster,
                create_namespace=edge.mesh is None,
                kms_deletion_window_days=settings.kms.deletion_window_days,
                protect=settings.protect_stateful,
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=after_mesh)),
        )
        edge.servers = _model_servers(settings, cluster, services, platform)
        if gateway_settings is not None:
            edge.gateway = _gateway(
                settings,
                env,
                naming,
                network,
                cluster,
                platform,
                edge.servers,
                redis,
                pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=after_mesh)),
            )
    if settings.api is not None and edge.mesh is not None:
        api = settings.api
        edge.api = ApiGateway(
            "api",
            ApiGatewayArgs(
                naming=naming,
                env=env,
                routes=api.routes,
                authorizer=api.authorizer,
                mesh_ingress=MeshIngressRef(
                    edge.mesh.ingress_namespace, edge.mesh.ingress_service_name, edge.mesh.ingress_port
                ),
                vpc_id=network.vpc_id,
                vpc_cidr=settings.network.cidr,
                private_subnet_ids=network.private_subnet_ids,
                log_kms_key_arn=logs_key.arn,
                cluster=cluster,
                custom_domain=api.custom_domain,
                default_throttle=api.default_throttle,
                usage_plans=api.usage_plans,
                waf=api.waf,
                log_retention_days=settings.logs.retention_days,
                owns_account_settings=api.owns_account_settings,
                protect=settings.protect_stateful,
            ),
            opts=opts,
        )
    return edge


def _mesh(
    settings: Settings,
    env: AwsEnvironment,
    network: Network,
    cluster: EksCluster,
    services: ClusterServices,
    with_gateway: bool,
    opts: pulumi.ResourceOptions,
) -> tuple[OtelCollector, ServiceMesh]:
    mesh = settings.mesh
    assert mesh is not None
    collector = OtelCollector(
        "telemetry",
        OtelCollectorArgs(
            provider=cluster.provider,
            cluster_name=cluster.name,
            env=env,
            traces=mesh.traces,
            traces_endpoint=mesh.traces_endpoint,
            metrics=MetricsExporter.PROMETHEUS_REMOTE_WRITE,
            metrics_endpoint=f"{services.prometheus_url}/api/v1/write",
            workload_role=cluster.workload_role,
            replicas=2 if settings.environment != "dev" else 1,
        ),
        opts=opts,
    )
    gateway = settings.model_gateway
    providers = tuple(
        dict.fromkeys(mesh.model_providers + (egress_hosts(gateway.cloud_models, env.region) if gateway else ()))
    )
    private = settings.network.private_subnets
    egress = [
        aws_api_egress(env.region, ("agents", "gateway", "models"), mesh.aws_services),
        redis_egress(("agents", "gateway", "models"), addresses=private),
        hugging_face_egress(("models",)),
    ]
    if providers:
        egress.append(model_provider_egress(providers, ("agents", "models")))
    if with_gateway:
        # The gateway's PostgreSQL is inside the VPC: matched by address and port.
        egress.append(
            EgressRule("postgres", ("postgres.litellm.internal",), ("models",), (EgressPort(5432, "TCP"),), private)
        )
    models = tuple(MeshService(f"vllm-{p.name}", "models", port=8000) for p in settings.model_pools if p.server)
    gateway_service = MeshService("litellm", "models", port=GATEWAY_PORT) if with_gateway else None
    service_mesh = ServiceMesh(
        "mesh",
        ServiceMeshArgs(
            provider=cluster.provider,
            collector_host=collector.host,
            cluster_name=cluster.name,
            model_services=models + ((gateway_service,) if gateway_service else ()),
            stream_timeout_seconds=mesh.stream_timeout_seconds,
            agent_timeout_seconds=mesh.agent_timeout_seconds,
            egress=tuple(egress),
            sampling_percent=mesh.sampling_percent,
            ingress_min_replicas=mesh.ingress_min_replicas,
            ingress_max_replicas=mesh.ingress_max_replicas,
            ingress_backend=gateway_service,
        ),
        opts=opts,
    )
    return collector, service_mesh


def _model_servers(
    settings: Settings, cluster: EksCluster, services: ClusterServices, platform: ModelPlatform
) -> list[ModelServer]:
    """A vLLM server per model pool that names a model, on that pool's GPU nodes."""
    catalog = load_catalog()
    servers = []
    for pool in settings.model_pools:
        server, spec = pool.server, catalog.get(pool.instance_type)
        if server is None or spec is None:
            continue
        share = server.tensor_parallel_size / spec.gpus
        servers.append(
            ModelServer(
                f"model-{pool.name}",
                ModelServerArgs(
                    provider=cluster.provider,
                    namespace=platform.namespace,
                    pool=pool.name,
                    model=server.repository,
                    served_name=pool.name,
                    image=server.image,
                    architecture=server.model,
                    tensor_parallel_size=server.tensor_parallel_size,
                    max_model_len=server.max_model_len,
                    max_num_seqs=server.max_num_seqs,
                    max_num_batched_tokens=server.max_num_batched_tokens,
                    gpu_memory_utilization=server.gpu_memory_utilization,
                    quantization=server.dtype if server.dtype in ("awq", "gptq", "fp8") else None,
                    min_replicas=server.min_replicas,
                    max_replicas=server.max_replicas,
                    waiting_requests_per_replica=server.waiting_requests_per_replica,
                    shm_gib=shm_gib_for(server.tensor_parallel_size),
                    cache_gib=max(20, pool.root_volume_gib - 50),
                    cpu_request=str(max(1, int(spec.vcpu * share * 0.75))),
                    memory_request_gib=max(4, int(spec.memory_gib * share * 0.6)),
                    startup_seconds=server.startup_seconds,
                    prestage_s3_uri=server.prestage_s3_uri,
                    hf_token_secret=platform.hf_kubernetes_secret,
                    prometheus_url=services.prometheus_url,
                ),
                opts=pulumi.ResourceOptions(parent=platform, depends_on=[platform.keda]),
            )
        )
    return servers


def _gateway(
    settings: Settings,
    env: AwsEnvironment,
    naming: Naming,
    network: Network,
    cluster: EksCluster,
    platform: ModelPlatform,
    servers: list[ModelServer],
    redis: RedisCache | None,
    opts: pulumi.ResourceOptions,
) -> ModelGateway:
    gateway = settings.model_gateway
    assert gateway is not None
    by_pool = {p.name: p for p in settings.model_pools}
    urls = {s.service_host.split(".")[0].removeprefix("vllm-"): s.service_url for s in servers}
    lengths = {name: pool.server.max_model_len for name, pool in by_pool.items() if pool.server is not None}
    local = tuple(
        LocalModel(
            served_name=m.pool,
            service_url=urls[m.pool],
            max_input_tokens=lengths.get(m.pool),
            rpm=m.rpm,
            tpm=m.tpm,
            fallbacks=m.fallbacks,
            context_window_fallbacks=m.context_window_fallbacks,
        )
        for m in gateway.models
    )
    connection, grant = None, None
    if redis is not None and settings.redis is not None:
        connection = RedisConnection(
            endpoint=redis.endpoint, auth_secret_name=redis.auth_secret_name, cluster_mode=settings.redis.cluster_mode
        )

        def grant() -> pulumi.Resource:
            return redis.grant_read_auth(platform.external_secrets_role, label="external-secrets")

    return ModelGateway(
        "model-gateway",
        ModelGatewayArgs(
            provider=cluster.provider,
            naming=naming,
            env=env,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            cluster_security_group_id=cluster.security_group_id,
            local_models=local,
            cloud_models=gateway.cloud_models,
            namespace=platform.namespace,
            image=gateway.image,
            replicas=gateway.replicas,
            max_replicas=gateway.max_replicas,
            agent_limits=gateway.agent_limits,
            user_limits=gateway.user_limits,
            global_limits=gateway.global_limits,
            redis=connection,
            grant_redis_secret=grant,
            database=gateway.database,
            secrets_kms_key_id=platform.secrets_key.arn,
            protect=settings.protect_stateful,
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[platform])),
    )


def build_observability(
    settings: Settings,
    env: AwsEnvironment,
    naming: Naming,
    queues: TaskQueues,
    redis: RedisCache | None,
    workers: list[WorkerPool],
    cluster: EksCluster | None,
    edge: Edge | None,
    opts: pulumi.ResourceOptions,
) -> Observability | None:
    """Alarms, dashboard, budget and Prometheus rules over everything the stack built."""
    obs = settings.observability
    if obs is None:
        return None
    redis_id: str | None = None
    redis_nodes: tuple[str, ...] = ()
    # ElastiCache publishes per-node metrics the alarms use; MemoryDB's (namespace AWS/MemoryDB) are not wired yet.
    if redis is not None and settings.redis is not None and settings.redis.engine == "elasticache":
        redis_id = naming.name("redis", max_length=40)
        redis_nodes = redis_member_cluster_ids(
            redis_id,
            shards=settings.redis.shards,
            replicas_per_shard=settings.redis.replicas_per_shard,
            cluster_mode=settings.redis.cluster_mode,
        )
    api = edge.api if edge else None
    return Observability(
        "observability",
        ObservabilityArgs(
            naming=naming,
            env=env,
            queues=queues.queue_names,
            dead_letter_queues=queues.dead_letter_queue_names,
            worker_pools={w.pool: w.group_name for w in workers},
            redis_replication_group_id=redis_id,
            redis_node_ids=redis_nodes,
            api_name=naming.name("api") if api else None,
            api_stage="v1" if api else None,
            eks_cluster_name=cluster.name if cluster else None,
            model_names=tuple(p.name for p in settings.model_pools if p.server),
            k8s_provider=cluster.provider if cluster else None,
            thresholds=obs.thresholds,
            budget=obs.budget,
            alarm_emails=obs.alarm_emails,
            queue_age_and_dlq_alarms=False,  # TaskQueues alarms on those, to this topic
            kms_deletion_window_days=settings.kms.deletion_window_days,
            protect=settings.protect_stateful,
        ),
        opts=opts,
    )
