"""What one environment survives: capacity left after losing any one AZ, single points of failure, RPO and RTO.

Read from the plan manifest only (no cloud calls). Availability zones are found the way a policy rule finds
them: through property dependencies to ``aws:ec2/subnet:Subnet`` resources and their ``availabilityZone``
input, because ids and ARNs are unknown in a preview.

Tiers, by ``kind``:

* ``gpu`` / ``nodes``: EKS node groups, grouped by their parent component (one model pool, or the system
  node group). Per-AZ node groups: losing an AZ removes that AZ's share of max capacity. A group spanning
  several AZs relaunches its nodes in the others, so its max stays reachable.
* ``workers``: ``aws:autoscaling/group:Group`` (worker pools), grouped the same way.
* ``redis``: ElastiCache replication groups: survive an AZ loss with replicas >= 1, automatic failover and
  Multi-AZ over subnets in >= 2 AZs.
* ``nat``: which private subnets lose egress when the AZ of their NAT gateway goes.
* ``endpoints``: interface VPC endpoints (private DNS points every AZ at them).
* ``api``: API Gateway REST and HTTP APIs (regional, AWS runs them across AZs).
* ``mesh``: the Istio ingress gateway (Helm chart ``gateway``): replicas, autoscaling, zone spread.
* ``s3``, ``sqs``: regional services; they never fail with one AZ. S3 counts for region-level RPO.

RPO and RTO, per kind (each value carries its basis, shown in the report):

* RPO: ``redis`` the replication group is lost (restore the newest daily snapshot); ``s3`` the region is
  lost (a cross-region replica: 15 minutes with S3 Replication Time Control's SLA, and we *assume* the same
  15 minutes without RTC, where AWS says only "most objects within 15 minutes", with no SLA); ``sqs`` an AZ
  is lost (nothing: messages are stored across AZs). Stateless tiers have no RPO.
* RTO: the time to serve again after one AZ is lost: 0 where the other AZs keep serving, 2 minutes for an
  ElastiCache Multi-AZ failover (AWS documents one to two minutes), unbounded where a person must act.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STACK_TYPE = "pulumi:pulumi:Stack"
SUBNET = "aws:ec2/subnet:Subnet"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
CACHE_SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
REST_API = "aws:apigateway/restApi:RestApi"
REST_STAGE = "aws:apigateway/stage:Stage"
HTTP_API = "aws:apigatewayv2/api:Api"
HTTP_STAGE = "aws:apigatewayv2/stage:Stage"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
BUCKET_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
QUEUE = "aws:sqs/queue:Queue"

#: Every tier kind, in report order. Target keys may name a kind, a top-level component, or ``kind:component``.
TIER_KINDS = ("gpu", "nodes", "workers", "redis", "nat", "endpoints", "api", "mesh", "s3", "sqs")

#: Helm charts that are an Istio ingress gateway.
GATEWAY_CHARTS = ("gateway", "istio-ingressgateway")
#: The istio/gateway chart's own defaults (its values.yaml): autoscaling on, 1 to 5 replicas; replicaCount 1.
GATEWAY_AUTOSCALING_DEFAULT, GATEWAY_MIN_REPLICAS_DEFAULT, GATEWAY_MAX_REPLICAS_DEFAULT = True, 1, 5

ELASTICACHE_FAILOVER_MINUTES = 2.0
"""AWS documents an ElastiCache Multi-AZ failover as taking one to two minutes; we take the upper end."""
SNAPSHOT_INTERVAL_MINUTES = 24 * 60.0
"""ElastiCache automatic snapshots are daily: up to 24 hours of writes are lost when restoring one."""
S3_REPLICATION_MINUTES = 15.0
"""S3 RTC: 99.99% of objects within 15 minutes (SLA). Without RTC AWS says "most objects within 15 minutes"
with no SLA; we assume the same 15 minutes and say so in the basis."""
POD_RESCHEDULE_MINUTES = 5.0
"""An estimate: a single gateway pod rescheduled onto a node in another AZ, pulled and ready."""


# -- reading the manifest -------------------------------------------------------------------------------------


_AZ = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d[a-z]")


def _is_plain_str(value: Any) -> bool:
    return isinstance(value, str)


class ManifestIndex:
    """Look-ups over one manifest: resources by URN and type, top-level components, AZs through subnets."""

    def __init__(self, manifest: Mapping[str, Any]):
        self.manifest = manifest
        self.resources: list[dict[str, Any]] = list(manifest.get("resources") or [])
        self.by_urn = {r["urn"]: r for r in self.resources}
        self.root = next((r["urn"] for r in self.resources if r["type"] == STACK_TYPE), None)
        self._children: dict[str | None, list[dict[str, Any]]] = {}
        for r in self.resources:
            self._children.setdefault(r.get("parent"), []).append(r)

    @property
    def environment(self) -> str:
        return str(self.manifest.get("stack", "?"))

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] in types]

    def children(self, urn: str) -> list[dict[str, Any]]:
        return self._children.get(urn, [])

    def deps(self, resource: Mapping[str, Any], *props: str) -> list[dict[str, Any]]:
        """The resources named in ``propertyDependencies`` of the given input properties."""
        pd = resource.get("propertyDependencies") or {}
        found: list[dict[str, Any]] = []
        for prop in props:
            for urn in pd.get(prop) or ():
                target = self.by_urn.get(urn)
                if target is not None and target not in found:
                    found.append(target)
        return found

    def top_component(self, resource: Mapping[str, Any]) -> Mapping[str, Any]:
        """The ancestor whose parent is the root stack (the resource itself when it sits under the stack)."""
        current = resource
        seen = set()
        while current.get("parent") and current["parent"] != self.root and current["parent"] in self.by_urn:
            if current["urn"] in seen:  # a malformed manifest with a parent cycle
                break
            seen.add(current["urn"])
            current = self.by_urn[current["parent"]]
        return current

    def component_name(self, resource: Mapping[str, Any]) -> str:
        return str(self.top_component(resource)["name"])

    def parent(self, resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
        parent = resource.get("parent")
        return self.by_urn.get(parent) if parent else None

    def subnet_az(self, subnet: Mapping[str, Any]) -> str | None:
        az = (subnet.get("inputs") or {}).get("availabilityZone")
        return az if _is_plain_str(az) else None

    def azs(self, resource: Mapping[str, Any], *props: str) -> tuple[str, ...] | None:
        """AZs of the subnets (or ElastiCache subnet groups) a resource names through ``props``.

        Plain AZ names given directly (``availabilityZones``) count too. None when nothing resolves.
        """
        found: set[str] = set()
        resolved = False
        for target in self.deps(resource, *props):
            if target["type"] == SUBNET:
                az = self.subnet_az(target)
                if az:
                    found.add(az)
                    resolved = True
            elif target["type"] == CACHE_SUBNET_GROUP:
                inner = self.azs(target, "subnetIds")
                if inner is not None:
                    found.update(inner)
                    resolved = True
        inputs = resource.get("inputs") or {}
        for prop in props:
            value = inputs.get(prop)
            if isinstance(value, list) and value and all(_is_plain_str(v) and _AZ.fullmatch(v) for v in value):
                found.update(value)
                resolved = True
        return tuple(sorted(found)) if resolved else None

    def all_azs(self) -> tuple[str, ...]:
        azs = {az for s in self.of_type(SUBNET) if (az := self.subnet_az(s))}
        outputs = self.manifest.get("outputs") or {}
        if isinstance(outputs.get("azs"), list):
            azs.update(a for a in outputs["azs"] if _is_plain_str(a))
        return tuple(sorted(azs))

    def region(self) -> str | None:
        for provider in self.of_type("pulumi:providers:aws"):
            region = (provider.get("inputs") or {}).get("region")
            if _is_plain_str(region):
                return str(region)
        return None


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# -- the report -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """An RPO or RTO: minutes (None when unbounded: nothing recovers it), with the basis of the figure."""

    minutes: float | None
    basis: str
    applicable: bool = True

    def render(self) -> str:
        if not self.applicable:
            return "n/a"
        if self.minutes is None:
            return "unbounded"
        if self.minutes == 0:
            return "0"
        if self.minutes < 1:
            return "seconds"
        return f"{self.minutes:g} min"

    def to_json(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "bounded": self.minutes is not None,
            "applicable": self.applicable,
            "basis": self.basis,
        }


NOT_APPLICABLE = Objective(0.0, "stateless: nothing to recover", applicable=False)


@dataclass(frozen=True)
class Tier:
    """One tier instance (a pool, a cache, the NAT layout of a network...) and what one AZ loss does to it."""

    kind: str
    """One of :data:`TIER_KINDS`."""
    name: str
    """The top-level component (or resource) name, e.g. ``gpu-llama-8b`` or ``network``."""
    azs: tuple[str, ...]
    """AZs the tier runs in; () when they could not be resolved (unknown, or regional)."""
    detail: str
    """What it is, in one line (sizes, replicas, NAT layout)."""
    capacity_after_loss: Mapping[str, float] = field(default_factory=dict)
    """Fraction of capacity left, by the AZ that is lost; empty when not applicable."""
    spof: str | None = None
    """Why the tier is a single point of failure (naming the AZ), or None."""
    rpo: Objective = NOT_APPLICABLE
    rto: Objective = field(default_factory=lambda: Objective(0.0, "the other AZs keep serving"))
    warnings: tuple[str, ...] = ()
    """Weaknesses that are not a single point of failure (e.g. replicas that may share an AZ)."""

    @property
    def worst(self) -> tuple[str | None, float | None]:
        """The AZ whose loss hurts most and the capacity fraction it leaves."""
        if not self.capacity_after_loss:
            return None, None
        az = min(sorted(self.capacity_after_loss), key=lambda a: self.capacity_after_loss[a])
        return az, self.capacity_after_loss[az]

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"

    def to_json(self) -> dict[str, Any]:
        az, left = self.worst
        return {
            "kind": self.kind,
            "name": self.name,
            "azs": list(self.azs),
            "detail": self.detail,
            "capacityAfterAzLoss": dict(sorted(self.capacity_after_loss.items())),
            "worstAz": az,
            "worstCapacity": left,
            "singlePointOfFailure": self.spof,
            "rpo": self.rpo.to_json(),
            "rto": self.rto.to_json(),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Finding:
    """One target checked against one tier: met or missed, with the message a reviewer reads."""

    target: str
    """``single-point-of-failure``, ``capacity``, ``rpo`` or ``rto``."""
    tier: str
    """``kind:name`` of the tier."""
    met: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "tier": self.tier, "met": self.met, "message": self.message}


@dataclass(frozen=True)
class ResilienceReport:
    environment: str
    azs: tuple[str, ...]
    tiers: tuple[Tier, ...]
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    targets_source: str | None = None
    """Where the targets came from; None when there were none (report only)."""

    @property
    def passed(self) -> bool:
        return all(f.met for f in self.findings)

    @property
    def missed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.met)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "azs": list(self.azs),
            "tiers": [t.to_json() for t in self.tiers],
            "singlePointsOfFailure": [{"tier": t.label, "message": t.spof} for t in self.tiers if t.spof],
            "findings": [f.to_json() for f in self.findings],
            "targets": self.targets_source,
            "passed": self.passed,
            "notes": list(self.notes),
        }


# -- analysis -------------------------------------------------------------------------------------------------


def analyse(manifest: Mapping[str, Any]) -> ResilienceReport:
    """Every tier of the plan and what losing each AZ does to it (no targets: see :func:`evaluate`)."""
    index = ManifestIndex(manifest)
    env_azs = index.all_azs()
    tiers: list[Tier] = []
    notes: list[str] = []
    tiers += _scaling_pools(index, env_azs)
    tiers += _redis(index, env_azs)
    tiers += _nat(index)
    tiers += _endpoints(index)
    tiers += _apis(index)
    tiers += _mesh(index, env_azs)
    tiers += _buckets(index)
    tiers += _queues(index)
    if index.of_type("aws:eks/cluster:Cluster"):
        notes.append("EKS control plane: AWS runs it across three AZs of the region; not an AZ point of failure")
    present = {t.kind for t in tiers}
    absent = [k for k in ("workers", "api", "mesh") if k not in present]
    if absent:
        notes.append(f"not in this plan: {', '.join(absent)} (nothing to analyse)")
    order = {k: i for i, k in enumerate(TIER_KINDS)}
    tiers.sort(key=lambda t: (order[t.kind], t.name))
    return ResilienceReport(index.environment, env_azs, tuple(tiers), notes=tuple(notes))


@dataclass
class _Group:
    """One node group or ASG: where it runs and how big it may be."""

    name: str
    azs: tuple[str, ...] | None
    min: int
    desired: int
    max: int
    weight: float
    """Capacity of one instance: GPUs for GPU types, else vCPUs (1 when the type is unknown)."""


def _instance_weight(itype: str | None, *, gpu: bool) -> float:
    from agentinfra_policies.catalog import load_catalog

    spec = load_catalog().get(itype) if itype else None
    if spec is None:
        return 1.0
    return float(spec.gpus if gpu and spec.gpus else spec.vcpu)


def node_group_instance_type(index: ManifestIndex, group: Mapping[str, Any]) -> str | None:
    """The instance type of an EKS node group or ASG: its first listed type, else its launch template's."""
    inputs = group.get("inputs") or {}
    types = inputs.get("instanceTypes")
    if isinstance(types, list) and types and _is_plain_str(types[0]):
        return str(types[0])
    mixed = inputs.get("mixedInstancesPolicy") or {}
    overrides = ((mixed.get("launchTemplate") or {}).get("overrides")) if isinstance(mixed, dict) else None
    if isinstance(overrides, list):
        for o in overrides:
            if isinstance(o, dict) and _is_plain_str(o.get("instanceType")):
                return str(o["instanceType"])
    if _is_plain_str(inputs.get("instanceType")):
        return str(inputs["instanceType"])
    for lt in index.deps(group, "launchTemplate", "mixedInstancesPolicy"):
        if lt["type"] == LAUNCH_TEMPLATE and _is_plain_str((lt.get("inputs") or {}).get("instanceType")):
            return str(lt["inputs"]["instanceType"])
    return None


