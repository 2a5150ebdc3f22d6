"""Settings validation: every rule has a failing case whose message names the key and the problem."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from helpers import settings_inputs

from stacks.reader import SettingsError
from stacks.settings import (
    CapacityType,
    NatMode,
    Persistence,
    ScalingPolicy,
    TargetMetric,
    parse_settings,
)


def parse(env: str = "prod", change: Callable[[dict[str, Any]], None] | None = None, **overrides: Any):
    kwargs = settings_inputs(env)
    if change:
        change(kwargs["raw"])
    kwargs.update(overrides)
    return parse_settings(**kwargs)


def error_for(change: Callable[[dict[str, Any]], None] | None = None, env: str = "prod", **overrides: Any) -> str:
    with pytest.raises(SettingsError) as info:
        parse(env, change, **overrides)
    return str(info.value)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_shipped_config_is_valid(env: str) -> None:
    settings = parse(env)
    assert settings.environment == env
    assert settings.default_tags["environment"] == env
    assert {"owner", "cost-centre", "project", "managed-by"} <= set(settings.default_tags)


def test_azs_per_environment() -> None:
    assert len(parse("dev").network.azs) == 2
    assert parse("dev").network.nat_gateways is NatMode.SINGLE
    for env in ("staging", "prod"):
        assert len(parse(env).network.azs) == 3
        assert parse(env).network.nat_gateways is NatMode.PER_AZ


def test_seed_scaling_policy_parses_in_the_seeds_shape() -> None:
    pool = parse("prod").worker_pools[0]
    assert pool.scaling_policy == ScalingPolicy(
        min_instances=2,
        max_instances=20,
        target_metric=TargetMetric.QUEUE_DEPTH,
        target_value=10.0,
        scale_up_cooldown=60,
        scale_down_cooldown=300,
    )


def test_seed_redis_config_parses_in_the_seeds_shape() -> None:
    redis = parse("prod").redis
    assert redis is not None
    assert redis.cluster_mode and redis.replication
    assert redis.persistence is Persistence.SNAPSHOT
    assert redis.memory_policy == "allkeys-lru"
    assert redis.maxmemory_bytes == 32 * 1024**3


def test_every_problem_is_reported_at_once() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["network"]["cidr"] = "10.0.0.0/33"
        raw["tags"].pop("owner")
        raw["logs"]["retention_days"] = 42

    message = error_for(change)
    assert "3 invalid setting(s)" in message
    assert "agent-infra:network.cidr: expected an IPv4 CIDR" in message
    assert "agent-infra:tags.owner: is required but missing" in message
    assert "agent-infra:logs.retention_days: expected one of CloudWatch's retention periods" in message


def set_path(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets raw[a][b][0][c] = value for path 'a.b.0.c'."""

    def change(raw: dict[str, Any]) -> None:
        target: Any = raw
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if value is DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return change


DELETE = object()

