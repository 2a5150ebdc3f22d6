"""The OpenTelemetry collector: one stable in-cluster OTLP endpoint for the mesh's proxies and the apps.

A pinned ``opentelemetry-collector`` Helm release (the contrib image, deployment mode) behind a Service whose
name is fixed by ``fullnameOverride``, so the mesh's tracing provider and the apps' ``OTEL_EXPORTER_OTLP_*``
settings can be written before anything is deployed. Receivers: OTLP over gRPC (4317) and HTTP (4318) only;
the chart's Jaeger, Zipkin and self-scrape receivers and their ports are removed. Processors: ``memory_limiter``
first (it refuses data before the pod is OOM-killed), then ``batch``.

Exporters, chosen in the Args:

* traces to **AWS X-Ray** (``awsxray``), to a **Jaeger** collector over OTLP/gRPC, or to **Zipkin**;
* metrics to the cluster's **Prometheus** by remote write (kube-prometheus-stack must run with
  ``prometheus.prometheusSpec.enableRemoteWriteReceiver: true``), to **CloudWatch** as EMF logs (``awsemf``),
  or nowhere.

AWS credentials: an AWS exporter needs them, and node credentials are out of reach (IMDS hop limit 1).
Either pass ``workload_role`` (``EksCluster.workload_role``, or anything with its signature): the component
then creates an EKS Pod Identity role for the collector's service account, with exactly the actions its
exporters call; or pass ``service_account_role_arn`` of a role you manage, and the service account is
annotated for IAM roles for service accounts (IRSA). Not both.

The collector stays out of the mesh by default (``mesh_injection``): observability must keep working while the
mesh is upgraded or broken, and a sidecar on the collector would trace the collector's own exports back into
itself. The mesh's proxies detect the missing sidecar and send OTLP in plain text inside the cluster.

Version pin: chart ``opentelemetry-collector`` 0.127.2 from the project's repository. It is a pin to check
against ``helm search repo open-telemetry/opentelemetry-collector --versions`` before the first deployment.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import iam
from .aws_env import AwsEnvironment
from .cluster_services import SYSTEM_SELECTOR, Chart
from .validation import Checker

#: Pinned chart: a pin to check against the repository before the first deployment.
COLLECTOR_CHART = Chart(
    "opentelemetry-collector", "0.127.2", "https://open-telemetry.github.io/opentelemetry-helm-charts"
)
COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
#: The chart's default receivers (and their ports) that this collector does not serve.
_UNUSED_RECEIVERS = ("jaeger", "zipkin", "prometheus")
_UNUSED_PORTS = ("jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class TraceExporter(enum.StrEnum):
    """Where traces go."""

    XRAY = "xray"
    """AWS X-Ray (``awsxray`` exporter), in ``env.region``."""
    OTLP = "otlp"
    """An OTLP/gRPC endpoint, e.g. a Jaeger collector's ``jaeger-collector.tracing.svc.cluster.local:4317``."""
    ZIPKIN = "zipkin"
    """A Zipkin endpoint, e.g. ``http://zipkin.tracing.svc.cluster.local:9411/api/v2/spans``."""


class MetricsExporter(enum.StrEnum):
    """Where metrics go."""

    PROMETHEUS_REMOTE_WRITE = "prometheus_remote_write"
    """The cluster's Prometheus, by remote write to ``metrics_endpoint``."""
    CLOUDWATCH_EMF = "cloudwatch_emf"
    """CloudWatch metrics through EMF log events in ``emf_log_group``."""
    NONE = "none"
    """No metrics pipeline (Prometheus scrapes the apps directly)."""


class WorkloadRoleFactory(Protocol):
    """``EksCluster.workload_role``: an IAM role for one service account through EKS Pod Identity."""

    def __call__(
        self,
        name: str,
        *,
        namespace: str,
        service_account: str,
        statements: Sequence[dict[str, Any]] = ...,
        managed_policy_arns: Sequence[str] = ...,
        parent: pulumi.Resource | None = ...,
    ) -> aws.iam.Role: ...


