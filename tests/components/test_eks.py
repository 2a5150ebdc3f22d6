"""EKS and GPU capacity: private cluster, per-AZ GPU node groups, autoscaler, device plugin, metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import by_name, resources_of

from stacks.settings import parse_settings

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _releases(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["inputs"]["chart"]: r for r in resources_of(m, RELEASE)}


def test_prod_cluster_is_private_with_restricted_public_cidrs_encryption_and_all_logs(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    cluster = by_name(prod, "eks-cluster")
    inputs = cluster["inputs"]
    assert inputs["name"] == "agent-infra-prod-eks" and inputs["version"] == "1.32"
    vpc = inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True and vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["198.51.100.0/24"]
    assert inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster["propertyDependencies"]["encryptionConfig"] == [by_name(prod, "eks-secrets-key-key")["urn"]]
    assert sorted(inputs["enabledClusterLogTypes"]) == [
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    ]
    log_group = by_name(prod, "eks-control-plane")
    assert log_group["inputs"]["name"] == "/aws/eks/agent-infra-prod-eks/cluster"
    assert log_group["urn"] in cluster["dependencies"], "the log group exists before the cluster"
    assert cluster["options"]["protect"] is True


def test_core_addons_are_pinned_and_roles_use_pod_identity(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    addons = {a["inputs"]["addonName"]: a["inputs"] for a in resources_of(prod, "aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent"}
    assert all(re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", a["addonVersion"]) for a in addons.values())
    associations = {
        (a["inputs"]["namespace"], a["inputs"]["serviceAccount"])
        for a in resources_of(prod, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    assert {
        ("kube-system", "aws-node"),
        ("kube-system", "ebs-csi-controller-sa"),
        ("kube-system", "cluster-autoscaler"),
    } <= associations
    role = next(
        r for r in resources_of(prod, "aws:iam/role:Role") if r["name"] == "cluster-services-cluster-autoscaler"
    )
    trust = json.loads(role["inputs"]["assumeRolePolicy"])

    (stmt,) = trust["Statement"]
    assert stmt["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert stmt["Condition"]["ArnEquals"] == {
        "aws:SourceArn": "arn:aws:eks:us-east-1:333333333333:cluster/agent-infra-prod-eks"
    }
    assert resources_of(prod, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")


@pytest.mark.parametrize(
    ("pool", "instance", "accelerator"), [("llama-8b", "g6e.xlarge", "l40s"), ("llama-70b", "p5.48xlarge", "h100")]
)
def test_every_model_pool_has_a_tainted_gpu_node_group_in_each_of_three_azs(
    plans: dict[str, Any], pool: str, instance: str, accelerator: str
) -> None:
    groups = [
        g
        for g in resources_of(plans["prod"], NODE_GROUP)
        if g["inputs"]["labels"].get("agent-infra/model-pool") == pool
    ]
    assert sorted(g["name"].removeprefix(f"gpu-{pool}-") for g in groups) == ["us-east-1a", "us-east-1b", "us-east-1c"]

    for group in groups:
        inputs = group["inputs"]
        assert inputs["amiType"] == "AL2023_x86_64_NVIDIA" and inputs["instanceTypes"] == [instance]
        assert inputs["taints"] == [{"effect": "NO_SCHEDULE", "key": "nvidia.com/gpu", "value": "true"}]
        assert inputs["labels"]["agent-infra/accelerator"] == accelerator
        assert len(inputs["subnetIds"]) == 1, "one AZ per node group"
        assert inputs["nodeRepairConfig"] == {"enabled": True}
        assert group["options"]["ignoreChanges"] == ["scalingConfig.desiredSize"]
    template = by_name(plans["prod"], f"gpu-{pool}-nodes")
    metadata = template["inputs"]["metadataOptions"]
    assert metadata["httpTokens"] == "required" and metadata["httpPutResponseHopLimit"] == 1
    (root,) = template["inputs"]["blockDeviceMappings"]
    assert root["ebs"]["volumeType"] == "gp3" and root["ebs"]["encrypted"] == "true"
    assert root["ebs"]["volumeSize"] == 200
    assert template["propertyDependencies"]["vpcSecurityGroupIds"] == [by_name(plans["prod"], "eks-cluster")["urn"]]


def test_dev_gpu_pool_runs_on_spot_in_two_azs(plans: dict[str, Any]) -> None:
    groups = resources_of(plans["dev"], NODE_GROUP)
    gpu = [g for g in groups if "agent-infra/model-pool" in g["inputs"]["labels"]]
    assert len(gpu) == 2 and {g["inputs"]["capacityType"] for g in gpu} == {"SPOT"}


def test_device_plugin_autoscaler_and_metrics_are_pinned_releases(plans: dict[str, Any]) -> None:
    releases = _releases(plans["prod"])
    assert {
        "nvidia-device-plugin",
        "cluster-autoscaler",
        "kube-prometheus-stack",
        "dcgm-exporter",
        "keda",
        "external-secrets",
    } <= set(releases)
    for release in releases.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", release["inputs"]["version"]), "pinned, never latest"
        assert release["inputs"]["repositoryOpts"]["repo"].startswith("https://")
    autoscaler = releases["cluster-autoscaler"]["inputs"]["values"]
    assert autoscaler["extraArgs"]["balance-similar-node-groups"] is True
    assert autoscaler["autoDiscovery"]["clusterName"] == "agent-infra-prod-eks"
    plugin = releases["nvidia-device-plugin"]["inputs"]["values"]
    assert plugin["nodeSelector"]["agent-infra/ami"] == "al2023"
    assert plugin["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert releases["dcgm-exporter"]["inputs"]["values"]["serviceMonitor"]["enabled"] is True
    prom = releases["kube-prometheus-stack"]["inputs"]["values"]["prometheus"]["prometheusSpec"]
    assert prom["serviceMonitorSelectorNilUsesHelmValues"] is False


def test_autoscaler_may_change_only_this_clusters_groups(plans: dict[str, Any]) -> None:
    policy = next(
        r
        for r in resources_of(plans["prod"], "aws:iam/rolePolicy:RolePolicy")
        if r["name"] == "cluster-services-cluster-autoscaler"
    )
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    scale = statements["ScaleThisClustersGroups"]
    assert scale["Condition"] == {
        "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/agent-infra-prod-eks": "owned"}
    }


def test_bottlerocket_pools_get_a_data_volume_and_no_device_plugin() -> None:
    from helpers import settings_inputs

    from agentinfra.engine import record

    kwargs = settings_inputs("dev")
    kwargs["raw"]["model_pools"][0]["ami"] = "bottlerocket_nvidia"
    settings = parse_settings(**kwargs)
    assert settings.model_pools[0].ami.value == "BOTTLEROCKET_x86_64_NVIDIA"

    import stacks.app as app

    def program() -> None:
        app.load_settings = lambda: settings  # type: ignore[assignment]
        app.build()

    original = app.load_settings
    try:
        m = record(program, stack="dev")
    finally:
        app.load_settings = original
    template = by_name(m, "gpu-llama-8b-nodes")
    assert [b["deviceName"] for b in template["inputs"]["blockDeviceMappings"]] == ["/dev/xvda", "/dev/xvdb"]
    assert "nvidia-device-plugin" not in _releases(m)
