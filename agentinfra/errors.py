"""The one kind of error every command reports the same way: bad input, exit status 2, one line, no traceback.

Each module keeps its own error class (``PlanError``, ``ManifestError``, ``DiffInputError``, ...) so callers can
tell where a problem came from; all of them are ``InputError``. ``cli.main`` reports any ``InputError``;
``reporting_input_errors`` does the same for a handler called on its own (tests, ``python -m``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

EXIT_INPUT = 2


class InputError(Exception):
    """Bad input (a file, a key, an argument, a revision): exit status 2 with this one message."""


def report_input_error(problem: object) -> int:
    """Print the problem (an ``InputError`` or a message) as the one line every command prints; exit status 2."""
    print(f"agentinfra: error: {problem}", file=sys.stderr)
    return EXIT_INPUT


def reporting_input_errors(handler: Callable[[Any], int]) -> Callable[[Any], int]:
    """The handler, with any ``InputError`` it raises reported as one line on stderr and exit status 2."""

    @functools.wraps(handler)
    def reporting(args: Any) -> int:
        try:
            return handler(args)
        except InputError as exc:
            return report_input_error(exc)

    return reporting
