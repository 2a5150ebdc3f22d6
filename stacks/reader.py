"""A small reader over raw config values that collects every problem instead of stopping at the first.

Each problem names the full key (``agent-infra:network.azs[2]``), what was expected and what was
found, so a user fixing a config file sees everything wrong in one run.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING: Any = object()
#: Pass as a getter's default to make the key required (the getters' default is already "required").
REQUIRED: Any = _MISSING


@dataclass(frozen=True)
class Problem:
    """One invalid setting: the full key and what is wrong with it."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class SettingsError(Exception):
    """Every problem found in an environment's settings, raised once after reading all of them."""

    def __init__(self, problems: Iterable[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        head = f"{prefix}{len(self.problems)} invalid setting(s)"
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)

    def with_source(self, source: str) -> SettingsError:
        return SettingsError(self.problems, source)


def describe(value: Any) -> str:
    """How a found value is quoted in a message: its YAML-ish form, shortened."""
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Problems:
    """The list a whole settings read appends to."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(Problem(key, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise SettingsError(self.items)


_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)?$")

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|k|kb|m|mb|g|gb|t|tb)?$", re.IGNORECASE)
_SIZE_FACTORS = {
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
    "t": 1000**4,
    "tb": 1024**4,
}


class Node:
    """A mapping in the config, addressed by its key path. Getters return None after recording a problem."""

    def __init__(self, raw: Any, path: str, problems: Problems):
        self.path = path
        self.problems = problems
        self._used: set[str] = set()
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            problems.add(path, f"expected a mapping of settings, found {describe(raw)}")
            raw = {}
        self.raw: dict[str, Any] = raw

    # -- plumbing -------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return f"{self.path}.{name}"

    def fail(self, name: str, message: str) -> None:
        self.problems.add(self.key(name), message)

    def has(self, name: str) -> bool:
        return name in self.raw

    def _take(self, name: str, default: Any) -> Any:
        self._used.add(name)
        if name in self.raw and self.raw[name] is not None:
            return self.raw[name]
        if default is _MISSING:
            self.fail(name, "is required but missing")
            return _MISSING
        return default

    def finish(self) -> None:
        """Report keys nobody read: almost always a typo, which would otherwise be silently ignored."""
        for name in sorted(set(self.raw) - self._used):
            expected = ", ".join(sorted(self._used))
            self.fail(name, f"unknown setting; expected one of: {expected}")

    # -- typed getters --------------------------------------------------------------------------
    def text(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        choices: Iterable[str] | None = None,
        pattern: str | None = None,
        what: str | None = None,
    ) -> Any:
        value = self._take(name, default)
        if value is _MISSING:
            return None
        if value is default:
            return value
        if not isinstance(value, str) or value == "":
            self.fail(name, f"expected {what or 'a non-empty string'}, found {describe(value)}")
            return None
        if choices is not None:
            options = list(choices)
            if value not in options:
                self.fail(name, f"expected one of {', '.join(options)}, found {describe(value)}")
                return None
        if pattern is not None and not re.fullmatch(pattern, value):
            self.fail(name, f"expected {what or 'a value matching ' + pattern}, found {describe(value)}")
            return None
        return value

    def integer(self, name: str, default: Any = _MISSING, *, min: int | None = None, max: int | None = None) -> Any:
        value = self._take(name, default)
        if value is _MISSING:
            return None
        if value is default:
            return value
        return self.check_int(self.key(name), value, min=min, max=max)

    def check_int(self, key: str, value: Any, *, min: int | None = None, max: int | None = None) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.add(key, f"expected a whole number{_range(min, max)}, found {describe(value)}")
            return None
        if (min is not None and value < min) or (max is not None and value > max):
            self.problems.add(key, f"expected a whole number{_range(min, max)}, found {value}")
            return None
        return value

    def number(self, name: str, default: Any = _MISSING, *, min: float | None = None, max: float | None = None) -> Any:
        value = self._take(name, default)
        if value is _MISSING:
            return None
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(name, f"expected a number{_range(min, max)}, found {describe(value)}")
            return None
        if (min is not None and value < min) or (max is not None and value > max):
            self.fail(name, f"expected a number{_range(min, max)}, found {value}")
            return None
        return float(value)

    def flag(self, name: str, default: Any = _MISSING) -> Any:
        value = self._take(name, default)
        if value is _MISSING:
            return None
        if value is default:
            return value
        if not isinstance(value, bool):
            self.fail(name, f"expected true or false, found {describe(value)}")
            return None
        return value

    def cidr(self, name: str, default: Any = _MISSING) -> Any:
        value = self._take(name, default)
        if value is _MISSING:
            return None
        return self.check_cidr(self.key(name), value)

    def check_cidr(self, key: str, value: Any) -> ipaddress.IPv4Network | None:
        try:
            if not isinstance(value, str):
                raise ValueError
            return ipaddress.IPv4Network(value, strict=True)
        except ValueError:
            self.problems.add(key, f"expected an IPv4 CIDR block such as 10.0.0.0/16, found {describe(value)}")
            return None

    def duration_seconds(self, name: str, default: Any = _MISSING, *, min: int = 0, max: int | None = None) -> Any:
        """Seconds from ``60``, ``"60s"``, ``"5m"``, ``"1h"`` or ``"4d"`` (the seed writes ``60s``)."""
        value = self._take(name, default)
        if value is _MISSING:
            return None
        if value is default:
            return value
        seconds = None
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        elif isinstance(value, str) and (m := _DURATION.match(value.strip())):
            seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}[m.group(2)]

        if seconds is None or seconds < min or (max is not None and seconds > max):
            self.fail(
                name,
                f"expected a duration such as 60s, 5m or 1h{_range(min, max, ' seconds')}, found {describe(value)}",
            )
            return None
        return seconds

    def size_bytes(self, name: str, default: Any = _MISSING) -> Any:
        """Bytes from a Redis-style size: ``32GB`` or ``32gb`` is 32 GiB, ``32g`` is 32e9 (redis.conf rules)."""
        value = self._take(name, default)
        if value is _MISSING:
            return None
        if value is default:
            return value
        m = _SIZE.match(value.strip()) if isinstance(value, str) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if not m or float(m.group(1)) <= 0:
            self.fail(name, f"expected a memory size such as 32GB or 512mb, found {describe(value)}")
            return None
        return int(float(m.group(1)) * _SIZE_FACTORS[(m.group(2) or "b").lower()])

    def str_list(self, name: str, default: Any = _MISSING, *, min_len: int = 0) -> Any:
        value = self._take(name, default)
        if value is _MISSING:
            return None
        if value is default:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(name, f"expected a list of strings, found {describe(value)}")
            return None
        if len(value) < min_len:
            self.fail(name, f"expected at least {min_len} entries, found {len(value)}")
            return None
        return tuple(value)

    def str_map(self, name: str, default: Any = _MISSING) -> Any:
        value = self._take(name, default)
        if value is _MISSING:
            return None
        if value is default:
            return value
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            self.fail(name, f"expected a mapping of strings to strings, found {describe(value)}")
            return None
        return dict(value)

    def child(self, name: str, *, required: bool = False) -> Node | None:
        """A nested mapping; None when it is absent and not required."""
        self._used.add(name)
        if name not in self.raw or self.raw[name] is None:
            if required:
                self.fail(name, "is required but missing")
            return None
        return Node(self.raw[name], self.key(name), self.problems)

    def children(self, name: str, parse: Callable[[Node], T | None], *, required: bool = False) -> list[T]:
        """A list of mappings, each parsed by ``parse``; entries are addressed as ``name[i]``."""
        self._used.add(name)
        value = self.raw.get(name)
        if value is None:
            if required:
                self.fail(name, "is required but missing")
            return []
        if not isinstance(value, list):
            self.fail(name, f"expected a list of mappings, found {describe(value)}")
            return []
        parsed: list[T] = []
        for index, item in enumerate(value):
            node = Node(item, f"{self.key(name)}[{index}]", self.problems)
            result = parse(node)
            node.finish()
            if result is not None:
                parsed.append(result)
        return parsed


def _range(lo: float | None, hi: float | None, unit: str = "") -> str:
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}{unit}"
    if lo is not None:
        return f" of at least {lo}{unit}"
    if hi is not None:
        return f" of at most {hi}{unit}"
    return ""
