"""Typed, validated settings for one environment (one Pulumi stack).

The program reads configuration **only** through ``pulumi.Config`` (see :func:`load_settings`), so
``pulumi config set`` and Pulumi ESC environments work. :func:`parse_settings` is pure: it turns the
raw values into frozen dataclasses and reports every problem at once, each naming its key. Every key
is documented in ``config/README.md``.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from agentinfra_policies.catalog import Catalog, load_catalog

from components.gpu_node_group import GpuAmi
from components.log_bucket import AUDIT_MINIMUM_DAYS, Retention, StorageClass, Transition, retention_problems
from components.log_group import RETENTION_DAYS as LOG_RETENTION_DAYS
from components.network import NatGatewayMode as NatMode
from components.redis_cache import MEMORY_POLICIES, check_node_fits
from components.task_queues import QueueKind, QueueSpec
from components.worker_pool import Schedule, SpotCapacity, WarmPool

from .edge_settings import (
    ApiSettings,
    GatewaySettings,
    MeshSettings,
    ObservabilitySettings,
    parse_api,
    parse_gateway,
    parse_mesh,
    parse_observability,
)
from .reader import Node, Problems, SettingsError

PROJECT = "agent-infra"
NAMESPACE = "agent-infra"


_NAME = r"[a-z][a-z0-9-]{0,30}[a-z0-9]"
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


class CapacityType(enum.Enum):
    ON_DEMAND = "on_demand"
    SPOT = "spot"


class TargetMetric(enum.Enum):
    """What the seed's ``scaling_policy.target_metric`` may name."""

    QUEUE_DEPTH = "queue_depth"
    """Backlog per in-service instance over the pool's queues (ApproximateNumberOfMessagesVisible)."""
    CPU_UTILIZATION = "cpu_utilization"
    """Average CPU utilisation of the group, in percent."""


class Persistence(enum.Enum):
    """The seed's ``redis_config.persistence``; AOF is rejected because ElastiCache does not offer it."""

    SNAPSHOT = "snapshot"
    NONE = "none"


@dataclass(frozen=True)
class Tags:
    """Tags every taggable resource carries (through the explicit provider's default tags)."""

    owner: str
    """Team that owns the environment; required."""
    cost_centre: str
    """Cost centre billed for the environment; required."""
    extra: dict[str, str] = field(default_factory=dict)
    """Further tags, added as given."""

    def for_environment(self, environment: str) -> dict[str, str]:
        return {
            **self.extra,
            "environment": environment,
            "project": PROJECT,
            "owner": self.owner,
            "cost-centre": self.cost_centre,
            "managed-by": "pulumi",
        }


@dataclass(frozen=True)
class NetworkSettings:
    """The VPC: CIDR, AZs (written in config, never looked up) and subnet layout."""

    cidr: str
    """VPC IPv4 CIDR, /16 to /24."""
    azs: tuple[str, ...]
    """Availability zones, at least 2, all in the stack's region."""
    public_subnets: tuple[str, ...]
    """One public subnet CIDR per AZ; default: /24s from the top quarter of the VPC CIDR."""
    private_subnets: tuple[str, ...]
    """One private subnet CIDR per AZ; default: the first three quarters of the VPC CIDR split evenly."""
    nat_gateways: NatMode
    """``per_az`` (default) or ``single``."""
    flow_log_traffic: str = "ALL"
    """Which traffic VPC flow logs record: ALL (default), ACCEPT or REJECT."""


@dataclass(frozen=True)
class KmsSettings:
    deletion_window_days: int = 30
    """Days a scheduled key deletion waits (7-30, default 30)."""


@dataclass(frozen=True)
class LogSettings:
    retention_days: int = 90
    """CloudWatch log group retention, one of CloudWatch's allowed values (default 90)."""


@dataclass(frozen=True)
class LogStorageSettings:
    """The S3 log bucket: lifecycle per stream, audit retention, replication, query limits."""

    retention: Retention
    """Execution logs and conversation histories: transitions, expiration, noncurrent versions."""
    audit_retention: Retention
    """Audit trails: at least a year and at least the log retention."""
    audit_object_lock: bool = False
    """Audit objects must be written under Object Lock in compliance mode."""
    abort_multipart_days: int = 3
    """Unfinished multipart uploads are discarded after this many days."""
    access_log_retention_days: int = 90
    """S3 server access logs expire after this many days."""
    replication_region: str | None = None
    """Replicate logs to a bucket in this region (DR); absent means no replication."""
    athena_scan_limit_gb: int = 10
    """Largest scan one Athena query may make, in GiB."""


@dataclass(frozen=True)
class ScalingPolicy:
    """The seed's ``scaling_policy`` block, in the seed's own shape."""

    min_instances: int
    """Lower bound of the group (>= 0)."""
    max_instances: int
    """Upper bound of the group (>= min_instances, >= 1)."""
    target_metric: TargetMetric
    """``queue_depth`` (backlog per instance) or ``cpu_utilization``."""
    target_value: float
    """Target for the metric (> 0): messages per instance, or percent CPU."""
    scale_up_cooldown: int = 60
    """Seconds before a newly launched instance counts toward the metric (seed: 60s)."""
    scale_down_cooldown: int = 300
    """Seconds between scale-in steps (seed: 300s)."""


