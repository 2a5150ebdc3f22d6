"""``agentinfra``: the offline plan and gate for agent-infra, with no cloud credentials.

Exit status: 0 success; 1 a mandatory policy violation (``check``); 2 bad input (unknown environment,
missing or malformed config, invalid setting, bad argument), with one message and no traceback;
3 an internal error (a bug: reported with its traceback).
"""

from __future__ import annotations

import argparse
import functools
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import InputError, report_input_error

EXIT_OK, EXIT_VIOLATION, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(InputError):
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
    plan.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="write the manifest as JSON (a file; with --all, a directory of <env>.json)",
    )
    plan.add_argument(
        "--placeholders",
        action="store_true",
        help="deterministic placeholder ids and ARNs instead of unknowns (for diff and cost)",
    )
    plan.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read this stack config file instead of config/Pulumi.<env>.yaml (one environment)",
    )
    plan.add_argument("--quiet", action="store_true", help="print only the count by type")
    plan.add_argument(
        "--jobs", type=int, metavar="N", help="environments planned at once, each in its own process (default: all)"
    )
    plan.set_defaults(handler=cmd_plan)

    check = sub.add_parser("check", help="plan (or read a manifest) and run the policy pack offline")
    _environment_args(check)
    check.add_argument("--manifest", type=Path, metavar="FILE", help="check this manifest instead of planning")
    check.add_argument(
        "--policy-config", type=Path, metavar="FILE", help="policy-pack config (default policies/config/<env>.json)"
    )
    check.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    check.add_argument("--sarif", type=Path, metavar="FILE", help="write the results as SARIF 2.1.0")
    check.add_argument(
        "--hide-unknown",
        action="store_true",
        help="list only violations in the table (unknown-value results stay in JSON and SARIF)",
    )
    check.add_argument(
        "--jobs", type=int, metavar="N", help="environments checked at once, each in its own process (default: all)"
    )
    check.set_defaults(handler=cmd_check)

    from . import cost_cmd, diff_cmd, prepare_cmd, resilience_cmd, size_cmd, verify_cmd

    size_cmd.register(sub)
    diff_cmd.register(sub)
    resilience_cmd.register(sub)
    cost_cmd.register(sub)
    verify_cmd.register(sub)
    prepare_cmd.register(sub)

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
    from .parallel import map_environments

    envs = _selected_environments(args)
    if args.config and args.all:
        raise UsageError("--config names one environment's file; it cannot be combined with --all")
    # Plan everything before writing anything: a failure leaves no partial output behind.
    work = functools.partial(plan, placeholders=args.placeholders, config_path=args.config)
    manifests = map_environments(work, envs, args.jobs)
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


def _check_environment(configs: dict[str, tuple[Path, dict[str, Any]]], env: str) -> tuple[dict[str, Any], Any]:
    """Plan one environment and run the gate on it with its policy config, already read and checked as
    ``configs[env]`` = (file, settings). A top-level function, so worker processes can run it."""
    from .engine import plan
    from .gate import evaluate

    path, config = configs[env]
    manifest = plan(env)
    return manifest, evaluate(manifest, config, source=str(path))


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from agentinfra_policies.pack import all_rules

    from . import manifest as mf
    from . import report
    from .gate import checked_policy_config, evaluate, load_policy_config, policy_config_path
    from .parallel import map_environments

    if args.manifest:
        if args.all:
            raise UsageError("--manifest names one manifest; it cannot be combined with --all")
        manifest = mf.load(args.manifest)
        if args.environment and manifest["stack"] != args.environment:
            raise UsageError(f"--manifest holds stack {manifest['stack']!r}, not {args.environment!r}")
        path = args.policy_config or policy_config_path(manifest["stack"])
        pairs = [(manifest, evaluate(manifest, load_policy_config(manifest["stack"], path), source=str(path)))]
    else:
        envs = _selected_environments(args)
        if args.policy_config and len(envs) > 1:
            raise UsageError("--policy-config names one environment's file; it cannot be combined with --all")
        # Every policy config is read and checked once, here: a bad one fails before anything is planned.
        paths = {env: args.policy_config or policy_config_path(env) for env in envs}
        policy_configs = {env: (path, checked_policy_config(env, path)) for env, path in paths.items()}
        pairs = map_environments(functools.partial(_check_environment, policy_configs), envs, args.jobs)
    manifests = [m for m, _ in pairs]
    results = [r for _, r in pairs]
    for result in results:
        print(report.table(result, show_unknown=not args.hide_unknown))
    if args.json:
        payload = {"results": [r.to_json() for r in results], "passed": all(r.passed for r in results)}
        mf.write_atomic(args.json, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    if args.sarif:
        configs = {m["stack"]: m.get("config") or "" for m in manifests}
        mf.write_atomic(args.sarif, json.dumps(report.sarif(results, all_rules(), configs), indent=2) + "\n")
    return EXIT_OK if all(r.passed for r in results) else EXIT_VIOLATION


def main(argv: Sequence[str] | None = None) -> int:
    from . import sdkload

    # First, before anything imports a provider SDK: modules compiled by `agentinfra prepare` load from there
    # (nothing changes without it).
    sdkload.install()

    import gc
    import logging

    # The program's warnings (pulumi.log.warn, e.g. a model pool's KV cache limits) reach here offline.
    logging.basicConfig(format="agentinfra: warning: %(message)s", level=logging.WARNING)
    args = build_parser().parse_args(argv)

    handler: Callable[[argparse.Namespace], int] = args.handler
    # A command is a short batch job: Python's cyclic collector would walk the provider SDKs' tens of thousands
    # of classes over and over (a third of a plan's time, measured in bench/run.py) to free little; the
    # garbage a plan leaves is a few MB even for a fleet 10x prod. Restored afterwards for in-process callers.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return handler(args)
    except InputError as exc:  # PlanError, ManifestError, UsageError, DiffInputError, ...
        return report_input_error(exc)
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - a bug: show everything needed to fix it
        print("agentinfra: internal error (please report it with the traceback below)", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL
    finally:
        if collecting:
            gc.enable()


def run(argv: Sequence[str] | None = None) -> Any:  # pragma: no cover - console-script shim
    import gc

    code = main(argv)
    # Exit without a last full collection over every object the SDKs created (over a second on 2 cores):
    # frozen objects are left to the OS, which reclaims the whole process anyway. atexit handlers still run.
    gc.freeze()
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
