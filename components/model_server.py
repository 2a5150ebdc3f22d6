"""vLLM model servers: one Deployment, Service and autoscaler per model pool.

Each replica runs a pinned ``vllm/vllm-openai`` image with ``--tensor-parallel-size`` equal to the GPUs it
requests, on the pool's tainted GPU nodes:

* ``/dev/shm`` is a memory-backed emptyDir sized for tensor parallelism (NCCL exchanges through it; the
  container default of 64 MiB crashes multi-GPU replicas, vllm#1710);
* the model cache is an emptyDir on the node's volume (a shared EBS claim cannot attach to pods in
  several zones), optionally pre-staged from S3 by an init container;
* the Hugging Face token comes from AWS Secrets Manager through the External Secrets Operator; the
  program creates the secret's container and never reads its value;
* a startup probe gives the model ``startup_seconds`` to load (ten minutes by default) before readiness
  and liveness on ``/health`` take over, so a loading pod is never killed;
* zone topology spread is ``ScheduleAnyway``: a hard spread would block scheduling exactly when one zone
  has no GPUs;
* pods are annotated not to be evicted by the Cluster Autoscaler or Karpenter: a replica that is evicted
  mid-download starts over (the annotation lasts the pod's life; scale-down happens through KEDA first);
* scaling is KEDA on the Prometheus query ``vllm:num_requests_waiting`` (queue length is a better signal
  than GPU utilisation). KEDA rather than an HPA with a metrics adapter: KEDA queries Prometheus
  directly, with no adapter rules to keep in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .gpu_node_group import GPU_TAINT_KEY, POOL_LABEL
from .kube import http_service
from .validation import Checker

QUANTIZATIONS = ("awq", "gptq", "fp8")
PORT = 8000


@dataclass(frozen=True)
class ModelServerArgs:
    provider: k8s.Provider
    """Kubernetes provider of the cluster."""
    namespace: str
    """Namespace of the model servers (sidecar injection on)."""
    pool: str
    """Model pool: node selector ``agent-infra/model-pool`` and resource names."""
    model: str
    """Hugging Face repository id, e.g. ``meta-llama/Llama-3.1-8B-Instruct``."""
    served_name: str
    """Name clients use in the OpenAI API's ``model`` field."""
    image: str
    """``vllm/vllm-openai:<tag>``, pinned (``latest`` is refused)."""
    tensor_parallel_size: int
    """GPUs per replica; also the ``nvidia.com/gpu`` limit."""
    max_model_len: int
    architecture: str = ""
    """Name in the model table (models.yaml); the ``agent-infra/model-arch`` label the sizing rule reads."""
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    gpu_memory_utilization: float = 0.90
    quantization: str | None = None
    """awq, gptq or fp8; None for the checkpoint's own dtype."""
    min_replicas: int = 1
    max_replicas: int = 2
    waiting_requests_per_replica: int = 8
    """KEDA target: queued requests per replica before another is added."""
    shm_gib: int = 8
    """Size of ``/dev/shm`` (memory-backed)."""
    cache_gib: int = 150
    """Size limit of the model cache on the node's volume."""
    cpu_request: str = "4"
    memory_request_gib: int = 32
    startup_seconds: int = 600
    """Time a replica gets to load its model before liveness applies (default ten minutes)."""
    prestage_s3_uri: str | None = None
    """Copy weights from this S3 prefix into the cache before vLLM starts."""
    aws_cli_image: str = "public.ecr.aws/aws-cli/aws-cli:2.27.0"
    """Pinned image of the pre-staging init container."""
    hf_token_secret: str = "huggingface-token"
    """Kubernetes Secret (made by an ExternalSecret) holding ``HF_TOKEN``."""
    prometheus_url: str = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"


