"""The external API: authenticated and validated methods, rate limits at every level, the private path to the mesh."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest
from helpers import by_name, record_component, resources_of

from agentinfra.gate import evaluate
from components.api_gateway import (
    HEALTH_ROUTE,
    ApiGateway,
    ApiGatewayArgs,
    CognitoAuthorizer,
    CustomDomain,
    LambdaAuthorizer,
    MeshIngressRef,
    QuotaPeriod,
    RouteSpec,
    RouteTarget,
    Throttle,
    UsagePlanTier,
    WafSettings,
    routes_fingerprint,
)
from components.aws_env import AwsEnvironment
from components.eks_cluster import REQUIRED_ADDONS, EksCluster, EksClusterArgs, NodeGroupSize
from components.naming import Naming
from components.validation import InputPropertiesError

NAMING = Naming("agent-infra", "prod")
ENV = AwsEnvironment("123456789012", "us-east-1")
KEY = "arn:aws:kms:us-east-1:123456789012:key/logs"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:jwt-authoriser"
POOL = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc"
SUBNETS = ["subnet-a", "subnet-b", "subnet-c"]
GATE_CONFIG = {
    "all": "mandatory",
    "required-tags": "disabled",
    "protect-stateful": "disabled",
    "allowed-instance-types": "disabled",
}

METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
SETTINGS = "aws:apigateway/methodSettings:MethodSettings"

TASKS = RouteSpec("agents/{agent_id}/tasks", "POST", throttle=Throttle(20, 40), request_schema={"type": "object"})
CHAT = RouteSpec("agents/{agent_id}/chat", "POST", streaming=True, throttle=Throttle(5, 10))
SUMMARY = RouteSpec(
    "agents/{agent_id}/summary",
    "GET",
    request_templates={"application/json": '{"agent": "$input.params(\'agent_id\')"}'},
    response_templates={"application/json": "$input.json('$.summary')"},
)
ROUTES = (HEALTH_ROUTE, TASKS, CHAT, SUMMARY)
TIERS = (
    UsagePlanTier("free", Throttle(2, 5), 1000, QuotaPeriod.DAY, api_keys=("acme",)),
    UsagePlanTier("pro", Throttle(50, 100), 1_000_000, QuotaPeriod.MONTH, api_keys=("globex", "initech")),
)


def _args(**changes: Any) -> ApiGatewayArgs:
    base: dict[str, Any] = dict(
        naming=NAMING,
        env=ENV,
        routes=ROUTES,
        authorizer=LambdaAuthorizer(function_arn=FUNCTION),
        mesh_ingress=MeshIngressRef("istio-ingress", "istio-ingressgateway", 80),
        vpc_id="vpc-0123",
        vpc_cidr="10.30.0.0/16",
        private_subnet_ids=SUBNETS,
        log_kms_key_arn=KEY,
        waf=None,
    )
    base.update(changes)
    return ApiGatewayArgs(**base)


def _cluster() -> EksCluster:
    return EksCluster(
        "eks",
        EksClusterArgs(
            naming=NAMING,
            env=ENV,
            version="1.32",
            private_subnet_ids=SUBNETS,
            log_kms_key_arn=KEY,
            addon_versions={addon: "v1.0.0-eksbuild.1" for addon in REQUIRED_ADDONS},
            system_nodes=NodeGroupSize(("m7i.large",), 3, 3, 6),
        ),
    )


def _plan(with_cluster: bool = False, **changes: Any) -> dict[str, Any]:
    def build() -> None:
        cluster = _cluster() if with_cluster else None
        api = ApiGateway("api", _args(cluster=cluster, **changes))
        pulumi.export("invokeUrl", api.invoke_url)

    return record_component(build)


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    """Cognito with a new user pool, custom domain, usage plans, WAF, the cluster, the account settings."""
    return _plan(
        with_cluster=True,
        authorizer=CognitoAuthorizer(create_user_pool=True),
        custom_domain=CustomDomain("api.example.com", "arn:aws:acm:us-east-1:123456789012:certificate/abc"),
        usage_plans=TIERS,
        waf=WafSettings(rate_limit=500, window_seconds=60),
        owns_account_settings=True,
        protect=True,
    )


@pytest.fixture(scope="module")
def dev() -> dict[str, Any]:
    """A Lambda authoriser, no cluster, no custom domain, no usage plans, no WAF, no account settings."""
    return _plan()


def _urn(m: dict[str, Any], name: str, type_: str | None = None) -> str:
    return next(r["urn"] for r in m["resources"] if r["name"] == name and (type_ is None or r["type"] == type_))


def _by_type(m: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    return next(r for r in resources_of(m, type_) if r["name"] == name)


@pytest.mark.parametrize(("plan", "authorization"), [("prod", "COGNITO_USER_POOLS"), ("dev", "CUSTOM")])
def test_every_method_has_the_authoriser_and_the_validator_but_the_public_health_check(
    plan: str, authorization: str, request: pytest.FixtureRequest
) -> None:
    m = request.getfixturevalue(plan)
    authorizer = _urn(m, "api-authorizer", "aws:apigateway/authorizer:Authorizer")
    validator = by_name(m, "api-validator")
    assert validator["inputs"]["validateRequestBody"] is True
    assert validator["inputs"]["validateRequestParameters"] is True
    methods = {r["name"]: r for r in resources_of(m, METHOD)}
    assert len(methods) == len(ROUTES)
    for method_name, method in methods.items():
        assert method["propertyDependencies"]["requestValidatorId"] == [validator["urn"]], method_name
        if method_name == "api-GET-health":
            assert method["inputs"]["authorization"] == "NONE" and "authorizerId" not in method["inputs"]
            continue
        assert method["inputs"]["authorization"] == authorization, method_name
        assert method["propertyDependencies"]["authorizerId"] == [authorizer], method_name
    tasks = methods["api-POST-agents/{agent_id}/tasks"]
    assert tasks["inputs"]["requestParameters"] == {"method.request.path.agent_id": True}
    assert tasks["propertyDependencies"]["requestModels"] == [
        _urn(m, "api-POST-agents/{agent_id}/tasks", "aws:apigateway/model:Model")
    ]


def test_cognito_authoriser_uses_a_new_pool_with_a_strong_password_policy_and_optional_mfa(
    prod: dict[str, Any],
) -> None:
    authorizer = by_name(prod, "api-authorizer")
    assert authorizer["inputs"]["type"] == "COGNITO_USER_POOLS"
    assert authorizer["inputs"]["identitySource"] == "method.request.header.Authorization"
    pool = by_name(prod, "api-users")
    assert authorizer["propertyDependencies"]["providerArns"] == [pool["urn"]]
    inputs = pool["inputs"]
    assert inputs["passwordPolicy"]["minimumLength"] >= 14
    assert all(inputs["passwordPolicy"][f"require{kind}"] for kind in ("Lowercase", "Uppercase", "Numbers", "Symbols"))
    assert inputs["mfaConfiguration"] == "OPTIONAL" and inputs["softwareTokenMfaConfiguration"] == {"enabled": True}
    assert inputs["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": True}
    assert inputs["deletionProtection"] == "ACTIVE" and pool["options"]["protect"] is True
    # The backend learns who called from a header API Gateway sets, not one the client sends.
    chat = _by_type(prod, INTEGRATION, "api-POST-agents/{agent_id}/chat")
    assert chat["inputs"]["requestParameters"]["integration.request.header.X-Authenticated-Subject"] == (
        "context.authorizer.claims.sub"
    )


def test_an_existing_user_pool_is_referenced_not_created() -> None:
    m = _plan(authorizer=CognitoAuthorizer(user_pool_arn=POOL))
    assert by_name(m, "api-authorizer")["inputs"]["providerArns"] == [POOL]
    assert not resources_of(m, "aws:cognito/userPool:UserPool")


def test_lambda_authoriser_validates_bearer_tokens_and_only_this_api_may_invoke_it(dev: dict[str, Any]) -> None:
    authorizer = by_name(dev, "api-authorizer")["inputs"]
    assert authorizer["type"] == "TOKEN" and authorizer["authorizerResultTtlInSeconds"] == 300
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    assert authorizer["identityValidationExpression"].startswith("^Bearer ")
    assert authorizer["authorizerUri"] == (
        f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FUNCTION}/invocations"
    )
    permission = _by_type(dev, "aws:lambda/permission:Permission", "api-authorizer")
    assert permission["inputs"]["principal"] == "apigateway.amazonaws.com"
    assert permission["inputs"]["sourceAccount"] == "123456789012"
    assert permission["propertyDependencies"]["sourceArn"] == [_urn(dev, "api-api")]


def test_regional_api_on_a_tls13_custom_domain_at_base_path_v1_with_the_default_endpoint_off(
    prod: dict[str, Any], dev: dict[str, Any]
) -> None:
    api = by_name(prod, "api-api")["inputs"]
    assert api["endpointConfiguration"] == {"types": "REGIONAL"}
    assert api["disableExecuteApiEndpoint"] is True
    assert (api["securityPolicy"], api["endpointAccessMode"]) == ("SecurityPolicy_TLS13_1_2_2021_06", "STRICT")
    domain = by_name(prod, "api-domain")["inputs"]
    assert domain["domainName"] == "api.example.com"
    assert domain["regionalCertificateArn"].startswith("arn:aws:acm:us-east-1:")
    assert domain["endpointConfiguration"] == {"types": "REGIONAL"}
    assert (domain["securityPolicy"], domain["endpointAccessMode"]) == ("SecurityPolicy_TLS13_1_2_2021_06", "STRICT")
    mapping = by_name(prod, "api-v1")
    assert mapping["inputs"]["basePath"] == "v1" and mapping["inputs"]["stageName"] == "v1"
    assert mapping["propertyDependencies"]["domainName"] == [_urn(prod, "api-domain")]
    assert prod["outputs"]["invokeUrl"] == "https://api.example.com/v1"
    # Without a custom domain (dev) the execute-api endpoint is the way in.
    assert by_name(dev, "api-api")["inputs"]["disableExecuteApiEndpoint"] is False
    assert not resources_of(dev, "aws:apigateway/domainName:DomainName")


def test_stage_v1_has_xray_json_access_logs_to_an_encrypted_group_and_no_cache(prod: dict[str, Any]) -> None:
    stage = by_name(prod, "api-stage")
    inputs = stage["inputs"]
    assert inputs["stageName"] == "v1" and inputs["xrayTracingEnabled"] is True
    assert inputs["cacheClusterEnabled"] is False
    access = by_name(prod, "api-access-logs")
    assert access["inputs"]["name"] == "/agent-infra/prod/api/access"
    assert access["inputs"]["kmsKeyId"] == KEY and access["inputs"]["retentionInDays"] == 90
    assert stage["propertyDependencies"]["accessLogSettings"] == [access["urn"]]
    record = json.loads(inputs["accessLogSettings"]["format"])
    for fieldname in ("requestId", "ip", "caller", "user", "requestTime", "httpMethod", "resourcePath", "status"):
        assert fieldname in record
    assert {"protocol", "responseLength", "integrationLatency", "apiKeyId"} <= set(record)
    # The execution-log group API Gateway would otherwise create unencrypted, with no expiry.
    execution = by_name(prod, "api-execution-logs")["inputs"]
    assert execution["kmsKeyId"] == KEY and execution["retentionInDays"] == 90
    assert _urn(prod, "api-execution-logs") in stage["dependencies"]


def test_stage_defaults_and_each_route_have_a_throttle_with_info_logging_and_metrics(prod: dict[str, Any]) -> None:
    settings = {r["inputs"]["methodPath"]: r for r in resources_of(prod, SETTINGS)}
    defaults = settings["*/*"]["inputs"]["settings"]
    assert (defaults["throttlingRateLimit"], defaults["throttlingBurstLimit"]) == (100, 200)
    expected = {
        "*/*": (100, 200),
        "health/GET": (100, 200),
        "agents/{agent_id}/tasks/POST": (20, 40),
        "agents/{agent_id}/chat/POST": (5, 10),
        "agents/{agent_id}/summary/GET": (100, 200),
    }
    assert set(settings) == set(expected)
    stage = _urn(prod, "api-stage")
    for path, (rate, burst) in expected.items():
        record = settings[path]
        values = record["inputs"]["settings"]
        assert (values["throttlingRateLimit"], values["throttlingBurstLimit"]) == (rate, burst), path
        assert values["loggingLevel"] == "INFO" and values["metricsEnabled"] is True, path
        assert values["dataTraceEnabled"] is False and values["cachingEnabled"] is False, path
        assert record["propertyDependencies"]["stageName"] == [stage]


def test_usage_plans_per_tier_have_throttle_quota_and_aws_generated_keys(prod: dict[str, Any]) -> None:
    plans = {r["name"]: r for r in resources_of(prod, "aws:apigateway/usagePlan:UsagePlan")}
    assert set(plans) == {"api-plan-free", "api-plan-pro"}
    pro = plans["api-plan-pro"]
    assert pro["inputs"]["throttleSettings"] == {"rateLimit": 50, "burstLimit": 100}
    assert pro["inputs"]["quotaSettings"] == {"limit": 1_000_000, "period": "MONTH"}
    assert plans["api-plan-free"]["inputs"]["quotaSettings"] == {"limit": 1000, "period": "DAY"}
    assert pro["inputs"]["apiStages"][0]["stage"] == "v1"
    assert pro["propertyDependencies"]["apiStages"] == sorted([_urn(prod, "api-api"), _urn(prod, "api-stage")])
    keys = {r["name"]: r for r in resources_of(prod, "aws:apigateway/apiKey:ApiKey")}
    assert set(keys) == {"api-key-acme", "api-key-globex", "api-key-initech"}
    assert all("value" not in k["inputs"] and k["inputs"]["enabled"] is True for k in keys.values())
    links = {r["name"]: r for r in resources_of(prod, "aws:apigateway/usagePlanKey:UsagePlanKey")}
    globex = links["api-key-globex"]
    assert globex["inputs"]["keyType"] == "API_KEY"
    assert globex["propertyDependencies"]["keyId"] == [keys["api-key-globex"]["urn"]]
    assert globex["propertyDependencies"]["usagePlanId"] == [pro["urn"]]
    required = {r["name"]: r["inputs"]["apiKeyRequired"] for r in resources_of(prod, METHOD)}
    assert required.pop("api-GET-health") is False and all(required.values())


def test_without_usage_plans_no_method_requires_a_key(dev: dict[str, Any]) -> None:
    assert not resources_of(dev, "aws:apigateway/usagePlan:UsagePlan")
    assert not any(r["inputs"]["apiKeyRequired"] for r in resources_of(dev, METHOD))


def test_waf_rate_limits_per_ip_before_the_managed_rules_and_guards_the_stage(prod: dict[str, Any]) -> None:
    acl = by_name(prod, "api-waf")
    assert acl["type"] == "aws:wafv2/webAcl:WebAcl"
    inputs = acl["inputs"]
    assert inputs["scope"] == "REGIONAL" and inputs["defaultAction"] == {"allow": {}}
    rules = {r["name"]: r for r in inputs["rules"]}
    rate = rules["rate-limit-per-ip"]
    assert rate["priority"] == 0
    assert rate["statement"]["rateBasedStatement"] == {
        "aggregateKeyType": "IP",
        "evaluationWindowSec": 60,
        "limit": 500,
    }
    assert rate["action"]["block"]["customResponse"]["responseCode"] == 429
    common = rules["AWSManagedRulesCommonRuleSet"]
    group = common["statement"]["managedRuleGroupStatement"]
    assert group["vendorName"] == "AWS" and common["overrideAction"] == {"none": {}}
    # Prompts exceed the common rule set's 8 KB body limit: that one rule only counts.
    assert group["ruleActionOverrides"] == [{"actionToUse": {"count": {}}, "name": "SizeRestrictions_BODY"}]
    assert "AWSManagedRulesKnownBadInputsRuleSet" in rules
    association = _by_type(prod, "aws:wafv2/webAclAssociation:WebAclAssociation", "api-waf")
    assert association["propertyDependencies"]["resourceArn"] == [_urn(prod, "api-stage")]
    assert association["propertyDependencies"]["webAclArn"] == [acl["urn"]]
    logging = _by_type(prod, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", "api-waf")
    assert logging["propertyDependencies"]["logDestinationConfigs"] == [_urn(prod, "api-waf-logs")]
    assert {f["singleHeader"]["name"] for f in logging["inputs"]["redactedFields"]} == {"authorization", "x-api-key"}
    waf_logs = by_name(prod, "api-waf-logs")["inputs"]
    assert waf_logs["name"] == "aws-waf-logs-agent-infra-prod-api" and waf_logs["kmsKeyId"] == KEY


def test_dev_may_run_without_waf(dev: dict[str, Any]) -> None:
    assert not resources_of(dev, "aws:wafv2/webAcl:WebAcl")
    assert not resources_of(dev, "aws:wafv2/webAclAssociation:WebAclAssociation")


def test_mesh_routes_are_private_integrations_through_the_vpc_link_to_an_internal_nlb(prod: dict[str, Any]) -> None:
    nlb = _by_type(prod, "aws:lb/loadBalancer:LoadBalancer", "api-nlb")
    inputs = nlb["inputs"]
    assert inputs["internal"] is True and inputs["loadBalancerType"] == "network"
    assert inputs["subnets"] == SUBNETS and inputs["enableCrossZoneLoadBalancing"] is True
    assert inputs["enableDeletionProtection"] is True
    assert len(inputs["name"]) <= 32
    group = _by_type(prod, "aws:ec2/securityGroup:SecurityGroup", "api-nlb")["inputs"]
    assert group["ingress"] == [] and inputs["enforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] == "off"
    assert {(e["fromPort"], tuple(e["cidrBlocks"])) for e in group["egress"]} == {
        (80, ("10.30.0.0/16",)),
        (15021, ("10.30.0.0/16",)),
    }
    target_group = _by_type(prod, "aws:lb/targetGroup:TargetGroup", "api-mesh")["inputs"]
    assert (target_group["targetType"], target_group["protocol"], target_group["port"]) == ("ip", "TCP", 80)
    assert len(target_group["name"]) <= 32
    assert target_group["healthCheck"]["port"] == "15021" and target_group["healthCheck"]["path"] == "/healthz/ready"
    assert target_group["deregistrationDelay"] == 900, "a leaving pod finishes its longest stream"
    listener = _by_type(prod, "aws:lb/listener:Listener", "api-mesh")
    assert listener["inputs"]["port"] == 80 and listener["inputs"]["protocol"] == "TCP"
    assert listener["propertyDependencies"]["loadBalancerArn"] == [nlb["urn"]]
    link = by_name(prod, "api-link")
    assert link["type"] == "aws:apigateway/vpcLink:VpcLink"
    assert link["propertyDependencies"]["targetArn"] == [nlb["urn"]]
    for route in (TASKS, CHAT, SUMMARY):
        integration = _by_type(prod, INTEGRATION, f"api-{route.method}-{route.path}")
        assert integration["inputs"]["connectionType"] == "VPC_LINK", route.path
        assert integration["propertyDependencies"]["connectionId"] == [link["urn"]], route.path
        assert integration["propertyDependencies"]["uri"] == [nlb["urn"]], "the NLB's DNS name"
        assert integration["inputs"]["requestParameters"]["integration.request.path.agent_id"] == (
            "method.request.path.agent_id"
        )
    assert _by_type(prod, INTEGRATION, "api-POST-agents/{agent_id}/tasks")["inputs"]["type"] == "HTTP_PROXY"


def test_streaming_routes_stream_past_the_29_second_limit(prod: dict[str, Any]) -> None:
    chat = _by_type(prod, INTEGRATION, "api-POST-agents/{agent_id}/chat")["inputs"]
    assert chat["responseTransferMode"] == "STREAM" and chat["type"] == "HTTP_PROXY"
    assert chat["timeoutMilliseconds"] == 900_000 > 29_000
    tasks = _by_type(prod, INTEGRATION, "api-POST-agents/{agent_id}/tasks")["inputs"]
    assert tasks["responseTransferMode"] == "BUFFERED" and tasks["timeoutMilliseconds"] == 29_000
    short = _plan(routes=(RouteSpec("chat", "POST", streaming=True, timeout_seconds=120),))
    assert _by_type(short, INTEGRATION, "api-POST-chat")["inputs"]["timeoutMilliseconds"] == 120_000


def test_routes_with_templates_transform_requests_and_responses(prod: dict[str, Any]) -> None:
    summary = _by_type(prod, INTEGRATION, "api-GET-agents/{agent_id}/summary")["inputs"]
    assert summary["type"] == "HTTP" and summary["passthroughBehavior"] == "NEVER"
    assert summary["requestTemplates"] == SUMMARY.request_templates
    responses = {
        r["inputs"]["statusCode"]: r["inputs"]
        for r in resources_of(prod, "aws:apigateway/integrationResponse:IntegrationResponse")
        if r["name"].startswith("api-GET-agents/{agent_id}/summary")
    }
    assert responses["200"]["responseTemplates"] == SUMMARY.response_templates
    assert responses["400"]["selectionPattern"] == r"4\d{2}" and responses["502"]["selectionPattern"] == r"5\d{2}"
    method_statuses = {
        r["inputs"]["statusCode"]
        for r in resources_of(prod, "aws:apigateway/methodResponse:MethodResponse")
        if r["name"].startswith("api-GET-agents/{agent_id}/summary")
    }
    assert method_statuses == {"200", "400", "502"}
    health = _by_type(prod, INTEGRATION, "api-GET-health")["inputs"]
    assert health["type"] == "MOCK" and health["requestTemplates"] == {"application/json": '{"statusCode": 200}'}


def test_load_balancer_controller_is_pinned_and_binds_the_mesh_ingress_to_the_target_group(
    prod: dict[str, Any],
) -> None:
    release = _by_type(prod, "kubernetes:helm.sh/v3:Release", "api-lb-controller")
    inputs = release["inputs"]
    assert (inputs["chart"], inputs["version"]) == ("aws-load-balancer-controller", "1.13.3")
    assert inputs["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    assert inputs["namespace"] == "kube-system"
    values = inputs["values"]
    assert (values["clusterName"], values["region"], values["vpcId"]) == (
        "agent-infra-prod-eks",
        "us-east-1",
        "vpc-0123",
    )
    assert values["serviceAccount"] == {"create": True, "name": "aws-load-balancer-controller"}
    association = _by_type(prod, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "api-lb-controller")
    assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == (
        "kube-system",
        "aws-load-balancer-controller",
    )
    policy = json.loads(_by_type(prod, "aws:iam/rolePolicy:RolePolicy", "api-lb-controller")["inputs"]["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    register = statements["RegisterMeshIngressPods"]
    assert register["Action"] == ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]
    assert register["Resource"] == [
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/agent-infra-prod-api-mesh/*"
    ]
    assert "elasticloadbalancing:DescribeTargetHealth" in statements["DescribeForReconciliation"]["Action"]

    binding = by_name(prod, "api-mesh-binding")
    assert binding["type"] == "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
    assert binding["inputs"]["metadata"]["namespace"] == "istio-ingress"
    spec = binding["inputs"]["spec"]
    assert spec["serviceRef"] == {"name": "istio-ingressgateway", "port": 80}
    assert spec["targetType"] == "ip"
    assert _urn(prod, "api-mesh", "aws:lb/targetGroup:TargetGroup") in binding["propertyDependencies"]["spec"]
    assert release["urn"] in binding["dependencies"]
    assert binding["provider"] == release["provider"] and binding["provider"].endswith("eks-k8s")


def test_without_a_cluster_the_nlb_and_vpc_link_exist_but_no_controller_or_binding(dev: dict[str, Any]) -> None:
    assert resources_of(dev, "aws:lb/loadBalancer:LoadBalancer") and resources_of(dev, "aws:apigateway/vpcLink:VpcLink")
    assert not resources_of(dev, "kubernetes:helm.sh/v3:Release")
    assert not resources_of(dev, "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")


def test_the_account_cloudwatch_role_is_created_only_by_the_stack_that_owns_it(
    prod: dict[str, Any], dev: dict[str, Any]
) -> None:
    account = by_name(prod, "api-account")
    assert account["propertyDependencies"]["cloudwatchRoleArn"] == [_urn(prod, "api-cloudwatch", "aws:iam/role:Role")]
    role = json.loads(_by_type(prod, "aws:iam/role:Role", "api-cloudwatch")["inputs"]["assumeRolePolicy"])
    assert role["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    attachment = _by_type(prod, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "api-cloudwatch")
    assert attachment["inputs"]["policyArn"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    )
    assert account["urn"] in by_name(prod, "api-stage")["dependencies"]
    assert not resources_of(dev, "aws:apigateway/account:Account")
    assert not [r for r in resources_of(dev, "aws:iam/role:Role") if r["name"] == "api-cloudwatch"]


def test_a_route_change_replaces_the_deployment_create_before_destroy(dev: dict[str, Any]) -> None:
    deployment = by_name(dev, "api-deployment")
    assert deployment["inputs"]["triggers"]["redeployment"] == routes_fingerprint(_args())
    assert deployment["options"]["replaceOnChanges"] == ["triggers"]
    assert "deleteBeforeReplace" not in deployment["options"]
    methods = {r["urn"] for r in resources_of(dev, METHOD)} | {r["urn"] for r in resources_of(dev, INTEGRATION)}
    assert methods <= set(deployment["dependencies"]), "the deployment snapshots every method"
    assert by_name(dev, "api-stage")["propertyDependencies"]["deployment"] == [deployment["urn"]]
    changed = (HEALTH_ROUTE, TASKS, CHAT, RouteSpec("agents/{agent_id}/summary", "GET"))
    assert routes_fingerprint(_args(routes=changed)) != routes_fingerprint(_args())
    assert routes_fingerprint(_args()) == routes_fingerprint(_args())


@pytest.mark.parametrize("plan", ["prod", "dev_with_waf"])
def test_the_policy_pack_finds_nothing(plan: str, request: pytest.FixtureRequest) -> None:
    # The WAF-less dev variant is left out: the pack's apigw-waf rule flags it, as it should; dev's policy
    # config disables that rule.
    m = request.getfixturevalue("prod") if plan == "prod" else _plan(waf=WafSettings())
    result = evaluate(m, GATE_CONFIG)
    assert [(f.kind, f.policy, f.resource, f.message) for f in result.findings] == []


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        # An authoriser on every route: only the health check may be public, and only with a reason.
        (
            {"routes": (HEALTH_ROUTE, RouteSpec("agents", public=True, public_reason="demo"))},
            "routes[1].public: expected an authoriser on every route",
        ),
        (
            {"routes": (RouteSpec("health", target=RouteTarget.MOCK, public=True),)},
            "routes[0].public: expected an authoriser on every route",
        ),
        # A usage-plan tier without throttling.
        ({"usage_plans": (UsagePlanTier("free", Throttle(0, 10), 100),)}, "usage_plans[0].throttle: expected"),
        ({"usage_plans": (UsagePlanTier("free", Throttle(5, 0), 100),)}, "usage_plans[0].throttle: expected"),
        # WAF rate below 10, window not one of WAF's.
        ({"waf": WafSettings(rate_limit=9)}, "waf.rate_limit: expected at least 10"),
        ({"waf": WafSettings(window_seconds=900)}, "waf.window_seconds: expected 60, 120, 300 or 600"),
        # Streaming beyond 15 minutes.
        (
            {"routes": (RouteSpec("chat", "POST", streaming=True, timeout_seconds=901),)},
            "routes[0].timeout_seconds: expected 1 to 900 s streaming",
        ),
        # Duplicate routes.
        ({"routes": (TASKS, TASKS)}, "routes: expected each method and path once (duplicate routes)"),
        # Streaming cannot go through VTL transformation.
        (
            {"routes": (RouteSpec("chat", "POST", streaming=True, response_templates={"application/json": "$x"}),)},
            "routes[0].streaming: expected streaming only on a MESH proxy route",
        ),
        ({"routes": (RouteSpec("a/{id}"), RouteSpec("a/{agent_id}/b"))}, "one path variable name per position"),
        ({"routes": (RouteSpec("/agents"),)}, "routes[0].path: expected segments"),
        (
            {"authorizer": CognitoAuthorizer(user_pool_arn=POOL, create_user_pool=True)},
            "authorizer.user_pool_arn: expected an existing user pool ARN, or create_user_pool",
        ),
        (
            {"routes": (RouteSpec("agents", authorization_scopes=("agents/read",)),)},
            "routes[0].authorization_scopes: expected scopes only with the Cognito authoriser",
        ),
        (
            {"custom_domain": CustomDomain("api.example.com", "arn:cert", security_policy="TLS_1_0")},
            "custom_domain.security_policy: expected TLS_1_2 or a regional SecurityPolicy_*",
        ),
    ],
)
def test_invalid_args_are_rejected(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputPropertiesError, match=re.escape(fragment)):
        _plan(**changes)


def test_every_problem_is_reported_in_one_error() -> None:
    with pytest.raises(InputPropertiesError) as error:
        _plan(
            routes=(RouteSpec("agents", public=True), RouteSpec("agents", public=True)),
            waf=WafSettings(rate_limit=1, window_seconds=30),
            usage_plans=(UsagePlanTier("free", Throttle(0, 0), 0),),
        )
    fields = [p.split(":", 1)[0] for p in error.value.problems]
    assert fields == [
        "routes[0].public",
        "routes[1].public",
        "routes",
        "usage_plans[0].throttle",
        "usage_plans[0].quota_limit",
        "waf.rate_limit",
        "waf.window_seconds",
    ]
