"""Compliant fixtures built by running real pulumi-aws resources under the offline engine.

Type tokens and camelCase property names therefore come from the installed SDK, not from the tests.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pulumi
import pulumi_aws as aws

from agentinfra.engine import record

ACCOUNT = "123456789012"


def _tls_policy(bucket_name: str) -> str:
    arn = f"arn:aws:s3:::{bucket_name}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def _bucket(name: str, *, key: aws.kms.Key | None, log_target: aws.s3.Bucket | None) -> aws.s3.Bucket:
    bucket = aws.s3.Bucket(name, aws.s3.BucketArgs(bucket=f"fixture-{name}"), opts=pulumi.ResourceOptions(protect=True))
    default = (
        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms", kms_master_key_id=key.arn
        )
        if key
        else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="AES256"
        )
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-sse",
        aws.s3.BucketServerSideEncryptionConfigurationInitArgs(
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=default, bucket_key_enabled=key is not None
                )
            ],
        ),
    )
    aws.s3.BucketVersioning(
        f"{name}-versioning",
        aws.s3.BucketVersioningInitArgs(
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        ),
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-pab",
        aws.s3.BucketPublicAccessBlockArgs(
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        ),
    )
    aws.s3.BucketPolicy(
        f"{name}-policy", aws.s3.BucketPolicyArgs(bucket=bucket.id, policy=_tls_policy(f"fixture-{name}"))
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        aws.s3.BucketLifecycleConfigurationArgs(
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=365),
                )
            ],
        ),
    )
    if log_target is not None:
        aws.s3.BucketLogging(
            f"{name}-logging",
            aws.s3.BucketLoggingInitArgs(bucket=bucket.id, target_bucket=log_target.id, target_prefix=f"{name}/"),
        )
    return bucket


def s3_program() -> None:
    key = aws.kms.Key("key", aws.kms.KeyArgs(enable_key_rotation=True), opts=pulumi.ResourceOptions(protect=True))
    access_logs = _bucket("access-logs", key=None, log_target=None)
    logs = _bucket("logs", key=key, log_target=access_logs)
    replica = _bucket("replica", key=key, log_target=access_logs)
    role = aws.iam.Role(
        "replication",
        aws.iam.RoleArgs(
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "s3.amazonaws.com"}}
                    ],
                }
            )
        ),
    )
    aws.s3.BucketReplicationConfig(
        "logs-replication",
        aws.s3.BucketReplicationConfigArgs(
            bucket=logs.id,
            role=role.arn,
            rules=[
                aws.s3.BucketReplicationConfigRuleArgs(
                    id="dr",
                    status="Enabled",
                    filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                    delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                        status="Enabled"
                    ),
                    destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(bucket=replica.arn),
                )
            ],
        ),
    )


def _queue_policy(queue_name: str) -> str:
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "AllowProducer",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/producer"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                },
            ],
        }
    )


def sqs_program() -> None:
    key = aws.kms.Key("key", aws.kms.KeyArgs(enable_key_rotation=True))
    dlq = aws.sqs.Queue(
        "tasks-dlq", aws.sqs.QueueArgs(name="tasks-dlq", kms_master_key_id=key.arn, message_retention_seconds=1209600)
    )
    tasks = aws.sqs.Queue(
        "tasks",
        aws.sqs.QueueArgs(
            name="tasks",
            kms_master_key_id=key.arn,
            redrive_policy=dlq.arn.apply(lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})),
        ),
    )
    for queue, name in ((dlq, "tasks-dlq"), (tasks, "tasks")):
        aws.sqs.QueuePolicy(f"{name}-policy", aws.sqs.QueuePolicyArgs(queue_url=queue.url, policy=_queue_policy(name)))


def iam_program() -> None:
    doc = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "ReadLogs", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::logs/*"]}
            ],
        }
    )
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}
            ],
        }
    )
    role = aws.iam.Role(
        "worker",
        aws.iam.RoleArgs(
            assume_role_policy=trust,
            inline_policies=[aws.iam.RoleInlinePolicyArgs(name="read", policy=doc)],
            managed_policy_arns=["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
        ),
    )
    aws.iam.RolePolicy("worker-extra", aws.iam.RolePolicyArgs(role=role.id, policy=doc))
    aws.iam.RolePolicyAttachment(
        "worker-ssm",
        aws.iam.RolePolicyAttachmentArgs(
            role=role.name, policy_arn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
        ),
    )
    aws.kms.Key(
        "key",
        aws.kms.KeyArgs(
            enable_key_rotation=True,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "Root",
                            "Effect": "Allow",
                            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                            "Action": "kms:*",
                            "Resource": "*",
                        },
                        {
                            "Sid": "Logs",
                            "Effect": "Allow",
                            "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                            "Action": ["kms:Encrypt", "kms:Decrypt"],
                            "Resource": "*",
                            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*"}},
                        },
                    ],
                }
            ),
        ),
    )


def network_program() -> None:
    vpc = aws.ec2.Vpc("vpc", aws.ec2.VpcArgs(cidr_block="10.0.0.0/16"))
    for i, az in enumerate(("us-east-1a", "us-east-1b", "us-east-1c")):
        aws.ec2.Subnet(
            f"private-{az}",
            aws.ec2.SubnetArgs(
                vpc_id=vpc.id, availability_zone=az, cidr_block=f"10.0.{i}.0/24", tags={"tier": "private"}
            ),
        )
    aws.ec2.FlowLog(
        "flow",
        aws.ec2.FlowLogArgs(
            vpc_id=vpc.id, traffic_type="ALL", log_destination="arn:aws:logs:x", log_destination_type="cloud-watch-logs"
        ),
    )
    aws.ec2.SecurityGroup(
        "lb",
        aws.ec2.SecurityGroupArgs(
            vpc_id=vpc.id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"]),
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=6379, to_port=6379, cidr_blocks=["10.0.0.0/16"]
                ),
            ],
        ),
    )
    aws.ec2.SecurityGroupRule(
        "lb-http",
        aws.ec2.SecurityGroupRuleArgs(
            type="ingress",
            security_group_id="sg-1",
            protocol="tcp",
            from_port=80,
            to_port=80,
            cidr_blocks=["0.0.0.0/0"],
        ),
    )
    aws.vpc.SecurityGroupIngressRule(
        "app",
        aws.vpc.SecurityGroupIngressRuleArgs(
            security_group_id="sg-1", ip_protocol="tcp", from_port=8080, to_port=8080, cidr_ipv4="10.0.0.0/16"
        ),
    )


def governance_program() -> None:
    provider = aws.Provider(
        "aws",
        aws.ProviderArgs(
            region="us-east-1",
            default_tags=aws.ProviderDefaultTagsArgs(
                tags={
                    "environment": "test",
                    "project": "agent-infra",
                    "owner": "team",
                    "cost-centre": "cc",
                    "managed-by": "pulumi",
                }
            ),
        ),
    )
    opts = pulumi.ResourceOptions(provider=provider, protect=True)
    aws.sqs.Queue("queue", aws.sqs.QueueArgs(sqs_managed_sse_enabled=True), opts=opts)
    aws.ec2.LaunchTemplate("workers", aws.ec2.LaunchTemplateArgs(instance_type="m7i.large"), opts=opts)
    aws.elasticache.ReplicationGroup(
        "redis", aws.elasticache.ReplicationGroupArgs(description="cache", node_type="cache.r7g.large"), opts=opts
    )


@functools.cache
def _manifest(program_name: str) -> str:
    return json.dumps(record(globals()[program_name], stack="test"))


def manifest(program_name: str) -> dict[str, Any]:
    """A fresh copy of a fixture program's manifest (each program runs once per test session)."""
    return json.loads(_manifest(program_name))


