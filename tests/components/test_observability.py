"""Observability: every key metric alarms (CloudWatch or Prometheus) at its configured threshold, to one
encrypted topic; the dashboard is known JSON with a widget per metric; the budget notifies the topic."""

from __future__ import annotations

import json
from typing import Any

import pulumi_kubernetes as k8s
import pytest
from helpers import by_name, record_component, resources_of

from components.aws_env import AwsEnvironment
from components.naming import Naming
from components.observability import (
    MonthlyBudget,
    Observability,
    ObservabilityArgs,
    Thresholds,
    redis_member_cluster_ids,
)
from components.validation import InputPropertiesError

ENV = AwsEnvironment("123456789012", "eu-west-1")
NAMING = Naming("agent-infra", "test")
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "obs-topic"
GROUP = "agent-infra-test-redis"
NODES = ("agent-infra-test-redis-0001-001", "agent-infra-test-redis-0001-002")
UNKNOWN = {"$unknown": True}

#: Deliberately not the defaults, so every threshold below is seen to come from the Args.
THRESHOLDS = Thresholds(
    execution_p95_ms=20_000,
    execution_p99_ms=45_000,
    error_rate_percent=3,
    tool_success_rate_percent=97,
    session_tokens=150_000,
    agent_tokens_per_hour=1_500_000,
    queue_depth=500,
    queue_oldest_message_seconds=600,
    redis_engine_cpu_percent=75,
    redis_memory_percent=85,
    redis_evictions=50,
    api_4xx_rate_percent=8,
    api_5xx_rate_percent=2,
    api_latency_p95_ms=3_000,
    gpu_utilisation_low_percent=15,
    gpu_utilisation_high_percent=90,
    vllm_waiting_requests=12,
    gpu_nodes_min=2,
)

#: Single-metric CloudWatch alarms: resource -> (namespace, metric, dimensions, statistic, comparison, threshold).
SIMPLE_ALARMS: dict[str, tuple[str, str, dict[str, str], str, str, float]] = {
    "obs-pool-agents-execution-p95": (
        "AgentInfra/Agents",
        "ExecutionTime",
        {"Environment": "test", "Pool": "agents"},
        "p95",
        "GreaterThanThreshold",
        20_000,
    ),
    "obs-pool-agents-execution-p99": (
        "AgentInfra/Agents",
        "ExecutionTime",
        {"Environment": "test", "Pool": "agents"},
        "p99",
        "GreaterThanThreshold",
        45_000,
    ),
    "obs-pool-agents-session-tokens": (
        "AgentInfra/Agents",
        "SessionTokens",
        {"Environment": "test", "Pool": "agents"},
        "Maximum",
        "GreaterThanThreshold",
        150_000,
    ),
    "obs-queue-tasks-depth": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": "agent-infra-test-tasks"},
        "Maximum",
        "GreaterThanThreshold",
        500,
    ),
    "obs-queue-tasks-oldest-message": (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"QueueName": "agent-infra-test-tasks"},
        "Maximum",
        "GreaterThanThreshold",
        600,
    ),
    "obs-queue-tasks-dlq-depth": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": "agent-infra-test-tasks-dlq"},
        "Maximum",
        "GreaterThanThreshold",
        0,
    ),
    **{
        f"obs-redis-{node.removeprefix(GROUP + '-')}-{role}": (
            "AWS/ElastiCache",
            metric,
            {"CacheClusterId": node},
            stat,
            "GreaterThanThreshold",
            limit,
        )
        for node in NODES
        for role, metric, stat, limit in (
            ("cpu", "EngineCPUUtilization", "Maximum", 75),
            ("memory", "DatabaseMemoryUsagePercentage", "Maximum", 85),
            ("evictions", "Evictions", "Sum", 50),
        )
    },
    # 4XXError and 5XXError average to errors per request: the threshold is the percentage / 100.
    "obs-api-4xx-rate": (
        "AWS/ApiGateway",
        "4XXError",
        {"ApiName": "agent-infra-test-api", "Stage": "v1"},
        "Average",
        "GreaterThanThreshold",
        0.08,
    ),
    "obs-api-5xx-rate": (
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": "agent-infra-test-api", "Stage": "v1"},
        "Average",
        "GreaterThanThreshold",
        0.02,
    ),
    "obs-api-latency-p95": (
        "AWS/ApiGateway",
        "Latency",
        {"ApiName": "agent-infra-test-api", "Stage": "v1"},
        "p95",
        "GreaterThanThreshold",
        3_000,
    ),
}

