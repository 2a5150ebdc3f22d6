"""The CLI's exit codes and messages for good and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import raw_config, write_config

from agentinfra.cli import EXIT_INPUT, EXIT_OK, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_prints_tree_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "dev")
    assert code == EXIT_OK
    assert "pulumi:pulumi:Stack  agent-infra-dev" in out
    assert "resources in stack dev (preview):" in out


def test_plan_all_writes_one_manifest_per_environment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(capsys, "plan", "--all", "--quiet", "--out", str(tmp_path / "plans"))
    assert code == EXIT_OK
    written = sorted(p.name for p in (tmp_path / "plans").iterdir())
    assert written == ["dev.json", "prod.json", "staging.json"]
    assert json.loads((tmp_path / "plans" / "prod.json").read_text())["stack"] == "prod"


def test_unknown_environment(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "qa")
    assert code == EXIT_INPUT
    assert "unknown environment 'qa': no config file config/Pulumi.qa.yaml (environments: dev, prod, staging)" in err
    assert "Traceback" not in err


def test_malformed_yaml_names_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text("config:\n  aws:region: us-east-1\n  agent-infra:tags: [unclosed\n")
    out = tmp_path / "dev.json"
    code, _, err = run(capsys, "plan", "dev", "--config", str(bad), "--out", str(out))
    assert code == EXIT_INPUT
    assert f"{bad}: not valid YAML at line" in err
    assert not out.exists()


def test_missing_config_mapping(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text("aws:region: us-east-1\n")
    code, _, err = run(capsys, "plan", "dev", "--config", str(bad))
    assert code == EXIT_INPUT
    assert "expected a top-level `config:` mapping" in err


def test_invalid_setting_names_file_and_key_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = raw_config("prod")
    config["agent-infra:network"]["az_count"] = 2
    path = write_config(tmp_path / "Pulumi.prod.yaml", config)
    out = tmp_path / "prod.json"
    code, _, err = run(capsys, "plan", "prod", "--config", str(path), "--out", str(out))
    assert code == EXIT_INPUT
    assert f"{path}: 1 invalid setting(s)" in err
    assert "agent-infra:network.az_count: expected 3 to match the 3 zones listed in azs, found 2" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["plan"], "expected an environment name"),
        (["plan", "dev", "--all"], "not both"),
        (["plan", "--all", "--config", "x.yaml"], "cannot be combined with --all"),
    ],
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == EXIT_INPUT
    assert fragment in err


def test_unknown_subcommand_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["deploy"])
    assert info.value.code == EXIT_INPUT


def test_commands_other_than_verify_do_not_import_the_aws_sdk() -> None:
    """boto3/botocore cost ~0.1 s to import; only `agentinfra verify` uses them."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from agentinfra.cli import build_parser, main\n"
        "build_parser()\n"
        "main(['plan', 'no-such-environment'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr[-2000:]


def test_every_input_error_is_reported_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    from agentinfra.cli import UsageError
    from agentinfra.cost import PriceError
    from agentinfra.diff import DiffInputError, RevisionError
    from agentinfra.diff_cmd import DiffUsageError
    from agentinfra.engine import PlanError
    from agentinfra.errors import InputError, reporting_input_errors
    from agentinfra.manifest import ManifestError
    from agentinfra.verify import VerifyInputError

    for kind in (UsageError, PriceError, DiffInputError, RevisionError, DiffUsageError, PlanError, ManifestError):
        assert issubclass(kind, InputError), kind

    @reporting_input_errors
    def handler(args: object) -> int:
        raise VerifyInputError("--outputs: no such file x.json")

    assert handler(None) == EXIT_INPUT
    assert capsys.readouterr().err == "agentinfra: error: --outputs: no such file x.json\n"