@dataclass(frozen=True)
class OtelCollectorArgs:
    provider: k8s.Provider
    """Kubernetes provider of the cluster (``EksCluster.provider``)."""
    cluster_name: str | None = None
    """Added to every span and metric as ``k8s.cluster.name``; None adds nothing (default)."""
    env: AwsEnvironment | None = None
    """Account and region; required by the X-Ray and CloudWatch exporters (default None)."""
    namespace: str = "observability"
    """Namespace of the collector (default ``observability``)."""
    create_namespace: bool = True
    """Create ``namespace`` here; False when another component owns it (default True)."""
    service_name: str = "otel-collector"
    """The collector's stable Service name, also its release and service-account name (default ``otel-collector``)."""
    traces: TraceExporter = TraceExporter.XRAY
    """Trace exporter (default X-Ray)."""
    traces_endpoint: str | None = None
    """Endpoint of the OTLP or Zipkin trace exporter; required by those two (default None)."""
    traces_tls_insecure: bool = False
    """Send OTLP traces without TLS (an in-cluster Jaeger without certificates); default False."""
    metrics: MetricsExporter = MetricsExporter.PROMETHEUS_REMOTE_WRITE
    """Metrics exporter (default Prometheus remote write)."""
    metrics_endpoint: str | None = None
    """Remote-write URL, e.g. ``http://kube-prometheus-stack-prometheus.monitoring.svc:9090/api/v1/write``."""
    emf_log_group: str | None = None
    """Existing log group for EMF metrics (create it with ``encrypted_log_group``); required by CloudWatch."""
    cloudwatch_namespace: str = "AgentInfra/Telemetry"
    """CloudWatch metric namespace of EMF metrics (default ``AgentInfra/Telemetry``)."""
    workload_role: WorkloadRoleFactory | None = None
    """Pod Identity role factory (``EksCluster.workload_role``) for AWS exporters; default None."""
    service_account_role_arn: pulumi.Input[str] | None = None
    """A role you manage, annotated on the service account for IRSA, instead of ``workload_role``; default None."""
    replicas: int = 2
    """Collector pods, 1-20 (default 2, spread over zones, with a disruption budget from 2)."""
    memory_limit_mib: int = 1024
    """Memory limit of a pod in MiB, 256-16384; ``memory_limiter`` refuses data at 80% of it (default 1024)."""
    mesh_injection: bool = False
    """Run the collector with an Istio sidecar (see the module notes); default False."""
    chart: Chart = COLLECTOR_CHART
    """The pinned chart (default ``opentelemetry-collector`` 0.127.2)."""


class OtelCollector(pulumi.ComponentResource):
    """An OpenTelemetry collector with a stable OTLP endpoint and the configured exporters."""

    namespace: str
    """Namespace of the collector."""
    service_name: str
    """The collector's Service name (stable: ``fullnameOverride``)."""
    host: str
    """``<service>.<namespace>.svc.cluster.local``: the mesh's tracing provider service."""
    otlp_grpc_endpoint: str
    """``<host>:4317``, OTLP over gRPC (SDKs that want a URL take ``http://`` plus this)."""
    otlp_http_endpoint: str
    """``<host>:4318``, OTLP over HTTP (SDKs that want a URL take ``http://`` plus this)."""
    role: aws.iam.Role | None
    """The Pod Identity role made with ``workload_role``, if any."""
    release: k8s.helm.v3.Release
    """The collector's Helm release (depend on it to start sending only once it runs)."""

    def __init__(self, name: str, args: OtelCollectorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:observability:OtelCollector", name, None, opts)
        _validate(name, args)
        self.namespace, self.service_name = args.namespace, args.service_name
        self.host = f"{args.service_name}.{args.namespace}.svc.cluster.local"
        self.otlp_grpc_endpoint = f"{self.host}:{OTLP_GRPC_PORT}"
        self.otlp_http_endpoint = f"{self.host}:{OTLP_HTTP_PORT}"

        depends: list[pulumi.Resource] = []
        if args.create_namespace:
            depends.append(owned_namespace(f"{name}-namespace", args.namespace, {}, self, args.provider))
        self.role = None
        statements = collector_statements(args)
        if args.workload_role is not None and statements:
            self.role = args.workload_role(
                f"{name}-collector",
                namespace=args.namespace,
                service_account=args.service_name,
                statements=statements,
                parent=self,
            )
            depends.append(self.role)

        self.release = pinned_release(
            f"{name}-collector",
            args.chart,
            args.namespace,
            collector_values(args),
            pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=depends),
            release_name=args.service_name,
            allow_null_values=True,
        )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "serviceName": self.service_name,
                "host": self.host,
                "otlpGrpcEndpoint": self.otlp_grpc_endpoint,
                "otlpHttpEndpoint": self.otlp_http_endpoint,
                "roleArn": self.role.arn if self.role is not None else None,
            }
        )


