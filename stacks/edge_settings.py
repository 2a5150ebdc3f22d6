"""Settings of the edge: the API Gateway entry point (``agent-infra:api``) and the Istio mesh with tracing
(``agent-infra:mesh``). They parse straight into the components' own types; every problem names its key."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from components.api_gateway import (
    CognitoAuthorizer,
    CustomDomain,
    LambdaAuthorizer,
    QuotaPeriod,
    RouteSpec,
    RouteTarget,
    Throttle,
    UsagePlanTier,
    WafSettings,
)
from components.model_gateway import LITELLM_IMAGE, PROVIDERS, CloudModel, DatabaseSettings, UsageLimits
from components.observability import MonthlyBudget, Thresholds
from components.telemetry import TraceExporter

from .reader import REQUIRED, Node

WAF_WINDOWS = (60, 120, 300, 600)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class ApiSettings:
    """The REST API: authoriser, routes, rate limits at every level the seed names."""

    routes: tuple[RouteSpec, ...]
    authorizer: CognitoAuthorizer | LambdaAuthorizer
    default_throttle: Throttle
    """Global: stage default throttling (token bucket: rate per second, burst)."""
    usage_plans: tuple[UsagePlanTier, ...]
    """Per user: usage plans with API keys."""
    waf: WafSettings | None
    """Global: a WAF rate-based rule per client IP; None for no WAF (dev)."""
    custom_domain: CustomDomain | None
    owns_account_settings: bool
    """This stack owns API Gateway's account-level CloudWatch role (one stack per account and region)."""


@dataclass(frozen=True)
class MeshSettings:
    """Istio and the OpenTelemetry collector."""

    stream_timeout_seconds: int
    """Route timeout of model services: long enough that the mesh never cuts a streamed response."""
    agent_timeout_seconds: int
    sampling_percent: float
    ingress_min_replicas: int
    ingress_max_replicas: int
    aws_services: tuple[str, ...]
    """AWS APIs the agents and the gateway reach (STS, SQS, Secrets Manager, S3 ...)."""
    model_providers: tuple[str, ...]
    """Hosts of cloud model providers the agents and the model gateway may call."""
    traces: TraceExporter
    traces_endpoint: str | None


def _throttle(node: Node, rate_key: str = "rate", burst_key: str = "burst", *, required: bool) -> Throttle | None:
    rate = node.number(rate_key, REQUIRED if required else None, min=0.1)
    burst = node.integer(burst_key, REQUIRED if required else None, min=1)
    if rate is None and burst is None:
        return None
    if rate is None or burst is None:
        missing = rate_key if rate is None else burst_key
        node.fail(missing, f"expected both {rate_key} and {burst_key} (a token bucket: rate per second and burst)")
        return None
    return Throttle(rate_limit=rate, burst_limit=burst)


def _route(node: Node) -> RouteSpec | None:
    path = node.text("path", pattern=r"[a-z0-9{}_/-]+", what="a path such as agents/{agent_id}/tasks")
    method = node.text("method", "GET", choices=METHODS)
    target = node.text("target", "mesh", choices=[t.value for t in RouteTarget])
    streaming = node.flag("streaming", False)
    timeout = node.duration_seconds("timeout", None, min=1, max=900)
    throttle = _throttle(node, required=False)
    public = node.flag("public", False)
    reason = node.text("public_reason", "")
    if public and not reason:
        node.fail("public", "expected an authoriser on every route: a public route needs public_reason saying why")
        return None
    if None in (path, method, target, streaming, public):
        return None
    return RouteSpec(
        path=path,
        method=method,
        target=RouteTarget(target),
        streaming=streaming,
        timeout_seconds=timeout,
        throttle=throttle,
        public=public,
        public_reason=reason or "",
    )


