"""Observability for one environment: alarms, one dashboard, a cost budget and GPU alerting rules.

The component watches things by their plain names (queue names, pool names, node ids, the API's name), so
it depends on no other component's class, and everything it writes into a dashboard or an alarm is known
in a preview. Every CloudWatch alarm and every budget notification goes to ONE SNS topic, encrypted with
the component's own KMS key; e-mail subscriptions to it are optional.

Where each key metric alarms
----------------------------

| metric | source (namespace / exporter: metric) | alarms in | ``Thresholds`` field |
| --- | --- | --- | --- |
| agent execution time p95, p99 | AgentInfra/Agents: ExecutionTime | CloudWatch, per pool | execution_p95_ms, _p99_ms |
| agent execution time p50 | AgentInfra/Agents: ExecutionTime | dashboard only | - |
| task queue depth | AWS/SQS: ApproximateNumberOfMessagesVisible | CloudWatch, per queue | queue_depth |
| oldest message age | AWS/SQS: ApproximateAgeOfOldestMessage | CloudWatch, per queue | queue_oldest_message_seconds |
| dead-letter queue depth | AWS/SQS: ApproximateNumberOfMessagesVisible | CloudWatch, per DLQ | > 0, fixed |
| tool success rate | AgentInfra/Agents: ToolCalls by Outcome | CloudWatch math, per pool | tool_success_rate_percent |
| error rate | AgentInfra/Agents: Errors / Executions | CloudWatch math, per pool | error_rate_percent |
| tokens per session | AgentInfra/Agents: SessionTokens (Maximum) | CloudWatch, per pool | session_tokens |
| tokens per agent | AgentInfra/Agents: TokensUsed by AgentId | CloudWatch Insights, top agent | agent_tokens_per_hour |
| Redis engine CPU | AWS/ElastiCache: EngineCPUUtilization | CloudWatch, per node | redis_engine_cpu_percent |
| Redis memory | AWS/ElastiCache: DatabaseMemoryUsagePercentage | CloudWatch, per node | redis_memory_percent |
| Redis evictions | AWS/ElastiCache: Evictions (Sum) | CloudWatch, per node | redis_evictions |
| API 4XX rate, 5XX rate | AWS/ApiGateway: 4XXError, 5XXError (Average) | CloudWatch | api_4xx/api_5xx_rate_percent |
| API latency p95 | AWS/ApiGateway: Latency | CloudWatch | api_latency_p95_ms |
| GPU node count | kube-state-metrics: kube_node_status_allocatable | Prometheus rule | gpu_nodes_min |
| GPU utilisation low, high | DCGM exporter: DCGM_FI_DEV_GPU_UTIL | Prometheus | gpu_utilisation_low/high_percent |
| vLLM waiting requests | vLLM: vllm:num_requests_waiting | Prometheus rule, per model | vllm_waiting_requests |
| GPU XID errors | DCGM exporter: DCGM_FI_DEV_XID_ERRORS | Prometheus rule | > 0, fixed |
| monthly cost | AWS Budgets, cost by tag ``environment`` | budget notifications | ``MonthlyBudget`` |

Every metric has a widget on the dashboard (the top 10 agents by tokens, from the alarm's query); the
Prometheus-only ones share a text widget listing their alerts and how to open Prometheus.

Why some metrics alarm in Prometheus: without Container Insights nothing publishes GPU or model-server
metrics to CloudWatch. DCGM and vLLM expose Prometheus metrics only, and the GPU node count has no usable
CloudWatch source: the Auto Scaling groups behind EKS managed node groups get generated names (unknown in
a preview, so no dashboard or alarm can name them) and have group metrics collection off. Those metrics
alarm as ``PrometheusRule`` objects that kube-prometheus-stack picks up; the dashboard shows a text widget
listing them. They reach Alertmanager, not this SNS topic: :meth:`Observability.grant_publish` gives a role
(for instance Alertmanager's, with an ``sns_configs`` receiver) what it needs to publish here.

Choices, and why:

* **Redis per node.** ElastiCache publishes Redis metrics per member cluster (dimension ``CacheClusterId``:
  ``<group>-<shard:04>-<node:03>`` in cluster mode, ``<group>-<node:03>`` otherwise); there is no
  replication-group-level metric. The alarms are one per node id given in ``redis_node_ids``;
  :func:`redis_member_cluster_ids` computes them from the group's shape. Resharding or adding replicas
  changes the ids, so the stack recomputes them from the same settings it sizes the group with.
* **Per-agent tokens** cannot be one alarm per agent (agents come and go): one Metrics Insights alarm on
  ``SUM(TokensUsed) ... GROUP BY AgentId ORDER BY SUM() DESC LIMIT 1``, so it watches whichever agent used
  the most in the period, and the dashboard shows the top 10 with the same query.
* **Rates are metric math** (``aws.cloudwatch.MetricAlarm`` with ``metric_queries``): success rate is
  ``100 * success / (success + failure)`` and the error rate ``100 * Errors / Executions``; a period with
  no calls or no executions is healthy (100 % success, 0 % errors), not missing. The API's 4XX and 5XX
  metrics are already rates: their ``Average`` is errors per request, so those alarms compare the
  Average with the configured percentage / 100.
* **The encrypted topic.** CloudWatch alarms and AWS Budgets publish as their service principals, so the
  key policy lets ``cloudwatch.amazonaws.com`` and ``budgets.amazonaws.com`` use the key
  (``EncryptionKeyArgs.services``: ``kms:GenerateDataKey*`` and ``kms:Decrypt`` among its actions, only for
  this account through ``aws:SourceAccount``), and the topic policy lets them ``sns:Publish``, CloudWatch
  only for this environment's alarms (``aws:SourceArn`` ``alarm:<project>-<env>-*``), Budgets only for this
  account's budgets. Without the key statement the alarms deploy cleanly and deliver nothing.
* **Budgets** filter cost by the ``environment`` tag (``TagKeyValue`` ``user:environment$<env>``), which
  must be activated as a cost allocation tag in the billing console; notifications at an actual and a
  forecasted percentage go to the topic and to the budget's own e-mail recipients.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import agent_metrics as am
from . import iam
from .alarms import Comparison, metric_alarm
from .aws_env import AwsEnvironment
from .kms_key import EncryptionKey, EncryptionKeyArgs
from .naming import Naming
from .validation import Checker

SQS = "AWS/SQS"
ELASTICACHE = "AWS/ElastiCache"
API_GATEWAY = "AWS/ApiGateway"
AUTOSCALING = "AWS/AutoScaling"
PROMETHEUS_RELEASE = "kube-prometheus-stack"
"""The kube-prometheus-stack release name (``ClusterServices``); its rule selector matches every rule."""
TOKENS_PERIOD_SECONDS = 3600
"""Period of the per-agent token alarm: tokens per agent per hour (Metrics Insights alarms read 3 hours)."""
TOP_AGENTS_ON_DASHBOARD = 10

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DURATION = re.compile(r"^(\d+[smhdw])+$")
_WIDTH, _HEIGHT = 12, 6


@dataclass(frozen=True)
class Thresholds:
    """What each alarm and alerting rule compares with. Defaults are starting points; tune per environment."""

    execution_p95_ms: float | None = 30_000
    """Agent execution time p95 per pool, ms, > 0; None for no alarm. Default 30000."""
    execution_p99_ms: float | None = 60_000
    """Agent execution time p99 per pool, ms, > 0; None for no alarm. Default 60000."""
    error_rate_percent: float = 5.0
    """Failed executions per pool, percent of executions, 0-100 (alarm above). Default 5."""
    tool_success_rate_percent: float = 95.0
    """Successful tool calls per pool, percent, 0-100 (alarm below). Default 95."""
    session_tokens: int = 200_000
    """Tokens of one session (``SessionTokens`` Maximum per period), > 0: a runaway session. Default 200000."""
    agent_tokens_per_hour: int = 2_000_000
    """Tokens of the busiest agent in an hour, > 0 (Metrics Insights top-1). Default 2000000."""
    queue_depth: int = 1_000
    """Visible messages in a work queue, >= 1 (alarm above). Default 1000."""
    queue_oldest_message_seconds: int = 900
    """Age of a work queue's oldest message, s, >= 60 (alarm above). Default 900."""
    redis_engine_cpu_percent: float = 80.0
    """Redis engine (main thread) CPU per node, percent, 0-100. Default 80 (AWS suggests acting before 90)."""
    redis_memory_percent: float = 80.0
    """``DatabaseMemoryUsagePercentage`` per node, percent of maxmemory, 0-100. Default 80."""
    redis_evictions: int = 100
    """Evicted keys per node per period, >= 0 (alarm above). A few are expected with ``allkeys-lru`` and the
    tool-result cache; sustained evictions mean session state is being lost. Default 100."""
    api_4xx_rate_percent: float = 10.0
    """API 4XX responses, percent of requests, 0-100. Default 10."""
    api_5xx_rate_percent: float = 1.0
    """API 5XX responses, percent of requests, 0-100. Default 1."""
    api_latency_p95_ms: float = 5_000
    """API latency p95, ms, > 0. Streaming routes count their whole stream, so keep headroom. Default 5000."""
    period_seconds: int = 300
    """Period of the rate, latency, queue and Redis alarms: 60 or a multiple of it. Default 300."""
    evaluation_periods: int = 3
    """Periods each of those alarms looks at, >= 1. Default 3."""
    datapoints_to_alarm: int = 2
    """Breaching periods among them that fire the alarm, 1 to ``evaluation_periods``. Default 2."""
    gpu_utilisation_low_percent: float = 20.0
    """Prometheus: a GPU node's average utilisation below this over ``gpu_low_window`` (idle spend), 0-100.
    Default 20."""
    gpu_low_window: str = "30m"
    """Prometheus duration the low-utilisation average covers (the alert then holds 5m). Default 30m."""
    gpu_utilisation_high_percent: float = 95.0
    """Prometheus: a GPU node's average utilisation above this over ``gpu_high_window`` (saturated), 0-100.
    Default 95."""
    gpu_high_window: str = "15m"
    """Prometheus duration the high-utilisation average covers (the alert then holds 5m). Default 15m."""
    vllm_waiting_requests: int = 20
    """Prometheus: requests waiting in one model's vLLM replicas, summed, >= 1 (alert above). Default 20."""
    vllm_waiting_for: str = "5m"
    """How long the waiting requests stay above the threshold before the alert fires. Default 5m."""
    gpu_nodes_min: int = 1
    """Prometheus: alert when fewer GPU nodes than this are allocatable while model requests or pods wait,
    >= 1. Default 1 (none at all)."""
    gpu_nodes_for: str = "15m"
    """How long that lasts before the alert fires; the autoscaler gives a GPU node 15m to boot. Default 15m."""


