"""One source of truth: the pack the CLI loads holds exactly the rules the offline gate runs."""

from __future__ import annotations

import re
import runpy
import sys
from typing import Any

import pulumi_policy
import pytest
import yaml
from agentinfra_policies.pack import PACK_NAME, all_policies, all_rules
from helpers import ROOT

from agentinfra.gate import load_policy_config, policy_config_path


def test_main_assembles_exactly_the_gates_rules_without_starting_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}

    def fake_pack(**kwargs: Any) -> None:  # PolicyPack(...) would start a gRPC server and block forever
        built.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    monkeypatch.syspath_prepend(str(ROOT / "policies"))
    runpy.run_path(str(ROOT / "policies" / "__main__.py"), run_name="__main__")
    assert built["name"] == PACK_NAME
    assert [p.name for p in built["policies"]] == [p.name for p in all_policies()]
    assert [p.name for p in built["policies"]] == [r.name for r in all_rules()]
    assert "agentinfra_policies" in sys.modules


def test_every_rule_is_fully_described() -> None:
    for rule in all_rules():
        assert re.fullmatch(r"AI-[A-Z0-9]+-\d{3}", rule.id), rule.id
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), rule.name
        assert rule.description.endswith(".") and rule.fix.endswith(".")
        assert rule.policy is not None and rule.policy.name == rule.name
        assert rule.policy.enforcement_level is not None and rule.severity is not None


def test_pack_metadata_and_requirements_ship_with_the_pack() -> None:
    meta = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python" and meta["version"]
    requirements = (ROOT / "policies" / "requirements.txt").read_text()
    assert "pulumi-policy" in requirements and "pyyaml" in requirements
    # The catalog the rules read lives inside the pack folder, so `pulumi policy publish` uploads it.
    assert (ROOT / "policies" / "agentinfra_policies" / "catalog" / "instances.yaml").is_file()


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_policy_config_files_are_valid_for_the_pack(env: str) -> None:
    from agentinfra.gate import _resolve_config

    resolved = _resolve_config(load_policy_config(env), all_rules(), str(policy_config_path(env)))
    assert set(resolved) == {r.name for r in all_rules()}


def test_prod_is_mandatory_everywhere_and_dev_advisory_where_sensible() -> None:
    from agentinfra.gate import _resolve_config

    prod = _resolve_config(load_policy_config("prod"), all_rules(), "prod")
    assert {level for level, _ in prod.values()} == {"mandatory"}
    dev = _resolve_config(load_policy_config("dev"), all_rules(), "dev")
    assert dev["s3-public-access-blocked"][0] == "mandatory" and dev["s3-versioning"][0] == "advisory"
    assert dev["s3-replication"][0] == "disabled"


def test_readme_lists_every_rule() -> None:
    readme = (ROOT / "policies" / "README.md").read_text()
    for rule in all_rules():
        assert f"`{rule.id}`" in readme and f"`{rule.name}`" in readme, rule.id
