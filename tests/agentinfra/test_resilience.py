"""``agentinfra resilience``: capacity after losing one AZ, single points of failure, RPO/RTO, against targets."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import raw_config, resources_of, write_config

from agentinfra import resilience as rs
from agentinfra.resilience_cmd import register

PROD_TARGETS = {
    "min_capacity_after_az_loss": 0.6,
    "allow_single_points_of_failure": [],
    "rpo_minutes": {"redis": 1440, "s3": 60},
    "rto_minutes": {"redis": 5, "gpu": 0, "workers": 0, "nat": 0},
}
DEV_TARGETS = {
    "min_capacity_after_az_loss": 0.5,
    "allow_single_points_of_failure": ["nat"],
    "rpo_minutes": {"redis": 1440},
    "rto_minutes": {"redis": 5},
}


def _plan(env: str, config_path: Path | None = None) -> dict[str, Any]:
    from agentinfra.engine import plan

    return json.loads(json.dumps(plan(env, config_path=config_path)))


@pytest.fixture
def prod(plans: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return plans["prod"]


@pytest.fixture
def dev(plans: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return plans["dev"]


@pytest.fixture(scope="module")
def prod_gpu_in_one_az(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """prod, with its first model pool pinned to one AZ (model_pools[].azs) and planned by the real engine."""
    config = raw_config("prod")
    pool = config["agent-infra:model_pools"][0]
    pool["azs"] = ["us-east-1a"]
    server = pool.get("server")
    if isinstance(server, dict):  # a model server's replicas must still fit the pool's nodes, now in one AZ
        server["max_replicas"] = min(server.get("max_replicas", 1), pool["max_nodes"])
        server["min_replicas"] = min(server.get("min_replicas", 1), server["max_replicas"])
    return _plan("prod", write_config(tmp_path_factory.mktemp("cfg") / "Pulumi.prod.yaml", config))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="agentinfra")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["resilience", *argv])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def _files(tmp_path: Path, manifest: dict[str, Any], targets: Any) -> tuple[str, str]:
    plan_file = tmp_path / f"{manifest['stack']}.json"
    plan_file.write_text(json.dumps(manifest))
    targets_file = tmp_path / "targets.yaml"
    targets_file.write_text(yaml.safe_dump(targets))
    return str(plan_file), str(targets_file)


def _tier(manifest: dict[str, Any], label: str) -> rs.Tier:
    return next(t for t in rs.analyse(manifest).tiers if t.label == label)


# -- the shipped plans ----------------------------------------------------------------------------------------


def test_prod_has_no_single_az_point_of_failure_and_meets_prod_targets(
    prod: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file, targets_file = _files(tmp_path, prod, PROD_TARGETS)
    out_json = tmp_path / "out.json"
    code, out, err = run(capsys, "prod", "--manifest", plan_file, "--targets", targets_file, "--json", str(out_json))
    assert code == 0, out + err
    assert "resilience of prod (AZs us-east-1a, us-east-1b, us-east-1c): PASS" in out
    assert "single points of failure: none" in out
    assert "MISS" not in out and "result: all targets met" in out
    report = json.loads(out_json.read_text())
    assert report["passed"] is True and report["singlePointsOfFailure"] == []
    assert {t["kind"] for t in report["tiers"]} >= {"gpu", "nodes", "workers", "redis", "nat", "endpoints", "s3", "sqs"}


def test_prod_capacity_left_after_losing_each_az(prod: dict[str, Any]) -> None:
    # One node group per AZ: losing any one of the three leaves two thirds of max capacity.
    gpu = _tier(prod, "gpu:gpu-llama-8b")
    assert gpu.azs == ("us-east-1a", "us-east-1b", "us-east-1c")
    assert gpu.capacity_after_loss == pytest.approx({az: 2 / 3 for az in gpu.azs})
    # Redis: two replicas per shard, automatic failover and Multi-AZ: every shard keeps serving.
    redis = _tier(prod, "redis:redis")
    assert redis.spof is None and set(redis.capacity_after_loss.values()) == {1.0}
    assert (redis.rpo.minutes, redis.rto.minutes) == (1440, 2)
    # A NAT gateway per AZ: losing one AZ cuts no other AZ's egress.
    nat = _tier(prod, "nat:network")
    assert nat.spof is None and set(nat.capacity_after_loss.values()) == {1.0}
    # The replicated log bucket: region-level RPO of 15 minutes, said to be an assumption without RTC.
    s3 = _tier(prod, "s3:agent-logs")
    assert s3.rpo.minutes == 15 and "without RTC; assumed 15 minutes" in s3.rpo.basis


def test_dev_single_nat_gateway_misses_targets_that_allow_no_single_point_of_failure(
    dev: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strict = {**DEV_TARGETS, "allow_single_points_of_failure": []}
    plan_file, targets_file = _files(tmp_path, dev, strict)
    code, out, _ = run(capsys, "dev", "--manifest", plan_file, "--targets", targets_file)
    assert code == 1
    assert (
        "MISS  nat: losing us-east-1a leaves no egress for private subnets in us-east-1b "
        "(single NAT gateway network-nat-us-east-1a)"
    ) in out
    assert "result: " in out and "target(s) missed" in out


def test_dev_targets_allow_the_single_nat_gateway(
    dev: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file, targets_file = _files(tmp_path, dev, DEV_TARGETS)
    code, out, _ = run(capsys, "dev", "--manifest", plan_file, "--targets", targets_file)
    assert code == 0, out
    assert "(single NAT gateway network-nat-us-east-1a) (allowed by the targets)" in out
    # Two AZs: losing one leaves half the GPU pool, exactly dev's target.
    assert "ok    gpu: losing us-east-1a leaves 50% of gpu-llama-8b's capacity (target 50%)" in out


def test_a_gpu_pool_in_one_az_is_a_single_point_of_failure(
    prod_gpu_in_one_az: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file, targets_file = _files(tmp_path, prod_gpu_in_one_az, PROD_TARGETS)
    code, out, _ = run(capsys, "prod", "--manifest", plan_file, "--targets", targets_file)
    assert code == 1
    assert "MISS  gpu: GPU pool gpu-llama-8b runs only in us-east-1a: losing us-east-1a leaves no capacity" in out
    assert "MISS  gpu: losing us-east-1a leaves 0% of gpu-llama-8b's capacity, below the target 60%" in out


def test_targets_may_come_from_a_stack_config_file(
    prod: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file, _ = _files(tmp_path, prod, {})
    config = write_config(tmp_path / "Pulumi.prod.yaml", {"agent-infra:resilience": PROD_TARGETS})
    code, out, _ = run(capsys, "prod", "--manifest", plan_file, "--targets", str(config))
    assert code == 0
    assert f"targets ({config} (agent-infra:resilience)):" in out


# -- tiers being built by others: handled when present --------------------------------------------------------


def _subnet_urn(manifest: dict[str, Any], az: str) -> str:
    return next(s["urn"] for s in resources_of(manifest, rs.SUBNET) if s["name"] == f"network-private-{az}")


def test_a_worker_pool_in_one_az_is_named_with_its_az(prod: dict[str, Any]) -> None:
    manifest = copy.deepcopy(prod)
    for asg in resources_of(manifest, rs.ASG):
        asg["propertyDependencies"]["vpcZoneIdentifiers"] = [_subnet_urn(manifest, "us-east-1b")]
    workers = _tier(manifest, "workers:workers-agents")
    assert workers.spof == (
        "workers: worker pool workers-agents runs only in us-east-1b: losing us-east-1b leaves no capacity"
    )


def _release(manifest: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    stack = next(r for r in manifest["resources"] if r["type"] == rs.STACK_TYPE)
    urn = "urn:pulumi:prod::agent-infra::kubernetes:helm.sh/v3:Release::istio-ingress"
    return {
        "urn": urn,
        "type": rs.HELM_RELEASE,
        "name": "istio-ingress",
        "custom": True,
        "parent": stack["urn"],
        "inputs": {"chart": "gateway", "values": values},
        "propertyDependencies": {},
        "dependencies": [],
        "options": {},
        "provider": None,
    }


def test_mesh_ingress_with_one_replica_is_a_single_point_of_failure(prod: dict[str, Any]) -> None:
    manifest = copy.deepcopy(prod)
    manifest["resources"].append(_release(manifest, {"replicaCount": 1, "autoscaling": {"enabled": False}}))
    mesh = _tier(manifest, "mesh:istio-ingress")
    assert mesh.spof is not None and mesh.spof.startswith("mesh: one ingress gateway replica (1 replica(s)")
    assert "any of us-east-1a, us-east-1b, us-east-1c" in mesh.spof


def test_mesh_ingress_spread_over_zones_keeps_most_replicas(prod: dict[str, Any]) -> None:
    manifest = copy.deepcopy(prod)
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}]
    values = {"autoscaling": {"minReplicas": 3, "maxReplicas": 9}, "topologySpreadConstraints": spread}
    manifest["resources"].append(_release(manifest, values))
    mesh = _tier(manifest, "mesh:istio-ingress")
    assert mesh.spof is None and mesh.warnings == ()
    assert mesh.capacity_after_loss == pytest.approx({az: 2 / 3 for az in mesh.azs})
    # Without a zone spread, two replicas may share an AZ: a warning, and no capacity claim.
    manifest["resources"][-1]["inputs"]["values"] = {"autoscaling": {"minReplicas": 2}}
    mesh = _tier(manifest, "mesh:istio-ingress")
    assert mesh.capacity_after_loss == {} and "may share one AZ" in mesh.warnings[0]


def test_rest_api_is_regional(prod: dict[str, Any]) -> None:
    manifest = copy.deepcopy(prod)
    # The shipped plan has a real API now: take it out, so these synthetic resources are priced on their own.
    manifest["resources"] = [r for r in manifest["resources"] if "agent-infra:api:ApiGateway" not in r["urn"]]
    stack = next(r for r in manifest["resources"] if r["type"] == rs.STACK_TYPE)["urn"]
    api = {
        "urn": "urn:api",
        "type": rs.REST_API,
        "name": "api",
        "parent": stack,
        "custom": True,
        "inputs": {"endpointConfiguration": {"types": ["REGIONAL"]}},
        "propertyDependencies": {},
    }
    stage = {
        "urn": "urn:stage",
        "type": rs.REST_STAGE,
        "name": "api-v1",
        "parent": stack,
        "custom": True,
        "inputs": {"stageName": "v1"},
        "propertyDependencies": {"restApi": ["urn:api"]},
    }
    manifest["resources"] += [api, stage]
    tier = _tier(manifest, "api:api")
    assert tier.spof is None and tier.detail == "api: REGIONAL endpoint, stages: v1" and tier.rto.minutes == 0


def test_redis_without_replicas_or_snapshots(
    prod: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = copy.deepcopy(prod)
    group = resources_of(manifest, rs.REPLICATION_GROUP)[0]
    group["inputs"].update(
        replicasPerNodeGroup=0, automaticFailoverEnabled=False, multiAzEnabled=False, snapshotRetentionLimit=0
    )
    redis = _tier(manifest, "redis:redis")
    assert redis.spof == "redis: losing the AZ of a shard's primary leaves its shard unavailable (no replicas)"
    assert redis.rpo.minutes is None and redis.rto.minutes is None
    plan_file, targets_file = _files(tmp_path, manifest, PROD_TARGETS)
    code, out, _ = run(capsys, "prod", "--manifest", plan_file, "--targets", targets_file)
    assert code == 1
    assert "MISS  redis: redis RPO unbounded (no automatic snapshots (snapshotRetentionLimit 0)" in out


def test_dev_log_bucket_without_replication_has_no_region_level_rpo(dev: dict[str, Any]) -> None:
    s3 = _tier(dev, "s3:agent-logs")
    assert s3.spof is None  # S3 is regional: not an AZ point of failure
    assert s3.rpo.minutes is None and "no cross-region replica" in s3.rpo.basis


# -- targets and bad input ------------------------------------------------------------------------------------


def test_parse_targets() -> None:
    targets, problems = rs.parse_targets(PROD_TARGETS | {"min_capacity_after_az_loss": {"gpu": 0.5}}, "k")
    assert problems == [] and targets is not None
    assert targets.min_capacity_after_az_loss == {"gpu": 0.5}
    assert targets.rpo_minutes == {"redis": 1440.0, "s3": 60.0}
    assert rs.parse_targets(None, "agent-infra:resilience") == (None, [])
    _, problems = rs.parse_targets(
        {
            "min_capacity_after_az_loss": 2,
            "rto_minutes": {"nat": "soon"},
            "allow_single_points_of_failure": "nat",
            "typo": 1,
        },
        "agent-infra:resilience",
    )
    assert problems == [
        (
            "agent-infra:resilience.typo",
            "unknown setting; expected one of: min_capacity_after_az_loss, "
            "allow_single_points_of_failure, rpo_minutes, rto_minutes",
        ),
        ("agent-infra:resilience.min_capacity_after_az_loss", "expected a fraction from 0 to 1, found 2"),
        ("agent-infra:resilience.rto_minutes.nat", "expected minutes of at least 0, found 'soon'"),
        (
            "agent-infra:resilience.allow_single_points_of_failure",
            "expected a list of tiers such as [nat], found 'nat'",
        ),
    ]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"rpo_minutes": {"redis": -5}}, "agent-infra:resilience.rpo_minutes.redis: expected minutes of at least 0"),
        ({"rpo_minutes": {"redsi": 5}}, "agent-infra:resilience names redsi: neither a tier kind"),
    ],
)
def test_bad_targets_exit_2_with_one_message(
    dev: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], targets: Any, message: str
) -> None:
    plan_file, targets_file = _files(tmp_path, dev, targets)
    code, out, err = run(capsys, "dev", "--manifest", plan_file, "--targets", targets_file)
    assert code == 2 and out == ""
    assert err.startswith("agentinfra: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_missing_files_and_a_manifest_of_another_stack_exit_2(
    dev: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file, targets_file = _files(tmp_path, dev, DEV_TARGETS)
    code, _, err = run(capsys, "dev", "--manifest", plan_file, "--targets", str(tmp_path / "none.yaml"))
    assert code == 2 and err == f"agentinfra: error: --targets: no such file {tmp_path / 'none.yaml'}\n"
    code, _, err = run(capsys, "prod", "--manifest", plan_file, "--targets", targets_file)
    assert code == 2 and "holds stack 'dev', not 'prod'" in err
    code, _, err = run(capsys, "dev", "--manifest", str(tmp_path / "none.json"), "--targets", targets_file)
    assert code == 2 and "no such manifest file" in err


def test_without_targets_the_report_only_describes(dev: dict[str, Any]) -> None:
    report = rs.evaluate(rs.analyse(dev), None)
    assert report.passed and report.findings == () and report.targets_source is None
    assert "no targets (report only)" in rs.render(report)
