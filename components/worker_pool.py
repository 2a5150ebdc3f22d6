"""An auto-scaling pool of stateless agent workers on EC2, scaled by queue depth, latency, errors and time.

The seed's ``scaling_policy`` block, mapped to what AWS really does:

* ``target_metric: queue_depth`` is target tracking on **backlog per instance**: metric math adding the
  SQS ``ApproximateNumberOfMessagesVisible`` of the pool's queues (dimension ``QueueName`` = the queue's
  *name*) and dividing by the group's ``GroupInServiceInstances`` (published because group metrics are
  enabled), with ``target_value`` as the target. ``cpu_utilization`` uses the predefined average CPU.
* ``scale_up_cooldown``: AWS accepts ``cooldown`` only on simple scaling policies. A new instance is kept
  out of the tracked metric for the group's **default instance warm-up**, set to this value, which is
  what stops target tracking from adding capacity again before the last addition takes load.
* ``scale_down_cooldown``: target tracking may not scale in (``disable_scale_in``); a separate **simple
  scaling** policy removes one instance at a time, with ``cooldown = scale_down_cooldown``, when an alarm
  sees the backlog per instance below half the target for as long as that cooldown.
* ``latency`` (``latency_p95_ms``, beside the seed block): step scaling adds capacity when the agents' p95
  execution time (the metric contract in ``agent_metrics``) is above the target: +1 instance above it,
  +2 above twice it.
* ``error_rate`` (``error_rate_percent``, beside the seed block): the seed scales *down* when errors say
  the pool is resource-constrained downstream (a provider's rate limit). Above the threshold the tracked
  metric reports exactly the target, so target tracking stops adding capacity, the latency scale-out is
  gated off, and the scale-in policy removes instances gently.
* time-based scaling: scheduled actions.

Pools marked interruptible run a mixed-instances policy (on-demand base, capacity-optimised spot above
it); long warm-ups get a warm pool. AWS does not allow a warm pool on a group with a mixed-instances
policy or spot capacity, so the two are exclusive (the settings layer says so with the key named).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from . import agent_metrics as contract
from . import iam
from .alarms import metric_alarm
from .aws_env import AwsEnvironment
from .log_bucket import LogBucket
from .naming import Naming
from .redis_cache import RedisCache
from .task_queues import TaskQueues
from .validation import Checker

#: Amazon Linux 2023's public SSM parameter; resolved by EC2 at launch (``resolve:ssm:``).
DEFAULT_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
GROUP_METRICS = (
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupStandbyInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
)


@dataclass(frozen=True)
class Schedule:
    name: str
    """Scheduled action name."""
    recurrence: str
    """Cron expression, e.g. ``0 20 * * MON-FRI``."""
    min_size: int
    max_size: int
    desired: int | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True)
class SpotCapacity:
    """Mixed instances: an on-demand base, capacity-optimised spot above it."""

    on_demand_base: int = 0
    on_demand_percentage_above_base: int = 0


@dataclass(frozen=True)
class WarmPool:
    """Pre-initialised stopped instances for agents that take long to warm up."""

    min_size: int = 0
    max_prepared: int | None = None


@dataclass(frozen=True)
class WorkerScaling:
    """The seed's scaling block plus the latency and error-rate keys beside it."""

    min_instances: int
    max_instances: int
    target_metric: str
    """``queue_depth`` or ``cpu_utilization``."""
    target_value: float
    scale_up_cooldown: int = 60
    scale_down_cooldown: int = 300
    desired: int | None = None
    latency_p95_ms: int | None = None
    """Add capacity when the agents' p95 execution time exceeds this; None for no latency scaling."""
    error_rate_percent: float | None = None
    """Above this error rate, stop scale-out and scale in gently; None to ignore errors."""


