"""``agentinfra``: the offline plan and gate for agent-infra, with no cloud credentials.

Exit status: 0 success; 1 a mandatory policy violation (``check``); 2 bad input (unknown environment,
missing or malformed config, invalid setting, bad argument), with one message and no traceback;
3 an internal error (a bug: reported with its traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_VIOLATION, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """A bad combination of arguments: exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"agentinfra: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def _environment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("environment", nargs="?", help="environment (stack) name: a config/Pulumi.<env>.yaml")
    parser.add_argument("--all", action="store_true", help="every environment in config/")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="agentinfra", description="Offline plan and compliance gate for agent-infra.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = sub.add_parser("plan", help="run the Pulumi program offline and record every resource")
    _environment_args(plan)
    plan.add_argument("--out", type=Path, metavar="PATH",
                      help="write the manifest as JSON (a file; with --all, a directory of <env>.json)")
    plan.add_argument("--placeholders", action="store_true",
                      help="deterministic placeholder ids and ARNs instead of unknowns (for diff and cost)")
    plan.add_argument("--config", type=Path, metavar="FILE",
                      help="read this stack config file instead of config/Pulumi.<env>.yaml (one environment)")
    plan.add_argument("--quiet", action="store_true", help="print only the count by type")
    plan.set_defaults(handler=cmd_plan)
    return parser


def _selected_environments(args: argparse.Namespace) -> list[str]:
    from .engine import environments

    if args.all and args.environment:
        raise UsageError(f"give an environment or --all, not both (found {args.environment!r} and --all)")
    if args.all:
        found = environments()
        if not found:
            raise UsageError("--all found no config/Pulumi.<env>.yaml files")
        return found
    if not args.environment:
        raise UsageError("expected an environment name (such as dev) or --all")
    return [args.environment]


def cmd_plan(args: argparse.Namespace) -> int:
    from . import manifest as mf
    from .engine import plan

    envs = _selected_environments(args)
    if args.config and args.all:
        raise UsageError("--config names one environment's file; it cannot be combined with --all")
    # Plan everything before writing anything: a failure leaves no partial output behind.
    manifests = [plan(env, placeholders=args.placeholders, config_path=args.config) for env in envs]
    for m in manifests:
        if args.quiet:
            counts = mf.count_by_type(m)
            print(f"{m['stack']}: {sum(counts.values())} resources, {len(counts)} types")
        else:
            print(mf.render_tree(m))
            print()
    if args.out:
        if args.all:
            if args.out.exists() and not args.out.is_dir():
                raise UsageError(f"--out with --all expects a directory, found the file {args.out}")
            for m in manifests:
                mf.write_atomic(args.out / f"{m['stack']}.json", mf.dumps(m))
        else:
            if args.out.is_dir():
                raise UsageError(f"--out expects a file path, found the directory {args.out}")
            mf.write_atomic(args.out, mf.dumps(manifests[0]))
        print(f"manifest written to {args.out}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from .engine import PlanError
    from .manifest import ManifestError

    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (PlanError, ManifestError, UsageError) as exc:
        print(f"agentinfra: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - a bug: show everything needed to fix it
        print("agentinfra: internal error (please report it with the traceback below)", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


def run(argv: Sequence[str] | None = None) -> Any:  # pragma: no cover - console-script shim
    raise SystemExit(main(argv))


if __name__ == "__main__":  # pragma: no cover
    run()
