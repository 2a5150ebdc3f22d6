"""The offline gate over the shipped environments, and the check command's outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import mutate

from agentinfra.cli import EXIT_INPUT, EXIT_OK, EXIT_VIOLATION, main
from agentinfra.engine import PlanError
from agentinfra.gate import evaluate, load_policy_config
from agentinfra.manifest import dumps


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_shipped_environment_passes_the_gate_with_every_rule_running(plans: dict[str, Any], env: str) -> None:
    result = evaluate(plans[env], load_policy_config(env))
    assert result.passed, [f.message for f in result.mandatory_violations]
    assert result.rules_evaluated >= 19
    assert [f for f in result.findings if f.kind == "unknown"] == [], "a rule could not run on the shipped config"


def test_check_all_exits_0_and_prints_rule_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--all"]) == EXIT_OK
    out = capsys.readouterr().out
    from agentinfra_policies.pack import all_rules

    from agentinfra.gate import _resolve_config

    for env in ("dev", "staging", "prod"):
        resolved = _resolve_config(load_policy_config(env), all_rules(), env)
        count = sum(1 for level, _ in resolved.values() if level != "disabled")
        assert count >= 45
        assert f"{env}: PASS: {count} rules evaluated over" in out


def _broken_manifest(plans: dict[str, Any], tmp_path: Path) -> Path:
    broken = mutate(plans["prod"], "logs-key-key", "enableKeyRotation", False)
    path = tmp_path / "prod.json"
    path.write_text(dumps(broken))
    return path


def test_a_mandatory_violation_exits_1_with_json_and_sarif(
    plans: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _broken_manifest(plans, tmp_path)
    code = main(
        [
            "check",
            "prod",
            "--manifest",
            str(manifest),
            "--json",
            str(tmp_path / "r.json"),
            "--sarif",
            str(tmp_path / "r.sarif"),
        ]
    )
    out = capsys.readouterr().out
    assert code == EXIT_VIOLATION
    assert "prod: FAIL" in out and "AI-KMS-001" in out and "logs-key-key" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] is False
    (finding,) = report["results"][0]["findings"]
    assert (finding["rule_id"], finding["level"], finding["kind"]) == ("AI-KMS-001", "mandatory", "violation")
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    (result,) = sarif["runs"][0]["results"]
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "AI-KMS-001"
    assert result["level"] == "error"
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].endswith("::logs-key-key")


def test_an_advisory_violation_does_not_fail(plans: dict[str, Any], tmp_path: Path) -> None:
    manifest = _broken_manifest(plans, tmp_path)
    config = tmp_path / "advisory.json"
    config.write_text(json.dumps({"all": "advisory"}))
    assert main(["check", "prod", "--manifest", str(manifest), "--policy-config", str(config)]) == EXIT_OK


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"no-such-rule": "mandatory"}, "no-such-rule: no such policy in pack agent-infra"),
        (
            {"kms-key-rotation": "blocking"},
            "kms-key-rotation: expected one of advisory, disabled, mandatory, remediate",
        ),
        ({"sg-no-open-ingress": {"publicPort": [443]}}, "sg-no-open-ingress: unknown setting(s) ['publicPort']"),
    ],
)
def test_bad_policy_config_exits_2_naming_the_key_before_planning(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any],
    fragment: str,
) -> None:
    from agentinfra import engine

    def no_plan(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("planned before the policy config was checked")

    monkeypatch.setattr(engine, "plan", no_plan)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    assert main(["check", "dev", "--policy-config", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert fragment in err and str(path) in err


def test_a_bad_shipped_policy_config_fails_check_all_before_planning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentinfra import engine, gate

    def no_plan(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("planned before the policy config was checked")

    (tmp_path / "policies" / "config").mkdir(parents=True)
    bad = tmp_path / "policies" / "config" / "staging.json"
    bad.write_text(json.dumps({"kms-key-rotation": "blocking"}))
    monkeypatch.setattr(engine, "plan", no_plan)
    monkeypatch.setattr(gate, "project_root", lambda: tmp_path)
    assert main(["check", "--all"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "kms-key-rotation: expected one of" in err and str(bad) in err


def test_malformed_policy_config_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(PlanError, match="not valid JSON"):
        load_policy_config("dev", path)


def test_manifest_for_another_stack_is_refused(
    plans: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prod.json"
    path.write_text(dumps(plans["prod"]))
    assert main(["check", "dev", "--manifest", str(path)]) == EXIT_INPUT
    assert "holds stack 'prod', not 'dev'" in capsys.readouterr().err


def test_missing_manifest_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--manifest", str(tmp_path / "none.json")]) == EXIT_INPUT
    assert "no such manifest file" in capsys.readouterr().err


def test_a_command_runs_without_the_cyclic_collector_and_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from agentinfra import manifest

    seen: list[bool] = []
    original = manifest.load

    def load(path: Any) -> Any:
        seen.append(gc.isenabled())
        return original(path)

    monkeypatch.setattr(manifest, "load", load)
    assert gc.isenabled()
    assert main(["check", "--manifest", str(tmp_path / "none.json")]) == EXIT_INPUT
    assert seen == [False]
    assert gc.isenabled()
