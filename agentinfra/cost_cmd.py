"""``agentinfra cost ENV``: monthly cost per component and in total, from the price table, with savings levers.

Reads the plan (``--manifest FILE``, or plans ENV offline), the environment's usage assumptions from
``config/Pulumi.<env>.yaml`` key ``agent-infra:cost`` (defaults when absent), overridden key by key by
``--assumptions FILE`` (the same mapping, bare or inside a stack config file), and the prices in
``agentinfra_policies/catalog/prices.yaml``. Never calls a pricing API. Exit status: 0 the report was
written; 2 bad input, with one message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import reporting_input_errors
from .resilience_cmd import config_block, load_plan, parse_block

EXIT_OK = 0


def register(subparsers: Any) -> None:
    """Add the ``cost`` subcommand to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "cost",
        help="monthly cost per component from the repository's price table, with savings levers (offline)",
        description="Prices the plan per top-level component and per month from prices.yaml (us-east-1 list "
        "prices with their sources) and the agent-infra:cost assumptions; lists levers (spot, scheduled "
        "scale-down, a smaller GPU or 4-bit weights, reserved capacity) with their savings. Exit 0, or 2 for "
        "bad input.",
    )
    parser.add_argument("environment", metavar="ENV", help="environment (stack) name: a config/Pulumi.<env>.yaml")
    parser.add_argument("--manifest", type=Path, metavar="FILE", help="read this plan manifest instead of planning")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.add_argument(
        "--assumptions",
        type=Path,
        metavar="FILE",
        help="YAML assumptions (the agent-infra:cost mapping) overriding the environment's, key by key",
    )
    parser.set_defaults(handler=cmd_cost)


@reporting_input_errors
def cmd_cost(args: argparse.Namespace) -> int:
    from . import cost
    from . import manifest as mf

    assumptions = load_assumptions(args.environment, args.assumptions)
    manifest = load_plan(args.environment, args.manifest)
    report = cost.monthly_cost(manifest, assumptions)
    print(cost.render(report))
    if args.json:
        mf.write_atomic(args.json, json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
        print(f"json written to {args.json}", file=sys.stderr)
    return EXIT_OK


def load_assumptions(environment: str, override: Path | None) -> Any:
    """The environment's ``agent-infra:cost`` block, overridden key by key by ``override``, validated."""
    from .cost import merge_assumption_blocks, parse_assumptions

    base, source = config_block(environment, "cost", None, "--assumptions")
    if override is not None:
        extra, extra_source = config_block(environment, "cost", override, "--assumptions")
        base, source = merge_assumption_blocks(base, extra), f"{source} + {extra_source}"
    return parse_block(parse_assumptions, base, source, name="cost")


def main(argv: list[str] | None = None) -> int:
    """Run ``cost`` on its own (``python -m agentinfra.cost_cmd ENV``) with the CLI's parser behaviour."""
    from .cli import _Parser

    parser = _Parser(prog="agentinfra")
    register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    parsed = parser.parse_args(["cost", *(sys.argv[1:] if argv is None else argv)])
    code: int = parsed.handler(parsed)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