def is_gpu_group(index: ManifestIndex, group: Mapping[str, Any]) -> bool:
    from agentinfra_policies.catalog import load_catalog

    inputs = group.get("inputs") or {}
    ami = str(inputs.get("amiType") or "")
    if "NVIDIA" in ami or "GPU" in ami:
        return True
    labels = inputs.get("labels") or {}
    if isinstance(labels, dict) and labels.get("nvidia.com/gpu.present") == "true":
        return True
    spec = load_catalog().get(node_group_instance_type(index, group) or "")
    return bool(spec and spec.has_gpu)


def group_sizes(group: Mapping[str, Any]) -> tuple[int, int, int]:
    """(min, desired, max) of an EKS node group (``scalingConfig``) or an ASG (``minSize`` ...)."""
    inputs = group.get("inputs") or {}
    if group["type"] == NODE_GROUP:
        sc = inputs.get("scalingConfig") or {}
        lo, hi = _int(sc.get("minSize")), _int(sc.get("maxSize"))
        return lo, _int(sc.get("desiredSize"), lo), hi
    lo, hi = _int(inputs.get("minSize")), _int(inputs.get("maxSize"))
    return lo, _int(inputs.get("desiredCapacity"), lo), hi


def _scaling_pools(index: ManifestIndex, env_azs: tuple[str, ...]) -> list[Tier]:
    pools: dict[tuple[str, str], list[_Group]] = {}
    for res in index.of_type(NODE_GROUP, ASG):
        if res["type"] == NODE_GROUP:
            kind = "gpu" if is_gpu_group(index, res) else "nodes"
            azs = index.azs(res, "subnetIds")
        else:
            kind = "workers"
            azs = index.azs(res, "vpcZoneIdentifiers", "availabilityZones")
        lo, desired, hi = group_sizes(res)
        weight = _instance_weight(node_group_instance_type(index, res), gpu=kind == "gpu")
        parent = index.parent(res)
        # One pool = the node groups of one parent component (a model pool's per-AZ groups).
        owner = str(parent["name"]) if parent and parent["type"] != STACK_TYPE else str(res["name"])
        pools.setdefault((kind, owner), []).append(_Group(res["name"], azs, lo, desired, hi, weight))
    return [_pool_tier(kind, owner, groups, env_azs) for (kind, owner), groups in sorted(pools.items())]