@dataclass(frozen=True)
class WorkerPoolSettings:
    """One auto-scaling pool of stateless agent workers."""

    name: str
    """Lower-case DNS-style name, unique among pools."""
    instance_types: tuple[str, ...]
    """CPU instance types from the catalog; the first is the launch template's default."""
    scaling_policy: ScalingPolicy
    """The seed's scaling block."""
    desired_instances: int | None = None
    """Initial desired capacity; default min_instances. min <= desired <= max."""
    consumes: tuple[str, ...] = ("tasks",)
    """Queues (by name; a priority pair by its name) the workers poll and scale on."""
    latency_p95_ms: int | None = None
    """Beside the seed block: add capacity while the agents' p95 execution time exceeds this."""
    error_rate_percent: float | None = None
    """Beside the seed block: above this error rate, stop scale-out and scale in gently."""
    schedules: tuple[Schedule, ...] = ()
    """Time-based scaling: scheduled actions."""
    spot: SpotCapacity | None = None
    """``interruptible: true``: on-demand base plus capacity-optimised spot."""
    warm_pool: WarmPool | None = None
    """Pre-initialised stopped instances; not with interruptible pools."""
    warm_up_seconds: int = 120
    """How long an agent takes to initialise (health-check grace period)."""
    user_data: str = ""
    """Agent bootstrap script (cloud-init)."""


@dataclass(frozen=True)
class RedisSettings:
    """ElastiCache Redis for agent state, with the seed's ``redis_config`` block."""

    node_type: str
    """ElastiCache node type from the catalog."""
    shards: int
    """Node groups (cluster mode) 1-500; 1 when mode is single."""
    replicas_per_shard: int
    """Replicas per node group 0-5; at least 1 when replication is enabled."""
    cluster_mode: bool
    """Seed ``mode: cluster`` (true) or ``single``."""
    persistence: Persistence
    """Seed ``persistence``: snapshot (default) or none. AOF is rejected with an explanation."""
    memory_policy: str
    """Seed ``memory_policy``: a redis ``maxmemory-policy`` (seed: allkeys-lru)."""
    maxmemory_bytes: int | None
    """Seed ``maxmemory``: total dataset across shards, in bytes; None to skip the sizing check."""
    replication: bool
    """Seed ``replication: enabled``."""
    engine: str = "elasticache"
    """``elasticache`` (default) or ``memorydb`` (durable multi-AZ transaction log; ``db.*`` node types)."""


@dataclass(frozen=True)
class QueueSettings:
    """SQS queues for the seed's task, priority and delayed patterns."""

    queues: tuple[QueueSpec, ...]
    """One spec per queue (a priority spec makes a high and a low queue)."""
    oldest_message_alarm_seconds: int = 900
    """Alarm when the oldest message of a work queue is older than this (default 15 minutes)."""


@dataclass(frozen=True)
class EksSettings:
    """The EKS cluster that hosts model servers, the gateway and the mesh."""

    version: str
    """Kubernetes minor version, pinned (e.g. "1.32")."""
    public_access_cidrs: tuple[str, ...]
    """Deployer CIDRs allowed to the public API endpoint; [] means private only."""
    system_instance_types: tuple[str, ...]
    """Instance types of the system node group (catalog CPU types)."""
    system_min: int
    system_desired: int
    system_max: int
    addon_versions: dict[str, str]
    """Pinned versions of the core add-ons."""


@dataclass(frozen=True)
class ModelServerSettings:
    """The vLLM server of a model pool, checked by the GPU sizing function."""

    model: str
    """Architecture from the model table (policies/agentinfra_policies/catalog/models.yaml)."""
    repository: str
    """Hugging Face repository vLLM loads (default: the table's repository)."""
    image: str
    """``vllm/vllm-openai:<tag>``, pinned."""
    dtype: str
    """bf16 (default), fp16, fp8, awq or gptq; the last three become ``--quantization``."""
    tensor_parallel_size: int
    """GPUs per replica; default every GPU of the instance."""
    max_model_len: int
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    gpu_memory_utilization: float = 0.90
    min_replicas: int = 1
    max_replicas: int = 2
    waiting_requests_per_replica: int = 8
    startup_seconds: int = 600
    prestage_s3_uri: str | None = None


@dataclass(frozen=True)
class ModelPoolSettings:
    """A GPU node pool that hosts one model server."""

    name: str
    """Lower-case DNS-style name, unique among pools."""
    instance_type: str
    """GPU instance type from the catalog."""
    min_nodes: int
    """Minimum nodes per AZ (>= 0)."""
    desired_nodes: int
    """Initial nodes per AZ; min <= desired <= max."""
    max_nodes: int
    """Maximum nodes per AZ (>= 1)."""
    azs: tuple[str, ...]
    """AZs the pool spans; default every network AZ; each must be a network AZ."""
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    """on_demand (default) or spot."""
    ami: GpuAmi = GpuAmi.AL2023_NVIDIA
    """al2023_nvidia (default) or bottlerocket_nvidia."""
    root_volume_gib: int = 200
    """Root volume in GiB (AL2023: images and model cache live here)."""
    data_volume_gib: int = 200
    """Bottlerocket's data volume in GiB (images and model cache)."""
    server: ModelServerSettings | None = None
    """The model this pool serves; None for capacity only."""


@dataclass(frozen=True)
class Settings:
    """Everything one environment asks for."""

    project: str
    environment: str
    """The stack name: dev, staging or prod (or any other stack with a config file)."""
    region: str
    """``aws:region``."""
    account_ids: tuple[str, ...]
    """``aws:allowedAccountIds``: exactly one id; the provider refuses to deploy to any other account."""
    tags: Tags
    network: NetworkSettings
    kms: KmsSettings
    logs: LogSettings
    protect_stateful: bool
    """``protect`` and retain-on-delete on stateful resources (default true; dev may turn it off)."""
    log_storage: LogStorageSettings
    worker_pools: tuple[WorkerPoolSettings, ...]
    redis: RedisSettings | None
    queues: QueueSettings
    eks: EksSettings | None
    model_pools: tuple[ModelPoolSettings, ...]
    api: ApiSettings | None = None
    mesh: MeshSettings | None = None
    observability: ObservabilitySettings | None = None
    model_gateway: GatewaySettings | None = None
    warnings: tuple[str, ...] = ()
    """Valid but worth knowing (e.g. a model pool whose KV cache holds fewer sequences than asked)."""

    @property
    def account_id(self) -> str:
        return self.account_ids[0]

    @property
    def default_tags(self) -> dict[str, str]:
        return self.tags.for_environment(self.environment)