CASES = [
    # (change, expected key, expected message fragment)
    (set_path("tags.cost-centre", DELETE), "agent-infra:tags.cost-centre", "is required but missing"),
    (set_path("tags.colour", "blue"), "agent-infra:tags.colour", "unknown setting"),
    (set_path("network.cidr", "10.0.0.0/8"), "agent-infra:network.cidr", "from /16 to /24"),
    (set_path("network.cidr", "banana"), "agent-infra:network.cidr", "expected an IPv4 CIDR"),
    (set_path("network.azs", ["us-east-1a"]), "agent-infra:network.azs", "at least 2 entries"),
    (
        set_path("network.azs", ["us-east-1a", "eu-west-1b", "us-east-1c"]),
        "agent-infra:network.azs[1]",
        "availability zone of us-east-1",
    ),
    (
        set_path("network.azs", ["us-east-1a", "us-east-1a", "us-east-1c"]),
        "agent-infra:network.azs",
        "distinct availability zones",
    ),
    (set_path("network.az_count", 2), "agent-infra:network.az_count", "to match the 3 zones"),
    (set_path("network.nat_gateways", "none"), "agent-infra:network.nat_gateways", "one of per_az, single"),
    (set_path("network.nat_gatways", "single"), "agent-infra:network.nat_gatways", "unknown setting"),
    (
        set_path("network.private_subnets", ["10.30.0.0/18", "10.30.64.0/18", "10.99.0.0/18"]),
        "agent-infra:network.private_subnets[2]",
        "inside the VPC CIDR 10.30.0.0/16",
    ),
    (
        set_path("network.private_subnets", ["10.30.0.0/18", "10.30.64.0/18"]),
        "agent-infra:network.private_subnets",
        "one subnet per availability zone (3)",
    ),
    (
        set_path("network.private_subnets", ["10.30.0.0/18", "10.30.64.0/18", "10.30.192.0/18"]),
        "agent-infra:network.private_subnets[2]",
        "does not overlap",
    ),
    (set_path("kms.deletion_window_days", 3), "agent-infra:kms.deletion_window_days", "from 7 to 30"),
    (set_path("logs.retention_days", 42), "agent-infra:logs.retention_days", "retention periods"),
    (set_path("protect_stateful", "yes"), "agent-infra:protect_stateful", "true or false"),
    (
        set_path("worker_pools.0.scaling_policy.min_instances", 30),
        "agent-infra:worker_pools[0].scaling_policy.min_instances",
        "at most max_instances (20)",
    ),
    (
        set_path("worker_pools.0.scaling_policy.target_metric", "gpu_utilisation"),
        "agent-infra:worker_pools[0].scaling_policy.target_metric",
        "one of queue_depth, cpu_utilization",
    ),
    (
        set_path("worker_pools.0.scaling_policy.scale_down_cooldown", "-5s"),
        "agent-infra:worker_pools[0].scaling_policy.scale_down_cooldown",
        "a duration such as 60s",
    ),
    (
        set_path("worker_pools.0.scaling_policy.target_value", 0),
        "agent-infra:worker_pools[0].scaling_policy.target_value",
        "above 0",
    ),
    (
        set_path("worker_pools.0.desired_instances", 25),
        "agent-infra:worker_pools[0].desired_instances",
        "from min_instances (2) to max_instances (20)",
    ),
    (
        set_path("worker_pools.0.instance_types", ["m7i.xlarge", "x9.huge"]),
        "agent-infra:worker_pools[0].instance_types[1]",
        "CPU instance type from the catalog",
    ),
    (
        set_path("worker_pools.0.instance_types", ["g5.xlarge"]),
        "agent-infra:worker_pools[0].instance_types[0]",
        "CPU instance type from the catalog",
    ),
    (set_path("worker_pools.0.name", "Agents_1"), "agent-infra:worker_pools[0].name", "lower-case name"),
    (
        set_path("redis.redis_config.persistence", "AOF"),
        "agent-infra:redis.redis_config.persistence",
        "ElastiCache does not offer append-only files",
    ),
    (
        set_path("redis.redis_config.memory_policy", "lru"),
        "agent-infra:redis.redis_config.memory_policy",
        "one of volatile-lru, allkeys-lru",
    ),
    (
        set_path("redis.redis_config.maxmemory", "lots"),
        "agent-infra:redis.redis_config.maxmemory",
        "a memory size such as 32GB",
    ),
    (
        set_path("redis.node_type", "cache.x1.huge"),
        "agent-infra:redis.node_type",
        "ElastiCache node type from the catalog",
    ),
    (
        set_path("redis.replicas_per_shard", 0),
        "agent-infra:redis.replicas_per_shard",
        "at least 1 when redis_config.replication is enabled",
    ),
    (
        set_path("model_pools.0.instance_type", "m7i.xlarge"),
        "agent-infra:model_pools[0].instance_type",
        "GPU instance type from the catalog",
    ),
    (
        set_path("model_pools.0.azs", ["us-east-1a", "us-east-1d"]),
        "agent-infra:model_pools[0].azs[1]",
        "one of the network's AZs",
    ),
    (
        set_path("model_pools.0.desired_nodes", 9),
        "agent-infra:model_pools[0].desired_nodes",
        "min_nodes (1) <= desired_nodes <= max_nodes (4)",
    ),
    (set_path("model_pools.1.name", "llama-8b"), "agent-infra:model_pools", "unique pool names"),
    (set_path("colour", "blue"), "agent-infra:colour", "unknown setting"),
    (
        set_path("log_storage.transitions.0.days", 7),
        "agent-infra:log_storage.transitions[0].days",
        "expected at least 30 for STANDARD_IA (AWS's minimum), found 7",
    ),
    (
        set_path("log_storage.retention_days", 60),
        "agent-infra:log_storage.retention_days",
        "expected an expiration after the last transition (day 90), found 60",
    ),
    (
        set_path("log_storage.audit.retention_days", 100),
        "agent-infra:log_storage.audit.retention_days",
        "expected at least the audit minimum of 365 days, found 100",
    ),
    (
        set_path("log_storage.retention_days", 3000),
        "agent-infra:log_storage.audit.retention_days",
        "expected at least the log retention (3000 days), found 2557",
    ),
    (
        set_path("log_storage.transitions.1.storage_class", "TAPE"),
        "agent-infra:log_storage.transitions[1].storage_class",
        "expected one of STANDARD_IA",
    ),
    (
        set_path("log_storage.replication_region", "us-east-1"),
        "agent-infra:log_storage.replication_region",
        "a region other than the stack's own",
    ),
    (set_path("eks.version", "latest"), "agent-infra:eks.version", "a pinned Kubernetes minor version"),
    (set_path("eks.public_access_cidrs", ["0.0.0.0/0"]), "agent-infra:eks.public_access_cidrs[0]", "never 0.0.0.0/0"),
    (
        set_path("eks.addon_versions", {"vpc-cni": "v1"}),
        "agent-infra:eks.addon_versions",
        "missing coredns, kube-proxy",
    ),
    (
        set_path("eks.system_nodes.desired_size", 9),
        "agent-infra:eks.system_nodes.desired_size",
        "min_size (3) <= desired_size <= max_size (6)",
    ),
    (set_path("eks", DELETE), "agent-infra:eks", "is required but missing"),
    (set_path("queues.queues.2.delay", "16m"), "agent-infra:queues.queues[2].delay", "a duration such as 60s"),
    (set_path("queues.queues.2.delay", 901), "agent-infra:queues.queues[2].delay", "to 900 seconds, found 901"),
    (
        set_path("queues.queues.3.dead_letter_fifo", False),
        "agent-infra:queues.queues[3].dead_letter_fifo",
        "SQS requires a dead-letter queue of the same type as its queue",
    ),
    (set_path("queues.queues.0.retention", "1d"), "agent-infra:queues.queues[0].retention", "from 259200 to 1209600"),
    (
        set_path("worker_pools.0.interruptible", True),
        "agent-infra:worker_pools[0].warm_pool",
        "AWS refuses a warm pool on a group with a mixed-instances policy or spot capacity",
    ),
    (
        set_path("worker_pools.0.consumes", ["tasks", "emails"]),
        "agent-infra:worker_pools[0].consumes[1]",
        "expected one of the configured queues",
    ),
    (
        set_path("worker_pools.0.schedules", [{"name": "n", "recurrence": "daily", "min_size": 0, "max_size": 1}]),
        "agent-infra:worker_pools[0].schedules[0].recurrence",
        "a five-field cron expression",
    ),
    (
        set_path("worker_pools.0.error_rate_percent", 0),
        "agent-infra:worker_pools[0].error_rate_percent",
        "from 0.1 to 100",
    ),
    (set_path("queues.queues.1.kind", "lifo"), "agent-infra:queues.queues[1].kind", "one of task, priority, delayed"),
    (set_path("queues.queues.1.name", "tasks"), "agent-infra:queues.queues", "unique pool names"),
    (
        set_path("redis.node_type", "cache.t4g.small"),
        "agent-infra:redis.node_type",
        "below maxmemory 32.00 GiB; node types that fit: cache.m7g.2xlarge, cache.r7g.xlarge",
    ),
    (set_path("model_pools.0.ami", "ubuntu"), "agent-infra:model_pools[0].ami", "one of al2023_nvidia"),
]


