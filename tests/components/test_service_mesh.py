"""Istio mesh and OpenTelemetry collector: strict mTLS, stream-safe routes, scoped egress, pinned releases."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
from helpers import record_component, resources_of

from components import iam
from components.aws_env import AwsEnvironment
from components.cluster_services import Chart
from components.service_mesh import (
    CONNECTION_FAILURES,
    HUGGING_FACE_HOSTS,
    ISTIO_CHARTS,
    CircuitBreaker,
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
from components.telemetry import MetricsExporter, OtelCollector, OtelCollectorArgs, TraceExporter
from components.validation import InputPropertiesError

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
COLLECTOR_HOST = "otel-collector.observability.svc.cluster.local"
STREAM_TIMEOUT = 900
ENV = AwsEnvironment("123456789012", "eu-west-1")

#: Top-level spec fields of each Istio kind, from the Istio API reference (networking/security/telemetry v1).
SPEC_FIELDS = {
    "PeerAuthentication": {"selector", "mtls", "portLevelMtls"},
    "DestinationRule": {"host", "trafficPolicy", "subsets", "exportTo", "workloadSelector"},
    "VirtualService": {"hosts", "gateways", "http", "tls", "tcp", "exportTo"},
    "Sidecar": {"workloadSelector", "ingress", "egress", "outboundTrafficPolicy", "inboundConnectionPool"},
    "ServiceEntry": {
        "hosts",
        "addresses",
        "ports",
        "location",
        "resolution",
        "endpoints",
        "exportTo",
        "subjectAltNames",
        "workloadSelector",
    },
    "Telemetry": {"selector", "targetRefs", "tracing", "metrics", "accessLogging"},
    "Gateway": {"selector", "servers"},
}
API_VERSIONS = {
    "PeerAuthentication": "security.istio.io/v1",
    "Telemetry": "telemetry.istio.io/v1",
    **{
        k: "networking.istio.io/v1" for k in ("DestinationRule", "VirtualService", "Sidecar", "ServiceEntry", "Gateway")
    },
}
#: Nested messages the mesh fills in, with their fields from the same reference.
NESTED_FIELDS = {
    ("DestinationRule", "trafficPolicy"): {
        "loadBalancer",
        "connectionPool",
        "outlierDetection",
        "tls",
        "portLevelSettings",
        "tunnel",
        "proxyProtocol",
    },
    ("DestinationRule", "trafficPolicy.connectionPool.tcp"): {
        "maxConnections",
        "connectTimeout",
        "tcpKeepalive",
        "maxConnectionDuration",
        "idleTimeout",
    },
    ("DestinationRule", "trafficPolicy.connectionPool.http"): {
        "http1MaxPendingRequests",
        "http2MaxRequests",
        "maxRequestsPerConnection",
        "maxRetries",
        "idleTimeout",
        "h2UpgradePolicy",
        "useClientProtocol",
        "maxConcurrentStreams",
    },
    ("DestinationRule", "trafficPolicy.outlierDetection"): {
        "splitExternalLocalOriginErrors",
        "consecutiveLocalOriginFailures",
        "consecutiveGatewayErrors",
        "consecutive5xxErrors",
        "interval",
        "baseEjectionTime",
        "maxEjectionPercent",
        "minHealthPercent",
    },
    ("VirtualService", "http.0"): {
        "name",
        "match",
        "route",
        "redirect",
        "directResponse",
        "delegate",
        "rewrite",
        "timeout",
        "retries",
        "fault",
        "mirror",
        "mirrors",
        "mirrorPercentage",
        "corsPolicy",
        "headers",
    },
    ("VirtualService", "http.0.retries"): {
        "attempts",
        "perTryTimeout",
        "retryOn",
        "retryRemoteLocalities",
        "retryIgnorePreviousHosts",
        "backoff",
    },
    ("Sidecar", "egress.0"): {"port", "bind", "captureMode", "hosts"},
    ("Telemetry", "tracing.0"): {
        "match",
        "providers",
        "randomSamplingPercentage",
        "disableSpanReporting",
        "customTags",
        "useRequestIdForTraceSampling",
    },
}

MODELS = (MeshService("llama-8b", "models", port=8000), MeshService("llama-70b", "models", port=8000))
AGENTS = (
    MeshService("planner", "agents", port=8080),
    # An idempotent API that opts in to 5xx retries.
    MeshService("tool-lookup", "agents", port=8080, retry_on=(*CONNECTION_FAILURES, "5xx")),
)
EGRESS = (
    aws_api_egress("eu-west-1", ("agents", "gateway")),
    redis_egress(("agents", "gateway")),
    model_provider_egress(("api.openai.com", "api.anthropic.com"), ("agents",)),
    hugging_face_egress(("models",)),
)


def _mesh_args(provider: k8s.Provider, **changes: Any) -> ServiceMeshArgs:
    base: dict[str, Any] = dict(
        provider=provider,
        collector_host=COLLECTOR_HOST,
        cluster_name="agent-infra-test-eks",
        model_services=MODELS,
        agent_services=AGENTS,
        stream_timeout_seconds=STREAM_TIMEOUT,
        agent_timeout_seconds=120,
        egress=EGRESS,
        sampling_percent=10,
        ingress_backend=MeshService("api", "gateway", port=8080),
    )
    base.update(changes)
    return ServiceMeshArgs(**base)


def _collector_args(provider: k8s.Provider, **changes: Any) -> OtelCollectorArgs:
    base: dict[str, Any] = dict(
        provider=provider,
        cluster_name="agent-infra-test-eks",
        env=ENV,
        traces=TraceExporter.XRAY,
        metrics=MetricsExporter.PROMETHEUS_REMOTE_WRITE,
        metrics_endpoint="http://kube-prometheus-stack-prometheus.monitoring.svc:9090/api/v1/write",
        service_account_role_arn="arn:aws:iam::123456789012:role/otel-collector",
    )
    base.update(changes)
    return OtelCollectorArgs(**base)


def _record(mesh_changes: dict[str, Any] | None = None, collector_changes: dict[str, Any] | None = None) -> Any:
    """Record the collector and the mesh under one test provider; returns (manifest, built components)."""
    built: dict[str, Any] = {}

    def program() -> None:
        provider = k8s.Provider("test", kubeconfig="{}")
        built["collector"] = OtelCollector("telemetry", _collector_args(provider, **(collector_changes or {})))
        built["mesh"] = ServiceMesh("mesh", _mesh_args(provider, **(mesh_changes or {})))

    return record_component(program), built


@pytest.fixture(scope="module")
def recorded() -> Any:
    return _record()


@pytest.fixture(scope="module")
def plan(recorded: Any) -> dict[str, Any]:
    return recorded[0]


def _istio(m: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in m["resources"] if r["type"] == f"kubernetes:{API_VERSIONS[kind]}:{kind}"]


def _object(m: dict[str, Any], kind: str, namespace: str, name: str) -> dict[str, Any]:
    (found,) = [
        r["inputs"] for r in _istio(m, kind) if r["inputs"]["metadata"] == {"name": name, "namespace": namespace}
    ]
    return found


def _releases(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["inputs"]["chart"]: r for r in resources_of(m, RELEASE)}


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"{duration!r} is not a duration in seconds"
    return int(match.group(1))


def _at(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value[int(part)] if part.isdigit() else value[part]
    return value


# The mesh


def test_mtls_is_strict_mesh_wide_with_one_selectorless_peer_authentication(plan: dict[str, Any]) -> None:
    (policy,) = [r["inputs"] for r in _istio(plan, "PeerAuthentication")]
    assert policy["apiVersion"] == "security.istio.io/v1"
    assert policy["metadata"] == {"name": "default", "namespace": "istio-system"}, "the root namespace: mesh-wide"
    assert policy["spec"] == {"mtls": {"mode": "STRICT"}}, "no selector, no port-level exception"


def test_istio_is_three_releases_of_one_pinned_version_from_istios_repository(plan: dict[str, Any]) -> None:
    releases = _releases(plan)
    istio = {chart: releases[chart]["inputs"] for chart in ("base", "istiod", "gateway")}
    versions = {inputs["version"] for inputs in istio.values()}
    assert len(versions) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", versions.pop()), "one exact version"
    assert {i["repositoryOpts"]["repo"] for i in istio.values()} == {
        "https://istio-release.storage.googleapis.com/charts"
    }
    assert (istio["base"]["namespace"], istio["istiod"]["namespace"], istio["gateway"]["namespace"]) == (
        "istio-system",
        "istio-system",
        "istio-ingress",
    )
    assert releases["base"]["urn"] in releases["istiod"]["dependencies"], "CRDs before the control plane"
    assert releases["istiod"]["urn"] in releases["gateway"]["dependencies"], "injector before gateway pods"
    assert all(i["atomic"] is True for i in istio.values())


def test_istiod_mesh_config_traces_to_the_collector_and_keeps_streams_and_credentials(plan: dict[str, Any]) -> None:
    values = _releases(plan)["istiod"]["inputs"]["values"]
    mesh = values["meshConfig"]
    assert mesh["accessLogFile"] == "/dev/stdout" and mesh["enableTracing"] is True
    assert mesh["extensionProviders"] == [{"name": "otel", "opentelemetry": {"service": COLLECTOR_HOST, "port": 4317}}]
    assert mesh["defaultConfig"]["holdApplicationUntilProxyStarts"] is True
    assert _seconds(mesh["defaultConfig"]["terminationDrainDuration"]) >= STREAM_TIMEOUT
    assert mesh["outboundTrafficPolicy"] == {"mode": "ALLOW_ANY"}, "egress is closed per namespace, not mesh-wide"
    assert set(mesh["defaultHttpRetryPolicy"]["retryOn"].split(",")) == set(CONNECTION_FAILURES)
    assert values["global"]["proxy"]["excludeIPRanges"] == "169.254.170.23/32", "Pod Identity credentials"
    assert values["global"]["multiCluster"]["clusterName"] == "agent-infra-test-eks"
    assert values["autoscaleMin"] >= 2 and values["nodeSelector"] == {"agent-infra/role": "system"}


def test_ingress_gateway_is_a_clusterip_service_with_two_or_more_zone_spread_replicas(recorded: Any) -> None:
    plan, built = recorded
    values = _releases(plan)["gateway"]["inputs"]["values"]
    assert values["service"]["type"] == "ClusterIP", "the NLB targets the pods through a TargetGroupBinding"
    scaling = values["autoscaling"]
    assert scaling["enabled"] is True and scaling["minReplicas"] >= 2 and scaling["maxReplicas"] >= 2
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}
    zone = next(c for c in values["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone")
    assert zone["maxSkew"] == 1 and zone["labelSelector"]["matchLabels"]["istio"] == "ingressgateway"
    assert values["terminationGracePeriodSeconds"] >= STREAM_TIMEOUT, "scale-in lets streams finish"
    mesh = built["mesh"]
    release = _releases(plan)["gateway"]["inputs"]
    assert (mesh.ingress_namespace, mesh.ingress_service_name, mesh.ingress_port) == (
        "istio-ingress",
        release["name"],
        80,
    )
    assert release["name"] == "istio-ingressgateway" == values["name"]


#: Top-level keys the istio/gateway chart's values.schema.json allows (it refuses any other key).
GATEWAY_CHART_KEYS = {
    "_internal_defaults_do_not_set", "global", "affinity", "securityContext", "containerSecurityContext", "kind",
    "annotations", "autoscaling", "env", "strategy", "minReadySeconds", "readinessProbe", "labels", "name",
    "nodeSelector", "podAnnotations", "replicaCount", "resources", "revision", "compatibilityVersion", "runAsRoot",
    "unprivilegedPort", "service", "serviceAccount", "rbac", "tolerations", "topologySpreadConstraints",
    "networkGateway", "imagePullPolicy", "imagePullSecrets", "podDisruptionBudget", "terminationGracePeriodSeconds",
    "volumes", "volumeMounts", "priorityClassName", "lifecycle", "profile", "pilot",
}  # fmt: skip


def test_gateway_values_pass_the_charts_strict_schema(plan: dict[str, Any]) -> None:
    values = _releases(plan)["gateway"]["inputs"]["values"]
    assert set(values) <= GATEWAY_CHART_KEYS
    assert set(values["autoscaling"]) <= {"enabled", "maxReplicas", "minReplicas", "targetCPUUtilizationPercentage"}
    assert set(values["podDisruptionBudget"]) <= {"minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy"}


def test_ingress_gateway_accepts_http_for_gateway_routes_and_routes_without_cutting_streams(
    plan: dict[str, Any],
) -> None:
    gateway = _object(plan, "Gateway", "istio-ingress", "ingress")["spec"]
    assert gateway["selector"] == {"istio": "ingressgateway"}
    (server,) = gateway["servers"]
    assert server["port"]["number"] == 80 and server["hosts"] == ["gateway/*"]
    route = _object(plan, "VirtualService", "gateway", "ingress")["spec"]
    assert route["gateways"] == ["istio-ingress/ingress"]
    (http,) = route["http"]
    assert http["route"] == [{"destination": {"host": "api.gateway.svc.cluster.local", "port": {"number": 8080}}}]
    assert _seconds(http["timeout"]) >= STREAM_TIMEOUT


def test_application_namespaces_have_sidecar_injection_and_system_ones_do_not(plan: dict[str, Any]) -> None:
    labels = {
        r["inputs"]["metadata"]["name"]: r["inputs"]["metadata"].get("labels") for r in resources_of(plan, NAMESPACE)
    }
    assert {ns: labels[ns] for ns in ("agents", "gateway", "models")} == {
        ns: {"istio-injection": "enabled"} for ns in ("agents", "gateway", "models")
    }
    assert all(labels[ns] is None for ns in ("istio-system", "istio-ingress", "istio-egress", "observability"))


@pytest.mark.parametrize("service", [s.name for s in MODELS])
def test_model_services_have_circuit_breakers_with_istio_mutual_tls(plan: dict[str, Any], service: str) -> None:
    spec = _object(plan, "DestinationRule", "models", service)["spec"]
    assert spec["host"] == f"{service}.models.svc.cluster.local"
    policy = spec["trafficPolicy"]
    defaults = CircuitBreaker()
    assert policy["connectionPool"]["tcp"]["maxConnections"] == defaults.max_connections
    http = policy["connectionPool"]["http"]
    assert http["http1MaxPendingRequests"] == defaults.max_pending_requests
    assert http["http2MaxRequests"] == defaults.max_requests
    assert http["maxRequestsPerConnection"] == defaults.max_requests_per_connection
    assert _seconds(http["idleTimeout"]) >= STREAM_TIMEOUT, "an idle pool timeout never shorter than a stream"
    assert policy["outlierDetection"] == {
        "consecutive5xxErrors": 5,
        "interval": "10s",
        "baseEjectionTime": "30s",
        "maxEjectionPercent": 50,
    }
    assert policy["tls"] == {"mode": "ISTIO_MUTUAL"}


@pytest.mark.parametrize("service", [s.name for s in MODELS])
def test_model_routes_outlast_streams_and_retry_only_connection_failures(plan: dict[str, Any], service: str) -> None:
    spec = _object(plan, "VirtualService", "models", service)["spec"]
    host = f"{service}.models.svc.cluster.local"
    assert spec["hosts"] == [host]
    (http,) = spec["http"]
    assert http["route"] == [{"destination": {"host": host, "port": {"number": 8000}}}]
    timeout = _seconds(http["timeout"])
    assert timeout >= STREAM_TIMEOUT
    retries = http["retries"]
    conditions = set(retries["retryOn"].split(","))
    assert conditions == {"connect-failure", "refused-stream", "unavailable"}
    assert not conditions & {"5xx", "reset", "gateway-error", "retriable-status-codes"}, "a stream is never replayed"
    assert retries["attempts"] == 2
    assert "perTryTimeout" not in retries or _seconds(retries["perTryTimeout"]) == timeout


def test_agent_routes_are_shorter_and_retry_5xx_only_where_opted_in(plan: dict[str, Any]) -> None:
    planner = _object(plan, "VirtualService", "agents", "planner")["spec"]["http"][0]
    lookup = _object(plan, "VirtualService", "agents", "tool-lookup")["spec"]["http"][0]
    assert _seconds(planner["timeout"]) == 120 < STREAM_TIMEOUT
    assert planner["retries"]["retryOn"] == "connect-failure,refused-stream,unavailable", "the default"
    assert lookup["retries"]["retryOn"] == "connect-failure,refused-stream,unavailable,5xx"
    assert _object(plan, "DestinationRule", "agents", "planner")["spec"]["trafficPolicy"]["tls"] == {
        "mode": "ISTIO_MUTUAL"
    }


def test_each_application_namespace_is_registry_only_and_imports_only_what_it_needs(plan: dict[str, Any]) -> None:
    sidecars = {r["inputs"]["metadata"]["namespace"]: r["inputs"] for r in _istio(plan, "Sidecar")}
    assert set(sidecars) == {"agents", "gateway", "models"}
    for sidecar in sidecars.values():
        assert sidecar["metadata"]["name"] == "default" and "workloadSelector" not in sidecar["spec"]
        assert sidecar["spec"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    common = [
        "./*",
        "istio-system/*",
        "kube-system/kube-dns.kube-system.svc.cluster.local",
        f"observability/{COLLECTOR_HOST}",
    ]
    (models,) = sidecars["models"]["spec"]["egress"]
    assert models["hosts"] == [
        *common,
        "agents/planner.agents.svc.cluster.local",
        "agents/tool-lookup.agents.svc.cluster.local",
        "gateway/api.gateway.svc.cluster.local",
        *(f"istio-egress/{host}" for host in HUGGING_FACE_HOSTS),
    ]
    (agents,) = sidecars["agents"]["spec"]["egress"]
    external = [h.removeprefix("istio-egress/") for h in agents["hosts"] if h.startswith("istio-egress/")]
    assert external == [
        "sts.eu-west-1.amazonaws.com",
        "sqs.eu-west-1.amazonaws.com",
        "secretsmanager.eu-west-1.amazonaws.com",
        "s3.eu-west-1.amazonaws.com",
        "*.s3.eu-west-1.amazonaws.com",
        "*.cache.amazonaws.com",
        "api.openai.com",
        "api.anthropic.com",
    ]
    assert "models/llama-8b.models.svc.cluster.local" in agents["hosts"]
    (gateway,) = sidecars["gateway"]["spec"]["egress"]
    assert "istio-egress/api.openai.com" not in gateway["hosts"], "only the agents call model providers"


def test_service_entries_list_exactly_the_configured_hosts(plan: dict[str, Any]) -> None:
    entries = {r["inputs"]["metadata"]["name"]: r["inputs"] for r in _istio(plan, "ServiceEntry")}
    assert {e["metadata"]["namespace"] for e in entries.values()} == {"istio-egress"}
    summary = {
        name: (e["spec"]["hosts"], e["spec"]["resolution"], e["spec"]["ports"], e["spec"]["exportTo"])
        for name, e in entries.items()
    }
    tls = [{"number": 443, "name": "tls-443", "protocol": "TLS"}]
    assert summary == {
        "aws-apis": (
            [
                "sts.eu-west-1.amazonaws.com",
                "sqs.eu-west-1.amazonaws.com",
                "secretsmanager.eu-west-1.amazonaws.com",
                "s3.eu-west-1.amazonaws.com",
            ],
            "DNS",
            tls,
            ["agents", "gateway"],
        ),
        "aws-apis-wildcard": (["*.s3.eu-west-1.amazonaws.com"], "NONE", tls, ["agents", "gateway"]),
        "redis-wildcard": (
            ["*.cache.amazonaws.com"],
            "NONE",
            [{"number": 6379, "name": "tcp-6379", "protocol": "TCP"}],
            ["agents", "gateway"],
        ),
        "model-providers": (["api.openai.com", "api.anthropic.com"], "DNS", tls, ["agents"]),
        "hugging-face": (list(HUGGING_FACE_HOSTS), "DNS", tls, ["models"]),
    }
    assert all(e["spec"]["location"] == "MESH_EXTERNAL" for e in entries.values())


def test_mesh_wide_tracing_uses_the_otel_provider_at_the_configured_rate(plan: dict[str, Any]) -> None:
    telemetry = _object(plan, "Telemetry", "istio-system", "mesh-default")
    assert telemetry["apiVersion"] == "telemetry.istio.io/v1"
    assert telemetry["spec"] == {"tracing": [{"providers": [{"name": "otel"}], "randomSamplingPercentage": 10}]}


def test_every_istio_object_has_its_api_version_known_spec_fields_and_waits_for_istiod(plan: dict[str, Any]) -> None:
    istiod = _releases(plan)["istiod"]["urn"]
    objects = [r for r in plan["resources"] if ".istio.io/" in r["type"]]
    assert {r["inputs"]["kind"] for r in objects} == set(SPEC_FIELDS)
    for resource in objects:
        inputs = resource["inputs"]
        kind = inputs["kind"]
        assert resource["type"] == f"kubernetes:{inputs['apiVersion']}:{kind}"
        assert inputs["apiVersion"] == API_VERSIONS[kind]
        assert set(inputs["spec"]) <= SPEC_FIELDS[kind], f"{kind} {inputs['metadata']}: unknown spec fields"
        for (nested_kind, path), allowed in NESTED_FIELDS.items():
            if nested_kind == kind:
                assert set(_at(inputs["spec"], path)) <= allowed, f"{kind}.{path}: unknown fields"
        assert istiod in resource["dependencies"], "CRDs and the validating webhook exist first"
        assert resource["parent"].endswith("::mesh") and resource["provider"].endswith("::test")


def test_an_egress_host_still_unknown_is_imported_by_name() -> None:
    def program() -> None:
        provider = k8s.Provider("test", kubeconfig="{}")
        endpoint = pulumi.Output.from_input("master.agent-redis.abc123.euw1.cache.amazonaws.com")
        ServiceMesh("mesh", _mesh_args(provider, egress=(redis_egress(("agents",), host=endpoint),)))

    plan = record_component(program)
    assert _object(plan, "ServiceEntry", "istio-egress", "redis")["spec"]["resolution"] == "DNS"
    (agents,) = _object(plan, "Sidecar", "agents", "default")["spec"]["egress"]
    assert agents["hosts"][-1] == "istio-egress/master.agent-redis.abc123.euw1.cache.amazonaws.com"


# The collector


def test_collector_is_a_pinned_release_with_a_stable_service_name_and_endpoints(recorded: Any) -> None:
    plan, built = recorded
    release = _releases(plan)["opentelemetry-collector"]["inputs"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", release["version"])
    assert release["repositoryOpts"]["repo"] == "https://open-telemetry.github.io/opentelemetry-helm-charts"
    assert release["namespace"] == "observability" and release["name"] == "otel-collector"
    values = release["values"]
    assert values["fullnameOverride"] == "otel-collector", "the Service name other components use"
    assert values["mode"] == "deployment"
    assert values["image"]["repository"] == "otel/opentelemetry-collector-contrib"
    collector = built["collector"]
    assert collector.otlp_grpc_endpoint == "otel-collector.observability.svc.cluster.local:4317"
    assert collector.otlp_http_endpoint == "otel-collector.observability.svc.cluster.local:4318"
    assert collector.host == COLLECTOR_HOST, "what the mesh tracing provider is given"
    assert all(values["ports"][p] == {"enabled": False} for p in ("jaeger-compact", "jaeger-grpc", "zipkin"))
    assert values["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}


def test_collector_receives_otlp_limits_memory_then_batches_and_exports_to_xray_and_prometheus(
    plan: dict[str, Any],
) -> None:
    values = _releases(plan)["opentelemetry-collector"]["inputs"]["values"]
    config = values["config"]
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert {k for k, v in config["receivers"].items() if v is not None} == {"otlp"}
    assert config["exporters"] == {
        "awsxray": {"region": "eu-west-1"},
        "prometheusremotewrite": {
            "endpoint": "http://kube-prometheus-stack-prometheus.monitoring.svc:9090/api/v1/write",
            "resource_to_telemetry_conversion": {"enabled": True},
        },
    }
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["awsxray"]
    assert pipelines["metrics"]["exporters"] == ["prometheusremotewrite"]
    for pipeline in (pipelines["traces"], pipelines["metrics"]):
        assert pipeline["processors"][0] == "memory_limiter" and pipeline["processors"][-1] == "batch"
    assert pipelines["logs"] is None
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/otel-collector"
    }


def test_jaeger_traces_and_cloudwatch_metrics_with_a_pod_identity_role_of_exact_actions() -> None:
    calls: list[dict[str, Any]] = []

    def workload_role(name: str, **kwargs: Any) -> aws.iam.Role:
        calls.append(kwargs)
        return aws.iam.Role(
            name,
            aws.iam.RoleArgs(
                assume_role_policy=iam.document(iam.statement("Trust", ["sts:AssumeRole"], principal="*")),
                inline_policies=[
                    aws.iam.RoleInlinePolicyArgs(name="collector", policy=iam.document(*kwargs["statements"]))
                ],
            ),
            opts=pulumi.ResourceOptions(parent=kwargs["parent"]),
        )

    plan, _ = _record(
        collector_changes=dict(
            traces=TraceExporter.OTLP,
            traces_endpoint="jaeger-collector.tracing.svc.cluster.local:4317",
            traces_tls_insecure=True,
            metrics=MetricsExporter.CLOUDWATCH_EMF,
            metrics_endpoint=None,
            emf_log_group="/agent-infra/test/otel-metrics",
            service_account_role_arn=None,
            workload_role=workload_role,
        )
    )
    values = _releases(plan)["opentelemetry-collector"]["inputs"]["values"]
    assert values["config"]["exporters"] == {
        "otlp/traces": {"endpoint": "jaeger-collector.tracing.svc.cluster.local:4317", "tls": {"insecure": True}},
        "awsemf": {
            "region": "eu-west-1",
            "namespace": "AgentInfra/Telemetry",
            "log_group_name": "/agent-infra/test/otel-metrics",
        },
    }
    assert "annotations" not in values["serviceAccount"], "Pod Identity needs no annotation"
    (call,) = calls
    assert (call["namespace"], call["service_account"]) == ("observability", "otel-collector")
    (statement,) = call["statements"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert statement["Resource"] == [
        "arn:aws:logs:eu-west-1:123456789012:log-group:/agent-infra/test/otel-metrics",
        "arn:aws:logs:eu-west-1:123456789012:log-group:/agent-infra/test/otel-metrics:log-stream:*",
    ]
    role = next(r for r in plan["resources"] if r["name"] == "telemetry-collector" and r["type"].startswith("aws:"))
    assert role["urn"] in _releases(plan)["opentelemetry-collector"]["dependencies"]
    assert json.loads(role["inputs"]["inlinePolicies"][0]["policy"])["Statement"][0]["Sid"] == "PutEmfMetrics"


def test_zipkin_traces_without_metrics_need_no_aws_credentials() -> None:
    plan, _ = _record(
        collector_changes=dict(
            traces=TraceExporter.ZIPKIN,
            traces_endpoint="http://zipkin.tracing.svc.cluster.local:9411/api/v2/spans",
            metrics=MetricsExporter.NONE,
            env=None,
            service_account_role_arn=None,
        )
    )
    config = _releases(plan)["opentelemetry-collector"]["inputs"]["values"]["config"]
    assert config["exporters"] == {"zipkin": {"endpoint": "http://zipkin.tracing.svc.cluster.local:9411/api/v2/spans"}}
    assert config["service"]["pipelines"]["metrics"] is None
    assert not [r for r in plan["resources"] if r["type"].startswith("aws:")]


# Validation: one rule per case


def _other_charts() -> dict[str, Chart]:
    charts = dict(ISTIO_CHARTS)
    charts["gateway"] = Chart("gateway", "1.25.0", charts["gateway"].repo)
    return charts


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"stream_timeout_seconds": 59}, "stream_timeout_seconds: expected 60 to 86400 s: proxy timeouts near 60 s"),
        (
            {"model_services": (MeshService("llama-8b", "models", retry_on=("connect-failure", "5xx")),)},
            "model_services[0].retry_on: expected connection failures only",
        ),
        (
            {"model_services": (MeshService("llama-8b", "models", retry_on=("reset",)),)},
            "model_services[0].retry_on: expected connection failures only",
        ),
        ({"sampling_percent": 101}, "sampling_percent: expected a percentage from 0 to 100"),
        ({"sampling_percent": -1}, "sampling_percent: expected a percentage from 0 to 100"),
        (
            {"egress": (EgressRule("anything", ("*",), ("agents",)),)},
            "egress[0].hosts[0]: expected a named host or a *.domain wildcard: a bare * opens egress",
        ),
        (
            {"egress": (EgressRule("bad", ("API.example.com",), ("agents",)),)},
            "egress[0].hosts[0]: expected a DNS name",
        ),
        (
            {"egress": (EgressRule("elsewhere", ("api.example.com",), ("default",)),)},
            "egress[0].namespaces: expected application namespaces",
        ),
        (
            {"egress": (EgressRule("plain", ("api.example.com",), ("agents",), (EgressPort(80, "HTTP"),)),)},
            "egress[0].ports[0].protocol: expected one of TLS, HTTPS, TCP",
        ),
        (
            {"egress": (model_provider_egress(("a.example.com",), ("agents",)),) * 2},
            "egress[1].name: expected a name used once",
        ),
        (
            {"agent_services": (MeshService("planner", "default"),)},
            "agent_services[0].namespace: expected one of agents, gateway, models",
        ),
        (
            {"agent_services": (MeshService("planner", "agents", retry_on=("sometimes",)),)},
            "agent_services[0].retry_on: expected Istio retry conditions",
        ),
        ({"agent_services": (MODELS[0],)}, "agent_services[0]: expected each service listed once"),
        (
            {"agent_services": (MeshService("planner", "agents", retry_attempts=11),)},
            "agent_services[0].retry_attempts: expected 0 to 10 retries",
        ),
        (
            {"ingress_backend": MeshService("api", "gateway", retry_on=("5xx",))},
            "ingress_backend.retry_on: expected connection failures only",
        ),
        ({"agent_timeout_seconds": 0}, "agent_timeout_seconds: expected 1 to 86400 s"),
        ({"collector_host": "otel-collector:4317"}, "collector_host: expected <service>.<namespace>.svc.cluster.local"),
        ({"model_namespace": "Models"}, "model_namespace: expected a DNS label"),
        ({"egress_namespace": "agents"}, "egress_namespace: expected a namespace of its own"),
        ({"ingress_min_replicas": 1}, "ingress_min_replicas: expected at least 2 replicas"),
        ({"ingress_max_replicas": 1}, "ingress_max_replicas: expected at least ingress_min_replicas (2)"),
        ({"istiod_replicas": 0}, "istiod_replicas: expected 1 to 10 replicas"),
        ({"charts": _other_charts()}, "charts: expected base, istiod and gateway charts of one Istio version"),
        (
            {"model_circuit_breaker": CircuitBreaker(max_connections=0)},
            "model_circuit_breaker.max_connections: expected at least 1",
        ),
        (
            {"agent_circuit_breaker": CircuitBreaker(max_ejection_percent=0)},
            "agent_circuit_breaker.max_ejection_percent: expected 1 to 100",
        ),
        ({"internal_hosts": ("prometheus",)}, "internal_hosts[0]: expected namespace/host"),
    ],
)
def test_mesh_rejects_invalid_args(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputPropertiesError, match=re.escape(fragment)):
        _record(mesh_changes=changes)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"traces": "datadog"}, "traces: expected one of xray, otlp, zipkin, found 'datadog'"),
        ({"metrics": "statsd"}, "metrics: expected one of prometheus_remote_write, cloudwatch_emf, none"),
        ({"traces": TraceExporter.OTLP}, "traces_endpoint: expected an endpoint for the otlp exporter"),
        ({"metrics_endpoint": "prometheus:9090"}, "metrics_endpoint: expected the Prometheus remote-write URL"),
        ({"metrics": MetricsExporter.CLOUDWATCH_EMF}, "emf_log_group: expected the name of an existing log group"),
        ({"env": None}, "env: expected the account and region of the AWS exporters"),
        ({"service_account_role_arn": None}, "workload_role: expected exactly one credentials source"),
        ({"replicas": 0}, "replicas: expected 1 to 20 collector pods"),
        ({"memory_limit_mib": 128}, "memory_limit_mib: expected 256 to 16384 MiB"),
        ({"service_name": "OTel"}, "service_name: expected a DNS label"),
    ],
)
def test_collector_rejects_invalid_args(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputPropertiesError, match=re.escape(fragment)):
        _record(collector_changes=changes)


def test_every_mesh_problem_is_reported_at_once() -> None:
    with pytest.raises(InputPropertiesError) as error:
        _record(mesh_changes={"stream_timeout_seconds": 30, "sampling_percent": 150, "ingress_min_replicas": 1})
    fields = [p.split(":", 1)[0] for p in error.value.problems]
    assert fields == ["stream_timeout_seconds", "sampling_percent", "ingress_min_replicas"]