@dataclass(frozen=True)
class MonthlyBudget:
    """An AWS Budgets cost budget for the environment's tagged resources."""

    limit_usd: float
    """Monthly limit in USD, > 0."""
    actual_percent: float = 80.0
    """Notify when actual cost passes this percentage of the limit, > 0. Default 80."""
    forecasted_percent: float = 100.0
    """Notify when forecasted cost passes this percentage of the limit, > 0. Default 100."""
    emails: tuple[str, ...] = ()
    """Extra recipients of the budget's notifications only (e.g. finance), at most 10. Default none."""
    tag_key: str = "environment"
    """Cost allocation tag that names the environment (activate it in Billing). Default ``environment``."""


@dataclass(frozen=True)
class ObservabilityArgs:
    naming: Naming
    """Names of the alarms, topic, key, dashboard and budget; ``naming.environment`` is the ``Environment``
    dimension of the agents' metrics."""
    env: AwsEnvironment
    """Account and region: dashboard region, topic ARN, key and topic policies."""
    queues: Mapping[str, str] = field(default_factory=dict)
    """Work queues to watch: logical name to physical ``QueueName`` (``TaskQueues.queue_names``)."""
    dead_letter_queues: Mapping[str, str] = field(default_factory=dict)
    """Dead-letter queues: the work queue's logical name to the DLQ's physical name."""
    worker_pools: Mapping[str, str] = field(default_factory=dict)
    """Agent worker pools: pool name (the ``Pool`` dimension) to its Auto Scaling group name."""
    redis_replication_group_id: str | None = None
    """The Redis replication group; None for no Redis (default)."""
    redis_node_ids: tuple[str, ...] = ()
    """Its member cluster ids (``CacheClusterId``), see :func:`redis_member_cluster_ids`; required with
    ``redis_replication_group_id``, each starting with it."""
    api_name: str | None = None
    """API Gateway REST API name (``ApiName``); None for no API (default)."""
    api_stage: str | None = None
    """Its stage (``Stage``); required with ``api_name``."""
    eks_cluster_name: str | None = None
    """The EKS cluster whose Prometheus holds the GPU rules; shown on the dashboard. Default None."""
    gpu_node_groups: tuple[str, ...] = ()
    """GPU node group names, shown on the dashboard next to the GPU rules. Default none."""
    model_names: tuple[str, ...] = ()
    """Served model names (vLLM's ``model_name`` label; pods are ``vllm-<name>-...``). Without any, the vLLM
    and GPU-node-count rules are skipped (the GPU utilisation and XID rules remain). Default none."""
    k8s_provider: k8s.Provider | None = None
    """Provider of the cluster for the ``PrometheusRule``; None skips the Prometheus rules (default)."""
    prometheus_namespace: str = "monitoring"
    """Namespace of kube-prometheus-stack (default ``monitoring``)."""
    thresholds: Thresholds = field(default_factory=Thresholds)
    """Alarm and rule thresholds (see :class:`Thresholds` for defaults)."""
    budget: MonthlyBudget | None = None
    """Monthly cost budget with notifications; None for none (default)."""
    alarm_emails: tuple[str, ...] = ()
    """E-mail addresses subscribed to the alarm topic (each must confirm once). Default none."""
    kms_deletion_window_days: int = 30
    """Deletion window of the topic's key, 7-30 (default 30)."""
    protect: bool = False
    """``protect`` on the topic and on its key (with retain-on-delete on the key). Default False."""
    queue_age_and_dlq_alarms: bool = True
    """Alarm on each queue's oldest-message age and each DLQ here; False when the queues component already does
    (``TaskQueues`` alarms on them, with the delivery delay in the threshold, to this topic)."""


