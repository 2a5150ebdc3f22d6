"""The EKS cluster that hosts the model servers, the gateway and the mesh.

Private API endpoint, plus public access only from the configured deployer CIDRs (none means private
only: deployment runners must then sit inside the VPC). Secrets are envelope-encrypted with a rotating
KMS key; every control-plane log type goes to a log group created beforehand with retention and
encryption. A small multi-AZ system node group runs cluster services; core add-ons are pinned.

Workload roles use EKS Pod Identity (``workload_role``): the trust policy names
``pods.eks.amazonaws.com`` and this cluster's ARN, which is known before deployment, so the policy pack
can read it in a preview. The cluster's OIDC provider is still created for tools that need IAM roles for
service accounts (IRSA).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import iam
from .aws_env import AwsEnvironment
from .kms_key import EncryptionKey, EncryptionKeyArgs
from .log_group import encrypted_log_group
from .naming import Naming
from .validation import Checker

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
#: Every node (system and GPU) gets these; SSM instead of SSH for break-glass access.
NODE_MANAGED_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)


@dataclass(frozen=True)
class NodeGroupSize:
    instance_types: tuple[str, ...]
    """Instance types, from the catalog."""
    min_size: int
    desired_size: int
    max_size: int


@dataclass(frozen=True)
class EksClusterArgs:
    naming: Naming
    """Cluster name (``naming.cluster_name``) and other names."""
    env: AwsEnvironment
    """Account and region."""
    version: str
    """Kubernetes version, pinned (e.g. ``1.32``)."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets of the control-plane ENIs and the system nodes: every AZ."""
    log_kms_key_arn: pulumi.Input[str]
    """Key of the control-plane log group (its policy allows the logs service)."""
    addon_versions: dict[str, str]
    """Pinned versions of vpc-cni, coredns, kube-proxy, aws-ebs-csi-driver, eks-pod-identity-agent."""
    system_nodes: NodeGroupSize
    """The system node group."""
    public_access_cidrs: tuple[str, ...] = ()
    """Deployer CIDRs allowed to the public endpoint; empty means a private endpoint only (default)."""
    log_retention_days: int = 90
    """Control-plane log retention."""
    kms_deletion_window_days: int = 30
    protect: bool = False
    """``protect`` the cluster and its secrets key."""
    admin_role_arns: tuple[str, ...] = field(default_factory=tuple)
    """IAM roles granted cluster-admin through access entries (e.g. the deployment role)."""


REQUIRED_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent")


