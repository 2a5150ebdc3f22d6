"""Network rules: no security group open to the internet but on public load-balancer ports, flow logs on
every VPC, subnets spread over the configured number of AZs."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from .framework import Reporter, Rule, attached, of_type, resource_rule, stack_rule

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SUBNET = "aws:ec2/subnet:Subnet"
WORLD = {"0.0.0.0/0", "::/0"}

OPEN_INGRESS = Rule(
    id="AI-NET-001",
    name="sg-no-open-ingress",
    description="No security group admits the whole internet, except on the public load-balancer ports.",
    severity=Severity.CRITICAL,
    fix="Restrict the source to the VPC CIDR or to another security group; only internet-facing load "
    "balancers may accept 0.0.0.0/0, on the ports in the rule's publicPorts setting.",
    resource_types=(SECURITY_GROUP, SG_RULE, INGRESS_RULE),
    checkov=("CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260", "CKV_AWS_277"),
    cdk_nag=("AwsSolutions-EC23",),
    config={"publicPorts": {"type": "array", "items": {"type": "integer"}, "default": [80, 443]}},
)


def _ports(rule: Any, protocol_key: str) -> tuple[int, int] | None:
    """The port range a rule opens, or None for every port (protocol -1 / all)."""
    if str(rule.get(protocol_key)) in ("-1", "all"):
        return None
    return int(rule.get("fromPort") or 0), int(rule.get("toPort") or 65535)


def _check_open(
    report: Reporter, name: str, cidrs: list[str], ports: tuple[int, int] | None, allowed: set[int]
) -> None:
    open_to = sorted(WORLD & set(cidrs))
    if not open_to:
        return
    if ports is None or not all(p in allowed for p in range(ports[0], min(ports[1], ports[0] + 1024) + 1)):
        shown = "every port" if ports is None else f"ports {ports[0]}-{ports[1]}"
        report(f"{name!r} admits {', '.join(open_to)} on {shown}; allowed public ports are {sorted(allowed)}.")


@resource_rule(OPEN_INGRESS)
def open_ingress(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    allowed = {int(p) for p in cfg["publicPorts"]}
    props = args.props
    if args.resource_type == SECURITY_GROUP:
        for rule in props.get("ingress") or []:
            cidrs = list(rule.get("cidrBlocks") or []) + list(rule.get("ipv6CidrBlocks") or [])
            _check_open(report, args.name, cidrs, _ports(rule, "protocol"), allowed)
    elif args.resource_type == SG_RULE:
        if props.get("type") == "ingress":
            cidrs = list(props.get("cidrBlocks") or []) + list(props.get("ipv6CidrBlocks") or [])
            _check_open(report, args.name, cidrs, _ports(props, "protocol"), allowed)
    else:
        cidrs = [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c]
        _check_open(report, args.name, cidrs, _ports(props, "ipProtocol"), allowed)


FLOW_LOGS = Rule(
    id="AI-NET-002",
    name="vpc-flow-logs",
    description="Every VPC records flow logs.",
    severity=Severity.MEDIUM,
    fix="Add a FlowLog on the VPC to an encrypted log group (components.network does).",
    resource_types=(VPC, FLOW_LOG),
    checkov=("CKV2_AWS_11",),
    cdk_nag=("AwsSolutions-VPC7",),
)


@stack_rule(FLOW_LOGS)
def flow_logs(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    for vpc in of_type(resources, VPC):
        if not attached(resources, FLOW_LOG, "vpcId", vpc):
            report(f"VPC {vpc.name!r} has no flow log.", vpc.urn)


AZ_SPREAD = Rule(
    id="AI-NET-003",
    name="subnets-span-azs",
    description="Each tier of a VPC's subnets spans at least the configured number of availability zones.",
    severity=Severity.HIGH,
    fix="List at least minAzs zones in agent-infra:network.azs; the network component puts one subnet of "
    "each tier in every zone.",
    resource_types=(VPC, SUBNET),
    config={"minAzs": {"type": "integer", "minimum": 1, "default": 2}},
)


@stack_rule(AZ_SPREAD)
def az_spread(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    minimum = int(cfg["minAzs"])
    for vpc in of_type(resources, VPC):
        zones: dict[str, set[str]] = defaultdict(set)
        for subnet in attached(resources, SUBNET, "vpcId", vpc):
            tier = (subnet.props.get("tags") or {}).get("tier", "all")
            zones[tier].add(str(subnet.props.get("availabilityZone")))
        for tier, found in sorted(zones.items()):
            if len(found) < minimum:
                report(
                    f"the {tier} subnets of VPC {vpc.name!r} span {len(found)} AZ(s) ({', '.join(sorted(found))}); "
                    f"expected at least {minimum}.",
                    vpc.urn,
                )


RULES = [open_ingress, flow_logs, az_spread]
