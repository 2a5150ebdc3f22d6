"""Agent workers: the seed's scaling block mapped field by field, spot in dev, on-demand base in prod."""

from __future__ import annotations

import json
from typing import Any

from helpers import by_name, resources_of

GROUP = "aws:autoscaling/group:Group"
POLICY = "aws:autoscaling/policy:Policy"
QUEUES = [
    "agent-infra-prod-tasks",
    "agent-infra-prod-inference-high",
    "agent-infra-prod-inference-low",
    "agent-infra-prod-scheduled",
    "agent-infra-prod-ordered.fifo",
]


def _policy(m: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in resources_of(m, POLICY) if p["name"] == name)


def test_seed_example_gives_those_bounds_and_warm_up(plans: dict[str, Any]) -> None:
    (group,) = resources_of(plans["prod"], GROUP)
    inputs = group["inputs"]
    assert (inputs["minSize"], inputs["maxSize"], inputs["desiredCapacity"]) == (2, 20, 2)
    assert inputs["name"] == "agent-infra-prod-workers-agents"
    # scale_up_cooldown 60s: new instances stay out of the tracked metric for the group's warm-up.
    assert inputs["defaultInstanceWarmup"] == 60
    assert "GroupInServiceInstances" in inputs["enabledMetrics"] and inputs["metricsGranularity"] == "1Minute"
    assert inputs["healthCheckGracePeriod"] == 180
    assert len(group["propertyDependencies"]["vpcZoneIdentifiers"]) == 3, "every private subnet"
    assert inputs["instanceRefresh"]["strategy"] == "Rolling"
    assert group["options"]["ignoreChanges"] == ["desiredCapacity"]


def test_queue_depth_is_target_tracking_on_backlog_per_instance(plans: dict[str, Any]) -> None:
    track = _policy(plans["prod"], "workers-agents-track")["inputs"]
    assert track["policyType"] == "TargetTrackingScaling"
    config = track["targetTrackingConfiguration"]
    assert config["targetValue"] == 10 and config["disableScaleIn"] is True
    metrics = {m["id"]: m for m in config["customizedMetricSpecification"]["metrics"]}
    queues = [metrics[f"q{i}"]["metricStat"] for i in range(5)]
    assert [q["metric"]["dimensions"] for q in queues] == [[{"name": "QueueName", "value": n}] for n in QUEUES]
    assert {(q["metric"]["namespace"], q["metric"]["metricName"], q["stat"]) for q in queues} == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Sum")
    }
    inservice = metrics["inservice"]["metricStat"]["metric"]
    assert inservice["metricName"] == "GroupInServiceInstances"
    assert inservice["dimensions"] == [{"name": "AutoScalingGroupName", "value": "agent-infra-prod-workers-agents"}]
    assert metrics["backlograw"]["expression"] == "(q0 + q1 + q2 + q3 + q4) / IF(inservice > 0, inservice, 1)"
    # error_rate_percent 5: the backlog is held at the target while errors are high, stopping scale-out.
    assert metrics["backlog"]["expression"] == (
        "IF(100 * errors / IF(executions > 0, executions, 1) > 5.0, 10.0, backlograw)"
    )
    assert [m["id"] for m in metrics.values() if m.get("returnData")] == ["backlog"]


