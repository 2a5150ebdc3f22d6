"""Monthly cost of a plan, per top-level component, from the price table in the repository, with savings levers.

Never calls a pricing API. Prices come from ``agentinfra_policies/catalog/prices.yaml`` (us-east-1 list
prices, each with its source page and the date it was read); quantities come from the manifest (instance
types, node counts, NAT gateways, keys, alarms...) and, for usage, from the environment's assumptions
(config ``agent-infra:cost``: hours per month, request volumes, log and NAT data volumes, the average use of
autoscaled pools). :func:`monthly_cost` gives a :class:`CostReport`; :func:`cost_delta` compares two plans.

How an autoscaled pool is counted: ``min + utilisation x (max - min)`` instances on average, per group.
What is not priced: data transfer other than NAT, replication and endpoints; EBS snapshots and ElastiCache
backup storage; S3 lifecycle transition requests; free tiers and volume discounts; persistent volumes that
Helm charts request. The report lists the resource types it found no price rule for.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentinfra_policies.yamlio import safe_load

from .errors import InputError
from .resilience import (
    ASG,
    BUCKET,
    BUCKET_LIFECYCLE,
    BUCKET_LOGGING,
    BUCKET_REPLICATION,
    HTTP_API,
    LAUNCH_TEMPLATE,
    NAT_GATEWAY,
    NODE_GROUP,
    QUEUE,
    REPLICATION_GROUP,
    REST_API,
    REST_STAGE,
    VPC_ENDPOINT,
    ManifestIndex,
    group_sizes,
    is_gpu_group,
    node_group_instance_type,
)

PRICES_PATH = Path(__file__).resolve().parent.parent / "policies" / "agentinfra_policies" / "catalog" / "prices.yaml"


def _prices_path() -> Path:
    """The shipped price table: next to the instance catalog, inside the policy pack's package."""
    try:
        import agentinfra_policies.catalog as catalog

        return Path(catalog.__file__).with_name("prices.yaml")
    except ImportError:  # pragma: no cover - the package is always installed with agentinfra
        return PRICES_PATH


# -- the price table ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstancePrice:
    """Hourly prices of one EC2 or ElastiCache type; ``on_demand`` None means no list price."""

    name: str
    on_demand: float | None
    spot_estimate: float | None
    reserved_discount: float | None
    """Fraction saved by a 1-year no-upfront commitment."""
    source: str
    spot_source: str | None
    reserved_source: str | None
    date: str
    region: str
    note: str = ""


@dataclass(frozen=True)
class ServicePrice:
    key: str
    price: float
    unit: str
    source: str
    date: str
    region: str
    note: str = ""


class PriceError(InputError):
    """A price table that cannot be used: exit status 2."""


class Prices:
    """The price table: instance prices by type, service prices by key."""

    def __init__(
        self, instances: Mapping[str, InstancePrice], services: Mapping[str, ServicePrice], *, region: str, date: str
    ):
        self.instances = dict(instances)
        self.services = dict(services)
        self.region = region
        self.date = date

    def instance(self, name: str | None) -> InstancePrice | None:
        return self.instances.get(name or "")

    def service(self, key: str) -> ServicePrice:
        try:
            return self.services[key]
        except KeyError:
            raise PriceError(f"prices.yaml: no service price {key!r}") from None


_INSTANCE_KEYS = {
    "on_demand",
    "spot_estimate",
    "reserved_1y_no_upfront_discount",
    "source",
    "spot_source",
    "reserved_source",
    "date",
    "region",
    "note",
}
_SERVICE_KEYS = {"price", "unit", "source", "date", "region", "note"}


def parse_prices(raw: Mapping[str, Any]) -> Prices:
    """Build :class:`Prices` from the YAML mapping; every entry must carry ``source``, ``date`` and ``region``."""
    problems: list[str] = []
    instances: dict[str, InstancePrice] = {}
    for family in ("ec2", "elasticache"):
        for name, spec in (raw.get(family) or {}).items():
            missing = [k for k in ("source", "date", "region", "on_demand") if k not in spec]
            unknown = sorted(set(spec) - _INSTANCE_KEYS)
            if missing or unknown:
                problems.append(f"{family}.{name}: missing {missing}, unknown {unknown}")
                continue
            instances[name] = InstancePrice(
                name=name,
                on_demand=_opt_float(spec.get("on_demand")),
                spot_estimate=_opt_float(spec.get("spot_estimate")),
                reserved_discount=_opt_float(spec.get("reserved_1y_no_upfront_discount")),
                source=str(spec["source"]),
                spot_source=spec.get("spot_source"),
                reserved_source=spec.get("reserved_source"),
                date=str(spec["date"]),
                region=str(spec["region"]),
                note=str(spec.get("note") or ""),
            )
    services: dict[str, ServicePrice] = {}
    for key, spec in (raw.get("services") or {}).items():
        missing = [k for k in ("source", "date", "region", "price", "unit") if k not in spec]
        unknown = sorted(set(spec) - _SERVICE_KEYS)
        if missing or unknown:
            problems.append(f"services.{key}: missing {missing}, unknown {unknown}")
            continue
        services[key] = ServicePrice(
            key,
            float(spec["price"]),
            str(spec["unit"]),
            str(spec["source"]),
            str(spec["date"]),
            str(spec["region"]),
            str(spec.get("note") or ""),
        )
    if problems:
        raise PriceError("prices.yaml: " + "; ".join(problems))
    return Prices(instances, services, region=str(raw.get("region", "us-east-1")), date=str(raw.get("date", "?")))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@functools.cache
def load_prices(path: Path | None = None) -> Prices:
    """Read the shipped price table once per process (data in the repository, never fetched)."""
    with open(path or _prices_path(), encoding="utf-8") as fh:
        return parse_prices(safe_load(fh))


# -- assumptions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolModel:
    """The model a GPU pool serves, for the right-sizing lever (``agentinfra_policies.sizing``)."""

    model: str
    """A model of catalog/models.yaml, e.g. ``Llama-3.1-8B``."""
    dtype: str = "bf16"
    max_model_len: int = 8192
    max_num_seqs: int = 256
    tensor_parallel_size: int | None = None
    """GPUs per replica on the pool's instance type; None: the smallest that fits."""


