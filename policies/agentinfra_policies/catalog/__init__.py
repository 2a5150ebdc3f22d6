"""The instance catalog: one typed view of ``instances.yaml`` for the program, the CLI and the policy pack."""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentinfra_policies.yamlio import safe_load

CATALOG_PATH = Path(__file__).with_name("instances.yaml")

Family = Literal["ec2", "elasticache", "memorydb"]


@dataclass(frozen=True)
class InstanceType:
    """One instance or node type as the catalog describes it."""

    name: str
    """The AWS name, e.g. ``g6e.xlarge`` or ``cache.r7g.large``."""
    family: Family
    """``ec2`` for EC2 instances (including GPU instances), ``elasticache`` for cache nodes."""
    vcpu: int
    """Virtual CPUs."""
    memory_gib: float
    """Host memory in GiB."""
    network: str
    """AWS's published network bandwidth label."""
    arch: str = "x86_64"
    """CPU architecture (EC2 only)."""
    gpus: int = 0
    """Number of GPUs; 0 for CPU-only types."""
    gpu_model: str | None = None
    """GPU model, e.g. ``L40S``; None when there is no GPU."""
    gpu_memory_gib: float = 0.0
    """Memory of one GPU in GiB; 0 when there is no GPU."""
    burstable: bool = False
    """True for burstable (T-family) instances."""

    @property
    def has_gpu(self) -> bool:
        return self.gpus > 0

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpus * self.gpu_memory_gib


class Catalog:
    """Lookup over the catalog, keyed by family and name, with per-environment allow-lists."""

    def __init__(self, types: dict[str, InstanceType], allowlists: dict[str, tuple[str, ...]] | None = None):
        self._types = types
        self.allowlists = allowlists or {}

    def allowed(self, name: str, allowlist: str) -> bool:
        """True when ``name`` is a catalog type matched by the named allow-list's patterns."""
        patterns = self.allowlists.get(allowlist, ())
        return name in self._types and any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def get(self, name: str) -> InstanceType | None:
        return self._types.get(name)

    def names(self, family: Family, *, gpu: bool | None = None) -> list[str]:
        """Sorted names of one family; ``gpu`` filters to GPU (True) or CPU-only (False) types."""
        return sorted(t.name for t in self._types.values() if t.family == family and (gpu is None or t.has_gpu == gpu))

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __len__(self) -> int:
        return len(self._types)


def parse_catalog(raw: dict) -> Catalog:
    types: dict[str, InstanceType] = {}
    for family in ("ec2", "elasticache", "memorydb"):
        for name, spec in (raw.get(family) or {}).items():
            types[name] = InstanceType(name=name, family=family, **spec)
    allowlists = {env: tuple(patterns) for env, patterns in (raw.get("allowlists") or {}).items()}
    return Catalog(types, allowlists)


@functools.cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Read the catalog once per process (it is data shipped with the package, never fetched)."""
    with open(path, encoding="utf-8") as fh:
        return parse_catalog(safe_load(fh))
