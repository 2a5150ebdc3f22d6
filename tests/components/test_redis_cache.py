"""Redis: Multi-AZ failover, encryption at rest and in transit, a redacted AUTH token, clients by security group."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest
from agentinfra_policies.catalog import load_catalog
from helpers import by_name, record_component, resources_of

from components.aws_env import AwsEnvironment
from components.naming import Naming
from components.redis_cache import (
    AUTH_TOKEN_SPECIALS,
    RedisCache,
    RedisCacheArgs,
    check_node_fits,
    required_node_memory,
)
from components.validation import InputPropertiesError

GIB = 1024**3
SECRET = {"$secret": "redacted"}
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def _args(**changes: Any) -> RedisCacheArgs:
    base: dict[str, Any] = dict(
        naming=Naming("agent-infra", "test"),
        env=AwsEnvironment("123456789012", "eu-west-1"),
        vpc_id="vpc-0123",
        subnet_ids=["subnet-a", "subnet-b", "subnet-c"],
        node_type="cache.r7g.xlarge",
        shards=2,
        replicas_per_shard=2,
        maxmemory_bytes=32 * GIB,
        client_security_group_ids={"workers": "sg-workers"},
    )
    base.update(changes)
    return RedisCacheArgs(**base)


def _plan(**changes: Any) -> dict[str, Any]:
    return record_component(lambda: RedisCache("cache", _args(**changes)))


@pytest.fixture(scope="module")
def cache() -> dict[str, Any]:
    """The prod-like cache: 2 shards of cache.r7g.xlarge with 2 replicas each, protected."""
    return _plan(protect=True)


def test_cluster_mode_spreads_shards_with_replicas_and_fails_over_across_azs(cache: dict[str, Any]) -> None:
    group = by_name(cache, "cache-redis")["inputs"]
    assert group["clusterMode"] == "enabled"
    assert group["numNodeGroups"] == 2 and group["replicasPerNodeGroup"] == 2
    assert group["automaticFailoverEnabled"] is True and group["multiAzEnabled"] is True
    assert group["engine"] == "redis" and group["engineVersion"] == "7.1"
    assert group["port"] == 6379
    assert group["nodeType"] == "cache.r7g.xlarge"
    assert "numCacheClusters" not in group


def test_single_mode_has_one_shard_and_no_cluster_parameter() -> None:
    m = _plan(cluster_mode=False, shards=1, replicas_per_shard=1, maxmemory_bytes=4 * GIB)
    group = by_name(m, "cache-redis")["inputs"]
    assert group["clusterMode"] == "disabled"
    assert group["numCacheClusters"] == 2
    assert "numNodeGroups" not in group
    assert group["automaticFailoverEnabled"] is True and group["multiAzEnabled"] is True
    names = [p["name"] for p in by_name(m, "cache-params")["inputs"]["parameters"]]
    assert "cluster-enabled" not in names


def test_encrypted_at_rest_with_its_own_rotating_key_and_tls_required(cache: dict[str, Any]) -> None:
    group = by_name(cache, "cache-redis")
    key = by_name(cache, "cache-key-key")
    assert group["inputs"]["atRestEncryptionEnabled"] is True
    assert group["propertyDependencies"]["kmsKeyId"] == [key["urn"]]
    assert group["inputs"]["transitEncryptionEnabled"] is True
    assert group["inputs"]["transitEncryptionMode"] == "required"
    assert key["inputs"]["enableKeyRotation"] is True
    assert key["parent"] == by_name(cache, "cache-key")["urn"]
    # No service principal: ElastiCache and Secrets Manager use the key on the caller's IAM permissions.
    (statement,) = json.loads(key["inputs"]["policy"])["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}


def test_auth_token_is_generated_from_redis_safe_characters_and_wired_as_a_secret(cache: dict[str, Any]) -> None:
    password = by_name(cache, "cache-auth-token")
    assert password["type"] == "random:index/randomPassword:RandomPassword"
    assert password["inputs"] == {"length": 64, "special": True, "overrideSpecial": "!&#$^<>-"}
    assert AUTH_TOKEN_SPECIALS == "!&#$^<>-"

    (version,) = resources_of(cache, "aws:secretsmanager/secretVersion:SecretVersion")
    assert version["inputs"]["secretString"] == SECRET
    assert version["propertyDependencies"]["secretString"] == [password["urn"]]
    (secret,) = resources_of(cache, "aws:secretsmanager/secret:Secret")
    assert version["propertyDependencies"]["secretId"] == [secret["urn"]]
    assert secret["inputs"]["name"] == "agent-infra/test/redis/auth-token"
    assert secret["propertyDependencies"]["kmsKeyId"] == [by_name(cache, "cache-key-key")["urn"]]

    group = by_name(cache, "cache-redis")
    assert group["inputs"]["authToken"] == SECRET
    assert group["propertyDependencies"]["authToken"] == [password["urn"]]


def test_a_known_auth_token_never_reaches_the_manifest_in_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentinfra import engine

    token = "Plain-Token-0123456789-abcdefghij"
    original = engine.OfflineMocks.new_resource

    def with_password(self: Any, args: Any) -> tuple[str | None, dict]:
        resource_id, state = original(self, args)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state = {**state, "result": token}
        return resource_id, state

    monkeypatch.setattr(engine.OfflineMocks, "new_resource", with_password)

    def build() -> None:
        cache = RedisCache("cache", _args())
        # Proves the token really flowed into the replication group (the mock echoes inputs as state).
        pulumi.export("tokenLength", pulumi.Output.unsecret(cache.replication_group.auth_token).apply(len))

    m = record_component(build)
    assert m["outputs"]["tokenLength"] == len(token)
    assert token not in json.dumps(m)
    assert by_name(m, "cache-redis")["inputs"]["authToken"] == SECRET


def test_parameter_group_sets_eviction_reserved_memory_and_cluster_mode(cache: dict[str, Any]) -> None:
    params = by_name(cache, "cache-params")
    assert params["inputs"]["family"] == "redis7"
    values = {p["name"]: p["value"] for p in params["inputs"]["parameters"]}
    assert values == {"maxmemory-policy": "allkeys-lru", "reserved-memory-percent": "25", "cluster-enabled": "yes"}
    assert by_name(cache, "cache-redis")["propertyDependencies"]["parameterGroupName"] == [params["urn"]]


def test_keyspace_notifications_are_opt_in() -> None:
    m = _plan(notify_keyspace_events="Ex", memory_policy="volatile-ttl")
    values = {p["name"]: p["value"] for p in by_name(m, "cache-params")["inputs"]["parameters"]}
    assert values["notify-keyspace-events"] == "Ex"
    assert values["maxmemory-policy"] == "volatile-ttl"


def test_only_client_security_groups_reach_port_6379(cache: dict[str, Any]) -> None:
    sg = by_name(cache, "cache-sg")
    assert "ingress" not in sg["inputs"] and "egress" not in sg["inputs"]
    (rule,) = resources_of(cache, INGRESS)
    assert rule["inputs"]["referencedSecurityGroupId"] == "sg-workers"
    assert (rule["inputs"]["fromPort"], rule["inputs"]["toPort"], rule["inputs"]["ipProtocol"]) == (6379, 6379, "tcp")
    assert "cidrIpv4" not in rule["inputs"] and "cidrIpv6" not in rule["inputs"]
    assert rule["propertyDependencies"]["securityGroupId"] == [sg["urn"]]
    group = by_name(cache, "cache-redis")
    assert group["propertyDependencies"]["securityGroupIds"] == [sg["urn"]]
    subnets = by_name(cache, "cache-subnets")
    assert subnets["inputs"]["subnetIds"] == ["subnet-a", "subnet-b", "subnet-c"]
    assert group["propertyDependencies"]["subnetGroupName"] == [subnets["urn"]]


def test_allow_client_adds_a_rule_for_a_client_built_later() -> None:
    def build() -> None:
        cache = RedisCache("cache", _args(client_security_group_ids={}))
        cache.allow_client("model-servers", "sg-models")

    (rule,) = resources_of(record_component(build), INGRESS)
    assert rule["name"] == "cache-from-model-servers"
    assert rule["inputs"]["referencedSecurityGroupId"] == "sg-models"


def test_snapshots_maintenance_and_upgrades(cache: dict[str, Any]) -> None:
    group = by_name(cache, "cache-redis")["inputs"]
    assert group["snapshotRetentionLimit"] == 7
    assert group["snapshotWindow"] == "03:00-04:00"
    assert group["maintenanceWindow"] == "sun:05:00-sun:06:00"
    assert group["finalSnapshotIdentifier"] == "agent-infra-test-redis-final"
    assert group["autoMinorVersionUpgrade"] is True and group["applyImmediately"] is False
    assert group["replicationGroupId"] == "agent-infra-test-redis"


def test_persistence_none_turns_snapshots_off() -> None:
    assert by_name(_plan(snapshot_retention_limit=0), "cache-redis")["inputs"]["snapshotRetentionLimit"] == 0


@pytest.mark.parametrize("type_", [GROUP, "aws:kms/key:Key", "aws:secretsmanager/secret:Secret"])
def test_stateful_resources_are_protected_and_retained(cache: dict[str, Any], type_: str) -> None:
    (resource,) = resources_of(cache, type_)
    assert resource["options"]["protect"] is True and resource["options"]["retainOnDelete"] is True


def test_unprotected_when_not_asked() -> None:
    m = _plan()
    assert "protect" not in by_name(m, "cache-redis")["options"]


def test_component_manifest_passes_the_policy_gate(cache: dict[str, Any]) -> None:
    from agentinfra.gate import evaluate

    result = evaluate(cache, {"all": "mandatory", "required-tags": "disabled", "protect-stateful": "disabled"})
    # Neither violations nor rules that could not run: the key policy is known in a preview.
    assert result.findings == []
    assert result.rules_evaluated > 0


def test_required_node_memory_leaves_the_reserved_share() -> None:
    assert required_node_memory(30 * GIB, 2) == 20 * GIB
    assert required_node_memory(8 * GIB, 1, reserved_percent=50) == 16 * GIB


def test_check_node_fits_names_the_types_that_would_fit_smallest_first() -> None:
    catalog = load_catalog()
    assert check_node_fits("cache.r7g.xlarge", 2, 32 * GIB, catalog) is None
    message = check_node_fits("cache.r7g.large", 2, 32 * GIB, catalog)
    assert message is not None
    # 16 GiB per shard needs 21.33 GiB of node memory.
    assert message.endswith(
        "node types that fit: cache.m7g.2xlarge, cache.r7g.xlarge, cache.r7g.2xlarge, cache.r7g.4xlarge, "
        "cache.r7g.8xlarge"
    )
    assert "2 x cache.r7g.large hold 19.61 GiB" in message
    assert "no catalog node type fits" in (check_node_fits("cache.r7g.large", 1, 1000 * GIB, catalog) or "")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"replicas_per_shard": 0}, "replicas_per_shard: expected at least 1 when multi_az is True, found 0"),
        ({"shards": 0}, "shards: expected 1 to 500, found 0"),
        ({"shards": 501}, "shards: expected 1 to 500, found 501"),
        ({"cluster_mode": False, "shards": 2}, "shards: expected 1 when cluster_mode is False, found 2"),
        ({"replicas_per_shard": 6}, "replicas_per_shard: expected 0 to 5, found 6"),
        ({"auth_token_length": 15}, "auth_token_length: expected 16 to 128 characters, found 15"),
        ({"auth_token_length": 129}, "auth_token_length: expected 16 to 128 characters, found 129"),
        ({"memory_policy": "lru"}, "memory_policy: expected a redis maxmemory-policy, found 'lru'"),
        ({"engine_version": "7"}, "engine_version: expected a pinned <major>.<minor> version"),
        ({"snapshot_retention_limit": 36}, "snapshot_retention_limit: expected 0 to 35 days, found 36"),
        ({"maintenance_window": "sunday 5am"}, "maintenance_window: expected ddd:hh:mm-ddd:hh:mm"),
        (
            {"node_type": "cache.t4g.medium"},
            "node_type: expected a node type that fits (2 x cache.t4g.medium hold 4.63 GiB after 25% reserved "
            "memory, below maxmemory 32.00 GiB; node types that fit: cache.m7g.2xlarge, cache.r7g.xlarge",
        ),
    ],
)
def test_component_rejects_invalid_args(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputPropertiesError, match=re.escape(fragment)):
        _plan(**changes)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InputPropertiesError) as error:
        _plan(replicas_per_shard=0, shards=600, auth_token_length=8)
    fields = [p.split(":", 1)[0] for p in error.value.problems]
    assert fields == ["shards", "replicas_per_shard", "auth_token_length"]


def test_memorydb_engine_builds_a_durable_encrypted_cluster_with_an_acl() -> None:
    m = _plan(engine="memorydb", node_type="db.r7g.xlarge")
    assert resources_of(m, "aws:elasticache/replicationGroup:ReplicationGroup") == []
    (cluster,) = resources_of(m, "aws:memorydb/cluster:Cluster")
    inputs = cluster["inputs"]
    assert inputs["tlsEnabled"] is True and inputs["nodeType"] == "db.r7g.xlarge"
    assert (inputs["numShards"], inputs["numReplicasPerShard"]) == (2, 2)
    assert cluster["propertyDependencies"]["kmsKeyArn"] == [by_name(m, "cache-key-key")["urn"]]
    (user,) = resources_of(m, "aws:memorydb/user:User")
    # The RandomPassword's result: unknown in a new stack's preview, never a plaintext value.
    (password,) = user["inputs"]["authenticationMode"]["passwords"]
    assert password in (SECRET, {"$unknown": True})
    assert user["propertyDependencies"]["authenticationMode"] == [by_name(m, "cache-auth-token")["urn"]]
    assert "-@dangerous" in user["inputs"]["accessString"]
    assert inputs["aclName"] == "agent-infra-test-redis"
    from agentinfra.gate import evaluate

    result = evaluate(
        m,
        {
            "all": "disabled",
            "cache-encryption": "mandatory",
            "cache-auth": "mandatory",
            "cache-multi-az-failover": "mandatory",
            "cache-snapshots": "mandatory",
        },
    )
    assert result.findings == []


def test_memorydb_needs_a_memorydb_node_type() -> None:
    with pytest.raises(InputPropertiesError, match="is not a memorydb node type in the catalog"):
        _plan(engine="memorydb", node_type="cache.r7g.xlarge")
