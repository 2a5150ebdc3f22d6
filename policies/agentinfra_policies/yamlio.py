"""YAML reading through libyaml's parser where PyYAML was built with it (about 8x faster), else PyYAML's own.

Both are PyYAML's *safe* loaders with the same resolver, so they build the same objects. Errors are
``yaml.YAMLError`` either way, with ``problem`` and ``problem_mark``; libyaml words some problems differently
and may mark a later position (an unclosed ``[`` is reported where the parser gave up, not where it opened).
"""

from __future__ import annotations

from typing import IO, Any

import yaml

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    return yaml.load(stream, Loader=_LOADER)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)