@pytest.mark.parametrize(("change", "key", "fragment"), CASES, ids=[c[1] + ":" + c[2][:20] for c in CASES])
def test_invalid_setting_names_key_and_problem(
    change: Callable[[dict[str, Any]], None], key: str, fragment: str
) -> None:
    message = error_for(change)
    assert re.search(rf"^  - {re.escape(key)}: .*{re.escape(fragment)}", message, re.MULTILINE), message


def test_aof_message_names_the_real_choices() -> None:
    message = error_for(set_path("redis.redis_config.persistence", "AOF"))
    assert "snapshot" in message and "memorydb" in message and "MemoryDB" in message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("region", "mars-1", "aws:region: expected an AWS region"),
        ("account_ids", ["12345"], "aws:allowedAccountIds: expected a list of exactly one 12-digit AWS account id"),
        ("account_ids", None, "aws:allowedAccountIds: expected a list of exactly one 12-digit AWS account id"),
        ("account_ids", ["111111111111", "222222222222"], "aws:allowedAccountIds: expected a list of exactly one"),
    ],
)
def test_aws_settings_are_checked(key: str, value: Any, fragment: str) -> None:
    assert fragment in error_for(**{key: value})


def test_defaults_apply_when_keys_are_absent() -> None:
    def change(raw: dict[str, Any]) -> None:
        del raw["kms"], raw["logs"], raw["protect_stateful"]
        del raw["network"]["nat_gateways"], raw["network"]["az_count"]
        raw["model_pools"][0].pop("capacity_type", None)

    settings = parse("prod", change)
    assert settings.kms.deletion_window_days == 30
    assert settings.logs.retention_days == 90
    assert settings.protect_stateful is True
    assert settings.network.nat_gateways is NatMode.PER_AZ
    assert settings.model_pools[0].capacity_type is CapacityType.ON_DEMAND
    assert settings.model_pools[0].azs == settings.network.azs


def test_default_subnets_fit_the_vpc_and_do_not_overlap() -> None:
    import ipaddress

    net = parse("prod").network
    vpc = ipaddress.IPv4Network(net.cidr)
    subnets = [ipaddress.IPv4Network(s) for s in net.public_subnets + net.private_subnets]
    assert len(subnets) == 6
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1 :])