@dataclass(frozen=True)
class WorkerPoolArgs:
    naming: Naming
    env: AwsEnvironment
    pool: str
    """Pool name: the ``Pool`` dimension of its metrics and part of its names."""
    instance_types: tuple[str, ...]
    """Catalog CPU types; the first is the launch template's type."""
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    """The VPC's CIDR (Redis is reached inside it)."""
    subnet_ids: pulumi.Input[Sequence[str]]

    """Private subnets: every AZ."""
    scaling: WorkerScaling
    queues: TaskQueues
    """The queues component; the pool consumes ``consumes`` of them."""
    consumes: tuple[str, ...]
    """Logical queue names (a priority pair by its name) the workers poll."""
    log_bucket: LogBucket | None = None
    """Where agents write their logs, under ``log_prefixes``."""
    log_prefixes: tuple[str, ...] = ("executions/", "conversations/", "audit/")
    redis: RedisCache | None = None
    """The cache the agents use: they may read its AUTH token and reach it on 6379."""
    user_data: str = ""
    """Agent bootstrap script (cloud-init), from config."""
    ami_parameter: str = DEFAULT_AMI_PARAMETER
    root_volume_gib: int = 30
    warm_up_seconds: int = 120
    """Health-check grace period: how long an agent takes to initialise."""
    spot: SpotCapacity | None = None
    """Interruptible pools: mixed instances with spot; None for on-demand only."""
    warm_pool: WarmPool | None = None
    schedules: tuple[Schedule, ...] = field(default_factory=tuple)
    egress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    """Where workers may open HTTPS connections (model providers, tool APIs)."""
    alarm_topic_arn: pulumi.Input[str] | None = None
    instance_tags: dict[str, str] = field(default_factory=dict)
    """Tags the group propagates to its instances (the stack's default tags; providers do not reach them)."""


