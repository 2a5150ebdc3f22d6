"""Model gateway: LiteLLM routes to the vLLM pools and falls back to cloud models; keys, passwords and budgets
stay where they belong; the database is encrypted, Multi-AZ and private."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import kubernetes_validate
import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml
from helpers import by_name, record_component, resources_of

from components import iam
from components.aws_env import AwsEnvironment
from components.model_gateway import (
    CloudModel,
    DatabaseSettings,
    LocalModel,
    ModelGateway,
    ModelGatewayArgs,
    RedisConnection,
    UsageLimits,
    egress_hosts,
)
from components.naming import Naming
from components.validation import InputPropertiesError

SECRET = {"$secret": "redacted"}
K8S_VERSION = "1.32.0"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1beta1:ExternalSecret"
SM_SECRET = "aws:secretsmanager/secret:Secret"
SM_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
RANDOM = "random:index/randomPassword:RandomPassword"
REDIS_SECRET = "agent-infra/test/redis/auth-token"


def _vllm(pool: str) -> str:
    return f"http://vllm-{pool}.models.svc.cluster.local:8000/v1"


LLAMA_70B = LocalModel(
    "llama-70b",
    _vllm("llama-70b"),
    max_input_tokens=32768,
    rpm=120,
    tpm=400_000,
    fallbacks=("gpt-4o", "claude-sonnet"),
    input_cost_per_million=1.0,
    output_cost_per_million=2.0,
)
LLAMA_8B = LocalModel(
    "llama-8b",
    _vllm("llama-8b"),
    max_input_tokens=16384,
    fallbacks=("llama-70b", "gpt-4o"),
    context_window_fallbacks=("llama-70b",),
)
CLOUD = (
    CloudModel("gpt-4o", "openai", "gpt-4o-2024-08-06", rpm=500, tpm=800_000),
    CloudModel("claude-sonnet", "anthropic", "claude-sonnet-4-20250514"),
)


def _grant_redis_secret() -> pulumi.Resource:
    """What the stack wires: RedisCache.grant_read_auth on the operator's role (a stand-in policy here)."""
    return aws.iam.RolePolicy(
        "external-secrets-read-redis-auth",
        aws.iam.RolePolicyArgs(
            role="external-secrets",
            policy=iam.document(
                iam.statement(
                    "ReadAuthToken",
                    ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                    [f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{REDIS_SECRET}-??????"],
                )
            ),
        ),
    )


def _args(**changes: Any) -> ModelGatewayArgs:
    base: dict[str, Any] = dict(
        provider=k8s.Provider("k8s", kubeconfig="{}"),
        naming=Naming("agent-infra", "test"),
        env=AwsEnvironment("123456789012", "eu-west-1"),
        vpc_id="vpc-0123",
        private_subnet_ids=["subnet-a", "subnet-b", "subnet-c"],
        cluster_security_group_id="sg-cluster",
        local_models=(LLAMA_70B, LLAMA_8B),
        cloud_models=CLOUD,
        agent_limits=UsageLimits(
            rpm=60, tpm=200_000, max_parallel_requests=8, max_budget_usd=25.0, budget_duration="1d"
        ),
        user_limits=UsageLimits(rpm=120, tpm=400_000, max_budget_usd=100.0, budget_duration="30d"),
        global_limits=UsageLimits(max_budget_usd=5000.0, budget_duration="30d", max_parallel_requests=400),
        redis=RedisConnection("clustercfg.agent-infra-test-redis.cache.amazonaws.com", REDIS_SECRET),
        grant_redis_secret=_grant_redis_secret,
    )
    base.update(changes)
    return ModelGatewayArgs(**base)


def _plan(**changes: Any) -> dict[str, Any]:
    return record_component(lambda: ModelGateway("gateway", _args(**changes)))


def _config(manifest: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(by_name(manifest, "gateway-config")["inputs"]["data"]["config.yaml"])


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    (container,) = by_name(manifest, "gateway-deployment")["inputs"]["spec"]["template"]["spec"]["containers"]
    return container


@pytest.fixture(scope="module")
def gateway() -> dict[str, Any]:
    """The prod-like gateway: two pools, two cloud fallbacks, every level of limits, Redis, protected."""
    return _plan(protect=True)


# --- routing and the generated config ----------------------------------------------------------------


def test_each_local_model_routes_to_its_vllm_service_by_served_name(gateway: dict[str, Any]) -> None:
    models = {d["model_name"]: d for d in _config(gateway)["model_list"]}
    assert list(models) == ["llama-70b", "llama-8b", "gpt-4o", "claude-sonnet"]
    assert models["llama-70b"]["litellm_params"] == {
        "model": "hosted_vllm/llama-70b",
        "api_base": "http://vllm-llama-70b.models.svc.cluster.local:8000/v1",
        "rpm": 120,
        "tpm": 400_000,
    }
    assert models["llama-8b"]["litellm_params"] == {
        "model": "hosted_vllm/llama-8b",
        "api_base": "http://vllm-llama-8b.models.svc.cluster.local:8000/v1",
    }
    # The context window feeds pre-call checks; the prices make local tokens count against budgets.
    assert models["llama-70b"]["model_info"] == {
        "max_input_tokens": 32768,
        "input_cost_per_token": pytest.approx(1e-6),
        "output_cost_per_token": pytest.approx(2e-6),
    }


def test_fallbacks_follow_the_configured_order(gateway: dict[str, Any]) -> None:
    router = _config(gateway)["router_settings"]
    assert router["fallbacks"] == [{"llama-70b": ["gpt-4o", "claude-sonnet"]}, {"llama-8b": ["llama-70b", "gpt-4o"]}]
    assert router["context_window_fallbacks"] == [{"llama-8b": ["llama-70b"]}]
    assert (router["num_retries"], router["timeout"], router["allowed_fails"], router["cooldown_time"]) == (
        2,
        600,
        3,
        30,
    )
    assert router["routing_strategy"] == "simple-shuffle" and router["enable_pre_call_checks"] is True


def test_cloud_models_read_provider_keys_by_env_reference_only(gateway: dict[str, Any]) -> None:
    models = {d["model_name"]: d["litellm_params"] for d in _config(gateway)["model_list"]}
    assert models["gpt-4o"] == {
        "model": "openai/gpt-4o-2024-08-06",
        "api_key": "os.environ/OPENAI_API_KEY",
        "rpm": 500,
        "tpm": 800_000,
    }
    assert models["claude-sonnet"] == {
        "model": "anthropic/claude-sonnet-4-20250514",
        "api_key": "os.environ/ANTHROPIC_API_KEY",
    }
    assert not any("api_key" in params for name, params in models.items() if name.startswith("llama"))


def test_redis_counters_use_tls_and_a_password_by_env_reference(gateway: dict[str, Any]) -> None:
    config = _config(gateway)
    host = "clustercfg.agent-infra-test-redis.cache.amazonaws.com"
    settings = config["litellm_settings"]
    assert settings["cache"] is True
    assert settings["cache_params"] == {
        "type": "redis",
        "host": host,
        "port": 6379,
        "password": "os.environ/REDIS_PASSWORD",
        "ssl": True,
        "namespace": "litellm",
        "mode": "default_off",
        "redis_startup_nodes": [{"host": host, "port": 6379}],
    }
    router = config["router_settings"]
    assert (router["redis_host"], router["redis_port"], router["redis_password"]) == (
        host,
        6379,
        "os.environ/REDIS_PASSWORD",
    )
    assert router["cache_kwargs"] == {"ssl": True, "startup_nodes": [{"host": host, "port": 6379}]}
    assert "&" not in by_name(gateway, "gateway-config")["inputs"]["data"]["config.yaml"], "no YAML anchors"


def test_a_single_primary_redis_gets_no_cluster_startup_nodes() -> None:
    config = _config(_plan(redis=RedisConnection("master.redis.example", REDIS_SECRET, cluster_mode=False)))
    assert "redis_startup_nodes" not in config["litellm_settings"]["cache_params"]
    assert config["router_settings"]["cache_kwargs"] == {"ssl": True}


def test_limits_and_budgets_come_from_the_args(gateway: dict[str, Any]) -> None:
    config = _config(gateway)
    settings = config["litellm_settings"]
    # Per agent (one virtual key each): filled in and capped at /key/generate.
    assert settings["upperbound_key_generate_params"] == {
        "rpm_limit": 60,
        "tpm_limit": 200_000,
        "max_parallel_requests": 8,
        "max_budget": 25.0,
        "budget_duration": "1d",
    }
    # Per user: defaults of /user/new.
    assert settings["default_internal_user_params"] == {
        "rpm_limit": 120,
        "tpm_limit": 400_000,
        "max_budget": 100.0,
        "budget_duration": "30d",
    }
    assert (settings["max_internal_user_budget"], settings["internal_user_budget_duration"]) == (100.0, "30d")
    # Proxy-wide.
    assert (settings["max_budget"], settings["budget_duration"]) == (5000.0, "30d")
    assert config["general_settings"]["global_max_parallel_requests"] == 400


def test_the_database_and_master_key_are_referenced_never_written(gateway: dict[str, Any]) -> None:
    general = _config(gateway)["general_settings"]
    assert general["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert general["database_url"] == "os.environ/DATABASE_URL"
    assert general["store_model_in_db"] is False, "the config is the only source of models"


def test_without_redis_or_limits_there_is_no_cache_and_no_redis_secret() -> None:
    m = _plan(redis=None, agent_limits=None, user_limits=None, global_limits=None, grant_redis_secret=None)
    settings = _config(m)["litellm_settings"]
    assert "cache" not in settings and "upperbound_key_generate_params" not in settings
    assert "redis_host" not in _config(m)["router_settings"]
    assert "REDIS_PASSWORD" not in {e["name"] for e in _container(m)["env"]}
    assert "gateway-redis-sync" not in {r["name"] for r in resources_of(m, EXTERNAL_SECRET)}


# --- the workload ------------------------------------------------------------------------------------


def test_deployment_runs_the_pinned_proxy_highly_available_and_restricted(gateway: dict[str, Any]) -> None:
    deployment = by_name(gateway, "gateway-deployment")
    spec = deployment["inputs"]["spec"]
    assert spec["replicas"] == 2 and deployment["options"]["ignoreChanges"] == ["spec.replicas"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = spec["template"]["spec"]
    container = _container(gateway)
    assert container["image"] == "ghcr.io/berriai/litellm-non_root:main-v1.75.8-stable"
    assert container["args"] == ["--port", "4000", "--config", "/etc/litellm/config.yaml"]
    assert container["ports"] == [{"containerPort": 4000, "name": "http"}]
    assert container["startupProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "runAsNonRoot": True,
    }
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65534
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "litellm"
    assert pod["nodeSelector"] == {"agent-infra/role": "system"}
    zone, host = pod["topologySpreadConstraints"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone" and zone["whenUnsatisfiable"] == "DoNotSchedule"
    assert host["topologyKey"] == "kubernetes.io/hostname" and host["whenUnsatisfiable"] == "ScheduleAnyway"
    assert pod["terminationGracePeriodSeconds"] == 630, "streams of up to the request timeout finish"
    assert pod["volumes"] == [{"configMap": {"name": "litellm"}, "name": "config"}]
    text = by_name(gateway, "gateway-config")["inputs"]["data"]["config.yaml"]
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["checksum/config"] == hashlib.sha256(text.encode()).hexdigest()


def test_one_cluster_ip_endpoint_a_disruption_budget_and_an_autoscaler(gateway: dict[str, Any]) -> None:
    service = by_name(gateway, "gateway-service")["inputs"]
    assert service["metadata"] == {
        "labels": {
            "app.kubernetes.io/component": "model-gateway",
            "app.kubernetes.io/name": "litellm",
            "app.kubernetes.io/part-of": "agent-infra",
        },
        "name": "litellm",
        "namespace": "models",
    }
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"appProtocol": "http", "name": "http", "port": 4000, "targetPort": "http"}]
    assert by_name(gateway, "gateway-pdb")["inputs"]["spec"]["maxUnavailable"] == 1
    hpa = by_name(gateway, "gateway-hpa")["inputs"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "litellm"}


def test_secrets_reach_the_pod_as_env_from_kubernetes_secrets(gateway: dict[str, Any]) -> None:
    env = _container(gateway)["env"]
    names = [e["name"] for e in env]
    # $(DB_PASSWORD) expands only from a variable defined before DATABASE_URL.
    assert names.index("DB_PASSWORD") < names.index("DATABASE_URL")
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert refs == {
        "LITELLM_MASTER_KEY": {"key": "LITELLM_MASTER_KEY", "name": "litellm-master-key"},
        "DB_PASSWORD": {"key": "DB_PASSWORD", "name": "litellm-db"},
        "REDIS_PASSWORD": {"key": "REDIS_PASSWORD", "name": "litellm-redis"},
        # A provider whose key is not set yet must not keep the pod from starting.
        "OPENAI_API_KEY": {"key": "OPENAI_API_KEY", "name": "litellm-provider-openai", "optional": True},
        "ANTHROPIC_API_KEY": {"key": "ANTHROPIC_API_KEY", "name": "litellm-provider-anthropic", "optional": True},
    }
    values = {e["name"]: e["value"] for e in env if "value" in e}
    assert values["LITELLM_MODE"] == "PRODUCTION" and values["DISABLE_ADMIN_UI"] == "True"


def test_external_secrets_sync_each_provider_and_the_gateway_secrets(gateway: dict[str, Any]) -> None:
    syncs = {r["name"]: r["inputs"] for r in resources_of(gateway, EXTERNAL_SECRET)}
    data = {name: spec["spec"]["data"] for name, spec in syncs.items()}
    models = "agent-infra/test/models"
    assert data == {
        "gateway-db-sync": [
            {"remoteRef": {"key": f"{models}/litellm-db", "property": "password"}, "secretKey": "DB_PASSWORD"}
        ],
        "gateway-master-key-sync": [
            {"remoteRef": {"key": f"{models}/litellm-master-key"}, "secretKey": "LITELLM_MASTER_KEY"}
        ],
        "gateway-provider-anthropic-sync": [
            {"remoteRef": {"key": f"{models}/provider-anthropic"}, "secretKey": "ANTHROPIC_API_KEY"}
        ],
        "gateway-provider-openai-sync": [
            {"remoteRef": {"key": f"{models}/provider-openai"}, "secretKey": "OPENAI_API_KEY"}
        ],
        "gateway-redis-sync": [{"remoteRef": {"key": REDIS_SECRET}, "secretKey": "REDIS_PASSWORD"}],
    }
    for spec in syncs.values():
        assert spec["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "aws-secrets-manager"}
        assert spec["metadata"]["namespace"] == "models"
        assert spec["spec"]["target"]["name"] == spec["metadata"]["name"]


def test_provider_secrets_are_created_empty_under_the_models_prefix(gateway: dict[str, Any]) -> None:
    secrets = {r["inputs"]["name"]: r for r in resources_of(gateway, SM_SECRET)}
    assert sorted(secrets) == [
        "agent-infra/test/models/litellm-db",
        "agent-infra/test/models/litellm-master-key",
        "agent-infra/test/models/provider-anthropic",
        "agent-infra/test/models/provider-openai",
    ]
    for secret in secrets.values():
        # The model platform's key: the External Secrets Operator may already decrypt it.
        assert secret["inputs"]["kmsKeyId"] == "alias/agent-infra-test-model-secrets"
        assert secret["options"]["protect"] is True and secret["options"]["retainOnDelete"] is True
    written = {urn for v in resources_of(gateway, SM_VERSION) for urn in v["propertyDependencies"]["secretId"]}
    for provider in ("openai", "anthropic"):
        assert secrets[f"agent-infra/test/models/provider-{provider}"]["urn"] not in written, "never written"


def test_the_redis_secret_sync_waits_for_the_operators_grant(gateway: dict[str, Any]) -> None:
    grant = by_name(gateway, "external-secrets-read-redis-auth")
    assert by_name(gateway, "gateway-redis-sync")["dependencies"] == [grant["urn"]]


# --- the database ------------------------------------------------------------------------------------


def test_database_is_encrypted_multi_az_private_and_protected(gateway: dict[str, Any]) -> None:
    db = by_name(gateway, "gateway-db")
    inputs = db["inputs"]
    key = by_name(gateway, "gateway-db-key-key")
    assert inputs["engine"] == "postgres" and inputs["engineVersion"] == "16.8"
    assert inputs["storageEncrypted"] is True and db["propertyDependencies"]["kmsKeyId"] == [key["urn"]]
    assert inputs["performanceInsightsEnabled"] is True
    assert db["propertyDependencies"]["performanceInsightsKmsKeyId"] == [key["urn"]]
    assert inputs["multiAz"] is True and inputs["publiclyAccessible"] is False
    assert inputs["backupRetentionPeriod"] >= 7
    assert inputs["deletionProtection"] is True and db["options"]["protect"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["finalSnapshotIdentifier"] == "agent-infra-test-litellm-db-final"
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    assert inputs["password"] == SECRET
    assert key["inputs"]["enableKeyRotation"] is True
    params = by_name(gateway, "gateway-db-params")
    assert params["inputs"]["family"] == "postgres16"
    assert [(p["name"], p["value"]) for p in params["inputs"]["parameters"]] == [("rds.force_ssl", "1")]
    assert db["propertyDependencies"]["parameterGroupName"] == [params["urn"]]
    logs = [by_name(gateway, f"gateway-db-log-{kind}") for kind in ("postgresql", "upgrade")]
    assert [g["inputs"]["name"] for g in logs] == [
        "/aws/rds/instance/agent-infra-test-litellm-db/postgresql",
        "/aws/rds/instance/agent-infra-test-litellm-db/upgrade",
    ]
    assert all(g["urn"] in db["dependencies"] for g in logs), "log groups exist before RDS writes to them"


def test_database_admits_only_the_cluster_security_group_from_private_subnets(gateway: dict[str, Any]) -> None:
    sg = by_name(gateway, "gateway-db-sg")
    assert "ingress" not in sg["inputs"] and "egress" not in sg["inputs"]
    (rule,) = resources_of(gateway, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule["inputs"]["referencedSecurityGroupId"] == "sg-cluster"
    assert (rule["inputs"]["fromPort"], rule["inputs"]["toPort"], rule["inputs"]["ipProtocol"]) == (5432, 5432, "tcp")
    assert "cidrIpv4" not in rule["inputs"] and rule["propertyDependencies"]["securityGroupId"] == [sg["urn"]]
    db = by_name(gateway, "gateway-db")
    assert db["propertyDependencies"]["vpcSecurityGroupIds"] == [sg["urn"]]
    subnets = by_name(gateway, "gateway-db-subnets")
    assert subnets["inputs"]["subnetIds"] == ["subnet-a", "subnet-b", "subnet-c"]
    assert db["propertyDependencies"]["dbSubnetGroupName"] == [subnets["urn"]]


def test_single_az_and_unprotected_only_when_asked() -> None:
    m = _plan(database=DatabaseSettings(multi_az=False))
    db = by_name(m, "gateway-db")
    assert db["inputs"]["multiAz"] is False and db["inputs"]["deletionProtection"] is False
    assert "protect" not in db["options"]


def test_passwords_are_generated_and_stored_only_as_secrets(gateway: dict[str, Any]) -> None:
    db_password = by_name(gateway, "gateway-db-password")
    assert db_password["inputs"] == {"length": 40, "special": False}, "URL-safe: spliced into DATABASE_URL"
    master = by_name(gateway, "gateway-master-key-value")
    assert master["inputs"] == {"length": 48, "special": False}
    db_version = by_name(gateway, "gateway-db-credentials-version")
    assert db_version["inputs"]["secretString"] == SECRET
    assert db_version["propertyDependencies"]["secretString"] == [db_password["urn"]]
    master_version = by_name(gateway, "gateway-master-key-version")
    assert master_version["inputs"]["secretString"] == SECRET
    assert master_version["propertyDependencies"]["secretString"] == [master["urn"]]
    assert by_name(gateway, "gateway-db")["propertyDependencies"]["password"] == [db_password["urn"]]


# --- planted secrets ---------------------------------------------------------------------------------

PLANTED = "Planted0Secret0Value0abcdefghijklmnopqrstu"
DB_HOST = "agent-infra-test-litellm-db.abc123.eu-west-1.rds.amazonaws.com"


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A plan whose random passwords are a known value and whose database address is known."""
    from agentinfra import engine

    original = engine.OfflineMocks.new_resource

    def with_values(self: Any, args: Any) -> tuple[str | None, dict]:
        resource_id, state = original(self, args)
        if args.typ == RANDOM:
            state = {**state, "result": PLANTED}
        if args.typ == "aws:rds/instance:Instance":
            state = {**state, "address": DB_HOST}
        return resource_id, state

    monkeypatch.setattr(engine.OfflineMocks, "new_resource", with_values)

    def build() -> None:
        gateway = ModelGateway("gateway", _args())
        # Proves the planted value really flowed into the database (the mock echoes inputs as state).
        pulumi.export("passwordLength", pulumi.Output.unsecret(gateway.database.password).apply(lambda p: len(p or "")))

    return record_component(build)


def test_a_planted_password_never_reaches_the_manifest_in_clear(planted: dict[str, Any]) -> None:
    assert planted["outputs"]["passwordLength"] == len(PLANTED)
    assert PLANTED not in json.dumps(planted)
    assert by_name(planted, "gateway-db")["inputs"]["password"] == SECRET


def test_database_url_is_composed_in_the_pod_from_the_password_variable(planted: dict[str, Any]) -> None:
    url = next(e["value"] for e in _container(planted)["env"] if e["name"] == "DATABASE_URL")
    assert url == f"postgresql://litellm:$(DB_PASSWORD)@{DB_HOST}:5432/litellm?sslmode=require"


def test_every_kubernetes_object_is_valid_for_the_pinned_version(planted: dict[str, Any]) -> None:
    objects = [r for r in planted["resources"] if r["type"].startswith(("kubernetes:core/", "kubernetes:apps/"))]
    objects += resources_of(planted, "kubernetes:policy/v1:PodDisruptionBudget")
    objects += resources_of(planted, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert len(objects) == 6
    for resource in objects:
        kubernetes_validate.validate(resource["inputs"], K8S_VERSION, strict=True)


def test_an_api_key_pasted_into_the_args_is_refused_without_being_repeated() -> None:
    key = "sk-proj-PLANTEDKEY0123456789abcdef"
    with pytest.raises(InputPropertiesError) as error:
        _plan(cloud_models=(CloudModel("gpt-4o", "openai", key), CLOUD[1]))
    assert "cloud_models[0].model: expected the provider's model id, never an API key" in str(error.value)
    assert key not in str(error.value)


# --- egress and Bedrock ------------------------------------------------------------------------------


def test_egress_hosts_are_the_providers_in_use() -> None:
    bedrock = CloudModel("nova-pro", "bedrock", "amazon.nova-pro-v1:0")
    assert egress_hosts((*CLOUD, bedrock), "eu-west-1") == (
        "api.anthropic.com",
        "api.openai.com",
        "bedrock-runtime.eu-west-1.amazonaws.com",
    )

    def build() -> None:
        gateway = ModelGateway("gateway", _args(cloud_models=(*CLOUD, bedrock)))
        pulumi.export("egress", list(gateway.egress_hosts))
        pulumi.export("bedrock", gateway.bedrock_statements())

    m = record_component(build)
    assert m["outputs"]["egress"] == list(egress_hosts((*CLOUD, bedrock), "eu-west-1"))
    assert m["outputs"]["bedrock"] == [
        {
            "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
            "Effect": "Allow",
            "Resource": ["arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-pro-v1:0"],
            "Sid": "InvokeBedrockModels",
        }
    ]
    nova = next(d for d in _config(m)["model_list"] if d["model_name"] == "nova-pro")
    assert nova["litellm_params"] == {"model": "bedrock/amazon.nova-pro-v1:0", "aws_region_name": "eu-west-1"}
    assert "gateway-provider-bedrock" not in {r["name"] for r in resources_of(m, SM_SECRET)}, "Bedrock uses IAM"


# --- policy gate and validation ----------------------------------------------------------------------


def test_component_manifest_passes_the_policy_gate(gateway: dict[str, Any]) -> None:
    from agentinfra.gate import evaluate

    result = evaluate(
        gateway,
        {
            "all": "mandatory",
            "required-tags": "disabled",
            "protect-stateful": "disabled",
            "allowed-instance-types": "disabled",
        },
    )
    assert result.findings == []
    assert result.rules_evaluated > 0


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (
            {"cloud_models": (CloudModel("gpt-4o", "acme", "gpt-4o"), CLOUD[1])},
            "cloud_models[0].provider: expected one of openai, anthropic, mistral, gemini, bedrock, found 'acme'",
        ),
        (
            {"local_models": (LocalModel("llama-70b", _vllm("llama-70b"), fallbacks=("gpt-5",)),)},
            "local_models[0].fallbacks: expected distinct names of other configured models "
            "(gpt-4o, claude-sonnet), found ('gpt-5',)",
        ),
        (
            {"redis": None, "grant_redis_secret": None},
            "redis: expected a Redis connection when agent_limits, user_limits, global_limits are set",
        ),
        (
            {"redis": None, "user_limits": None, "global_limits": None},
            "redis: expected a Redis connection when agent_limits are set",
        ),
        (
            {"cloud_models": (CloudModel("llama-8b", "openai", "gpt-4o-mini"),)},
            "local_models: expected unique model names across local and cloud models, found ['llama-8b']",
        ),
        ({"image": "ghcr.io/berriai/litellm:latest"}, "never latest, found 'ghcr.io/berriai/litellm:latest'"),
        ({"image": "ghcr.io/berriai/litellm-non_root:main-stable"}, "never latest, found"),
        ({"image": "docker.io/someone/litellm:v1.75.8"}, "image: expected one of ghcr.io/berriai/litellm-non_root"),
        ({"replicas": 1}, "replicas: expected 2 <= replicas <= max_replicas, found (1, 6)"),
        (
            {"global_limits": UsageLimits(rpm=1000)},
            "global_limits: expected no rpm or tpm (LiteLLM has no proxy-wide rate; set rpm/tpm per model)",
        ),
        ({"agent_limits": UsageLimits(budget_duration="monthly")}, "agent_limits.budget_duration: expected <n>s"),
        ({"agent_limits": UsageLimits(max_budget_usd=0)}, "agent_limits.max_budget_usd: expected a positive number"),
        ({"database": DatabaseSettings(engine_version="16")}, "database.engine_version: expected a pinned"),
        ({"database": DatabaseSettings(backup_retention_days=1)}, "database.backup_retention_days: expected 7 to 35"),
    ],
)
def test_component_rejects_invalid_args(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputPropertiesError, match=re.escape(fragment)):
        _plan(**changes)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InputPropertiesError) as error:
        _plan(
            image="ghcr.io/berriai/litellm:latest",
            cloud_models=(CloudModel("gpt-4o", "acme", "gpt-4o"), CLOUD[1]),
            redis=None,
            replicas=1,
        )
    fields = [p.split(":", 1)[0] for p in error.value.problems]
    assert fields == ["image", "cloud_models[0].provider", "redis", "replicas"]