def apigw_program() -> None:
    api = aws.apigateway.RestApi("api", aws.apigateway.RestApiArgs(name="agents"))
    pool = aws.cognito.UserPool("users", aws.cognito.UserPoolArgs(name="users"))
    auth = aws.apigateway.Authorizer(
        "auth", aws.apigateway.AuthorizerArgs(rest_api=api.id, type="COGNITO_USER_POOLS", provider_arns=[pool.arn])
    )
    agents = aws.apigateway.Resource(
        "agents", aws.apigateway.ResourceArgs(rest_api=api.id, parent_id=api.root_resource_id, path_part="agents")
    )
    health = aws.apigateway.Resource(
        "health", aws.apigateway.ResourceArgs(rest_api=api.id, parent_id=api.root_resource_id, path_part="health")
    )
    aws.apigateway.Method(
        "agents-post",
        aws.apigateway.MethodArgs(
            rest_api=api.id,
            resource_id=agents.id,
            http_method="POST",
            authorization="COGNITO_USER_POOLS",
            authorizer_id=auth.id,
        ),
    )
    aws.apigateway.Method(
        "health-get",
        aws.apigateway.MethodArgs(rest_api=api.id, resource_id=health.id, http_method="GET", authorization="NONE"),
    )
    deployment = aws.apigateway.Deployment("deployment", aws.apigateway.DeploymentArgs(rest_api=api.id))
    logs = aws.cloudwatch.LogGroup("access", aws.cloudwatch.LogGroupArgs(name="/api/access", retention_in_days=30))
    stage = aws.apigateway.Stage(
        "v1",
        aws.apigateway.StageArgs(
            rest_api=api.id,
            deployment=deployment.id,
            stage_name="v1",
            xray_tracing_enabled=True,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(destination_arn=logs.arn, format="{}"),
        ),
    )
    aws.apigateway.MethodSettings(
        "defaults",
        aws.apigateway.MethodSettingsArgs(
            rest_api=api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(throttling_rate_limit=1000, throttling_burst_limit=500),
        ),
    )
    aws.apigateway.UsagePlan(
        "gold",
        aws.apigateway.UsagePlanArgs(
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(rate_limit=50, burst_limit=100)
        ),
    )
    acl = aws.wafv2.WebAcl(
        "waf",
        aws.wafv2.WebAclArgs(
            scope="REGIONAL",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name="waf", sampled_requests_enabled=True
            ),
        ),
    )
    aws.wafv2.WebAclAssociation(
        "waf-stage", aws.wafv2.WebAclAssociationArgs(resource_arn=stage.arn, web_acl_arn=acl.arn)
    )


