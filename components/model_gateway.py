"""Model gateway: one OpenAI-compatible endpoint for agents, in front of the vLLM pools and cloud providers.

It is LiteLLM's proxy (the most widely used open-source LLM gateway) as a Kubernetes Deployment, with the
proxy's config generated from the Args into a ConfigMap, an encrypted RDS PostgreSQL for its virtual keys,
budgets and spend, and Redis (ElastiCache) for the counters its replicas share.

Routing and fallbacks
    Agents call ``http://litellm.<namespace>.svc.cluster.local:4000/v1`` and name a model in the JSON body;
    LiteLLM routes by that name. Each local model is a deployment ``hosted_vllm/<served name>`` whose
    ``api_base`` is its vLLM Service. Cloud models are model groups of their own (``gpt-4o``), and each local
    model lists, in order, the models its requests go to when its pool fails, times out or is over its
    rpm/tpm (``router_settings.fallbacks``) and when a prompt exceeds its context window
    (``context_window_fallbacks``). Retries, timeouts and cool-downs are ``router_settings``.

Provider keys
    The Args only name providers; there is no field for a key. Each provider's key is read by LiteLLM from an
    environment variable (``api_key: os.environ/OPENAI_API_KEY``), which comes from a Kubernetes Secret made
    by an ExternalSecret from ``agent-infra/<env>/models/provider-<name>`` in Secrets Manager. The component
    creates that secret empty: an operator puts the key there, and the program never reads or writes it.
    Until then the provider's env var is absent (the reference is optional), LiteLLM's calls to it fail and
    its deployments cool down, and the other models keep working. Secrets are encrypted with the model
    platform's key (``alias/<prefix>-model-secrets``) under the ``models/*`` prefix the External Secrets
    Operator's role may already read, so provider keys, the master key and the database password need no
    IAM change. A provider key rotated in Secrets Manager reaches the pods at their next restart.

Limits and budgets: what LiteLLM really enforces
    LiteLLM enforces limits per *virtual key*, per *user*, per *team* and proxy-wide, from rows in its
    database (budgets, spend) and counters in Redis (rpm, tpm, parallel requests, shared by the replicas).
    The component writes what the config file can express; the rest is data created through the admin API
    (``/key/generate``, ``/user/new``, ``/team/new``) with the master key:

    * **per agent** (enforced): give each agent its own virtual key. ``agent_limits`` become
      ``litellm_settings.upperbound_key_generate_params``: ``/key/generate`` fills in missing rpm, tpm,
      parallel requests, budget and budget period from them and refuses keys above them.
    * **per user** (enforced, as defaults): LiteLLM users own keys, and a user's budget and rpm/tpm cover all
      of them. ``user_limits`` become ``default_internal_user_params`` (and ``max_internal_user_budget`` /
      ``internal_user_budget_duration``), filled into each user created through ``/user/new`` (or single
      sign-on) that does not set its own; an admin can still set other values per user. Older releases
      apply ``default_internal_user_params`` to single sign-on users only: check against the pin.
    * **per team** (enforced, not configured here): budgets and rpm/tpm of ``/team/new`` apply to all of a
      team's keys; create teams through the API if agents are grouped.
    * **per endpoint** (enforced by the router): a model's ``rpm``/``tpm`` are its capacity; with pre-call
      checks on, the router skips a deployment at its rpm, so overflow goes to the fallbacks. Check the
      behaviour against the pinned version before relying on it as a hard limit.
    * **global** (enforced): ``global_limits`` become the proxy-wide ``max_budget``/``budget_duration`` and
      ``global_max_parallel_requests``. LiteLLM has no proxy-wide rpm/tpm; they are refused there.
    * **per session**: LiteLLM has **no** session budget. Approximate it by minting a short-lived key per
      session (``/key/generate`` with ``max_budget``, ``duration`` such as ``1h``, rpm/tpm and the session id
      in ``metadata``): the key's budget is the session's, and it expires with the session. The upper bound
      above still caps those keys.

    Budgets are in USD, not tokens: LiteLLM prices each request from the tokens it counted. Cloud models
    carry LiteLLM's price list; local models cost what ``input_cost_per_million``/``output_cost_per_million``
    say (default 0: free, limited only by rpm/tpm). A token budget is a USD budget at a set price: at
    1 USD per million tokens, a budget of 5 is five million tokens. Limits need Redis (without it each
    replica would count on its own): configuring any limit without ``redis`` is an error.

Redis and its AUTH token
    ``cache: true`` with a Redis ``cache_params`` is how LiteLLM's proxy shares its rate-limit counters;
    ``mode: default_off`` keeps response caching opt-in per request, so agents never get a cached completion
    they did not ask for. ``router_settings`` gets the same Redis for cool-downs and deployment usage across
    replicas. TLS is on (ElastiCache requires it) and the password is ``os.environ/REDIS_PASSWORD``. In
    cluster mode both get the configuration endpoint as a startup node.

    The AUTH token lives at ``agent-infra/<env>/redis/auth-token``, outside the ``models/*`` prefix the
    External Secrets Operator may read, and is encrypted with the cache's own key. The component takes a
    hook, ``grant_redis_secret``, that the stack wires to ``RedisCache.grant_read_auth(<operator role>,
    label=...)`` (exact actions and the KMS decrypt it needs); the Redis ExternalSecret waits for it. The
    operator's role is created inside ModelPlatform, which must expose it for that. Without a hook the
    component warns: the Redis secret will not sync until someone grants the operator that secret.

Database
    PostgreSQL on RDS: pinned engine version (upgrades are deliberate: automatic minor upgrades would fight
    the pin), storage and Performance Insights encrypted with a key of its own, Multi-AZ from the Args,
    backups kept at least seven days, a final snapshot, deletion protection when protected, TLS forced by a
    parameter group, IAM authentication enabled, logs exported to encrypted log groups made beforehand,
    private subnets only and port 5432 open to the EKS cluster security group only. The master password is a
    RandomPassword of letters and digits (it goes into a URL unescaped), stored as JSON in
    ``agent-infra/<env>/models/litellm-db``; the pod receives it as ``DB_PASSWORD`` and Kubernetes expands
    ``DATABASE_URL = postgresql://litellm:$(DB_PASSWORD)@<host>:5432/litellm?sslmode=require``, so it appears
    in clear in neither the config, the manifest nor the outputs. ``LITELLM_MASTER_KEY`` (``sk-`` and a
    RandomPassword) takes the same route.

Egress
    The gateway reaches only the provider hosts in :attr:`ModelGateway.egress_hosts` (and Redis and the
    database); the stack turns them into the mesh's ServiceEntries for the gateway's namespace. Bedrock
    needs no key but a Pod Identity role for the ``litellm`` service account with
    :meth:`ModelGateway.bedrock_statements`.

The image is ``litellm-non_root`` (it runs as ``nobody``, uid 65534, under the restricted security context);
the tag is a pin to check (``crane ls ghcr.io/berriai/litellm-non_root``) before the first deployment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from . import iam
from .aws_env import AwsEnvironment
from .cluster_services import SYSTEM_SELECTOR
from .kms_key import EncryptionKey, EncryptionKeyArgs
from .kube import http_service
from .log_group import encrypted_log_group
from .naming import Naming
from .validation import Checker

#: A pin to check before the first deployment: the non-root build of LiteLLM's stable release.
LITELLM_IMAGE = "ghcr.io/berriai/litellm-non_root:main-v1.75.8-stable"
IMAGE_REPOSITORIES = (
    "ghcr.io/berriai/litellm-non_root",
    "ghcr.io/berriai/litellm",
    "ghcr.io/berriai/litellm-database",
)
#: Tags that move: refused, like ``latest``.
FLOATING_TAGS = ("latest", "main", "main-latest", "main-stable", "stable")
PORT = 4000
DB_PORT = 5432
DB_USER = "litellm"
DB_NAME = "litellm"
APP = "litellm"
#: ``nobody`` in the non-root image (Wolfi); files the proxy writes at startup belong to it.
RUN_AS_USER = 65534
CONFIG_PATH = "/etc/litellm"
#: ModelPlatform's ClusterSecretStore and the External Secrets API version it uses.
SECRET_STORE = "aws-secrets-manager"
EXTERNAL_SECRETS_API = "external-secrets.io/v1beta1"
#: How OpenAI, Anthropic and Google API keys begin: never a model id.
KEY_PREFIXES = ("sk-", "sk_", "AIza")
ROUTING_STRATEGIES = ("simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2")
_DURATION = re.compile(r"^\d+(s|m|h|d|mo)$")
_MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_PROVIDER_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
_ENGINE_VERSION = re.compile(r"^(1[4-7])\.\d+$")


@dataclass(frozen=True)
class ProviderSpec:
    """How LiteLLM reaches a cloud provider."""

    env_var: str | None
    """Environment variable of the API key; None for AWS Bedrock, which signs with the pod's IAM role."""
    hosts: tuple[str, ...]
    """API hosts; ``{region}`` is the stack's region."""


