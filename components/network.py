"""A multi-AZ VPC that every other component builds on.

Per AZ: a public subnet (load balancers, NAT) and a private subnet (everything else). NAT gateways
per AZ or one shared; an S3 gateway endpoint and interface endpoints so private workloads reach AWS
APIs without NAT; the subnet tags EKS and the AWS Load Balancer Controller discover; the default
security group stripped of all rules; VPC flow logs to a KMS-encrypted log group.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from . import iam
from .aws_env import AwsEnvironment
from .log_group import encrypted_log_group
from .naming import Naming
from .validation import Checker

#: Interface endpoints every private workload needs (ECR needs both api and dkr; S3 is a gateway).
DEFAULT_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "sqs", "sts")


class NatGatewayMode(enum.Enum):
    """How private subnets reach the internet."""

    PER_AZ = "per_az"
    """A NAT gateway in each AZ: losing one AZ cuts no other AZ off (staging, prod)."""
    SINGLE = "single"
    """One shared NAT gateway in the first AZ: cheaper, a single point of failure (dev)."""


@dataclass(frozen=True)
class NetworkArgs:
    naming: Naming
    """Names and Name tags."""
    env: AwsEnvironment
    """Account and region (endpoint service names, flow-log role trust)."""
    cidr: str
    """VPC IPv4 CIDR, /16 to /24."""
    azs: tuple[str, ...]
    """Availability zones, at least 2."""
    public_subnets: tuple[str, ...]
    """One public subnet CIDR per AZ, inside ``cidr``."""
    private_subnets: tuple[str, ...]
    """One private subnet CIDR per AZ, inside ``cidr``."""
    log_kms_key_arn: pulumi.Input[str]
    """Key that encrypts the flow-log group; its policy must allow the logs service."""
    nat_gateways: NatGatewayMode = NatGatewayMode.PER_AZ
    """``PER_AZ`` (default) or ``SINGLE``."""
    interface_endpoints: tuple[str, ...] = DEFAULT_INTERFACE_ENDPOINTS
    """AWS services reached through interface endpoints (default: ECR, Logs, Secrets Manager, SQS, STS)."""
    flow_log_traffic: str = "ALL"
    """ALL (default), ACCEPT or REJECT."""
    flow_log_retention_days: int = 90
    """Retention of the flow-log group (default 90)."""
    cluster_name: str | None = None
    """EKS cluster that shares the subnets (``kubernetes.io/cluster/<name>: shared``); None to omit."""


class Network(pulumi.ComponentResource):
    """The VPC, its subnets, gateways, endpoints and flow logs."""

    vpc: aws.ec2.Vpc
    """The VPC."""
    vpc_id: pulumi.Output[str]
    """The VPC's id."""
    azs: tuple[str, ...]
    """The AZs, in subnet order."""
    public_subnets: dict[str, aws.ec2.Subnet]
    """Public subnet per AZ."""
    private_subnets: dict[str, aws.ec2.Subnet]
    """Private subnet per AZ."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnet ids, in AZ order."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Public subnet ids, in AZ order."""
    nat_gateways: list[aws.ec2.NatGateway]
    """One per AZ, or one."""
    endpoint_security_group: aws.ec2.SecurityGroup
    """Guards the interface endpoints: HTTPS from inside the VPC only."""
    flow_log_group: aws.cloudwatch.LogGroup
    """Where VPC flow logs go."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:network:Network", name, None, opts)
        _validate(name, args)
        self.azs = args.azs
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        tag = args.naming.name

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            aws.ec2.VpcArgs(
                cidr_block=args.cidr, enable_dns_support=True, enable_dns_hostnames=True, tags={"Name": tag("vpc")}
            ),
            opts=child,
        )
        self.vpc_id = self.vpc.id
        # The default security group is attached to anything launched without one: leave it no rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            aws.ec2.DefaultSecurityGroupArgs(
                vpc_id=self.vpc.id, ingress=[], egress=[], tags={"Name": tag("default-closed")}
            ),
            opts=child,
        )

        self._build_subnets(name, args, child)
        self._build_routing(name, args, child)
        self._build_endpoints(name, args, child)
        self._build_flow_logs(name, args, child)

        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in self.private_subnets.values()])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in self.public_subnets.values()])
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "azs": list(self.azs),
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
                "natGatewayIds": [n.id for n in self.nat_gateways],
                "endpointSecurityGroupId": self.endpoint_security_group.id,
                "flowLogGroupName": self.flow_log_group.name,
            }
        )

    def _build_subnets(self, name: str, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"} if args.cluster_name else {}
        self.public_subnets, self.private_subnets = {}, {}
        for az, public_cidr, private_cidr in zip(args.azs, args.public_subnets, args.private_subnets, strict=True):
            tiers = (
                ("public", public_cidr, "kubernetes.io/role/elb", self.public_subnets),
                ("private", private_cidr, "kubernetes.io/role/internal-elb", self.private_subnets),
            )
            for tier, cidr, lb_role_tag, subnets in tiers:
                subnets[az] = aws.ec2.Subnet(
                    f"{name}-{tier}-{az}",
                    aws.ec2.SubnetArgs(
                        vpc_id=self.vpc.id,
                        availability_zone=az,
                        cidr_block=cidr,
                        # Nothing gets a public IP by accident: load balancers and NAT gateways bring their own.
                        map_public_ip_on_launch=False,
                        tags={"Name": args.naming.name(tier, az), "tier": tier, lb_role_tag: "1", **cluster_tag},
                    ),
                    opts=child,
                )

    def _build_routing(self, name: str, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        igw = aws.ec2.InternetGateway(
            f"{name}-igw",
            aws.ec2.InternetGatewayArgs(vpc_id=self.vpc.id, tags={"Name": args.naming.name("igw")}),
            opts=child,
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            aws.ec2.RouteTableArgs(vpc_id=self.vpc.id, tags={"Name": args.naming.name("public")}),
            opts=child,
        )
        aws.ec2.Route(
            f"{name}-public-default",
            aws.ec2.RouteArgs(route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0", gateway_id=igw.id),
            opts=child,
        )
        for az, subnet in self.public_subnets.items():
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}",
                aws.ec2.RouteTableAssociationArgs(route_table_id=public_rt.id, subnet_id=subnet.id),
                opts=child,
            )

        nat_azs = args.azs if args.nat_gateways is NatGatewayMode.PER_AZ else args.azs[:1]
        nat_by_az: dict[str, aws.ec2.NatGateway] = {}
        for az in nat_azs:
            eip = aws.ec2.Eip(
                f"{name}-nat-{az}",
                aws.ec2.EipArgs(domain="vpc", tags={"Name": args.naming.name("nat", az)}),
                opts=child,
            )
            nat_by_az[az] = aws.ec2.NatGateway(
                f"{name}-nat-{az}",
                aws.ec2.NatGatewayArgs(
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[az].id,
                    connectivity_type="public",
                    tags={"Name": args.naming.name("nat", az)},
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
        self.nat_gateways = list(nat_by_az.values())

        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for az, subnet in self.private_subnets.items():
            nat = nat_by_az.get(az, self.nat_gateways[0])
            rt = aws.ec2.RouteTable(
                f"{name}-private-{az}",
                aws.ec2.RouteTableArgs(vpc_id=self.vpc.id, tags={"Name": args.naming.name("private", az)}),
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-private-{az}-default",
                aws.ec2.RouteArgs(route_table_id=rt.id, destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{az}",
                aws.ec2.RouteTableAssociationArgs(route_table_id=rt.id, subnet_id=subnet.id),
                opts=child,
            )
            self.private_route_tables.append(rt)

    def _build_endpoints(self, name: str, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            aws.ec2.VpcEndpointArgs(
                vpc_id=self.vpc.id,
                vpc_endpoint_type="Gateway",
                service_name=f"com.amazonaws.{args.env.region}.s3",
                route_table_ids=[rt.id for rt in self.private_route_tables],
                tags={"Name": args.naming.name("s3")},
            ),
            opts=child,
        )
        self.endpoint_security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            aws.ec2.SecurityGroupArgs(
                vpc_id=self.vpc.id,
                description="HTTPS to AWS interface endpoints from inside the VPC",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=[args.cidr],
                        description="HTTPS from the VPC",
                    )
                ],
                egress=[],
                tags={"Name": args.naming.name("endpoints")},
            ),
            opts=child,
        )
        private_ids = [s.id for s in self.private_subnets.values()]
        for service in args.interface_endpoints:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                aws.ec2.VpcEndpointArgs(
                    vpc_id=self.vpc.id,
                    vpc_endpoint_type="Interface",
                    service_name=f"com.amazonaws.{args.env.region}.{service}",
                    subnet_ids=private_ids,
                    security_group_ids=[self.endpoint_security_group.id],
                    private_dns_enabled=True,
                    tags={"Name": args.naming.name(service.replace(".", "-"))},
                ),
                opts=child,
            )

    def _build_flow_logs(self, name: str, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        group_name = args.naming.log_group("vpc", "flow-logs")
        self.flow_log_group = encrypted_log_group(
            f"{name}-flow-logs",
            log_group_name=group_name,
            retention_days=args.flow_log_retention_days,
            kms_key_arn=args.log_kms_key_arn,
            parent=self,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            aws.iam.RoleArgs(
                description="Lets VPC flow logs deliver to their log group",
                assume_role_policy=iam.assume_role_policy(
                    "vpc-flow-logs", args.env, source_arn=args.env.arn("ec2", "vpc-flow-log/*")
                ),
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            aws.iam.RolePolicyArgs(
                role=role.id,
                policy=iam.document(
                    iam.statement(
                        "DeliverFlowLogs",
                        [
                            "logs:CreateLogStream",
                            "logs:DescribeLogGroups",
                            "logs:DescribeLogStreams",
                            "logs:PutLogEvents",
                        ],
                        # Written from the group's fixed name rather than its computed ARN, so the document is
                        # known in a preview and the policy pack can read it.
                        [
                            args.env.arn("logs", f"log-group:{group_name}"),
                            args.env.arn("logs", f"log-group:{group_name}:*"),
                        ],
                    )
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.flow_log_group]),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            aws.ec2.FlowLogArgs(
                vpc_id=self.vpc.id,
                traffic_type=args.flow_log_traffic,
                log_destination_type="cloud-watch-logs",
                log_destination=self.flow_log_group.arn,
                iam_role_arn=role.arn,
                max_aggregation_interval=60,
                tags={"Name": args.naming.name("flow-log")},
            ),
            opts=child,
        )


def _validate(name: str, args: NetworkArgs) -> None:
    checker = Checker(f"Network {name}")
    checker.check("azs", args.azs, lambda v: len(v) >= 2 and len(set(v)) == len(v), "at least 2 distinct AZs")
    try:
        vpc = ipaddress.IPv4Network(args.cidr)
    except ValueError:
        checker.check("cidr", args.cidr, lambda _: False, "an IPv4 CIDR")
        checker.done()
        return
    for field, cidrs in (("public_subnets", args.public_subnets), ("private_subnets", args.private_subnets)):
        checker.check(field, cidrs, lambda v: len(v) == len(args.azs), f"one CIDR per AZ ({len(args.azs)})")
        checker.check(
            field, cidrs, lambda v: all(ipaddress.IPv4Network(c).subnet_of(vpc) for c in v), f"subnets inside {vpc}"
        )
    checker.check(
        "flow_log_traffic", args.flow_log_traffic, lambda v: v in ("ALL", "ACCEPT", "REJECT"), "ALL, ACCEPT or REJECT"
    )
    checker.done()