def collector_values(args: OtelCollectorArgs) -> dict[str, Any]:
    """The chart's values: the collector config, its pods and its service account."""
    labels = {"app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": args.service_name}
    account: dict[str, Any] = {"create": True, "name": args.service_name}
    if args.service_account_role_arn is not None:
        account["annotations"] = {"eks.amazonaws.com/role-arn": args.service_account_role_arn}
    values: dict[str, Any] = {
        "mode": "deployment",
        "fullnameOverride": args.service_name,
        "image": {"repository": COLLECTOR_IMAGE},
        "command": {"name": "otelcol-contrib"},
        "replicaCount": args.replicas,
        "serviceAccount": account,
        "podAnnotations": {"sidecar.istio.io/inject": "true" if args.mesh_injection else "false"},
        "nodeSelector": SYSTEM_SELECTOR,
        "resources": {
            "requests": {"cpu": "200m", "memory": f"{args.memory_limit_mib // 2}Mi"},
            "limits": {"memory": f"{args.memory_limit_mib}Mi"},
        },
        "topologySpreadConstraints": zone_spread(labels),
        "ports": {port: {"enabled": False} for port in _UNUSED_PORTS},
        "config": collector_config(args),
    }
    if args.replicas >= 2:
        values["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
    return values


def collector_config(args: OtelCollectorArgs) -> dict[str, Any]:
    """The collector's own configuration, merged by the chart over its defaults (None removes a default)."""
    processors: dict[str, Any] = {
        "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25},
        "batch": {"send_batch_size": 8192, "timeout": "5s"},
    }
    chain = ["memory_limiter", "batch"]
    if args.cluster_name:
        processors["resource/cluster"] = {
            "attributes": [{"key": "k8s.cluster.name", "value": args.cluster_name, "action": "upsert"}]
        }
        chain = ["memory_limiter", "resource/cluster", "batch"]
    trace_name, trace_exporter = _trace_exporter(args)
    exporters: dict[str, Any] = {trace_name: trace_exporter}
    pipelines: dict[str, Any] = {
        "traces": {"receivers": ["otlp"], "processors": chain, "exporters": [trace_name]},
        "logs": None,
        "metrics": None,
    }
    metrics = _metrics_exporter(args)
    if metrics is not None:
        metrics_name, metrics_exporter = metrics
        exporters[metrics_name] = metrics_exporter
        pipelines["metrics"] = {"receivers": ["otlp"], "processors": chain, "exporters": [metrics_name]}
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_HTTP_PORT}"},
                }
            },
            **{receiver: None for receiver in _UNUSED_RECEIVERS},
        },
        "processors": processors,
        "exporters": exporters,
        "service": {"pipelines": pipelines},
    }


def _trace_exporter(args: OtelCollectorArgs) -> tuple[str, dict[str, Any]]:
    kind = TraceExporter(args.traces)
    if kind is TraceExporter.XRAY:
        assert args.env is not None
        return "awsxray", {"region": args.env.region}
    if kind is TraceExporter.OTLP:
        return "otlp/traces", {"endpoint": args.traces_endpoint, "tls": {"insecure": args.traces_tls_insecure}}
    return "zipkin", {"endpoint": args.traces_endpoint}


def _metrics_exporter(args: OtelCollectorArgs) -> tuple[str, dict[str, Any]] | None:
    kind = MetricsExporter(args.metrics)
    if kind is MetricsExporter.PROMETHEUS_REMOTE_WRITE:
        return "prometheusremotewrite", {
            "endpoint": args.metrics_endpoint,
            "resource_to_telemetry_conversion": {"enabled": True},
        }
    if kind is MetricsExporter.CLOUDWATCH_EMF:
        assert args.env is not None
        return "awsemf", {
            "region": args.env.region,
            "namespace": args.cloudwatch_namespace,
            "log_group_name": args.emf_log_group,
        }
    return None