#: Cloud providers the gateway can fall back to, by the name Args use.
PROVIDERS: Mapping[str, ProviderSpec] = {
    "openai": ProviderSpec("OPENAI_API_KEY", ("api.openai.com",)),
    "anthropic": ProviderSpec("ANTHROPIC_API_KEY", ("api.anthropic.com",)),
    "mistral": ProviderSpec("MISTRAL_API_KEY", ("api.mistral.ai",)),
    "gemini": ProviderSpec("GEMINI_API_KEY", ("generativelanguage.googleapis.com",)),
    "bedrock": ProviderSpec(None, ("bedrock-runtime.{region}.amazonaws.com",)),
}


@dataclass(frozen=True)
class LocalModel:
    """A vLLM pool the gateway routes to (``ModelServer``)."""

    served_name: str
    """vLLM's ``--served-model-name``: the model name agents send and the gateway's model group."""
    service_url: str
    """The pool's base URL, ``http://vllm-<pool>.<ns>.svc.cluster.local:8000/v1`` (``ModelServer.service_url``)."""
    max_input_tokens: int | None = None
    """Context window (vLLM's ``--max-model-len``) for pre-call checks; None leaves it to vLLM's errors."""
    rpm: int | None = None
    """Requests per minute the pool takes before overflow goes to the fallbacks; None for no cap (default)."""
    tpm: int | None = None
    """Tokens per minute the pool takes; None for no cap (default)."""
    fallbacks: tuple[str, ...] = ()
    """Models (cloud or local) tried in this order when the pool fails or is over its rpm/tpm (default none)."""
    context_window_fallbacks: tuple[str, ...] = ()
    """Models tried in order when a prompt exceeds this model's context window (default none)."""
    input_cost_per_million: float = 0.0
    """USD per million prompt tokens counted against budgets (default 0: local traffic is free)."""
    output_cost_per_million: float = 0.0
    """USD per million completion tokens counted against budgets (default 0)."""


@dataclass(frozen=True)
class CloudModel:
    """A hosted model, a model group of its own that local models fall back to (or agents call by name)."""

    name: str
    """Model name agents and fallback chains use, e.g. ``gpt-4o``."""
    provider: str
    """One of :data:`PROVIDERS`; its key comes from Secrets Manager (the Args never hold a key)."""
    model: str
    """The provider's model id, e.g. ``gpt-4o-2024-08-06`` or ``anthropic.claude-3-5-sonnet-20240620-v1:0``."""
    rpm: int | None = None
    """Requests per minute of the provider account's quota; None for no cap (default)."""
    tpm: int | None = None
    """Tokens per minute of the quota; None for no cap (default)."""


