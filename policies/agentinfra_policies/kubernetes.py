"""Kubernetes workload and Istio rules, over the objects the program creates itself.

No rule sees inside a Helm chart: the chart's rendered objects never reach the engine, only the values
passed to the ``Release`` (policies/README.md says so).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from .framework import Reporter, Rule, of_type, resource_rule, stack_rule

WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
)
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SERVICE = "kubernetes:core/v1:Service"
NAMESPACE = "kubernetes:core/v1:Namespace"
RELEASE = "kubernetes:helm.sh/v3:Release"
PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
SERVICE_ENTRY = "kubernetes:networking.istio.io/v1:ServiceEntry"
SIDECAR = "kubernetes:networking.istio.io/v1:Sidecar"
GPU = "nvidia.com/gpu"


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = props.get("spec") or {}
    if resource_type == "kubernetes:core/v1:Pod":
        return spec
    if resource_type == "kubernetes:batch/v1:CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def containers(pod: Mapping[str, Any], *, init: bool = True) -> Iterator[Mapping[str, Any]]:
    yield from pod.get("containers") or []
    if init:
        yield from pod.get("initContainers") or []


PINNED = Rule(
    id="AI-K8S-001",
    name="k8s-image-pinned",
    description="Container images are pinned to a tag other than latest, or to a digest.",
    severity=Severity.HIGH,
    fix="Pin the image to a release tag (or @sha256 digest) in config.",
    resource_types=WORKLOADS,
    checkov=("CKV_K8S_14", "CKV_K8S_43"),
)


@resource_rule(PINNED)
def pinned(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    for c in containers(pod_spec(args.resource_type, args.props)):
        image = str(c.get("image") or "")
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@sha256:" not in image and (not tag or tag == "latest"):
            report(f"{args.name!r}: container {c.get('name')!r} runs the unpinned image {image!r}.")


RESOURCES = Rule(
    id="AI-K8S-002",
    name="k8s-requests-limits",
    description="Containers request CPU and memory and limit memory.",
    severity=Severity.MEDIUM,
    fix="Set resources.requests.cpu, requests.memory and limits.memory.",
    resource_types=WORKLOADS,
    checkov=("CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13"),
)


@resource_rule(RESOURCES)
def requests_limits(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    for c in containers(pod_spec(args.resource_type, args.props)):
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        missing = [
            n
            for n, ok in (
                ("requests.cpu", "cpu" in requests),
                ("requests.memory", "memory" in requests),
                ("limits.memory", "memory" in limits),
            )
            if not ok
        ]
        if missing:
            report(f"{args.name!r}: container {c.get('name')!r} lacks {', '.join(missing)}.")


PROBES = Rule(
    id="AI-K8S-003",
    name="k8s-probes",
    description="Long-running containers have readiness and liveness probes.",
    severity=Severity.MEDIUM,
    fix="Add readiness and liveness probes (and a startup probe for slow starters such as model servers).",
    resource_types=WORKLOADS[:3],
    checkov=("CKV_K8S_8", "CKV_K8S_9"),
)


@resource_rule(PROBES)
def probes(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    for c in containers(pod_spec(args.resource_type, args.props), init=False):
        missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
        if missing:
            report(f"{args.name!r}: container {c.get('name')!r} has no {' or '.join(missing)}.")


GPU_PODS = Rule(
    id="AI-K8S-004",
    name="k8s-gpu-pods",
    description="Pods that request GPUs tolerate the GPU taint, and pods that tolerate it request GPUs.",
    severity=Severity.HIGH,
    fix="Request nvidia.com/gpu in the container limits and tolerate nvidia.com/gpu:NoSchedule, together.",
    resource_types=WORKLOADS,
)


@resource_rule(GPU_PODS)
def gpu_pods(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    pod = pod_spec(args.resource_type, args.props)
    wants = any(GPU in ((c.get("resources") or {}).get("limits") or {}) for c in containers(pod))
    tolerates = any(t.get("key") == GPU for t in pod.get("tolerations") or [])
    if wants and not tolerates:
        report(f"{args.name!r} requests GPUs but does not tolerate the {GPU} taint.")
    if tolerates and not wants:
        report(f"{args.name!r} tolerates the {GPU} taint but requests no GPU: it would hold a GPU node.")


PRIVILEGED = Rule(
    id="AI-K8S-005",
    name="k8s-no-privileged",
    description="No privileged containers, privilege escalation or host namespaces.",
    severity=Severity.CRITICAL,
    fix="Drop privileged, set allowPrivilegeEscalation false and leave hostNetwork/hostPID/hostIPC off.",
    resource_types=WORKLOADS,
    checkov=("CKV_K8S_16", "CKV_K8S_17", "CKV_K8S_18", "CKV_K8S_19", "CKV_K8S_20"),
)


@resource_rule(PRIVILEGED)
def privileged(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    pod = pod_spec(args.resource_type, args.props)
    host = [h for h in ("hostNetwork", "hostPID", "hostIPC") if pod.get(h) is True]
    if host:
        report(f"{args.name!r} shares the host's {', '.join(host)}.")
    for c in containers(pod):
        sc = c.get("securityContext") or {}
        if sc.get("privileged") is True or sc.get("allowPrivilegeEscalation") is not False:
            report(f"{args.name!r}: container {c.get('name')!r} is privileged or may escalate privileges.")


DISRUPTION = Rule(
    id="AI-K8S-006",
    name="k8s-pdb",
    description="Deployments with two or more replicas have a PodDisruptionBudget selecting their pods.",
    severity=Severity.MEDIUM,
    fix="Add a PodDisruptionBudget (maxUnavailable 1) with the Deployment's selector.",
    resource_types=(DEPLOYMENT, PDB),
)


@stack_rule(DISRUPTION)
def disruption(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    budgets = [
        (
            (b.props.get("metadata") or {}).get("namespace"),
            dict(((b.props.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}),
        )
        for b in of_type(resources, PDB)
    ]
    for deployment in of_type(resources, DEPLOYMENT):
        spec = deployment.props.get("spec") or {}
        if int(spec.get("replicas") or 1) < 2:
            continue
        namespace = (deployment.props.get("metadata") or {}).get("namespace")
        labels = dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
        if not any(ns == namespace and sel and sel.items() <= labels.items() for ns, sel in budgets):
            report(
                f"Deployment {deployment.name!r} runs {spec.get('replicas')} replicas without a PodDisruptionBudget.",
                deployment.urn,
            )


def istio_installed(resources: list[PolicyResource]) -> bool:
    return any(
        r.resource_type.startswith(("kubernetes:networking.istio.io", "kubernetes:security.istio.io"))
        or (r.resource_type == RELEASE and r.props.get("chart") == "istiod")
        for r in resources
    )


STRICT_MTLS = Rule(
    id="AI-MESH-001",
    name="mesh-strict-mtls",
    description="Where Istio runs, a mesh-wide PeerAuthentication (root namespace, no selector) is STRICT.",
    severity=Severity.CRITICAL,
    fix="Create PeerAuthentication 'default' in istio-system without a selector and mtls.mode STRICT "
    "(components.service_mesh does).",
    resource_types=(PEER_AUTHENTICATION,),
    config={"rootNamespace": {"type": "string", "default": "istio-system"}},
)


@stack_rule(STRICT_MTLS)
def strict_mtls(
    resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], args: StackValidationArgs
) -> None:
    if not istio_installed(resources):
        args.not_applicable("no Istio in this stack")
    for policy in of_type(resources, PEER_AUTHENTICATION):
        meta, spec = policy.props.get("metadata") or {}, policy.props.get("spec") or {}
        if (
            meta.get("namespace") == cfg["rootNamespace"]
            and not spec.get("selector")
            and (spec.get("mtls") or {}).get("mode") == "STRICT"
        ):
            return
    report(f"no mesh-wide STRICT PeerAuthentication in {cfg['rootNamespace']}: plaintext is accepted.")


OUTLIER = Rule(
    id="AI-MESH-002",
    name="mesh-outlier-detection",
    description="Where Istio runs, every model Service has a DestinationRule with outlier detection.",
    severity=Severity.HIGH,
    fix="Add a DestinationRule for the model Service host with trafficPolicy.outlierDetection and connection "
    "pool limits (components.service_mesh does).",
    resource_types=(SERVICE, DESTINATION_RULE),
)


@stack_rule(OUTLIER)
def outlier(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], args: StackValidationArgs) -> None:
    if not istio_installed(resources):
        args.not_applicable("no Istio in this stack")
    protected = set()
    for rule in of_type(resources, DESTINATION_RULE):
        spec = rule.props.get("spec") or {}
        if (spec.get("trafficPolicy") or {}).get("outlierDetection"):
            protected.add(str(spec.get("host")))
    for service in of_type(resources, SERVICE):
        meta = service.props.get("metadata") or {}
        if "agent-infra/model-pool" not in (meta.get("labels") or {}):
            continue
        name, namespace = meta.get("name"), meta.get("namespace")
        if not {f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}", str(name)} & protected:
            report(f"model Service {name!r} has no DestinationRule with outlier detection.", service.urn)


EGRESS = Rule(
    id="AI-MESH-003",
    name="mesh-no-open-egress",
    description="Where Istio runs, no namespace with sidecars may reach any host: egress goes through named "
    "ServiceEntries.",
    severity=Severity.HIGH,
    fix="Give each injected namespace a Sidecar with outboundTrafficPolicy REGISTRY_ONLY, list the allowed "
    "hosts as ServiceEntries, and never a '*' host.",
    resource_types=(NAMESPACE, SIDECAR, SERVICE_ENTRY),
)


@stack_rule(EGRESS)
def egress(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], args: StackValidationArgs) -> None:
    if not istio_installed(resources):
        args.not_applicable("no Istio in this stack")
    for entry in of_type(resources, SERVICE_ENTRY):
        if "*" in list((entry.props.get("spec") or {}).get("hosts") or []):
            report(f"ServiceEntry {entry.name!r} opens egress to every host ('*').", entry.urn)
    closed = {
        (s.props.get("metadata") or {}).get("namespace")
        for s in of_type(resources, SIDECAR)
        if ((s.props.get("spec") or {}).get("outboundTrafficPolicy") or {}).get("mode") == "REGISTRY_ONLY"
    }
    for namespace in of_type(resources, NAMESPACE):
        meta = namespace.props.get("metadata") or {}
        if (meta.get("labels") or {}).get("istio-injection") == "enabled" and meta.get("name") not in closed:
            report(
                f"namespace {meta.get('name')!r} has sidecars but no REGISTRY_ONLY Sidecar: any host is reachable.",
                namespace.urn,
            )


RULES = [pinned, requests_limits, probes, gpu_pods, privileged, disruption, strict_mtls, outlier, egress]