@dataclass(frozen=True)
class Assumptions:
    """Usage the plan cannot know (config ``agent-infra:cost``); every figure is per month."""

    hours_per_month: float = 730.0
    """Hours in a month (AWS's own 730)."""
    autoscaled_utilisation: float = 0.3
    """Average share of ``max - min`` an autoscaled pool runs (0-1): ``min + u x (max - min)`` instances."""
    pool_utilisation: Mapping[str, float] = field(default_factory=dict)
    """Per pool (component or resource name): overrides ``autoscaled_utilisation``."""
    night_scale_down_hours: float = 12.0
    """Hours a day a scheduled scale-down would hold pools at their minimum (the night lever)."""
    nat_data_gb: float = 100.0
    """GB through the NAT gateways, all together."""
    vpc_endpoint_data_gb: float = 50.0
    """GB through interface VPC endpoints, all together."""
    cloudwatch_logs_gb: Mapping[str, float] = field(default_factory=lambda: {"default": 1.0})
    """GB ingested per log group, by resource name (``network-flow-logs``), ``default`` for the rest."""
    cloudwatch_logs_compression: float = 0.15
    """Stored (compressed) size as a fraction of ingested size."""
    s3_gb: Mapping[str, float] = field(
        default_factory=lambda: {
            "executions/": 10.0,
            "conversations/": 5.0,
            "audit/": 1.0,
            "athena-results/": 1.0,
            "": 1.0,
        }
    )
    """GB written per lifecycle prefix (``executions/``; ``""`` for whole-bucket rules, e.g. access logs)."""
    s3_put_requests: float = 1_000_000
    s3_get_requests: float = 1_000_000
    sqs_requests: float = 10_000_000
    """Requests over every work queue (sends, receives including empty long polls, deletes)."""
    api_requests: float = 1_000_000
    """Requests through API Gateway (and the WAF in front of it)."""
    kms_requests: float = 1_000_000
    secrets_api_calls: float = 100_000
    athena_tb_scanned: float = 0.01
    pool_models: Mapping[str, PoolModel] = field(default_factory=dict)
    """The model each GPU pool serves (by pool name), for the right-sizing lever; pools not listed are skipped."""


_NUMBERS: dict[str, tuple[float, float | None]] = {
    "hours_per_month": (1, 744),
    "autoscaled_utilisation": (0, 1),
    "night_scale_down_hours": (0, 24),
    "nat_data_gb": (0, None),
    "vpc_endpoint_data_gb": (0, None),
    "cloudwatch_logs_compression": (0, 1),
    "s3_put_requests": (0, None),
    "s3_get_requests": (0, None),
    "sqs_requests": (0, None),
    "api_requests": (0, None),
    "kms_requests": (0, None),
    "secrets_api_calls": (0, None),
    "athena_tb_scanned": (0, None),
}
_MAPS: dict[str, tuple[float, float | None]] = {
    "pool_utilisation": (0, 1),
    "cloudwatch_logs_gb": (0, None),
    "s3_gb": (0, None),
}


def parse_assumptions(raw: Any, key_prefix: str) -> tuple[Assumptions | None, list[tuple[str, str]]]:
    """Validate a raw ``agent-infra:cost`` block; absent (None) gives the defaults.

    Returns the assumptions, or None with every problem as ``(full key, message)``.
    """
    if raw is None:
        return Assumptions(), []
    if not isinstance(raw, dict):
        return None, [(key_prefix, f"expected a mapping of cost assumptions, found {raw!r}")]
    problems: list[tuple[str, str]] = []
    known = (*_NUMBERS, *_MAPS, "pool_models")
    values: dict[str, Any] = {}
    for key in sorted(set(raw) - set(known)):
        problems.append((f"{key_prefix}.{key}", f"unknown setting; expected one of: {', '.join(known)}"))
    for key, (lo, hi) in _NUMBERS.items():
        if key in raw:
            number = _number(raw[key], lo, hi, f"{key_prefix}.{key}", problems)
            if number is not None:
                values[key] = number
    for key, (lo, hi) in _MAPS.items():
        if key not in raw:
            continue
        mapping = raw[key]
        if not isinstance(mapping, dict):
            problems.append((f"{key_prefix}.{key}", f"expected a mapping of names to numbers, found {mapping!r}"))
            continue
        parsed = {str(k): _number(v, lo, hi, f"{key_prefix}.{key}.{k}", problems) for k, v in mapping.items()}
        values[key] = {k: v for k, v in parsed.items() if v is not None}
    if "pool_models" in raw:
        values["pool_models"] = _pool_models(raw["pool_models"], f"{key_prefix}.pool_models", problems)
    if problems:
        return None, problems
    return Assumptions(**values), []


def _number(value: Any, lo: float, hi: float | None, key: str, problems: list[tuple[str, str]]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lo or (hi is not None and value > hi):
        bounds = f"from {lo:g} to {hi:g}" if hi is not None else f"of at least {lo:g}"
        problems.append((key, f"expected a number {bounds}, found {value!r}"))
        return None
    return float(value)


def _pool_models(raw: Any, key: str, problems: list[tuple[str, str]]) -> dict[str, PoolModel]:
    from agentinfra_policies.sizing import Dtype, load_models

    if not isinstance(raw, dict):
        problems.append((key, f"expected a mapping of pool name to {{model, dtype, max_model_len}}, found {raw!r}"))
        return {}
    models = load_models()
    out: dict[str, PoolModel] = {}
    for pool, spec in raw.items():
        sub = f"{key}.{pool}"
        if isinstance(spec, str):
            spec = {"model": spec}
        if not isinstance(spec, dict):
            problems.append((sub, f"expected a model name or {{model, dtype, max_model_len}}, found {spec!r}"))
            continue
        unknown = sorted(set(spec) - {"model", "dtype", "max_model_len", "max_num_seqs", "tensor_parallel_size"})
        for k in unknown:
            problems.append(
                (
                    f"{sub}.{k}",
                    "unknown setting; expected one of: dtype, max_model_len, max_num_seqs, model, tensor_parallel_size",
                )
            )
        model = spec.get("model")
        if model not in models:
            problems.append((f"{sub}.model", f"expected a model of models.yaml ({', '.join(models)}), found {model!r}"))
        dtype = spec.get("dtype", "bf16")
        if dtype not in {d.value for d in Dtype}:
            problems.append((f"{sub}.dtype", f"expected one of {', '.join(d.value for d in Dtype)}, found {dtype!r}"))
        ints: dict[str, Any] = {}
        for k, default in (("max_model_len", 8192), ("max_num_seqs", 256), ("tensor_parallel_size", None)):
            v = spec.get(k, default)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                problems.append((f"{sub}.{k}", f"expected a positive whole number, found {v!r}"))
                v = None
            ints[k] = v
        valid = None not in (ints["max_model_len"], ints["max_num_seqs"])
        if not unknown and valid and model in models and dtype in {d.value for d in Dtype}:
            out[str(pool)] = PoolModel(str(model), str(dtype), **ints)
    return out


def merge_assumption_blocks(base: Any, override: Any) -> Any:
    """``--assumptions FILE`` overrides the config block key by key (a mapping in the file replaces one)."""
    if override is None:
        return base
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    return {**base, **override}


# -- the report -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostLine:
    """One priced quantity: ``quantity x unit_price = monthly`` (USD per month), with where the price came from."""

    component: str
    resource: str
    item: str
    """What is priced, with the quantity's basis (``p5.48xlarge on-demand, 1.5 avg nodes x 730 h``)."""
    quantity: float
    unit: str
    unit_price: float | None
    """None when the table has no list price: the line costs 0 and says so."""
    source: str

    @property
    def monthly(self) -> float:
        return 0.0 if self.unit_price is None else self.quantity * self.unit_price

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "resource": self.resource,
            "item": self.item,
            "quantity": self.quantity,
            "unit": self.unit,
            "unitPrice": self.unit_price,
            "monthly": round(self.monthly, 4),
            "source": self.source,
        }


