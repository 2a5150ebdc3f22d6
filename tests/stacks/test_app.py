"""How the stack wires components together (the one place that knows about environments)."""

from __future__ import annotations

import json
from typing import Any

from helpers import by_name, resources_of

from agentinfra import manifest as mf


def test_redis_is_reachable_only_from_the_cluster_and_the_workers(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    rules = resources_of(prod, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    redis_rules = {r["name"]: r for r in rules if r["name"].startswith("redis")}
    assert set(redis_rules) == {"redis-from-eks", "redis-from-workers-agents"}
    sources = {"redis-from-eks": "eks-cluster", "redis-from-workers-agents": "workers-agents-sg"}
    for name, rule in redis_rules.items():
        assert "cidrIpv4" not in rule["inputs"] and rule["inputs"]["fromPort"] == 6379
        assert rule["propertyDependencies"]["referencedSecurityGroupId"] == [by_name(prod, sources[name])["urn"]]


def test_prod_redis_group_has_failover_multi_az_and_both_encryptions(plans: dict[str, Any]) -> None:
    (group,) = resources_of(plans["prod"], "aws:elasticache/replicationGroup:ReplicationGroup")
    inputs = group["inputs"]
    assert inputs["automaticFailoverEnabled"] is True and inputs["multiAzEnabled"] is True
    assert inputs["atRestEncryptionEnabled"] is True and inputs["transitEncryptionEnabled"] is True
    assert inputs["numNodeGroups"] == 2 and inputs["replicasPerNodeGroup"] == 2
    assert inputs["authToken"] == mf.SECRET, "the AUTH token is recorded only as a redacted secret"
    assert group["options"]["protect"] is True


def test_auth_token_flows_from_random_password_into_secrets_manager_only(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    (password,) = [
        p for p in resources_of(prod, "random:index/randomPassword:RandomPassword") if p["name"] == "redis-auth-token"
    ]
    (version,) = [
        v
        for v in resources_of(prod, "aws:secretsmanager/secretVersion:SecretVersion")
        if password["urn"] in v["propertyDependencies"].get("secretString", [])
    ]
    assert version["propertyDependencies"]["secretString"] == [password["urn"]]
    assert version["inputs"]["secretString"] == mf.SECRET
    assert "redisAuthSecretArn" in prod["outputs"] and "redisAuthToken" not in prod["outputs"]


def test_every_queue_has_a_dlq_encryption_and_a_tls_only_policy(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    queues = resources_of(prod, "aws:sqs/queue:Queue")
    names = {q["inputs"]["name"] for q in queues}
    assert {
        "agent-infra-prod-tasks",
        "agent-infra-prod-inference-high",
        "agent-infra-prod-inference-low",
        "agent-infra-prod-scheduled",
        "agent-infra-prod-ordered.fifo",
    } <= names
    dlqs = {dep for q in queues for dep in q["propertyDependencies"].get("redrivePolicy", [])}
    work = [q for q in queues if q["urn"] not in dlqs]
    assert len(work) == 5 and len(dlqs) == 5
    policies = resources_of(prod, "aws:sqs/queuePolicy:QueuePolicy")
    for queue in queues:
        assert "kmsMasterKeyId" in queue["inputs"]
        (policy,) = [p for p in policies if p["propertyDependencies"]["queueUrl"] == [queue["urn"]]]
        deny = json.loads(policy["inputs"]["policy"])["Statement"][0]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_stack_outputs_carry_markers_and_no_secrets(plans: dict[str, Any]) -> None:
    for env, m in plans.items():
        assert m["outputs"]["stack"] == env
        assert "$secret" not in json.dumps(m["outputs"]), "no output is secret, so none can leak"


def test_queue_age_and_dlq_alarms_exist_once_and_notify_the_alarm_topic(plans: dict[str, Any]) -> None:
    prod = plans["prod"]
    alarms = resources_of(prod, "aws:cloudwatch/metricAlarm:MetricAlarm")
    topic = "arn:aws:sns:us-east-1:333333333333:agent-infra-prod-alarms"
    age = [a for a in alarms if a["inputs"].get("metricName") == "ApproximateAgeOfOldestMessage"]
    assert len(age) == 5, [a["name"] for a in age]
    dlq = [a for a in alarms if a["name"].endswith("dlq-messages")]
    assert len(dlq) == 5
    assert all(a["inputs"]["alarmActions"] == [topic] for a in age + dlq)
