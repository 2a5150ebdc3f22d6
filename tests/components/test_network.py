"""The network: multi-AZ subnets, NAT per AZ or shared, endpoints, discovery tags, flow logs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import by_name, record_component, resources_of

from components.aws_env import AwsEnvironment
from components.naming import Naming
from components.network import Network, NetworkArgs
from components.validation import InputPropertiesError

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"


def test_prod_has_private_subnets_in_three_distinct_azs_and_three_nats(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    private = [s for s in resources_of(prod, SUBNET) if s["inputs"]["tags"]["tier"] == "private"]
    assert sorted(s["inputs"]["availabilityZone"] for s in private) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert len(resources_of(prod, NAT)) == 3
    nat_subnets = {tuple(n["propertyDependencies"]["subnetId"]) for n in resources_of(prod, NAT)}
    assert len(nat_subnets) == 3, "each NAT gateway sits in its own AZ's public subnet"


def test_dev_has_two_azs_and_one_shared_nat(plans: dict[str, Any]) -> None:
    dev = plans["dev"]
    assert len({s["inputs"]["availabilityZone"] for s in resources_of(dev, SUBNET)}) == 2
    nats = resources_of(dev, NAT)
    assert len(nats) == 1
    routes = [r for r in resources_of(dev, "aws:ec2/route:Route") if "natGatewayId" in r["inputs"]]
    assert len(routes) == 2
    assert all(r["propertyDependencies"]["natGatewayId"] == [nats[0]["urn"]] for r in routes)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_subnet_carries_eks_and_elb_discovery_tags(plans: dict[str, Any], env: str) -> None:
    for subnet in resources_of(plans[env], SUBNET):
        tags = subnet["inputs"]["tags"]
        role = "kubernetes.io/role/elb" if tags["tier"] == "public" else "kubernetes.io/role/internal-elb"
        assert tags[role] == "1"
        assert tags[f"kubernetes.io/cluster/agent-infra-{env}-eks"] == "shared"
        assert subnet["inputs"]["mapPublicIpOnLaunch"] is False


def test_flow_log_group_is_kms_encrypted_with_retention(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    group = by_name(prod, "network-flow-logs")
    assert group["type"] == "aws:cloudwatch/logGroup:LogGroup"
    assert group["inputs"]["retentionInDays"] == 365
    assert group["propertyDependencies"]["kmsKeyId"] == [by_name(prod, "logs-key-key")["urn"]]
    flow_log = by_name(prod, "network-flow-log")
    assert flow_log["inputs"]["trafficType"] == "ALL"
    assert flow_log["propertyDependencies"]["logDestination"] == [group["urn"]]


def test_logs_key_rotates_and_lets_only_the_logs_service_of_this_account_use_it(plans: dict[str, Any]) -> None:
    key = by_name(plans["prod"], "logs-key-key")
    assert key["inputs"]["enableKeyRotation"] is True
    assert key["inputs"]["deletionWindowInDays"] == 30
    assert key["options"]["protect"] is True and key["options"]["retainOnDelete"] is True
    policy = json.loads(key["inputs"]["policy"])
    principals = [s["Principal"] for s in policy["Statement"]]
    assert {"AWS": "arn:aws:iam::333333333333:root"} in principals
    logs = next(s for s in policy["Statement"] if s["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"})
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == (
        "arn:aws:logs:us-east-1:333333333333:log-group:*"
    )
    assert "kms:*" not in logs["Action"]


def test_dev_keys_are_not_protected(plans: dict[str, Any]) -> None:
    assert "protect" not in by_name(plans["dev"], "logs-key-key")["options"]


def test_default_security_group_is_closed(plans: dict[str, Any]) -> None:
    (sg,) = resources_of(plans["prod"], "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert sg["inputs"]["ingress"] == [] and sg["inputs"]["egress"] == []


def test_endpoints_keep_aws_api_traffic_off_the_nat(plans: dict[str, Any]) -> None:
    endpoints = resources_of(plans["prod"], "aws:ec2/vpcEndpoint:VpcEndpoint")
    services = {e["inputs"]["serviceName"].removeprefix("com.amazonaws.us-east-1.") for e in endpoints}
    assert services == {"s3", "sqs", "ecr.api", "ecr.dkr", "sts", "secretsmanager", "logs"}
    for endpoint in endpoints:
        if endpoint["inputs"]["vpcEndpointType"] == "Interface":
            assert endpoint["inputs"]["privateDnsEnabled"] is True
            assert len(endpoint["propertyDependencies"]["subnetIds"]) == 3
        else:
            assert len(endpoint["propertyDependencies"]["routeTableIds"]) == 3
    sg = by_name(plans["prod"], "network-endpoints")
    assert sg["inputs"]["ingress"] == [
        {
            "cidrBlocks": ["10.30.0.0/16"],
            "description": "HTTPS from the VPC",
            "fromPort": 443,
            "protocol": "tcp",
            "toPort": 443,
        }
    ]


def test_flow_log_role_is_scoped_to_its_log_group(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    role = next(r for r in resources_of(prod, "aws:iam/role:Role") if r["name"] == "network-flow-logs")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "333333333333"}
    policy = next(r for r in resources_of(prod, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "network-flow-logs")
    # Written from the log group's fixed name, so the document is known in a new-stack preview.
    (stmt,) = json.loads(policy["inputs"]["policy"])["Statement"]
    group = "arn:aws:logs:us-east-1:333333333333:log-group:/agent-infra/prod/vpc/flow-logs"
    assert stmt["Resource"] == [group, group + ":*"]
    assert stmt["Action"] == [
        "logs:CreateLogStream",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]
    assert by_name(prod, "network-flow-logs")["urn"] in policy["dependencies"]


def test_every_aws_resource_uses_the_explicit_provider_with_required_tags(plans: dict[str, Any]) -> None:
    for env, m in plans.items():
        (provider,) = resources_of(m, "pulumi:providers:aws")
        tags = json.loads(provider["inputs"]["defaultTags"])["tags"]
        assert {"environment", "project", "owner", "cost-centre", "managed-by"} <= set(tags)
        assert tags["environment"] == env
        for res in m["resources"]:
            if res["custom"] and res["type"].startswith("aws:"):
                assert res["provider"] == provider["urn"], res["urn"]


def test_children_are_parented_to_their_component(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    network = by_name(prod, "network")
    for res in prod["resources"]:
        if res["name"].startswith("network-"):
            assert res["parent"] == network["urn"], res["name"]


def _args(**changes: Any) -> NetworkArgs:
    base = dict(
        naming=Naming("agent-infra", "test"),
        env=AwsEnvironment("123456789012", "eu-west-1"),
        cidr="10.0.0.0/16",
        azs=("eu-west-1a", "eu-west-1b"),
        public_subnets=("10.0.192.0/24", "10.0.193.0/24"),
        private_subnets=("10.0.0.0/18", "10.0.64.0/18"),
        log_kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/test",
    )
    base.update(changes)
    return NetworkArgs(**base)  # type: ignore[arg-type]


def test_component_builds_from_args_alone() -> None:
    m = record_component(lambda: Network("net", _args()))
    assert len(resources_of(m, SUBNET)) == 4
    assert len(resources_of(m, NAT)) == 2


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"azs": ("eu-west-1a",)}, "azs: expected at least 2 distinct AZs"),
        ({"private_subnets": ("10.0.0.0/18", "10.9.0.0/18")}, "private_subnets: expected subnets inside 10.0.0.0/16"),
        ({"public_subnets": ("10.0.192.0/24",)}, "public_subnets: expected one CIDR per AZ (2)"),
        ({"flow_log_traffic": "SOME"}, "flow_log_traffic: expected ALL, ACCEPT or REJECT"),
    ],
)
def test_component_rejects_invalid_args(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputPropertiesError, match=re.escape(fragment)):
        record_component(lambda: Network("net", _args(**changes)))
