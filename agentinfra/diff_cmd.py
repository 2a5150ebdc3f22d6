"""The ``agentinfra diff BASE HEAD`` subcommand: what a change does to each environment.

BASE and HEAD are each a manifest file (``agentinfra plan --out``), a directory of ``<env>.json``
manifests, a git revision of the repository, or ``WORKTREE`` / ``.`` for the working tree. A revision
is planned with this checkout's engine (see :func:`agentinfra.diff.plan_revision`).

Exit status: 0 the report was written; 1 something was flagged and ``--fail-on-flag`` was given;
2 bad input, with one message naming the argument.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InputError, reporting_input_errors

WORKTREE_NAMES = ("WORKTREE", ".")
EXIT_OK, EXIT_FLAGGED = 0, 1


class DiffUsageError(InputError):
    """A bad argument: exit status 2 with this message."""


def register(subparsers: Any) -> None:
    """Add the ``diff`` subcommand to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "diff",
        help="compare two plans (manifests, directories or git revisions) and flag what hurts",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("base", metavar="BASE", help="manifest file, directory of <env>.json, git revision, WORKTREE")
    parser.add_argument("head", metavar="HEAD", help="manifest file, directory of <env>.json, git revision, WORKTREE")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--env", metavar="ENV", help="only this environment")
    which.add_argument("--all", action="store_true", help="every environment on either side (the default)")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the pull-request comment (Markdown)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the full report as JSON")
    parser.add_argument("--policy", action="store_true", help="run the policy gate on the head and report it")
    parser.add_argument(
        "--limit", type=int, default=60000, metavar="N", help="maximum Markdown length in characters (default 60000)"
    )
    parser.add_argument("--fail-on-flag", action="store_true", help="exit 1 when anything is flagged")
    parser.add_argument(
        "--repo", type=Path, metavar="DIR", help="git repository for revisions and WORKTREE (default: the current one)"
    )
    parser.set_defaults(handler=cmd_diff)


@reporting_input_errors
def cmd_diff(args: argparse.Namespace) -> int:
    """Handler: returns the exit status; bad input is reported as one line on stderr (exit 2)."""
    from . import diff as df
    from . import manifest as mf

    if args.limit < 500:
        raise DiffUsageError(f"--limit: expected at least 500 characters, found {args.limit}")
    envs = [args.env] if args.env else None
    repo = _repo_root(args.repo)
    before, after = _both_sides(args.base, args.head, envs, repo)
    if args.env and args.env not in before and args.env not in after:
        raise DiffUsageError(f"--env: environment {args.env!r} is in neither BASE nor HEAD")
    gates = _gate(after) if args.policy else None
    costs = _cost_deltas(before, after)
    diffs = df.diff_all(before, after, environments=envs, gate_results=gates, cost_deltas=costs)
    if not diffs:
        raise DiffUsageError("BASE and HEAD hold no environments to compare")
    print(df.render_text(diffs))
    if args.markdown:
        text = df.render_markdown(diffs, gates, costs, limit=args.limit, title=f"`{args.base}` \u2192 `{args.head}`")
        mf.write_atomic(args.markdown, text + "\n")
        print(f"markdown written to {args.markdown}", file=sys.stderr)
    if args.json:
        mf.write_atomic(args.json, json.dumps(df.to_json(diffs, gates, costs), indent=2, sort_keys=True) + "\n")
        print(f"json written to {args.json}", file=sys.stderr)
    flagged = any(d.flags for d in diffs)
    return EXIT_FLAGGED if flagged and args.fail_on_flag else EXIT_OK


def _repo_root(given: Path | None) -> Path:
    from .engine import project_root

    start = given or Path.cwd()
    found = subprocess.run(
        ["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
    )
    if found.returncode == 0:
        return Path(found.stdout.strip()).resolve()
    if given is not None:
        raise DiffUsageError(f"--repo: {given} is not inside a git repository")
    return project_root()


def _both_sides(base: str, head: str, envs: list[str] | None, repo: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """BASE and HEAD manifests, planned at the same time when at most one side plans in this process.

    A revision (or another checkout's working tree) is planned in a subprocess, so it can run on the other
    core while this process plans or reads the other side. Errors are reported as if run in order: BASE's
    first.
    """
    from concurrent.futures import ThreadPoolExecutor

    if _plans_here(base, repo) and _plans_here(head, repo):
        return _side("BASE", base, envs, repo), _side("HEAD", head, envs, repo)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="agentinfra-diff") as pool:
        futures = [pool.submit(_side, label, value, envs, repo) for label, value in (("BASE", base), ("HEAD", head))]
        for future in futures:
            future.exception()  # wait for both before raising, so no worktree is left mid-creation
        return futures[0].result(), futures[1].result()


def _plans_here(value: str, repo: Path) -> bool:
    """Whether BASE/HEAD ``value`` is planned in this process: this checkout's own working tree."""
    from .engine import project_root

    return value in WORKTREE_NAMES and repo == project_root()


def _side(label: str, value: str, envs: list[str] | None, repo: Path) -> dict[str, Any]:
    """Manifests by environment for one of BASE/HEAD."""
    from . import diff as df
    from .engine import environments, plan

    if value in WORKTREE_NAMES:
        if _plans_here(value, repo):
            present = environments(repo)
            return {e: plan(e) for e in (envs if envs is not None else present) if e in present}
        return df.plan_tree(repo, envs, label=f"{label} (working tree {repo})")
    path = Path(value)
    if path.exists():
        try:
            found = df.load_manifests(path)
        except df.DiffInputError as exc:
            raise DiffUsageError(f"{label}: {exc}") from None
        return {e: m for e, m in found.items() if envs is None or e in envs}
    try:
        df.resolve_revision(value, repo)
    except df.RevisionError as exc:
        raise DiffUsageError(
            f"{label}: {value!r} is not a manifest file, a directory of manifests or a git revision ({exc})"
        ) from None
    try:
        return df.plan_revision(value, envs, repo)
    except df.RevisionError as exc:
        raise DiffUsageError(f"{label}: {exc}") from None


def _cost_deltas(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float | None]:
    """Monthly cost of HEAD minus BASE per environment in both, with HEAD's cost assumptions (offline prices)."""
    from .cost import cost_delta
    from .cost_cmd import load_assumptions
    from .engine import PlanError

    deltas: dict[str, float | None] = {}
    for env in sorted(set(before) & set(after)):
        try:
            assumptions = load_assumptions(env, None)
        except (PlanError, ValueError, OSError):
            assumptions = None  # an environment without a config file here: default assumptions
        deltas[env] = cost_delta(before[env], after[env], assumptions)
    return deltas


def _gate(manifests: dict[str, Any]) -> dict[str, Any]:
    from .gate import evaluate, load_policy_config, policy_config_path

    results = {}
    for env, manifest in manifests.items():
        path = policy_config_path(env)
        results[env] = evaluate(manifest, load_policy_config(env, path), source=str(path))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``diff`` on its own (``python -m agentinfra.diff_cmd``) with the CLI's parser behaviour."""
    from .cli import _Parser

    parser = _Parser(prog="agentinfra")
    register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    args = parser.parse_args(["diff", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