def redis_member_cluster_ids(
    replication_group_id: str, *, shards: int, replicas_per_shard: int, cluster_mode: bool
) -> tuple[str, ...]:
    """The ``CacheClusterId`` of every node ElastiCache creates for a replication group of this shape."""
    nodes = range(1, replicas_per_shard + 2)
    if cluster_mode:
        return tuple(f"{replication_group_id}-{s:04d}-{n:03d}" for s in range(1, shards + 1) for n in nodes)
    return tuple(f"{replication_group_id}-{n:03d}" for n in nodes)


def alarm_topic(naming: Naming, env: AwsEnvironment) -> tuple[str, str]:
    """The alarm topic's name and ARN, known before deployment (other components' alarms notify it)."""
    topic = naming.name("alarms", max_length=256)
    return topic, env.arn("sns", topic)


class Observability(pulumi.ComponentResource):
    """Alarms on the key metrics to one encrypted topic, a dashboard, a budget and GPU alerting rules."""

    key: EncryptionKey
    """Encrypts the alarm topic; CloudWatch and Budgets may use it."""
    topic: aws.sns.Topic
    """The one topic every alarm and budget notification goes to."""
    topic_name: str
    """Its name."""
    topic_arn: str
    """Its ARN, computed from the name (known in a preview): pass it to other components' alarms."""
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """Every CloudWatch alarm, by resource name."""
    dashboard: aws.cloudwatch.Dashboard
    """The environment's dashboard."""
    dashboard_name: str
    """Its name."""
    budget: aws.budgets.Budget | None
    """The monthly cost budget, if configured."""
    prometheus_rule: k8s.apiextensions.CustomResource | None
    """The ``PrometheusRule`` with the GPU and model-server alerts, if a cluster provider was given."""
    prometheus_alerts: dict[str, str]
    """Alert name to its PromQL expression (empty without a provider)."""

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:observability:Observability", name, None, opts)
        _validate(name, args)
        self._args, self._name = args, name
        naming, env, t = args.naming, args.env, args.thresholds
        self._environment = naming.environment

        self.key = EncryptionKey(
            f"{name}-key",
            EncryptionKeyArgs(
                description=f"{naming.prefix}: alarm and budget notifications (SNS)",
                env=env,
                alias=naming.name("alarms"),
                services=("cloudwatch", "budgets"),
                deletion_window_days=args.kms_deletion_window_days,
                protect=args.protect,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.topic_name, self.topic_arn = alarm_topic(naming, env)
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            aws.sns.TopicArgs(
                name=self.topic_name,
                display_name=f"{naming.prefix} alarms"[:100],
                kms_master_key_id=self.key.arn,
                signature_version=2,
                tags={"Name": self.topic_name},
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            aws.sns.TopicPolicyArgs(arn=self.topic.arn, policy=self._topic_policy()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for address in args.alarm_emails:
            aws.sns.TopicSubscription(
                f"{name}-email-{_slug(address)}",
                aws.sns.TopicSubscriptionArgs(topic=self.topic.arn, protocol="email", endpoint=address),
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.alarms = {}
        self._alarm_names: list[str] = []
        self._widgets: list[dict[str, Any]] = []
        for pool in args.worker_pools:
            self._pool_alarms(pool, t)
            self._pool_widgets(pool, t)
        self._top_agents(t)
        self._queues(t)
        self._redis(t)
        self._api(t)
        self.prometheus_alerts = _prometheus_alerts(args) if args.k8s_provider is not None else {}
        self.prometheus_rule = self._prometheus_rule() if args.k8s_provider is not None else None
        self._widgets.append(_text_widget(self._prometheus_text()))

        self.dashboard_name = naming.name("overview", max_length=255)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            aws.cloudwatch.DashboardArgs(
                dashboard_name=self.dashboard_name, dashboard_body=json.dumps(_layout(self._widgets, env.region))
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.budget = self._budget(args.budget, topic_policy) if args.budget is not None else None

        self.register_outputs(
            {
                "topicArn": self.topic_arn,
                "topicName": self.topic_name,
                "keyArn": self.key.arn,
                "dashboardName": self.dashboard_name,
                "alarmNames": sorted(self._alarm_names),
                "budgetName": self.budget.name if self.budget is not None else None,
                "prometheusAlerts": sorted(self.prometheus_alerts),
            }
        )

    # --- access -------------------------------------------------------------------------------------

    def grant_publish(self, role: aws.iam.Role | str, *, label: str | None = None) -> aws.iam.RolePolicy:
        """Let ``role`` publish to the alarm topic (``sns:Publish``), with ``kms:GenerateDataKey`` and
        ``kms:Decrypt`` on the topic's key through SNS only: e.g. Alertmanager's role for Prometheus alerts.
        """
        role_label = label or (role if isinstance(role, str) else role.pulumi_resource_name)
        resource = f"{self._name}-publish-{role_label}"
        return iam.grant_policy(
            self,
            resource,
            role,
            iam.statement("PublishAlarms", ["sns:Publish"], [self.topic_arn]),
            self.key.grant_statement(
                "UseAlarmTopicKey",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                {"StringEquals": {"kms:ViaService": f"sns.{self._args.env.region}.amazonaws.com"}},
            ),
            named=True,
        )

    def _topic_policy(self) -> pulumi.Output[str]:
        env, account = self._args.env, self._args.env.account_id
        alarms = f"arn:{env.partition}:cloudwatch:{env.region}:{account}:alarm:{self._args.naming.prefix}-*"
        budgets = f"arn:{env.partition}:budgets::{account}:*"
        return iam.document(
            iam.statement(
                "CloudWatchAlarmsPublish",
                ["sns:Publish"],
                [self.topic_arn],
                principal={"Service": "cloudwatch.amazonaws.com"},
                conditions={"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": alarms}},
            ),
            iam.statement(
                "BudgetsPublish",
                ["sns:Publish"],
                [self.topic_arn],
                principal={"Service": "budgets.amazonaws.com"},
                conditions={"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": budgets}},
            ),
            iam.statement(
                "DenyInsecureTransport",
                ["sns:Publish"],
                [self.topic_arn],
                principal={"AWS": "*"},
                conditions={"Bool": {"aws:SecureTransport": "false"}},
                effect="Deny",
            ),
        )

    # --- alarms -------------------------------------------------------------------------------------

    def _alarm(
        self,
        role: str,
        *parts: str,
        description: str,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, str],
        statistic: str,
        comparison: Comparison,
        threshold: float,
        single: bool = False,
    ) -> None:
        """A one-metric alarm through :func:`metric_alarm`: ``single`` fires on one period of one minute."""
        t = self._args.thresholds
        resource = f"{self._name}-{'-'.join((*parts, role))}"
        alarm_name = self._args.naming.name(*parts, role, max_length=255)
        self._alarm_names.append(alarm_name)
        self.alarms[resource] = metric_alarm(
            resource,
            alarm_name=alarm_name,
            description=description,
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dimensions,
            statistic=statistic,
            comparison=comparison,
            threshold=threshold,
            period_seconds=60 if single else t.period_seconds,
            evaluation_periods=1 if single else t.evaluation_periods,
            datapoints_to_alarm=1 if single else t.datapoints_to_alarm,
            topic_arn=self.topic.arn,
            parent=self,
        )

    def _query_alarm(
        self,
        role: str,
        *parts: str,
        description: str,
        queries: Sequence[aws.cloudwatch.MetricAlarmMetricQueryArgs],
        comparison: Comparison,
        threshold: float,
        evaluation_periods: int,
        datapoints_to_alarm: int,
    ) -> None:
        """An alarm on metric math or a Metrics Insights query (the query marked ``return_data``)."""
        resource = f"{self._name}-{'-'.join((*parts, role))}"
        alarm_name = self._args.naming.name(*parts, role, max_length=255)
        self._alarm_names.append(alarm_name)
        actions = [self.topic.arn]
        self.alarms[resource] = aws.cloudwatch.MetricAlarm(
            resource,
            aws.cloudwatch.MetricAlarmArgs(
                name=alarm_name,
                alarm_description=description,
                metric_queries=list(queries),
                comparison_operator=comparison,
                threshold=threshold,
                evaluation_periods=evaluation_periods,
                datapoints_to_alarm=datapoints_to_alarm,
                treat_missing_data="notBreaching",
                actions_enabled=True,
                alarm_actions=actions,
                ok_actions=actions,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _pool_alarms(self, pool: str, t: Thresholds) -> None:
        dims = am.pool_dimensions(self._environment, pool)
        for stat, limit in (("p95", t.execution_p95_ms), ("p99", t.execution_p99_ms)):
            if limit is not None:
                self._alarm(
                    f"execution-{stat}",
                    "pool",
                    pool,
                    description=f"Pool {pool}: agent execution time {stat} over {limit:g} ms; check the model "
                    "servers, tool latency and the pool's scaling.",
                    namespace=am.NAMESPACE,
                    metric_name=am.EXECUTION_TIME,
                    dimensions=dims,
                    statistic=stat,
                    comparison="GreaterThanThreshold",
                    threshold=limit,
                )
        period = t.period_seconds
        self._query_alarm(
            "error-rate",
            "pool",
            pool,
            description=f"Pool {pool}: over {t.error_rate_percent:g}% of agent executions failed.",
            queries=[
                _query_metric("errors", am.NAMESPACE, am.ERRORS, dims, "Sum", period),
                _query_metric("executions", am.NAMESPACE, am.EXECUTIONS, dims, "Sum", period),
                _query_expression("rate", ERROR_RATE, "Error rate (%)"),
            ],
            comparison="GreaterThanThreshold",
            threshold=t.error_rate_percent,
            evaluation_periods=t.evaluation_periods,
            datapoints_to_alarm=t.datapoints_to_alarm,
        )
        self._query_alarm(
            "tool-success-rate",
            "pool",
            pool,
            description=f"Pool {pool}: under {t.tool_success_rate_percent:g}% of tool calls succeeded; check the "
            "tools' logs and their upstream services.",
            queries=[
                _query_metric("ok", am.NAMESPACE, am.TOOL_CALLS, {**dims, am.DIM_OUTCOME: "success"}, "Sum", period),
                _query_metric(
                    "failed", am.NAMESPACE, am.TOOL_CALLS, {**dims, am.DIM_OUTCOME: "failure"}, "Sum", period
                ),
                _query_expression("total", TOOL_CALLS_TOTAL, "Tool calls", return_data=False),
                _query_expression("rate", TOOL_SUCCESS_RATE, "Tool-call success rate (%)"),
            ],
            comparison="LessThanThreshold",
            threshold=t.tool_success_rate_percent,
            evaluation_periods=t.evaluation_periods,
            datapoints_to_alarm=t.datapoints_to_alarm,
        )
        self._alarm(
            "session-tokens",
            "pool",
            pool,
            description=f"Pool {pool}: a session used over {t.session_tokens} tokens; look for a looping agent.",
            namespace=am.NAMESPACE,
            metric_name=am.SESSION_TOKENS,
            dimensions=dims,
            statistic="Maximum",
            comparison="GreaterThanThreshold",
            threshold=t.session_tokens,
            single=True,
        )

    def _pool_widgets(self, pool: str, t: Thresholds) -> None:
        dims = am.pool_dimensions(self._environment, pool)
        asg = self._args.worker_pools[pool]
        agents = [am.NAMESPACE, am.EXECUTION_TIME, *_flat(dims)]
        self._widgets.append(
            _metric_widget(
                f"Agent execution time - {pool}",
                [[*agents, {"stat": s, "label": s}] for s in ("p50", "p95", "p99")],
                stat="p95",
                unit_label="ms",
                thresholds=[v for v in (t.execution_p95_ms, t.execution_p99_ms) if v is not None],
            )
        )
        self._widgets.append(
            _metric_widget(
                f"Error rate - {pool}",
                [
                    [am.NAMESPACE, am.ERRORS, *_flat(dims), {"id": "errors", "visible": False}],
                    [am.NAMESPACE, am.EXECUTIONS, *_flat(dims), {"id": "executions", "visible": False}],
                    [{"expression": ERROR_RATE, "id": "rate", "label": "errors / executions (%)"}],
                ],
                stat="Sum",
                unit_label="%",
                thresholds=[t.error_rate_percent],
            )
        )
        outcome = [am.NAMESPACE, am.TOOL_CALLS, *_flat(dims), am.DIM_OUTCOME]
        self._widgets.append(
            _metric_widget(
                f"Tool-call success rate - {pool}",
                [
                    [*outcome, "success", {"id": "ok", "visible": False}],
                    [*outcome, "failure", {"id": "failed", "visible": False}],
                    [{"expression": TOOL_CALLS_TOTAL, "id": "total", "visible": False}],
                    [{"expression": TOOL_SUCCESS_RATE, "id": "rate", "label": "success (%)"}],
                ],
                stat="Sum",
                unit_label="%",
                thresholds=[t.tool_success_rate_percent],
            )
        )
        sessions = [am.NAMESPACE, am.SESSION_TOKENS, *_flat(dims)]
        self._widgets.append(
            _metric_widget(
                f"Tokens per session - {pool}",
                [[*sessions, {"stat": s, "label": s}] for s in ("p50", "p95", "Maximum")],
                stat="Maximum",
                unit_label="tokens",
                thresholds=[t.session_tokens],
            )
        )
        self._widgets.append(
            _metric_widget(
                f"Worker instances - {pool}",
                [
                    [AUTOSCALING, m, "AutoScalingGroupName", asg, {"label": m}]
                    for m in ("GroupInServiceInstances", "GroupDesiredCapacity")
                ],
                stat="Average",
                unit_label="instances",
            )
        )

    def _top_agents(self, t: Thresholds) -> None:
        query = top_agents_query(self._environment, 1)
        self._query_alarm(
            "agent-tokens",
            "agents",
            description=f"An agent used over {t.agent_tokens_per_hour} tokens in an hour (the busiest agent, "
            "from a Metrics Insights query); see the dashboard's top agents.",
            queries=[
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="top",
                    expression=query,
                    period=TOKENS_PERIOD_SECONDS,
                    label="Tokens of the busiest agent",
                    return_data=True,
                )
            ],
            comparison="GreaterThanThreshold",
            threshold=t.agent_tokens_per_hour,
            evaluation_periods=1,
            datapoints_to_alarm=1,
        )
        self._widgets.append(
            _metric_widget(
                f"Tokens per agent - top {TOP_AGENTS_ON_DASHBOARD}",
                [
                    [
                        {
                            "expression": top_agents_query(self._environment, TOP_AGENTS_ON_DASHBOARD),
                            "id": "top",
                            "period": TOKENS_PERIOD_SECONDS,
                        }
                    ]
                ],
                stat="Sum",
                unit_label="tokens / hour",
                thresholds=[t.agent_tokens_per_hour],
                period=TOKENS_PERIOD_SECONDS,
            )
        )

    def _queues(self, t: Thresholds) -> None:
        args = self._args
        for logical, queue in args.queues.items():
            self._alarm(
                "depth",
                "queue",
                logical,
                description=f"{queue}: over {t.queue_depth} messages waiting; workers are behind or down.",
                namespace=SQS,
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue},
                statistic="Maximum",
                comparison="GreaterThanThreshold",
                threshold=t.queue_depth,
            )
            if not args.queue_age_and_dlq_alarms:
                continue
            self._alarm(
                "oldest-message",
                "queue",
                logical,
                description=f"{queue}: the oldest message waited over {t.queue_oldest_message_seconds}s.",
                namespace=SQS,
                metric_name="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": queue},
                statistic="Maximum",
                comparison="GreaterThanThreshold",
                threshold=t.queue_oldest_message_seconds,
            )
        for logical, dlq in args.dead_letter_queues.items() if args.queue_age_and_dlq_alarms else ():
            self._alarm(
                "dlq-depth",
                "queue",
                logical,
                description=f"{dlq}: messages failed every retry; inspect them, then redrive.",
                namespace=SQS,
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": dlq},
                statistic="Maximum",
                comparison="GreaterThanThreshold",
                threshold=0,
                single=True,
            )
        for title, metric, names, limits in (
            ("Task queue depth", "ApproximateNumberOfMessagesVisible", args.queues, [t.queue_depth]),
            ("Oldest message age", "ApproximateAgeOfOldestMessage", args.queues, [t.queue_oldest_message_seconds]),
            ("Dead-letter queue depth", "ApproximateNumberOfMessagesVisible", args.dead_letter_queues, [0]),
        ):
            if names:
                self._widgets.append(
                    _metric_widget(
                        title,
                        [[SQS, metric, "QueueName", q, {"label": q}] for q in names.values()],
                        stat="Maximum",
                        unit_label="seconds" if "Age" in metric else "messages",
                        thresholds=limits,
                    )
                )

    def _redis(self, t: Thresholds) -> None:
        group = self._args.redis_replication_group_id
        if group is None:
            return
        for title, metric, statistic, limit, what in (
            ("Redis engine CPU", "EngineCPUUtilization", "Maximum", t.redis_engine_cpu_percent, "engine CPU"),
            ("Redis memory", "DatabaseMemoryUsagePercentage", "Maximum", t.redis_memory_percent, "memory"),
            ("Redis evictions", "Evictions", "Sum", t.redis_evictions, "evictions"),
        ):
            role = {"EngineCPUUtilization": "cpu", "DatabaseMemoryUsagePercentage": "memory"}.get(metric, "evictions")
            for node in self._args.redis_node_ids:
                self._alarm(
                    role,
                    "redis",
                    node.removeprefix(f"{group}-"),
                    description=f"Redis {node} ({group}): {what} over {limit:g}; scale the node type or shards.",
                    namespace=ELASTICACHE,
                    metric_name=metric,
                    dimensions={"CacheClusterId": node},
                    statistic=statistic,
                    comparison="GreaterThanThreshold",
                    threshold=limit,
                )
            self._widgets.append(
                _metric_widget(
                    f"{title} - {group}",
                    [[ELASTICACHE, metric, "CacheClusterId", n, {"label": n}] for n in self._args.redis_node_ids],
                    stat=statistic,
                    unit_label="count" if metric == "Evictions" else "%",
                    thresholds=[limit],
                )
            )

    def _api(self, t: Thresholds) -> None:
        api, stage = self._args.api_name, self._args.api_stage
        if api is None or stage is None:
            return
        dims = {"ApiName": api, "Stage": stage}
        for metric, limit, what in (
            ("4XXError", t.api_4xx_rate_percent, "client errors (authorisation, validation, throttling)"),
            ("5XXError", t.api_5xx_rate_percent, "server errors (integration, mesh, model servers)"),
        ):
            self._alarm(
                f"{metric[0]}xx-rate",
                "api",
                description=f"API {api}/{stage}: over {limit:g}% of requests ended in {what}.",
                namespace=API_GATEWAY,
                metric_name=metric,
                dimensions=dims,
                # The metric's Average is errors per request: the threshold is the percentage / 100.
                statistic="Average",
                comparison="GreaterThanThreshold",
                threshold=limit / 100,
            )
        self._alarm(
            "latency-p95",
            "api",
            description=f"API {api}/{stage}: latency p95 over {t.api_latency_p95_ms:g} ms.",
            namespace=API_GATEWAY,
            metric_name="Latency",
            dimensions=dims,
            statistic="p95",
            comparison="GreaterThanThreshold",
            threshold=t.api_latency_p95_ms,
        )
        flat = _flat(dims)
        self._widgets.append(
            _metric_widget(
                f"API error rates - {api}/{stage}",
                [
                    [API_GATEWAY, "4XXError", *flat, {"id": "c4", "visible": False}],
                    [API_GATEWAY, "5XXError", *flat, {"id": "c5", "visible": False}],
                    [{"expression": "100 * c4", "id": "r4", "label": "4XX (%)"}],
                    [{"expression": "100 * c5", "id": "r5", "label": "5XX (%)"}],
                ],
                stat="Average",
                unit_label="%",
                thresholds=[t.api_4xx_rate_percent, t.api_5xx_rate_percent],
            )
        )
        self._widgets.append(
            _metric_widget(
                f"API latency - {api}/{stage}",
                [[API_GATEWAY, "Latency", *flat, {"stat": s, "label": s}] for s in ("p50", "p95", "p99")],
                stat="p95",
                unit_label="ms",
                thresholds=[t.api_latency_p95_ms],
            )
        )

    # --- budget -------------------------------------------------------------------------------------

    def _budget(self, budget: MonthlyBudget, topic_policy: aws.sns.TopicPolicy) -> aws.budgets.Budget:
        emails = list(budget.emails) or None

        def notify(kind: str, percent: float) -> aws.budgets.BudgetNotificationArgs:
            return aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                notification_type=kind,
                threshold=percent,
                threshold_type="PERCENTAGE",
                subscriber_sns_topic_arns=[self.topic.arn],
                subscriber_email_addresses=emails,
            )

        environment = self._environment
        return aws.budgets.Budget(
            f"{self._name}-budget",
            aws.budgets.BudgetArgs(
                name=self._args.naming.name("monthly-cost", max_length=100),
                budget_type="COST",
                time_unit="MONTHLY",
                limit_amount=f"{budget.limit_usd:.2f}",
                limit_unit="USD",
                cost_filters=[
                    aws.budgets.BudgetCostFilterArgs(
                        name="TagKeyValue", values=[f"user:{budget.tag_key}${environment}"]
                    )
                ],
                notifications=[
                    notify("ACTUAL", budget.actual_percent),
                    notify("FORECASTED", budget.forecasted_percent),
                ],
            ),
            # Budgets checks that it may publish to the topic when the notification is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[topic_policy]),
        )

    # --- Prometheus ---------------------------------------------------------------------------------

    def _prometheus_rule(self) -> k8s.apiextensions.CustomResource:
        args, t = self._args, self._args.thresholds
        labels = {"environment": self._environment}
        gpu_rules: list[dict[str, Any]] = [
            _rule(
                "GpuUtilisationLow",
                self.prometheus_alerts["GpuUtilisationLow"],
                "5m",
                "warning",
                labels,
                "GPU node {{ $labels.Hostname }} averaged {{ $value | humanize }}% utilisation over "
                f"{t.gpu_low_window}: idle GPUs cost money; lower the pool's minimum.",
            ),
            _rule(
                "GpuUtilisationHigh",
                self.prometheus_alerts["GpuUtilisationHigh"],
                "5m",
                "warning",
                labels,
                "GPU node {{ $labels.Hostname }} averaged {{ $value | humanize }}% utilisation over "
                f"{t.gpu_high_window}: the pool is saturated; raise its maximum.",
            ),
            _rule(
                "GpuXidError",
                self.prometheus_alerts["GpuXidError"],
                None,
                "critical",
                labels,
                "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}: drain and replace the "
                "node.",
            ),
        ]
        if "GpuNodesAbsentWhileRequestsWait" in self.prometheus_alerts:
            gpu_rules.append(
                _rule(
                    "GpuNodesAbsentWhileRequestsWait",
                    self.prometheus_alerts["GpuNodesAbsentWhileRequestsWait"],
                    t.gpu_nodes_for,
                    "critical",
                    labels,
                    f"Fewer than {t.gpu_nodes_min} GPU nodes are allocatable while model requests or model pods "
                    "wait: check the node groups' capacity (spot, quotas) and the Cluster Autoscaler.",
                )
            )
        model_rules = [
            _rule(
                "VllmRequestsWaiting",
                self.prometheus_alerts[f"VllmRequestsWaiting:{model}"],
                t.vllm_waiting_for,
                "warning",
                {**labels, "model_name": model},
                f"{{{{ $value }}}} requests wait in model {model}'s vLLM replicas (threshold "
                f"{t.vllm_waiting_requests}): KEDA should be adding replicas; check GPU capacity.",
            )
            for model in args.model_names
        ]
        groups = [{"name": "agent-infra-gpu", "rules": gpu_rules}]
        if model_rules:
            groups.append({"name": "agent-infra-models", "rules": model_rules})
        rule_name = args.naming.name("alerts")
        return k8s.apiextensions.CustomResource(
            f"{self._name}-prometheus-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=rule_name,
                namespace=args.prometheus_namespace,
                labels={"release": PROMETHEUS_RELEASE, "app.kubernetes.io/part-of": "agent-infra"},
            ),
            spec={"groups": groups},
            opts=pulumi.ResourceOptions(parent=self, provider=args.k8s_provider),
        )

    def _prometheus_text(self) -> str:
        args = self._args
        if not self.prometheus_alerts:
            return (
                "## GPU and model servers\n\nNo cluster: GPU node count, GPU utilisation, vLLM waiting requests "
                "and XID errors alarm in Prometheus when the environment runs EKS."
            )
        lines = [
            "## GPU and model servers (Prometheus)",
            "",
            "GPU node count, GPU utilisation (`DCGM_FI_DEV_GPU_UTIL`), vLLM waiting requests "
            "(`vllm:num_requests_waiting`) and XID errors (`DCGM_FI_DEV_XID_ERRORS`) have no CloudWatch source: "
            f"they alert in the cluster's Prometheus (`PrometheusRule` {args.naming.name('alerts')} in namespace "
            f"`{args.prometheus_namespace}`), through Alertmanager.",
            "",
            f"Cluster: `{args.eks_cluster_name or '-'}`; GPU node groups: "
            + (", ".join(f"`{g}`" for g in args.gpu_node_groups) or "-"),
            "",
            f"Open Prometheus: `kubectl -n {args.prometheus_namespace} port-forward "
            f"svc/{PROMETHEUS_RELEASE}-prometheus 9090`, then http://localhost:9090/alerts",
            "",
            "| alert | expression |",
            "| --- | --- |",
        ]
        lines += [f"| {alert} | `{expr}` |" for alert, expr in sorted(self.prometheus_alerts.items())]
        return "\n".join(lines)