def _pool_tier(kind: str, owner: str, groups: list[_Group], env_azs: tuple[str, ...]) -> Tier:
    what = {"gpu": "GPU pool", "nodes": "node group", "workers": "worker pool"}[kind]
    total = sum(g.max * g.weight for g in groups)
    azs = tuple(sorted({a for g in groups for a in (g.azs or ())}))
    unknown = [g.name for g in groups if g.azs is None]
    sizes = ", ".join(f"{g.name} {'/'.join(g.azs or ('?',))} {g.min}-{g.max}" for g in groups)
    detail = f"{len(groups)} group{'s' if len(groups) > 1 else ''}: {sizes}"
    warnings = tuple(f"AZs of {n} could not be resolved from the plan" for n in unknown)
    if total <= 0:
        return Tier(kind, owner, azs, f"{detail} (max 0: no capacity to lose)", warnings=warnings)
    capacity: dict[str, float] = {}
    for az in azs or env_azs:
        left = sum(g.max * g.weight for g in groups if g.azs is None or set(g.azs) - {az})
        capacity[az] = left / total
    spof = None
    if len(azs) == 1 and not unknown:
        only = azs[0]
        spof = f"{kind}: {what} {owner} runs only in {only}: losing {only} leaves no capacity"
    nodes_total = sum(g.max for g in groups)
    worst_az = min(sorted(capacity), key=lambda a: capacity[a]) if capacity else None
    if worst_az is not None and spof is None:
        left_nodes = sum(g.max for g in groups if g.azs is None or set(g.azs) - {worst_az})
        detail += f"; losing {worst_az} leaves max {left_nodes} of {nodes_total} nodes"
    rto = (
        Objective(None, f"the pool exists in {azs[0]} only: serving again needs a config change")
        if spof
        else Objective(0.0, "the other AZs keep serving; the autoscaler adds nodes there up to max")
    )
    return Tier(kind, owner, azs, detail, capacity, spof, NOT_APPLICABLE, rto, warnings)