class WorkerPool(pulumi.ComponentResource):
    """Launch template, instance role, security group, auto-scaling group and its scaling policies."""

    group: aws.autoscaling.Group
    group_name: str
    """The group's name (known before deployment; metric math and alarms use it)."""
    role: aws.iam.Role
    security_group: aws.ec2.SecurityGroup
    queue_metric_names: tuple[str, ...]
    """Physical names of the queues whose backlog drives scaling."""

    def __init__(self, name: str, args: WorkerPoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:compute:WorkerPool", name, None, opts)
        _validate(name, args)
        self._args, self._name = args, name
        self.pool = args.pool
        self.group_name = args.naming.name("workers", args.pool)
        self.queue_metric_names = _physical_queues(args.queues, args.consumes)
        child = pulumi.ResourceOptions(parent=self)

        self.role = self._role(name, args)
        profile = aws.iam.InstanceProfile(
            f"{name}-profile", aws.iam.InstanceProfileArgs(role=self.role.name), opts=child
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            aws.ec2.SecurityGroupArgs(
                vpc_id=args.vpc_id,
                description=f"Agent workers of pool {args.pool}: no inbound, HTTPS and Redis out",
                ingress=[],
                egress=[
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=list(args.egress_cidrs),
                        description="HTTPS",
                    ),
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="tcp",
                        from_port=6379,
                        to_port=6379,
                        cidr_blocks=[args.vpc_cidr],
                        description="Redis (TLS), in the VPC",
                    ),
                ],
                tags={"Name": args.naming.name("workers", args.pool)},
            ),
            opts=child,
        )
        if args.redis is not None:
            args.redis.allow_client(f"workers-{args.pool}", self.security_group.id)
        template = self._launch_template(name, args, profile)
        self.group = self._group(name, args, template)
        self._scaling(name, args)
        self.register_outputs(
            {"groupName": self.group_name, "roleArn": self.role.arn, "securityGroupId": self.security_group.id}
        )

    # -- identity ------------------------------------------------------------------------------------
    def _role(self, name: str, args: WorkerPoolArgs) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{name}-role",
            aws.iam.RoleArgs(
                description=f"Agent workers of pool {args.pool}",
                assume_role_policy=iam.assume_role_policy("ec2", args.env),
                managed_policy_arns=["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        args.queues.grant_consume(role, list(args.consumes), label=f"workers-{args.pool}")
        if args.log_bucket is not None:
            args.log_bucket.grant_write(role, args.log_prefixes, label=f"workers-{args.pool}")
        statements = [
            iam.statement(
                "PublishAgentMetrics",
                ["cloudwatch:PutMetricData"],
                ["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": contract.NAMESPACE}},
            )
        ]
        if args.redis is not None:
            args.redis.grant_read_auth(role, label=f"workers-{args.pool}")
        aws.iam.RolePolicy(
            f"{name}-agent",
            aws.iam.RolePolicyArgs(role=role.id, policy=iam.document(*statements)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role

    # -- instances -----------------------------------------------------------------------------------
    def _launch_template(
        self, name: str, args: WorkerPoolArgs, profile: aws.iam.InstanceProfile
    ) -> aws.ec2.LaunchTemplate:
        user_data = base64.b64encode(args.user_data.encode()).decode() if args.user_data else None
        return aws.ec2.LaunchTemplate(
            f"{name}-template",
            aws.ec2.LaunchTemplateArgs(
                description=f"Agent workers of pool {args.pool}",
                update_default_version=True,
                image_id=f"resolve:ssm:{args.ami_parameter}",
                instance_type=args.instance_types[0],
                iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
                metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                    http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
                ),
                network_interfaces=[
                    aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                        device_index=0,
                        associate_public_ip_address="false",
                        delete_on_termination="true",
                        security_groups=[self.security_group.id],
                    )
                ],
                block_device_mappings=[
                    aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                        device_name="/dev/xvda",
                        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                            volume_size=args.root_volume_gib,
                            volume_type="gp3",
                            encrypted="true",
                            delete_on_termination="true",
                        ),
                    )
                ],
                monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=True),
                user_data=user_data,
                tag_specifications=[
                    aws.ec2.LaunchTemplateTagSpecificationArgs(
                        resource_type="volume", tags={"Name": self.group_name, "pool": args.pool}
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _group(self, name: str, args: WorkerPoolArgs, template: aws.ec2.LaunchTemplate) -> aws.autoscaling.Group:
        scaling = args.scaling
        version = template.latest_version.apply(str)
        mixed, launch_template = None, None
        if args.spot is not None:
            mixed = aws.autoscaling.GroupMixedInstancesPolicyArgs(
                instances_distribution=aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                    on_demand_base_capacity=args.spot.on_demand_base,
                    on_demand_percentage_above_base_capacity=args.spot.on_demand_percentage_above_base,
                    spot_allocation_strategy="capacity-optimized",
                ),
                launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                    launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                        launch_template_id=template.id, version=version
                    ),
                    overrides=[
                        aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(instance_type=t)
                        for t in args.instance_types
                    ],
                ),
            )
        else:
            launch_template = aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version=version)
        warm_pool = None
        if args.warm_pool is not None:
            warm_pool = aws.autoscaling.GroupWarmPoolArgs(
                pool_state="Stopped",
                min_size=args.warm_pool.min_size,
                max_group_prepared_capacity=args.warm_pool.max_prepared,
                instance_reuse_policy=aws.autoscaling.GroupWarmPoolInstanceReusePolicyArgs(reuse_on_scale_in=True),
            )
        # Provider default tags do not reach instances an auto-scaling group launches: propagate them here.
        tags = {**args.instance_tags, "Name": self.group_name, "pool": args.pool}

        return aws.autoscaling.Group(
            f"{name}-group",
            aws.autoscaling.GroupArgs(
                name=self.group_name,
                vpc_zone_identifiers=args.subnet_ids,
                min_size=scaling.min_instances,
                max_size=scaling.max_instances,
                desired_capacity=scaling.desired if scaling.desired is not None else scaling.min_instances,
                launch_template=launch_template,
                mixed_instances_policy=mixed,
                warm_pool=warm_pool,
                health_check_type="EC2",
                health_check_grace_period=args.warm_up_seconds,
                default_instance_warmup=scaling.scale_up_cooldown,
                capacity_rebalance=args.spot is not None,
                enabled_metrics=[aws.autoscaling.Metric(m) for m in GROUP_METRICS],
                metrics_granularity="1Minute",
                instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                    strategy="Rolling",
                    preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                        min_healthy_percentage=90,
                        instance_warmup=str(args.warm_up_seconds),
                        checkpoint_percentages=[33, 66, 100],
                        checkpoint_delay="300",
                        auto_rollback=True,
                    ),
                ),
                termination_policies=["OldestLaunchTemplate", "Default"],
                tags=[aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True) for k, v in tags.items()],
            ),
            # Scaling policies own the desired capacity after creation.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["desiredCapacity"]),
        )

    # -- scaling -------------------------------------------------------------------------------------
    def _scaling(self, name: str, args: WorkerPoolArgs) -> None:
        scaling, child = args.scaling, pulumi.ResourceOptions(parent=self)
        if scaling.target_metric == "queue_depth":
            target = aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                target_value=scaling.target_value,
                disable_scale_in=True,
                customized_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationArgs(
                    metrics=self.backlog_metrics(for_alarm=False)
                ),
            )
        else:
            target = aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                target_value=scaling.target_value,
                disable_scale_in=True,
                predefined_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ASGAverageCPUUtilization"
                ),
            )
        aws.autoscaling.Policy(
            f"{name}-track",
            aws.autoscaling.PolicyArgs(
                autoscaling_group_name=self.group.name,
                policy_type="TargetTrackingScaling",
                target_tracking_configuration=target,
            ),
            opts=child,
        )

        scale_in = aws.autoscaling.Policy(
            f"{name}-scale-in",
            aws.autoscaling.PolicyArgs(
                autoscaling_group_name=self.group.name,
                policy_type="SimpleScaling",
                adjustment_type="ChangeInCapacity",
                scaling_adjustment=-1,
                cooldown=scaling.scale_down_cooldown,
            ),
            opts=child,
        )
        periods = max(1, scaling.scale_down_cooldown // 60)
        if scaling.target_metric == "queue_depth":
            self._alarm(
                f"{name}-idle",
                "idle",
                "Backlog per instance below half the target: remove one instance",
                self.backlog_metrics(for_alarm=True),
                "LessThanThreshold",
                scaling.target_value / 2,
                periods,
                [scale_in.arn],
            )
        if scaling.error_rate_percent is not None:
            self._alarm(
                f"{name}-errors",
                "errors",
                "Error rate above threshold: stop scale-out, scale in gently",
                self._error_rate_queries(),
                "GreaterThanThreshold",
                scaling.error_rate_percent,
                3,
                [scale_in.arn],
            )
        if scaling.latency_p95_ms is not None:
            self._latency_scale_out(name, args)
        for schedule in args.schedules:
            aws.autoscaling.Schedule(
                f"{name}-{schedule.name}",
                aws.autoscaling.ScheduleArgs(
                    autoscaling_group_name=self.group.name,
                    scheduled_action_name=schedule.name,
                    recurrence=schedule.recurrence,
                    time_zone=schedule.time_zone,
                    min_size=schedule.min_size,
                    max_size=schedule.max_size,
                    desired_capacity=schedule.desired if schedule.desired is not None else -1,
                ),
                opts=child,
            )

    def backlog_metrics(self, *, for_alarm: bool) -> list:
        """Metric math: sum of visible messages over the pool's queues / in-service instances.

        With an error-rate threshold, the result is pinned to the target while errors are high, so target
        tracking neither adds nor (having scale-in disabled) removes capacity because of the backlog.
        """
        args = self._args
        scaling = args.scaling
        queue_ids = [f"q{i}" for i in range(len(self.queue_metric_names))]
        specs: list[tuple[str, str, str, dict[str, str], str]] = [
            (qid, "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue}, "Sum")
            for qid, queue in zip(queue_ids, self.queue_metric_names, strict=True)
        ]
        specs.append(
            (
                "inservice",
                "AWS/AutoScaling",
                "GroupInServiceInstances",
                {"AutoScalingGroupName": self.group_name},
                "Average",
            )
        )
        backlog = f"({' + '.join(queue_ids)}) / IF(inservice > 0, inservice, 1)"
        expressions = [("backlog", backlog, "Backlog per in-service instance")]
        if scaling.error_rate_percent is not None:
            dims = contract.pool_dimensions(args.naming.environment, args.pool)
            specs += [
                ("errors", contract.NAMESPACE, contract.ERRORS, dims, "Sum"),
                ("executions", contract.NAMESPACE, contract.EXECUTIONS, dims, "Sum"),
            ]
            rate = "100 * errors / IF(executions > 0, executions, 1)"
            expressions = [
                ("backlograw", backlog, "Backlog per in-service instance"),
                (
                    "backlog",
                    f"IF({rate} > {scaling.error_rate_percent}, {scaling.target_value}, backlograw)",
                    "Backlog per instance, held at target while errors are high",
                ),
            ]
        return _queries(specs, expressions, for_alarm)

    def _error_rate_queries(self) -> list:
        dims = contract.pool_dimensions(self._args.naming.environment, self._args.pool)
        specs = [
            ("errors", contract.NAMESPACE, contract.ERRORS, dims, "Sum"),
            ("executions", contract.NAMESPACE, contract.EXECUTIONS, dims, "Sum"),
        ]
        return _queries(specs, [("rate", "100 * errors / IF(executions > 0, executions, 1)", "Error rate (%)")], True)

    def _latency_scale_out(self, name: str, args: WorkerPoolArgs) -> None:
        scaling = args.scaling
        assert scaling.latency_p95_ms is not None
        step = aws.autoscaling.Policy(
            f"{name}-latency",
            aws.autoscaling.PolicyArgs(
                autoscaling_group_name=self.group.name,
                policy_type="StepScaling",
                adjustment_type="ChangeInCapacity",
                metric_aggregation_type="Maximum",
                estimated_instance_warmup=scaling.scale_up_cooldown,
                step_adjustments=[
                    aws.autoscaling.PolicyStepAdjustmentArgs(
                        scaling_adjustment=1,
                        metric_interval_lower_bound="0",
                        metric_interval_upper_bound=str(scaling.latency_p95_ms),
                    ),
                    aws.autoscaling.PolicyStepAdjustmentArgs(
                        scaling_adjustment=2, metric_interval_lower_bound=str(scaling.latency_p95_ms)
                    ),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        dims = contract.pool_dimensions(args.naming.environment, args.pool)
        latency = metric_alarm(
            f"{name}-latency-high",
            alarm_name=args.naming.name("workers", args.pool, "latency-high"),
            description=f"p95 agent execution time above {scaling.latency_p95_ms} ms",
            namespace=contract.NAMESPACE,
            metric_name=contract.EXECUTION_TIME,
            dimensions=dims,
            statistic="p95",
            comparison="GreaterThanThreshold",
            threshold=scaling.latency_p95_ms,
            evaluation_periods=3,
            parent=self,
        )
        rule = f'ALARM("{args.naming.name("workers", args.pool, "latency-high")}")'
        if scaling.error_rate_percent is not None:
            rule += f' AND NOT ALARM("{args.naming.name("workers", args.pool, "errors")}")'
        aws.cloudwatch.CompositeAlarm(
            f"{name}-scale-out-latency",
            aws.cloudwatch.CompositeAlarmArgs(
                alarm_name=args.naming.name("workers", args.pool, "scale-out-latency"),
                alarm_description="Latency high and errors not high: add capacity",
                alarm_rule=rule,
                alarm_actions=[step.arn],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[latency]),
        )

    def _alarm(
        self,
        resource: str,
        suffix: str,
        description: str,
        queries: list,
        comparison: str,
        threshold: float,
        periods: int,
        actions: list,
    ) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            resource,
            aws.cloudwatch.MetricAlarmArgs(
                name=self._args.naming.name("workers", self._args.pool, suffix),
                alarm_description=description,
                comparison_operator=comparison,
                threshold=threshold,
                evaluation_periods=periods,
                metric_queries=queries,
                alarm_actions=actions,
                treat_missing_data="notBreaching",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _queries(
    specs: list[tuple[str, str, str, dict[str, str], str]], expressions: list[tuple[str, str, str]], for_alarm: bool
) -> list:
    """The same metric math as target-tracking metrics or as alarm queries (two different Args types)."""
    last = expressions[-1][0]
    if for_alarm:
        out: list = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=mid,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=ns, metric_name=metric, dimensions=dims, stat=stat, period=60
                ),
            )
            for mid, ns, metric, dims, stat in specs
        ]
        out += [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(id=eid, expression=expr, label=label, return_data=eid == last)
            for eid, expr, label in expressions
        ]
        return out
    spec = aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricArgs
    stat_args = aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatArgs
    metric_args = (
        aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatMetricArgs
    )
    dim_args = aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatMetricDimensionArgs  # noqa: E501
    out = [
        spec(
            id=mid,
            return_data=False,
            metric_stat=stat_args(
                stat=stat,
                metric=metric_args(
                    namespace=ns, metric_name=metric, dimensions=[dim_args(name=k, value=v) for k, v in dims.items()]
                ),
            ),
        )
        for mid, ns, metric, dims, stat in specs
    ]
    out += [spec(id=eid, expression=expr, label=label, return_data=eid == last) for eid, expr, label in expressions]
    return out


def _physical_queues(queues: TaskQueues, consumes: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for logical in consumes:
        members = queues.priority_queues.get(logical, (logical,))
        names += [queues.queue_names[m] for m in members]
    return tuple(names)


def _validate(name: str, args: WorkerPoolArgs) -> None:
    s = args.scaling
    checker = Checker(f"WorkerPool {name}")
    checker.check(
        "scaling",
        s,
        lambda v: 0 <= v.min_instances <= v.max_instances and v.max_instances >= 1,
        "0 <= min_instances <= max_instances, max_instances >= 1",
    )
    checker.check(
        "scaling.target_metric",
        s.target_metric,
        lambda v: v in ("queue_depth", "cpu_utilization"),
        "queue_depth or cpu_utilization",
    )
    checker.check("scaling.scale_up_cooldown", s.scale_up_cooldown, lambda v: 0 <= v <= 3600, "0 to 3600 seconds")
    checker.check("scaling.scale_down_cooldown", s.scale_down_cooldown, lambda v: 0 <= v <= 3600, "0 to 3600 seconds")
    checker.check("instance_types", args.instance_types, lambda v: len(v) >= 1, "at least one instance type")
    known = set(args.queues.queue_names) | set(args.queues.priority_queues)
    checker.check(
        "consumes",
        args.consumes,
        lambda v: bool(v) and set(v) <= known,
        f"queue names of the queues component ({', '.join(sorted(known))})",
    )
    checker.check(
        "warm_pool",
        args.warm_pool,
        lambda w: w is None or args.spot is None,
        "no warm pool on an interruptible pool (AWS refuses warm pools with mixed instances or spot)",
    )
    checker.done()