def istio_program() -> None:
    import pulumi_kubernetes as k8s

    provider = k8s.Provider("k8s", kubeconfig="{}")
    opts = pulumi.ResourceOptions(provider=provider)
    k8s.helm.v3.Release(
        "istiod", k8s.helm.v3.ReleaseArgs(chart="istiod", version="1.26.2", namespace="istio-system"), opts=opts
    )
    k8s.core.v1.Namespace(
        "models",
        k8s.core.v1.NamespaceInitArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(name="models", labels={"istio-injection": "enabled"})
        ),
        opts=opts,
    )
    k8s.core.v1.Service(
        "vllm",
        k8s.core.v1.ServiceInitArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="vllm-llama", namespace="models", labels={"agent-infra/model-pool": "llama"}
            ),
            spec=k8s.core.v1.ServiceSpecArgs(ports=[k8s.core.v1.ServicePortArgs(port=8000)]),
        ),
        opts=opts,
    )

    def custom(name: str, api: str, kind: str, namespace: str, spec: dict[str, Any]) -> None:
        k8s.apiextensions.CustomResource(
            name, api_version=api, kind=kind, metadata={"name": name, "namespace": namespace}, spec=spec, opts=opts
        )

    custom("default", "security.istio.io/v1", "PeerAuthentication", "istio-system", {"mtls": {"mode": "STRICT"}})
    custom(
        "vllm-llama",
        "networking.istio.io/v1",
        "DestinationRule",
        "models",
        {
            "host": "vllm-llama.models.svc.cluster.local",
            "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 5}},
        },
    )
    custom(
        "models-egress",
        "networking.istio.io/v1",
        "Sidecar",
        "models",
        {"egress": [{"hosts": ["./*", "istio-system/*"]}], "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
    )
    custom(
        "huggingface",
        "networking.istio.io/v1",
        "ServiceEntry",
        "models",
        {
            "hosts": ["huggingface.co"],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
            "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
        },
    )
