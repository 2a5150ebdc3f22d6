"""ElastiCache for Redis: agent session state, rate-limit counters, the tool-result cache and locks.

A replication group in cluster mode (or a single shard), Multi-AZ with automatic failover, encrypted
at rest with its own KMS key and in transit with TLS required, behind an AUTH token that is generated
here, stored in Secrets Manager with the same key, and never exported in clear. Only the client
security groups named in the Args reach port 6379.

Persistence is snapshots (or none); AOF is not offered by ElastiCache and is rejected by the settings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from agentinfra_policies.catalog import Catalog, Family, load_catalog

from . import iam
from .aws_env import AwsEnvironment
from .kms_key import EncryptionKey, EncryptionKeyArgs
from .naming import Naming
from .validation import Checker

PORT = 6379
#: Characters Redis AUTH accepts in a token besides letters and digits.
AUTH_TOKEN_SPECIALS = "!&#$^<>-"
#: Parameter group family of each supported engine major version.
PARAMETER_FAMILIES = {"6": "redis6.x", "7": "redis7"}
#: redis.conf ``maxmemory-policy`` values.
MEMORY_POLICIES = (
    "volatile-lru",
    "allkeys-lru",
    "volatile-lfu",
    "allkeys-lfu",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
)
_WINDOW = re.compile(r"^\d{2}:\d{2}-\d{2}:\d{2}$")
_WEEKLY_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):\d{2}:\d{2}-(mon|tue|wed|thu|fri|sat|sun):\d{2}:\d{2}$")


@dataclass(frozen=True)
class RedisCacheArgs:
    naming: Naming
    """Names of the replication group, its groups, secret and key alias."""
    env: AwsEnvironment
    """Account and region the key policy names."""
    vpc_id: pulumi.Input[str]
    """VPC of the cache's security group."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets, one per AZ, at least 2 for Multi-AZ."""
    node_type: str
    """ElastiCache node type, e.g. ``cache.r7g.large``; must hold ``maxmemory_bytes`` across the shards."""
    shards: int = 1
    """Node groups, 1-500 (cluster mode); 1 when ``cluster_mode`` is False. Default 1."""
    replicas_per_shard: int = 1
    """Replicas per node group, 0-5; at least 1 with ``multi_az``. Default 1."""
    cluster_mode: bool = True
    """Cluster mode enabled (sharded, configuration endpoint) or a single primary. Default True."""
    multi_az: bool = True
    """Replicas in other AZs with automatic failover. Default True."""
    memory_policy: str = "allkeys-lru"
    """``maxmemory-policy``, one of :data:`MEMORY_POLICIES` (default allkeys-lru)."""
    maxmemory_bytes: int | None = None
    """Total dataset across shards, in bytes; checked against the node type. None skips the check."""
    reserved_memory_percent: int = 25
    """``reserved-memory-percent`` (for backups and failover), 0-100; default 25, AWS's recommendation."""
    notify_keyspace_events: str | None = None
    """``notify-keyspace-events``, e.g. ``Ex`` for expiry events on locks; None leaves them off (default)."""
    client_security_group_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Security groups allowed to reach port 6379, by a stable label (e.g. ``{"workers": sg.id}``)."""
    engine_version: str = "7.1"
    """Pinned Redis engine version, ``<major>.<minor>`` with major 6 or 7 (default 7.1)."""
    snapshot_retention_limit: int = 7
    """Days of daily snapshots kept, 0-35; 0 turns snapshots off (persistence: none). Default 7."""
    snapshot_window: str = "03:00-04:00"
    """Daily UTC snapshot window ``hh:mm-hh:mm`` (default 03:00-04:00)."""
    maintenance_window: str = "sun:05:00-sun:06:00"
    """Weekly UTC maintenance window ``ddd:hh:mm-ddd:hh:mm`` (default sun:05:00-sun:06:00)."""
    auth_token_length: int = 64
    """Length of the generated AUTH token, 16-128 (default 64)."""
    engine: str = "elasticache"
    """``elasticache`` (Multi-AZ replicas, automatic failover, snapshots; default) or ``memorydb`` (Amazon MemoryDB:
    every acknowledged write is kept in a multi-AZ transaction log; node types ``db.*``). The seed's AOF is
    available on neither, and MemoryDB is the durable choice."""
    notification_topic_arn: pulumi.Input[str] | None = None
    """SNS topic for ElastiCache events (failover, maintenance); None for none (default)."""
    protect: bool = False
    """``protect`` and retain-on-delete on the replication group, key and secret. Default False."""

    @property
    def parameter_family(self) -> str:
        return PARAMETER_FAMILIES.get(self.engine_version.split(".")[0], "unknown")


class RedisCache(pulumi.ComponentResource):
    """An encrypted, Multi-AZ ElastiCache Redis replication group reachable only from named clients."""

    key: EncryptionKey
    """Encrypts the cache at rest and the AUTH token's secret."""
    replication_group: aws.elasticache.ReplicationGroup
    """The replication group."""
    parameter_group: aws.elasticache.ParameterGroup
    """Eviction policy, reserved memory, cluster mode."""
    security_group: aws.ec2.SecurityGroup
    """The cache's security group; more clients with :meth:`allow_client`."""
    security_group_id: pulumi.Output[str]
    """Its id."""
    auth_secret: aws.secretsmanager.Secret
    """Secrets Manager secret holding the AUTH token; grant clients ``secretsmanager:GetSecretValue`` and
    ``kms:Decrypt`` on :attr:`key`."""
    auth_secret_arn: pulumi.Output[str]
    """Its ARN."""
    endpoint: pulumi.Output[str]
    """Configuration endpoint in cluster mode, else the primary endpoint."""
    port: int
    """6379."""

    def __init__(self, name: str, args: RedisCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:cache:RedisCache", name, None, opts)
        _validate(name, args)
        self._naming, self._env, self._name = args.naming, args.env, name

        self.port = PORT
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)

        self.key = EncryptionKey(
            f"{name}-key",
            EncryptionKeyArgs(
                description=f"{args.naming.prefix}: Redis at rest and its AUTH token",
                env=args.env,
                alias=args.naming.name("redis"),
                protect=args.protect,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._build_network(name, args)
        self._build_auth(name, args, stateful)
        if args.engine == "memorydb":
            self._build_memorydb(name, args, stateful)
            return
        self.parameter_group = aws.elasticache.ParameterGroup(
            f"{name}-params",
            aws.elasticache.ParameterGroupArgs(
                # The family is part of the name: a major upgrade creates the new group before deleting the old.
                name=args.naming.name("redis", args.parameter_family.replace(".", "-")),
                family=args.parameter_family,
                description=f"{args.naming.prefix} Redis: eviction, reserved memory, cluster mode",
                parameters=[aws.elasticache.ParameterGroupParameterArgs(name=k, value=v) for k, v in _parameters(args)],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            aws.elasticache.SubnetGroupArgs(
                name=args.naming.name("redis"),
                description=f"{args.naming.prefix} Redis: private subnets",
                subnet_ids=args.subnet_ids,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            aws.elasticache.ReplicationGroupArgs(
                replication_group_id=args.naming.name("redis", max_length=40),
                description=f"{args.naming.prefix}: agent state, rate limits, tool-result cache, locks",
                engine="redis",
                engine_version=args.engine_version,
                node_type=args.node_type,
                port=PORT,
                parameter_group_name=self.parameter_group.name,
                subnet_group_name=subnet_group.name,
                security_group_ids=[self.security_group.id],
                cluster_mode="enabled" if args.cluster_mode else "disabled",
                # Cluster mode sizes by node groups; a single primary by its number of nodes.
                num_node_groups=args.shards if args.cluster_mode else None,
                replicas_per_node_group=args.replicas_per_shard if args.cluster_mode else None,
                num_cache_clusters=None if args.cluster_mode else 1 + args.replicas_per_shard,
                # ElastiCache requires automatic failover in cluster mode, even without replicas.
                automatic_failover_enabled=args.cluster_mode or args.replicas_per_shard >= 1,
                multi_az_enabled=args.multi_az,
                at_rest_encryption_enabled=True,
                kms_key_id=self.key.arn,
                transit_encryption_enabled=True,
                transit_encryption_mode="required",
                auth_token=self._password.result,
                snapshot_retention_limit=args.snapshot_retention_limit,
                snapshot_window=args.snapshot_window,
                maintenance_window=args.maintenance_window,
                final_snapshot_identifier=args.naming.name("redis", "final"),
                auto_minor_version_upgrade=True,
                apply_immediately=False,
                notification_topic_arn=args.notification_topic_arn,
                tags={"Name": args.naming.name("redis")},
            ),
            opts=stateful,
        )
        group = self.replication_group
        self.endpoint = group.configuration_endpoint_address if args.cluster_mode else group.primary_endpoint_address
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "port": self.port,
                "securityGroupId": self.security_group_id,
                "authSecretArn": self.auth_secret_arn,
                "keyArn": self.key.arn,
            }
        )

    def _build_memorydb(self, name: str, args: RedisCacheArgs, stateful: pulumi.ResourceOptions) -> None:
        """Amazon MemoryDB: the same key, network, AUTH secret and outputs, with a durable transaction log.

        MemoryDB authenticates through ACLs: one user whose password is the same RandomPassword the secret holds,
        allowed every command but the dangerous ones (FLUSHALL, CONFIG, DEBUG ...).
        """
        child = pulumi.ResourceOptions(parent=self)
        user = aws.memorydb.User(
            f"{name}-user",
            aws.memorydb.UserArgs(
                user_name=args.naming.name("agents"),
                access_string="on ~* &* +@all -@dangerous",
                authentication_mode=aws.memorydb.UserAuthenticationModeArgs(
                    type="password", passwords=[self._password.result]
                ),
            ),
            opts=child,
        )
        acl = aws.memorydb.Acl(
            f"{name}-acl", aws.memorydb.AclArgs(name=args.naming.name("redis"), user_names=[user.user_name]), opts=child
        )
        self.memorydb_parameter_group = aws.memorydb.ParameterGroup(
            f"{name}-params",
            aws.memorydb.ParameterGroupArgs(
                name=args.naming.name("memorydb", "redis7"),
                family="memorydb_redis7",
                description=f"{args.naming.prefix} MemoryDB: eviction policy",
                parameters=[
                    aws.memorydb.ParameterGroupParameterArgs(name="maxmemory-policy", value=args.memory_policy)
                ],
            ),
            opts=child,
        )
        subnets = aws.memorydb.SubnetGroup(
            f"{name}-subnets",
            aws.memorydb.SubnetGroupArgs(
                name=args.naming.name("redis"),
                description=f"{args.naming.prefix} MemoryDB: private subnets",
                subnet_ids=args.subnet_ids,
            ),
            opts=child,
        )
        self.memorydb_cluster = aws.memorydb.Cluster(
            f"{name}-memorydb",
            aws.memorydb.ClusterArgs(
                name=args.naming.name("redis", max_length=40),
                description=f"{args.naming.prefix}: agent state",
                node_type=args.node_type,
                num_shards=args.shards,
                num_replicas_per_shard=args.replicas_per_shard,
                acl_name=acl.name,
                tls_enabled=True,
                kms_key_arn=self.key.arn,
                security_group_ids=[self.security_group.id],
                subnet_group_name=subnets.name,
                parameter_group_name=self.memorydb_parameter_group.name,
                port=PORT,
                engine="redis",
                engine_version="7.1",
                auto_minor_version_upgrade=True,
                snapshot_retention_limit=args.snapshot_retention_limit,
                snapshot_window=args.snapshot_window,
                maintenance_window=args.maintenance_window,
                final_snapshot_name=args.naming.name("redis", "final"),
                sns_topic_arn=args.notification_topic_arn,
                tags={"Name": args.naming.name("redis")},
            ),
            opts=stateful,
        )
        self.endpoint = self.memorydb_cluster.cluster_endpoints[0].address
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "port": self.port,
                "securityGroupId": self.security_group_id,
                "authSecretArn": self.auth_secret_arn,
                "keyArn": self.key.arn,
            }
        )

    def _build_network(self, name: str, args: RedisCacheArgs) -> None:
        # No inline rules: clients are added as separate rules, now or later through allow_client, and
        # the provider removes AWS's default allow-all egress (a cache never opens connections).
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            aws.ec2.SecurityGroupArgs(
                vpc_id=args.vpc_id,
                description=f"{args.naming.prefix} Redis: port {PORT} from client security groups only",
                tags={"Name": args.naming.name("redis")},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.security_group_id = self.security_group.id
        for label, group_id in args.client_security_group_ids.items():
            self.allow_client(label, group_id)

    def grant_read_auth(self, role: aws.iam.Role, *, label: str) -> aws.iam.RolePolicy:
        """Let ``role`` read the AUTH token: the secret (by its name; Secrets Manager adds six random
        characters to the ARN) and ``kms:Decrypt`` on the cache key through Secrets Manager only."""
        env = self._env
        return iam.grant_policy(
            self,
            f"{self._name}-read-auth-{label}",
            role,
            iam.statement(
                "ReadAuthToken",
                ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                [env.arn("secretsmanager", f"secret:{self.auth_secret_name}-??????")],
            ),
            self.key.grant_statement(
                "DecryptAuthToken",
                ["kms:Decrypt"],
                {"StringEquals": {"kms:ViaService": f"secretsmanager.{env.region}.amazonaws.com"}},
            ),
        )

    def allow_client(self, label: str, security_group_id: pulumi.Input[str]) -> aws.vpc.SecurityGroupIngressRule:
        """Admit one more client security group on port 6379; ``label`` names the rule and must be stable."""
        return aws.vpc.SecurityGroupIngressRule(
            f"{self.pulumi_resource_name}-from-{label}",
            aws.vpc.SecurityGroupIngressRuleArgs(
                security_group_id=self.security_group.id,
                referenced_security_group_id=security_group_id,
                ip_protocol="tcp",
                from_port=PORT,
                to_port=PORT,
                description=f"Redis from {label}",
                tags={"Name": self._naming.name("redis", "from", label)},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _build_auth(self, name: str, args: RedisCacheArgs, stateful: pulumi.ResourceOptions) -> None:
        self._password = random.RandomPassword(
            f"{name}-auth-token",
            random.RandomPasswordArgs(
                length=args.auth_token_length,
                special=True,
                override_special=AUTH_TOKEN_SPECIALS,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.auth_secret_name = f"{args.naming.project}/{args.naming.environment}/redis/auth-token"
        self.auth_secret = aws.secretsmanager.Secret(
            f"{name}-auth",
            aws.secretsmanager.SecretArgs(
                name=self.auth_secret_name,
                description=f"{args.naming.prefix}: Redis AUTH token",
                kms_key_id=self.key.arn,
            ),
            opts=stateful,
        )
        # The result is a secret Output: it reaches state and the plan encrypted or redacted, never in clear.
        aws.secretsmanager.SecretVersion(
            f"{name}-auth",
            aws.secretsmanager.SecretVersionArgs(secret_id=self.auth_secret.id, secret_string=self._password.result),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.auth_secret_arn = self.auth_secret.arn


def _parameters(args: RedisCacheArgs) -> list[tuple[str, str]]:
    params = [
        ("maxmemory-policy", args.memory_policy),
        ("reserved-memory-percent", str(args.reserved_memory_percent)),
    ]
    if args.cluster_mode:
        params.append(("cluster-enabled", "yes"))
    if args.notify_keyspace_events:
        params.append(("notify-keyspace-events", args.notify_keyspace_events))
    return params


def required_node_memory(maxmemory_bytes: int, shards: int, reserved_percent: int = 25) -> int:
    """Node memory (bytes) each shard's node needs to hold its share of ``maxmemory_bytes`` once
    ``reserved_percent`` of it is set aside for backups and failover."""
    per_shard = maxmemory_bytes / shards
    return math.ceil(per_shard / (1 - reserved_percent / 100))


def check_node_fits(
    node_type: str,
    shards: int,
    maxmemory_bytes: int,
    catalog: Catalog,
    reserved_percent: int = 25,
    family: str = "elasticache",
) -> str | None:
    """None when ``shards`` nodes of ``node_type`` hold ``maxmemory_bytes``; otherwise why not, naming the
    catalog's node types that would, smallest first."""
    needed = required_node_memory(maxmemory_bytes, shards, reserved_percent)
    names = catalog.names(cast(Family, family))
    candidates = [t for t in (catalog.get(n) for n in names) if t is not None]
    fitting = [t.name for t in sorted(candidates, key=lambda t: t.memory_gib) if t.memory_gib * 1024**3 >= needed]
    spec = catalog.get(node_type)
    if spec is not None and spec.family == family and spec.memory_gib * 1024**3 >= needed:
        return None
    gib = maxmemory_bytes / 1024**3
    if spec is None or spec.family != family:
        problem = f"{node_type} is not a {family} node type in the catalog"
    else:
        usable = spec.memory_gib * (1 - reserved_percent / 100)
        problem = f"{shards} x {node_type} hold {usable * shards:.2f} GiB after {reserved_percent}% reserved memory"
    if not fitting:
        return f"{problem}, below maxmemory {gib:.2f} GiB; no catalog node type fits: add shards"
    return f"{problem}, below maxmemory {gib:.2f} GiB; node types that fit: {', '.join(fitting)}"


def _validate(name: str, args: RedisCacheArgs) -> None:
    checker = Checker(f"RedisCache {name}")
    checker.check("shards", args.shards, lambda v: 1 <= v <= 500, "1 to 500")
    if not args.cluster_mode:
        checker.check("shards", args.shards, lambda v: v == 1, "1 when cluster_mode is False")
    checker.check("replicas_per_shard", args.replicas_per_shard, lambda v: 0 <= v <= 5, "0 to 5")
    if args.multi_az:
        checker.check(
            "replicas_per_shard", args.replicas_per_shard, lambda v: v >= 1, "at least 1 when multi_az is True"
        )
    checker.check("engine", args.engine, lambda v: v in ("elasticache", "memorydb"), "elasticache or memorydb")
    checker.check("auth_token_length", args.auth_token_length, lambda v: 16 <= v <= 128, "16 to 128 characters")
    checker.check("memory_policy", args.memory_policy, lambda v: v in MEMORY_POLICIES, "a redis maxmemory-policy")
    checker.check(
        "engine_version",
        args.engine_version,
        lambda v: bool(re.fullmatch(r"\d+\.\d+", v)) and v.split(".")[0] in PARAMETER_FAMILIES,
        "a pinned <major>.<minor> version of Redis 6 or 7, e.g. 7.1",
    )
    checker.check("reserved_memory_percent", args.reserved_memory_percent, lambda v: 0 <= v <= 100, "0 to 100 percent")
    checker.check("snapshot_retention_limit", args.snapshot_retention_limit, lambda v: 0 <= v <= 35, "0 to 35 days")
    checker.check("snapshot_window", args.snapshot_window, lambda v: bool(_WINDOW.match(v)), "hh:mm-hh:mm (UTC)")
    checker.check(
        "maintenance_window",
        args.maintenance_window,
        lambda v: bool(_WEEKLY_WINDOW.match(v)),
        "ddd:hh:mm-ddd:hh:mm (UTC), e.g. sun:05:00-sun:06:00",
    )
    if args.maxmemory_bytes is not None:
        checker.check("maxmemory_bytes", args.maxmemory_bytes, lambda v: v > 0, "a positive number of bytes")
    if args.maxmemory_bytes and 1 <= args.shards <= 500 and 0 <= args.reserved_memory_percent < 100:
        problem = check_node_fits(
            args.node_type,
            args.shards,
            args.maxmemory_bytes,
            load_catalog(),
            args.reserved_memory_percent,
            family=args.engine,
        )
        checker.check("node_type", args.node_type, lambda _: problem is None, f"a node type that fits ({problem})")
    checker.done()