#: Blocks read by the agentinfra tools (resilience targets, cost assumptions), not by the program; the
#: offline engine validates them when it loads a config file.
TOOL_KEYS = ("resilience", "cost")

#: Top-level ``agent-infra:`` keys the program reads. The offline engine rejects any other.
TOP_LEVEL_KEYS = (
    "tags",
    "network",
    "kms",
    "logs",
    "log_storage",
    "protect_stateful",
    "worker_pools",
    "redis",
    "queues",
    "eks",
    "model_pools",
    "api",
    "mesh",
    "observability",
    "model_gateway",
    *TOOL_KEYS,
)


def load_settings() -> Settings:
    """Read this stack's settings through ``pulumi.Config`` and validate them."""
    import pulumi

    cfg = pulumi.Config(NAMESPACE)
    aws = pulumi.Config("aws")
    raw = {key: _get_structured(cfg, key) for key in TOP_LEVEL_KEYS}
    return parse_settings(
        raw,
        environment=pulumi.get_stack(),
        region=aws.get("region"),
        account_ids=_get_structured(aws, "allowedAccountIds"),
    )


def _get_structured(cfg: Any, key: str) -> Any:
    """Structured config arrives as JSON text; a plain string stays a string."""
    text = cfg.get(key)
    if text is None:
        return None
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_settings(
    raw: dict[str, Any], *, environment: str, region: Any, account_ids: Any, catalog: Catalog | None = None
) -> Settings:
    """Validate raw config values; raise :class:`SettingsError` listing every problem."""
    catalog = catalog or load_catalog()
    problems = Problems()
    root = Node(raw, NAMESPACE, problems)
    # Top-level keys are addressed as ``agent-infra:key`` (Pulumi's own spelling), not ``agent-infra.key``.
    root.key = lambda name: f"{NAMESPACE}:{name}"  # type: ignore[method-assign]

    if not isinstance(region, str) or not _REGION.match(region):
        problems.add("aws:region", f"expected an AWS region such as us-east-1, found {region!r}")
        region = None
    accounts = _parse_accounts(account_ids, problems)

    tags = _parse_tags(root.child("tags", required=True), problems)
    network = _parse_network(root.child("network", required=True), region, problems)
    kms_node = root.child("kms")
    kms = KmsSettings(kms_node.integer("deletion_window_days", 30, min=7, max=30)) if kms_node else KmsSettings()
    logs = _parse_logs(root.child("logs"))
    log_storage = _parse_log_storage(root.child("log_storage"), region, problems)
    protect = root.flag("protect_stateful", True)
    worker_pools = tuple(root.children("worker_pools", lambda n: _parse_worker_pool(n, catalog)))
    _unique_names(root, "worker_pools", worker_pools)
    redis_node = root.child("redis")
    redis = _parse_redis(redis_node, catalog) if redis_node else None
    network_azs = network.azs if network else ()
    warnings: list[str] = []

    model_pools = tuple(root.children("model_pools", lambda n: _parse_model_pool(n, catalog, network_azs, warnings)))
    _unique_names(root, "model_pools", model_pools)
    queues = _parse_queues(root.child("queues"))
    queue_names = {spec.name for spec in queues.queues}
    for index, pool in enumerate(worker_pools):
        for position, consumed in enumerate(pool.consumes):
            if queue_names and consumed not in queue_names:
                problems.add(
                    f"{NAMESPACE}:worker_pools[{index}].consumes[{position}]",
                    f"expected one of the configured queues ({', '.join(sorted(queue_names))}), found {consumed!r}",
                )

    eks_node = root.child("eks", required=bool(model_pools))

    eks = _parse_eks(eks_node, catalog) if eks_node else None

    for node in (kms_node, redis_node):
        if node:
            node.finish()
    api_node, mesh_node, obs_node = root.child("api"), root.child("mesh"), root.child("observability")
    api = parse_api(api_node) if api_node else None
    mesh = parse_mesh(mesh_node) if mesh_node else None
    observability = parse_observability(obs_node) if obs_node else None
    gateway_node = root.child("model_gateway")
    gateway = parse_gateway(gateway_node, tuple(p.name for p in model_pools if p.server)) if gateway_node else None
    if gateway and any((gateway.agent_limits, gateway.user_limits, gateway.global_limits)) and redis_node is None:
        root.fail(
            "model_gateway",
            "expected agent-infra:redis when limits or budgets are set: the gateway keeps its "
            "rate-limit and budget counters there",
        )
    if api_node is not None and mesh_node is None:
        root.fail("api", "expected agent-infra:mesh as well: the API's private integration lands on the mesh ingress")
    if (api or mesh) and eks_node is None:
        root.fail("eks", "is required by agent-infra:api and agent-infra:mesh (they run on the cluster)")
    for key in TOOL_KEYS:
        root._take(key, None)
    root.finish()
    problems.raise_if_any()

    assert region and tags and network and logs and log_storage and protect is not None  # by raise_if_any
    return Settings(
        project=PROJECT,
        environment=environment,
        region=region,
        account_ids=accounts,
        tags=tags,
        network=network,
        kms=kms,
        logs=logs,
        protect_stateful=protect,
        log_storage=log_storage,
        worker_pools=worker_pools,
        redis=redis,
        queues=queues,
        eks=eks,
        model_pools=model_pools,
        api=api,
        mesh=mesh,
        observability=observability,
        model_gateway=gateway,
        warnings=tuple(warnings),
    )


