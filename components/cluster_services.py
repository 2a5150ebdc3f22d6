"""Cluster services the GPU pools need: device plugin, node autoscaling and GPU/model metrics.

Choices, and why:

* **Cluster Autoscaler**, not Karpenter: the pools are per-AZ *managed* node groups (isolation from
  zonal GPU shortages, node auto-repair, AMI updates by EKS). The autoscaler scales exactly those groups
  and ``--balance-similar-node-groups`` keeps the AZs even; Karpenter would replace them with its own
  provisioning. Scale-down leaves alone pods annotated ``cluster-autoscaler.kubernetes.io/safe-to-evict:
  "false"`` (the model servers, while they load weights), and a new node gets 15 minutes to become ready,
  since GPU nodes boot slowly.
* **kube-prometheus-stack in the cluster**, not Amazon Managed Prometheus: vLLM and DCGM expose
  Prometheus metrics, the model servers' autoscaling (KEDA) and the alerting rules query them, and an
  in-cluster Prometheus needs no scraper configuration outside the cluster or per-sample cost.
* The **NVIDIA device plugin** runs only on AL2023 GPU nodes; Bottlerocket ships its own.
* The **DCGM exporter** runs on every GPU node and publishes GPU utilisation, memory and errors.

Charts are pinned to exact versions from their projects' own repositories. No policy rule can see the
objects a chart renders; the values passed here are what the plan records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from . import iam
from .eks_cluster import EksCluster
from .gpu_node_group import GPU_PRESENT_LABEL, GPU_TAINT_KEY

SYSTEM_SELECTOR = {"agent-infra/role": "system"}
GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True)
class Chart:
    """A pinned Helm chart from its project's repository."""

    name: str
    version: str
    repo: str


#: Pinned charts. Bump deliberately, in a reviewed change.
DEFAULT_CHARTS = {
    "nvidia-device-plugin": Chart("nvidia-device-plugin", "0.17.1", "https://nvidia.github.io/k8s-device-plugin"),
    "cluster-autoscaler": Chart("cluster-autoscaler", "9.46.6", "https://kubernetes.github.io/autoscaler"),
    "kube-prometheus-stack": Chart(
        "kube-prometheus-stack", "72.6.2", "https://prometheus-community.github.io/helm-charts"
    ),
    "dcgm-exporter": Chart("dcgm-exporter", "4.1.1", "https://nvidia.github.io/dcgm-exporter/helm-charts"),
}


@dataclass(frozen=True)
class ClusterServicesArgs:
    cluster: EksCluster
    """The cluster, its provider and its workload-role factory."""
    region: str
    """Region of the autoscaler's API calls."""
    device_plugin: bool = True
    """Install the NVIDIA device plugin (needed when any pool runs AL2023 GPU nodes)."""
    prometheus_retention: str = "15d"
    """How long Prometheus keeps samples (default 15d)."""
    prometheus_volume_gib: int = 50
    """Prometheus's persistent volume (gp3, encrypted by the EBS CSI driver's default class)."""
    charts: dict[str, Chart] = field(default_factory=lambda: dict(DEFAULT_CHARTS))