class ModelServer(pulumi.ComponentResource):
    """Deployment, Service, PodDisruptionBudget, ServiceMonitor and KEDA ScaledObject of one model."""

    service_host: str
    """In-cluster DNS name of the model's Service (the gateway routes here)."""
    service_url: str
    """OpenAI-compatible base URL of the model inside the cluster."""

    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-infra:models:ModelServer", name, None, opts)
        _validate(name, args)
        app = f"vllm-{args.pool}"
        self.service_host = f"{app}.{args.namespace}.svc.cluster.local"
        self.service_url = f"http://{self.service_host}:{PORT}/v1"
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/part-of": "agent-infra",
            "agent-infra/model-pool": args.pool,
        }
        if args.architecture:
            labels["agent-infra/model-arch"] = args.architecture
        meta = k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.namespace, labels=labels)

        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            k8s.apps.v1.DeploymentInitArgs(
                metadata=meta,
                spec=k8s.apps.v1.DeploymentSpecArgs(
                    replicas=args.min_replicas,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": app}),
                    strategy=k8s.apps.v1.DeploymentStrategyArgs(
                        type="RollingUpdate",
                        # Bring a new replica up (minutes of loading) before taking an old one away.
                        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
                    ),
                    template=self._pod_template(args, labels),
                ),
            ),
            # KEDA owns the replica count after creation.
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, ignore_changes=["spec.replicas"]),
        )
        self.service = http_service(name, meta, app, PORT, k8s_opts)
        if args.min_replicas >= 2:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                k8s.policy.v1.PodDisruptionBudgetInitArgs(
                    metadata=meta,
                    spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                        max_unavailable=1,
                        selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": app}),
                    ),
                ),
                opts=k8s_opts,
            )
        k8s.apiextensions.CustomResource(
            f"{name}-metrics",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=meta,
            spec={
                "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
            },
            opts=k8s_opts,
        )
        query = f'sum(vllm:num_requests_waiting{{model_name="{args.served_name}"}})'
        k8s.apiextensions.CustomResource(
            f"{name}-scaler",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata=meta,
            spec={
                "scaleTargetRef": {"name": app},
                "minReplicaCount": args.min_replicas,
                "maxReplicaCount": args.max_replicas,
                # A new replica takes minutes to load: do not flap.
                "cooldownPeriod": max(600, args.startup_seconds),
                "triggers": [
                    {
                        "type": "prometheus",
                        "metadata": {
                            "serverAddress": args.prometheus_url,
                            "query": query,
                            "threshold": str(args.waiting_requests_per_replica),
                        },
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.deployment]),
        )
        self.register_outputs({"serviceHost": self.service_host, "serviceUrl": self.service_url})

    @staticmethod
    def vllm_args(args: ModelServerArgs) -> list[str]:
        out = [
            "--model",
            args.model,
            "--served-model-name",
            args.served_name,
            "--tensor-parallel-size",
            str(args.tensor_parallel_size),
            "--gpu-memory-utilization",
            f"{args.gpu_memory_utilization:g}",
            "--max-model-len",
            str(args.max_model_len),
            "--max-num-seqs",
            str(args.max_num_seqs),
            "--max-num-batched-tokens",
            str(args.max_num_batched_tokens),
            "--download-dir",
            "/models",
            "--port",
            str(PORT),
        ]
        if args.quantization:
            out += ["--quantization", args.quantization]
        return out

    def _pod_template(self, args: ModelServerArgs, labels: dict[str, str]) -> k8s.core.v1.PodTemplateSpecArgs:
        gpus = str(args.tensor_parallel_size)
        env = [
            k8s.core.v1.EnvVarArgs(
                name="HF_TOKEN",
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=args.hf_token_secret, key="HF_TOKEN")
                ),
            ),
            k8s.core.v1.EnvVarArgs(name="HF_HOME", value="/models/hf"),
            k8s.core.v1.EnvVarArgs(name="XDG_CACHE_HOME", value="/models/cache"),
            k8s.core.v1.EnvVarArgs(name="HOME", value="/models/home"),
        ]
        mounts = [
            k8s.core.v1.VolumeMountArgs(name="dshm", mount_path="/dev/shm"),
            k8s.core.v1.VolumeMountArgs(name="models", mount_path="/models"),
        ]
        probe = k8s.core.v1.HTTPGetActionArgs(path="/health", port="http")
        period = 10
        container = k8s.core.v1.ContainerArgs(
            name="vllm",
            image=args.image,
            args=self.vllm_args(args),
            env=env,
            volume_mounts=mounts,
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": args.cpu_request, "memory": f"{args.memory_request_gib}Gi", "nvidia.com/gpu": gpus},
                limits={"memory": f"{args.memory_request_gib + args.shm_gib}Gi", "nvidia.com/gpu": gpus},
            ),
            startup_probe=k8s.core.v1.ProbeArgs(
                http_get=probe, period_seconds=period, failure_threshold=math.ceil(args.startup_seconds / period)
            ),
            readiness_probe=k8s.core.v1.ProbeArgs(http_get=probe, period_seconds=period, failure_threshold=3),
            liveness_probe=k8s.core.v1.ProbeArgs(http_get=probe, period_seconds=15, failure_threshold=4),
            security_context=_restricted(),
        )
        init = []
        if args.prestage_s3_uri:
            init.append(
                k8s.core.v1.ContainerArgs(
                    name="prestage",
                    image=args.aws_cli_image,
                    command=["aws", "s3", "sync", args.prestage_s3_uri, "/models/prestaged", "--no-progress"],
                    volume_mounts=[k8s.core.v1.VolumeMountArgs(name="models", mount_path="/models")],
                    resources=k8s.core.v1.ResourceRequirementsArgs(
                        requests={"cpu": "1", "memory": "1Gi"}, limits={"memory": "2Gi"}
                    ),
                    security_context=_restricted(),
                )
            )
        return k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                labels=labels,
                annotations={
                    "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
                    "karpenter.sh/do-not-disrupt": "true",
                    "sidecar.istio.io/inject": "true",
                },
            ),
            spec=k8s.core.v1.PodSpecArgs(
                node_selector={POOL_LABEL: args.pool},
                tolerations=[k8s.core.v1.TolerationArgs(key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")],
                topology_spread_constraints=[
                    k8s.core.v1.TopologySpreadConstraintArgs(
                        max_skew=1,
                        topology_key="topology.kubernetes.io/zone",
                        when_unsatisfiable="ScheduleAnyway",
                        label_selector=k8s.meta.v1.LabelSelectorArgs(
                            match_labels={"app.kubernetes.io/name": labels["app.kubernetes.io/name"]}
                        ),
                    )
                ],
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=True,
                    run_as_user=1000,
                    run_as_group=1000,
                    fs_group=1000,
                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                ),
                automount_service_account_token=False,
                termination_grace_period_seconds=60,
                init_containers=init or None,
                containers=[container],
                volumes=[
                    k8s.core.v1.VolumeArgs(
                        name="dshm",
                        empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit=f"{args.shm_gib}Gi"),
                    ),
                    k8s.core.v1.VolumeArgs(
                        name="models", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=f"{args.cache_gib}Gi")
                    ),
                ],
            ),
        )