def _parse_accounts(value: Any, problems: Problems) -> tuple[str, ...]:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) and _ACCOUNT.match(value[0]):
        return tuple(value)
    problems.add(
        "aws:allowedAccountIds",
        f"expected a list of exactly one 12-digit AWS account id (a quoted string): the account this "
        f"stack deploys to, named in key policies and trust policies; found {value!r}",
    )
    return ()


def _parse_tags(node: Node | None, problems: Problems) -> Tags | None:
    if node is None:
        return None
    owner = node.text("owner")
    cost_centre = node.text("cost-centre")
    extra = node.str_map("extra", {})
    node.finish()
    if owner is None or cost_centre is None or extra is None:
        return None
    return Tags(owner=owner, cost_centre=cost_centre, extra=extra)


def _parse_logs(node: Node | None) -> LogSettings:
    if node is None:
        return LogSettings()
    retention = node.integer("retention_days", 90)
    if retention is not None and retention not in LOG_RETENTION_DAYS:
        node.fail(
            "retention_days",
            f"expected one of CloudWatch's retention periods "
            f"{', '.join(map(str, LOG_RETENTION_DAYS))}, found {retention}",
        )
    node.finish()
    return LogSettings(retention if retention in LOG_RETENTION_DAYS else 90)


def _parse_retention(node: Node, *, audit: bool, default_days: int) -> Retention | None:
    """A stream's lifecycle; problems found by the component's own rules are reported under config keys."""
    days = node.integer("retention_days", default_days, min=1)
    noncurrent = node.integer("noncurrent_version_days", 30, min=1)
    transitions: list[Transition] = []
    raw = node.raw.get("transitions")
    node._take("transitions", None)
    if raw is None:
        transitions = [Transition(30, StorageClass.STANDARD_IA), Transition(90, StorageClass.GLACIER_IR)]
    elif not isinstance(raw, list):
        node.fail("transitions", f"expected a list of {{days, storage_class}} mappings, found {raw!r}")
        return None
    else:
        for index, item in enumerate(raw):
            step = Node(item, f"{node.key('transitions')}[{index}]", node.problems)
            step_days = step.integer("days", min=0)
            storage = step.text("storage_class", choices=[c.value for c in StorageClass])
            step.finish()
            if step_days is None or storage is None:
                return None
            transitions.append(Transition(step_days, StorageClass(storage)))
    if days is None or noncurrent is None:
        return None
    retention = Retention(expiration_days=days, transitions=tuple(transitions), noncurrent_days=noncurrent)
    renamed = {"expiration_days": "retention_days", "noncurrent_days": "noncurrent_version_days"}
    for field_name, message in retention_problems(retention, audit=audit):
        node.problems.add(node.key(renamed.get(field_name, field_name)), message)
    return retention


def _parse_log_storage(node: Node | None, region: str | None, problems: Problems) -> LogStorageSettings | None:
    if node is None:
        node = Node({}, f"{NAMESPACE}:log_storage", problems)
    audit_node = node.child("audit") or Node({}, node.key("audit"), node.problems)
    retention = _parse_retention(node, audit=False, default_days=365)
    audit = _parse_retention(audit_node, audit=True, default_days=AUDIT_MINIMUM_DAYS)
    lock = audit_node.flag("object_lock", False)
    audit_node.finish()
    if retention and audit and audit.expiration_days < retention.expiration_days:
        audit_node.fail(
            "retention_days",
            f"expected at least the log retention ({retention.expiration_days} days), found {audit.expiration_days}",
        )
    abort = node.integer("abort_multipart_days", 3, min=1, max=30)
    access = node.integer("access_log_retention_days", 90, min=1)
    replica = node.text("replication_region", None, pattern=_REGION.pattern.strip("^$"), what="an AWS region")
    if replica is not None and replica == region:
        node.fail("replication_region", f"expected a region other than the stack's own ({region}), found {replica}")
    scan = node.integer("athena_scan_limit_gb", 10, min=1, max=1024)
    node.finish()
    if retention is None or audit is None or None in (lock, abort, access, scan):
        return None
    return LogStorageSettings(
        retention=retention,
        audit_retention=audit,
        audit_object_lock=lock,
        abort_multipart_days=abort,
        access_log_retention_days=access,
        replication_region=replica,
        athena_scan_limit_gb=scan,
    )