class ClusterServices(pulumi.ComponentResource):
    """Device plugin, Cluster Autoscaler, kube-prometheus-stack and DCGM exporter."""

    autoscaler_role_name: pulumi.Output[str]
    """IAM role of the autoscaler's service account."""
    monitoring_namespace: str
    """Namespace of the metrics stack (Prometheus service ``kube-prometheus-stack-prometheus``)."""
    prometheus_url: str
    """In-cluster URL of Prometheus, for KEDA and the Prometheus adapter."""

    def __init__(self, name: str, args: ClusterServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:eks:ClusterServices", name, None, opts)
        cluster, charts = args.cluster, args.charts
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cluster.provider)

        if args.device_plugin:
            self._release(
                f"{name}-nvidia-device-plugin",
                charts["nvidia-device-plugin"],
                "kube-system",
                {
                    "nodeSelector": {"agent-infra/ami": "al2023", GPU_PRESENT_LABEL: "true"},
                    "tolerations": [GPU_TOLERATION],
                    "priorityClassName": "system-node-critical",
                },
                k8s_opts,
            )

        autoscaler = cluster.workload_role(
            f"{name}-cluster-autoscaler",
            namespace="kube-system",
            service_account="cluster-autoscaler",
            statements=autoscaler_statements(cluster.name),
            parent=self,
        )
        self.autoscaler_role_name = autoscaler.name
        self._release(
            f"{name}-cluster-autoscaler",
            charts["cluster-autoscaler"],
            "kube-system",
            {
                "autoDiscovery": {"clusterName": cluster.name},
                "awsRegion": args.region,
                "rbac": {"serviceAccount": {"create": True, "name": "cluster-autoscaler"}},
                "nodeSelector": SYSTEM_SELECTOR,
                "extraArgs": {
                    "balance-similar-node-groups": True,
                    "expander": "least-waste",
                    "skip-nodes-with-local-storage": False,
                    "max-node-provision-time": "15m0s",
                    "scale-down-unneeded-time": "10m0s",
                    "scale-down-delay-after-add": "10m0s",
                },
            },
            k8s_opts,
        )

        self.monitoring_namespace = "monitoring"
        namespace = k8s.core.v1.Namespace(
            f"{name}-monitoring",
            k8s.core.v1.NamespaceInitArgs(metadata=k8s.meta.v1.ObjectMetaArgs(name=self.monitoring_namespace)),
            opts=k8s_opts,
        )
        ns_opts = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[namespace])
        self._release(
            f"{name}-kube-prometheus-stack",
            charts["kube-prometheus-stack"],
            self.monitoring_namespace,
            {
                "grafana": {"enabled": False},
                "prometheus": {
                    "prometheusSpec": {
                        # Pick up every ServiceMonitor and PodMonitor (vLLM, DCGM), not only this release's.
                        "serviceMonitorSelectorNilUsesHelmValues": False,
                        # The OpenTelemetry collector writes mesh and trace metrics here.
                        "enableRemoteWriteReceiver": True,
                        "podMonitorSelectorNilUsesHelmValues": False,
                        "ruleSelectorNilUsesHelmValues": False,
                        "retention": args.prometheus_retention,
                        "nodeSelector": SYSTEM_SELECTOR,
                        "storageSpec": {
                            "volumeClaimTemplate": {
                                "spec": {
                                    "accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": f"{args.prometheus_volume_gib}Gi"}},
                                }
                            }
                        },
                    }
                },
                "alertmanager": {"alertmanagerSpec": {"nodeSelector": SYSTEM_SELECTOR}},
                "prometheusOperator": {"nodeSelector": SYSTEM_SELECTOR},
            },
            ns_opts,
        )
        self._release(
            f"{name}-dcgm-exporter",
            charts["dcgm-exporter"],
            self.monitoring_namespace,
            {
                "nodeSelector": {GPU_PRESENT_LABEL: "true"},
                "tolerations": [GPU_TOLERATION],
                "serviceMonitor": {"enabled": True, "interval": "15s"},
            },
            ns_opts,
        )
        self.prometheus_url = f"http://kube-prometheus-stack-prometheus.{self.monitoring_namespace}.svc:9090"
        self.register_outputs({"autoscalerRoleName": self.autoscaler_role_name, "prometheusUrl": self.prometheus_url})

    def _release(self, name: str, chart: Chart, namespace: str, values: dict, opts: pulumi.ResourceOptions) -> None:
        k8s.helm.v3.Release(
            name,
            k8s.helm.v3.ReleaseArgs(
                name=chart.name,
                chart=chart.name,
                version=chart.version,
                namespace=namespace,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
                values=values,
                atomic=True,
                cleanup_on_fail=True,
                timeout=900,
            ),
            opts=opts,
        )


def autoscaler_statements(cluster_name: str) -> list[dict]:
    """What the Cluster Autoscaler needs: describe everything, change only this cluster's groups."""
    return [
        iam.statement(
            "DescribeScalingTargets",
            [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                "eks:DescribeNodegroup",
            ],
            ["*"],
        ),
        iam.statement(
            "ScaleThisClustersGroups",
            ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            ["*"],
            conditions={"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        ),
    ]