def collector_statements(args: OtelCollectorArgs) -> list[dict[str, Any]]:
    """Exactly the AWS actions the chosen exporters call; empty when none exports to AWS."""
    statements = []
    if args.traces == TraceExporter.XRAY:
        # X-Ray has no resource-level permissions for these two actions.
        statements.append(iam.statement("PutTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]))
    if args.metrics == MetricsExporter.CLOUDWATCH_EMF and args.env is not None and args.emf_log_group:
        group = f"log-group:{args.emf_log_group}"
        statements.append(
            iam.statement(
                "PutEmfMetrics",
                ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                [args.env.arn("logs", group), args.env.arn("logs", f"{group}:log-stream:*")],
            )
        )
    return statements


def _validate(name: str, args: OtelCollectorArgs) -> None:
    check = Checker(f"OtelCollector {name}")
    check.check("namespace", args.namespace, matches(_DNS_LABEL), "a DNS label (lower-case, at most 63 characters)")
    check.check("service_name", args.service_name, matches(_DNS_LABEL), "a DNS label (lower-case, at most 63)")
    check.check("traces", args.traces, _member_of(TraceExporter), f"one of {_names(TraceExporter)}")
    check.check("metrics", args.metrics, _member_of(MetricsExporter), f"one of {_names(MetricsExporter)}")
    check.check("replicas", args.replicas, lambda n: 1 <= n <= 20, "1 to 20 collector pods")
    check.check("memory_limit_mib", args.memory_limit_mib, lambda n: 256 <= n <= 16384, "256 to 16384 MiB")
    if args.traces in (TraceExporter.OTLP, TraceExporter.ZIPKIN):
        check.check("traces_endpoint", args.traces_endpoint, bool, f"an endpoint for the {args.traces} exporter")
    if args.metrics == MetricsExporter.PROMETHEUS_REMOTE_WRITE:
        check.check(
            "metrics_endpoint",
            args.metrics_endpoint,
            lambda url: isinstance(url, str) and url.startswith(("http://", "https://")),
            "the Prometheus remote-write URL (http(s)://.../api/v1/write)",
        )
    if args.metrics == MetricsExporter.CLOUDWATCH_EMF:
        check.check("emf_log_group", args.emf_log_group, bool, "the name of an existing log group for EMF metrics")
    aws_exporter = args.traces == TraceExporter.XRAY or args.metrics == MetricsExporter.CLOUDWATCH_EMF
    if aws_exporter:
        check.check("env", args.env, lambda env: env is not None, "the account and region of the AWS exporters")
        check.check(
            "workload_role",
            (args.workload_role, args.service_account_role_arn),
            lambda pair: (pair[0] is None) != (pair[1] is None),
            "exactly one credentials source for the AWS exporters: workload_role (Pod Identity) or "
            "service_account_role_arn (IRSA)",
        )
    elif args.workload_role is not None and args.service_account_role_arn is not None:
        check.problems.append("workload_role: expected at most one of workload_role and service_account_role_arn")
    check.done()


def matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    """A ``Checker`` test: the value is a string matching ``pattern`` in full."""
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def _member_of(kind: type[enum.StrEnum]) -> Any:
    return lambda value: value in {member.value for member in kind}


def _names(kind: type[enum.StrEnum]) -> str:
    return ", ".join(member.value for member in kind)


# Helpers shared with the service mesh (and, later, with ClusterServices' own release method).


def pinned_release(
    resource_name: str,
    chart: Chart,
    namespace: str,
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
    *,
    release_name: str | None = None,
    allow_null_values: bool = False,
) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart from its project's repository, rolled back if it fails to become ready."""
    return k8s.helm.v3.Release(
        resource_name,
        k8s.helm.v3.ReleaseArgs(
            name=release_name or chart.name,
            chart=chart.name,
            version=chart.version,
            namespace=namespace,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            values=dict(values),
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            allow_null_values=allow_null_values or None,
        ),
        opts=opts,
    )


def owned_namespace(
    resource_name: str, name: str, labels: Mapping[str, str], parent: pulumi.Resource, provider: k8s.Provider
) -> k8s.core.v1.Namespace:
    """A namespace owned by ``parent``."""
    return k8s.core.v1.Namespace(
        resource_name,
        k8s.core.v1.NamespaceInitArgs(metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=dict(labels) or None)),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )


def zone_spread(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Spread pods evenly over zones (strictly) and nodes (best effort).

    ``nodeTaintsPolicy: Honor`` leaves tainted nodes (not ready, or being drained) out of the zone count, so a
    zone whose nodes are failing does not block the replacement pods in the others.
    """
    selector = {"matchLabels": dict(labels)}
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "nodeTaintsPolicy": "Honor",
            "labelSelector": selector,
        },
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
        },
    ]
