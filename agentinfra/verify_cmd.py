"""The ``agentinfra verify ENV`` subcommand: after ``pulumi up``, check the account against the plan.

The stack's outputs come from ``--outputs FILE`` (``pulumi stack output -s ENV --json --show-secrets``)
or, without it, from the Pulumi Automation API when the ``pulumi`` CLI is on PATH; their marker outputs
must name this project and stack. The environment is planned offline for what should exist, and boto3
reads what does (``--endpoint-url`` or the LocalStack settings point it at an emulator).

Exit status: 0 no drift and no violation; 1 drift or a violation (both listed, apart); 2 bad input,
missing credentials or an unreachable endpoint, with one message and no traceback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import report_input_error

# boto3/botocore and the verifier are imported when the command runs, not with the CLI: every other
# command would pay ~0.1 s for them (tests/agentinfra/test_cli.py checks).
if TYPE_CHECKING:
    from .verify import AwsClients, Report

# The codes of agentinfra.cli; not imported from there because cli imports this module.
EXIT_OK, EXIT_FINDINGS = 0, 1
#: The marker outputs' contract version this command understands (stacks.app.OUTPUT_SCHEMA_VERSION).
OUTPUT_SCHEMA_VERSION = 1


def register(subparsers: Any) -> None:
    """Add the ``verify`` subcommand to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "verify",
        help="after `pulumi up`: report drift from the plan and rule violations in the account",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("environment", metavar="ENV", help="environment (stack) name: a config/Pulumi.<env>.yaml")
    parser.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="stack outputs saved by `pulumi stack output --json --show-secrets` (default: ask the pulumi CLI)",
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="send every AWS call to this endpoint (LocalStack, moto server)"
    )
    parser.add_argument("--region", metavar="R", help="region of resources the plan does not pin (default: the plan's)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.set_defaults(handler=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """Handler: returns the exit status; bad input and AWS access problems are one line on stderr."""
    from botocore import exceptions as boto_errors

    from .engine import PlanError
    from .verify import AwsClients, VerifyInputError

    clients = AwsClients(endpoint_url=args.endpoint_url)
    try:
        report = _run(args, clients)
    except (VerifyInputError, PlanError) as exc:
        return report_input_error(str(exc))
    except boto_errors.NoCredentialsError:
        return report_input_error(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (any values "
            "work against an emulator), or run `aws sso login`"
        )
    except (boto_errors.EndpointConnectionError, boto_errors.ConnectTimeoutError) as exc:
        return report_input_error(f"cannot reach {clients.describe()}: {exc}")
    except boto_errors.BotoCoreError as exc:  # profile, SSO, partial credentials, read timeouts
        return report_input_error(f"AWS access failed ({type(exc).__name__}): {exc}")
    print(render(report))
    if args.json:
        from .manifest import write_atomic

        write_atomic(args.json, json.dumps(report.to_json(), indent=2, sort_keys=True, default=str) + "\n")
        print(f"json written to {args.json}", file=sys.stderr)
    return EXIT_OK if report.passed else EXIT_FINDINGS


def _run(args: argparse.Namespace, clients: AwsClients) -> Report:
    from stacks.settings import PROJECT

    from . import engine
    from .verify import verify

    env: str = args.environment
    if args.outputs:
        outputs, source = load_outputs(args.outputs), str(args.outputs)
    else:
        outputs, source = outputs_from_pulumi(env, engine.project_root()), f"pulumi stack {env}"
    check_markers(outputs, env, PROJECT, source)
    return verify(engine.plan(env), outputs, clients, region=args.region)


# --- outputs --------------------------------------------------------------------------------------------


def load_outputs(path: Path) -> dict[str, Any]:
    """Outputs saved with ``pulumi stack output --json --show-secrets > FILE``."""
    from .verify import VerifyInputError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VerifyInputError(f"--outputs: no such file {path}") from None
    except (OSError, ValueError) as exc:
        raise VerifyInputError(f"--outputs: {path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise VerifyInputError(f"--outputs: {path} holds a JSON {type(data).__name__}, expected the outputs object")
    return data


def outputs_from_pulumi(environment: str, root: Path) -> dict[str, Any]:
    """The stack's outputs through the Automation API (needs the ``pulumi`` CLI and a logged-in backend)."""
    from .verify import VerifyInputError

    if shutil.which("pulumi") is None:
        raise VerifyInputError(
            "no --outputs file and no `pulumi` CLI on PATH: where the CLI is, run `pulumi stack output -s "
            f"{environment} --json --show-secrets > outputs.json`, then pass --outputs outputs.json"
        )
    from pulumi import automation

    try:
        stack = automation.select_stack(stack_name=environment, work_dir=str(root))
        return {key: output.value for key, output in stack.outputs().items()}
    except automation.StackNotFoundError:
        raise VerifyInputError(f"pulumi has no stack {environment!r} for {root} (see `pulumi stack ls`)") from None
    except (automation.CommandError, automation.errors.InvalidVersionError, OSError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        raise VerifyInputError(f"pulumi could not read the outputs of stack {environment!r}: {lines[-1]}") from None


def check_markers(outputs: dict[str, Any], environment: str, project: str, source: str) -> None:
    """Refuse outputs that are not this project's stack ``environment``, naming what they are instead."""
    from .verify import VerifyInputError

    found_project, found_stack = outputs.get("project"), outputs.get("stack")
    if found_project is None or found_stack is None:
        raise VerifyInputError(
            f"{source}: no `project` and `stack` marker outputs, so these are not {project} stack outputs "
            "(expected the JSON of `pulumi stack output --json --show-secrets`)"
        )
    if found_project != project:
        raise VerifyInputError(f"{source}: outputs of project {found_project!r}, not {project!r}")
    if found_stack != environment:
        raise VerifyInputError(f"{source}: outputs of stack {found_stack!r}, not {environment!r}")
    version = outputs.get("schemaVersion", OUTPUT_SCHEMA_VERSION)
    if not isinstance(version, int) or version > OUTPUT_SCHEMA_VERSION:
        raise VerifyInputError(
            f"{source}: outputs schemaVersion {version!r}; this agentinfra reads up to {OUTPUT_SCHEMA_VERSION}"
        )


# --- the table ------------------------------------------------------------------------------------------


def render(report: Report) -> str:
    """A head line, then violations, drift and what was not checked, each in its own table."""
    from .verify import show

    status = "PASS" if report.passed else "FAIL"
    resources = sum(1 for service, _ in report.checked if service != "stack")
    lines = [
        f"{report.environment}: {status}: {resources} resources and the stack outputs checked in account "
        f"{report.account}; {len(report.violations)} violation(s), {len(report.drift)} drift, "
        f"{len(report.not_checked)} not checked"
    ]
    if report.violations:
        lines += ["", "VIOLATIONS (a live setting breaks a rule)"]
        rows = [(f.service, f.resource, f.setting, show(f.actual), f.message) for f in report.violations]
        lines += _table(("SERVICE", "RESOURCE", "SETTING", "LIVE", "RULE"), rows)
    if report.drift:
        lines += ["", "DRIFT (a live value differs from the plan)"]
        rows = [(f.service, f.resource, f.setting, show(f.expected), show(f.actual)) for f in report.drift]
        lines += _table(("SERVICE", "RESOURCE", "SETTING", "PLAN", "LIVE"), rows)
    if report.not_checked:
        lines += ["", "NOT CHECKED"]
        lines += _table(("SERVICE", "RESOURCE", "REASON"), list(report.not_checked))
    lines += ["", *(f"note: {note}" for note in report.notes)] if report.notes else []
    return "\n".join(lines)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in [header, *rows]
    ]