def _parse_network(node: Node | None, region: str | None, problems: Problems) -> NetworkSettings | None:
    if node is None:
        return None
    cidr = node.cidr("cidr")
    if cidr is not None and not 16 <= cidr.prefixlen <= 24:
        node.fail("cidr", f"expected a VPC CIDR from /16 to /24 (AWS's limits), found {cidr}")
        cidr = None
    azs = node.str_list("azs", min_len=2)
    if azs is not None:
        for index, az in enumerate(azs):
            if region and not re.fullmatch(re.escape(region) + r"[a-z]", az):
                problems.add(
                    f"{node.key('azs')}[{index}]",
                    f"expected an availability zone of {region} such as {region}a, found {az!r}",
                )
        if len(set(azs)) != len(azs):
            node.fail("azs", f"expected distinct availability zones, found {list(azs)}")
    az_count = node.integer("az_count", None, min=2)
    if az_count is not None and azs is not None and az_count != len(azs):
        node.fail("az_count", f"expected {len(azs)} to match the {len(azs)} zones listed in azs, found {az_count}")
    nat = node.text("nat_gateways", NatMode.PER_AZ.value, choices=[m.value for m in NatMode])
    traffic = node.text("flow_log_traffic", "ALL", choices=["ALL", "ACCEPT", "REJECT"])
    public = _subnets(node, "public_subnets", cidr, azs)
    private = _subnets(node, "private_subnets", cidr, azs)
    node.finish()
    if cidr is None or azs is None or nat is None or traffic is None:
        return None
    if public is None or private is None:
        return None
    default_public, default_private = default_subnets(cidr, len(azs))
    public = public or default_public
    private = private or default_private
    _check_no_overlap(node, public, private)
    return NetworkSettings(
        cidr=str(cidr),
        azs=azs,
        public_subnets=public,
        private_subnets=private,
        nat_gateways=NatMode(nat),
        flow_log_traffic=traffic,
    )


