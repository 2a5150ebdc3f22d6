"""The agents' metric contract: what every agent worker publishes to CloudWatch, and under which names.

Worker pools scale on these metrics and the observability component alarms on them, so both import
them from here. Agents publish with ``PutMetricData`` (or the CloudWatch embedded metric format in
their logs) in the namespace below; the instance role allows ``cloudwatch:PutMetricData`` for this
namespace only.

| metric | unit | dimensions | meaning |
| --- | --- | --- | --- |
| ``ExecutionTime`` | Milliseconds | Environment, Pool | wall time of one agent task (p50/p95/p99 from it) |
| ``Executions`` | Count | Environment, Pool | tasks finished, successfully or not |
| ``Errors`` | Count | Environment, Pool | tasks that failed |
| ``ToolCalls`` | Count | Environment, Pool, Outcome | tool invocations; Outcome is ``success`` or ``failure`` |
| ``TokensUsed`` | Count | Environment, Pool, AgentId | model tokens per agent (query with Metrics Insights) |
| ``SessionTokens`` | Count | Environment, Pool | model tokens per session, published once when a session ends |
"""

from __future__ import annotations

NAMESPACE = "AgentInfra/Agents"

EXECUTION_TIME = "ExecutionTime"
EXECUTIONS = "Executions"
ERRORS = "Errors"
TOOL_CALLS = "ToolCalls"
TOKENS_USED = "TokensUsed"
SESSION_TOKENS = "SessionTokens"

DIM_ENVIRONMENT = "Environment"
DIM_POOL = "Pool"
DIM_OUTCOME = "Outcome"
DIM_AGENT = "AgentId"


def pool_dimensions(environment: str, pool: str) -> dict[str, str]:
    """The dimensions every pool-level metric carries."""
    return {DIM_ENVIRONMENT: environment, DIM_POOL: pool}
