"""Network rules: open ingress, flow logs, AZ spread."""

from __future__ import annotations

import pytest
from fixtures import manifest
from helpers import UNKNOWN, findings, mutate, remove


@pytest.mark.parametrize("policy", ["sg-no-open-ingress", "vpc-flow-logs", "subnets-span-azs"])
def test_quiet_on_compliant_fixture(policy: str) -> None:
    assert (
        findings(policy, manifest("network_program"), **({"minAzs": 3} if policy == "subnets-span-azs" else {})) == []
    )


@pytest.mark.parametrize(
    ("change", "resource", "text"),
    [
        (("lb", "ingress.1.cidrBlocks", ["0.0.0.0/0"]), "lb", "[AI-NET-001] 'lb' admits 0.0.0.0/0 on ports 6379-6379"),
        (("lb", "ingress.0.protocol", "-1"), "lb", "[AI-NET-001] 'lb' admits 0.0.0.0/0 on every port"),
        (("lb-http", "fromPort", 22), "lb-http", "[AI-NET-001] 'lb-http' admits 0.0.0.0/0 on ports 22-80"),
        (("app", "cidrIpv4", "0.0.0.0/0"), "app", "[AI-NET-001] 'app' admits 0.0.0.0/0 on ports 8080-8080"),
    ],
)
def test_open_ingress_fires(change: tuple, resource: str, text: str) -> None:
    result = findings("sg-no-open-ingress", mutate(manifest("network_program"), *change))
    assert len(result) == 1 and result[0][:2] == ("violation", resource)
    assert result[0][2].startswith(text)


def test_public_ports_are_a_setting() -> None:
    assert findings("sg-no-open-ingress", manifest("network_program"), publicPorts=[443]) == [
        (
            "violation",
            "lb-http",
            "[AI-NET-001] 'lb-http' admits 0.0.0.0/0 on ports 80-80; allowed public ports are "
            "[443]. Fix: Restrict the source to the VPC CIDR or to another security group; only "
            "internet-facing load balancers may accept 0.0.0.0/0, on the ports in the rule's "
            "publicPorts setting.",
        )
    ]


def test_flow_logs_fire_without_a_flow_log() -> None:
    result = findings("vpc-flow-logs", remove(manifest("network_program"), "flow"))
    assert [r[:2] for r in result] == [("violation", "vpc")]


def test_az_spread_fires_below_the_minimum() -> None:
    changed = mutate(manifest("network_program"), "private-us-east-1c", "availabilityZone", "us-east-1a")
    result = findings("subnets-span-azs", changed, minAzs=3)
    assert result[0][2].startswith(
        "[AI-NET-003] the private subnets of VPC 'vpc' span 2 AZ(s) (us-east-1a, us-east-1b); expected at least 3."
    )


def test_unknown_values_are_reported_not_passed() -> None:
    assert [
        r[0] for r in findings("sg-no-open-ingress", mutate(manifest("network_program"), "lb", "ingress", UNKNOWN))
    ] == ["unknown"]
    changed = mutate(manifest("network_program"), "private-us-east-1c", "availabilityZone", UNKNOWN)
    assert [r[0] for r in findings("subnets-span-azs", changed, minAzs=3)] == ["unknown"]