def _redis(index: ManifestIndex, env_azs: tuple[str, ...]) -> list[Tier]:
    tiers = []
    for group in index.of_type(REPLICATION_GROUP):
        tiers.append(_replication_group(index, group))
    for cluster in index.of_type(CACHE_CLUSTER):
        inputs = cluster.get("inputs") or {}
        if inputs.get("replicationGroupId") or "replicationGroupId" in (cluster.get("propertyDependencies") or {}):
            continue  # a member of a replication group, analysed with it
        azs = index.azs(cluster, "subnetGroupName") or ()
        where = f" in {azs[0]}" if len(azs) == 1 else ""
        nodes = _int(inputs.get("numCacheNodes"), 1)
        spof = f"redis: cache cluster {cluster['name']} has no replicas: losing the AZ of its node{where} loses it"
        tiers.append(
            Tier(
                "redis",
                index.component_name(cluster),
                azs,
                f"{cluster['name']}: {nodes} node(s), no replication",
                {az: 0.0 for az in azs or env_azs},
                spof,
                Objective(None, "a single cache cluster: no snapshot-based recovery is modelled"),
                Objective(None, "manual: replace the node"),
            )
        )
    return tiers


def _replication_group(index: ManifestIndex, group: Mapping[str, Any]) -> Tier:
    inputs = group.get("inputs") or {}
    shards = max(1, _int(inputs.get("numNodeGroups"), 1))
    if "replicasPerNodeGroup" in inputs:
        replicas = _int(inputs.get("replicasPerNodeGroup"))
    else:
        replicas = max(0, _int(inputs.get("numCacheClusters"), 1) - 1)
    failover = _flag(inputs.get("automaticFailoverEnabled"))
    multi_az = _flag(inputs.get("multiAzEnabled"))
    azs = index.azs(group, "subnetGroupName", "preferredCacheClusterAzs") or ()
    retention = _int(inputs.get("snapshotRetentionLimit"))
    name = index.component_name(group)
    detail = (
        f"{group['name']}: {shards} shard(s) x (1 primary + {replicas} replica(s)) {inputs.get('nodeType', '?')}, "
        f"automatic failover {'on' if failover else 'off'}, Multi-AZ {'on' if multi_az else 'off'}, "
        f"subnets in {len(azs) or '?'} AZ(s), snapshots kept {retention} day(s)"
    )
    # Unresolved subnet AZs make no claim either way; one AZ is a single point of failure whatever the replicas.
    survives = replicas >= 1 and failover and multi_az and len(azs) != 1
    spof = None
    if survives:
        capacity = {az: 1.0 for az in azs}
    else:
        lost_shards = shards if len(azs) <= 1 else math.ceil(shards / len(azs))
        capacity = {az: 1 - lost_shards / shards for az in azs}
        reasons = [
            reason
            for reason, on in (
                ("no replicas", replicas == 0),
                ("automatic failover off", replicas > 0 and not failover),
                ("Multi-AZ off", replicas > 0 and not multi_az),
                (f"every node in {azs[0] if azs else '?'}", len(azs) == 1),
            )
            if on
        ]
        place = f"losing {azs[0]}" if len(azs) == 1 else "losing the AZ of a shard's primary"
        spof = f"redis: {place} leaves its shard unavailable ({'; '.join(reasons)})"
    if retention > 0:
        rpo = Objective(
            SNAPSHOT_INTERVAL_MINUTES,
            f"replication group lost: restore the newest daily snapshot (kept {retention} day(s)); "
            + (
                "an AZ loss alone loses only seconds of writes (asynchronous replication)"
                if survives
                else "no Multi-AZ replica to fail over to"
            ),
        )
    else:
        rpo = Objective(None, "no automatic snapshots (snapshotRetentionLimit 0): data is lost with the group")
    rto = (
        Objective(ELASTICACHE_FAILOVER_MINUTES, "automatic Multi-AZ failover: 1-2 minutes as AWS documents")
        if survives
        else Objective(None, "manual: replace the node and restore a snapshot")
    )
    return Tier("redis", name, azs, detail, capacity, spof, rpo, rto)