def _usage_plan(node: Node) -> UsagePlanTier | None:
    name = node.text("name", pattern=r"[a-z][a-z0-9-]*", what="a lower-case name")
    throttle = _throttle(node, required=True)
    quota = node.integer("quota", min=1)
    period = node.text("period", "DAY", choices=[p.value for p in QuotaPeriod])
    keys = node.str_list("api_keys", ())
    if None in (name, throttle, quota, period, keys):
        return None
    assert throttle is not None
    return UsagePlanTier(
        name=name, throttle=throttle, quota_limit=quota, quota_period=QuotaPeriod(period), api_keys=keys
    )


def parse_api(node: Node) -> ApiSettings | None:
    routes = tuple(node.children("routes", _route, required=True))
    auth_node = node.child("authorizer", required=True)
    authorizer: CognitoAuthorizer | LambdaAuthorizer | None = None
    if auth_node is not None:
        kind = auth_node.text("kind", choices=["cognito", "lambda"])
        if kind == "cognito":
            arn = auth_node.text("user_pool_arn", None, pattern=r"arn:aws[\w-]*:cognito-idp:.+", what="a user pool ARN")
            create = auth_node.flag("create_user_pool", False)
            if (arn is None) == (not create):
                auth_node.fail("user_pool_arn", "expected exactly one of user_pool_arn or create_user_pool: true")
            else:
                authorizer = CognitoAuthorizer(user_pool_arn=arn, create_user_pool=bool(create))
        elif kind == "lambda":
            function = auth_node.text("function_arn", pattern=r"arn:aws[\w-]*:lambda:.+", what="a Lambda ARN")
            ttl = auth_node.integer("result_ttl_seconds", 300, min=0, max=3600)
            if function and ttl is not None:
                authorizer = LambdaAuthorizer(function_arn=function, result_ttl_seconds=ttl)
        auth_node.finish()
    default = node.child("default_throttle", required=True)
    default_throttle = _throttle(default, required=True) if default else None
    if default:
        default.finish()
    plans = tuple(node.children("usage_plans", _usage_plan))
    waf_node = node.child("waf")
    waf = None
    if waf_node is not None:
        limit = waf_node.integer("rate_limit", 2000)
        if limit is not None and limit < 10:
            waf_node.fail("rate_limit", f"expected at least 10 requests per window (WAF's minimum), found {limit}")
            limit = None
        window = waf_node.duration_seconds("window", 300)
        if window is not None and window not in WAF_WINDOWS:
            waf_node.fail("window", f"expected one of 60s, 120s, 300s or 600s (WAF's windows), found {window}s")
            window = None
        retention = waf_node.integer("log_retention_days", 30, min=1)
        waf_node.finish()
        if limit is not None and window is not None:
            waf = WafSettings(rate_limit=limit, window_seconds=window, log_retention_days=retention)
    domain_node = node.child("custom_domain")
    domain = None
    if domain_node is not None:
        name = domain_node.text("name", pattern=r"[a-z0-9.-]+\.[a-z]{2,}", what="a domain name")
        cert = domain_node.text("certificate_arn", pattern=r"arn:aws[\w-]*:acm:.+", what="an ACM certificate ARN")
        domain_node.finish()
        if name and cert:
            domain = CustomDomain(domain_name=name, certificate_arn=cert)
    owns = node.flag("owns_account_settings", False)
    node.finish()
    if authorizer is None or default_throttle is None or owns is None or not routes:
        return None
    return ApiSettings(
        routes=routes,
        authorizer=authorizer,
        default_throttle=default_throttle,
        usage_plans=plans,
        waf=waf,
        custom_domain=domain,
        owns_account_settings=owns,
    )