def default_subnets(cidr: ipaddress.IPv4Network, count: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split the VPC into ``count + 1`` (rounded up to a power of two) equal blocks.

    Private subnets take the first ``count`` blocks: they hold the pods (the VPC CNI gives every pod an
    address), so they get the room. Public subnets (load balancers and NAT only) are /24s, or smaller
    for a small VPC, carved from the last block.
    """
    bits = count.bit_length()  # 2**bits > count, so one block is always left for the public subnets
    blocks = list(cidr.subnets(prefixlen_diff=bits))
    last = blocks[-1]
    public_prefix = last.prefixlen + max(1, (count - 1).bit_length())
    public_prefix = max(public_prefix, min(24, 28))
    public = list(last.subnets(new_prefix=min(public_prefix, 28)))[:count]
    return tuple(str(s) for s in public), tuple(str(b) for b in blocks[:count])


def _subnets(
    node: Node, name: str, vpc: ipaddress.IPv4Network | None, azs: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    """Explicit subnet CIDRs: one per AZ, each inside the VPC. Returns () when not given, None when invalid."""
    if not node.has(name):
        node._take(name, ())
        return ()
    values = node.str_list(name)
    if values is None:
        return None
    ok = True
    if azs is not None and len(values) != len(azs):
        node.fail(name, f"expected one subnet per availability zone ({len(azs)}), found {len(values)}")
        ok = False
    for index, text in enumerate(values):
        key = f"{node.key(name)}[{index}]"
        subnet = node.check_cidr(key, text)
        if subnet is None:
            ok = False
        elif vpc is not None and not subnet.subnet_of(vpc):
            node.problems.add(key, f"expected a subnet inside the VPC CIDR {vpc}, found {subnet}")
            ok = False
    return tuple(values) if ok else None


def _check_no_overlap(node: Node, public: tuple[str, ...], private: tuple[str, ...]) -> None:
    named = [(f"public_subnets[{i}]", ipaddress.IPv4Network(c)) for i, c in enumerate(public)]
    named += [(f"private_subnets[{i}]", ipaddress.IPv4Network(c)) for i, c in enumerate(private)]
    for i, (key_a, net_a) in enumerate(named):
        for key_b, net_b in named[i + 1 :]:
            if net_a.overlaps(net_b):
                node.fail(key_b, f"expected a CIDR that does not overlap {node.key(key_a)} ({net_a}), found {net_b}")


def _parse_scaling(node: Node | None) -> ScalingPolicy | None:
    if node is None:
        return None
    lo = node.integer("min_instances", min=0)
    hi = node.integer("max_instances", min=1)
    metric = node.text("target_metric", choices=[m.value for m in TargetMetric])
    target = node.number("target_value")
    if target is not None and target <= 0:
        node.fail("target_value", f"expected a number above 0, found {target}")
        target = None
    up = node.duration_seconds("scale_up_cooldown", 60, max=3600)
    down = node.duration_seconds("scale_down_cooldown", 300, max=3600)
    node.finish()
    if lo is not None and hi is not None and lo > hi:
        node.fail("min_instances", f"expected at most max_instances ({hi}), found {lo}")
        return None
    if None in (lo, hi, metric, target, up, down):
        return None
    return ScalingPolicy(lo, hi, TargetMetric(metric), target, up, down)


def _parse_worker_pool(node: Node, catalog: Catalog) -> WorkerPoolSettings | None:
    name = node.text("name", pattern=_NAME, what="a lower-case name of letters, digits and dashes")
    types = node.str_list("instance_types", min_len=1)
    if types is not None:
        for index, itype in enumerate(types):
            spec = catalog.get(itype)
            if spec is None or spec.family != "ec2" or spec.has_gpu:
                node.problems.add(
                    f"{node.key('instance_types')}[{index}]",
                    f"expected a CPU instance type from the catalog ({', '.join(catalog.names('ec2', gpu=False))}),"
                    f" found {itype!r}",
                )
                types = None
    scaling = _parse_scaling(node.child("scaling_policy", required=True))
    desired = node.integer("desired_instances", None, min=0)
    if scaling and desired is not None and not scaling.min_instances <= desired <= scaling.max_instances:
        node.fail(
            "desired_instances",
            f"expected a value from min_instances ({scaling.min_instances}) to "
            f"max_instances ({scaling.max_instances}), found {desired}",
        )
        return None
    consumes = node.str_list("consumes", ("tasks",), min_len=1)
    latency = node.integer("latency_p95_ms", None, min=1)
    errors = node.number("error_rate_percent", None, min=0.1, max=100)
    schedules = tuple(node.children("schedules", _parse_schedule))
    interruptible = node.flag("interruptible", False)
    base = node.integer("on_demand_base", 0, min=0)
    above = node.integer("on_demand_percentage_above_base", 0, min=0, max=100)
    warm_node = node.child("warm_pool")
    warm = None
    if warm_node is not None:
        warm = WarmPool(
            min_size=warm_node.integer("min_size", 0, min=0) or 0,
            max_prepared=warm_node.integer("max_prepared", None, min=0),
        )
        warm_node.finish()
        if interruptible:
            node.fail(
                "warm_pool",
                "expected no warm pool on an interruptible pool: AWS refuses a warm pool on a group "
                "with a mixed-instances policy or spot capacity; drop warm_pool or interruptible",
            )
            warm = None
    warm_up = node.duration_seconds("warm_up", 120, min=0, max=3600)
    user_data = node.text("user_data", "")
    if name is None or types is None or scaling is None or None in (consumes, interruptible, base, above, warm_up):
        return None
    return WorkerPoolSettings(
        name=name,
        instance_types=types,
        scaling_policy=scaling,
        desired_instances=desired,
        consumes=consumes,
        latency_p95_ms=latency,
        error_rate_percent=errors,
        schedules=schedules,
        spot=SpotCapacity(on_demand_base=base, on_demand_percentage_above_base=above) if interruptible else None,
        warm_pool=warm,
        warm_up_seconds=warm_up,
        user_data=user_data or "",
    )


def _parse_schedule(node: Node) -> Schedule | None:
    name = node.text("name", pattern=_NAME, what="a lower-case name of letters, digits and dashes")
    recurrence = node.text(
        "recurrence", pattern=r"\S+( \S+){4}", what="a five-field cron expression such as 0 20 * * *"
    )
    lo = node.integer("min_size", min=0)
    hi = node.integer("max_size", min=0)
    desired = node.integer("desired", None, min=0)
    zone = node.text("time_zone", "UTC")
    if None not in (lo, hi) and lo > hi:
        node.fail("min_size", f"expected at most max_size ({hi}), found {lo}")
        return None
    if None in (name, recurrence, lo, hi, zone):
        return None
    return Schedule(name=name, recurrence=recurrence, min_size=lo, max_size=hi, desired=desired, time_zone=zone)


def _parse_redis(node: Node, catalog: Catalog) -> RedisSettings | None:
    engine = node.text("engine", "elasticache", choices=["elasticache", "memorydb"]) or "elasticache"
    family: Any = engine
    node_type = node.text("node_type")
    if node_type is not None:
        spec = catalog.get(node_type)
        if spec is None or spec.family != engine:
            node.fail(
                "node_type",
                f"expected a {'MemoryDB' if engine == 'memorydb' else 'ElastiCache'} node type from the catalog "
                f"({', '.join(catalog.names(family))}), found {node_type!r}",
            )
            node_type = None
    shards = node.integer("shards", 1, min=1, max=500)
    replicas = node.integer("replicas_per_shard", 1, min=0, max=5)
    seed = node.child("redis_config", required=True)
    if seed is None:
        return None
    mode = seed.text("mode", "cluster", choices=["cluster", "single"])
    persistence = seed.text("persistence", "snapshot")
    if persistence is not None and persistence.lower() == "aof":
        seed.fail(
            "persistence",
            "AOF is not available: ElastiCache does not offer append-only files on current Redis "
            "and Valkey engines. Use `snapshot` (Multi-AZ replicas with automatic failover plus "
            "daily snapshots, the default) or, for durability of every write, `engine: memorydb` "
            "(Amazon MemoryDB's multi-AZ transaction log). Found 'AOF'",
        )
        persistence = None
    elif persistence is not None and persistence not in {p.value for p in Persistence}:
        seed.fail("persistence", f"expected snapshot or none, found {persistence!r}")
        persistence = None
    policy = seed.text("memory_policy", "allkeys-lru", choices=MEMORY_POLICIES)
    maxmemory = seed.size_bytes("maxmemory", None)
    replication = seed.text("replication", "enabled", choices=["enabled", "disabled"])
    seed.finish()
    if mode == "single" and shards not in (None, 1):
        node.fail("shards", f"expected 1 when redis_config.mode is single, found {shards}")
        shards = None
    if replication == "enabled" and replicas == 0:
        node.fail("replicas_per_shard", "expected at least 1 when redis_config.replication is enabled, found 0")
        replicas = None
    if node_type and shards and maxmemory:
        # maxmemory is the whole dataset across shards, after ElastiCache's 25% reserved memory.
        too_small = check_node_fits(node_type, shards, maxmemory, catalog, family=engine)
        if too_small:
            node.fail("node_type", too_small)
            node_type = None
    if None in (node_type, shards, replicas, mode, persistence, policy, replication):
        return None
    return RedisSettings(
        node_type=node_type,
        shards=shards,
        replicas_per_shard=replicas,
        cluster_mode=mode == "cluster",
        persistence=Persistence(persistence),
        memory_policy=policy,
        maxmemory_bytes=maxmemory,
        replication=replication == "enabled",
        engine=engine,
    )


def _parse_model_pool(
    node: Node, catalog: Catalog, network_azs: tuple[str, ...], warnings: list[str]
) -> ModelPoolSettings | None:
    name = node.text("name", pattern=_NAME, what="a lower-case name of letters, digits and dashes")
    itype = node.text("instance_type")
    if itype is not None:
        spec = catalog.get(itype)
        if spec is None or not spec.has_gpu:
            node.fail(
                "instance_type",
                f"expected a GPU instance type from the catalog "
                f"({', '.join(catalog.names('ec2', gpu=True))}), found {itype!r}",
            )
            itype = None
    lo = node.integer("min_nodes", 0, min=0)
    hi = node.integer("max_nodes", min=1)
    desired = node.integer("desired_nodes", None, min=0)
    if lo is not None and desired is None:
        desired = lo
    if None not in (lo, hi, desired) and not lo <= desired <= hi:
        node.fail("desired_nodes", f"expected min_nodes ({lo}) <= desired_nodes <= max_nodes ({hi}), found {desired}")
        desired = None
    azs = node.str_list("azs", network_azs, min_len=1)
    if azs is not None and network_azs:
        for index, az in enumerate(azs):
            if az not in network_azs:
                node.problems.add(
                    f"{node.key('azs')}[{index}]",
                    f"expected one of the network's AZs ({', '.join(network_azs)}), found {az!r}",
                )
                azs = None
    capacity = node.text("capacity_type", CapacityType.ON_DEMAND.value, choices=[c.value for c in CapacityType])
    ami = node.text("ami", "al2023_nvidia", choices=list(_GPU_AMIS))
    server_node = node.child("server")
    server = (
        _parse_server(server_node, catalog.get(itype) if itype else None, (hi or 0) * len(azs or ()), warnings)
        if server_node
        else None
    )

    root_volume = node.integer("root_volume_gib", 200, min=20, max=16384)
    data_volume = node.integer("data_volume_gib", 200, min=20, max=16384)

    if None in (name, itype, lo, hi, desired, azs, capacity, ami, root_volume, data_volume):
        return None
    return ModelPoolSettings(
        name=name,
        instance_type=itype,
        min_nodes=lo,
        desired_nodes=desired,
        max_nodes=hi,
        azs=azs,
        capacity_type=CapacityType(capacity),
        ami=_GPU_AMIS[ami],
        root_volume_gib=root_volume,
        data_volume_gib=data_volume,
        server=server,
    )


def _parse_server(node: Node, instance: Any, max_gpu_nodes: int, warnings: list[str]) -> ModelServerSettings | None:
    """The pool's vLLM server; the GPU sizing check runs here, so a model that does not fit is a config error."""
    from agentinfra_policies.sizing import Dtype, SizingInputError, get_model, load_models, size

    model = node.text("model", choices=sorted(load_models()))
    arch = get_model(model) if model else None
    repository = node.text(
        "repository",
        arch.hf_repo if arch else None,
        pattern=r"[\w.-]+/[\w.-]+",
        what="a Hugging Face repository id such as meta-llama/Llama-3.1-8B-Instruct",
    )
    image = node.text(
        "image", pattern=r"vllm/vllm-openai:(?!latest$)[\w.-]+", what="vllm/vllm-openai:<pinned tag> (never latest)"
    )
    dtype = node.text("dtype", "bf16", choices=[d.value for d in Dtype])
    gpus = instance.gpus if instance is not None else 1
    tp = node.integer("tensor_parallel_size", gpus, min=1, max=8)
    max_len = node.integer("max_model_len", min=256)
    seqs = node.integer("max_num_seqs", 256, min=1)
    batched = node.integer("max_num_batched_tokens", 8192, min=256)
    utilization = node.number("gpu_memory_utilization", 0.90, min=0.1, max=0.98)
    lo = node.integer("min_replicas", 1, min=1)
    hi = node.integer("max_replicas", 2, min=1)
    waiting = node.integer("waiting_requests_per_replica", 8, min=1)
    startup = node.duration_seconds("startup_timeout", 600, min=300, max=3600)
    prestage = node.text("prestage_s3_uri", None, pattern=r"s3://[a-z0-9.-]+(/.*)?", what="an s3:// URI")
    node.finish()
    if None in (model, repository, image, dtype, tp, max_len, seqs, batched, utilization, lo, hi, waiting, startup):
        return None
    if lo > hi:
        node.fail("min_replicas", f"expected at most max_replicas ({hi}), found {lo}")
        return None
    if instance is not None and arch is not None:
        replicas_per_node = instance.gpus // tp if tp <= instance.gpus else 0
        # max_gpu_nodes is 0 when the pool's AZs are unknown (an invalid network already reported).
        if replicas_per_node and max_gpu_nodes and hi > replicas_per_node * max_gpu_nodes:
            node.fail(
                "max_replicas",
                f"expected at most {replicas_per_node * max_gpu_nodes} ({replicas_per_node} per "
                f"node x {max_gpu_nodes} nodes at max_nodes), found {hi}",
            )
        try:
            result = size(
                arch,
                dtype=Dtype(dtype),
                tp=tp,
                gpu_memory_gib=instance.gpu_memory_gib,
                gpus_per_instance=instance.gpus,
                max_model_len=max_len,
                max_num_seqs=seqs,
                max_num_batched_tokens=batched,
                gpu_memory_utilization=utilization,
            )
        except SizingInputError as exc:
            node.fail({"tp": "tensor_parallel_size"}.get(exc.argument, exc.argument), str(exc))
            return None
        if not result.fits:
            node.fail("model", " ".join(result.errors))
            return None
        warnings.extend(f"{node.path}: {w}" for w in result.warnings)
    return ModelServerSettings(
        model=model,
        repository=repository,
        image=image,
        dtype=dtype,
        tensor_parallel_size=tp,
        max_model_len=max_len,
        max_num_seqs=seqs,
        max_num_batched_tokens=batched,
        gpu_memory_utilization=utilization,
        min_replicas=lo,
        max_replicas=hi,
        waiting_requests_per_replica=waiting,
        startup_seconds=startup,
        prestage_s3_uri=prestage,
    )


_QUEUE_NAME = r"[a-z][a-z0-9-]{0,38}[a-z0-9]"
#: Messages must survive a weekend outage: at least three days.
MIN_RETENTION_SECONDS = 3 * 24 * 3600


def _parse_queue(node: Node) -> QueueSpec | None:
    name = node.text("name", pattern=_QUEUE_NAME, what="a lower-case name of letters, digits and dashes")
    kind = node.text("kind", "task", choices=[k.value for k in QueueKind])
    fifo = node.flag("fifo", False)
    dlq_fifo = node.flag("dead_letter_fifo", None)
    if fifo is not None and dlq_fifo is not None and dlq_fifo != fifo:
        node.fail(
            "dead_letter_fifo",
            f"expected {str(fifo).lower()}: SQS requires a dead-letter queue of the same "
            f"type as its queue (a FIFO queue needs a FIFO DLQ), found {str(dlq_fifo).lower()}",
        )
        fifo = None
    dedup = node.flag("content_based_deduplication", False)
    processing = node.duration_seconds("processing_timeout", 60, min=1, max=7200)
    delay = node.duration_seconds("delay", 0, max=900)
    if kind == "delayed" and delay == 0:
        node.fail("delay", "expected a delivery delay (1s to 900s) for a delayed queue, found 0")
        delay = None
    retention = node.duration_seconds("retention", 4 * 24 * 3600, min=MIN_RETENTION_SECONDS, max=14 * 24 * 3600)
    receives = node.integer("max_receive_count", 5, min=1, max=1000)
    if None in (name, kind, fifo, dedup, processing, delay, retention, receives):
        return None
    return QueueSpec(
        name=name,
        kind=QueueKind(kind),
        processing_timeout_seconds=processing,
        fifo=fifo,
        content_based_deduplication=dedup,
        delay_seconds=delay,
        message_retention_seconds=retention,
        max_receive_count=receives,
    )


def _parse_queues(node: Node | None) -> QueueSettings:
    if node is None:
        return QueueSettings(queues=(QueueSpec(name="tasks"),))
    alarm = node.duration_seconds("oldest_message_alarm", 900, min=60, max=14 * 24 * 3600)
    specs = tuple(node.children("queues", _parse_queue, required=True))
    _unique_names(node, "queues", specs)
    node.finish()
    return QueueSettings(queues=specs, oldest_message_alarm_seconds=alarm or 900)


_GPU_AMIS = {"al2023_nvidia": GpuAmi.AL2023_NVIDIA, "bottlerocket_nvidia": GpuAmi.BOTTLEROCKET_NVIDIA}
_K8S_VERSION = r"1\.\d{2}"


def _parse_eks(node: Node, catalog: Catalog) -> EksSettings | None:
    import ipaddress

    version = node.text("version", pattern=_K8S_VERSION, what='a pinned Kubernetes minor version such as "1.32"')
    cidrs = node.str_list("public_access_cidrs", ())
    if cidrs is not None:
        for index, text in enumerate(cidrs):
            try:
                net = ipaddress.ip_network(text)
            except ValueError:
                net = None
            if net is None or net.prefixlen == 0:
                node.problems.add(
                    f"{node.key('public_access_cidrs')}[{index}]",
                    f"expected a deployer CIDR (never 0.0.0.0/0; [] for a private endpoint), found {text!r}",
                )
                cidrs = None
    system = node.child("system_nodes", required=True)
    sizes: tuple[Any, ...] = (None, None, None, None)
    if system is not None:
        types = system.str_list("instance_types", min_len=1)
        for index, itype in enumerate(types or ()):
            spec = catalog.get(itype)
            if spec is None or spec.family != "ec2" or spec.has_gpu:
                system.problems.add(
                    f"{system.key('instance_types')}[{index}]",
                    f"expected a CPU instance type from the catalog, found {itype!r}",
                )
                types = None
        lo = system.integer("min_size", 2, min=1)
        desired = system.integer("desired_size", None, min=1)
        hi = system.integer("max_size", min=1)
        desired = lo if desired is None else desired
        if None not in (lo, desired, hi) and not lo <= desired <= hi:
            system.fail("desired_size", f"expected min_size ({lo}) <= desired_size <= max_size ({hi}), found {desired}")
            desired = None
        system.finish()
        sizes = (types, lo, desired, hi)
    addons = node.str_map("addon_versions")
    if addons is not None:
        from components.eks_cluster import REQUIRED_ADDONS

        missing = [a for a in REQUIRED_ADDONS if a not in addons]
        if missing:
            node.fail(
                "addon_versions",
                f"expected a pinned version for each of {', '.join(REQUIRED_ADDONS)}, missing {', '.join(missing)}",
            )
            addons = None
    node.finish()
    if None in (version, cidrs, addons, *sizes):
        return None
    types, lo, desired, hi = sizes
    return EksSettings(
        version=version,
        public_access_cidrs=cidrs,
        system_instance_types=types,
        system_min=lo,
        system_desired=desired,
        system_max=hi,
        addon_versions=addons,
    )


def _unique_names(root: Node, key: str, items: tuple[Any, ...]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            root.fail(key, f"expected unique pool names, found {item.name!r} twice")
        seen.add(item.name)


__all__ = [
    "CapacityType",
    "KmsSettings",
    "LogSettings",
    "ModelPoolSettings",
    "NatMode",
    "NetworkSettings",
    "Persistence",
    "RedisSettings",
    "ScalingPolicy",
    "Settings",
    "SettingsError",
    "Tags",
    "TargetMetric",
    "WorkerPoolSettings",
    "load_settings",
    "parse_settings",
    "TOP_LEVEL_KEYS",
]
