"""CloudWatch metric alarms: one helper, so every component alarms the same way.

An alarm notifies the same topic when it fires and when it clears (``ok_actions``), so an on-call
channel sees both ends of an incident; with no topic the alarm still shows in the console.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import pulumi
import pulumi_aws as aws

from .validation import Checker

Comparison = Literal[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
]
#: Basic statistics; percentiles (``p95``, ``p99.9``) are passed as CloudWatch's extended statistic.
BASIC_STATISTICS = ("Average", "Maximum", "Minimum", "SampleCount", "Sum")
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?|100)$")

MissingData = Literal["breaching", "notBreaching", "ignore", "missing"]

#: Periods CloudWatch accepts below a minute (high-resolution metrics); otherwise a multiple of 60.
_HIGH_RESOLUTION_PERIODS = (10, 20, 30)


def metric_alarm(
    resource_name: str,
    *,
    alarm_name: str,
    description: str,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, pulumi.Input[str]],
    statistic: str,
    comparison: Comparison,
    threshold: float,
    period_seconds: int = 60,
    evaluation_periods: int = 1,
    datapoints_to_alarm: int | None = None,
    treat_missing_data: MissingData = "notBreaching",
    topic_arn: pulumi.Input[str] | None = None,
    parent: pulumi.Resource,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm on one metric: ``statistic`` over ``period_seconds``, in breach for ``datapoints_to_alarm``
    of the last ``evaluation_periods`` periods (default: all of them).

    ``topic_arn`` (an SNS topic) receives both the alarm and its recovery; None leaves the alarm without
    actions. Missing data counts as not breaching by default: an idle queue stops sending metrics.
    """
    datapoints = evaluation_periods if datapoints_to_alarm is None else datapoints_to_alarm
    checker = Checker(f"alarm {resource_name}")
    checker.check(
        "period_seconds",
        period_seconds,
        lambda v: v in _HIGH_RESOLUTION_PERIODS or (v >= 60 and v % 60 == 0),
        "10, 20, 30 or a multiple of 60",
    )
    checker.check("evaluation_periods", evaluation_periods, lambda v: v >= 1, "at least 1")
    checker.check("datapoints_to_alarm", datapoints, lambda v: 1 <= v <= evaluation_periods, "1 to evaluation_periods")
    checker.check("alarm_name", alarm_name, lambda v: 0 < len(v) <= 255, "1 to 255 characters")
    checker.check(
        "statistic",
        statistic,
        lambda v: v in BASIC_STATISTICS or bool(_PERCENTILE.match(v)),
        f"one of {', '.join(BASIC_STATISTICS)} or a percentile such as p95",
    )
    percentile = bool(_PERCENTILE.match(statistic))

    checker.done()
    actions = [topic_arn] if topic_arn is not None else []
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        aws.cloudwatch.MetricAlarmArgs(
            name=alarm_name,
            alarm_description=description,
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dict(dimensions),
            statistic=None if percentile else statistic,
            extended_statistic=statistic if percentile else None,
            comparison_operator=comparison,
            threshold=threshold,
            period=period_seconds,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints,
            treat_missing_data=treat_missing_data,
            actions_enabled=True,
            alarm_actions=actions,
            ok_actions=actions,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