#: Metric-math and Metrics Insights alarms: resource -> (returned expression, comparison, threshold).
QUERY_ALARMS = {
    "obs-pool-agents-error-rate": (
        "IF(executions > 0, 100 * FILL(errors, 0) / executions, 0)",
        "GreaterThanThreshold",
        3,
    ),
    "obs-pool-agents-tool-success-rate": (
        "IF(total > 0, 100 * FILL(ok, 0) / total, 100)",
        "LessThanThreshold",
        97,
    ),
    "obs-agents-agent-tokens": (
        'SELECT SUM(TokensUsed) FROM SCHEMA("AgentInfra/Agents", Environment, Pool, AgentId) '
        "WHERE Environment = 'test' GROUP BY AgentId ORDER BY SUM() DESC LIMIT 1",
        "GreaterThanThreshold",
        1_500_000,
    ),
}

#: Prometheus alerting rules: alert -> (expression with its configured threshold, for, severity).
PROMETHEUS_RULES = {
    "GpuUtilisationLow": ("avg by (Hostname) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[30m])) < 15", "5m", "warning"),
    "GpuUtilisationHigh": ("avg by (Hostname) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[15m])) > 90", "5m", "warning"),
    "GpuXidError": ("max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0", None, "critical"),
    "GpuNodesAbsentWhileRequestsWait": (
        '(count(kube_node_status_allocatable{resource="nvidia_com_gpu"} > 0) or on() vector(0)) < 2 and on() '
        "(sum(vllm:num_requests_waiting) > 0 or on() "
        'sum(kube_pod_status_phase{phase="Pending", pod=~"vllm-(llama-8b|llama-3\\\\.1-70b)-.+"}) > 0)',
        "15m",
        "critical",
    ),
    "VllmRequestsWaiting:llama-8b": ('sum(vllm:num_requests_waiting{model_name="llama-8b"}) > 12', "5m", "warning"),
    "VllmRequestsWaiting:llama-3.1-70b": (
        'sum(vllm:num_requests_waiting{model_name="llama-3.1-70b"}) > 12',
        "5m",
        "warning",
    ),
}

#: Every key metric and where it alarms: the seed's list, plus the platform's.
KEY_METRICS = {
    "execution time p95": "obs-pool-agents-execution-p95",
    "execution time p99": "obs-pool-agents-execution-p99",
    "task queue depth": "obs-queue-tasks-depth",
    "oldest message age": "obs-queue-tasks-oldest-message",
    "DLQ depth": "obs-queue-tasks-dlq-depth",
    "tool-call success rate": "obs-pool-agents-tool-success-rate",
    "tokens per agent": "obs-agents-agent-tokens",
    "tokens per session": "obs-pool-agents-session-tokens",
    "error rate": "obs-pool-agents-error-rate",
    "Redis CPU": "obs-redis-0001-001-cpu",
    "Redis memory": "obs-redis-0001-001-memory",
    "Redis evictions": "obs-redis-0001-001-evictions",
    "API 4XX rate": "obs-api-4xx-rate",
    "API 5XX rate": "obs-api-5xx-rate",
    "API latency p95": "obs-api-latency-p95",
    "GPU node count": "GpuNodesAbsentWhileRequestsWait",
    "GPU utilisation": "GpuUtilisationLow",
    "vLLM waiting requests": "VllmRequestsWaiting:llama-8b",
    "GPU XID errors": "GpuXidError",
}


def _args(**changes: Any) -> ObservabilityArgs:
    base: dict[str, Any] = dict(
        naming=NAMING,
        env=ENV,
        queues={"tasks": "agent-infra-test-tasks"},
        dead_letter_queues={"tasks": "agent-infra-test-tasks-dlq"},
        worker_pools={"agents": "agent-infra-test-workers-agents"},
        redis_replication_group_id=GROUP,
        redis_node_ids=NODES,
        api_name="agent-infra-test-api",
        api_stage="v1",
        eks_cluster_name="agent-infra-test-eks",
        gpu_node_groups=("agent-infra-test-gpu-llama-8b-eu-west-1a",),
        model_names=("llama-8b", "llama-3.1-70b"),
        thresholds=THRESHOLDS,
        budget=MonthlyBudget(limit_usd=12_500, emails=("finance@example.com",)),
        alarm_emails=("oncall@example.com", "platform@example.com"),
        protect=True,
    )
    base.update(changes)
    return ObservabilityArgs(**base)


