"""API Gateway (REST) rules: an authoriser on every method, throttling, access logs, WAF in prod."""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from .framework import Reporter, Rule, attached, depends_through, of_type, present, stack_rule

METHOD = "aws:apigateway/method:Method"
RESOURCE = "aws:apigateway/resource:Resource"
STAGE = "aws:apigateway/stage:Stage"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"

AUTHORIZER = Rule(
    id="AI-APIG-001",
    name="apigw-method-authorizer",
    description="Every API Gateway method has an authoriser, except the public paths the rule names.",
    severity=Severity.CRITICAL,
    fix="Give the route a Cognito or Lambda authoriser (components.api_gateway requires one per route).",
    resource_types=(METHOD, RESOURCE),
    checkov=("CKV_AWS_59",),
    cdk_nag=("AwsSolutions-APIG4", "AwsSolutions-COG4"),
    config={"publicPaths": {"type": "array", "items": {"type": "string"}, "default": ["health"]}},
)


@stack_rule(AUTHORIZER)
def authorizer(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    public = set(cfg["publicPaths"])
    for method in of_type(resources, METHOD):
        if method.props.get("authorization") not in (None, "NONE"):
            continue
        paths = [
            str(r.props.get("pathPart"))
            for r in method.property_dependencies.get("resourceId", [])
            if r.resource_type == RESOURCE
        ]
        if not (paths and all(p in public for p in paths)):
            report(f"method {method.name!r} ({method.props.get('httpMethod')}) has no authoriser.", method.urn)


THROTTLING = Rule(
    id="AI-APIG-002",
    name="apigw-throttling",
    description="API stages throttle every method, and usage plans carry a rate and a burst.",
    severity=Severity.HIGH,
    fix="Add stage method settings (*/*) with throttling_rate_limit and throttling_burst_limit, and throttle "
    "settings on every usage plan.",
    resource_types=(STAGE, METHOD_SETTINGS, USAGE_PLAN),
)


@stack_rule(THROTTLING)
def throttling(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    settings = of_type(resources, METHOD_SETTINGS)
    for stage in of_type(resources, STAGE):
        mine = [s for s in settings if depends_through(s, "stageName", stage)]
        limited = [
            s
            for s in mine
            if s.props.get("methodPath") == "*/*"
            and float((s.props.get("settings") or {}).get("throttlingRateLimit") or 0) > 0
            and int((s.props.get("settings") or {}).get("throttlingBurstLimit") or 0) > 0
        ]
        if not limited:
            report(f"stage {stage.name!r} has no default (*/*) throttling.", stage.urn)
    for plan in of_type(resources, USAGE_PLAN):
        throttle = plan.props.get("throttleSettings") or {}
        if not (float(throttle.get("rateLimit") or 0) > 0 and int(throttle.get("burstLimit") or 0) > 0):
            report(f"usage plan {plan.name!r} has no rate and burst limit.", plan.urn)


ACCESS_LOGS = Rule(
    id="AI-APIG-003",
    name="apigw-access-logging",
    description="API stages write access logs to CloudWatch and trace with X-Ray.",
    severity=Severity.MEDIUM,
    fix="Set access_log_settings to an encrypted log group and xray_tracing_enabled.",
    resource_types=(STAGE,),
    checkov=("CKV_AWS_76", "CKV_AWS_73"),
    cdk_nag=("AwsSolutions-APIG1",),
)


@stack_rule(ACCESS_LOGS)
def access_logs(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    for stage in of_type(resources, STAGE):
        if not present(stage.props.get("accessLogSettings") or {}, "destinationArn"):
            report(f"stage {stage.name!r} writes no access logs.", stage.urn)


WAF = Rule(
    id="AI-APIG-004",
    name="apigw-waf",
    description="API stages are protected by a WAF web ACL (required where enabled: prod).",
    severity=Severity.HIGH,
    fix="Associate the stage with the WAF web ACL (components.api_gateway does).",
    resource_types=(STAGE, WAF_ASSOCIATION),
    checkov=("CKV2_AWS_29",),
    cdk_nag=("AwsSolutions-APIG3",),
)


@stack_rule(WAF)
def waf(resources: list[PolicyResource], report: Reporter, cfg: dict[str, Any], _: StackValidationArgs) -> None:
    for stage in of_type(resources, STAGE):
        if not attached(resources, WAF_ASSOCIATION, "resourceArn", stage):
            report(f"stage {stage.name!r} has no WAF web ACL.", stage.urn)


RULES = [authorizer, throttling, access_logs, waf]
