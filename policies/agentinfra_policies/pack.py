"""The one list of rules. ``policies/__main__.py`` hands it to ``PolicyPack``; the offline gate runs it."""

from __future__ import annotations

from pulumi_policy import Policy

from . import apigw, cache, compute, governance, iam_kms, kubernetes, network, s3, sqs
from .framework import PACK_NAME, Rule

__all__ = ["PACK_NAME", "all_rules", "all_policies"]


def all_rules() -> list[Rule]:
    """Every rule in the pack, in a stable order (by id)."""
    rules = [
        *s3.RULES,
        *sqs.RULES,
        *iam_kms.RULES,
        *network.RULES,
        *governance.RULES,
        *compute.RULES,
        *cache.RULES,
        *apigw.RULES,
        *kubernetes.RULES,
    ]
    ids = [r.id for r in rules]
    names = [r.name for r in rules]
    if len(set(ids)) != len(ids) or len(set(names)) != len(names):
        raise AssertionError("rule ids and names must be unique")
    return sorted(rules, key=lambda r: r.id)


def all_policies() -> list[Policy]:
    policies = [r.policy for r in all_rules()]
    assert all(p is not None for p in policies)
    return [p for p in policies if p is not None]