@dataclass(frozen=True)
class Lever:
    """A way to spend less, with its estimated monthly saving (None when it cannot be estimated)."""

    kind: str
    """``spot``, ``night-scale-down``, ``right-size`` or ``reserved``."""
    component: str
    description: str
    monthly_savings: float | None
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        savings = None if self.monthly_savings is None else round(self.monthly_savings, 2)
        return {
            "kind": self.kind,
            "component": self.component,
            "description": self.description,
            "monthlySavings": savings,
            "source": self.source,
        }


@dataclass(frozen=True)
class CostReport:
    environment: str
    region: str | None
    assumptions: Assumptions
    lines: tuple[CostLine, ...]
    levers: tuple[Lever, ...]
    notes: tuple[str, ...]
    unpriced_types: tuple[str, ...]
    price_date: str
    price_region: str

    @property
    def components(self) -> dict[str, float]:
        """Monthly total per top-level component, largest first."""
        totals: dict[str, float] = {}
        for line in self.lines:
            totals[line.component] = totals.get(line.component, 0.0) + line.monthly
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)

    def component_lines(self, component: str) -> list[CostLine]:
        return [line for line in self.lines if line.component == component]

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "region": self.region,
            "currency": "USD",
            "period": "month",
            "prices": {
                "region": self.price_region,
                "date": self.price_date,
                "note": "list prices recalled for us-east-1; check them against each source",
            },
            "total": round(self.total, 2),
            "components": {k: round(v, 2) for k, v in self.components.items()},
            "lines": [line.to_json() for line in self.lines],
            "levers": [lever.to_json() for lever in self.levers],
            "notes": list(self.notes),
            "unpricedTypes": list(self.unpriced_types),
        }


# -- pricing --------------------------------------------------------------------------------------------------

#: Resource types with no charge of their own (or priced through another resource), so not "unpriced".
NO_CHARGE_PREFIXES = (
    "pulumi:",
    "random:",
    "kubernetes:",
    "aws:iam/",
    "aws:ec2/subnet:",
    "aws:ec2/vpc:",
    "aws:ec2/routeTable",
    "aws:ec2/route:",
    "aws:ec2/internetGateway:",
    "aws:ec2/securityGroup",
    "aws:ec2/defaultSecurityGroup:",
    "aws:vpc/securityGroup",
    "aws:ec2/flowLog:",
    "aws:ec2/launchTemplate:",
    "aws:eks/addon:",
    "aws:eks/podIdentityAssociation:",
    "aws:eks/accessEntry:",
    "aws:eks/accessPolicyAssociation:",
    "aws:kms/alias:",
    "aws:elasticache/parameterGroup:",
    "aws:elasticache/subnetGroup:",
    "aws:s3/bucket",
    "aws:sqs/queuePolicy:",
    "aws:secretsmanager/secretVersion:",
    "aws:glue/",
    "aws:autoscaling/policy:",
    "aws:autoscaling/schedule:",
    "aws:autoscaling/lifecycleHook:",
    "aws:apigateway/",
    "aws:apigatewayv2/",
    "aws:wafv2/webAclAssociation:",
    "aws:wafv2/webAclLoggingConfiguration:",
    "aws:cloudwatch/logResourcePolicy:",
    "aws:sns/topicSubscription:",
    # Topics cost nothing of their own (publishes at these volumes are negligible); the first two budgets are
    # free; Cognito bills per monthly active user (usage, not a resource); listeners, target groups and RDS
    # parameter and subnet groups are priced through their load balancer or instance.
    "aws:sns/topic:",
    "aws:budgets/",
    "aws:cognito/",
    "aws:lb/listener:",
    "aws:lb/targetGroup:",
    "aws:rds/parameterGroup:",
    "aws:rds/subnetGroup:",
    "aws:sns/topicPolicy:",
    "agent-infra:",
)