@dataclass(frozen=True)
class UsageLimits:
    """Rate limits and a budget; None leaves each one unlimited."""

    rpm: int | None = None
    """Requests per minute (positive)."""
    tpm: int | None = None
    """Tokens (prompt and completion) per minute (positive)."""
    max_parallel_requests: int | None = None
    """Requests in flight at once (positive)."""
    max_budget_usd: float | None = None
    """Spend allowed per budget period, in USD (positive)."""
    budget_duration: str | None = None
    """Budget period: ``<n>s``, ``<n>m``, ``<n>h``, ``<n>d`` or ``<n>mo``, e.g. ``30d``; None never resets."""

    @property
    def configured(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def litellm(self) -> dict[str, Any]:
        """The limits under LiteLLM's names, unset ones left out."""
        names = {
            "rpm": "rpm_limit",
            "tpm": "tpm_limit",
            "max_parallel_requests": "max_parallel_requests",
            "max_budget_usd": "max_budget",
            "budget_duration": "budget_duration",
        }
        return {names[f.name]: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class RedisConnection:
    """The ElastiCache replication group the replicas share counters through (``RedisCache``)."""

    endpoint: pulumi.Input[str]
    """``RedisCache.endpoint``: the configuration endpoint in cluster mode, else the primary endpoint."""
    auth_secret_name: str
    """Secrets Manager name of the AUTH token (``RedisCache.auth_secret_name``)."""
    cluster_mode: bool = True
    """Cluster mode enabled (LiteLLM then uses a cluster client). Default True, as ``RedisCache``."""
    port: int = 6379
    """Port (default 6379)."""


@dataclass(frozen=True)
class DatabaseSettings:
    """The RDS PostgreSQL instance of virtual keys, budgets and spend."""

    instance_class: str = "db.t4g.medium"
    """RDS instance class (default db.t4g.medium)."""
    engine_version: str = "16.8"
    """Pinned PostgreSQL ``<major>.<minor>``, major 14-17 (default 16.8)."""
    multi_az: bool = True
    """A synchronous standby in another AZ (default True; prod must keep it)."""
    allocated_storage_gib: int = 20
    """Initial gp3 storage, 20-65536 GiB (default 20)."""
    max_allocated_storage_gib: int = 100
    """Storage autoscaling ceiling, at least the allocated storage (default 100)."""
    backup_retention_days: int = 7
    """Days of automated backups, 7-35 (default 7)."""
    backup_window: str = "03:00-04:00"
    """Daily UTC backup window (default 03:00-04:00)."""
    maintenance_window: str = "sun:05:00-sun:06:00"
    """Weekly UTC maintenance window (default sun:05:00-sun:06:00)."""
    log_retention_days: int = 90
    """Retention of the exported PostgreSQL logs (default 90)."""


@dataclass(frozen=True)
class ModelGatewayArgs:
    provider: k8s.Provider
    """Kubernetes provider of the cluster (``EksCluster.provider``)."""
    naming: Naming
    """Names of the database, secrets and key alias."""
    env: AwsEnvironment
    """Account and region (Bedrock host, ARNs, key policy)."""
    vpc_id: pulumi.Input[str]
    """VPC of the database's security group."""
    private_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets of the database, one per AZ (at least two)."""
    cluster_security_group_id: pulumi.Input[str]
    """The EKS cluster security group (``EksCluster.security_group_id``): the only source admitted on 5432."""
    local_models: tuple[LocalModel, ...]
    """The vLLM pools, at least one."""
    cloud_models: tuple[CloudModel, ...] = ()
    """Hosted models the local ones fall back to (default none)."""
    namespace: str = "models"
    """Namespace of the gateway: ModelPlatform's (it exists, with sidecar injection and the secret store)."""
    image: str = LITELLM_IMAGE
    """LiteLLM image with a pinned tag (``latest`` and other moving tags are refused)."""
    replicas: int = 2
    """Minimum replicas, at least 2 (default 2)."""
    max_replicas: int = 6
    """Maximum replicas under the CPU autoscaler (default 6)."""
    cpu_request: str = "500m"
    """CPU request per replica (default 500m)."""
    memory_request_gib: int = 2
    """Memory request per replica in GiB, at least 1 (default 2)."""
    memory_limit_gib: int = 3
    """Memory limit per replica in GiB (default 3)."""
    routing_strategy: str = "simple-shuffle"
    """LiteLLM routing within a model group, one of :data:`ROUTING_STRATEGIES` (default simple-shuffle)."""
    num_retries: int = 2
    """Retries on the same model group before its fallbacks, 0-5 (default 2)."""
    request_timeout_seconds: int = 600
    """Timeout of a model call, streams included, 10-3600 s (default 600)."""
    allowed_fails: int = 3
    """Failures a deployment may have in a minute before it cools down, at least 1 (default 3)."""
    cooldown_seconds: int = 30
    """How long a failing deployment is left out, 1-3600 s (default 30)."""
    agent_limits: UsageLimits | None = None
    """Per virtual key (one per agent): defaults and upper bounds of ``/key/generate``. None: no limits."""
    user_limits: UsageLimits | None = None
    """Per LiteLLM user: defaults of ``/user/new``. None: no limits."""
    global_limits: UsageLimits | None = None
    """Proxy-wide budget and parallel requests (no rpm/tpm). None: no limits."""
    redis: RedisConnection | None = None
    """Shared counters and cool-downs; required with any limits. None: each replica counts alone."""
    grant_redis_secret: Callable[[], pulumi.Resource | None] | None = None
    """Lets the External Secrets Operator read the Redis AUTH secret, e.g. ``lambda:
    redis.grant_read_auth(platform.external_secrets_role, label="external-secrets")``; called once."""
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    """The RDS PostgreSQL instance."""
    secrets_kms_key_id: pulumi.Input[str] | None = None
    """Key of the Secrets Manager secrets; None: ModelPlatform's ``alias/<prefix>-model-secrets`` (the key the
    operator may decrypt)."""
    admin_ui: bool = False
    """Serve LiteLLM's admin UI on /ui (default False: keys are managed through the API)."""
    protect: bool = False
    """``protect`` and retain-on-delete on the database, its key and the secrets; deletion protection."""


class ModelGateway(pulumi.ComponentResource):
    """LiteLLM's proxy in front of the vLLM pools and cloud providers, with its database and secrets."""

    service_host: str
    """In-cluster DNS name of the gateway's Service."""
    base_url: str
    """The OpenAI-compatible base URL agents use."""
    service_account: str
    """Service account of the gateway pods (for a Bedrock Pod Identity role)."""
    egress_hosts: tuple[str, ...]
    """Provider API hosts the gateway must reach: the mesh's ServiceEntries for its namespace."""
    config_yaml: pulumi.Output[str]
    """The generated LiteLLM config (no secrets: references to environment variables only)."""
    master_key_secret_name: str
    """Secrets Manager name of the master key admins mint virtual keys with."""
    provider_secret_names: dict[str, str]
    """Secrets Manager name of each provider's API key, by provider; an operator sets the values."""
    database: aws.rds.Instance
    """The PostgreSQL instance."""
    database_host: pulumi.Output[str]
    """Its address (the mesh needs it for egress on 5432)."""
    database_security_group_id: pulumi.Output[str]
    """The database's security group."""
    key: EncryptionKey
    """Encrypts the database, its Performance Insights and its logs."""

    def __init__(self, name: str, args: ModelGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:models:ModelGateway", name, None, opts)
        _validate(name, args)
        self._args, self._name = args, name
        naming = args.naming
        self.service_host = f"{APP}.{args.namespace}.svc.cluster.local"
        self.base_url = f"http://{self.service_host}:{PORT}/v1"
        self.service_account = APP
        self.egress_hosts = egress_hosts(args.cloud_models, args.env.region)
        self._secret_prefix = f"{naming.project}/{naming.environment}/models"
        self._secrets_key = args.secrets_kms_key_id or f"alias/{naming.name('model-secrets')}"
        self._stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)

        self._build_database(name, args)
        self._build_secrets(name, args)
        self._build_workload(name, args)
        self.register_outputs(
            {
                "serviceHost": self.service_host,
                "baseUrl": self.base_url,
                "serviceAccount": self.service_account,
                "egressHosts": list(self.egress_hosts),
                "masterKeySecretName": self.master_key_secret_name,
                "providerSecretNames": self.provider_secret_names,
                "databaseHost": self.database_host,
                "databaseSecurityGroupId": self.database_security_group_id,
                "keyArn": self.key.arn,
            }
        )

    def bedrock_statements(self) -> list[dict[str, Any]]:
        """IAM statements a Pod Identity role of :attr:`service_account` needs to call the configured Bedrock
        models (none without Bedrock models): invoke, streaming included, on their foundation-model ARNs."""
        env = self._args.env
        arns = sorted(
            {
                f"arn:{env.partition}:bedrock:{env.region}::foundation-model/{m.model}"
                for m in self._args.cloud_models
                if m.provider == "bedrock"
            }
        )
        if not arns:
            return []
        return [
            iam.statement("InvokeBedrockModels", ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"], arns)
        ]

    # --- database -------------------------------------------------------------------------------------

    def _build_database(self, name: str, args: ModelGatewayArgs) -> None:
        naming, db = args.naming, args.database
        identifier = naming.name("litellm-db")
        self.key = EncryptionKey(
            f"{name}-db-key",
            EncryptionKeyArgs(
                description=f"{naming.prefix}: model gateway database, its Performance Insights and logs",
                env=args.env,
                alias=identifier,
                services=("logs",),
                protect=args.protect,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-db-sg",
            aws.ec2.SecurityGroupArgs(
                vpc_id=args.vpc_id,
                description=f"{naming.prefix} model gateway database: {DB_PORT} from the EKS cluster only",
                tags={"Name": identifier},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.database_security_group_id = security_group.id
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-from-cluster",
            aws.vpc.SecurityGroupIngressRuleArgs(
                security_group_id=security_group.id,
                referenced_security_group_id=args.cluster_security_group_id,
                ip_protocol="tcp",
                from_port=DB_PORT,
                to_port=DB_PORT,
                description="PostgreSQL from the EKS cluster (gateway pods)",
                tags={"Name": naming.name("litellm-db", "from", "cluster")},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        subnets = aws.rds.SubnetGroup(
            f"{name}-db-subnets",
            aws.rds.SubnetGroupArgs(
                name=identifier,
                description=f"{naming.prefix} model gateway database: private subnets",
                subnet_ids=args.private_subnet_ids,
                tags={"Name": identifier},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        major = db.engine_version.split(".")[0]
        parameters = aws.rds.ParameterGroup(
            f"{name}-db-params",
            aws.rds.ParameterGroupArgs(
                # The family is part of the name: a major upgrade creates the new group before deleting the old.
                name=naming.name("litellm-db", f"pg{major}"),
                family=f"postgres{major}",
                description=f"{naming.prefix} model gateway database: TLS only",
                parameters=[aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1")],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        log_groups = [
            encrypted_log_group(
                f"{name}-db-log-{kind}",
                log_group_name=f"/aws/rds/instance/{identifier}/{kind}",
                retention_days=db.log_retention_days,
                kms_key_arn=self.key.arn,
                parent=self,
                protect=args.protect,
            )
            for kind in ("postgresql", "upgrade")
        ]
        # Letters and digits only: the password is spliced into DATABASE_URL without URL-encoding.
        self._db_password = random.RandomPassword(
            f"{name}-db-password",
            random.RandomPasswordArgs(length=40, special=False),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.database = aws.rds.Instance(
            f"{name}-db",
            aws.rds.InstanceArgs(
                identifier=identifier,
                engine="postgres",
                engine_version=db.engine_version,
                # The pin is the version: minor upgrades are deliberate bumps, not drift from the config.
                auto_minor_version_upgrade=False,
                allow_major_version_upgrade=False,
                instance_class=db.instance_class,
                storage_type="gp3",
                allocated_storage=db.allocated_storage_gib,
                max_allocated_storage=db.max_allocated_storage_gib,
                storage_encrypted=True,
                kms_key_id=self.key.arn,
                multi_az=db.multi_az,
                db_subnet_group_name=subnets.name,
                vpc_security_group_ids=[security_group.id],
                publicly_accessible=False,
                port=DB_PORT,
                db_name=DB_NAME,
                username=DB_USER,
                password=self._db_password.result,
                iam_database_authentication_enabled=True,
                parameter_group_name=parameters.name,
                backup_retention_period=db.backup_retention_days,
                backup_window=db.backup_window,
                maintenance_window=db.maintenance_window,
                copy_tags_to_snapshot=True,
                delete_automated_backups=False,
                deletion_protection=args.protect,
                skip_final_snapshot=False,
                final_snapshot_identifier=naming.name("litellm-db", "final"),
                performance_insights_enabled=True,
                performance_insights_kms_key_id=self.key.arn,
                performance_insights_retention_period=7,
                enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
                apply_immediately=False,
                tags={"Name": identifier},
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect, depends_on=log_groups
            ),
        )
        self.database_host = self.database.address

    # --- secrets --------------------------------------------------------------------------------------

    def _secret(self, resource_name: str, secret_name: str, description: str) -> aws.secretsmanager.Secret:
        return aws.secretsmanager.Secret(
            resource_name,
            aws.secretsmanager.SecretArgs(name=secret_name, kms_key_id=self._secrets_key, description=description),
            opts=self._stateful,
        )

    def _build_secrets(self, name: str, args: ModelGatewayArgs) -> None:
        prefix = self._secret_prefix
        # The database password as JSON, so the ExternalSecret picks one property and more can follow.
        db_secret = self._secret(f"{name}-db-credentials", f"{prefix}/litellm-db", "Model gateway database login")
        aws.secretsmanager.SecretVersion(
            f"{name}-db-credentials-version",
            aws.secretsmanager.SecretVersionArgs(
                secret_id=db_secret.id,
                secret_string=pulumi.Output.json_dumps({"username": DB_USER, "password": self._db_password.result}),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        master_key = random.RandomPassword(
            f"{name}-master-key-value",
            random.RandomPasswordArgs(length=48, special=False),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.master_key_secret_name = f"{prefix}/litellm-master-key"
        master_secret = self._secret(
            f"{name}-master-key", self.master_key_secret_name, "LiteLLM master key: mints virtual keys; admins only"
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-master-key-version",
            # LiteLLM requires the sk- prefix; the concatenation stays a secret Output.
            aws.secretsmanager.SecretVersionArgs(
                secret_id=master_secret.id, secret_string=pulumi.Output.concat("sk-", master_key.result)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.provider_secret_names = {}
        for provider in _key_providers(args.cloud_models):
            secret_name = f"{prefix}/provider-{provider}"
            self.provider_secret_names[provider] = secret_name
            # Created empty: an operator puts the key there; the program never reads or writes it.
            self._secret(
                f"{name}-provider-{provider}",
                secret_name,
                f"{provider} API key of the model gateway; the value is set by an operator, never by the program",
            )

    # --- Kubernetes -----------------------------------------------------------------------------------

    def _external_secret(
        self,
        resource_name: str,
        target: str,
        data: list[dict[str, Any]],
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=EXTERNAL_SECRETS_API,
            kind="ExternalSecret",
            metadata={"name": target, "namespace": self._args.namespace, "labels": _labels()},
            spec={
                "refreshInterval": "1h",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": SECRET_STORE},
                "target": {"name": target, "creationPolicy": "Owner"},
                "data": data,
            },
            opts=pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=list(depends_on)),
        )

    def _build_workload(self, name: str, args: ModelGatewayArgs) -> None:
        prefix = self._secret_prefix
        self._external_secret(
            f"{name}-master-key-sync",
            "litellm-master-key",
            [{"secretKey": "LITELLM_MASTER_KEY", "remoteRef": {"key": self.master_key_secret_name}}],
        )
        self._external_secret(
            f"{name}-db-sync",
            "litellm-db",
            [{"secretKey": "DB_PASSWORD", "remoteRef": {"key": f"{prefix}/litellm-db", "property": "password"}}],
        )
        for provider, secret_name in self.provider_secret_names.items():
            env_var = PROVIDERS[provider].env_var
            self._external_secret(
                f"{name}-provider-{provider}-sync",
                f"litellm-provider-{provider}",
                [{"secretKey": env_var, "remoteRef": {"key": secret_name}}],
            )
        if args.redis is not None:
            grant = args.grant_redis_secret() if args.grant_redis_secret else None
            if args.grant_redis_secret is None:
                pulumi.log.warn(
                    f"ModelGateway {name}: no grant_redis_secret; the External Secrets Operator cannot read "
                    f"{args.redis.auth_secret_name} until its role is granted that secret",
                    self,
                )
            self._external_secret(
                f"{name}-redis-sync",
                "litellm-redis",
                [{"secretKey": "REDIS_PASSWORD", "remoteRef": {"key": args.redis.auth_secret_name}}],
                depends_on=[grant] if grant is not None else [],
            )

        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        meta = k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=_labels())
        selector = k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": APP})
        k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            k8s.core.v1.ServiceAccountInitArgs(metadata=meta, automount_service_account_token=False),
            opts=k8s_opts,
        )
        redis_host = pulumi.Output.from_input(args.redis.endpoint) if args.redis else pulumi.Output.from_input("")
        self.config_yaml = redis_host.apply(
            lambda host: yaml.safe_dump(litellm_config(args, host or None), sort_keys=False)
        )
        k8s.core.v1.ConfigMap(
            f"{name}-config",
            k8s.core.v1.ConfigMapInitArgs(metadata=meta, data={"config.yaml": self.config_yaml}),
            opts=k8s_opts,
        )
        checksum = self.config_yaml.apply(lambda text: hashlib.sha256(text.encode()).hexdigest())
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            k8s.apps.v1.DeploymentInitArgs(
                metadata=meta,
                spec=k8s.apps.v1.DeploymentSpecArgs(
                    replicas=args.replicas,
                    selector=selector,
                    strategy=k8s.apps.v1.DeploymentStrategyArgs(
                        type="RollingUpdate",
                        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
                    ),
                    template=self._pod_template(args, checksum),
                ),
            ),
            # The autoscaler owns the replica count after creation.
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, ignore_changes=["spec.replicas"]),
        )
        http_service(name, meta, APP, PORT, k8s_opts)
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            k8s.policy.v1.PodDisruptionBudgetInitArgs(
                metadata=meta, spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(max_unavailable=1, selector=selector)
            ),
            opts=k8s_opts,
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            k8s.autoscaling.v2.HorizontalPodAutoscalerInitArgs(
                metadata=meta,
                spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                    scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                        api_version="apps/v1", kind="Deployment", name=APP
                    ),
                    min_replicas=args.replicas,
                    max_replicas=args.max_replicas,
                    metrics=[
                        k8s.autoscaling.v2.MetricSpecArgs(
                            type="Resource",
                            resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                                name="cpu",
                                target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=70),
                            ),
                        )
                    ],
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.deployment]),
        )

    def _env(self, args: ModelGatewayArgs) -> list[k8s.core.v1.EnvVarArgs]:
        def from_secret(var: str, secret: str, optional: bool = False) -> k8s.core.v1.EnvVarArgs:
            return k8s.core.v1.EnvVarArgs(
                name=var,
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=var, optional=optional or None)
                ),
            )

        # DB_PASSWORD precedes DATABASE_URL: Kubernetes expands $(VAR) only from variables defined before it.
        database_url = pulumi.Output.concat(
            f"postgresql://{DB_USER}:$(DB_PASSWORD)@", self.database_host, f":{DB_PORT}/{DB_NAME}?sslmode=require"
        )
        env = [
            from_secret("LITELLM_MASTER_KEY", "litellm-master-key"),
            from_secret("DB_PASSWORD", "litellm-db"),
            k8s.core.v1.EnvVarArgs(name="DATABASE_URL", value=database_url),
        ]
        if args.redis is not None:
            env.append(from_secret("REDIS_PASSWORD", "litellm-redis"))
        # Optional: a provider whose key is not set yet leaves its models failing over, not the pod down.
        env += [
            from_secret(str(PROVIDERS[p].env_var), f"litellm-provider-{p}", optional=True)
            for p in self.provider_secret_names
        ]
        env += [
            # No .env files, config from the ConfigMap only; models are never added through the UI or DB.
            k8s.core.v1.EnvVarArgs(name="LITELLM_MODE", value="PRODUCTION"),
            k8s.core.v1.EnvVarArgs(name="STORE_MODEL_IN_DB", value="False"),
            k8s.core.v1.EnvVarArgs(name="LITELLM_LOG", value="INFO"),
        ]
        if not args.admin_ui:
            env.append(k8s.core.v1.EnvVarArgs(name="DISABLE_ADMIN_UI", value="True"))
        return env

    def _pod_template(self, args: ModelGatewayArgs, checksum: pulumi.Output[str]) -> k8s.core.v1.PodTemplateSpecArgs:
        health = "/health/liveliness"
        container = k8s.core.v1.ContainerArgs(
            name=APP,
            image=args.image,
            args=["--port", str(PORT), "--config", f"{CONFIG_PATH}/config.yaml"],
            env=self._env(args),
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="config", mount_path=CONFIG_PATH, read_only=True)],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": args.cpu_request, "memory": f"{args.memory_request_gib}Gi"},
                limits={"memory": f"{args.memory_limit_gib}Gi"},
            ),
            # Startup runs the database migrations: five minutes before liveness applies.
            startup_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path=health, port="http"),
                period_seconds=10,
                failure_threshold=30,
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path=health, port="http"),
                period_seconds=15,
                timeout_seconds=5,
                failure_threshold=4,
            ),
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/health/readiness", port="http"),
                period_seconds=10,
                timeout_seconds=5,
                failure_threshold=3,
            ),
            # Leave time for the endpoint to leave the Service before the proxy stops taking requests.
            lifecycle=k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(sleep=k8s.core.v1.SleepActionArgs(seconds=10))
            ),
            security_context=k8s.core.v1.SecurityContextArgs(
                allow_privilege_escalation=False,
                privileged=False,
                run_as_non_root=True,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            ),
        )
        labels = _labels()
        return k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                labels=labels,
                annotations={
                    # A new config rolls the pods (a ConfigMap change alone would not reach them).
                    "checksum/config": checksum,
                    "sidecar.istio.io/inject": "true",
                    # The proxy connects to the database at start: its sidecar must be up first.
                    "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
                },
            ),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=APP,
                automount_service_account_token=False,
                node_selector=dict(SYSTEM_SELECTOR),
                topology_spread_constraints=_zone_spread(),
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=True,
                    run_as_user=RUN_AS_USER,
                    run_as_group=RUN_AS_USER,
                    fs_group=RUN_AS_USER,
                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                ),
                # In-flight streams finish before the pod is killed.
                termination_grace_period_seconds=args.request_timeout_seconds + 30,
                containers=[container],
                volumes=[
                    k8s.core.v1.VolumeArgs(name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=APP))
                ],
            ),
        )