def parse_mesh(node: Node) -> MeshSettings | None:
    stream = node.duration_seconds("stream_timeout", 900, max=3600)
    if stream is not None and stream < 60:
        node.fail(
            "stream_timeout",
            f"expected at least 60s: shorter proxy timeouts cut streamed model responses, found {stream}s",
        )
        stream = None
    agent = node.duration_seconds("agent_timeout", 300, min=1, max=3600)
    sampling = node.number("sampling_percent", 10.0, min=0, max=100)
    lo = node.integer("ingress_min_replicas", 2, min=2)
    hi = node.integer("ingress_max_replicas", 6, min=2)
    if lo is not None and hi is not None and lo > hi:
        node.fail("ingress_min_replicas", f"expected at most ingress_max_replicas ({hi}), found {lo}")
        lo = None
    services = node.str_list("aws_services", ("sts", "sqs", "secretsmanager", "s3"))
    providers = node.str_list("model_providers", ())
    for index, host in enumerate(providers or ()):
        if host.startswith("*") or "/" in host:
            node.problems.add(
                f"{node.key('model_providers')}[{index}]",
                f"expected a host name such as api.openai.com (no wildcards: egress is explicit), found {host!r}",
            )
            providers = None
    traces = node.text("traces", "xray", choices=[t.value for t in TraceExporter])
    endpoint = node.text("traces_endpoint", None)
    if traces not in (None, "xray") and not endpoint:
        node.fail("traces_endpoint", f"expected the collector endpoint for {traces} traces")
        traces = None
    node.finish()
    if None in (stream, agent, sampling, lo, hi, services, providers, traces):
        return None
    return MeshSettings(
        stream_timeout_seconds=stream,
        agent_timeout_seconds=agent,
        sampling_percent=sampling,
        ingress_min_replicas=lo,
        ingress_max_replicas=hi,
        aws_services=services,
        model_providers=providers,
        traces=TraceExporter(traces),
        traces_endpoint=endpoint,
    )


@dataclass(frozen=True)
class ObservabilitySettings:
    """Alarm thresholds, the monthly budget and who is told."""

    thresholds: Thresholds
    budget: MonthlyBudget | None
    alarm_emails: tuple[str, ...]


_EMAIL = r"[^@\s]+@[^@\s]+\.[a-z]{2,}"


def parse_observability(node: Node) -> ObservabilitySettings | None:
    emails = node.str_list("alarm_emails", ())
    for index, email in enumerate(emails or ()):
        if not re.fullmatch(_EMAIL, email):
            node.problems.add(f"{node.key('alarm_emails')}[{index}]", f"expected an e-mail address, found {email!r}")
    budget_node = node.child("budget")
    budget = None
    if budget_node is not None:
        limit = budget_node.number("monthly_limit_usd", min=1)
        actual = budget_node.number("actual_percent", 80.0, min=1, max=1000)
        forecast = budget_node.number("forecasted_percent", 100.0, min=1, max=1000)
        budget_emails = budget_node.str_list("emails", ())
        budget_node.finish()
        if None not in (limit, actual, forecast, budget_emails):
            budget = MonthlyBudget(
                limit_usd=limit, actual_percent=actual, forecasted_percent=forecast, emails=budget_emails
            )
    values: dict[str, Any] = {}
    thresholds_node = node.child("thresholds")
    if thresholds_node is not None:
        for field in dataclasses.fields(Thresholds):
            if field.name not in thresholds_node.raw:
                continue
            if field.name.endswith(("_window", "_for")):
                value = thresholds_node.text(field.name, pattern=r"\d+[smh]", what="a Prometheus duration such as 15m")
            else:
                value = thresholds_node.number(field.name, min=0)
            if value is not None:
                values[field.name] = int(value) if isinstance(value, float) and value.is_integer() else value
        thresholds_node.finish()
    node.finish()
    if emails is None:
        return None
    return ObservabilitySettings(thresholds=Thresholds(**values), budget=budget, alarm_emails=emails)


@dataclass(frozen=True)
class GatewayModel:
    """A local model pool behind the gateway, with its fallbacks (pool or cloud model names) in order."""

    pool: str
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True)
class GatewaySettings:
    """The OpenAI-compatible model gateway (LiteLLM's proxy)."""

    image: str
    replicas: int
    max_replicas: int
    models: tuple[GatewayModel, ...]
    cloud_models: tuple[CloudModel, ...]
    agent_limits: UsageLimits | None
    user_limits: UsageLimits | None
    global_limits: UsageLimits | None
    database: DatabaseSettings


