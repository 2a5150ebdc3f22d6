"""Istio service mesh: strict mTLS, circuit breakers that leave LLM streams alone, egress scoped per namespace.

Installed from Istio's own chart repository as three pinned Helm releases of one version (``base``, ``istiod``,
and ``gateway`` for the ingress gateway). The version is a pin to check (``helm search repo istio/istiod
--versions``) before the first deployment, and the three move together.

Choices, and why:

* **Strict mTLS mesh-wide**: one ``PeerAuthentication`` named ``default`` in the root namespace, without a
  selector. Every sidecar refuses plain text.
* **Streams are not cut** (ANCHORS item 7: proxy timeouts of 10-60 s cut streamed LLM responses). A model
  service's route timeout is the configured stream timeout (at least 60 s, default 15 minutes), its pool's
  idle timeout is never shorter, and proxies drain for as long as a stream may last
  (``terminationDrainDuration``, exiting early once no connection is left). Pods that serve streams need a
  ``terminationGracePeriodSeconds`` of at least the stream timeout; the ingress gateway gets it here.
* **Retries only where a replay is safe**: model services retry only connection failures
  (``connect-failure,refused-stream,unavailable``: the request never reached the server), never ``5xx`` or
  ``reset``, since a started generation must not run twice. Agent services default to the same; ``5xx`` may be
  added per service for idempotent APIs only. The mesh-wide default retry policy is the same safe one.
* **Circuit breakers** on every model and agent service: a connection pool with limits and outlier
  detection that ejects a replica after consecutive 5xx errors, with ``ISTIO_MUTUAL`` TLS.
* **Egress allowed by name, per namespace**: mesh-wide ``outboundTrafficPolicy`` stays ``ALLOW_ANY`` (a
  mesh-wide ``REGISTRY_ONLY`` would also close namespaces nobody configured, and break model downloads there),
  and each application namespace gets a ``Sidecar`` with ``REGISTRY_ONLY`` that imports only its own namespace,
  ``istio-system``, DNS, the collector, the mesh services and the external hosts its egress rules name. External
  hosts are ``ServiceEntry`` objects in their own config-only namespace, exported only to the namespaces allowed
  to use them. Named hosts resolve by DNS on 443/TLS; wildcard hosts (``*.cache.amazonaws.com``) cannot resolve
  and use ``resolution: NONE``.
* The **EKS Pod Identity agent** (169.254.170.23) is left out of the sidecars' traffic capture: it is where
  pods get their AWS credentials, and a ``REGISTRY_ONLY`` sidecar would otherwise drop those requests.
* **Ingress gateway**: a ``ClusterIP`` Service (the API Gateway's NLB reaches the pods through a
  TargetGroupBinding), at least two replicas with an HPA, a disruption budget and a zone spread, on the system
  nodes. A ``Gateway`` named ``ingress`` accepts HTTP on port 80 for routes in the gateway namespace.
* **Tracing**: the collector is an ``opentelemetry`` extension provider named ``otel``, and a mesh-wide
  ``Telemetry`` resource samples the configured percentage of requests.

All Istio objects depend on the istiod release, so the CRDs and the validating webhook exist first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .cluster_services import SYSTEM_SELECTOR, Chart
from .telemetry import OTLP_GRPC_PORT, matches, owned_namespace, pinned_release, zone_spread
from .validation import Checker

#: One Istio version for base, istiod and the gateway: a pin to check before the first deployment.
ISTIO_VERSION = "1.26.2"
ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts"
ISTIO_CHARTS = {role: Chart(role, ISTIO_VERSION, ISTIO_REPO) for role in ("base", "istiod", "gateway")}

ROOT_NAMESPACE = "istio-system"
INGRESS_NAMESPACE = "istio-ingress"
INGRESS_SERVICE = "istio-ingressgateway"
"""The gateway release's name, hence its Service's and its pods' ``app`` label."""
INGRESS_LABELS = {"app": INGRESS_SERVICE, "istio": "ingressgateway"}
INGRESS_PORT = 80
INGRESS_GATEWAY = "ingress"
TRACING_PROVIDER = "otel"
INJECTION_LABEL = {"istio-injection": "enabled"}
#: Where pods get EKS Pod Identity credentials; kept out of the sidecars' capture.
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"
DNS_HOST = "kube-system/kube-dns.kube-system.svc.cluster.local"