# --- metric math and queries ----------------------------------------------------------------------------

ERROR_RATE = "IF(executions > 0, 100 * FILL(errors, 0) / executions, 0)"
"""Failed executions in percent; a period without executions counts as 0 %."""
TOOL_CALLS_TOTAL = "FILL(ok, 0) + FILL(failed, 0)"
TOOL_SUCCESS_RATE = "IF(total > 0, 100 * FILL(ok, 0) / total, 100)"
"""Successful tool calls in percent; a period without calls counts as 100 %."""


def top_agents_query(environment: str, limit: int) -> str:
    """Metrics Insights: tokens of the ``limit`` busiest agents of an environment."""
    return (
        f'SELECT SUM({am.TOKENS_USED}) FROM SCHEMA("{am.NAMESPACE}", {am.DIM_ENVIRONMENT}, {am.DIM_POOL}, '
        f"{am.DIM_AGENT}) WHERE {am.DIM_ENVIRONMENT} = '{environment}' GROUP BY {am.DIM_AGENT} "
        f"ORDER BY SUM() DESC LIMIT {limit}"
    )


def _query_metric(
    query_id: str, namespace: str, metric: str, dimensions: Mapping[str, str], stat: str, period: int
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, dimensions=dict(dimensions), stat=stat, period=period
        ),
        return_data=False,
    )