def _limits(node: Node | None) -> UsageLimits | None:
    if node is None:
        return None
    limits = UsageLimits(
        rpm=node.integer("rpm", None, min=1),
        tpm=node.integer("tpm", None, min=1),
        max_parallel_requests=node.integer("max_parallel_requests", None, min=1),
        max_budget_usd=node.number("budget_usd", None, min=0.01),
        budget_duration=node.text("budget_period", None, pattern=r"\d+[smhd]", what="a period such as 1d or 30d"),
    )
    node.finish()
    return limits


def parse_gateway(node: Node, pools: tuple[str, ...]) -> GatewaySettings | None:
    image = node.text(
        "image",
        LITELLM_IMAGE,
        pattern=r"[\w./-]+:(?!latest$|main-stable$|main-latest$)[\w.-]+",
        what="a pinned LiteLLM image tag (never latest or main-stable)",
    )
    replicas = node.integer("replicas", 2, min=2)
    max_replicas = node.integer("max_replicas", 6, min=2)

    def cloud(item: Node) -> CloudModel | None:
        name = item.text("name", pattern=r"[a-z][a-z0-9.-]*", what="a lower-case model name")
        provider = item.text("provider", choices=sorted(PROVIDERS))
        model = item.text("model")
        rpm, tpm = item.integer("rpm", None, min=1), item.integer("tpm", None, min=1)
        if None in (name, provider, model):
            return None
        return CloudModel(name=name, provider=provider, model=model, rpm=rpm, tpm=tpm)

    clouds = tuple(node.children("cloud_models", cloud))
    targets = set(pools) | {c.name for c in clouds}

    def model(item: Node) -> GatewayModel | None:
        pool = item.text("pool", choices=list(pools) or None)
        chains: dict[str, tuple[str, ...]] = {}
        for key in ("fallbacks", "context_window_fallbacks"):
            chain = item.str_list(key, ())
            for index, target in enumerate(chain or ()):
                if target not in targets:
                    item.problems.add(
                        f"{item.key(key)}[{index}]",
                        f"expected a model pool or a cloud model ({', '.join(sorted(targets))}), found {target!r}",
                    )
                    chain = None
            chains[key] = chain or ()
        rpm, tpm = item.integer("rpm", None, min=1), item.integer("tpm", None, min=1)
        if pool is None:
            return None
        return GatewayModel(
            pool=pool,
            fallbacks=chains["fallbacks"],
            context_window_fallbacks=chains["context_window_fallbacks"],
            rpm=rpm,
            tpm=tpm,
        )

    models = tuple(node.children("models", model, required=True))
    limits = node.child("limits")
    agent = user = whole = None
    if limits is not None:
        agent, user, whole = (_limits(limits.child(k)) for k in ("per_agent", "per_user", "global"))
        limits.finish()
    db = node.child("database")
    database = DatabaseSettings()
    if db is not None:
        database = DatabaseSettings(
            instance_class=db.text(
                "instance_class",
                "db.t4g.medium",
                pattern=r"db\.[a-z0-9]+\.[a-z0-9]+",
                what="an RDS instance class such as db.r7g.large",
            ),
            engine_version=db.text("engine_version", "16.8", pattern=r"\d+\.\d+", what="a PostgreSQL version"),
            multi_az=db.flag("multi_az", True),
            allocated_storage_gib=db.integer("allocated_storage_gib", 20, min=20),
            max_allocated_storage_gib=db.integer("max_allocated_storage_gib", 100, min=20),
            backup_retention_days=db.integer("backup_retention_days", 7, min=1, max=35),
        )
        db.finish()
    node.finish()
    if None in (image, replicas, max_replicas):
        return None
    return GatewaySettings(
        image=image,
        replicas=replicas,
        max_replicas=max_replicas,
        models=models,
        cloud_models=clouds,
        agent_limits=agent,
        user_limits=user,
        global_limits=whole,
        database=database,
    )
