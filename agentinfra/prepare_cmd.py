"""``agentinfra prepare``: compile, once per install, the code every later command loads.

Two things, both bytecode (no plan, manifest or policy result is stored):

* the provider SDK modules the program imports, with postponed annotations, into the virtual environment's
  cache (see ``agentinfra.sdkload``): a cold ``check --all`` spends about a second less importing them;
* this project's own modules, as ordinary ``__pycache__`` files, as pip does for installed packages (an
  editable install is not compiled, and ``PYTHONDONTWRITEBYTECODE`` keeps Python from writing them itself).

Commands work the same without it, only slower. Exit status: 0 done; 2 the cache cannot be written.
"""

from __future__ import annotations

import argparse
import compileall
import sys
import time
from typing import Any

from .errors import InputError

EXIT_OK = 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="compile the provider SDK modules and this project's bytecode once (faster later commands)",
        description="Compile the provider SDK modules the program uses with postponed annotations, and this "
        "project's modules, so later commands start faster. Run again after upgrading the SDKs (stale files "
        "are ignored, never used).",
    )
    parser.add_argument("--jobs", type=int, metavar="N", help="compiler processes (default: one per core)")
    parser.set_defaults(handler=cmd_prepare)


def cmd_prepare(args: argparse.Namespace) -> int:
    from . import sdkload
    from .engine import project_root
    from .parallel import PROVIDER_PACKAGES

    start = time.perf_counter()
    directory = sdkload.cache_dir()
    try:
        count, problems = sdkload.prepare(PROVIDER_PACKAGES, directory, jobs=args.jobs)
    except OSError as exc:
        raise InputError(
            f"cannot write the SDK bytecode cache {directory}: {exc.strerror} "
            f"(set {sdkload.DIR_ENV} to a writable directory, or run in a virtual environment you own)"
        ) from None
    for problem in problems:
        print(f"agentinfra: warning: not prepared (imported the ordinary way): {problem}", file=sys.stderr)
    root = project_root()
    sources = [root / d for d in ("agentinfra", "stacks", "components", "policies/agentinfra_policies")]
    project_ok = all(compileall.compile_dir(str(d), quiet=1) for d in sources if d.is_dir())
    project_ok = bool(compileall.compile_file(str(root / "__main__.py"), quiet=1)) and project_ok
    print(
        f"prepared {count - len(problems)} provider SDK modules in {directory} and "
        f"{'compiled' if project_ok else 'could not compile all of'} this project's modules "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return EXIT_OK
