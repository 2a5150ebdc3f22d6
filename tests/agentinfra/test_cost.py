"""``agentinfra cost``: monthly cost per component from the repository's price table, and the savings levers."""

from __future__ import annotations

import argparse
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import resources_of

from agentinfra import cost
from agentinfra.cost_cmd import register
from agentinfra.resilience import ASG, NAT_GATEWAY, NODE_GROUP


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="agentinfra")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cost", *argv])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def _manifest_file(tmp_path: Path, manifest: dict[str, Any]) -> str:
    path = tmp_path / f"{manifest['stack']}.json"
    path.write_text(json.dumps(manifest))
    return str(path)


def _assumptions(**values: Any) -> cost.Assumptions:
    parsed, problems = cost.parse_assumptions(values, "agent-infra:cost")
    assert problems == [] and parsed is not None
    return parsed


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cost_prints_monthly_totals_per_component_and_a_grand_total(
    plans: dict[str, Any], env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "cost.json"
    code, out, err = run(capsys, env, "--manifest", _manifest_file(tmp_path, plans[env]), "--json", str(out_json))
    assert code == 0, err
    report = json.loads(out_json.read_text())
    assert {"network", "eks", "redis", "task-queues", "agent-logs"} <= set(report["components"])
    for component, total in report["components"].items():
        assert f"{component}: ${total:,.2f}/month" in out
    assert report["total"] == pytest.approx(sum(report["components"].values()), abs=0.05)
    assert re.search(rf"^  TOTAL +\${report['total']:,.2f}$", out, re.MULTILINE), out
    assert "us-east-1 list prices read 2026-11, recalled, to be checked against each source" in out
    # Every line names the pricing page it comes from.
    assert all(line["source"].startswith("https://aws.amazon.com/") for line in report["lines"])
    assert report["unpricedTypes"] == []


def test_nat_gateways_by_hand(plans: dict[str, Any]) -> None:
    # prod: three NAT gateways (one per AZ), 730 h at $0.045 each, plus 300 GB processed at $0.045 per GB.
    report = cost.monthly_cost(plans["prod"], _assumptions(nat_data_gb=300))
    nat_names = {r["name"] for r in resources_of(plans["prod"], NAT_GATEWAY)}
    assert len(nat_names) == 3
    nat_lines = [
        line for line in report.component_lines("network") if line.resource in nat_names and "NAT" in line.item
    ]
    by_hand = 3 * 730 * 0.045 + 300 * 0.045  # = 98.55 + 13.50
    assert sum(line.monthly for line in nat_lines) == pytest.approx(by_hand) == pytest.approx(112.05)
    assert {line.source for line in nat_lines} == {"https://aws.amazon.com/vpc/pricing/"}


def test_spot_and_reserved_levers_by_hand(plans: dict[str, Any]) -> None:
    report = cost.monthly_cost(plans["prod"], _assumptions(autoscaled_utilisation=0.5))
    levers = {(lv.kind, lv.component): lv for lv in report.levers}
    # gpu-llama-8b: on-demand g6e.xlarge node groups, one per AZ; spot saves (1.861 - 0.74) per node-hour.
    groups = [g for g in resources_of(plans["prod"], NODE_GROUP) if g["name"].startswith("gpu-llama-8b-")]
    sizes = [(g["inputs"]["scalingConfig"]["minSize"], g["inputs"]["scalingConfig"]["maxSize"]) for g in groups]
    average_nodes = sum(lo + 0.5 * (hi - lo) for lo, hi in sizes)
    assert levers["spot", "gpu-llama-8b"].monthly_savings == pytest.approx(average_nodes * 730 * (1.861 - 0.74))
    # Reserved ElastiCache nodes: 2 shards x (1 + 2 replicas) cache.r7g.xlarge at $0.437, 30% off.
    assert levers["reserved", "redis"].monthly_savings == pytest.approx(6 * 730 * 0.437 * 0.30)
    # p5.48xlarge has no spot estimate in the table: the lever says so rather than guessing.
    p5 = levers["spot", "gpu-llama-70b"]
    assert p5.monthly_savings is None and "no spot estimate for p5.48xlarge" in p5.description


def test_mixed_instances_worker_pool_is_priced_at_its_spot_share(plans: dict[str, Any]) -> None:
    # dev's worker pool: mixed instances with 0 on-demand base and 0% on-demand above it: all spot.
    asg = resources_of(plans["dev"], ASG)[0]
    lo, hi = asg["inputs"]["minSize"], asg["inputs"]["maxSize"]
    overrides = asg["inputs"]["mixedInstancesPolicy"]["launchTemplate"]["overrides"]
    assert overrides[0]["instanceType"] == "m7i.large"
    report = cost.monthly_cost(plans["dev"], _assumptions(autoscaled_utilisation=0.25))
    line = next(ln for ln in report.component_lines("workers-agents") if "spot (estimate)" in ln.item)
    assert line.monthly == pytest.approx((lo + 0.25 * (hi - lo)) * 730 * 0.040)
    assert line.source == "https://aws.amazon.com/ec2/spot/pricing/"


def test_an_instance_without_a_list_price_is_reported_not_guessed(plans: dict[str, Any]) -> None:
    manifest = copy.deepcopy(plans["prod"])
    for group in resources_of(manifest, NODE_GROUP):
        if group["name"].startswith("gpu-llama-70b-"):
            group["inputs"]["instanceTypes"] = ["p4de.24xlarge"]
            group["inputs"]["scalingConfig"].update(minSize=1, maxSize=1)
    report = cost.monthly_cost(manifest)
    lines = [ln for ln in report.component_lines("gpu-llama-70b") if "p4de.24xlarge" in ln.item]
    assert len(lines) == 3 and all(ln.unit_price is None and ln.monthly == 0 for ln in lines)
    text = cost.render(report)
    assert "no list price: sold mostly as EC2 Capacity Blocks for ML" in text
    assert "gpu-llama-70b-us-east-1a: p4de.24xlarge has no list price; not in the total" in text


def test_right_size_lever_uses_the_sizing_check(plans: dict[str, Any]) -> None:
    # A short context and few sequences fit a 24 GiB L4 (g6.xlarge), cheaper than the pool's g6e.xlarge.
    short = {"model": "Llama-3.1-8B", "max_model_len": 2048, "max_num_seqs": 16}
    report = cost.monthly_cost(plans["prod"], _assumptions(pool_models={"llama-8b": short}))
    lever = next(lv for lv in report.levers if lv.kind == "right-size" and lv.component == "gpu-llama-8b")
    assert "a smaller GPU: Llama-3.1-8B (2048-token sequences) on g6.xlarge tp 1 in bf16" in lever.description
    assert lever.monthly_savings is not None and lever.monthly_savings > 0


def test_right_size_is_skipped_with_a_note_when_the_model_is_unknown(plans: dict[str, Any]) -> None:
    manifest = copy.deepcopy(plans["prod"])
    manifest["resources"] = [r for r in manifest["resources"] if r["type"] != "kubernetes:apps/v1:Deployment"]
    report = cost.monthly_cost(manifest)
    assert not [lv for lv in report.levers if lv.kind == "right-size"]
    assert any("right-sizing skipped" in n and "agent-infra:cost.pool_models.llama-70b" in n for n in report.notes)


def test_cost_delta_between_two_plans(plans: dict[str, Any]) -> None:
    assert cost.cost_delta(plans["prod"], plans["prod"]) == 0
    fewer = copy.deepcopy(plans["prod"])
    dropped = resources_of(fewer, NAT_GATEWAY)[0]
    fewer["resources"].remove(dropped)
    # One NAT gateway fewer: 730 h x $0.045 less; the assumed NAT data is spread over the other two.
    assert cost.cost_delta(plans["prod"], fewer) == pytest.approx(-730 * 0.045)
    assert cost.cost_delta(plans["dev"], plans["prod"]) > 0


def test_price_table_covers_the_catalog_and_names_its_sources() -> None:
    from agentinfra_policies.catalog import load_catalog

    prices, catalog = cost.load_prices(), load_catalog()
    for family in ("ec2", "elasticache"):
        for name in catalog.names(family):  # type: ignore[arg-type]
            entry = prices.instance(name)
            assert entry is not None, name
            assert entry.source.startswith("https://aws.amazon.com/") and entry.date == "2026-11"
            assert entry.region == "us-east-1"
    assert prices.instance("p4de.24xlarge").on_demand is None  # type: ignore[union-attr]
    assert prices.instance("p5e.48xlarge").on_demand is None  # type: ignore[union-attr]
    assert prices.service("eks_cluster_hour").price == 0.10 and prices.service("kms_key_month").price == 1.00
    with pytest.raises(cost.PriceError, match=r"services.x: missing \['date', 'region'\], unknown \['000 calls'\]"):
        cost.parse_prices({"services": {"x": {"price": 1, "unit": "10", "000 calls": None, "source": "s"}}})


def test_parse_assumptions() -> None:
    assert cost.parse_assumptions(None, "agent-infra:cost") == (cost.Assumptions(), [])
    parsed = _assumptions(
        hours_per_month=720, pool_utilisation={"gpu-llama-70b": 0.1}, pool_models={"llama-8b": "Llama-3.1-8B"}
    )
    assert parsed.hours_per_month == 720 and parsed.pool_utilisation == {"gpu-llama-70b": 0.1}
    assert parsed.pool_models["llama-8b"] == cost.PoolModel("Llama-3.1-8B")
    _, problems = cost.parse_assumptions(
        {"autoscaled_utilisation": 1.5, "nat_data_gb": "lots", "pool_models": {"p": {"model": "GPT-9"}}, "x": 1},
        "agent-infra:cost",
    )
    keys = [key for key, _ in problems]
    assert keys == [
        "agent-infra:cost.x",
        "agent-infra:cost.autoscaled_utilisation",
        "agent-infra:cost.nat_data_gb",
        "agent-infra:cost.pool_models.p.model",
    ]
    assert problems[1][1] == "expected a number from 0 to 1, found 1.5"


def test_assumptions_file_overrides_and_bad_input_exits_2(
    plans: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest_file = _manifest_file(tmp_path, plans["prod"])
    override = tmp_path / "assumptions.yaml"
    override.write_text(yaml.safe_dump({"nat_data_gb": 1000}))
    code, out, _ = run(capsys, "prod", "--manifest", manifest_file, "--assumptions", str(override))
    assert code == 0 and "NAT data processed (1000 GB / 3 gateways)" in out
    override.write_text(yaml.safe_dump({"nat_data_gb": -1}))
    code, out, err = run(capsys, "prod", "--manifest", manifest_file, "--assumptions", str(override))
    assert code == 2 and out == ""
    assert "agent-infra:cost.nat_data_gb: expected a number of at least 0, found -1" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "dev", "--manifest", manifest_file)
    assert code == 2 and "holds stack 'prod', not 'dev'" in err


def test_api_gateway_and_waf_when_present(plans: dict[str, Any]) -> None:
    manifest = copy.deepcopy(plans["prod"])
    # The shipped plan has a real API now: take it out, so these synthetic resources are priced on their own.
    manifest["resources"] = [r for r in manifest["resources"] if "agent-infra:api:ApiGateway" not in r["urn"]]
    stack = next(r for r in manifest["resources"] if r["type"] == "pulumi:pulumi:Stack")["urn"]

    def resource(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {
            "urn": f"urn:{name}",
            "type": type_,
            "name": name,
            "parent": stack,
            "custom": True,
            "inputs": inputs,
            "propertyDependencies": {},
        }

    rules = [{"name": "common"}, {"name": "rate-limit"}]
    manifest["resources"] += [
        resource("aws:apigateway/restApi:RestApi", "api", {}),
        resource("aws:apigateway/stage:Stage", "api-v1", {"cacheClusterEnabled": True, "cacheClusterSize": "0.5"}),
        resource("aws:wafv2/webAcl:WebAcl", "api-waf", {"rules": rules}),
    ]
    report = cost.monthly_cost(manifest, _assumptions(api_requests=2_000_000))
    # 2M REST calls at $3.50 per million; a 0.5 GB stage cache at $0.02/h; WAF: $5 ACL + 2 x $1 rules
    # + 2M requests at $0.60 per million.
    assert report.components["api"] == pytest.approx(2 * 3.50)
    assert report.components["api-v1"] == pytest.approx(730 * 0.02)
    assert report.components["api-waf"] == pytest.approx(5 + 2 * 1 + 2 * 0.60)
    assert report.unpriced_types == ()
