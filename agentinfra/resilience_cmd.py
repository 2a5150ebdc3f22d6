"""``agentinfra resilience ENV``: what losing any one AZ does to each tier, single points of failure, RPO/RTO.

Reads the plan (``--manifest FILE``, or plans ENV offline) and the environment's targets from
``config/Pulumi.<env>.yaml`` key ``agent-infra:resilience``, or from ``--targets FILE`` (the same mapping,
bare or inside a stack config file). Exit status: 0 every target is met (or there are no targets: report
only); 1 a target is missed, each miss naming the tier and the AZ; 2 bad input, with one message.

The helpers :func:`load_plan` and :func:`config_block` are shared with ``agentinfra cost``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from agentinfra_policies.yamlio import safe_load

from .errors import InputError, reporting_input_errors

# The codes of agentinfra.cli; not imported from there because cli imports this module.
EXIT_OK, EXIT_MISSED = 0, 1
NAMESPACE = "agent-infra"

T = TypeVar("T")


def register(subparsers: Any) -> None:
    """Add the ``resilience`` subcommand to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "resilience",
        help="capacity left after losing any one AZ, single points of failure, RPO and RTO, against targets",
        description="Per tier (GPU pools, worker pools, Redis, NAT, endpoints, API, mesh ingress, S3, SQS): the "
        "capacity left when any one AZ is lost, single points of failure, and the RPO/RTO the configured "
        "snapshots and replication imply, checked against agent-infra:resilience. Exit 0 met, 1 missed, "
        "2 bad input.",
    )
    parser.add_argument("environment", metavar="ENV", help="environment (stack) name: a config/Pulumi.<env>.yaml")
    parser.add_argument("--manifest", type=Path, metavar="FILE", help="read this plan manifest instead of planning")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.add_argument(
        "--targets",
        type=Path,
        metavar="FILE",
        help="YAML targets (the agent-infra:resilience mapping) instead of the environment's config",
    )
    parser.set_defaults(handler=cmd_resilience)


@reporting_input_errors
def cmd_resilience(args: argparse.Namespace) -> int:
    from . import manifest as mf
    from . import resilience as rs

    raw, source = config_block(args.environment, "resilience", args.targets, "--targets")
    targets = parse_block(rs.parse_targets, raw, source)
    manifest = load_plan(args.environment, args.manifest)
    report = rs.analyse(manifest)
    if targets is not None:
        unknown = rs.unknown_target_keys(targets, report)
        if unknown:
            tiers = ", ".join(sorted({t.name for t in report.tiers}))
            raise InputError(
                f"{source}: {NAMESPACE}:resilience names {', '.join(unknown)}: neither a tier kind "
                f"({', '.join(rs.TIER_KINDS)}) nor a tier of this plan ({tiers})"
            )
    report = rs.evaluate(report, targets, source if targets is not None else None)
    print(rs.render(report))
    if args.json:
        mf.write_atomic(args.json, json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
        print(f"json written to {args.json}", file=sys.stderr)
    return EXIT_OK if report.passed else EXIT_MISSED


# -- shared with cost_cmd -------------------------------------------------------------------------------------


def load_plan(environment: str, manifest_path: Path | None) -> dict[str, Any]:
    """The manifest of ``environment``: read from ``manifest_path``, or planned offline."""
    from . import manifest as mf
    from .engine import plan

    if manifest_path is None:
        return plan(environment)
    manifest = mf.load(manifest_path)
    if manifest["stack"] != environment:
        raise InputError(f"--manifest: {manifest_path} holds stack {manifest['stack']!r}, not {environment!r}")
    return manifest


def config_block(environment: str, name: str, override: Path | None, flag: str) -> tuple[Any, str]:
    """The raw ``agent-infra:<name>`` block and where it came from.

    ``override`` (a ``--targets`` or ``--assumptions`` file) holds the mapping itself, or a stack config file
    whose ``config:`` has the key. Without it, the environment's config file is read; a missing file or key
    gives (None, path).
    """
    from .engine import project_root

    key = f"{NAMESPACE}:{name}"
    if override is not None:
        data = _read_yaml(override, flag)
        if data is None:
            raise InputError(f"{flag}: {override} is empty; expected the {key} mapping")
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            return data["config"].get(key), f"{override} ({key})"
        return data, str(override)
    path = project_root() / "config" / f"Pulumi.{environment}.yaml"
    shown = f"config/Pulumi.{environment}.yaml"
    if not path.is_file():
        return None, shown
    data = _read_yaml(path, shown)
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise InputError(f"{shown}: expected a top-level `config:` mapping (Pulumi's stack config format)")
    return config.get(key), f"{shown} ({key})"


def parse_block(
    parser: Callable[[Any, str], tuple[T | None, list[tuple[str, str]]]], raw: Any, source: str, *, name: str = ""
) -> T | None:
    """Run a ``parse_*(raw, key_prefix)`` parser; every problem becomes one InputError naming its keys."""
    prefix = f"{NAMESPACE}:{name}" if name else f"{NAMESPACE}:resilience"
    value, problems = parser(raw, prefix)
    if problems:
        listed = "; ".join(f"{key}: {message}" for key, message in problems)
        raise InputError(f"{source}: {len(problems)} invalid setting(s): {listed}")
    return value


def _read_yaml(path: Path, shown: str) -> Any:
    try:
        return safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InputError(f"{shown}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except OSError as exc:
        raise InputError(f"{shown}: cannot be read: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    """Run ``resilience`` on its own (``python -m agentinfra.resilience_cmd ENV``) with the CLI's parser."""
    from .cli import _Parser

    parser = _Parser(prog="agentinfra")
    register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    args = parser.parse_args(["resilience", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