def _nat(index: ManifestIndex) -> list[Tier]:
    nats = index.of_type(NAT_GATEWAY)
    if not nats:
        return []
    nat_az = {n["urn"]: (index.azs(n, "subnetId") or (None,))[0] for n in nats}
    table_nats: dict[str, set[str]] = {}
    for route in index.of_type(ROUTE):
        targets = [d["urn"] for d in index.deps(route, "natGatewayId") if d["type"] == NAT_GATEWAY]
        for table in index.deps(route, "routeTableId"):
            table_nats.setdefault(table["urn"], set()).update(targets)
    for table in index.of_type(ROUTE_TABLE):
        inline = [d["urn"] for d in index.deps(table, "routes") if d["type"] == NAT_GATEWAY]
        if inline:
            table_nats.setdefault(table["urn"], set()).update(inline)
    by_component: dict[str, list[tuple[str, set[str]]]] = {}  # component -> [(subnet AZ, NAT urns)]
    for assoc in index.of_type(ROUTE_TABLE_ASSOCIATION):
        tables = [t for t in index.deps(assoc, "routeTableId") if t["urn"] in table_nats]
        for table in tables:
            for subnet in index.deps(assoc, "subnetId"):
                az = index.subnet_az(subnet)
                if az and table_nats[table["urn"]]:
                    by_component.setdefault(index.component_name(subnet), []).append((az, table_nats[table["urn"]]))
    tiers = []
    for component, subnets in sorted(by_component.items()):
        used = sorted({n for _, ns in subnets for n in ns})
        azs = tuple(sorted({a for a, _ in subnets}))
        capacity: dict[str, float] = {}
        worst: tuple[str, list[str]] | None = None
        for lost in azs:
            survivors = [(a, ns) for a, ns in subnets if a != lost]
            cut = sorted({a for a, ns in survivors if all(nat_az.get(n) == lost for n in ns)})
            capacity[lost] = 1 - len([s for s in survivors if s[0] in cut]) / len(survivors) if survivors else 1.0
            if cut and (worst is None or len(cut) > len(worst[1])):
                worst = (lost, cut)
        layout = "single NAT gateway" if len(used) == 1 else f"{len(used)} NAT gateways"
        detail = f"{layout} for private subnets in {', '.join(azs)}"
        spof = None
        rto = Objective(0.0, "each AZ's private subnets use the NAT gateway of their own AZ")
        if worst is not None:
            lost, cut = worst
            why = (
                f"single NAT gateway {index.by_urn[used[0]]['name']}"
                if len(used) == 1
                else f"their NAT gateway is in {lost}"
            )
            spof = f"nat: losing {lost} leaves no egress for private subnets in {', '.join(cut)} ({why})"
            rto = Objective(None, "manual: create a NAT gateway in a surviving AZ and re-point the routes")
        tiers.append(Tier("nat", component, azs, detail, capacity, spof, NOT_APPLICABLE, rto))
    return tiers


def _endpoints(index: ManifestIndex) -> list[Tier]:
    by_component: dict[str, list[tuple[str, tuple[str, ...] | None]]] = {}
    for ep in index.of_type(VPC_ENDPOINT):
        if (ep.get("inputs") or {}).get("vpcEndpointType") not in ("Interface", "GatewayLoadBalancer"):
            continue  # gateway endpoints (S3, DynamoDB) are route-table entries, not per-AZ ENIs
        by_component.setdefault(index.component_name(ep), []).append((ep["name"], index.azs(ep, "subnetIds")))
    tiers = []
    for component, eps in sorted(by_component.items()):
        azs = tuple(sorted({a for _, z in eps for a in (z or ())}))
        single = [(n, z[0]) for n, z in eps if z is not None and len(z) == 1]
        capacity = {az: (sum(1 for _, z in eps if z is None or set(z) - {az}) / len(eps)) for az in azs}
        spof = None
        if single:
            names = ", ".join(f"{n} ({a})" for n, a in single)
            spof = f"endpoints: interface endpoints in one AZ only: {names}; losing that AZ cuts private DNS to them"
        detail = f"{len(eps)} interface endpoint(s) with ENIs in {', '.join(azs) or '?'}"
        tiers.append(
            Tier(
                "endpoints",
                component,
                azs,
                detail,
                capacity,
                spof,
                NOT_APPLICABLE,
                Objective(None if spof else 0.0, "manual: add subnets" if spof else "ENIs in every AZ"),
            )
        )
    return tiers


def _apis(index: ManifestIndex) -> list[Tier]:
    tiers = []
    stages = index.of_type(REST_STAGE, HTTP_STAGE)
    for api in index.of_type(REST_API, HTTP_API):
        inputs = api.get("inputs") or {}
        types = ((inputs.get("endpointConfiguration") or {}).get("types")) or [
            "EDGE" if api["type"] == REST_API else "REGIONAL"
        ]
        mine = [s for s in stages if api["urn"] in {d["urn"] for d in index.deps(s, "restApi", "apiId")}]
        detail = f"{api['name']}: {'/'.join(map(str, types))} endpoint, stages: " + (
            ", ".join(str((s.get("inputs") or {}).get("stageName", s["name"])) for s in mine) or "none in the plan"
        )
        warnings = () if mine else (f"{api['name']} has no stage: nothing is deployed to serve",)
        tiers.append(
            Tier(
                "api",
                index.component_name(api),
                (),
                detail,
                {},
                None,
                NOT_APPLICABLE,
                Objective(0.0, "API Gateway is regional: AWS runs it across the region's AZs"),
                warnings,
            )
        )
    return tiers