def _query_expression(
    query_id: str, expression: str, label: str, *, return_data: bool = True
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id, expression=expression, label=label, return_data=return_data
    )


def _prometheus_alerts(args: ObservabilityArgs) -> dict[str, str]:
    """Alert name (``VllmRequestsWaiting:<model>`` per model) to its PromQL expression."""
    t = args.thresholds
    util = "DCGM_FI_DEV_GPU_UTIL"
    alerts = {
        "GpuUtilisationLow": f"avg by (Hostname) (avg_over_time({util}[{t.gpu_low_window}])) "
        f"< {t.gpu_utilisation_low_percent:g}",
        "GpuUtilisationHigh": f"avg by (Hostname) (avg_over_time({util}[{t.gpu_high_window}])) "
        f"> {t.gpu_utilisation_high_percent:g}",
        "GpuXidError": "max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0",
    }
    if args.model_names:
        # Model names hold only letters, digits, ".", "_" and "-": only "." needs escaping, and inside a PromQL
        # string literal its backslash is escaped too.
        pods = "|".join(m.replace(".", "\\\\.") for m in args.model_names)
        alerts["GpuNodesAbsentWhileRequestsWait"] = (
            '(count(kube_node_status_allocatable{resource="nvidia_com_gpu"} > 0) or on() vector(0)) '
            f"< {t.gpu_nodes_min} and on() ("
            "sum(vllm:num_requests_waiting) > 0 or on() "
            f'sum(kube_pod_status_phase{{phase="Pending", pod=~"vllm-({pods})-.+"}}) > 0)'
        )
    for model in args.model_names:
        alerts[f"VllmRequestsWaiting:{model}"] = (
            f'sum(vllm:num_requests_waiting{{model_name="{model}"}}) > {t.vllm_waiting_requests}'
        )
    return alerts