def _labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/component": "model-gateway",
        "app.kubernetes.io/part-of": "agent-infra",
    }


def _zone_spread() -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    selector = k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": APP})
    return [
        # Strict over zones (tainted, failing nodes left out of the count), best effort over nodes.
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="topology.kubernetes.io/zone",
            when_unsatisfiable="DoNotSchedule",
            node_taints_policy="Honor",
            label_selector=selector,
        ),
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="ScheduleAnyway",
            label_selector=selector,
        ),
    ]


# --- the generated LiteLLM config ---------------------------------------------------------------------


def _key_providers(cloud_models: Sequence[CloudModel]) -> list[str]:
    """Providers in use that authenticate with an API key, in first-use order."""
    used = dict.fromkeys(m.provider for m in cloud_models)
    return [p for p in used if p in PROVIDERS and PROVIDERS[p].env_var]


def egress_hosts(cloud_models: Sequence[CloudModel], region: str) -> tuple[str, ...]:
    """The API hosts of the providers the cloud models use, sorted."""
    hosts = {
        host.format(region=region)
        for m in cloud_models
        if m.provider in PROVIDERS
        for host in PROVIDERS[m.provider].hosts
    }
    return tuple(sorted(hosts))


def _capacity(rpm: int | None, tpm: int | None) -> dict[str, int]:
    return {k: v for k, v in (("rpm", rpm), ("tpm", tpm)) if v is not None}