def _deep_get(values: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(values, dict):
            return None
        values = values.get(key)
    return values


def _mentions(values: Any, text: str) -> bool:
    if isinstance(values, dict):
        return any(_mentions(k, text) or _mentions(v, text) for k, v in values.items())
    if isinstance(values, list):
        return any(_mentions(v, text) for v in values)
    return isinstance(values, str) and text in values


def _mesh(index: ManifestIndex, env_azs: tuple[str, ...]) -> list[Tier]:
    tiers = []
    for release in index.of_type(HELM_RELEASE):
        inputs = release.get("inputs") or {}
        if inputs.get("chart") not in GATEWAY_CHARTS:
            continue
        values: dict[str, Any] = inputs["values"] if isinstance(inputs.get("values"), dict) else {}
        enabled = _deep_get(values, "autoscaling", "enabled")
        if GATEWAY_AUTOSCALING_DEFAULT if enabled is None else _flag(enabled):
            replicas = _int(_deep_get(values, "autoscaling", "minReplicas"), GATEWAY_MIN_REPLICAS_DEFAULT)
            most = _int(_deep_get(values, "autoscaling", "maxReplicas"), GATEWAY_MAX_REPLICAS_DEFAULT)
            sizing = f"autoscaling {replicas}-{most} replicas"
        else:
            replicas = _int(values.get("replicaCount"), 1)
            most = replicas
            sizing = f"{replicas} replica(s), no autoscaling"
        spread = _mentions(values, "topology.kubernetes.io/zone")
        azs = env_azs
        detail = f"{release['name']} (chart {inputs.get('chart')}): {sizing}" + (
            ", spread over zones" if spread else ""
        )
        warnings: tuple[str, ...] = ()
        spof = None
        capacity: dict[str, float] = {}
        if replicas <= 1:
            where = f"any of {', '.join(azs)}" if azs else "any AZ"
            spof = (
                f"mesh: one ingress gateway replica ({sizing}): losing the AZ that runs it ({where}) drops "
                f"ingress until the pod is rescheduled"
            )
            capacity = {az: 0.0 for az in azs}
            rto = Objective(POD_RESCHEDULE_MINUTES, "one replica, rescheduled on a node in another AZ (estimate)")
        elif spread and azs:
            share = math.ceil(replicas / len(azs))
            capacity = {az: 1 - share / replicas for az in azs}
            rto = Objective(0.0, "replicas in other AZs keep serving; autoscaling restores the count")
        else:  # placement unknown: no capacity claim either way, but say why
            warnings = (
                f"{release['name']}: {replicas} replicas without a topology spread on "
                "topology.kubernetes.io/zone may share one AZ",
            )
            rto = Objective(0.0, "replicas in other AZs keep serving, if the scheduler spread them")
        tiers.append(
            Tier("mesh", index.component_name(release), azs, detail, capacity, spof, NOT_APPLICABLE, rto, warnings)
        )
    return tiers


def _buckets(index: ManifestIndex) -> list[Tier]:
    buckets = index.of_type(BUCKET)
    if not buckets:
        return []
    log_targets = {d["urn"] for b in index.of_type(BUCKET_LOGGING) for d in index.deps(b, "targetBucket")}
    replicated: dict[str, bool] = {}  # source bucket urn -> RTC on
    destinations: set[str] = set()
    for rep in index.of_type(BUCKET_REPLICATION):
        rules = (rep.get("inputs") or {}).get("rules") or []
        rtc = any(
            _deep_get(r, "destination", "replicationTime", "status") == "Enabled" for r in rules if isinstance(r, dict)
        )
        enabled = any(isinstance(r, dict) and r.get("status") == "Enabled" for r in rules) or not rules
        for source in index.deps(rep, "bucket"):
            if enabled:
                replicated[source["urn"]] = replicated.get(source["urn"], False) or rtc
        destinations.update(d["urn"] for d in index.deps(rep, "rules") if d["type"] == BUCKET)
    onezone = {
        d["urn"]
        for lc in index.of_type(BUCKET_LIFECYCLE)
        if _mentions((lc.get("inputs") or {}).get("rules"), "ONEZONE_IA")
        for d in index.deps(lc, "bucket")
    }
    by_component: dict[str, list[dict[str, Any]]] = {}
    for b in buckets:
        by_component.setdefault(index.component_name(b), []).append(b)
    tiers = []
    for component, members in sorted(by_component.items()):
        data = [b for b in members if b["urn"] not in log_targets and b["urn"] not in destinations]
        replicas = [b for b in members if b["urn"] in destinations]
        if not data:
            data = [b for b in members if b["urn"] not in destinations] or members
        unreplicated = [b["name"] for b in data if b["urn"] not in replicated]
        if unreplicated:
            rpo = Objective(
                None,
                f"region lost: no cross-region replica of {', '.join(unreplicated)} "
                "(S3 spans >= 3 AZs: an AZ loss loses nothing)",
            )
        elif all(replicated[b["urn"]] for b in data):
            rpo = Objective(
                S3_REPLICATION_MINUTES,
                "region lost: S3 Replication Time Control, 99.99% of objects within 15 minutes (SLA)",
            )
        else:
            rpo = Objective(
                S3_REPLICATION_MINUTES,
                "region lost: cross-region replication without RTC; assumed "
                "15 minutes (AWS: most objects within 15 minutes, no SLA)",
            )
        spof = None
        if any(b["urn"] in onezone for b in members):
            spof = "s3: lifecycle moves objects to ONEZONE_IA: losing that AZ loses them"
        detail = (
            f"{len(data)} bucket(s) with data, {len(replicas)} cross-region replica(s), "
            f"{len(members) - len(data) - len(replicas)} access-log bucket(s); regional (>= 3 AZs)"
        )
        tiers.append(
            Tier(
                "s3", component, (), detail, {}, spof, rpo, Objective(0.0, "regional: an AZ loss does not interrupt S3")
            )
        )
    return tiers


def _queues(index: ManifestIndex) -> list[Tier]:
    by_component: dict[str, int] = {}
    for q in index.of_type(QUEUE):
        by_component[index.component_name(q)] = by_component.get(index.component_name(q), 0) + 1
    return [
        Tier(
            "sqs",
            component,
            (),
            f"{count} queue(s); regional, messages stored redundantly across AZs",
            {},
            None,
            Objective(
                0.0, "AZ lost: nothing (SQS keeps messages across AZs); no cross-region copy of a region's queues"
            ),
            Objective(0.0, "regional: an AZ loss does not interrupt SQS"),
        )
        for component, count in sorted(by_component.items())
    ]


# -- targets --------------------------------------------------------------------------------------------------

_KEY = re.compile(r"^(?:[a-z][a-z0-9-]*)(?::[a-z0-9][a-z0-9-]*)?$")


@dataclass(frozen=True)
class Targets:
    """One environment's resilience targets (config ``agent-infra:resilience``).

    Keys of the per-tier mappings (and entries of ``allow_single_points_of_failure``) name a tier kind
    (:data:`TIER_KINDS`), a top-level component (``gpu-llama-8b``) or both (``gpu:gpu-llama-8b``); the most
    specific key wins.
    """

    min_capacity_after_az_loss: Mapping[str, float] = field(default_factory=dict)
    """Least fraction (0-1) of capacity left when any one AZ is lost; ``*`` is every capacity tier."""
    allow_single_points_of_failure: frozenset[str] = frozenset()
    """Tiers allowed to be a single point of failure (dev: ``nat``); default none."""
    rpo_minutes: Mapping[str, float] = field(default_factory=dict)
    """Largest acceptable RPO by tier, in minutes (see the module docstring for each kind's scenario)."""
    rto_minutes: Mapping[str, float] = field(default_factory=dict)
    """Largest acceptable RTO after one AZ is lost, by tier, in minutes."""

    def named_keys(self) -> set[str]:
        return (
            {k for k in self.min_capacity_after_az_loss if k != "*"}
            | set(self.allow_single_points_of_failure)
            | set(self.rpo_minutes)
            | set(self.rto_minutes)
        )


def _lookup(table: Mapping[str, Any] | frozenset[str], tier: Tier) -> Any:
    for key in (tier.label, tier.name, tier.kind, "*"):
        if key in table:
            return True if isinstance(table, frozenset) else table[key]  # type: ignore[index]
    return None


def parse_targets(raw: Any, key_prefix: str) -> tuple[Targets | None, list[tuple[str, str]]]:
    """Validate a raw ``agent-infra:resilience`` block; (None, []) when it is absent.

    Returns the targets, or None with every problem as ``(full key, message)``.
    """
    if raw is None:
        return None, []
    problems: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        return None, [(key_prefix, f"expected a mapping of resilience targets, found {raw!r}")]
    known = ("min_capacity_after_az_loss", "allow_single_points_of_failure", "rpo_minutes", "rto_minutes")
    for key in sorted(set(raw) - set(known)):
        problems.append((f"{key_prefix}.{key}", f"unknown setting; expected one of: {', '.join(known)}"))

    def tier_key(key: str, name: Any) -> bool:
        if (
            not isinstance(name, str)
            or not (name == "*" or _KEY.match(name))
            or (":" in name and name.split(":", 1)[0] not in TIER_KINDS)
        ):
            problems.append(
                (
                    key,
                    f"expected a tier kind ({', '.join(TIER_KINDS)}), a component name or "
                    f"kind:component, found {name!r}",
                )
            )
            return False
        return True

    def number_map(name: str, lo: float, hi: float | None, what: str, allow_scalar: bool) -> dict[str, float]:
        value = raw.get(name)
        key = f"{key_prefix}.{name}"
        if value is None:
            return {}
        if allow_scalar and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = {"*": value}
        if not isinstance(value, dict):
            scalar = "a number or " if allow_scalar else ""
            problems.append((key, f"expected {scalar}a mapping of tier to {what}, found {value!r}"))
            return {}
        out: dict[str, float] = {}
        for tier, number in value.items():
            sub = f"{key}.{tier}"
            if not tier_key(sub, tier):
                continue
            if (
                isinstance(number, bool)
                or not isinstance(number, (int, float))
                or number < lo
                or (hi is not None and number > hi)
            ):
                bounds = f"from {lo:g} to {hi:g}" if hi is not None else f"of at least {lo:g}"
                problems.append((sub if tier != "*" else key, f"expected {what} {bounds}, found {number!r}"))
                continue
            out[tier] = float(number)
        return out

    capacity = number_map("min_capacity_after_az_loss", 0.0, 1.0, "a fraction", allow_scalar=True)
    rpo = number_map("rpo_minutes", 0.0, None, "minutes", allow_scalar=False)
    rto = number_map("rto_minutes", 0.0, None, "minutes", allow_scalar=False)
    allowed = raw.get("allow_single_points_of_failure") or []
    allow_key = f"{key_prefix}.allow_single_points_of_failure"
    names: set[str] = set()
    if not isinstance(allowed, list):
        problems.append((allow_key, f"expected a list of tiers such as [nat], found {allowed!r}"))
    else:
        for i, name in enumerate(allowed):
            if tier_key(f"{allow_key}[{i}]", name):
                names.add(name)
    if problems:
        return None, problems
    return Targets(capacity, frozenset(names), rpo, rto), []


def unknown_target_keys(targets: Targets, report: ResilienceReport) -> list[str]:
    """Target keys that name neither a tier kind nor a tier of this plan (a typo, or a renamed component)."""
    names = {t.name for t in report.tiers} | {t.label for t in report.tiers}
    return sorted(k for k in targets.named_keys() if k not in TIER_KINDS and k not in names and k != "*")


def evaluate(report: ResilienceReport, targets: Targets | None, source: str | None = None) -> ResilienceReport:
    """Check each tier against the targets; a report without targets only describes the plan (and passes)."""
    if targets is None:
        return ResilienceReport(
            report.environment,
            report.azs,
            report.tiers,
            (),
            report.notes + ("no resilience targets: report only (set agent-infra:resilience or pass --targets)",),
            None,
        )
    findings: list[Finding] = []
    for tier in report.tiers:
        allowed = bool(_lookup(targets.allow_single_points_of_failure, tier))
        if tier.spof:
            findings.append(
                Finding(
                    "single-point-of-failure",
                    tier.label,
                    allowed,
                    tier.spof + (" (allowed by the targets)" if allowed else ""),
                )
            )
        findings += _capacity_finding(tier, targets, allowed)
        findings += _objective_finding("rpo", tier, tier.rpo, _lookup(targets.rpo_minutes, tier))
        findings += _objective_finding("rto", tier, tier.rto, _lookup(targets.rto_minutes, tier))
    return ResilienceReport(report.environment, report.azs, report.tiers, tuple(findings), report.notes, source)


def _capacity_finding(tier: Tier, targets: Targets, spof_allowed: bool) -> list[Finding]:
    wanted = _lookup(targets.min_capacity_after_az_loss, tier)
    az, left = tier.worst
    if wanted is None or az is None or left is None or (tier.spof and spof_allowed):
        return []
    text = f"losing {az} leaves {left:.0%} of {tier.name}'s capacity"
    if left + 1e-9 >= wanted:
        return [Finding("capacity", tier.label, True, f"{tier.kind}: {text} (target {wanted:.0%})")]
    return [Finding("capacity", tier.label, False, f"{tier.kind}: {text}, below the target {wanted:.0%}")]


def _objective_finding(what: str, tier: Tier, value: Objective, wanted: float | None) -> list[Finding]:
    if wanted is None or not value.applicable:
        return []
    label = what.upper()
    if value.minutes is not None and value.minutes <= wanted:
        return [
            Finding(
                what,
                tier.label,
                True,
                f"{tier.kind}: {tier.name} {label} {value.render()} ({value.basis}), target {wanted:g} min",
            )
        ]
    return [
        Finding(
            what,
            tier.label,
            False,
            f"{tier.kind}: {tier.name} {label} {value.render()} ({value.basis}) exceeds the target {wanted:g} min",
        )
    ]


# -- rendering ------------------------------------------------------------------------------------------------


def render(report: ResilienceReport) -> str:
    """The tier table, single points of failure, RPO/RTO bases and the verdict, as plain text."""
    head = ["TIER", "NAME", "AZS", "WORST AZ LOSS", "CAPACITY LEFT", "SPOF", "RPO", "RTO"]
    rows = []
    for t in report.tiers:
        az, left = t.worst
        rows.append(
            [
                t.kind,
                t.name,
                ",".join(t.azs) or "regional",
                az or "-",
                f"{left:.0%}" if left is not None else "-",
                "YES" if t.spof else "no",
                t.rpo.render(),
                t.rto.render(),
            ]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    status = "no targets (report only)" if report.targets_source is None else ("PASS" if report.passed else "FAIL")
    lines = [
        f"resilience of {report.environment} (AZs {', '.join(report.azs) or '?'}): {status}",
        "",
        fmt.format(*head).rstrip(),
        *(fmt.format(*r).rstrip() for r in rows),
        "",
    ]
    lines.append("tiers:")
    lines += [f"  {t.label}: {t.detail}" for t in report.tiers]
    spofs = [t.spof for t in report.tiers if t.spof]
    lines += ["", "single points of failure:" if spofs else "single points of failure: none"]
    lines += [f"  {s}" for s in spofs]
    lines += ["", "recovery objectives (RPO: data lost; RTO: time to serve again after one AZ is lost):"]
    for t in report.tiers:
        if t.rpo.applicable:
            lines.append(f"  {t.label} RPO {t.rpo.render()}: {t.rpo.basis}")
        lines.append(f"  {t.label} RTO {t.rto.render()}: {t.rto.basis}")
    warnings = [w for t in report.tiers for w in t.warnings]
    if warnings:
        lines += ["", "warnings:", *(f"  {w}" for w in warnings)]
    if report.findings:
        lines += ["", f"targets ({report.targets_source}):"]
        lines += [f"  {'ok  ' if f.met else 'MISS'}  {f.message}" for f in report.findings]
    if report.notes:
        lines += ["", "notes:", *(f"  {n}" for n in report.notes)]
    if report.targets_source is not None:
        missed = len(report.missed)
        lines += ["", f"result: {'all targets met' if not missed else f'{missed} target(s) missed'}"]
    return "\n".join(lines)