class EksCluster(pulumi.ComponentResource):
    """The cluster, its node role, system node group, add-ons and a Kubernetes provider for it."""

    cluster: aws.eks.Cluster
    name: str
    """The cluster name (known before deployment)."""
    arn: str
    """The cluster ARN, written from the name."""
    node_role: aws.iam.Role
    """Role of every managed node (system and GPU)."""
    oidc_provider: aws.iam.OpenIdConnectProvider
    security_group_id: pulumi.Output[str]
    """The cluster security group EKS creates; node launch templates keep it."""
    provider: k8s.Provider
    """Kubernetes provider for resources inside the cluster."""

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:eks:EksCluster", name, None, opts)
        _validate(name, args)
        env, naming = args.env, args.naming
        self.name = naming.cluster_name
        self.arn = env.arn("eks", f"cluster/{self.name}")
        self._env = env
        child = pulumi.ResourceOptions(parent=self)

        secrets_key = EncryptionKey(
            f"{name}-secrets-key",
            EncryptionKeyArgs(
                description=f"{naming.prefix}: EKS secrets envelope encryption",
                env=env,
                alias=naming.name("eks-secrets"),
                deletion_window_days=args.kms_deletion_window_days,
                protect=args.protect,
            ),
            opts=child,
        )
        # Created before the cluster so EKS writes into an encrypted group with retention, not its own.
        log_group = encrypted_log_group(
            f"{name}-control-plane",
            log_group_name=f"/aws/eks/{self.name}/cluster",
            retention_days=args.log_retention_days,
            kms_key_arn=args.log_kms_key_arn,
            parent=self,
        )

        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            aws.iam.RoleArgs(
                description=f"EKS control plane of {self.name}",
                assume_role_policy=iam.document(
                    iam.statement(
                        "AssumeFromEks",
                        ["sts:AssumeRole", "sts:TagSession"],
                        principal={"Service": "eks.amazonaws.com"},
                        conditions={"StringEquals": {"aws:SourceAccount": env.account_id}},
                    )
                ),
            ),
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            aws.iam.RolePolicyAttachmentArgs(
                role=cluster_role.name, policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
            ),
            opts=child,
        )

        public = bool(args.public_access_cidrs)
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster",
            aws.eks.ClusterArgs(
                name=self.name,
                version=args.version,
                role_arn=cluster_role.arn,
                vpc_config=aws.eks.ClusterVpcConfigArgs(
                    subnet_ids=args.private_subnet_ids,
                    endpoint_private_access=True,
                    endpoint_public_access=public,
                    public_access_cidrs=list(args.public_access_cidrs) if public else None,
                ),
                encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                    resources=["secrets"], provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn)
                ),
                enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
                access_config=aws.eks.ClusterAccessConfigArgs(
                    authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
                ),
                # Add-ons are managed below, pinned; EKS's unmanaged defaults would drift from them.
                bootstrap_self_managed_addons=False,
                upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
                deletion_protection=args.protect or None,
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=[log_group, attachment]),
        )
        self.security_group_id = self.cluster.vpc_config.cluster_security_group_id

        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            aws.iam.OpenIdConnectProviderArgs(
                url=self.cluster.identities[0].oidcs[0].issuer, client_id_lists=["sts.amazonaws.com"]
            ),
            opts=child,
        )

        for index, role_arn in enumerate(args.admin_role_arns):
            aws.eks.AccessEntry(
                f"{name}-admin-{index}",
                aws.eks.AccessEntryArgs(cluster_name=self.cluster.name, principal_arn=role_arn, type="STANDARD"),
                opts=child,
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}",
                aws.eks.AccessPolicyAssociationArgs(
                    cluster_name=self.cluster.name,
                    principal_arn=role_arn,
                    policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                ),
                opts=child,
            )

        self.node_role = aws.iam.Role(
            f"{name}-node",
            aws.iam.RoleArgs(
                description=f"Managed nodes of {self.name}",
                assume_role_policy=iam.document(
                    iam.statement("AssumeFromEc2", ["sts:AssumeRole"], principal={"Service": "ec2.amazonaws.com"})
                ),
                managed_policy_arns=list(NODE_MANAGED_POLICIES),
            ),
            opts=child,
        )

        self._addons(name, args)
        self.system_nodes = self._system_nodes(name, args)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            k8s.ProviderArgs(kubeconfig=kubeconfig(self.cluster, env.region), enable_server_side_apply=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_nodes]),
        )

        self.register_outputs(
            {
                "name": self.name,
                "arn": self.arn,
                "endpoint": self.cluster.endpoint,
                "securityGroupId": self.security_group_id,
                "nodeRoleArn": self.node_role.arn,
                "oidcProviderArn": self.oidc_provider.arn,
            }
        )

    def workload_role(
        self,
        name: str,
        *,
        namespace: str,
        service_account: str,
        statements: Sequence[dict[str, Any]] = (),
        managed_policy_arns: Sequence[str] = (),
        parent: pulumi.Resource | None = None,
    ) -> aws.iam.Role:
        """An IAM role for one Kubernetes service account, through an EKS Pod Identity association."""
        owner = parent or self
        role = aws.iam.Role(
            name,
            aws.iam.RoleArgs(
                description=f"{namespace}/{service_account} in {self.name}",
                assume_role_policy=iam.document(
                    iam.statement(
                        "AssumeFromPodIdentity",
                        ["sts:AssumeRole", "sts:TagSession"],
                        principal={"Service": "pods.eks.amazonaws.com"},
                        conditions={
                            "StringEquals": {"aws:SourceAccount": self._env.account_id},
                            "ArnEquals": {"aws:SourceArn": self.arn},
                        },
                    )
                ),
                managed_policy_arns=list(managed_policy_arns) or None,
            ),
            opts=pulumi.ResourceOptions(parent=owner),
        )
        if statements:
            aws.iam.RolePolicy(
                name,
                aws.iam.RolePolicyArgs(role=role.id, policy=iam.document(*statements)),
                opts=pulumi.ResourceOptions(parent=owner),
            )
        aws.eks.PodIdentityAssociation(
            name,
            aws.eks.PodIdentityAssociationArgs(
                cluster_name=self.cluster.name, namespace=namespace, service_account=service_account, role_arn=role.arn
            ),
            opts=pulumi.ResourceOptions(parent=owner),
        )
        return role

    def _addons(self, name: str, args: EksClusterArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        pod_identity = aws.eks.Addon(
            f"{name}-eks-pod-identity-agent",
            aws.eks.AddonArgs(
                cluster_name=self.cluster.name,
                addon_name="eks-pod-identity-agent",
                addon_version=args.addon_versions["eks-pod-identity-agent"],
                resolve_conflicts_on_update="OVERWRITE",
            ),
            opts=child,
        )
        cni_role = self.workload_role(
            f"{name}-vpc-cni",
            namespace="kube-system",
            service_account="aws-node",
            managed_policy_arns=["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"],
        )
        ebs_role = self.workload_role(
            f"{name}-ebs-csi",
            namespace="kube-system",
            service_account="ebs-csi-controller-sa",
            managed_policy_arns=["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"],
        )
        roles = {"vpc-cni": cni_role, "aws-ebs-csi-driver": ebs_role}
        for addon in ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"):
            aws.eks.Addon(
                f"{name}-{addon}",
                aws.eks.AddonArgs(
                    cluster_name=self.cluster.name,
                    addon_name=addon,
                    addon_version=args.addon_versions[addon],
                    resolve_conflicts_on_update="OVERWRITE",
                    service_account_role_arn=roles[addon].arn if addon in roles else None,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[pod_identity]),
            )

    def _system_nodes(self, name: str, args: EksClusterArgs) -> aws.eks.NodeGroup:
        size = args.system_nodes
        template = node_launch_template(
            f"{name}-system", self, root_volume_gib=50, data_volume_gib=None, security_group_id=self.security_group_id
        )
        return aws.eks.NodeGroup(
            f"{name}-system",
            aws.eks.NodeGroupArgs(
                cluster_name=self.cluster.name,
                node_group_name=args.naming.name("system"),
                node_role_arn=self.node_role.arn,
                subnet_ids=args.private_subnet_ids,
                ami_type="AL2023_x86_64_STANDARD",
                capacity_type="ON_DEMAND",
                instance_types=list(size.instance_types),
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=size.min_size, desired_size=size.desired_size, max_size=size.max_size
                ),
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
                launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                    id=template.id, version=template.latest_version.apply(str)
                ),
                labels={"agent-infra/role": "system"},
                node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
            ),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
        )