def _rule(
    alert: str, expr: str, for_: str | None, severity: str, labels: Mapping[str, str], description: str
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_ is not None:
        rule["for"] = for_
    rule["labels"] = {**labels, "severity": severity}
    rule["annotations"] = {"summary": alert, "description": description}
    return rule


# --- dashboard ------------------------------------------------------------------------------------------


def _flat(dimensions: Mapping[str, str]) -> list[str]:
    return [part for item in dimensions.items() for part in item]


def _metric_widget(
    title: str,
    metrics: list[list[Any]],
    *,
    stat: str,
    unit_label: str,
    thresholds: Sequence[float] = (),
    period: int = 300,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "view": "timeSeries",
        "stacked": False,
        "stat": stat,
        "period": period,
        "metrics": metrics,
        "yAxis": {"left": {"label": unit_label, "showUnits": False}},
    }
    if thresholds:
        properties["annotations"] = {"horizontal": [{"label": "threshold", "value": v} for v in thresholds]}
    return {"type": "metric", "properties": properties}


def _text_widget(markdown: str) -> dict[str, Any]:
    return {"type": "text", "width": 24, "properties": {"markdown": markdown}}


def _layout(widgets: list[dict[str, Any]], region: str) -> dict[str, Any]:
    """The dashboard body: two metric widgets a row, text full width; metric widgets read ``region``."""
    placed, x, y = [], 0, 0
    for widget in widgets:
        width = widget.get("width", _WIDTH)
        if x + width > 24:
            x, y = 0, y + _HEIGHT
        properties = widget["properties"]
        if widget["type"] == "metric":
            properties = {**properties, "region": region}
        placed.append(
            {"type": widget["type"], "x": x, "y": y, "width": width, "height": _HEIGHT, "properties": properties}
        )
        x += width
    return {"widgets": placed}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --- validation -----------------------------------------------------------------------------------------


def _validate(name: str, args: ObservabilityArgs) -> None:
    checker = Checker(f"Observability {name}")
    t = args.thresholds
    percent = "a percentage, 0-100"
    for label, value in (
        ("error_rate_percent", t.error_rate_percent),
        ("tool_success_rate_percent", t.tool_success_rate_percent),
        ("redis_engine_cpu_percent", t.redis_engine_cpu_percent),
        ("redis_memory_percent", t.redis_memory_percent),
        ("api_4xx_rate_percent", t.api_4xx_rate_percent),
        ("api_5xx_rate_percent", t.api_5xx_rate_percent),
        ("gpu_utilisation_low_percent", t.gpu_utilisation_low_percent),
        ("gpu_utilisation_high_percent", t.gpu_utilisation_high_percent),
    ):
        checker.check(f"thresholds.{label}", value, lambda v: 0 <= v <= 100, percent)
    for label, positive in (
        ("execution_p95_ms", t.execution_p95_ms),
        ("execution_p99_ms", t.execution_p99_ms),
        ("api_latency_p95_ms", t.api_latency_p95_ms),
        ("session_tokens", t.session_tokens),
        ("agent_tokens_per_hour", t.agent_tokens_per_hour),
        ("queue_depth", t.queue_depth),
        ("vllm_waiting_requests", t.vllm_waiting_requests),
        ("gpu_nodes_min", t.gpu_nodes_min),
    ):
        checker.check(f"thresholds.{label}", positive, lambda v: v is None or v > 0, "a positive number")
    checker.check("thresholds.redis_evictions", t.redis_evictions, lambda v: v >= 0, "0 or more")
    checker.check(
        "thresholds.queue_oldest_message_seconds", t.queue_oldest_message_seconds, lambda v: v >= 60, "at least 60"
    )
    checker.check("thresholds.period_seconds", t.period_seconds, lambda v: v >= 60 and v % 60 == 0, "a multiple of 60")
    checker.check("thresholds.evaluation_periods", t.evaluation_periods, lambda v: v >= 1, "at least 1")
    checker.check(
        "thresholds.datapoints_to_alarm",
        t.datapoints_to_alarm,
        lambda v: 1 <= v <= t.evaluation_periods,
        "1 to evaluation_periods",
    )
    for label, duration in (
        ("gpu_low_window", t.gpu_low_window),
        ("gpu_high_window", t.gpu_high_window),
        ("vllm_waiting_for", t.vllm_waiting_for),
        ("gpu_nodes_for", t.gpu_nodes_for),
    ):
        checker.check(f"thresholds.{label}", duration, lambda v: bool(_DURATION.match(v)), "a duration such as 15m")

    names_ok = "a mapping of non-empty names"
    for label, names in (
        ("queues", args.queues),
        ("dead_letter_queues", args.dead_letter_queues),
        ("worker_pools", args.worker_pools),
    ):
        checker.check(label, names, lambda v: all(k and isinstance(q, str) and q for k, q in v.items()), names_ok)
    group = args.redis_replication_group_id
    checker.check(
        "redis_node_ids",
        args.redis_node_ids,
        lambda v: (not v) if group is None else bool(v) and all(n.startswith(f"{group}-") for n in v),
        f"member cluster ids starting with {group}-" if group else "none without redis_replication_group_id",
    )
    checker.check(
        "api_stage",
        args.api_stage,
        lambda v: (v is None) == (args.api_name is None) and (v is None or bool(v)),
        "a stage name exactly when api_name is set",
    )
    checker.check(
        "model_names",
        args.model_names,
        lambda v: all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", m) for m in v),
        "served model names (letters, digits, dots, dashes, underscores)",
    )
    checker.check(
        "alarm_emails",
        args.alarm_emails,
        # Each address names its subscription's resource, so two must not reduce to the same slug.
        lambda v: all(_EMAIL.match(a) for a in v) and len({_slug(a) for a in v}) == len(v),
        "distinct e-mail addresses",
    )
    budget = args.budget
    if budget is not None:
        checker.check("budget.limit_usd", budget.limit_usd, lambda v: v > 0, "a positive amount")
        checker.check("budget.actual_percent", budget.actual_percent, lambda v: v > 0, "a positive percentage")
        checker.check("budget.forecasted_percent", budget.forecasted_percent, lambda v: v > 0, "a positive percentage")
        checker.check(
            "budget.emails",
            budget.emails,
            lambda v: len(v) <= 10 and all(_EMAIL.match(a) for a in v),
            "at most 10 e-mail addresses",
        )
        checker.check("budget.tag_key", budget.tag_key, lambda v: bool(v) and "$" not in v, "a tag key")
    checker.check("kms_deletion_window_days", args.kms_deletion_window_days, lambda v: 7 <= v <= 30, "7 to 30 days")
    checker.done()