API_VERSIONS = {
    "PeerAuthentication": "security.istio.io/v1",
    "Telemetry": "telemetry.istio.io/v1",
    "DestinationRule": "networking.istio.io/v1",
    "VirtualService": "networking.istio.io/v1",
    "Sidecar": "networking.istio.io/v1",
    "ServiceEntry": "networking.istio.io/v1",
    "Gateway": "networking.istio.io/v1",
}

#: Retry conditions that fire only when the request never reached the server: safe for streams.
CONNECTION_FAILURES = ("connect-failure", "refused-stream", "unavailable")
#: Every ``retryOn`` condition Istio accepts (besides HTTP status codes such as ``503``).
RETRY_ON = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
MIN_STREAM_TIMEOUT_SECONDS = 60
#: Envoy's default connection-pool idle timeout; never lowered.
DEFAULT_IDLE_TIMEOUT_SECONDS = 3600
#: Hugging Face's API and its download CDNs (LFS and Xet storage): a list to check, it changes.
HUGGING_FACE_HOSTS = (
    "huggingface.co",
    "cdn-lfs.huggingface.co",
    "cdn-lfs-us-1.huggingface.co",
    "cas-bridge.xethub.hf.co",
)
EGRESS_PROTOCOLS = ("TLS", "HTTPS", "TCP")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOST = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_COLLECTOR_HOST = re.compile(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$")
_IMPORTED_HOST = re.compile(r"^(\.|\*|[a-z0-9-]+)/(\*|(\*\.)?[a-z0-9.-]+)$")


@dataclass(frozen=True)
class MeshService:
    """A Kubernetes Service in the mesh that gets a circuit breaker and a route policy."""

    name: str
    """The Service's name."""
    namespace: str
    """Its namespace: one of the mesh's application namespaces."""
    port: int | None = None
    """Service port to route to; None routes to its only port (default)."""
    retry_on: tuple[str, ...] = CONNECTION_FAILURES
    """Retry conditions (default connection failures only; model services accept nothing else)."""
    retry_attempts: int = 2
    """Retries after the first attempt, 0-10 (default 2)."""

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class CircuitBreaker:
    """Connection-pool limits and outlier detection of one service, per calling proxy."""

    max_connections: int = 1024
    """TCP connections to the service (default 1024)."""
    max_pending_requests: int = 256
    """Requests waiting for a connection (``http1MaxPendingRequests``, default 256)."""
    max_requests: int = 1024
    """Concurrent requests, i.e. open streams (``http2MaxRequests``, default 1024)."""
    max_requests_per_connection: int = 1000
    """Requests before a connection is recycled, so new replicas get connections; 0 unlimited (default 1000)."""
    consecutive_5xx_errors: int = 5
    """5xx responses in a row that eject a replica (default 5)."""
    interval_seconds: int = 10
    """Time between ejection sweeps (default 10)."""
    base_ejection_seconds: int = 30
    """Minimum ejection time, growing with each ejection (default 30)."""
    max_ejection_percent: int = 50
    """Most replicas ejected at once, 1-100 (default 50)."""


@dataclass(frozen=True)
class EgressPort:
    number: int
    """Port number (default 443 in ``EgressRule``)."""
    protocol: str = "TLS"
    """TLS (default), HTTPS or TCP: the client's TLS passes through the proxy untouched."""


@dataclass(frozen=True)
class EgressRule:
    """External hosts that the listed application namespaces may reach (one ServiceEntry per kind of host)."""

    name: str
    """A DNS label naming the group, e.g. ``aws-apis``."""
    hosts: tuple[pulumi.Input[str], ...]
    """Host names; ``*.domain`` wildcards resolve nothing (``NONE``); a bare ``*`` is refused."""
    namespaces: tuple[str, ...]
    """Application namespaces allowed to use them."""
    ports: tuple[EgressPort, ...] = (EgressPort(443),)
    """Ports (default 443 over TLS)."""
    addresses: tuple[str, ...] = ()
    """CIDRs the hosts live in, narrowing TCP ports to them (default none)."""


def aws_api_egress(
    region: str, namespaces: tuple[str, ...], services: tuple[str, ...] = ("sts", "sqs", "secretsmanager", "s3")
) -> EgressRule:
    """Regional AWS API endpoints; S3 adds its virtual-hosted bucket names (``*.s3.<region>.amazonaws.com``)."""
    hosts = [f"{service}.{region}.amazonaws.com" for service in services]
    if "s3" in services:
        hosts.append(f"*.s3.{region}.amazonaws.com")
    return EgressRule("aws-apis", tuple(hosts), namespaces)


def redis_egress(
    namespaces: tuple[str, ...], host: pulumi.Input[str] = "*.cache.amazonaws.com", addresses: tuple[str, ...] = ()
) -> EgressRule:
    """ElastiCache on 6379 as TCP: the client's TLS runs end to end, and matching on the port (not on SNI) also
    lets cluster-mode clients follow redirects to node IPs. Pass the private subnets' CIDRs as ``addresses`` to
    confine the port to the VPC."""
    return EgressRule("redis", (host,), namespaces, (EgressPort(6379, "TCP"),), addresses)


def model_provider_egress(hosts: tuple[str, ...], namespaces: tuple[str, ...]) -> EgressRule:
    """Hosted model APIs, e.g. ``api.openai.com``, ``api.anthropic.com``."""
    return EgressRule("model-providers", hosts, namespaces)


def hugging_face_egress(namespaces: tuple[str, ...], hosts: tuple[str, ...] = HUGGING_FACE_HOSTS) -> EgressRule:
    """Model downloads from Hugging Face."""
    return EgressRule("hugging-face", hosts, namespaces)


@dataclass(frozen=True)
class ServiceMeshArgs:
    provider: k8s.Provider
    """Kubernetes provider of the cluster (``EksCluster.provider``)."""
    collector_host: str
    """The OpenTelemetry collector's Service, ``<service>.<namespace>.svc.cluster.local`` (``OtelCollector.host``)."""
    collector_port: int = OTLP_GRPC_PORT
    """Its OTLP/gRPC port (default 4317)."""
    cluster_name: str | None = None
    """Istio's cluster id, shown in telemetry as ``source_cluster``; None keeps Istio's default (default)."""
    agent_namespace: str = "agents"
    """Namespace of the agents (sidecar injection on; default ``agents``)."""
    gateway_namespace: str = "gateway"
    """Namespace of the API-facing gateway service, where ingress routes live (default ``gateway``)."""
    model_namespace: str = "models"
    """Namespace of the model servers (default ``models``)."""
    model_services: tuple[MeshService, ...] = ()
    """Model servers: stream timeout, connection-failure retries only, circuit breaker."""
    agent_services: tuple[MeshService, ...] = ()
    """Agent APIs: ``agent_timeout_seconds``, their retry policy, circuit breaker."""
    stream_timeout_seconds: int = 900
    """Route timeout of model services and ingress: the longest stream, 60-86400 s (default 900, 15 minutes)."""
    agent_timeout_seconds: int = 300
    """Route timeout of agent services, 1-86400 s (default 300)."""
    model_circuit_breaker: CircuitBreaker = CircuitBreaker()
    """Limits of model services (defaults of ``CircuitBreaker``)."""
    agent_circuit_breaker: CircuitBreaker = CircuitBreaker()
    """Limits of agent services (defaults of ``CircuitBreaker``)."""
    egress: tuple[EgressRule, ...] = ()
    """External hosts allowed per namespace; every other external host is refused (default none)."""
    egress_namespace: str = "istio-egress"
    """Config-only namespace holding the ServiceEntries (default ``istio-egress``)."""
    internal_hosts: tuple[str, ...] = ()
    """Further in-cluster services every application namespace imports, as ``namespace/host`` (default none)."""
    sampling_percent: float = 10.0
    """Share of requests traced, 0-100 (default 10; 100 suits dev)."""
    istiod_replicas: int = 2
    """Minimum istiod replicas (HPA up to 5 or this), 1-10 (default 2)."""
    ingress_min_replicas: int = 2
    """Minimum ingress gateway replicas, at least 2 (default 2)."""
    ingress_max_replicas: int = 6
    """Maximum ingress gateway replicas under its HPA (default 6)."""
    ingress_backend: MeshService | None = None
    """Service the ingress gateway routes every request to (stream timeout); None leaves routing to apps."""
    charts: Mapping[str, Chart] = field(default_factory=lambda: dict(ISTIO_CHARTS))
    """Pinned ``base``, ``istiod`` and ``gateway`` charts, all of one version (default Istio 1.26.2)."""


class ServiceMesh(pulumi.ComponentResource):
    """Istio with strict mTLS, circuit breakers, stream-safe routes, per-namespace egress and tracing."""

    version: str
    """The Istio version of all three charts."""
    namespaces: dict[str, k8s.core.v1.Namespace]
    """The application namespaces (sidecar injection on), by name."""
    istiod: k8s.helm.v3.Release
    """The control plane: workloads created before it runs get no sidecar, so depend on it."""
    ingress_namespace: str
    """Namespace of the ingress gateway's pods and Service."""
    ingress_service_name: str
    """The ingress gateway's Service (ClusterIP): what a TargetGroupBinding's ``serviceRef`` names."""
    ingress_port: int
    """The Service port of plain HTTP traffic from the NLB."""
    ingress_gateway: str
    """``namespace/name`` of the ``Gateway``: put it in ``gateways`` of VirtualServices for ingress."""

    def __init__(self, name: str, args: ServiceMeshArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:mesh:ServiceMesh", name, None, opts)
        _validate(name, args)
        self._name, self._args = name, args
        self.version = args.charts["istiod"].version
        self.ingress_namespace, self.ingress_service_name = INGRESS_NAMESPACE, INGRESS_SERVICE
        self.ingress_port, self.ingress_gateway = INGRESS_PORT, f"{INGRESS_NAMESPACE}/{INGRESS_GATEWAY}"

        own = {ns: owned_namespace(f"{name}-ns-{ns}", ns, {}, self, args.provider) for ns in _system_namespaces(args)}
        self.namespaces = {
            ns: owned_namespace(f"{name}-ns-{ns}", ns, INJECTION_LABEL, self, args.provider)
            for ns in app_namespaces(args)
        }
        self._all_namespaces = {**own, **self.namespaces}

        charts = args.charts
        base = pinned_release(
            f"{name}-istio-base",
            charts["base"],
            ROOT_NAMESPACE,
            {},
            self._opts(own[ROOT_NAMESPACE]),
            release_name="istio-base",
        )
        self.istiod = pinned_release(
            f"{name}-istiod",
            charts["istiod"],
            ROOT_NAMESPACE,
            istiod_values(args),
            self._opts(base),
            release_name="istiod",
        )
        pinned_release(
            f"{name}-ingress-gateway",
            charts["gateway"],
            INGRESS_NAMESPACE,
            gateway_values(args),
            self._opts(self.istiod, own[INGRESS_NAMESPACE]),
            release_name=INGRESS_SERVICE,
        )

        self._istio("PeerAuthentication", "default", ROOT_NAMESPACE, {"mtls": {"mode": "STRICT"}})
        self._istio(
            "Telemetry",
            "mesh-default",
            ROOT_NAMESPACE,
            {
                "tracing": [
                    {
                        "providers": [{"name": TRACING_PROVIDER}],
                        "randomSamplingPercentage": args.sampling_percent,
                    }
                ]
            },
        )
        self._services(args.model_services, args.stream_timeout_seconds, args.model_circuit_breaker)
        self._services(args.agent_services, args.agent_timeout_seconds, args.agent_circuit_breaker)
        self._ingress(args)
        for ns in self.namespaces:
            self._istio("Sidecar", "default", ns, sidecar_spec(args, ns))
        for rule in args.egress:
            for entry_name, spec in service_entries(rule):
                self._istio("ServiceEntry", entry_name, args.egress_namespace, spec)

        self.register_outputs(
            {
                "version": self.version,
                "namespaces": list(self.namespaces),
                "ingressNamespace": self.ingress_namespace,
                "ingressServiceName": self.ingress_service_name,
                "ingressPort": self.ingress_port,
                "ingressGateway": self.ingress_gateway,
            }
        )

    def _opts(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=list(depends_on))

    def _istio(self, kind: str, object_name: str, namespace: str, spec: dict[str, Any]) -> None:
        k8s.apiextensions.CustomResource(
            f"{self._name}-{kind.lower()}-{namespace}-{object_name}",
            api_version=API_VERSIONS[kind],
            kind=kind,
            metadata={"name": object_name, "namespace": namespace},
            spec=spec,
            opts=self._opts(self.istiod, self._all_namespaces[namespace]),
        )

    def _services(self, services: Iterable[MeshService], timeout_seconds: int, breaker: CircuitBreaker) -> None:
        for service in services:
            self._istio("DestinationRule", service.name, service.namespace, destination_rule_spec(service, breaker))
            self._istio(
                "VirtualService",
                service.name,
                service.namespace,
                {"hosts": [service.host], "http": [http_route(service, timeout_seconds)]},
            )

    def _ingress(self, args: ServiceMeshArgs) -> None:
        self._istio(
            "Gateway",
            INGRESS_GATEWAY,
            INGRESS_NAMESPACE,
            {
                "selector": {"istio": INGRESS_LABELS["istio"]},
                "servers": [
                    {
                        "port": {"number": INGRESS_PORT, "name": "http", "protocol": "HTTP"},
                        "hosts": [f"{args.gateway_namespace}/*"],
                    }
                ],
            },
        )
        if args.ingress_backend is not None:
            route = http_route(args.ingress_backend, args.stream_timeout_seconds)
            self._istio(
                "VirtualService",
                INGRESS_GATEWAY,
                args.gateway_namespace,
                {"hosts": ["*"], "gateways": [self.ingress_gateway], "http": [route]},
            )


def app_namespaces(args: ServiceMeshArgs) -> list[str]:
    """The agent, gateway and model namespaces, without duplicates."""
    return list(dict.fromkeys([args.agent_namespace, args.gateway_namespace, args.model_namespace]))


def _system_namespaces(args: ServiceMeshArgs) -> list[str]:
    return [ROOT_NAMESPACE, INGRESS_NAMESPACE, args.egress_namespace]


def istiod_values(args: ServiceMeshArgs) -> dict[str, Any]:
    """The control plane's values: mesh config, replicas on the system nodes, capture exclusions."""
    stream = f"{args.stream_timeout_seconds}s"
    proxy: dict[str, Any] = {"excludeIPRanges": POD_IDENTITY_AGENT_CIDR}
    global_values: dict[str, Any] = {"proxy": proxy}
    if args.cluster_name:
        global_values["multiCluster"] = {"clusterName": args.cluster_name}
    return {
        "replicaCount": args.istiod_replicas,
        "autoscaleMin": args.istiod_replicas,
        "autoscaleMax": max(args.istiod_replicas, 5),
        "nodeSelector": SYSTEM_SELECTOR,
        "topologySpreadConstraints": zone_spread({"app": "istiod"}),
        "global": global_values,
        "meshConfig": {
            "accessLogFile": "/dev/stdout",
            "accessLogEncoding": "JSON",
            "enableTracing": True,
            "extensionProviders": [
                {
                    "name": TRACING_PROVIDER,
                    "opentelemetry": {"service": args.collector_host, "port": args.collector_port},
                }
            ],
            "defaultConfig": {
                "holdApplicationUntilProxyStarts": True,
                # Keep draining proxies up while streams last; they exit as soon as no connection is left.
                "terminationDrainDuration": stream,
                "proxyMetadata": {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true"},
            },
            # Egress is closed per namespace by Sidecar resources, not mesh-wide (see the module notes).
            "outboundTrafficPolicy": {"mode": "ALLOW_ANY"},
            "defaultHttpRetryPolicy": {"attempts": 2, "retryOn": ",".join(CONNECTION_FAILURES)},
        },
    }


def gateway_values(args: ServiceMeshArgs) -> dict[str, Any]:
    """The ingress gateway's values: ClusterIP behind the NLB, autoscaled from two replicas over zones."""
    return {
        "name": INGRESS_SERVICE,
        "service": {"type": "ClusterIP"},
        "autoscaling": {
            "enabled": True,
            "minReplicas": args.ingress_min_replicas,
            "maxReplicas": args.ingress_max_replicas,
            "targetCPUUtilizationPercentage": 60,
        },
        "podDisruptionBudget": {"maxUnavailable": 1},
        "topologySpreadConstraints": zone_spread(INGRESS_LABELS),
        "nodeSelector": SYSTEM_SELECTOR,
        # A scaled-in or rolled gateway pod finishes its streams before it goes.
        "terminationGracePeriodSeconds": args.stream_timeout_seconds + 30,
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }


def destination_rule_spec(service: MeshService, breaker: CircuitBreaker) -> dict[str, Any]:
    return {
        "host": service.host,
        "trafficPolicy": {
            "connectionPool": {
                "tcp": {"maxConnections": breaker.max_connections, "connectTimeout": "10s"},
                "http": {
                    "http1MaxPendingRequests": breaker.max_pending_requests,
                    "http2MaxRequests": breaker.max_requests,
                    "maxRequestsPerConnection": breaker.max_requests_per_connection,
                    # Idle means no request in flight, so this never cuts a stream; it is never shortened.
                    "idleTimeout": f"{DEFAULT_IDLE_TIMEOUT_SECONDS}s",
                },
            },
            "outlierDetection": {
                "consecutive5xxErrors": breaker.consecutive_5xx_errors,
                "interval": f"{breaker.interval_seconds}s",
                "baseEjectionTime": f"{breaker.base_ejection_seconds}s",
                "maxEjectionPercent": breaker.max_ejection_percent,
            },
            "tls": {"mode": "ISTIO_MUTUAL"},
        },
    }


def http_route(service: MeshService, timeout_seconds: int) -> dict[str, Any]:
    """One route to ``service`` with a timeout and its retry policy (per-try timeout: the whole timeout)."""
    destination: dict[str, Any] = {"host": service.host}
    if service.port is not None:
        destination["port"] = {"number": service.port}
    retries: dict[str, Any] = {"attempts": service.retry_attempts}
    if service.retry_attempts:
        retries["retryOn"] = ",".join(service.retry_on)
    return {"route": [{"destination": destination}], "timeout": f"{timeout_seconds}s", "retries": retries}


def sidecar_spec(args: ServiceMeshArgs, namespace: str) -> dict[str, Any]:
    """The namespace's outbound view: registry only, and only the hosts it needs."""
    collector_namespace = _COLLECTOR_HOST.match(args.collector_host)
    assert collector_namespace is not None  # validated
    hosts: list[pulumi.Input[str]] = [
        "./*",
        f"{ROOT_NAMESPACE}/*",
        DNS_HOST,
        f"{collector_namespace.group(2)}/{args.collector_host}",
    ]
    services = [*args.model_services, *args.agent_services]
    if args.ingress_backend is not None:
        services.append(args.ingress_backend)
    hosts += [f"{s.namespace}/{s.host}" for s in services if s.namespace != namespace]
    for rule in args.egress:
        if namespace in rule.namespaces:
            hosts += [_imported(args.egress_namespace, host) for host in rule.hosts]
    hosts += args.internal_hosts
    return {
        "egress": [{"hosts": _unique(hosts)}],
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
    }


def service_entries(rule: EgressRule) -> list[tuple[str, dict[str, Any]]]:
    """The rule's ServiceEntries: named hosts resolved by DNS, wildcard hosts (which cannot be) with NONE."""
    wildcard = [h for h in rule.hosts if isinstance(h, str) and h.startswith("*.")]
    named = [h for h in rule.hosts if not (isinstance(h, str) and h.startswith("*."))]
    entries = []
    for suffix, hosts, resolution in (("", named, "DNS"), ("-wildcard", wildcard, "NONE")):
        if not hosts:
            continue
        spec: dict[str, Any] = {
            "hosts": hosts,
            "location": "MESH_EXTERNAL",
            "resolution": resolution,
            "ports": [
                {"number": p.number, "name": f"{p.protocol.lower()}-{p.number}", "protocol": p.protocol}
                for p in rule.ports
            ],
            "exportTo": sorted(rule.namespaces),
        }
        if rule.addresses:
            spec["addresses"] = list(rule.addresses)
        entries.append((f"{rule.name}{suffix}", spec))
    return entries


def _imported(namespace: str, host: pulumi.Input[str]) -> pulumi.Input[str]:
    """``namespace/host``, also for a host still unknown (an endpoint output)."""
    return f"{namespace}/{host}" if isinstance(host, str) else pulumi.Output.concat(namespace, "/", host)


def _unique(items: Sequence[pulumi.Input[str]]) -> list[pulumi.Input[str]]:
    seen: set[str] = set()
    result: list[pulumi.Input[str]] = []
    for item in items:
        if isinstance(item, str):
            if item in seen:
                continue
            seen.add(item)
        result.append(item)
    return result


def _validate(name: str, args: ServiceMeshArgs) -> None:
    check = Checker(f"ServiceMesh {name}")
    apps = app_namespaces(args)
    for field_name in ("agent_namespace", "gateway_namespace", "model_namespace", "egress_namespace"):
        check.check(field_name, getattr(args, field_name), matches(_DNS_LABEL), "a DNS label (lower-case, at most 63)")
    check.check(
        "egress_namespace",
        args.egress_namespace,
        lambda ns: ns not in apps and ns not in (ROOT_NAMESPACE, INGRESS_NAMESPACE),
        "a namespace of its own, holding only ServiceEntries",
    )
    check.check(
        "collector_host", args.collector_host, matches(_COLLECTOR_HOST), "<service>.<namespace>.svc.cluster.local"
    )
    check.check(
        "stream_timeout_seconds",
        args.stream_timeout_seconds,
        lambda s: MIN_STREAM_TIMEOUT_SECONDS <= s <= 86400,
        f"{MIN_STREAM_TIMEOUT_SECONDS} to 86400 s: proxy timeouts near 60 s cut streamed LLM responses",
    )
    check.check("agent_timeout_seconds", args.agent_timeout_seconds, lambda s: 1 <= s <= 86400, "1 to 86400 s")
    check.check("sampling_percent", args.sampling_percent, lambda p: 0 <= p <= 100, "a percentage from 0 to 100")
    check.check("istiod_replicas", args.istiod_replicas, lambda n: 1 <= n <= 10, "1 to 10 replicas")
    check.check("ingress_min_replicas", args.ingress_min_replicas, lambda n: n >= 2, "at least 2 replicas")
    check.check(
        "ingress_max_replicas",
        args.ingress_max_replicas,
        lambda n: n >= args.ingress_min_replicas,
        f"at least ingress_min_replicas ({args.ingress_min_replicas})",
    )
    versions = {role: args.charts[role].version for role in ISTIO_CHARTS if role in args.charts}
    check.check(
        "charts",
        versions,
        lambda v: set(v) == set(ISTIO_CHARTS) and len(set(v.values())) == 1,
        "base, istiod and gateway charts of one Istio version",
    )
    seen: set[tuple[str, str]] = set()
    _check_services(check, "model_services", args.model_services, apps, seen, stream=True)
    _check_services(check, "agent_services", args.agent_services, apps, seen, stream=False)
    if args.ingress_backend is not None:
        _check_services(check, "ingress_backend", (args.ingress_backend,), apps, set(), stream=True)
    for field_name, breaker in (
        ("model_circuit_breaker", args.model_circuit_breaker),
        ("agent_circuit_breaker", args.agent_circuit_breaker),
    ):
        _check_breaker(check, field_name, breaker)
    _check_egress(check, args.egress, apps)
    for index, host in enumerate(args.internal_hosts):
        check.check(f"internal_hosts[{index}]", host, matches(_IMPORTED_HOST), "namespace/host, e.g. monitoring/*")
    check.done()


def _check_services(
    check: Checker,
    field_name: str,
    services: Sequence[MeshService],
    apps: list[str],
    seen: set[tuple[str, str]],
    *,
    stream: bool,
) -> None:
    """Each service once across model and agent services, in the mesh, with a valid (and for streams, safe)
    retry policy."""
    for index, service in enumerate(services):
        where = field_name if field_name == "ingress_backend" else f"{field_name}[{index}]"
        check.check(f"{where}.name", service.name, matches(_DNS_LABEL), "a Service name (DNS label)")
        check.check(f"{where}.namespace", service.namespace, lambda ns: ns in apps, f"one of {', '.join(apps)}")
        check.check(where, (service.namespace, service.name), lambda key: key not in seen, "each service listed once")
        seen.add((service.namespace, service.name))
        if service.port is not None:
            check.check(f"{where}.port", service.port, lambda p: 1 <= p <= 65535, "a port from 1 to 65535")
        check.check(f"{where}.retry_attempts", service.retry_attempts, lambda n: 0 <= n <= 10, "0 to 10 retries")
        check.check(
            f"{where}.retry_on",
            service.retry_on,
            lambda conditions: all(c in RETRY_ON or re.fullmatch(r"[1-5]\d\d", c) for c in conditions),
            f"Istio retry conditions ({', '.join(sorted(RETRY_ON))}) or HTTP status codes",
        )
        if stream:
            check.check(
                f"{where}.retry_on",
                service.retry_on,
                lambda conditions: set(conditions) <= set(CONNECTION_FAILURES),
                f"connection failures only ({','.join(CONNECTION_FAILURES)}): a model stream that has started "
                "must not be replayed, so never 5xx, reset or status codes",
            )


def _check_breaker(check: Checker, field_name: str, breaker: CircuitBreaker) -> None:
    for attr in (
        "max_connections",
        "max_pending_requests",
        "max_requests",
        "consecutive_5xx_errors",
        "interval_seconds",
        "base_ejection_seconds",
    ):
        check.check(f"{field_name}.{attr}", getattr(breaker, attr), lambda n: n >= 1, "at least 1")
    check.check(
        f"{field_name}.max_requests_per_connection",
        breaker.max_requests_per_connection,
        lambda n: n >= 0,
        "0 (unlimited) or more",
    )
    check.check(f"{field_name}.max_ejection_percent", breaker.max_ejection_percent, lambda n: 1 <= n <= 100, "1 to 100")


def _check_egress(check: Checker, rules: Sequence[EgressRule], apps: list[str]) -> None:
    names: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"egress[{index}]"
        check.check(f"{where}.name", rule.name, matches(_DNS_LABEL), "a DNS label")
        check.check(f"{where}.name", rule.name, lambda n: n not in names, "a name used once")
        names.add(rule.name)
        check.check(f"{where}.hosts", rule.hosts, bool, "at least one host")
        for position, host in enumerate(rule.hosts):
            check.check(
                f"{where}.hosts[{position}]",
                host,
                lambda h: h != "*",
                "a named host or a *.domain wildcard: a bare * opens egress to everything",
            )
            check.check(f"{where}.hosts[{position}]", host, lambda h: h == "*" or matches(_HOST)(h), "a DNS name")
        check.check(
            f"{where}.namespaces",
            rule.namespaces,
            lambda nss: bool(nss) and all(ns in apps for ns in nss),
            f"application namespaces ({', '.join(apps)})",
        )
        check.check(f"{where}.ports", rule.ports, bool, "at least one port")
        for position, port in enumerate(rule.ports):
            check.check(f"{where}.ports[{position}].number", port.number, lambda p: 1 <= p <= 65535, "1 to 65535")
            check.check(
                f"{where}.ports[{position}].protocol",
                port.protocol,
                lambda p: p in EGRESS_PROTOCOLS,
                f"one of {', '.join(EGRESS_PROTOCOLS)} (plain HTTP leaves the cluster unencrypted)",
            )