def node_launch_template(
    name: str,
    parent: pulumi.Resource,
    *,
    root_volume_gib: int,
    data_volume_gib: int | None,
    security_group_id: pulumi.Input[str],
) -> aws.ec2.LaunchTemplate:
    """Launch template for managed nodes: IMDSv2 only with hop limit 1, encrypted gp3 volumes.

    Hop limit 1 keeps pods (one network hop further) away from the node's instance credentials: they use
    Pod Identity instead. Host-network daemons (VPC CNI) still reach the metadata service. The cluster
    security group is kept explicitly, since naming security groups in a launch template replaces
    EKS's default. ``data_volume_gib`` adds Bottlerocket's second volume (/dev/xvdb), where it keeps
    container images.
    """
    volumes = [aws.ec2.LaunchTemplateBlockDeviceMappingArgs(device_name="/dev/xvda", ebs=_gp3(root_volume_gib))]
    if data_volume_gib:
        volumes.append(aws.ec2.LaunchTemplateBlockDeviceMappingArgs(device_name="/dev/xvdb", ebs=_gp3(data_volume_gib)))
    return aws.ec2.LaunchTemplate(
        name,
        aws.ec2.LaunchTemplateArgs(
            description=f"EKS managed nodes: {name}",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=volumes,
            vpc_security_group_ids=[security_group_id],
            monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=True),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _gp3(size_gib: int) -> aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs:
    return aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
        volume_size=size_gib, volume_type="gp3", encrypted="true", delete_on_termination="true"
    )


def kubeconfig(cluster: aws.eks.Cluster, region: str) -> pulumi.Output[str]:
    """A kubeconfig that authenticates with ``aws eks get-token`` (no long-lived credentials in state)."""
    return pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
        lambda parts: json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": parts[0],
                "clusters": [
                    {"name": parts[0], "cluster": {"server": parts[1], "certificate-authority-data": parts[2]}}
                ],
                "contexts": [{"name": parts[0], "context": {"cluster": parts[0], "user": parts[0]}}],
                "users": [
                    {
                        "name": parts[0],
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1beta1",
                                "command": "aws",
                                "args": ["eks", "get-token", "--cluster-name", parts[0], "--region", region],
                            }
                        },
                    }
                ],
            }
        )
    )


def _validate(name: str, args: EksClusterArgs) -> None:
    import ipaddress

    checker = Checker(f"EksCluster {name}")
    checker.check(
        "version",
        args.version,
        lambda v: v.count(".") == 1 and all(p.isdigit() for p in v.split(".")),
        "a pinned Kubernetes minor version such as 1.32",
    )
    missing = [a for a in REQUIRED_ADDONS if not args.addon_versions.get(a)]
    checker.check(
        "addon_versions",
        args.addon_versions,
        lambda _: not missing,
        f"a pinned version for each of {', '.join(REQUIRED_ADDONS)} (missing {', '.join(missing)})",
    )

    def cidrs_ok(cidrs: tuple[str, ...]) -> bool:
        try:
            nets = [ipaddress.ip_network(c) for c in cidrs]
        except ValueError:
            return False
        return all(n.prefixlen > 0 for n in nets)

    checker.check(
        "public_access_cidrs",
        args.public_access_cidrs,
        cidrs_ok,
        "deployer CIDRs (never 0.0.0.0/0; an empty list means a private endpoint only)",
    )
    size = args.system_nodes
    checker.check(
        "system_nodes",
        size,
        lambda s: 1 <= s.min_size <= s.desired_size <= s.max_size,
        "1 <= min_size <= desired_size <= max_size",
    )
    checker.done()
