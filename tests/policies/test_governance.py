"""Cross-cutting rules: required tags through provider default tags, protect, instance types."""

from __future__ import annotations

import json

import pytest
from fixtures import manifest
from helpers import UNKNOWN, findings, mutate


@pytest.mark.parametrize("policy", ["required-tags", "protect-stateful", "allowed-instance-types"])
def test_quiet_on_compliant_fixture(policy: str) -> None:
    assert findings(policy, manifest("governance_program")) == []


def _provider_tags(tags: dict[str, str]) -> dict:
    m = manifest("governance_program")
    provider = next(r for r in m["resources"] if r["type"] == "pulumi:providers:aws")
    provider["inputs"]["defaultTags"] = json.dumps({"tags": tags})
    return m


def test_missing_tags_fire_per_resource() -> None:
    m = _provider_tags({"environment": "test", "project": "agent-infra", "owner": "team", "managed-by": "pulumi"})
    result = findings("required-tags", m)
    assert [r[1] for r in result] == ["queue", "redis", "workers"]
    assert "lacks the tag(s) cost-centre." in result[0][2]


def test_a_resource_may_carry_the_missing_tag_itself() -> None:
    m = _provider_tags({"environment": "test", "project": "agent-infra", "owner": "team", "managed-by": "pulumi"})
    for resource in m["resources"]:
        if resource["custom"] and resource["type"].startswith("aws:"):
            resource["inputs"]["tags"] = {"cost-centre": "cc-1"}
    assert findings("required-tags", m) == []


def test_required_tags_are_a_setting() -> None:
    result = findings("required-tags", manifest("governance_program"), requiredTags=["data-classification"])
    assert len(result) == 3


def test_unprotected_stateful_resource_fires() -> None:
    result = findings("protect-stateful", mutate(manifest("governance_program"), "redis", "@options.protect", False))
    assert result == [
        (
            "violation",
            "redis",
            "[AI-OPS-001] 'redis' (aws:elasticache/replicationGroup:ReplicationGroup) "
            "is not protected. Fix: Set agent-infra:protect_stateful to true for the "
            "stack; components then set protect and retain_on_delete on what they "
            "create.",
        )
    ]


@pytest.mark.parametrize(
    ("change", "allowlist", "resource", "itype"),
    [
        (("workers", "instanceType", "p5.48xlarge"), "dev", "workers", "p5.48xlarge"),
        (("workers", "instanceType", "x1e.32xlarge"), "prod", "workers", "x1e.32xlarge"),
        (("redis", "nodeType", "cache.r7g.8xlarge"), "dev", "redis", "cache.r7g.8xlarge"),
    ],
)
def test_instance_types_outside_the_allowlist_fire(change: tuple, allowlist: str, resource: str, itype: str) -> None:
    result = findings("allowed-instance-types", mutate(manifest("governance_program"), *change), allowlist=allowlist)
    assert len(result) == 1 and result[0][:2] == ("violation", resource)
    assert f"uses {itype}, which the {allowlist} allow-list" in result[0][2]


def test_unknown_instance_type_is_reported_not_passed() -> None:
    changed = mutate(manifest("governance_program"), "workers", "instanceType", UNKNOWN)
    assert [r[0] for r in findings("allowed-instance-types", changed)] == ["unknown"]


def test_auto_scaling_group_tag_blocks_are_read() -> None:
    from agentinfra_policies.governance import resource_tags

    blocks = [{"key": "owner", "propagateAtLaunch": True, "value": "team"}, {"key": "pool", "value": "agents"}]
    assert resource_tags(blocks) == {"owner": "team", "pool": "agents"}
    assert resource_tags({"owner": "team"}) == {"owner": "team"}
    assert resource_tags(None) == {}