class _Pricer:
    """Walks one manifest and turns resources into cost lines and levers."""

    def __init__(self, manifest: Mapping[str, Any], assumptions: Assumptions, prices: Prices):
        self.index = ManifestIndex(manifest)
        self.a = assumptions
        self.p = prices
        self.hours = assumptions.hours_per_month
        self.lines: list[CostLine] = []
        self.levers: list[Lever] = []
        self.notes: list[str] = []
        self.priced: set[str] = set()

    # helpers ----------------------------------------------------------------------------------------------
    def add(self, resource: Mapping[str, Any], item: str, quantity: float, key: str) -> None:
        price = self.p.service(key)
        self.lines.append(
            CostLine(
                self.index.component_name(resource),
                str(resource["name"]),
                item,
                quantity,
                price.unit,
                price.price,
                price.source,
            )
        )
        self.priced.add(resource["type"])

    def add_instance(
        self,
        resource: Mapping[str, Any],
        item: str,
        hours: float,
        price: InstancePrice | None,
        rate: float | None,
        itype: str | None,
        *,
        spot: bool = False,
    ) -> None:
        if price is None:
            source = "prices.yaml has no entry"
        else:
            source = (price.spot_source or price.source) if spot else price.source
        if rate is None:
            reason = price.note if price and price.note else "no list price"
            item = f"{item} (no list price{': ' + reason if reason != 'no list price' else ''})"
            self.notes.append(f"{resource['name']}: {itype or 'unknown type'} has no list price; not in the total")
        self.lines.append(
            CostLine(
                self.index.component_name(resource), str(resource["name"]), item, hours, "instance-hour", rate, source
            )
        )
        self.priced.add(resource["type"])

    def utilisation(self, *names: str) -> float:
        for name in names:
            if name in self.a.pool_utilisation:
                return self.a.pool_utilisation[name]
        return self.a.autoscaled_utilisation

    # instances --------------------------------------------------------------------------------------------
    def groups(self) -> None:
        pools: dict[str, list[tuple[Mapping[str, Any], float, float, InstancePrice | None, float | None]]] = {}
        for group in self.index.of_type(NODE_GROUP, ASG):
            self._group(group, pools)
        for component, members in pools.items():
            self._pool_levers(component, members)

    def _group(self, group: Mapping[str, Any], pools: dict[str, list[Any]]) -> None:
        index, inputs = self.index, group.get("inputs") or {}
        itype = node_group_instance_type(index, group)
        price = self.p.instance(itype)
        lo, desired, hi = group_sizes(group)
        component = index.component_name(group)
        pool_name = str((inputs.get("labels") or {}).get("agent-infra/model-pool") or component)
        u = self.utilisation(str(group["name"]), component, pool_name)
        average = lo + u * (hi - lo)
        basis = f"{lo}-{hi} nodes, avg {average:g}" if hi != lo else f"{lo} nodes"
        spot_share = self._spot_share(group, average)
        od_hours = average * (1 - spot_share) * self.hours
        spot_hours = average * spot_share * self.hours
        if od_hours > 0 or spot_hours == 0:
            rate = price.on_demand if price else None
            self.add_instance(
                group,
                f"{itype} on-demand, {basis} x {self.hours:g} h"
                + (f" ({1 - spot_share:.0%} on-demand)" if spot_share else ""),
                od_hours,
                price,
                rate,
                itype,
            )
        if spot_hours > 0:
            rate = price.spot_estimate if price else None
            if price and rate is None and price.on_demand is not None:
                rate = price.on_demand
                self.notes.append(f"{group['name']}: no spot estimate for {itype}; priced at on-demand")
            self.add_instance(
                group,
                f"{itype} spot (estimate), {basis} x {self.hours:g} h ({spot_share:.0%} spot)",
                spot_hours,
                price,
                rate,
                itype,
                spot=True,
            )
        self._volumes(group, average)
        pools.setdefault(component, []).append((group, lo, average, price, spot_share))

    def _spot_share(self, group: Mapping[str, Any], average: float) -> float:
        inputs = group.get("inputs") or {}
        if group["type"] == NODE_GROUP:
            return 1.0 if inputs.get("capacityType") == "SPOT" else 0.0
        dist = ((inputs.get("mixedInstancesPolicy") or {}).get("instancesDistribution")) or {}
        if not inputs.get("mixedInstancesPolicy"):
            return 0.0
        base = float(dist.get("onDemandBaseCapacity") or 0)
        pct = dist.get("onDemandPercentageAboveBaseCapacity")
        pct = 100.0 if pct is None else float(pct)
        if average <= 0:
            return 0.0
        on_demand = min(average, base) + max(0.0, average - base) * pct / 100
        return max(0.0, 1 - on_demand / average)

    def _launch_template(self, group: Mapping[str, Any]) -> Mapping[str, Any] | None:
        found = [
            d for d in self.index.deps(group, "launchTemplate", "mixedInstancesPolicy") if d["type"] == LAUNCH_TEMPLATE
        ]
        return found[0] if found else None

    def _volumes(self, group: Mapping[str, Any], average: float) -> None:
        lt = self._launch_template(group)
        inputs = group.get("inputs") or {}
        gb_by_type: dict[str, float] = {}
        if lt is not None:
            for mapping in (lt.get("inputs") or {}).get("blockDeviceMappings") or []:
                ebs = mapping.get("ebs") if isinstance(mapping, dict) else None
                if isinstance(ebs, dict) and isinstance(ebs.get("volumeSize"), (int, float)):
                    vtype = str(ebs.get("volumeType") or "gp3")
                    gb_by_type[vtype] = gb_by_type.get(vtype, 0) + float(ebs["volumeSize"])
        elif group["type"] == NODE_GROUP:
            gb_by_type["gp3"] = float(inputs.get("diskSize") or 20)  # EKS's default disk when no template
        warm = inputs.get("warmPool") if group["type"] == ASG else None
        warm_count = float(_int_or(warm.get("minSize"), 0)) if isinstance(warm, dict) else 0.0
        for vtype, gb in sorted(gb_by_type.items()):
            key = "ebs_gp3_gb_month" if vtype == "gp3" else "ebs_gp2_gb_month"
            if vtype not in ("gp2", "gp3"):
                self.notes.append(f"{group['name']}: {vtype} volumes priced as gp3")
                key = "ebs_gp3_gb_month"
            count = average + warm_count
            extra = f" + {warm_count:g} warm-pool" if warm_count else ""
            self.add(group, f"{vtype} root volumes, {gb:g} GB x {average:g} avg instances{extra}", gb * count, key)
        if isinstance(warm, dict) and warm_count and warm.get("poolState") == "Running":
            itype = node_group_instance_type(self.index, group)
            price = self.p.instance(itype)
            self.add_instance(
                group,
                f"{itype} warm pool (Running), {warm_count:g} x {self.hours:g} h",
                warm_count * self.hours,
                price,
                price.on_demand if price else None,
                itype,
            )
        monitoring = (lt.get("inputs") or {}).get("monitoring") if lt else None
        if isinstance(monitoring, dict) and monitoring.get("enabled") is True and average > 0:
            self.add(
                group, f"EC2 detailed monitoring, {average:g} avg instances", average, "ec2_detailed_monitoring_month"
            )

    def _pool_levers(self, component: str, members: list[Any]) -> None:
        spot = night = reserved = 0.0
        spot_missing: list[str] = []
        reserved_source = ""
        gpu = any(is_gpu_group(self.index, g) for g, *_ in members)
        interruptible = gpu or any(g["type"] == ASG for g, *_ in members)
        scheduled = self._scheduled(members)
        for _, lo, average, price, spot_share in members:
            if price is None or price.on_demand is None:
                continue
            od = price.on_demand
            if interruptible and spot_share < 1:
                if price.spot_estimate is None:
                    spot_missing.append(price.name)
                else:
                    spot += average * (1 - spot_share) * self.hours * (od - price.spot_estimate)
            blended = od * (1 - spot_share) + (price.spot_estimate or od) * spot_share
            if not scheduled:
                night += (average - lo) * self.hours * self.a.night_scale_down_hours / 24 * blended
            if price.reserved_discount and lo > 0 and spot_share < 1:
                reserved += lo * (1 - spot_share) * self.hours * od * price.reserved_discount
                reserved_source = price.reserved_source or price.source
        kind = "GPU pool" if gpu else ("worker pool" if interruptible else "node group")
        if interruptible and (spot or spot_missing):
            text = f"{kind} {component}: run the on-demand capacity on spot (estimated spot prices)"
            if spot_missing:
                text += f"; no spot estimate for {', '.join(sorted(set(spot_missing)))}"
            self.levers.append(Lever("spot", component, text, spot if spot else None, "prices.yaml spot_estimate"))
        if scheduled:
            self.notes.append(
                f"{component}: already has scheduled scaling actions (not modelled in its average: reflect them in "
                f"agent-infra:cost.pool_utilisation); no night lever"
            )
        elif night > 0:
            self.levers.append(
                Lever(
                    "night-scale-down",
                    component,
                    f"{kind} {component}: hold at min for {self.a.night_scale_down_hours:g} h/day (scheduled scaling)",
                    night,
                )
            )
        if reserved > 0:
            self.levers.append(
                Lever(
                    "reserved",
                    component,
                    f"{kind} {component}: 1-year no-upfront commitment for the always-on minimum",
                    reserved,
                    reserved_source,
                )
            )
        if gpu:
            self._right_size(component, members)

    def _scheduled(self, members: list[Any]) -> bool:
        urns = {g["urn"] for g, *_ in members}
        return any(
            d["urn"] in urns
            for s in self.index.of_type("aws:autoscaling/schedule:Schedule")
            for d in self.index.deps(s, "autoscalingGroupName")
        )

    def _right_size(self, component: str, members: list[Any]) -> None:
        """A smaller GPU, or 4-bit weights, that holds the same KV cache (concurrent tokens) for less.

        Compared per useful KV-cache token-hour, so an alternative with a small KV pool needs more replicas;
        GPU compute speed is not compared. Needs the pool's model: from ``pool_models`` in the assumptions, the
        vLLM Deployment that selects the pool (:func:`served_models`), or an ``agent-infra/model`` node label.
        """
        from agentinfra_policies.catalog import load_catalog
        from agentinfra_policies.sizing import SizingInputError, alternatives, get_model

        group, price = members[0][0], members[0][3]
        labels = (group.get("inputs") or {}).get("labels") or {}
        pool = str(labels.get("agent-infra/model-pool") or component)
        spec = self.a.pool_models.get(pool) or self.a.pool_models.get(component) or served_models(self.index).get(pool)
        if spec is None and isinstance(labels.get("agent-infra/model"), str) and get_model(labels["agent-infra/model"]):
            spec = PoolModel(labels["agent-infra/model"])
        if spec is None:
            self.notes.append(
                f"{component}: right-sizing skipped: neither the plan nor the cost config says which model pool "
                f"{pool} serves (set agent-infra:cost.pool_models.{pool})"
            )
            return
        arch = get_model(spec.model)
        current = load_catalog().get(price.name) if price else None
        if arch is None or price is None or price.on_demand is None or current is None:
            self.notes.append(f"{component}: right-sizing skipped: no list price or catalog entry for the pool")
            return
        try:
            here = _token_price(
                arch, spec, spec.dtype, current.name, price.on_demand, instance=current, tp=spec.tensor_parallel_size
            )
            options = [
                (_token_price(arch, spec, dtype, alt.instance_type, alt_price.on_demand), alt, dtype)
                for dtype in dict.fromkeys((spec.dtype, "awq"))
                for alt in alternatives(
                    arch, dtype=dtype, max_model_len=spec.max_model_len, max_num_seqs=spec.max_num_seqs, limit=20
                )
                if (alt_price := self.p.instance(alt.instance_type)) and alt_price.on_demand is not None
            ]
        except SizingInputError as exc:
            self.notes.append(f"{component}: right-sizing skipped: {exc}")
            return
        if here is None:
            self.notes.append(f"{component}: right-sizing: {spec.model} ({spec.dtype}) does not fit on {price.name}")
            return
        spend = sum(line.monthly for line in self.lines if line.component == component and "instance" in line.unit)
        found = False
        bar = here  # 4-bit weights are offered only when they beat the best option in the pool's own dtype
        for wanted in dict.fromkeys((spec.dtype, "awq")):
            cheaper = sorted(
                (cost, alt.instance_type, alt.tp)
                for cost, alt, dtype in options
                if dtype == wanted and cost is not None and cost < bar
            )
            if not cheaper or spend <= 0:
                continue
            found = True
            cost, itype, tp = cheaper[0]
            bar = cost
            how = "a smaller GPU" if wanted == spec.dtype else "4-bit weights (awq; check quality)"
            self.levers.append(
                Lever(
                    "right-size",
                    component,
                    f"GPU pool {component}: {how}: {spec.model} ({spec.max_model_len}-token sequences) on {itype} "
                    f"tp {tp} in {wanted} costs {cost / here:.0%} of {price.name} in {spec.dtype} per useful KV-cache "
                    f"token (same concurrent tokens, up to max_num_seqs x max_model_len; GPU speed not compared)",
                    spend * (1 - cost / here),
                    "agentinfra_policies.sizing",
                )
            )
        if not found:
            self.notes.append(f"{component}: right-sizing: no catalog GPU holds {spec.model}'s KV cache for less")

    # everything else --------------------------------------------------------------------------------------
    def services(self) -> None:
        idx, a, h = self.index, self.a, self.hours
        self._platform_extras()
        for r in idx.of_type("aws:eks/cluster:Cluster"):
            self.add(r, f"EKS control plane x {h:g} h", h, "eks_cluster_hour")
        self._cache()
        nats = idx.of_type(NAT_GATEWAY)
        for r in nats:
            self.add(r, f"NAT gateway x {h:g} h", h, "nat_gateway_hour")
            self.add(
                r,
                f"NAT data processed ({a.nat_data_gb:g} GB / {len(nats)} gateways)",
                a.nat_data_gb / len(nats),
                "nat_gateway_gb",
            )
        for r in idx.of_type("aws:ec2/eip:Eip"):
            self.add(r, f"public IPv4 address x {h:g} h", h, "public_ipv4_hour")
        self._endpoints()
        self._logs()
        self._alarms()
        keys = idx.of_type("aws:kms/key:Key")
        for r in keys:
            self.add(r, "KMS key", 1, "kms_key_month")
            self.add(
                r,
                f"KMS requests ({a.kms_requests:,.0f} / {len(keys)} keys)",
                a.kms_requests / len(keys) / 10_000,
                "kms_10000",
            )
        secrets = idx.of_type("aws:secretsmanager/secret:Secret")
        for r in secrets:
            self.add(r, "secret", 1, "secret_month")
            self.add(
                r,
                f"Secrets Manager API calls ({a.secrets_api_calls:,.0f} / {len(secrets)} secrets)",
                a.secrets_api_calls / len(secrets) / 10_000,
                "secrets_10000",
            )
        for r in idx.of_type("aws:athena/workgroup:Workgroup"):
            self.add(r, f"Athena scans ({a.athena_tb_scanned:g} TB)", a.athena_tb_scanned, "athena_tb")
        self._queues()
        self._buckets()
        self._apis()

    def _cache(self) -> None:
        for r in self.index.of_type(REPLICATION_GROUP):
            inputs = r.get("inputs") or {}
            if "numNodeGroups" in inputs or "replicasPerNodeGroup" in inputs:
                nodes = _int_or(inputs.get("numNodeGroups"), 1) * (1 + _int_or(inputs.get("replicasPerNodeGroup"), 0))
            else:
                nodes = _int_or(inputs.get("numCacheClusters"), 1)
            itype = str(inputs.get("nodeType") or "")
            price = self.p.instance(itype)
            rate = price.on_demand if price else None
            self.lines.append(
                CostLine(
                    self.index.component_name(r),
                    str(r["name"]),
                    f"{itype} x {nodes} nodes x {self.hours:g} h",
                    nodes * self.hours,
                    "node-hour",
                    rate,
                    price.source if price else "no price entry",
                )
            )
            self.priced.add(r["type"])
            if price and rate and price.reserved_discount:
                self.levers.append(
                    Lever(
                        "reserved",
                        self.index.component_name(r),
                        f"ElastiCache {r['name']}: 1-year no-upfront reserved nodes for all {nodes}",
                        nodes * self.hours * rate * price.reserved_discount,
                        price.reserved_source or price.source,
                    )
                )

    def _endpoints(self) -> None:
        interface = [
            r
            for r in self.index.of_type(VPC_ENDPOINT)
            if (r.get("inputs") or {}).get("vpcEndpointType") in ("Interface", "GatewayLoadBalancer")
        ]
        for r in interface:
            subnets = (r.get("inputs") or {}).get("subnetIds")
            azs = len(subnets) if isinstance(subnets, list) else len(self.index.azs(r, "subnetIds") or ()) or 1
            self.add(
                r, f"interface endpoint x {azs} AZs x {self.hours:g} h", azs * self.hours, "interface_endpoint_hour"
            )
            self.add(
                r,
                f"endpoint data ({self.a.vpc_endpoint_data_gb:g} GB / {len(interface)} endpoints)",
                self.a.vpc_endpoint_data_gb / len(interface),
                "interface_endpoint_gb",
            )
        for r in self.index.of_type(VPC_ENDPOINT):
            self.priced.add(r["type"])  # gateway endpoints (S3) have no charge

    def _logs(self) -> None:
        for r in self.index.of_type("aws:cloudwatch/logGroup:LogGroup"):
            gb = self.a.cloudwatch_logs_gb.get(str(r["name"]), self.a.cloudwatch_logs_gb.get("default", 0.0))
            self.add(r, f"log ingestion ({gb:g} GB)", gb, "logs_ingestion_gb")
            days = (r.get("inputs") or {}).get("retentionInDays")
            months = min(float(days) / 30, 12.0) if isinstance(days, (int, float)) and days > 0 else 12.0
            stored = gb * months * self.a.cloudwatch_logs_compression
            basis = (
                f"{days} days retention" if isinstance(days, (int, float)) and days > 0 else "never expires: 12 months"
            )
            self.add(
                r,
                f"log storage ({gb:g} GB/month x {months:.1f} months ({basis}) x "
                f"{self.a.cloudwatch_logs_compression:g} compressed)",
                stored,
                "logs_storage_gb_month",
            )

    def _alarms(self) -> None:
        for r in self.index.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            inputs = r.get("inputs") or {}
            queries = inputs.get("metricQueries")
            metrics = (
                sum(1 for q in queries if isinstance(q, dict) and q.get("metric")) if isinstance(queries, list) else 1
            )
            periods = [inputs.get("period")] + [
                ((q.get("metric") or {}).get("period")) for q in queries or [] if isinstance(q, dict)
            ]
            high = any(isinstance(p, (int, float)) and p < 60 for p in periods)
            key = "alarm_high_resolution_month" if high else "alarm_month"
            self.add(r, f"alarm, {metrics} metric(s)" + (" (high resolution)" if high else ""), max(metrics, 1), key)
        for r in self.index.of_type("aws:cloudwatch/compositeAlarm:CompositeAlarm"):
            self.add(r, "composite alarm", 1, "composite_alarm_month")

    def _queues(self) -> None:
        queues = self.index.of_type(QUEUE)
        work = [q for q in queues if not (q.get("inputs") or {}).get("redriveAllowPolicy")]
        for q in queues:
            self.priced.add(q["type"])
        for q in work:
            fifo = (q.get("inputs") or {}).get("fifoQueue") is True
            share = self.a.sqs_requests / len(work) / 1_000_000
            self.add(
                q,
                f"SQS {'FIFO ' if fifo else ''}requests ({self.a.sqs_requests:,.0f} / {len(work)} work queues)",
                share,
                "sqs_fifo_million" if fifo else "sqs_standard_million",
            )
        if len(queues) > len(work):
            self.notes.append(f"{len(queues) - len(work)} dead-letter queue(s): requests taken as negligible")

    def _buckets(self) -> None:
        idx, a = self.index, self.a
        lifecycles = {d["urn"]: lc for lc in idx.of_type(BUCKET_LIFECYCLE) for d in idx.deps(lc, "bucket")}
        log_targets = {d["urn"] for b in idx.of_type(BUCKET_LOGGING) for d in idx.deps(b, "targetBucket")}
        destinations = {d["urn"] for rep in idx.of_type(BUCKET_REPLICATION) for d in idx.deps(rep, "rules")}
        written: dict[str, float] = {}
        for bucket in idx.of_type(BUCKET):
            lc = lifecycles.get(bucket["urn"])
            total = 0.0
            for rule in ((lc or {}).get("inputs") or {}).get("rules") or []:
                gb, classes = _steady_state(rule, a.s3_gb)
                total += gb
                for storage_class, stored in classes.items():
                    key = f"s3_{storage_class.lower()}_gb_month"
                    if key not in self.p.services:
                        self.notes.append(
                            f"{bucket['name']}: no price for S3 class {storage_class}; priced as STANDARD"
                        )
                        key = "s3_standard_gb_month"
                    prefix = (rule.get("filter") or {}).get("prefix", "")
                    self.add(
                        bucket,
                        f"{storage_class} storage, {prefix or '(whole bucket)'}: {gb:g} GB/month "
                        f"held {stored / gb * 30 if gb else 0:.0f} days",
                        stored,
                        key,
                    )
            written[bucket["urn"]] = total
        data = [
            b
            for b in idx.of_type(BUCKET)
            if b["urn"] not in log_targets and b["urn"] not in destinations and written.get(b["urn"])
        ]
        for b in data:
            self.add(
                b,
                f"PUT requests ({a.s3_put_requests:,.0f} / {len(data)} buckets)",
                a.s3_put_requests / len(data) / 1000,
                "s3_put_1000",
            )
            self.add(
                b,
                f"GET requests ({a.s3_get_requests:,.0f} / {len(data)} buckets)",
                a.s3_get_requests / len(data) / 1000,
                "s3_get_1000",
            )
        for rep in idx.of_type(BUCKET_REPLICATION):
            sources = idx.deps(rep, "bucket")
            gb = sum(written.get(s["urn"], 0.0) for s in sources)
            self.add(rep, f"cross-region replication ({gb:g} GB/month)", gb, "s3_replication_gb")
            rules = (rep.get("inputs") or {}).get("rules") or []
            if any(
                isinstance(r, dict)
                and ((r.get("destination") or {}).get("replicationTime") or {}).get("status") == "Enabled"
                for r in rules
            ):
                self.add(rep, f"Replication Time Control ({gb:g} GB/month)", gb, "s3_rtc_gb")
        for b in idx.of_type(BUCKET):
            self.priced.add(b["type"])

    def _apis(self) -> None:
        idx, a = self.index, self.a
        apis = idx.of_type(REST_API, HTTP_API)
        for api in apis:
            key = "apigw_rest_million" if api["type"] == REST_API else "apigw_http_million"
            self.add(
                api, f"API requests ({a.api_requests:,.0f} / {len(apis)} APIs)", a.api_requests / len(apis) / 1e6, key
            )
        for stage in idx.of_type(REST_STAGE):
            inputs = stage.get("inputs") or {}
            if inputs.get("cacheClusterEnabled") is True:
                size = str(inputs.get("cacheClusterSize") or "0.5")
                key = f"apigw_cache_{size}_hour"
                if key in self.p.services:
                    self.add(stage, f"stage cache {size} GB x {self.hours:g} h", self.hours, key)
                else:
                    self.notes.append(f"{stage['name']}: no price for a {size} GB stage cache")
        for acl in idx.of_type("aws:wafv2/webAcl:WebAcl"):
            rules = (acl.get("inputs") or {}).get("rules")
            count = len(rules) if isinstance(rules, list) else 0
            self.add(acl, "web ACL", 1, "waf_web_acl_month")
            if count:
                self.add(acl, f"WAF rules ({count})", count, "waf_rule_month")
            self.add(acl, f"WAF requests ({a.api_requests:,.0f})", a.api_requests / 1e6, "waf_million")

    def _platform_extras(self) -> None:
        """Network load balancers, the gateway's RDS database and dashboards."""
        idx, h = self.index, self.hours
        for nlb in idx.of_type("aws:lb/loadBalancer:LoadBalancer"):
            self.add(nlb, f"load balancer x {h:g} h", h, "nlb_hour")
            self.add(nlb, f"one capacity unit x {h:g} h", h, "nlb_lcu_hour")
        for db in idx.of_type("aws:rds/instance:Instance"):
            inputs = db.get("inputs") or {}
            copies = 2 if inputs.get("multiAz") is True else 1
            key = f"rds_{inputs.get('instanceClass')}_hour"
            if key in self.p.services:
                self.add(db, f"{inputs.get('instanceClass')} x {copies} x {h:g} h", copies * h, key)
            else:
                self.notes.append(f"{db['name']}: no price for RDS {inputs.get('instanceClass')}")
            storage = float(inputs.get("allocatedStorage") or 0)
            self.add(db, f"storage {storage:g} GB x {copies}", copies * storage, "rds_gp3_gb_month")
        for board in idx.of_type("aws:cloudwatch/dashboard:Dashboard"):
            self.add(board, "dashboard", 1, "dashboard_month")

    def unpriced(self) -> tuple[str, ...]:
        types = {r["type"] for r in self.index.resources}
        return tuple(sorted(t for t in types - self.priced if not t.startswith(NO_CHARGE_PREFIXES)))


