"""What every model server needs in the cluster: its namespace, KEDA, and the Hugging Face token.

The token lives in AWS Secrets Manager; this component creates the (empty) secret and never reads or
writes its value: an operator puts it there once (``aws secretsmanager put-secret-value``). The External
Secrets Operator, with a Pod Identity role that may read only this environment's model secrets, copies
it into the ``huggingface-token`` Kubernetes Secret the model pods use.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import iam
from .cluster_services import Chart
from .eks_cluster import EksCluster
from .kms_key import EncryptionKey, EncryptionKeyArgs
from .naming import Naming

KEDA = Chart("keda", "2.17.2", "https://kedacore.github.io/charts")
EXTERNAL_SECRETS = Chart("external-secrets", "0.18.2", "https://charts.external-secrets.io")
HF_SECRET_KEY = "HF_TOKEN"


@dataclass(frozen=True)
class ModelPlatformArgs:
    naming: Naming
    cluster: EksCluster
    namespace: str = "models"
    create_namespace: bool = True
    """Create the namespace (False when the service mesh creates it, with sidecar injection)."""
    kms_deletion_window_days: int = 30
    protect: bool = False
    keda: Chart = KEDA
    external_secrets: Chart = EXTERNAL_SECRETS


class ModelPlatform(pulumi.ComponentResource):
    """The models namespace, KEDA, the External Secrets Operator and the Hugging Face token's plumbing."""

    namespace: str
    hf_secret_name: str
    """Secrets Manager name of the Hugging Face token (``agent-infra/<env>/models/huggingface-token``)."""
    hf_kubernetes_secret: str
    """Kubernetes Secret the model pods read ``HF_TOKEN`` from."""

    def __init__(self, name: str, args: ModelPlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:models:ModelPlatform", name, None, opts)
        naming, cluster = args.naming, args.cluster
        env = cluster._env
        self.namespace = args.namespace
        self.hf_secret_name = f"{naming.project}/{naming.environment}/models/huggingface-token"
        self.hf_kubernetes_secret = "huggingface-token"
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cluster.provider)

        key = EncryptionKey(
            f"{name}-secrets-key",
            EncryptionKeyArgs(
                description=f"{naming.prefix}: model secrets (Hugging Face token)",
                env=env,
                alias=naming.name("model-secrets"),
                deletion_window_days=args.kms_deletion_window_days,
                protect=args.protect,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.secretsmanager.Secret(
            f"{name}-hf-token",
            aws.secretsmanager.SecretArgs(
                name=self.hf_secret_name,
                kms_key_id=key.arn,
                description="Hugging Face token for gated model downloads; the value is set by an operator, never "
                "by the program",
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

        namespace = (
            k8s.core.v1.Namespace(
                f"{name}-namespace",
                k8s.core.v1.NamespaceInitArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=args.namespace, labels={"istio-injection": "enabled"})
                ),
                opts=k8s_opts,
            )
            if args.create_namespace
            else None
        )
        system = {"agent-infra/role": "system"}
        keda = k8s.helm.v3.Release(
            f"{name}-keda",
            k8s.helm.v3.ReleaseArgs(
                name="keda",
                chart=args.keda.name,
                version=args.keda.version,
                namespace="keda",
                create_namespace=True,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=args.keda.repo),
                atomic=True,
                values={"nodeSelector": system},
            ),
            opts=k8s_opts,
        )
        self.keda = keda

        self.secrets_key = key
        self.external_secrets_role = cluster.workload_role(
            f"{name}-external-secrets",
            namespace="external-secrets",
            service_account="external-secrets",
            parent=self,
            statements=[
                iam.statement(
                    "ReadModelSecrets",
                    ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                    [env.arn("secretsmanager", f"secret:{naming.project}/{naming.environment}/models/*")],
                ),
                key.grant_statement(
                    "DecryptModelSecrets",
                    ["kms:Decrypt"],
                    {"StringEquals": {"kms:ViaService": f"secretsmanager.{env.region}.amazonaws.com"}},
                ),
            ],
        )
        operator = k8s.helm.v3.Release(
            f"{name}-external-secrets",
            k8s.helm.v3.ReleaseArgs(
                name="external-secrets",
                chart=args.external_secrets.name,
                version=args.external_secrets.version,
                namespace="external-secrets",
                create_namespace=True,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=args.external_secrets.repo),
                atomic=True,
                values={
                    "installCRDs": True,
                    "serviceAccount": {"name": "external-secrets"},
                    "nodeSelector": system,
                    "webhook": {"nodeSelector": system},
                    "certController": {"nodeSelector": system},
                },
            ),
            opts=k8s_opts,
        )
        after_operator = pulumi.ResourceOptions(
            parent=self, provider=cluster.provider, depends_on=[operator, *([namespace] if namespace else [])]
        )
        store = k8s.apiextensions.CustomResource(
            f"{name}-secret-store",
            api_version="external-secrets.io/v1beta1",
            kind="ClusterSecretStore",
            metadata={"name": "aws-secrets-manager"},
            # No auth block: the operator uses its own Pod Identity credentials.
            spec={"provider": {"aws": {"service": "SecretsManager", "region": env.region}}},
            opts=after_operator,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-hf-token-sync",
            api_version="external-secrets.io/v1beta1",
            kind="ExternalSecret",
            metadata={"name": self.hf_kubernetes_secret, "namespace": args.namespace},
            spec={
                "refreshInterval": "1h",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": "aws-secrets-manager"},
                "target": {"name": self.hf_kubernetes_secret, "creationPolicy": "Owner"},
                "data": [{"secretKey": HF_SECRET_KEY, "remoteRef": {"key": self.hf_secret_name}}],
            },
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[store]),
        )
        self.register_outputs({"namespace": self.namespace, "hfSecretName": self.hf_secret_name})