def _restricted() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False, privileged=False, capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"])
    )


def shm_gib_for(tensor_parallel_size: int) -> int:
    """``/dev/shm`` for a replica: 2 GiB alone, plus 4 GiB per extra GPU NCCL talks to, at most 32 GiB."""
    return min(32, 2 + 4 * (tensor_parallel_size - 1)) if tensor_parallel_size > 1 else 2


def _validate(name: str, args: ModelServerArgs) -> None:
    checker = Checker(f"ModelServer {name}")
    checker.check(
        "image",
        args.image,
        lambda v: v.startswith("vllm/vllm-openai:") and not v.endswith(":latest") and len(v.split(":", 1)[1]) > 0,
        "vllm/vllm-openai:<pinned tag>, never latest",
    )
    checker.check("tensor_parallel_size", args.tensor_parallel_size, lambda v: v in (1, 2, 4, 8), "1, 2, 4 or 8")
    checker.check(
        "quantization",
        args.quantization,
        lambda v: v is None or v in QUANTIZATIONS,
        f"one of {', '.join(QUANTIZATIONS)} or none",
    )
    checker.check("gpu_memory_utilization", args.gpu_memory_utilization, lambda v: 0.1 <= v <= 0.98, "0.1 to 0.98")
    checker.check(
        "min_replicas",
        (args.min_replicas, args.max_replicas),
        lambda v: 1 <= v[0] <= v[1],
        "1 <= min_replicas <= max_replicas",
    )
    checker.check(
        "startup_seconds",
        args.startup_seconds,
        lambda v: v >= 300,
        "at least 300 seconds (loading a model takes minutes)",
    )
    checker.done()