def served_models(index: ManifestIndex) -> dict[str, PoolModel]:
    """What each GPU pool serves, read from the vLLM Deployments of the plan: pool name to model and limits.

    A Deployment counts when its pod selects a pool (node selector ``agent-infra/model-pool``) and a
    container's args name ``--model`` (a models.yaml name or Hugging Face repo; an ``-Instruct`` variant maps
    to its base model, whose architecture is the same).
    """
    from agentinfra_policies.sizing import load_models

    models = load_models()
    by_repo = {m.hf_repo.lower(): m.name for m in models.values()}
    found: dict[str, PoolModel] = {}
    for deployment in index.of_type("kubernetes:apps/v1:Deployment"):
        pod = _dig(deployment.get("inputs"), "spec", "template", "spec")
        pool = _dig(pod, "nodeSelector", "agent-infra/model-pool")
        for container in _dig(pod, "containers") or []:
            args = [str(a) for a in (container.get("args") or [])] if isinstance(container, dict) else []
            flags = _flags(args)
            repo = flags.get("--model", "")
            name = (
                repo
                if repo in models
                else by_repo.get(repo.lower()) or by_repo.get(repo.lower().removesuffix("-instruct"))
            )
            if not isinstance(pool, str) or name is None:
                continue
            quant = flags.get("--quantization")
            dtype = (
                quant if quant in ("awq", "gptq", "fp8") else {"float16": "fp16"}.get(flags.get("--dtype", ""), "bf16")
            )
            found[pool] = PoolModel(
                model=name,
                dtype=dtype,
                max_model_len=_int_or(_to_int(flags.get("--max-model-len")), 8192),
                max_num_seqs=_int_or(_to_int(flags.get("--max-num-seqs")), 256),
                tensor_parallel_size=_to_int(flags.get("--tensor-parallel-size")),
            )
    return found


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _flags(args: list[str]) -> dict[str, str]:
    """``--flag value`` and ``--flag=value`` pairs of a command line."""
    out: dict[str, str] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            if "=" in arg:
                key, value = arg.split("=", 1)
                out[key] = value
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                out[arg] = args[i + 1]
    return out