def _plan(with_cluster: bool = True, **changes: Any) -> dict[str, Any]:
    def build() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}") if with_cluster else None
        Observability("obs", _args(k8s_provider=provider, **changes))

    return record_component(build)


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    """Every watched thing present: a pool, a queue and its DLQ, two Redis nodes, the API, a cluster."""
    return _plan()


def _urn(m: dict[str, Any], name: str) -> str:
    return by_name(m, name)["urn"]


def _alarms(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in resources_of(m, ALARM)}


def _rules(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (rule,) = resources_of(m, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    return {
        r["alert"] + (f":{r['labels']['model_name']}" if "model_name" in r["labels"] else ""): r
        for group in rule["inputs"]["spec"]["groups"]
        for r in group["rules"]
    }


def _dashboard(m: dict[str, Any]) -> dict[str, Any]:
    (dashboard,) = resources_of(m, "aws:cloudwatch/dashboard:Dashboard")
    body = dashboard["inputs"]["dashboardBody"]
    assert isinstance(body, str), "the dashboard body must be known in a preview"
    return json.loads(body)


def test_every_key_metric_alarms_in_cloudwatch_or_prometheus(full: dict[str, Any]) -> None:
    alarms, rules = _alarms(full), _rules(full)
    missing = [metric for metric, where in KEY_METRICS.items() if where not in alarms and where not in rules]
    assert missing == []
    assert set(alarms) == set(SIMPLE_ALARMS) | set(QUERY_ALARMS), "no alarm outside the tables"
    assert set(rules) == set(PROMETHEUS_RULES)


@pytest.mark.parametrize("resource", sorted(SIMPLE_ALARMS))
def test_single_metric_alarm_has_its_configured_threshold(full: dict[str, Any], resource: str) -> None:
    namespace, metric, dimensions, statistic, comparison, threshold = SIMPLE_ALARMS[resource]
    inputs = _alarms(full)[resource]["inputs"]
    assert (inputs["namespace"], inputs["metricName"], inputs["dimensions"]) == (namespace, metric, dimensions)
    assert inputs.get("extendedStatistic", inputs.get("statistic")) == statistic
    assert (inputs["comparisonOperator"], inputs["threshold"]) == (comparison, threshold)
    assert inputs["name"].startswith("agent-infra-test-") and inputs["treatMissingData"] == "notBreaching"


def test_rate_latency_queue_and_redis_alarms_use_the_configured_window(full: dict[str, Any]) -> None:
    alarms = _alarms(full)
    windowed = [n for n in SIMPLE_ALARMS if not n.endswith(("session-tokens", "dlq-depth"))]
    for name in windowed:
        inputs = alarms[name]["inputs"]
        assert (inputs["period"], inputs["evaluationPeriods"], inputs["datapointsToAlarm"]) == (300, 3, 2), name
    # One message in a DLQ, or one runaway session, is already worth a look.
    for name in ("obs-queue-tasks-dlq-depth", "obs-pool-agents-session-tokens"):
        inputs = alarms[name]["inputs"]
        assert (inputs["period"], inputs["evaluationPeriods"], inputs["datapointsToAlarm"]) == (60, 1, 1)


@pytest.mark.parametrize("resource", sorted(QUERY_ALARMS))
def test_query_alarm_returns_its_expression_against_the_configured_threshold(
    full: dict[str, Any], resource: str
) -> None:
    expression, comparison, threshold = QUERY_ALARMS[resource]
    inputs = _alarms(full)[resource]["inputs"]
    (returned,) = [q for q in inputs["metricQueries"] if q["returnData"]]
    assert returned["expression"] == expression
    assert (inputs["comparisonOperator"], inputs["threshold"]) == (comparison, threshold)
    assert "namespace" not in inputs and "metricName" not in inputs and "period" not in inputs


def test_tool_success_rate_divides_successes_by_all_outcomes(full: dict[str, Any]) -> None:
    queries = {q["id"]: q for q in _alarms(full)["obs-pool-agents-tool-success-rate"]["inputs"]["metricQueries"]}
    for query_id, outcome in (("ok", "success"), ("failed", "failure")):
        metric = queries[query_id]["metric"]
        assert (metric["namespace"], metric["metricName"], metric["stat"]) == ("AgentInfra/Agents", "ToolCalls", "Sum")
        assert metric["dimensions"] == {"Environment": "test", "Pool": "agents", "Outcome": outcome}
    assert queries["total"]["expression"] == "FILL(ok, 0) + FILL(failed, 0)"
    errors = {q["id"]: q for q in _alarms(full)["obs-pool-agents-error-rate"]["inputs"]["metricQueries"]}
    assert errors["errors"]["metric"]["metricName"] == "Errors"
    assert errors["executions"]["metric"]["metricName"] == "Executions"


def test_per_agent_tokens_are_one_metrics_insights_alarm_over_an_hour(full: dict[str, Any]) -> None:
    inputs = _alarms(full)["obs-agents-agent-tokens"]["inputs"]
    (query,) = inputs["metricQueries"]
    assert query["period"] == 3600 and query["returnData"] is True and "metric" not in query
    assert (inputs["evaluationPeriods"], inputs["datapointsToAlarm"]) == (1, 1)


@pytest.mark.parametrize("alert", sorted(PROMETHEUS_RULES))
def test_prometheus_rule_has_its_configured_threshold(full: dict[str, Any], alert: str) -> None:
    expr, for_, severity = PROMETHEUS_RULES[alert]
    rule = _rules(full)[alert]
    assert rule["expr"] == expr
    assert rule.get("for") == for_
    assert rule["labels"]["severity"] == severity and rule["labels"]["environment"] == "test"
    assert rule["annotations"]["description"]


def test_prometheus_rule_is_picked_up_by_kube_prometheus_stack(full: dict[str, Any]) -> None:
    (rule,) = resources_of(full, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    inputs = rule["inputs"]
    assert (inputs["apiVersion"], inputs["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert inputs["metadata"]["namespace"] == "monitoring"
    assert inputs["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["provider"].startswith(_urn(full, "k8s"))


def test_topic_is_encrypted_with_a_key_cloudwatch_and_budgets_may_use(full: dict[str, Any]) -> None:
    topic = by_name(full, TOPIC)
    assert topic["inputs"]["name"] == "agent-infra-test-alarms"
    assert topic["propertyDependencies"]["kmsMasterKeyId"] == [_urn(full, "obs-key-key")]
    key = by_name(full, "obs-key-key")["inputs"]
    assert key["enableKeyRotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key["policy"])["Statement"]}
    for sid, principal in (("AllowCloudwatchToUseKey", "cloudwatch"), ("AllowBudgetsToUseKey", "budgets")):
        statement = statements[sid]
        assert statement["Principal"] == {"Service": f"{principal}.amazonaws.com"}
        assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(statement["Action"])
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_topic_policy_lets_only_this_environments_alarms_and_budgets_publish(full: dict[str, Any]) -> None:
    policy = by_name(full, "obs-topic-policy")
    assert policy["propertyDependencies"]["arn"] == [_urn(full, TOPIC)]
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    topic_arn = "arn:aws:sns:eu-west-1:123456789012:agent-infra-test-alarms"
    alarms = statements["CloudWatchAlarmsPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and alarms["Resource"] == [topic_arn]
    assert alarms["Condition"]["ArnLike"] == {
        "aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:agent-infra-test-*"
    }
    budgets = statements["BudgetsPublish"]
    assert budgets["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert budgets["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:budgets::123456789012:*"}
    deny = statements["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Every alarm name starts with the environment's prefix, so the SourceArn condition covers all of them.
    assert all(a["inputs"]["name"].startswith("agent-infra-test-") for a in resources_of(full, ALARM))


def test_every_alarm_notifies_the_topic_when_it_fires_and_clears(full: dict[str, Any]) -> None:
    topic = _urn(full, TOPIC)
    for alarm in resources_of(full, ALARM):
        assert alarm["propertyDependencies"]["alarmActions"] == [topic], alarm["name"]
        assert alarm["propertyDependencies"]["okActions"] == [topic], alarm["name"]
        assert alarm["inputs"]["alarmActions"] == [UNKNOWN] and alarm["inputs"]["actionsEnabled"] is True


def test_alarm_emails_subscribe_to_the_topic(full: dict[str, Any]) -> None:
    subscriptions = resources_of(full, "aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s["inputs"]["endpoint"] for s in subscriptions) == ["oncall@example.com", "platform@example.com"]
    for subscription in subscriptions:
        assert subscription["inputs"]["protocol"] == "email"
        assert subscription["propertyDependencies"]["topic"] == [_urn(full, TOPIC)]


def test_monthly_budget_filters_by_environment_tag_and_notifies_at_80_actual_and_100_forecast(
    full: dict[str, Any],
) -> None:
    budget = by_name(full, "obs-budget")
    inputs = budget["inputs"]
    assert (inputs["budgetType"], inputs["timeUnit"]) == ("COST", "MONTHLY")
    assert (inputs["limitAmount"], inputs["limitUnit"]) == ("12500.00", "USD")
    assert inputs["costFilters"] == [{"name": "TagKeyValue", "values": ["user:environment$test"]}]
    notifications = {(n["notificationType"], n["threshold"]): n for n in inputs["notifications"]}
    assert set(notifications) == {("ACTUAL", 80), ("FORECASTED", 100)}
    for notification in notifications.values():
        assert notification["comparisonOperator"] == "GREATER_THAN"
        assert notification["thresholdType"] == "PERCENTAGE"
        assert notification["subscriberEmailAddresses"] == ["finance@example.com"]
        assert notification["subscriberSnsTopicArns"] == [UNKNOWN]
    assert budget["propertyDependencies"]["notifications"] == [_urn(full, TOPIC)]
    # Budgets checks its permission to publish when it creates the notification.
    assert _urn(full, "obs-topic-policy") in budget["dependencies"]


def test_dashboard_is_known_json_with_a_widget_per_metric(full: dict[str, Any]) -> None:
    widgets = _dashboard(full)["widgets"]
    metrics = [w for w in widgets if w["type"] == "metric"]
    assert all(w["properties"]["region"] == "eu-west-1" for w in metrics)
    shown: set[tuple[str, str]] = set()
    expressions: list[str] = []
    for widget in metrics:
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], str):
                shown.add((row[0], row[1]))
            else:
                expressions.append(row[0]["expression"])
    expected = {(namespace, metric) for namespace, metric, *_ in SIMPLE_ALARMS.values()}
    expected |= {("AgentInfra/Agents", m) for m in ("Errors", "Executions", "ToolCalls")}
    assert expected <= shown
    assert "IF(total > 0, 100 * FILL(ok, 0) / total, 100)" in expressions
    assert "IF(executions > 0, 100 * FILL(errors, 0) / executions, 0)" in expressions
    assert (
        'SELECT SUM(TokensUsed) FROM SCHEMA("AgentInfra/Agents", Environment, Pool, AgentId) '
        "WHERE Environment = 'test' GROUP BY AgentId ORDER BY SUM() DESC LIMIT 10"
    ) in expressions
    titles = [w["properties"].get("title") for w in metrics]
    assert titles == [
        "Agent execution time - agents",
        "Error rate - agents",
        "Tool-call success rate - agents",
        "Tokens per session - agents",
        "Worker instances - agents",
        "Tokens per agent - top 10",
        "Task queue depth",
        "Oldest message age",
        "Dead-letter queue depth",
        "Redis engine CPU - agent-infra-test-redis",
        "Redis memory - agent-infra-test-redis",
        "Redis evictions - agent-infra-test-redis",
        "API error rates - agent-infra-test-api/v1",
        "API latency - agent-infra-test-api/v1",
    ]
    latency = metrics[0]["properties"]
    assert [row[-1]["stat"] for row in latency["metrics"]] == ["p50", "p95", "p99"], "p50 on the dashboard"
    assert [a["value"] for a in latency["annotations"]["horizontal"]] == [20_000, 45_000]


def test_prometheus_only_metrics_get_a_text_widget_listing_their_alerts(full: dict[str, Any]) -> None:
    (text,) = [w for w in _dashboard(full)["widgets"] if w["type"] == "text"]
    markdown = text["properties"]["markdown"]
    for metric in ("kube_node_status_allocatable", "DCGM_FI_DEV_GPU_UTIL", "vllm:num_requests_waiting"):
        assert metric in markdown
    assert "DCGM_FI_DEV_XID_ERRORS" in markdown and "agent-infra-test-gpu-llama-8b-eu-west-1a" in markdown
    assert all(f"| {alert} |" in markdown for alert in PROMETHEUS_RULES)


def test_dashboard_widgets_do_not_overlap(full: dict[str, Any]) -> None:
    cells = set()
    for widget in _dashboard(full)["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        for x in range(widget["x"], widget["x"] + widget["width"]):
            for y in range(widget["y"], widget["y"] + widget["height"]):
                assert (x, y) not in cells
                cells.add((x, y))


def test_topic_and_key_are_protected(full: dict[str, Any]) -> None:
    assert by_name(full, TOPIC)["options"]["protect"] is True
    key = by_name(full, "obs-key-key")["options"]
    assert key["protect"] is True and key["retainOnDelete"] is True


def test_without_cluster_redis_api_or_budget_only_the_agent_and_queue_alarms_remain() -> None:
    m = _plan(
        with_cluster=False,
        redis_replication_group_id=None,
        redis_node_ids=(),
        api_name=None,
        api_stage=None,
        budget=None,
        alarm_emails=(),
        protect=False,
    )
    assert resources_of(m, "kubernetes:monitoring.coreos.com/v1:PrometheusRule") == []
    assert resources_of(m, "aws:budgets/budget:Budget") == []
    assert resources_of(m, "aws:sns/topicSubscription:TopicSubscription") == []
    expected = {n for n in [*SIMPLE_ALARMS, *QUERY_ALARMS] if not n.startswith(("obs-redis-", "obs-api-"))}
    assert set(_alarms(m)) == expected
    (text,) = [w for w in _dashboard(m)["widgets"] if w["type"] == "text"]
    assert "No cluster" in text["properties"]["markdown"]
    assert "protect" not in by_name(m, TOPIC)["options"]


def test_p95_and_p99_alarms_can_be_turned_off_and_p50_stays_on_the_dashboard() -> None:
    m = _plan(
        with_cluster=False,
        thresholds=Thresholds(execution_p95_ms=None, execution_p99_ms=None),
    )
    assert not any("execution" in name for name in _alarms(m))
    latency = next(w for w in _dashboard(m)["widgets"] if w["properties"].get("title", "").startswith("Agent exec"))
    assert "annotations" not in latency["properties"]


def test_defaults_are_the_documented_ones() -> None:
    t = Thresholds()
    assert (t.execution_p95_ms, t.execution_p99_ms, t.error_rate_percent, t.tool_success_rate_percent) == (
        30_000,
        60_000,
        5.0,
        95.0,
    )
    assert (t.queue_depth, t.queue_oldest_message_seconds, t.redis_engine_cpu_percent, t.redis_memory_percent) == (
        1_000,
        900,
        80.0,
        80.0,
    )
    assert (t.api_4xx_rate_percent, t.api_5xx_rate_percent, t.api_latency_p95_ms) == (10.0, 1.0, 5_000)
    assert (t.gpu_utilisation_low_percent, t.gpu_utilisation_high_percent, t.vllm_waiting_requests) == (20, 95, 20)
    budget = MonthlyBudget(limit_usd=100)
    assert (budget.actual_percent, budget.forecasted_percent, budget.tag_key) == (80.0, 100.0, "environment")


def test_redis_member_cluster_ids_follow_elasticache_naming() -> None:
    assert redis_member_cluster_ids("g", shards=2, replicas_per_shard=1, cluster_mode=True) == (
        "g-0001-001",
        "g-0001-002",
        "g-0002-001",
        "g-0002-002",
    )
    assert redis_member_cluster_ids("g", shards=1, replicas_per_shard=2, cluster_mode=False) == (
        "g-001",
        "g-002",
        "g-003",
    )


def test_grant_publish_lists_exact_actions_and_uses_the_key_only_through_sns() -> None:
    def build() -> None:
        observability = Observability("obs", _args(budget=None, alarm_emails=()))
        observability.grant_publish("alertmanager")

    m = record_component(build)
    policy = json.loads(by_name(m, "obs-publish-alertmanager")["inputs"]["policy"])
    publish, key = policy["Statement"]
    assert publish["Action"] == ["sns:Publish"]
    assert publish["Resource"] == ["arn:aws:sns:eu-west-1:123456789012:agent-infra-test-alarms"]
    assert key["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key["Condition"]["StringEquals"] == {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}
    assert key["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": ["alias/agent-infra-test-alarms"]}


def test_component_manifest_passes_the_policy_gate(full: dict[str, Any]) -> None:
    from agentinfra.gate import evaluate

    result = evaluate(full, {"all": "mandatory", "required-tags": "disabled", "protect-stateful": "disabled"})
    assert [f for f in result.findings if f.kind == "violation"] == []
    assert result.findings == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"thresholds": Thresholds(error_rate_percent=120)}, r"thresholds\.error_rate_percent: expected a percent"),
        ({"thresholds": Thresholds(tool_success_rate_percent=-1)}, r"thresholds\.tool_success_rate_percent"),
        ({"thresholds": Thresholds(execution_p95_ms=0)}, r"thresholds\.execution_p95_ms: expected a positive"),
        ({"thresholds": Thresholds(queue_depth=0)}, r"thresholds\.queue_depth: expected a positive"),
        ({"thresholds": Thresholds(redis_evictions=-1)}, r"thresholds\.redis_evictions: expected 0 or more"),
        ({"thresholds": Thresholds(queue_oldest_message_seconds=30)}, r"queue_oldest_message_seconds: expected at"),
        ({"thresholds": Thresholds(period_seconds=90)}, r"thresholds\.period_seconds: expected a multiple of 60"),
        ({"thresholds": Thresholds(evaluation_periods=0)}, r"thresholds\.evaluation_periods: expected at least 1"),
        ({"thresholds": Thresholds(datapoints_to_alarm=4)}, r"thresholds\.datapoints_to_alarm: expected 1 to"),
        ({"thresholds": Thresholds(gpu_low_window="half an hour")}, r"thresholds\.gpu_low_window: expected a dur"),
        ({"queues": {"tasks": ""}}, r"queues: expected a mapping of non-empty names"),
        ({"redis_node_ids": ()}, r"redis_node_ids: expected member cluster ids starting with agent-infra-test-redis-"),
        ({"redis_node_ids": ("other-001",)}, r"redis_node_ids: expected member cluster ids"),
        ({"redis_replication_group_id": None}, r"redis_node_ids: expected none without redis_replication_group_id"),
        ({"api_stage": None}, r"api_stage: expected a stage name exactly when api_name is set"),
        ({"api_name": None}, r"api_stage: expected a stage name exactly when api_name is set"),
        ({"model_names": ("llama 8b",)}, r"model_names: expected served model names"),
        ({"alarm_emails": ("not-an-address",)}, r"alarm_emails: expected distinct e-mail addresses"),
        ({"alarm_emails": ("a.b@example.com", "a-b@example.com")}, r"alarm_emails: expected distinct e-mail"),
        ({"budget": MonthlyBudget(limit_usd=0)}, r"budget\.limit_usd: expected a positive amount"),
        ({"budget": MonthlyBudget(limit_usd=1, actual_percent=0)}, r"budget\.actual_percent: expected a positive"),
        ({"budget": MonthlyBudget(1, forecasted_percent=-5)}, r"budget\.forecasted_percent: expected a positive"),
        ({"budget": MonthlyBudget(1, emails=("x@example.com",) * 11)}, r"budget\.emails: expected at most 10"),
        ({"budget": MonthlyBudget(1, tag_key="env$")}, r"budget\.tag_key: expected a tag key"),
        ({"kms_deletion_window_days": 3}, r"kms_deletion_window_days: expected 7 to 30 days"),
    ],
)
def test_invalid_args_are_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputPropertiesError, match=message):
        record_component(lambda: Observability("obs", _args(**changes)))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InputPropertiesError) as caught:
        record_component(
            lambda: Observability("obs", _args(api_stage=None, alarm_emails=("nope",), kms_deletion_window_days=1))
        )
    assert len(caught.value.problems) == 3
