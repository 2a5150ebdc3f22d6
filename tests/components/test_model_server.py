"""vLLM model servers: arguments, GPUs, shm, probes, spread and scaling match the config; objects are valid."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from helpers import by_name, raw_config, resources_of, settings_inputs

from stacks.reader import SettingsError
from stacks.settings import parse_settings

K8S_VERSION = "1.32.0"
BUILT_IN = (
    "kubernetes:core/",
    "kubernetes:apps/",
    "kubernetes:policy/",
    "kubernetes:batch/",
    "kubernetes:networking.k8s.io/",
    "kubernetes:rbac.authorization.k8s.io/",
)


def _server_config(env: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in raw_config(env)["agent-infra:model_pools"] if "server" in p}


@pytest.mark.parametrize("pool", ["llama-8b", "llama-70b"])
def test_prod_deployment_matches_the_config(plans: dict[str, Any], pool: str) -> None:
    config = _server_config("prod")[pool]["server"]
    deployment = by_name(plans["prod"], f"model-{pool}-deployment")["inputs"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = dict(zip(container["args"][::2], container["args"][1::2], strict=True))
    gpus = {"llama-8b": 1, "llama-70b": 8}[pool]
    assert args["--model"] == config["repository"] and args["--served-model-name"] == pool
    assert args["--tensor-parallel-size"] == str(gpus)
    assert args["--max-model-len"] == str(config["max_model_len"])
    assert args["--max-num-seqs"] == str(config["max_num_seqs"])
    assert args["--max-num-batched-tokens"] == "8192" and args["--gpu-memory-utilization"] == "0.9"
    assert container["image"] == config["image"] and not container["image"].endswith(":latest")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
    assert pod["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert pod["nodeSelector"] == {"agent-infra/model-pool": pool}
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")["emptyDir"]
    assert shm["medium"] == "Memory" and shm["sizeLimit"] == ("30Gi" if gpus == 8 else "2Gi")
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert "persistentVolumeClaim" not in models and "emptyDir" in models
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    expected_startup = 1200 if pool == "llama-70b" else 600
    assert startup["periodSeconds"] * startup["failureThreshold"] >= expected_startup
    assert container["readinessProbe"]["httpGet"]["path"] == container["livenessProbe"]["httpGet"]["path"] == "/health"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["whenUnsatisfiable"] == "ScheduleAnyway"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
    hf = next(e for e in container["env"] if e["name"] == "HF_TOKEN")
    assert hf["valueFrom"]["secretKeyRef"] == {"key": "HF_TOKEN", "name": "huggingface-token"}


def test_scaling_is_keda_on_waiting_requests(plans: dict[str, Any]) -> None:
    scaler = by_name(plans["prod"], "model-llama-8b-scaler")["inputs"]
    assert scaler["kind"] == "ScaledObject" and scaler["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaler["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 12)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == 'sum(vllm:num_requests_waiting{model_name="llama-8b"})'
    assert trigger["metadata"]["serverAddress"].startswith("http://kube-prometheus-stack-prometheus.monitoring")


def test_pdb_only_for_pools_with_two_or_more_replicas(plans: dict[str, Any]) -> None:
    pdbs = [
        p["name"]
        for p in resources_of(plans["prod"], "kubernetes:policy/v1:PodDisruptionBudget")
        if p["name"].startswith("model-llama")
    ]
    assert pdbs == ["model-llama-8b-pdb"]


def test_hf_token_is_synced_from_secrets_manager_and_never_read(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    (secret,) = [s for s in resources_of(prod, "aws:secretsmanager/secret:Secret") if s["name"] == "models-hf-token"]
    assert secret["inputs"]["name"] == "agent-infra/prod/models/huggingface-token"
    versions = [
        v
        for v in resources_of(prod, "aws:secretsmanager/secretVersion:SecretVersion")
        if secret["urn"] in v["propertyDependencies"].get("secretId", [])
    ]
    assert versions == [], "the program never writes (or reads) the token"
    sync = by_name(prod, "models-hf-token-sync")["inputs"]["spec"]
    remote = {"key": "agent-infra/prod/models/huggingface-token"}
    assert sync["data"] == [{"remoteRef": remote, "secretKey": "HF_TOKEN"}]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_kubernetes_object_is_valid_for_the_pinned_version(plans: dict[str, Any], env: str) -> None:
    objects = [r for r in plans[env]["resources"] if r["type"].startswith(BUILT_IN)]
    assert len(objects) >= 4
    for resource in objects:
        kubernetes_validate.validate(_as_preview(resource["inputs"]), K8S_VERSION, strict=True)


def _as_preview(value: Any) -> Any:
    """A value unknown in a preview is a string there (e.g. a checksum of config holding an endpoint)."""
    if isinstance(value, dict):
        return "unknown-in-preview" if value.get("$unknown") is True else {k: _as_preview(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_preview(v) for v in value]
    return value


def test_schema_validation_can_fail() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(copy.deepcopy(deployment), K8S_VERSION, strict=True)


def _server_error(env: str, pool: int, **changes: Any) -> str:
    kwargs = settings_inputs(env)
    server = kwargs["raw"]["model_pools"][pool]["server"]
    server.update(changes)
    with pytest.raises(SettingsError) as info:
        parse_settings(**kwargs)
    return str(info.value)


def test_a_70b_model_on_a_24gb_gpu_is_rejected_with_the_arithmetic() -> None:
    kwargs = settings_inputs("dev")
    kwargs["raw"]["model_pools"][0]["server"].update(model="Llama-3.1-70B", repository="meta-llama/Llama-3.1-70B")
    with pytest.raises(SettingsError) as info:
        parse_settings(**kwargs)
    message = str(info.value)
    assert "agent-infra:model_pools[0].server.model:" in message
    assert "131.50 GiB in bf16/fp16" in message and "37.06 GiB at 4 bits" in message
    message = _server_error("dev", 0, model="Llama-3.1-70B", dtype="awq")
    assert "does not fit on 24.00 GiB GPUs" in message


def test_latest_image_and_bad_tp_are_rejected() -> None:
    assert "never latest" in _server_error("prod", 0, image="vllm/vllm-openai:latest")
    assert "agent-infra:model_pools[1].server.tensor_parallel_size" in _server_error("prod", 1, tensor_parallel_size=3)


def test_shipped_configs_produce_no_sizing_warnings() -> None:
    for env in ("dev", "staging", "prod"):
        assert parse_settings(**settings_inputs(env)).warnings == ()