def _to_int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _token_price(
    arch: Any,
    spec: PoolModel,
    dtype: str,
    instance_type: str,
    hourly: float | None,
    instance: Any = None,
    tp: int | None = None,
) -> float | None:
    """USD per useful KV-cache token-hour of ``instance_type`` with the smallest TP size that fits (None: no fit).

    Useful tokens of a replica: its KV cache, up to the ``max_num_seqs x max_model_len`` the pool asks for
    (a bigger cache than that is never used).
    """
    from agentinfra_policies.catalog import load_catalog
    from agentinfra_policies.sizing import size, valid_tp_sizes

    spec_i = instance or load_catalog().get(instance_type)
    if spec_i is None or hourly is None:
        return None
    for size_tp in (tp,) if tp else valid_tp_sizes(arch, spec_i.gpus):
        plan = size(
            arch,
            dtype=dtype,
            tp=size_tp,
            gpu_memory_gib=spec_i.gpu_memory_gib,
            gpus_per_instance=spec_i.gpus,
            max_model_len=spec.max_model_len,
            max_num_seqs=spec.max_num_seqs,
        )
        useful = min(plan.kv_tokens_available, spec.max_num_seqs * spec.max_model_len)
        if plan.fits and useful > 0:
            return hourly / plan.replicas_per_instance / useful
    return None


