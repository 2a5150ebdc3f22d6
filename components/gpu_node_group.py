"""GPU capacity for one model pool: one EKS managed node group per availability zone.

A node group that spans several AZs fails to create or scale when one zone has no capacity of the GPU
type (the most reported failure in the field, aws/containers-roadmap#2204). One group per AZ isolates
that: the others keep scaling, and the Cluster Autoscaler (``--balance-similar-node-groups``) keeps them
even. Nodes are tainted ``nvidia.com/gpu=true:NoSchedule`` and labelled with the pool, so only the
model servers that tolerate and select them land there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .eks_cluster import EksCluster, node_launch_template
from .naming import Naming
from .validation import Checker

GPU_TAINT_KEY = "nvidia.com/gpu"
POOL_LABEL = "agent-infra/model-pool"
ACCELERATOR_LABEL = "agent-infra/accelerator"
#: Selected by the NVIDIA device plugin's default affinity and by the DCGM exporter.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"


class GpuAmi(enum.Enum):
    """EKS-optimised GPU AMI families."""

    AL2023_NVIDIA = "AL2023_x86_64_NVIDIA"
    """Amazon Linux 2023 with the NVIDIA driver; needs the NVIDIA device plugin (installed as a Helm chart)."""
    BOTTLEROCKET_NVIDIA = "BOTTLEROCKET_x86_64_NVIDIA"
    """Bottlerocket with the NVIDIA driver and its own device plugin; keeps images on a second volume."""


class Capacity(enum.Enum):
    ON_DEMAND = "ON_DEMAND"
    SPOT = "SPOT"


@dataclass(frozen=True)
class GpuNodePoolArgs:
    naming: Naming
    cluster: EksCluster
    """The cluster (name, node role and security group)."""
    pool: str
    """Model pool name; nodes carry it in the ``agent-infra/model-pool`` label."""
    instance_type: str
    """GPU instance type from the catalog."""
    gpu_model: str
    """GPU model from the catalog (e.g. L40S), put in the ``agent-infra/accelerator`` label."""
    subnets_by_az: dict[str, pulumi.Input[str]]
    """One private subnet per AZ the pool spans."""
    min_per_az: int = 0
    desired_per_az: int = 0
    max_per_az: int = 1
    ami: GpuAmi = GpuAmi.AL2023_NVIDIA
    capacity: Capacity = Capacity.ON_DEMAND
    root_volume_gib: int = 200
    """Root volume: on AL2023 it holds images and the model cache, size it for both (default 200)."""
    data_volume_gib: int = 200
    """Bottlerocket's data volume for images and the model cache (ignored on AL2023; default 200)."""


class GpuNodePool(pulumi.ComponentResource):
    """Per-AZ managed node groups of one GPU instance type, tainted and labelled for one model pool."""

    node_groups: dict[str, aws.eks.NodeGroup]
    """The node group of each AZ."""
    labels: dict[str, str]
    """Labels model servers select on."""

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:eks:GpuNodePool", name, None, opts)
        _validate(name, args)
        bottlerocket = args.ami is GpuAmi.BOTTLEROCKET_NVIDIA
        template = node_launch_template(
            f"{name}-nodes",
            self,
            root_volume_gib=8 if bottlerocket else args.root_volume_gib,
            data_volume_gib=args.data_volume_gib if bottlerocket else None,
            security_group_id=args.cluster.security_group_id,
        )
        self.labels = {
            POOL_LABEL: args.pool,
            ACCELERATOR_LABEL: args.gpu_model.lower(),
            GPU_PRESENT_LABEL: "true",
            "agent-infra/ami": "bottlerocket" if bottlerocket else "al2023",
        }

        self.node_groups = {}
        for az, subnet_id in args.subnets_by_az.items():
            self.node_groups[az] = aws.eks.NodeGroup(
                f"{name}-{az}",
                aws.eks.NodeGroupArgs(
                    cluster_name=args.cluster.cluster.name,
                    node_group_name=args.naming.name("gpu", args.pool, az),
                    node_role_arn=args.cluster.node_role.arn,
                    subnet_ids=[subnet_id],
                    ami_type=args.ami.value,
                    capacity_type=args.capacity.value,
                    instance_types=[args.instance_type],
                    scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                        min_size=args.min_per_az, desired_size=args.desired_per_az, max_size=args.max_per_az
                    ),
                    # Replace GPU nodes one at a time: each holds a model replica that takes minutes to load.
                    update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                    launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                        id=template.id, version=template.latest_version.apply(str)
                    ),
                    labels=self.labels,
                    taints=[aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")],
                    node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
                ),
                # The autoscaler owns desired size after creation.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
            )
        self.register_outputs(
            {"nodeGroups": {az: g.node_group_name for az, g in self.node_groups.items()}, "labels": self.labels}
        )


def _validate(name: str, args: GpuNodePoolArgs) -> None:
    checker = Checker(f"GpuNodePool {name}")
    checker.check("subnets_by_az", args.subnets_by_az, lambda s: len(s) >= 1, "at least one AZ")
    checker.check(
        "min_per_az",
        (args.min_per_az, args.desired_per_az, args.max_per_az),
        lambda v: 0 <= v[0] <= v[1] <= v[2] and v[2] >= 1,
        "0 <= min <= desired <= max, max >= 1",
    )
    checker.check("root_volume_gib", args.root_volume_gib, lambda v: 20 <= v <= 16384, "20 to 16384 GiB")
    checker.check("data_volume_gib", args.data_volume_gib, lambda v: 20 <= v <= 16384, "20 to 16384 GiB")
    checker.done()
