"""Compute, cache and GPU rules, with the shipped prod plan as the compliant fixture."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import DROP, UNKNOWN, by_name, findings, mutate

RULES = [
    "eks-endpoint-restricted",
    "eks-secrets-encryption",
    "eks-control-plane-logs",
    "gpu-capacity-multi-az",
    "gpu-node-groups-tainted",
    "imdsv2-required",
    "ebs-encrypted",
    "no-public-ip",
    "asg-multi-az",
    "asg-min-capacity",
    "asg-group-metrics",
    "gpu-count-ceiling",
    "vllm-model-fits",
    "cache-encryption",
    "cache-auth",
    "cache-multi-az-failover",
    "cache-snapshots",
]


@pytest.mark.parametrize("policy", RULES)
def test_quiet_on_the_shipped_prod_plan(plans: dict[str, Any], policy: str) -> None:
    settings = {"minAzs": 3} if policy in ("gpu-capacity-multi-az", "asg-multi-az") else {}
    assert findings(policy, plans["prod"], **settings) == []


CASES = [
    (
        "eks-endpoint-restricted",
        ("eks-cluster", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]),
        {},
        "eks-cluster",
        "has a public endpoint open to ['0.0.0.0/0']",
    ),
    (
        "eks-endpoint-restricted",
        ("eks-cluster", "vpcConfig.endpointPrivateAccess", False),
        {},
        "eks-cluster",
        "has no private endpoint",
    ),
    (
        "eks-secrets-encryption",
        ("eks-cluster", "encryptionConfig", DROP),
        {},
        "eks-cluster",
        "does not encrypt secrets",
    ),
    (
        "eks-control-plane-logs",
        ("eks-cluster", "enabledClusterLogTypes", ["api"]),
        {},
        "eks-cluster",
        "does not log audit, authenticator, controllerManager, scheduler",
    ),
    (
        "gpu-node-groups-tainted",
        ("gpu-llama-8b-us-east-1a", "taints", []),
        {},
        "gpu-llama-8b-us-east-1a",
        "is not tainted",
    ),
    (
        "imdsv2-required",
        ("workers-agents-template", "metadataOptions.httpTokens", "optional"),
        {},
        "workers-agents-template",
        "does not require IMDSv2",
    ),
    (
        "ebs-encrypted",
        ("gpu-llama-70b-nodes", "blockDeviceMappings.0.ebs.encrypted", "false"),
        {},
        "gpu-llama-70b-nodes",
        "has an unencrypted volume (/dev/xvda)",
    ),
    (
        "no-public-ip",
        ("workers-agents-template", "networkInterfaces.0.associatePublicIpAddress", "true"),
        {},
        "workers-agents-template",
        "gives instances a public IP address",
    ),
    (
        "asg-min-capacity",
        ("workers-agents-group", "minSize", 1),
        {},
        "workers-agents-group",
        "may shrink to 1; expected at least 2",
    ),
    (
        "asg-group-metrics",
        ("workers-agents-group", "enabledMetrics", ["GroupMinSize"]),
        {},
        "workers-agents-group",
        "does not publish GroupInServiceInstances",
    ),
    (
        "gpu-count-ceiling",
        ("gpu-llama-70b-us-east-1a", "scalingConfig.maxSize", 4),
        {"maxGpus": 48},
        "(stack)",
        "may reach 60 GPUs",
    ),
    (
        "vllm-model-fits",
        ("model-llama-70b-deployment", "spec.template.spec.containers.0.args.5", "1"),
        {},
        "model-llama-70b-deployment",
        "does not fit on 80.00 GiB GPUs with tp 1",
    ),
    (
        "cache-encryption",
        ("redis-redis", "transitEncryptionEnabled", False),
        {},
        "redis-redis",
        "does not require TLS in transit",
    ),
    ("cache-auth", ("redis-redis", "authToken", DROP), {}, "redis-redis", "accepts clients without authentication"),
    (
        "cache-multi-az-failover",
        ("redis-redis", "multiAzEnabled", False),
        {},
        "redis-redis",
        "has no Multi-AZ automatic failover",
    ),
    (
        "cache-snapshots",
        ("redis-redis", "snapshotRetentionLimit", 0),
        {},
        "redis-redis",
        "keeps snapshots for 0 day(s)",
    ),
]


@pytest.mark.parametrize(
    ("policy", "change", "settings", "resource", "text"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_fires_on_one_changed_property(
    plans: dict[str, Any], policy: str, change: tuple, settings: dict, resource: str, text: str
) -> None:
    result = findings(policy, mutate(plans["prod"], *change), **settings)
    assert len(result) == 1, result
    assert result[0][:2] == ("violation", resource) and text in result[0][2]


def test_gpu_pool_in_one_az_fires(plans: dict[str, Any]) -> None:
    import copy

    m = copy.deepcopy(plans["prod"])
    zone_a = next(
        r["urn"]
        for r in m["resources"]
        if r["name"] == "network-private-us-east-1a" and r["type"] == "aws:ec2/subnet:Subnet"
    )
    for group in m["resources"]:
        if group["name"].startswith("gpu-llama-8b-us-east-1"):
            group["propertyDependencies"]["subnetIds"] = [zone_a]
    result = findings("gpu-capacity-multi-az", m, minAzs=2)
    assert [r[1] for r in result] == ["gpu-llama-8b"]
    assert "spans 1 AZ(s) (us-east-1a); expected at least 2" in result[0][2]


def test_asg_in_one_az_fires(plans: dict[str, Any]) -> None:
    import copy

    m = copy.deepcopy(plans["prod"])
    by_name(m, "workers-agents-group")["propertyDependencies"]["vpcZoneIdentifiers"] = [
        next(
            r["urn"]
            for r in m["resources"]
            if r["name"] == "network-private-us-east-1a" and r["type"] == "aws:ec2/subnet:Subnet"
        )
    ]
    result = findings("asg-multi-az", m, minAzs=2)
    assert [r[1] for r in result] == ["workers-agents-group"]


@pytest.mark.parametrize(
    ("policy", "change"),
    [
        ("eks-endpoint-restricted", ("eks-cluster", "vpcConfig", UNKNOWN)),
        ("cache-multi-az-failover", ("redis-redis", "multiAzEnabled", UNKNOWN)),
        ("imdsv2-required", ("workers-agents-template", "metadataOptions", UNKNOWN)),
    ],
)
def test_unknown_values_are_reported_not_passed(plans: dict[str, Any], policy: str, change: tuple) -> None:
    assert [r[0] for r in findings(policy, mutate(plans["prod"], *change))] == ["unknown"]


def test_unknown_key_and_token_still_count_as_set(plans: dict[str, Any]) -> None:
    changed = mutate(mutate(plans["prod"], "redis-redis", "kmsKeyId", UNKNOWN), "redis-redis", "authToken", UNKNOWN)
    assert findings("cache-encryption", changed) == [] and findings("cache-auth", changed) == []