def _local_deployment(model: LocalModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "input_cost_per_token": model.input_cost_per_million / 1_000_000,
        "output_cost_per_token": model.output_cost_per_million / 1_000_000,
    }
    if model.max_input_tokens is not None:
        info["max_input_tokens"] = model.max_input_tokens
    return {
        "model_name": model.served_name,
        "litellm_params": {
            "model": f"hosted_vllm/{model.served_name}",
            "api_base": model.service_url,
            **_capacity(model.rpm, model.tpm),
        },
        "model_info": info,
    }


def _cloud_deployment(model: CloudModel, region: str) -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"{model.provider}/{model.model}"}
    env_var = PROVIDERS[model.provider].env_var
    if env_var:
        # LiteLLM's reference to an environment variable: the key itself never appears in the config.
        params["api_key"] = f"os.environ/{env_var}"
    else:
        params["aws_region_name"] = region
    return {"model_name": model.name, "litellm_params": {**params, **_capacity(model.rpm, model.tpm)}}


def _redis_settings(redis: RedisConnection, host: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``cache_params``, the Redis part of ``router_settings``)."""
    password = "os.environ/REDIS_PASSWORD"
    cache: dict[str, Any] = {
        "type": "redis",
        "host": host,
        "port": redis.port,
        "password": password,
        "ssl": True,
        "namespace": "litellm",
        # Redis holds the shared counters; completions are cached only when a request asks for it.
        "mode": "default_off",
    }
    router: dict[str, Any] = {"redis_host": host, "redis_port": redis.port, "redis_password": password}
    router_kwargs: dict[str, Any] = {"ssl": True}
    if redis.cluster_mode:
        # Two lists, not one shared: YAML would otherwise write an anchor and an alias.
        cache["redis_startup_nodes"] = [{"host": host, "port": redis.port}]
        router_kwargs["startup_nodes"] = [{"host": host, "port": redis.port}]
    router["cache_kwargs"] = router_kwargs
    return cache, router


def litellm_config(args: ModelGatewayArgs, redis_host: str | None) -> dict[str, Any]:
    """LiteLLM's proxy config for the Args; ``redis_host`` is the Redis endpoint once known."""
    model_list = [_local_deployment(m) for m in args.local_models]
    model_list += [_cloud_deployment(m, args.env.region) for m in args.cloud_models]
    router: dict[str, Any] = {
        "routing_strategy": args.routing_strategy,
        # Context-window and rpm checks before a call, so overflow goes to the fallbacks instead of failing.
        "enable_pre_call_checks": True,
        "num_retries": args.num_retries,
        "timeout": args.request_timeout_seconds,
        "allowed_fails": args.allowed_fails,
        "cooldown_time": args.cooldown_seconds,
        "fallbacks": [{m.served_name: list(m.fallbacks)} for m in args.local_models if m.fallbacks],
        "context_window_fallbacks": [
            {m.served_name: list(m.context_window_fallbacks)} for m in args.local_models if m.context_window_fallbacks
        ],
    }
    settings: dict[str, Any] = {
        "request_timeout": args.request_timeout_seconds,
        # A fallback to another provider must not fail on a parameter only the first one takes.
        "drop_params": True,
    }
    general: dict[str, Any] = {
        "master_key": "os.environ/LITELLM_MASTER_KEY",
        "database_url": "os.environ/DATABASE_URL",
        "store_model_in_db": False,
    }
    if args.redis is not None and redis_host:
        cache, router_redis = _redis_settings(args.redis, redis_host)
        settings.update(cache=True, cache_params=cache)
        router.update(router_redis)
    if args.agent_limits and args.agent_limits.configured:
        settings["upperbound_key_generate_params"] = args.agent_limits.litellm()
    if args.user_limits and args.user_limits.configured:
        user = args.user_limits
        settings["default_internal_user_params"] = user.litellm()
        if user.max_budget_usd is not None:
            settings["max_internal_user_budget"] = user.max_budget_usd
        if user.budget_duration is not None:
            settings["internal_user_budget_duration"] = user.budget_duration
    if args.global_limits is not None:
        limits = args.global_limits
        if limits.max_budget_usd is not None:
            settings["max_budget"] = limits.max_budget_usd
        if limits.budget_duration is not None:
            settings["budget_duration"] = limits.budget_duration
        if limits.max_parallel_requests is not None:
            general["global_max_parallel_requests"] = limits.max_parallel_requests
    return {
        "model_list": model_list,
        "router_settings": router,
        "litellm_settings": settings,
        "general_settings": general,
    }