def test_scale_down_cooldown_is_a_separate_simple_scale_in_policy(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    scale_in = _policy(prod, "workers-agents-scale-in")["inputs"]
    assert (scale_in["policyType"], scale_in["scalingAdjustment"], scale_in["cooldown"]) == ("SimpleScaling", -1, 300)
    idle = by_name(prod, "workers-agents-idle")
    assert idle["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm"
    assert idle["inputs"]["comparisonOperator"] == "LessThanThreshold" and idle["inputs"]["threshold"] == 5
    assert idle["inputs"]["evaluationPeriods"] == 5, "300 s of one-minute periods"
    assert idle["propertyDependencies"]["alarmActions"] == [_policy(prod, "workers-agents-scale-in")["urn"]]


def test_latency_scale_out_is_gated_by_the_error_alarm(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    step = _policy(prod, "workers-agents-latency")["inputs"]
    assert step["policyType"] == "StepScaling" and step["estimatedInstanceWarmup"] == 60
    assert [s["scalingAdjustment"] for s in step["stepAdjustments"]] == [1, 2]
    latency = by_name(prod, "workers-agents-latency-high")["inputs"]
    assert latency["extendedStatistic"] == "p95" and latency["threshold"] == 30000
    assert latency["namespace"] == "AgentInfra/Agents" and latency["metricName"] == "ExecutionTime"
    composite = by_name(prod, "workers-agents-scale-out-latency")["inputs"]
    assert composite["alarmRule"] == (
        'ALARM("agent-infra-prod-workers-agents-latency-high") AND NOT ALARM("agent-infra-prod-workers-agents-errors")'
    )


def test_prod_runs_an_on_demand_base_with_a_warm_pool_and_dev_runs_spot(plans: dict[str, Any]) -> None:
    (prod,) = resources_of(plans["prod"], GROUP)
    assert "mixedInstancesPolicy" not in prod["inputs"] and "launchTemplate" in prod["propertyDependencies"]
    assert prod["inputs"]["warmPool"] == {
        "instanceReusePolicy": {"reuseOnScaleIn": True},
        "maxGroupPreparedCapacity": 4,
        "minSize": 2,
        "poolState": "Stopped",
    }
    (dev,) = resources_of(plans["dev"], GROUP)
    mixed = dev["inputs"]["mixedInstancesPolicy"]
    distribution = mixed["instancesDistribution"]
    assert distribution == {
        "onDemandBaseCapacity": 0,
        "onDemandPercentageAboveBaseCapacity": 0,
        "spotAllocationStrategy": "capacity-optimized",
    }
    assert [o["instanceType"] for o in mixed["launchTemplate"]["overrides"]] == ["m7i.large", "m6i.large", "m5.large"]
    assert dev["inputs"]["capacityRebalance"] is True and "warmPool" not in dev["inputs"]


def test_dev_scales_down_at_night_on_a_schedule(plans: dict[str, Any]) -> None:
    schedules = {
        s["inputs"]["scheduledActionName"]: s["inputs"]
        for s in resources_of(plans["dev"], "aws:autoscaling/schedule:Schedule")
    }
    assert schedules["nights"]["recurrence"] == "0 20 * * *" and schedules["nights"]["maxSize"] == 1
    assert schedules["nights"]["timeZone"] == "Europe/London"


def test_launch_template_is_imdsv2_encrypted_private_and_monitored(plans: dict[str, Any]) -> None:
    template = by_name(plans["prod"], "workers-agents-template")["inputs"]
    assert template["imageId"] == "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert template["networkInterfaces"][0]["associatePublicIpAddress"] == "false"
    assert template["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    assert template["monitoring"] == {"enabled": True}


def test_instance_role_has_exactly_the_grants_the_worker_needs(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    role_urn = by_name(prod, "workers-agents-role")["urn"]
    policies = {
        p["name"]: json.loads(p["inputs"]["policy"])
        for p in resources_of(prod, "aws:iam/rolePolicy:RolePolicy")
        if role_urn in p["propertyDependencies"].get("role", [])
    }
    assert set(policies) == {
        "task-queues-consume-workers-agents",
        "agent-logs-write-workers-agents",
        "redis-read-auth-workers-agents",
        "workers-agents-agent",
    }
    writes = {s["Sid"]: s for s in policies["agent-logs-write-workers-agents"]["Statement"]}
    assert writes["WriteLogs"]["Action"] == ["s3:PutObject"]
    auth = {s["Sid"]: s for s in policies["redis-read-auth-workers-agents"]["Statement"]}
    assert auth["ReadAuthToken"]["Resource"] == [
        "arn:aws:secretsmanager:us-east-1:333333333333:secret:agent-infra/prod/redis/auth-token-??????"
    ]
    metrics = policies["workers-agents-agent"]["Statement"][0]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "AgentInfra/Agents"}}


def test_group_propagates_the_required_tags_to_instances(plans: dict[str, Any]) -> None:
    (group,) = resources_of(plans["prod"], GROUP)
    tags = {t["key"]: t for t in group["inputs"]["tags"]}
    assert {"owner", "cost-centre", "environment", "project", "managed-by"} <= set(tags)
    assert all(t["propagateAtLaunch"] for t in tags.values())


def test_workers_may_reach_redis(plans: dict[str, Any]) -> None:
    rule = by_name(plans["prod"], "redis-from-workers-agents")
    assert rule["propertyDependencies"]["referencedSecurityGroupId"] == [
        by_name(plans["prod"], "workers-agents-sg")["urn"]
    ]