def _int_or(value: Any, default: int) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _steady_state(rule: Mapping[str, Any], volumes: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    """GB held per storage class once a lifecycle rule has run long enough, for the GB written per month.

    Objects spend ``days`` in each class between transitions, up to expiration (12 months when a rule
    never expires), so the class holds ``GB per month / 30 x days``.
    """
    if not isinstance(rule, dict) or rule.get("status") != "Enabled":
        return 0.0, {}
    prefix = (rule.get("filter") or {}).get("prefix", "") if isinstance(rule.get("filter"), dict) else ""
    transitions = sorted(
        (t for t in rule.get("transitions") or [] if isinstance(t, dict)), key=lambda t: _int_or(t.get("days"), 0)
    )
    expiration = _int_or((rule.get("expiration") or {}).get("days"), 0) if rule.get("expiration") else 0
    if prefix not in volumes or not (transitions or expiration):
        return 0.0, {}
    gb = volumes[prefix]
    end = expiration or 365
    stages = [("STANDARD", 0)] + [(str(t.get("storageClass")), _int_or(t.get("days"), 0)) for t in transitions]
    held: dict[str, float] = {}
    for i, (storage_class, start) in enumerate(stages):
        stop = min(stages[i + 1][1] if i + 1 < len(stages) else end, end)
        if stop > start:
            held[storage_class] = held.get(storage_class, 0.0) + gb / 30 * (stop - start)
    return gb, held


def monthly_cost(
    manifest: Mapping[str, Any], assumptions: Assumptions | None = None, prices: Prices | None = None
) -> CostReport:
    """Price a plan: monthly USD per component and in total, and the savings levers."""
    assumptions = assumptions or Assumptions()
    prices = prices or load_prices()
    pricer = _Pricer(manifest, assumptions, prices)
    pricer.groups()
    pricer.services()
    region = pricer.index.region()
    notes = list(dict.fromkeys(pricer.notes))
    if region and region != prices.region:
        notes.insert(0, f"the plan's region is {region}; the price table holds {prices.region} list prices")
    levers = sorted(pricer.levers, key=lambda lv: (-(lv.monthly_savings or 0), lv.kind, lv.component))
    return CostReport(
        environment=pricer.index.environment,
        region=region,
        assumptions=assumptions,
        lines=tuple(pricer.lines),
        levers=tuple(levers),
        notes=tuple(notes),
        unpriced_types=pricer.unpriced(),
        price_date=prices.date,
        price_region=prices.region,
    )


def cost_delta(
    base: Mapping[str, Any],
    head: Mapping[str, Any],
    assumptions: Assumptions | None = None,
    prices: Prices | None = None,
) -> float:
    """Monthly cost of ``head`` minus that of ``base`` (USD), with the same assumptions and prices."""
    return monthly_cost(head, assumptions, prices).total - monthly_cost(base, assumptions, prices).total


# -- rendering ------------------------------------------------------------------------------------------------


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _short_source(url: str) -> str:
    return url.removeprefix("https://").removeprefix("http://").rstrip("/")


def render(report: CostReport) -> str:
    """Per-component lines and totals, the grand total, the levers and the notes, as plain text."""
    lines = [
        f"monthly cost of {report.environment} (USD, {report.assumptions.hours_per_month:g} h/month; "
        f"{report.price_region} list prices read {report.price_date}, recalled, to be checked against each source)",
        "",
    ]
    for component, total in report.components.items():
        lines.append(f"{component}: {_usd(total)}/month")
        for line in report.component_lines(component):
            price = "no list price" if line.unit_price is None else f"{_usd_rate(line.unit_price)}/{line.unit}"
            lines.append(
                f"  {_usd(line.monthly):>12}  {line.resource}: {line.item}; {line.quantity:,.4g} x {price}"
                f"  [{_short_source(line.source)}]"
            )
        lines.append("")
    width = max((len(c) for c in report.components), default=5)
    lines.append("per component:")
    lines += [f"  {c:<{width}}  {_usd(t):>12}" for c, t in report.components.items()]
    lines.append(f"  {'TOTAL':<{width}}  {_usd(report.total):>12}")
    lines += ["", "levers (estimated monthly savings, each against the total above, not additive):"]
    if not report.levers:
        lines.append("  none found")
    for lever in report.levers:
        saving = "not estimated" if lever.monthly_savings is None else _usd(lever.monthly_savings)
        lines.append(f"  {lever.kind:<16} {saving:>12}  {lever.description}")
    if report.notes or report.unpriced_types:
        lines += ["", "notes:"]
        lines += [f"  {n}" for n in report.notes]
        if report.unpriced_types:
            lines.append(f"  no price rule for: {', '.join(report.unpriced_types)}")
    return "\n".join(lines)


def _usd_rate(value: float) -> str:
    return f"${value:,.6g}" if value < 1 else f"${value:,.4f}".rstrip("0").rstrip(".")
