"""Plan (and check) several environments at once, one process per environment.

Each plan runs the mock runtime in its own event loop; separate processes let them use every core.
The provider SDK packages the program uses are imported once, here, before forking, so every worker
starts warm instead of importing them again (about 2 s of CPU per worker otherwise, the same work
done three times). With one job or one environment everything runs in this process.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Provider SDK packages a plan of the shipped environments imports (pulumi-aws and pulumi-kubernetes load
#: them lazily, on first use). ``tests/agentinfra/test_sdkload.py`` fails, naming the package, when a plan
#: imports one that is missing here; a missing one is still imported by each worker, only slower.
PROVIDER_PACKAGES = (
    "pulumi_aws.apigateway",
    "pulumi_aws.athena",
    "pulumi_aws.autoscaling",
    "pulumi_aws.budgets",
    "pulumi_aws.cloudwatch",
    "pulumi_aws.cognito",
    "pulumi_aws.ec2",
    "pulumi_aws.eks",
    "pulumi_aws.elasticache",
    "pulumi_aws.glue",
    "pulumi_aws.iam",
    "pulumi_aws.kms",
    "pulumi_aws.lb",
    "pulumi_aws.rds",
    "pulumi_aws.s3",
    "pulumi_aws.secretsmanager",
    "pulumi_aws.sns",
    "pulumi_aws.sqs",
    "pulumi_aws.vpc",
    "pulumi_aws.wafv2",
    "pulumi_kubernetes.apiextensions",
    "pulumi_kubernetes.apps.v1",
    "pulumi_kubernetes.autoscaling.v2",
    "pulumi_kubernetes.core.v1",
    "pulumi_kubernetes.helm.v3",
    "pulumi_kubernetes.meta.v1",
    "pulumi_kubernetes.policy.v1",
    "pulumi_random",
)

#: The resource classes the shipped program creates, by package. With prepared SDK modules (``sdkload``) a
#: package loads each resource module on first use; these are loaded here, once, for every worker.
#: ``tests/agentinfra/test_sdkload.py`` fails, naming the module, when a plan loads one that is missing here.
PROVIDER_RESOURCES = {
    "pulumi_aws": "Provider",
    "pulumi_aws.apigateway": "Account ApiKey Authorizer BasePathMapping Deployment DomainName Integration "
    "IntegrationResponse Method MethodResponse MethodSettings RequestValidator Resource RestApi Stage UsagePlan "
    "UsagePlanKey VpcLink",
    "pulumi_aws.athena": "Workgroup",
    "pulumi_aws.autoscaling": "Group Policy Schedule",
    "pulumi_aws.budgets": "Budget",
    "pulumi_aws.cloudwatch": "CompositeAlarm Dashboard LogGroup MetricAlarm",
    "pulumi_aws.cognito": "UserPool",
    "pulumi_aws.ec2": "DefaultSecurityGroup Eip FlowLog InternetGateway LaunchTemplate NatGateway Route RouteTable "
    "RouteTableAssociation SecurityGroup Subnet Vpc VpcEndpoint",
    "pulumi_aws.eks": "Addon Cluster NodeGroup PodIdentityAssociation",
    "pulumi_aws.elasticache": "ParameterGroup ReplicationGroup SubnetGroup",
    "pulumi_aws.glue": "CatalogDatabase CatalogTable",
    "pulumi_aws.iam": "InstanceProfile OpenIdConnectProvider Role RolePolicy RolePolicyAttachment",
    "pulumi_aws.kms": "Alias Key",
    "pulumi_aws.lb": "Listener LoadBalancer TargetGroup",
    "pulumi_aws.rds": "Instance ParameterGroup SubnetGroup",
    "pulumi_aws.s3": "Bucket BucketLifecycleConfiguration BucketLogging BucketOwnershipControls BucketPolicy "
    "BucketPublicAccessBlock BucketReplicationConfig BucketServerSideEncryptionConfiguration BucketVersioning",
    "pulumi_aws.secretsmanager": "Secret SecretVersion",
    "pulumi_aws.sns": "Topic TopicPolicy TopicSubscription",
    "pulumi_aws.sqs": "Queue QueuePolicy",
    "pulumi_aws.vpc": "SecurityGroupIngressRule",
    "pulumi_aws.wafv2": "WebAcl WebAclAssociation WebAclLoggingConfiguration",
    "pulumi_kubernetes": "Provider",
    "pulumi_kubernetes.apps.v1": "Deployment",
    "pulumi_kubernetes.autoscaling.v2": "HorizontalPodAutoscaler",
    "pulumi_kubernetes.core.v1": "ConfigMap Namespace Service ServiceAccount",
    "pulumi_kubernetes.policy.v1": "PodDisruptionBudget",
}

#: Upper bound on worker processes when ``jobs`` is not given.
MAX_DEFAULT_JOBS = 8


def default_jobs(count: int) -> int:
    """One process per environment: forked after the imports they are cheap, and the OS balances them."""
    return max(1, min(count, MAX_DEFAULT_JOBS))


def preload() -> None:
    """Import what a plan-and-check worker uses and read the shipped catalogs, so every worker inherits them.

    That is the program, every provider package and resource class it uses (executing lazily imported modules),
    the engine, the gate with the policy pack, the config-block parsers the engine calls, and the catalogs (read
    once per process, then shared read-only).
    """
    import runpy  # noqa: F401 - the engine runs __main__.py through it

    from agentinfra_policies.catalog import load_catalog
    from agentinfra_policies.sizing import load_models

    import stacks.app  # noqa: F401

    from . import cost, engine, gate, resilience  # noqa: F401

    load_catalog()
    load_models()
    cost.load_prices()
    for name in PROVIDER_PACKAGES:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # the package and its parents (pulumi_kubernetes.apps, ...)
            # A lazily imported module runs its body on the first attribute access.
            getattr(importlib.import_module(".".join(parts[:depth])), "_agentinfra_preload", None)
    for name, classes in PROVIDER_RESOURCES.items():
        package = importlib.import_module(name)
        for class_name in classes.split():
            getattr(package, class_name)


def map_environments(work: Callable[[str], T], environments: Sequence[str], jobs: int | None = None) -> list[T]:
    """``[work(env) for env in environments]``, in order, over ``jobs`` processes (default: one per environment)."""
    jobs = default_jobs(len(environments)) if jobs is None else jobs
    single_core = (os.cpu_count() or 1) <= 1
    if jobs <= 1 or len(environments) <= 1 or single_core or "fork" not in multiprocessing.get_all_start_methods():
        return [work(env) for env in environments]
    preload()
    with multiprocessing.get_context("fork").Pool(processes=min(jobs, len(environments))) as pool:
        return pool.map(work, environments, chunksize=1)
