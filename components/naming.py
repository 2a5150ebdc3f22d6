"""One naming scheme for every physical name and Name tag: ``<project>-<environment>-<part>...``."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Naming:
    """Builds names that say which project and environment a resource belongs to."""

    project: str
    """Project name, e.g. ``agent-infra``."""
    environment: str
    """Environment (stack) name, e.g. ``prod``."""

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.environment}"

    def name(self, *parts: str, max_length: int = 63) -> str:
        """``agent-infra-prod-<parts>``, lower-case, shortened with a stable hash when over ``max_length``."""
        text = "-".join([self.prefix, *parts]).lower()
        text = _UNSAFE.sub("-", text).strip("-")
        if len(text) <= max_length:
            return text
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        return f"{text[: max_length - 9].rstrip('-')}-{digest}"

    def log_group(self, *parts: str) -> str:
        """CloudWatch log group path: ``/agent-infra/prod/<parts>``."""
        return "/" + "/".join([self.project, self.environment, *parts])

    @property
    def cluster_name(self) -> str:
        """The EKS cluster's name; subnets carry it in their discovery tags before the cluster exists."""
        return self.name("eks")
