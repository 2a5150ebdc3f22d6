"""Kubernetes workload, API Gateway and Istio rules."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures import manifest
from helpers import DROP, UNKNOWN, findings, mutate, remove

WORKLOAD_RULES = [
    "k8s-image-pinned",
    "k8s-requests-limits",
    "k8s-probes",
    "k8s-gpu-pods",
    "k8s-no-privileged",
    "k8s-pdb",
]
CONTAINER = "spec.template.spec.containers.0"


@pytest.mark.parametrize("policy", WORKLOAD_RULES)
def test_workload_rules_quiet_on_the_shipped_prod_plan(plans: dict[str, Any], policy: str) -> None:
    assert findings(policy, plans["prod"]) == []


@pytest.mark.parametrize(
    ("policy", "path", "value", "text"),
    [
        ("k8s-image-pinned", f"{CONTAINER}.image", "vllm/vllm-openai:latest", "runs the unpinned image"),
        ("k8s-image-pinned", f"{CONTAINER}.image", "vllm/vllm-openai", "runs the unpinned image"),
        ("k8s-requests-limits", f"{CONTAINER}.resources.limits.memory", DROP, "lacks limits.memory"),
        ("k8s-probes", f"{CONTAINER}.livenessProbe", DROP, "has no livenessProbe"),
        ("k8s-gpu-pods", "spec.template.spec.tolerations", [], "requests GPUs but does not tolerate"),
        ("k8s-no-privileged", f"{CONTAINER}.securityContext.privileged", True, "is privileged"),
        ("k8s-no-privileged", "spec.template.spec.hostNetwork", True, "shares the host's hostNetwork"),
    ],
)
def test_workload_rules_fire(plans: dict[str, Any], policy: str, path: str, value: Any, text: str) -> None:
    result = findings(policy, mutate(plans["prod"], "model-llama-8b-deployment", path, value))
    assert len(result) == 1 and result[0][:2] == ("violation", "model-llama-8b-deployment") and text in result[0][2]


def test_gpu_toleration_without_a_gpu_request_fires(plans: dict[str, Any]) -> None:
    import copy

    m = copy.deepcopy(plans["prod"])
    deployment = next(r for r in m["resources"] if r["name"] == "model-llama-8b-deployment")
    for key in ("limits", "requests"):
        deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["resources"][key].pop("nvidia.com/gpu")
    result = findings("k8s-gpu-pods", m)
    assert len(result) == 1 and "tolerates the nvidia.com/gpu taint but requests no GPU" in result[0][2]


def test_replicated_deployment_without_pdb_fires(plans: dict[str, Any]) -> None:
    changed = mutate(remove(plans["prod"], "model-llama-8b-pdb"), "model-llama-8b-deployment", "spec.replicas", 2)
    result = findings("k8s-pdb", changed)
    assert [r[1] for r in result] == ["model-llama-8b-deployment"]


def test_workload_unknown_value_is_reported(plans: dict[str, Any]) -> None:
    changed = mutate(plans["prod"], "model-llama-8b-deployment", f"{CONTAINER}.image", UNKNOWN)
    assert [r[0] for r in findings("k8s-image-pinned", changed)] == ["unknown"]


APIGW_RULES = ["apigw-method-authorizer", "apigw-throttling", "apigw-access-logging", "apigw-waf"]


@pytest.mark.parametrize("policy", APIGW_RULES)
def test_apigw_rules_quiet(policy: str) -> None:
    assert findings(policy, manifest("apigw_program")) == []


@pytest.mark.parametrize(
    ("policy", "change", "resource", "text"),
    [
        ("apigw-method-authorizer", ("agents-post", "authorization", "NONE"), "agents-post", "has no authoriser"),
        ("apigw-throttling", ("defaults", "settings.throttlingBurstLimit", 0), "v1", "has no default (*/*) throttling"),
        ("apigw-throttling", ("gold", "throttleSettings", DROP), "gold", "has no rate and burst limit"),
        ("apigw-access-logging", ("v1", "accessLogSettings", DROP), "v1", "writes no access logs"),
    ],
)
def test_apigw_rules_fire(policy: str, change: tuple, resource: str, text: str) -> None:
    result = findings(policy, mutate(manifest("apigw_program"), *change))
    assert len(result) == 1 and result[0][:2] == ("violation", resource) and text in result[0][2]


def test_apigw_waf_fires_without_an_association() -> None:
    result = findings("apigw-waf", remove(manifest("apigw_program"), "waf-stage"))
    assert [r[:2] for r in result] == [("violation", "v1")]


def test_apigw_public_paths_are_a_setting() -> None:
    result = findings("apigw-method-authorizer", manifest("apigw_program"), publicPaths=[])
    assert [r[1] for r in result] == ["health-get"]


MESH_RULES = ["mesh-strict-mtls", "mesh-outlier-detection", "mesh-no-open-egress"]


@pytest.mark.parametrize("policy", MESH_RULES)
def test_mesh_rules_quiet(policy: str) -> None:
    assert findings(policy, manifest("istio_program")) == []


@pytest.mark.parametrize(
    ("policy", "change", "text"),
    [
        ("mesh-strict-mtls", ("default", "spec.mtls.mode", "PERMISSIVE"), "no mesh-wide STRICT PeerAuthentication"),
        ("mesh-strict-mtls", ("default", "spec.selector", {"matchLabels": {"app": "x"}}), "no mesh-wide STRICT"),
        ("mesh-outlier-detection", ("vllm-llama", "spec.trafficPolicy", {}), "has no DestinationRule with outlier"),
        ("mesh-no-open-egress", ("huggingface", "spec.hosts", ["*"]), "opens egress to every host"),
        (
            "mesh-no-open-egress",
            ("models-egress", "spec.outboundTrafficPolicy.mode", "ALLOW_ANY"),
            "has sidecars but no REGISTRY_ONLY Sidecar",
        ),
    ],
)
def test_mesh_rules_fire(policy: str, change: tuple, text: str) -> None:
    result = findings(policy, mutate(manifest("istio_program"), *change))
    assert len(result) == 1 and result[0][0] == "violation" and text in result[0][2]


def test_mesh_rules_do_not_apply_without_istio() -> None:
    from helpers import check_rule

    result = check_rule("mesh-strict-mtls", manifest("network_program"))
    assert result.findings == [] and ("mesh-strict-mtls", "no Istio in this stack") in result.not_applicable


def test_mesh_unknown_value_is_reported() -> None:
    changed = mutate(manifest("istio_program"), "default", "spec", UNKNOWN)
    assert [r[0] for r in findings("mesh-strict-mtls", changed)] == ["unknown"]