@pytest.mark.parametrize(
    ("text", "expected"), [("32GB", 32 * 1024**3), ("512mb", 512 * 1024**2), ("1g", 10**9), (1024, 1024)]
)
def test_maxmemory_units_follow_redis_conf(text: Any, expected: int) -> None:
    settings = parse("prod", set_path("redis.redis_config.maxmemory", text))
    assert settings.redis is not None and settings.redis.maxmemory_bytes == expected


def test_model_replicas_beyond_gpu_capacity_are_rejected() -> None:
    message = error_for(set_path("model_pools.1.server.max_replicas", 9))
    assert "agent-infra:model_pools[1].server.max_replicas: expected at most 3 (1 per node x 3 nodes at max_nodes)" in (
        message
    )


EDGE_CASES = [
    (
        set_path("api.routes.0.public_reason", DELETE),
        "agent-infra:api.routes[0].public",
        "expected an authoriser on every route",
    ),
    (set_path("api.usage_plans.0.burst", DELETE), "agent-infra:api.usage_plans[0].burst", "is required but missing"),
    (set_path("api.waf.rate_limit", 5), "agent-infra:api.waf.rate_limit", "expected at least 10 requests per window"),
    (set_path("api.waf.window", "90s"), "agent-infra:api.waf.window", "expected one of 60s, 120s, 300s or 600s"),
    (
        set_path("mesh.stream_timeout", "30s"),
        "agent-infra:mesh.stream_timeout",
        "shorter proxy timeouts cut streamed model responses",
    ),
    (set_path("mesh.model_providers", ["*.openai.com"]), "agent-infra:mesh.model_providers[0]", "no wildcards"),
    (
        set_path("model_gateway.models.0.fallbacks", ["gpt-4o", "gemini-pro"]),
        "agent-infra:model_gateway.models[0].fallbacks[1]",
        "expected a model pool or a cloud model",
    ),
    (
        set_path("model_gateway.cloud_models.0.provider", "acme"),
        "agent-infra:model_gateway.cloud_models[0].provider",
        "expected one of",
    ),
    (
        set_path("model_gateway.image", "ghcr.io/berriai/litellm:latest"),
        "agent-infra:model_gateway.image",
        "never latest",
    ),
    (
        set_path("redis", DELETE),
        "agent-infra:model_gateway",
        "expected agent-infra:redis when limits or budgets are set",
    ),
    (set_path("mesh", DELETE), "agent-infra:api", "expected agent-infra:mesh as well"),
    (
        set_path("observability.thresholds.execution_p95_ms", -1),
        "agent-infra:observability.thresholds.execution_p95_ms",
        "of at least 0",
    ),
    (
        set_path("observability.alarm_emails", ["oncall"]),
        "agent-infra:observability.alarm_emails[0]",
        "expected an e-mail address",
    ),
    (
        set_path("observability.thresholds.gpu_low_window", "soon"),
        "agent-infra:observability.thresholds.gpu_low_window",
        "a Prometheus duration",
    ),
]


@pytest.mark.parametrize(("change", "key", "fragment"), EDGE_CASES, ids=[c[1] + ":" + c[2][:20] for c in EDGE_CASES])
def test_invalid_edge_setting_names_key_and_problem(
    change: Callable[[dict[str, Any]], None], key: str, fragment: str
) -> None:
    message = error_for(change)
    assert re.search(rf"^  - {re.escape(key)}: .*{re.escape(fragment)}", message, re.MULTILINE), message


def test_edge_settings_parse_into_the_components_types() -> None:
    settings = parse("prod")
    assert settings.api is not None and settings.mesh is not None and settings.model_gateway is not None
    assert (
        settings.api.waf is not None and settings.api.waf.rate_limit == 2000 and settings.api.waf.window_seconds == 300
    )
    assert [r.path for r in settings.api.routes if r.streaming] == ["agents/{agent_id}/chat"]
    assert settings.mesh.stream_timeout_seconds == 900
    assert [m.pool for m in settings.model_gateway.models] == ["llama-70b", "llama-8b"]
    assert settings.model_gateway.agent_limits is not None and settings.model_gateway.agent_limits.rpm == 60
    assert parse("dev").api is not None and parse("dev").api.waf is None


def test_memorydb_is_a_real_choice_for_durable_state() -> None:
    kwargs = settings_inputs("prod")
    kwargs["raw"]["redis"].update(engine="memorydb", node_type="db.r7g.xlarge")
    redis = parse_settings(**kwargs).redis
    assert redis is not None and redis.engine == "memorydb"
    kwargs["raw"]["redis"]["node_type"] = "cache.r7g.xlarge"
    with pytest.raises(SettingsError, match=r"agent-infra:redis.node_type: expected a MemoryDB node type"):
        parse_settings(**kwargs)
