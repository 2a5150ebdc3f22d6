"""Compute rules: EKS clusters and GPU node groups, EC2 launch templates and instances, auto-scaling groups,
a GPU-count ceiling per environment, and the vLLM sizing check."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from .catalog import load_catalog
from .framework import Reporter, Rule, attached, of_type, present, resource_rule, stack_rule

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
GROUP = "aws:autoscaling/group:Group"
SCALING_POLICY = "aws:autoscaling/policy:Policy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def is_gpu_node_group(group: PolicyResource) -> bool:
    return "NVIDIA" in str(group.props.get("amiType") or "")


ENDPOINT = Rule(
    id="AI-EKS-001",
    name="eks-endpoint-restricted",
    description="EKS API endpoints are private, with public access only from named deployer CIDRs.",
    severity=Severity.CRITICAL,
    fix="Keep endpoint_private_access on and set agent-infra:eks.public_access_cidrs to your runners' egress "
    "CIDRs, or [] for a private endpoint only.",
    resource_types=(CLUSTER,),
    checkov=("CKV_AWS_38", "CKV_AWS_39"),
    cdk_nag=("AwsSolutions-EKS1",),
)


@resource_rule(ENDPOINT)
def endpoint(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    vpc = args.props.get("vpcConfig") or {}
    if vpc.get("endpointPrivateAccess") is not True:
        report(f"cluster {args.name!r} has no private endpoint.")
    if vpc.get("endpointPublicAccess") is not False:
        cidrs = list(vpc.get("publicAccessCidrs") or [])
        if not cidrs or any(c in ("0.0.0.0/0", "::/0") for c in cidrs):
            report(f"cluster {args.name!r} has a public endpoint open to {cidrs or 'everyone (the default)'}.")


SECRETS = Rule(
    id="AI-EKS-002",
    name="eks-secrets-encryption",
    description="EKS clusters envelope-encrypt Kubernetes secrets with a KMS key.",
    severity=Severity.HIGH,
    fix="Set encryption_config with resources ['secrets'] and a rotating key.",
    resource_types=(CLUSTER,),
    checkov=("CKV_AWS_58",),
    cdk_nag=("AwsSolutions-EKS1",),
)


@resource_rule(SECRETS)
def secrets(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    config = args.props.get("encryptionConfig") or {}
    if "secrets" not in list(config.get("resources") or []) or not present(config.get("provider") or {}, "keyArn"):
        report(f"cluster {args.name!r} does not encrypt secrets with a KMS key.")


LOGS = Rule(
    id="AI-EKS-003",
    name="eks-control-plane-logs",
    description="EKS clusters send every control-plane log type to CloudWatch.",
    severity=Severity.MEDIUM,
    fix=f"Enable all of {', '.join(LOG_TYPES)} in enabled_cluster_log_types.",
    resource_types=(CLUSTER,),
    checkov=("CKV_AWS_37",),
    cdk_nag=("AwsSolutions-EKS2",),
)


@resource_rule(LOGS)
def logs(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    missing = sorted(set(LOG_TYPES) - set(args.props.get("enabledClusterLogTypes") or []))
    if missing:
        report(f"cluster {args.name!r} does not log {', '.join(missing)}.")


GPU_SPREAD = Rule(
    id="AI-EKS-004",
    name="gpu-capacity-multi-az",
    description="Each model pool's GPU node groups span at least the configured number of AZs.",
    severity=Severity.HIGH,
    fix="List at least minAzs zones for the model pool (agent-infra:model_pools[].azs); one node group is "
    "created per AZ so a GPU shortage in one zone cannot block the others.",
    resource_types=(NODE_GROUP, SUBNET),
    config={"minAzs": {"type": "integer", "minimum": 1, "default": 2}},
)


@stack_rule(GPU_SPREAD)
def gpu_spread(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    pools: dict[str, set[str]] = defaultdict(set)
    owners: dict[str, PolicyResource] = {}
    for group in of_type(resources, NODE_GROUP):
        if not is_gpu_node_group(group):
            continue
        owner = group.parent or group
        owners[owner.urn] = owner
        for subnet in group.property_dependencies.get("subnetIds", []):
            pools[owner.urn].add(str(subnet.props.get("availabilityZone")))
    for urn, zones in sorted(pools.items()):
        if len(zones) < int(cfg["minAzs"]):
            report(
                f"GPU pool {owners[urn].name!r} spans {len(zones)} AZ(s) ({', '.join(sorted(zones))}); "
                f"expected at least {int(cfg['minAzs'])}.",
                urn,
            )


GPU_TAINT = Rule(
    id="AI-EKS-005",
    name="gpu-node-groups-tainted",
    description="GPU node groups carry the nvidia.com/gpu NoSchedule taint, so only GPU workloads land there.",
    severity=Severity.MEDIUM,
    fix="Add the taint nvidia.com/gpu=true:NO_SCHEDULE (components.gpu_node_group does).",
    resource_types=(NODE_GROUP,),
)


@resource_rule(GPU_TAINT)
def gpu_taint(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    if "NVIDIA" not in str(args.props.get("amiType") or ""):
        return
    taints = [(t.get("key"), t.get("effect")) for t in args.props.get("taints") or []]
    if ("nvidia.com/gpu", "NO_SCHEDULE") not in taints:
        report(f"GPU node group {args.name!r} is not tainted nvidia.com/gpu:NO_SCHEDULE.")


IMDS = Rule(
    id="AI-EC2-001",
    name="imdsv2-required",
    description="Launch templates and instances require IMDSv2 session tokens.",
    severity=Severity.HIGH,
    fix="Set metadata_options http_tokens='required' (and a hop limit of 1 for nodes).",
    resource_types=(LAUNCH_TEMPLATE, INSTANCE),
    checkov=("CKV_AWS_79", "CKV_AWS_341"),
)


@resource_rule(IMDS)
def imds(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    if (args.props.get("metadataOptions") or {}).get("httpTokens") != "required":
        report(f"{args.name!r} does not require IMDSv2.")


EBS = Rule(
    id="AI-EC2-002",
    name="ebs-encrypted",
    description="Volumes of launch templates and instances are encrypted.",
    severity=Severity.HIGH,
    fix="Set encrypted on every block device mapping (and the root block device).",
    resource_types=(LAUNCH_TEMPLATE, INSTANCE),
    checkov=("CKV_AWS_8",),
    cdk_nag=("AwsSolutions-EC26",),
)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


@resource_rule(EBS)
def ebs(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    if args.resource_type == LAUNCH_TEMPLATE:
        volumes = [
            (m.get("deviceName"), (m.get("ebs") or {}).get("encrypted"))
            for m in args.props.get("blockDeviceMappings") or []
            if m.get("ebs")
        ]
    else:
        volumes = [("root", (args.props.get("rootBlockDevice") or {}).get("encrypted"))]
    for device, encrypted in volumes:
        if not _truthy(encrypted):
            report(f"{args.name!r} has an unencrypted volume ({device}).")


PUBLIC_IP = Rule(
    id="AI-EC2-003",
    name="no-public-ip",
    description="Launch templates and instances never give workers a public IP address.",
    severity=Severity.HIGH,
    fix="Set associate_public_ip_address false and run workers in private subnets.",
    resource_types=(LAUNCH_TEMPLATE, INSTANCE),
    checkov=("CKV_AWS_88",),
)


@resource_rule(PUBLIC_IP)
def public_ip(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    if args.resource_type == LAUNCH_TEMPLATE:
        flags = [n.get("associatePublicIpAddress") for n in args.props.get("networkInterfaces") or []]
    else:
        flags = [args.props.get("associatePublicIpAddress")]
    if any(_truthy(f) for f in flags):
        report(f"{args.name!r} gives instances a public IP address.")


ASG_AZS = Rule(
    id="AI-ASG-001",
    name="asg-multi-az",
    description="Auto-scaling groups span subnets in at least the configured number of AZs.",
    severity=Severity.HIGH,
    fix="Give the group every private subnet (one per AZ).",
    resource_types=(GROUP, SUBNET),
    cdk_nag=("AwsSolutions-AS3",),
    config={"minAzs": {"type": "integer", "minimum": 1, "default": 2}},
)


@stack_rule(ASG_AZS)
def asg_azs(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    # Subnet ids are unknown in a new stack's preview; the subnets the group was given, and their AZs, are not.
    for group in of_type(resources, GROUP):
        zones = {
            str(s.props.get("availabilityZone"))
            for s in group.property_dependencies.get("vpcZoneIdentifiers", [])
            if s.resource_type == SUBNET
        }
        if len(zones) < int(cfg["minAzs"]):
            report(f"group {group.name!r} spans {len(zones)} AZ(s); expected at least {int(cfg['minAzs'])}.", group.urn)


ASG_MIN = Rule(
    id="AI-ASG-002",
    name="asg-min-capacity",
    description="Auto-scaling groups keep at least the environment's minimum capacity (2 in prod).",
    severity=Severity.MEDIUM,
    fix="Raise scaling_policy.min_instances to the rule's minCapacity setting.",
    resource_types=(GROUP,),
    config={"minCapacity": {"type": "integer", "minimum": 0, "default": 2}},
)


@resource_rule(ASG_MIN)
def asg_min(args: ResourceValidationArgs, report: Reporter, cfg: dict[str, Any]) -> None:
    if int(args.props.get("minSize") or 0) < int(cfg["minCapacity"]):
        report(
            f"group {args.name!r} may shrink to {int(args.props.get('minSize') or 0)}; expected at least "
            f"{int(cfg['minCapacity'])}."
        )


ASG_METRICS = Rule(
    id="AI-ASG-003",
    name="asg-group-metrics",
    description="Auto-scaling groups with scaling policies publish group metrics (GroupInServiceInstances).",
    severity=Severity.MEDIUM,
    fix="Enable group metrics collection; without it GroupInServiceInstances, which backlog-per-instance "
    "scaling divides by, is never published.",
    resource_types=(GROUP, SCALING_POLICY),
    cdk_nag=("AwsSolutions-AS1",),
)


@stack_rule(ASG_METRICS)
def asg_metrics(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    for group in of_type(resources, GROUP):
        if not attached(resources, SCALING_POLICY, "autoscalingGroupName", group):
            continue
        if "GroupInServiceInstances" not in list(group.props.get("enabledMetrics") or []):
            report(
                f"group {group.name!r} has scaling policies but does not publish GroupInServiceInstances.", group.urn
            )


GPU_CEILING = Rule(
    id="AI-COST-001",
    name="gpu-count-ceiling",
    description="The environment's GPU node groups can never grow past its GPU ceiling.",
    severity=Severity.HIGH,
    fix="Lower max_nodes of the model pools, or raise the rule's maxGpus for the environment in a reviewed change.",
    resource_types=(NODE_GROUP,),
    config={"maxGpus": {"type": "integer", "minimum": 0, "default": 64}},
)


@stack_rule(GPU_CEILING)
def gpu_ceiling(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    catalog, total, parts = load_catalog(), 0, []
    for group in of_type(resources, NODE_GROUP):
        types = list(group.props.get("instanceTypes") or [])
        spec = catalog.get(types[0]) if types else None
        if spec is None or not spec.has_gpu:
            continue
        gpus = int((group.props.get("scalingConfig") or {}).get("maxSize") or 0) * spec.gpus
        total += gpus
        parts.append(f"{group.name} {gpus}")
    if total > int(cfg["maxGpus"]):
        report(f"GPU node groups may reach {total} GPUs ({', '.join(parts)}); the ceiling is {int(cfg['maxGpus'])}.")


SIZING = Rule(
    id="AI-SIZE-001",
    name="vllm-model-fits",
    description="Every vLLM Deployment's model fits the GPUs of the node group it is scheduled on.",
    severity=Severity.HIGH,
    fix="Pick a larger GPU instance or tensor-parallel size, or quantize; `agentinfra size` shows the budget "
    "and the instance types and TP sizes that fit.",
    resource_types=(DEPLOYMENT, NODE_GROUP),
)


@stack_rule(SIZING)
def sizing(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    from .sizing import Dtype, SizingInputError, get_model, size

    catalog = load_catalog()
    instance_by_pool: dict[str, str] = {}
    for group in of_type(resources, NODE_GROUP):
        pool = (group.props.get("labels") or {}).get("agent-infra/model-pool")
        types = list(group.props.get("instanceTypes") or [])
        if pool and types:
            instance_by_pool[pool] = types[0]
    for deployment in of_type(resources, DEPLOYMENT):
        template = (deployment.props.get("spec") or {}).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        containers = (template.get("spec") or {}).get("containers") or []
        vllm = [c for c in containers if str(c.get("image", "")).startswith("vllm/vllm-openai")]
        if not vllm:
            continue
        arch = get_model(str(labels.get("agent-infra/model-arch", "")))
        instance = catalog.get(instance_by_pool.get(str(labels.get("agent-infra/model-pool")), ""))
        if arch is None or instance is None:
            report(
                f"vLLM Deployment {deployment.name!r} cannot be sized: it needs the agent-infra/model-arch label "
                "of a model in the sizing table and a GPU node pool.",
                deployment.urn,
            )
            continue
        argv = list(vllm[0].get("args") or [])
        flags = dict(zip(argv[::2], argv[1::2], strict=False))
        try:
            result = size(
                arch,
                dtype=Dtype(flags.get("--quantization", "bf16")),
                tp=int(flags.get("--tensor-parallel-size", 1)),
                gpu_memory_gib=instance.gpu_memory_gib,
                gpus_per_instance=instance.gpus,
                max_model_len=int(flags["--max-model-len"]),
                max_num_seqs=int(flags.get("--max-num-seqs", 256)),
                max_num_batched_tokens=int(flags.get("--max-num-batched-tokens", 8192)),
                gpu_memory_utilization=float(flags.get("--gpu-memory-utilization", 0.9)),
            )
        except (SizingInputError, KeyError, ValueError) as exc:
            report(f"vLLM Deployment {deployment.name!r} cannot be sized: {exc}", deployment.urn)
            continue
        if not result.fits:
            report(f"vLLM Deployment {deployment.name!r}: {' '.join(result.errors)}", deployment.urn)


RULES = [
    endpoint,
    secrets,
    logs,
    gpu_spread,
    gpu_taint,
    imds,
    ebs,
    public_ip,
    asg_azs,
    asg_min,
    asg_metrics,
    gpu_ceiling,
    sizing,
]