# --- validation ---------------------------------------------------------------------------------------


def _image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return image.split("@", 1)[0].rsplit(":", 1)[0] in IMAGE_REPOSITORIES
    repository, _, tag = image.rpartition(":")
    return repository in IMAGE_REPOSITORIES and bool(tag) and tag not in FLOATING_TAGS and not tag.endswith("latest")


def _names_among(known: Sequence[str]) -> Callable[[Any], bool]:
    """A ``Checker`` test: distinct names, each one of ``known``."""
    return lambda chain: all(n in known for n in chain) and len(set(chain)) == len(chain)


def _check_limits(checker: Checker, label: str, limits: UsageLimits | None) -> None:
    if limits is None:
        return
    for attr in ("rpm", "tpm", "max_parallel_requests", "max_budget_usd"):
        checker.check(f"{label}.{attr}", getattr(limits, attr), lambda v: v is None or v > 0, "a positive number")
    checker.check(
        f"{label}.budget_duration",
        limits.budget_duration,
        lambda v: v is None or bool(_DURATION.match(v)),
        "<n>s, <n>m, <n>h, <n>d or <n>mo, e.g. 30d",
    )


def _validate(name: str, args: ModelGatewayArgs) -> None:
    checker = Checker(f"ModelGateway {name}")
    checker.check(
        "image",
        args.image,
        _image_pinned,
        f"one of {', '.join(IMAGE_REPOSITORIES)} with a pinned tag or digest, never latest",
    )
    checker.check("local_models", args.local_models, lambda v: len(v) >= 1, "at least one vLLM pool")
    names = [m.served_name for m in args.local_models] + [m.name for m in args.cloud_models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    checker.check("local_models", duplicates, lambda v: not v, "unique model names across local and cloud models")
    for index, local in enumerate(args.local_models):
        where = f"local_models[{index}]"
        checker.check(
            f"{where}.served_name", local.served_name, lambda v: bool(_MODEL_NAME.match(v)), "a lower-case model name"
        )
        checker.check(
            f"{where}.service_url",
            local.service_url,
            lambda v: v.startswith(("http://", "https://")) and v.rstrip("/").endswith("/v1"),
            "the pool's OpenAI base URL, http://vllm-<pool>.<ns>.svc.cluster.local:8000/v1",
        )
        for attr in ("max_input_tokens", "rpm", "tpm"):
            checker.check(f"{where}.{attr}", getattr(local, attr), lambda v: v is None or v > 0, "a positive number")
        for attr in ("input_cost_per_million", "output_cost_per_million"):
            checker.check(f"{where}.{attr}", getattr(local, attr), lambda v: v >= 0, "zero or more USD")
        for attr in ("fallbacks", "context_window_fallbacks"):
            chain: tuple[str, ...] = getattr(local, attr)
            others = [n for n in names if n != local.served_name]
            checker.check(
                f"{where}.{attr}",
                chain,
                _names_among(others),
                f"distinct names of other configured models ({', '.join(others)})",
            )
    for index, cloud in enumerate(args.cloud_models):
        where = f"cloud_models[{index}]"
        checker.check(f"{where}.name", cloud.name, lambda v: bool(_MODEL_NAME.match(v)), "a lower-case model name")
        checker.check(f"{where}.provider", cloud.provider, lambda v: v in PROVIDERS, f"one of {', '.join(PROVIDERS)}")
        # A pasted API key is refused without being repeated in the error (CI logs keep errors).
        looks_like_key = cloud.model.startswith(KEY_PREFIXES)
        checker.check(
            f"{where}.model",
            "<redacted>" if looks_like_key else cloud.model,
            lambda v: v != "<redacted>" and bool(_PROVIDER_MODEL.match(v)),
            "the provider's model id, never an API key",
        )
        for attr in ("rpm", "tpm"):
            checker.check(f"{where}.{attr}", getattr(cloud, attr), lambda v: v is None or v > 0, "a positive number")
    _check_limits(checker, "agent_limits", args.agent_limits)
    _check_limits(checker, "user_limits", args.user_limits)
    _check_limits(checker, "global_limits", args.global_limits)
    if args.global_limits is not None:
        checker.check(
            "global_limits",
            (args.global_limits.rpm, args.global_limits.tpm),
            lambda v: v == (None, None),
            "no rpm or tpm (LiteLLM has no proxy-wide rate; set rpm/tpm per model)",
        )
    limited = [
        label
        for label, limits in (
            ("agent_limits", args.agent_limits),
            ("user_limits", args.user_limits),
            ("global_limits", args.global_limits),
        )
        if limits is not None and limits.configured
    ]
    checker.check(
        "redis",
        args.redis,
        lambda v: v is not None or not limited,
        f"a Redis connection when {', '.join(limited) or 'limits'} are set (replicas share the counters there)",
    )
    checker.check("namespace", args.namespace, lambda v: bool(_MODEL_NAME.match(v)), "a Kubernetes namespace name")
    checker.check(
        "replicas", (args.replicas, args.max_replicas), lambda v: 2 <= v[0] <= v[1], "2 <= replicas <= max_replicas"
    )
    checker.check(
        "memory_limit_gib",
        (args.memory_request_gib, args.memory_limit_gib),
        lambda v: 1 <= v[0] <= v[1],
        "at least memory_request_gib (itself at least 1)",
    )
    checker.check(
        "routing_strategy",
        args.routing_strategy,
        lambda v: v in ROUTING_STRATEGIES,
        f"one of {', '.join(ROUTING_STRATEGIES)}",
    )
    checker.check("num_retries", args.num_retries, lambda v: 0 <= v <= 5, "0 to 5")
    checker.check("request_timeout_seconds", args.request_timeout_seconds, lambda v: 10 <= v <= 3600, "10 to 3600")
    checker.check("allowed_fails", args.allowed_fails, lambda v: v >= 1, "at least 1")
    checker.check("cooldown_seconds", args.cooldown_seconds, lambda v: 1 <= v <= 3600, "1 to 3600")
    db = args.database
    checker.check(
        "database.engine_version",
        db.engine_version,
        lambda v: bool(_ENGINE_VERSION.match(v)),
        "a pinned PostgreSQL <major>.<minor>, major 14 to 17, e.g. 16.8",
    )
    checker.check(
        "database.instance_class", db.instance_class, lambda v: v.startswith("db."), "an RDS class, e.g. db.t4g.medium"
    )
    checker.check("database.backup_retention_days", db.backup_retention_days, lambda v: 7 <= v <= 35, "7 to 35 days")
    checker.check(
        "database.max_allocated_storage_gib",
        (db.allocated_storage_gib, db.max_allocated_storage_gib),
        lambda v: 20 <= v[0] <= v[1] <= 65536,
        "20 <= allocated_storage_gib <= max_allocated_storage_gib <= 65536",
    )
    checker.done()
