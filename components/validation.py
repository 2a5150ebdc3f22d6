"""Construction-time validation of component Args: every problem in one error naming each field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi


class InputPropertiesError(ValueError):
    """A component was given invalid Args; the message lists each field and what was expected."""

    def __init__(self, component: str, problems: list[str]):
        self.component = component
        self.problems = problems
        super().__init__(f"{component}: invalid arguments\n" + "\n".join(f"  - {p}" for p in problems))


class Checker:
    """Collects problems with plain values; Outputs (unknown until deployment) are skipped."""

    def __init__(self, component: str):
        self.component = component
        self.problems: list[str] = []

    def check(self, field: str, value: Any, ok: Callable[[Any], bool], expected: str) -> None:
        if isinstance(value, pulumi.Output):
            return
        if not ok(value):
            self.problems.append(f"{field}: expected {expected}, found {value!r}")

    def done(self) -> None:
        if self.problems:
            raise InputPropertiesError(self.component, self.problems)
