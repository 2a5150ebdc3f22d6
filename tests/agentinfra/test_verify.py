"""``agentinfra verify``: the account is built in moto FROM THE PLAN MANIFEST, then drifted and broken.

Nothing here leaves the machine: ``mock_aws`` intercepts boto3 in process, and the LocalStack-path test
talks to moto's standalone server on a loopback port.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.parsers import ResponseParserError
from moto import mock_aws
from moto.elasticache.responses import ElastiCacheResponse
from moto.server import ThreadedMotoServer

from agentinfra import engine
from agentinfra.manifest import is_secret, is_unknown
from agentinfra.verify import expected_state
from agentinfra.verify_cmd import register

ENV = "prod"
REGION = "us-east-1"
Client = Callable[[str, str], Any]
"""boto3 client by (service, region), pointed at moto."""


@pytest.fixture
def manifest(plans: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The prod plan (planned once for the session): what the builder creates and verify expects."""
    return plans[ENV]


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, manifest: dict[str, Any]) -> None:
    """Fake credentials, no user AWS config, no instance metadata, one attempt per call; the plan reused."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "LOCALSTACK_HOST",
        "AGENTINFRA_USE_LOCALSTACK",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # nothing is launched: skip loading moto's AMI catalogue
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(engine, "plan", lambda env, **_: copy.deepcopy(manifest))
    # moto builds a whole boto3 Session to validate each EKS role ARN (0.1 s a node group); ours are well formed.
    monkeypatch.setattr("moto.eks.models.validate_role_arn", lambda arn: None, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="agentinfra")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["verify", *argv])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


# --- the account, built from the manifest -------------------------------------------------------------

#: Plan input names whose S3/SQS API spelling is not just the first letter capitalised.
PASCAL = {
    "id": "ID",
    "kmsMasterKeyId": "KMSMasterKeyID",
    "replicaKmsKeyId": "ReplicaKmsKeyID",
    "sseAlgorithm": "SSEAlgorithm",
}
SQS_ATTRIBUTES = {
    "delaySeconds": "DelaySeconds",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "kmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
    "fifoQueue": "FifoQueue",
    "contentBasedDeduplication": "ContentBasedDeduplication",
}


class Account:
    """Creates in moto every resource of the manifest that verify checks, with the manifest's settings."""

    def __init__(self, manifest: dict[str, Any], client: Client):
        self.manifest, self._client = manifest, client
        self._clients: dict[tuple[str, str], Any] = {}
        self.ids: dict[str, str] = {}
        """Plan URN to the id moto gave it (VPCs, subnets, queue ARNs)."""
        self.kms_keys: dict[str, str] = {}
        self.not_built: list[str] = []
        self.redis_endpoint: str | None = None

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.manifest["resources"] if r["type"] == type_]

    def by_urn(self, urn: str) -> dict[str, Any]:
        return next(r for r in self.manifest["resources"] if r["urn"] == urn)

    def client(self, service: str, region: str) -> Any:
        if (service, region) not in self._clients:
            self._clients[service, region] = self._client(service, region)
        return self._clients[service, region]

    def region(self, res: dict[str, Any]) -> str:
        return str(res["inputs"].get("region") or REGION)

    def kms_key(self, region: str) -> str:
        if region not in self.kms_keys:
            self.kms_keys[region] = self.client("kms", region).create_key()["KeyMetadata"]["Arn"]
        return self.kms_keys[region]

    def pascal(self, value: Any, region: str) -> Any:
        """Plan inputs (camelCase) as S3 API parameters; unknown values are KMS keys here."""
        if is_unknown(value):
            return self.kms_key(region)
        if isinstance(value, dict):
            return {PASCAL.get(k, k[0].upper() + k[1:]): self.pascal(v, region) for k, v in value.items()}
        if isinstance(value, list):
            return [self.pascal(v, region) for v in value]
        return value

    def subnets(self, res: dict[str, Any], key: str) -> list[str]:
        return [self.ids[u] for u in res["propertyDependencies"].get(key, []) if u in self.ids]

    def build(self) -> Account:
        self.build_network()
        self.build_buckets()
        self.build_queues()
        self.build_redis()
        self.build_eks()
        self.build_auto_scaling_groups()
        return self

    def build_network(self) -> None:
        ec2 = self.client("ec2", REGION)
        for vpc in self.of_type("aws:ec2/vpc:Vpc"):
            self.ids[vpc["urn"]] = ec2.create_vpc(CidrBlock=vpc["inputs"]["cidrBlock"])["Vpc"]["VpcId"]
        for subnet in self.of_type("aws:ec2/subnet:Subnet"):
            inputs = subnet["inputs"]
            vpc_id = self.ids[subnet["propertyDependencies"]["vpcId"][0]]
            created = ec2.create_subnet(
                VpcId=vpc_id, CidrBlock=inputs["cidrBlock"], AvailabilityZone=inputs["availabilityZone"]
            )
            self.ids[subnet["urn"]] = created["Subnet"]["SubnetId"]

    def build_buckets(self) -> None:
        names = {b["urn"]: b["inputs"]["bucket"] for b in self.of_type("aws:s3/bucket:Bucket")}
        for bucket in self.of_type("aws:s3/bucket:Bucket"):
            region, s3 = self.region(bucket), self.client("s3", self.region(bucket))
            extra: dict[str, Any] = {"ObjectLockEnabledForBucket": bool(bucket["inputs"].get("objectLockEnabled"))}
            if region != "us-east-1":
                extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(Bucket=names[bucket["urn"]], **extra)
        # Versioning before replication, which needs it on both sides.
        order = ["BucketVersioning", "BucketServerSideEncryptionConfiguration", "BucketPublicAccessBlock"]
        order += ["BucketLifecycleConfiguration", "BucketReplicationConfig"]
        for kind in order:
            for res in self.of_type(f"aws:s3/{kind[0].lower() + kind[1:]}:{kind}"):
                name, region = names[res["propertyDependencies"]["bucket"][0]], self.region(res)
                self.configure_bucket(kind, res, name, region, names)

    def configure_bucket(self, kind: str, res: dict[str, Any], name: str, region: str, names: dict[str, str]) -> None:
        s3, inputs = self.client("s3", region), res["inputs"]
        if kind == "BucketVersioning":
            status = inputs["versioningConfiguration"]["status"]
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        elif kind == "BucketServerSideEncryptionConfiguration":
            rules = self.pascal(inputs["rules"], region)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        elif kind == "BucketPublicAccessBlock":
            flags = {k: v for k, v in inputs.items() if k not in ("bucket", "region")}
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=self.pascal(flags, region))
        elif kind == "BucketLifecycleConfiguration":
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": self.pascal(inputs["rules"], region)}
            )
        elif kind == "BucketReplicationConfig":
            target_urn = next(u for u in res["propertyDependencies"]["rules"] if u in names)
            target = names[target_urn]
            rules = copy.deepcopy(inputs["rules"])
            for rule in rules:
                rule["destination"]["bucket"] = f"arn:aws:s3:::{target}"
            s3.put_bucket_replication(
                Bucket=name,
                ReplicationConfiguration={
                    "Role": "arn:aws:iam::123456789012:role/replication",
                    "Rules": self.pascal(rules, self.region(self.by_urn(target_urn))),
                },
            )

    def build_queues(self) -> None:
        # Dead-letter queues first: a work queue's redrive policy names its DLQ's ARN.
        queues = sorted(self.of_type("aws:sqs/queue:Queue"), key=lambda q: "redrivePolicy" in q["inputs"])
        for queue in queues:
            inputs, region = queue["inputs"], self.region(queue)
            sqs = self.client("sqs", region)
            attributes = {SQS_ATTRIBUTES[k]: _attribute(v) for k, v in inputs.items() if k in SQS_ATTRIBUTES}
            if "kmsMasterKeyId" in inputs:
                attributes["KmsMasterKeyId"] = self.kms_key(region)
            if "redrivePolicy" in inputs:
                dlq_arn = self.ids[queue["propertyDependencies"]["redrivePolicy"][0]]
                max_receive = json.loads(inputs["redrivePolicy"])["maxReceiveCount"]
                policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}
                attributes["RedrivePolicy"] = json.dumps(policy)
            url = sqs.create_queue(QueueName=inputs["name"], Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.ids[queue["urn"]] = arn

    def build_redis(self) -> None:
        for group in self.of_type("aws:elasticache/replicationGroup:ReplicationGroup"):
            i = group["inputs"]
            elasticache = self.client("elasticache", self.region(group))
            try:
                created = elasticache.create_replication_group(
                    ReplicationGroupId=i["replicationGroupId"],
                    ReplicationGroupDescription=i["description"],
                    AutomaticFailoverEnabled=i["automaticFailoverEnabled"],
                    MultiAZEnabled=i["multiAzEnabled"],
                    NumNodeGroups=i["numNodeGroups"],
                    ReplicasPerNodeGroup=i["replicasPerNodeGroup"],
                    CacheNodeType=i["nodeType"],
                    Engine=i["engine"],
                    EngineVersion=i["engineVersion"],
                    AtRestEncryptionEnabled=i["atRestEncryptionEnabled"],
                    TransitEncryptionEnabled=i["transitEncryptionEnabled"],
                    AuthToken="x" * 32 if is_secret(i.get("authToken")) else i.get("authToken"),
                    ClusterMode=i.get("clusterMode", "disabled"),
                    Port=i["port"],
                )["ReplicationGroup"]
            except (NotImplementedError, ResponseParserError) as exc:  # moto's ElastiCache is partial
                self.not_built.append(f"not checked: moto cannot create replication groups ({exc})")
                continue
            endpoint = created.get("ConfigurationEndpoint") or created["NodeGroups"][0]["PrimaryEndpoint"]
            self.redis_endpoint = endpoint["Address"]

    def build_eks(self) -> None:
        for cluster in self.of_type("aws:eks/cluster:Cluster"):
            self.client("eks", self.region(cluster)).create_cluster(
                name=cluster["inputs"]["name"],
                roleArn="arn:aws:iam::123456789012:role/eks",
                resourcesVpcConfig={"subnetIds": self.subnets(cluster, "vpcConfig")},
            )
        for group in self.of_type("aws:eks/nodeGroup:NodeGroup"):
            i = group["inputs"]
            self.client("eks", self.region(group)).create_nodegroup(
                clusterName=i["clusterName"],
                nodegroupName=i["nodeGroupName"],
                nodeRole="arn:aws:iam::123456789012:role/eks-node",
                subnets=self.subnets(group, "subnetIds"),
                amiType=i["amiType"],
                taints=[{"key": t["key"], "value": t["value"], "effect": t["effect"]} for t in i.get("taints", [])],
                scalingConfig=i["scalingConfig"],
                instanceTypes=i["instanceTypes"],
                capacityType=i["capacityType"],
            )

    def build_auto_scaling_groups(self) -> None:
        for group in self.of_type("aws:autoscaling/group:Group"):
            i, region = group["inputs"], self.region(group)
            template = self.client("ec2", region).create_launch_template(
                LaunchTemplateName=f"{i['name']}-template",
                LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},  # none launched
            )["LaunchTemplate"]["LaunchTemplateId"]
            self.client("autoscaling", region).create_auto_scaling_group(
                AutoScalingGroupName=i["name"],
                MinSize=i["minSize"],
                MaxSize=i["maxSize"],
                DesiredCapacity=0,  # verify ignores it (ignoreChanges), and no instance is launched
                LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
                VPCZoneIdentifier=",".join(self.subnets(group, "vpcZoneIdentifiers")),
            )

    def outputs(self, **changes: Any) -> dict[str, Any]:
        """``pulumi stack output --json --show-secrets`` as the deployed stack would give it."""
        found = {k: v for k, v in self.manifest["outputs"].items() if not _has_unknown(v)}
        if self.redis_endpoint:
            found["redisEndpoint"] = self.redis_endpoint
        return {**found, **changes}


def _attribute(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _has_unknown(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    return isinstance(value, list) and any(_has_unknown(v) for v in value)


def write_outputs(path: Path, outputs: dict[str, Any]) -> str:
    path.write_text(json.dumps(outputs))
    return str(path)


@pytest.fixture
def account(manifest: dict[str, Any]) -> Iterator[Account]:
    with mock_aws():
        yield Account(manifest, lambda service, region: boto3.client(service, region_name=region)).build()


def verify_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, account: Account, *extra: str
) -> tuple[int, dict[str, Any], str]:
    outputs = write_outputs(tmp_path / "outputs.json", account.outputs())
    code, out, err = run(capsys, ENV, "--outputs", outputs, "--json", str(tmp_path / "report.json"), *extra)
    assert "Traceback" not in err
    return code, json.loads((tmp_path / "report.json").read_text()), out


def names(findings: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(f["service"], f["resource"], f["setting"]) for f in findings]


# --- what verify expects, read from the plan ---------------------------------------------------------


def test_expected_settings_come_from_the_plan(manifest: dict[str, Any]) -> None:
    expected = expected_state(manifest)
    buckets = {b.name: b for b in expected.buckets}
    log_bucket = buckets[manifest["outputs"]["logBucketName"]]
    assert log_bucket.sse_algorithm == "aws:kms" and not log_bucket.access_log_target
    assert log_bucket.replication_rules == ("disaster-recovery",)
    assert log_bucket.lifecycle is not None and log_bucket.lifecycle["retain-audit"]["expiration.days"] == 2557
    access_logs = [b for b in expected.buckets if b.access_log_target]
    assert access_logs and all(b.sse_algorithm == "AES256" for b in access_logs)
    assert {b.region for b in expected.buckets} == {"us-east-1", "us-west-2"}  # the DR replica is pinned
    tasks = next(q for q in expected.queues if q.name == manifest["outputs"]["queueNames"]["tasks"])
    assert (tasks.dlq, tasks.max_receive_count, tasks.kms) == ("agent-infra-prod-tasks-dlq", 5, True)
    assert expected.caches[0].required == dict.fromkeys(expected.caches[0].required, True)
    gpu = next(g for g in expected.node_groups if g.name.endswith("llama-8b-us-east-1a"))
    assert gpu.azs == ("us-east-1a",) and gpu.taints == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    ]
    assert next(g for g in expected.node_groups if g.name.endswith("-system")).azs == tuple(manifest["outputs"]["azs"])


# --- against moto ----------------------------------------------------------------------------------------


def test_an_account_built_from_the_plan_passes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    account: Account,
    manifest: dict[str, Any],
) -> None:
    code, report, out = verify_json(capsys, tmp_path, account)
    assert (code, report["violations"], report["drift"]) == (0, [], []), out
    assert out.startswith(f"{ENV}: PASS: ")
    checked = {(c["service"], c["resource"]) for c in report["checked"]}
    expected = expected_state(manifest)
    assert {("s3", b.name) for b in expected.buckets} <= checked
    assert {("sqs", q.name) for q in expected.queues} <= checked
    assert {("eks", g.name) for g in expected.node_groups} <= checked
    assert {("autoscaling", a.name) for a in expected.auto_scaling_groups} <= checked
    if account.not_built:  # moto could not create the replication group: verify must say so, not pass it
        assert any(n["service"] == "elasticache" for n in report["notChecked"]), account.not_built
    else:
        assert ("elasticache", expected.caches[0].group_id) in checked
        # API Gateway, once in the plan, is listed as not checked yet; nothing else may be.
        assert [n for n in report["notChecked"] if n["service"] != "apigateway"] == []

    # Outputs of a deployment made from other settings: the known names differ from the plan's.
    outputs = write_outputs(tmp_path / "other.json", account.outputs(logBucketName="someone-elses-bucket"))
    code, out, _ = run(capsys, ENV, "--outputs", outputs, "--json", str(tmp_path / "other-report.json"))
    drift = json.loads((tmp_path / "other-report.json").read_text())["drift"]
    assert code == 1 and names(drift) == [("stack", "outputs", "logBucketName")]
    assert drift[0]["actual"] == "someone-elses-bucket"

    # An emulator without the ElastiCache API: Redis is listed as not checked, never passed silently.
    def unsupported(self: Any) -> None:
        raise NotImplementedError("The describe_replication_groups action has not been implemented")

    monkeypatch.setattr(ElastiCacheResponse, "describe_replication_groups", unsupported)
    code, report, out = verify_json(capsys, tmp_path, account)
    assert code == 0 and "NOT CHECKED" in out
    skipped = [n for n in report["notChecked"] if n["service"] == "elasticache"]
    assert [n["resource"] for n in skipped] == [expected.caches[0].group_id]
    assert "does not implement" in skipped[0]["reason"]


def test_reports_lifecycle_drift_and_a_missing_dlq_separately(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, account: Account, manifest: dict[str, Any]
) -> None:
    bucket, queue = manifest["outputs"]["logBucketName"], manifest["outputs"]["queueNames"]["tasks"]
    s3, sqs = boto3.client("s3", region_name=REGION), boto3.client("sqs", region_name=REGION)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    rule = next(r for r in rules if "Expiration" in r)
    planned_days = rule["Expiration"]["Days"]
    rule["Expiration"]["Days"] = 30
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    sqs.set_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"], Attributes={"RedrivePolicy": ""})

    code, report, out = verify_json(capsys, tmp_path, account)

    assert code == 1
    setting = f"lifecycle[{rule['ID']}].expiration.days"
    assert [(f["service"], f["resource"], f["setting"], f["expected"], f["actual"]) for f in report["drift"]] == [
        ("s3", bucket, setting, planned_days, 30)
    ]
    assert names(report["violations"]) == [("sqs", queue, "redrivePolicy")]
    assert "no dead-letter queue" in report["violations"][0]["message"]
    assert out.startswith(f"{ENV}: FAIL: ") and "1 violation(s), 1 drift" in out
    violations, drift = out.index("VIOLATIONS"), out.index("DRIFT")
    assert violations < out.index(queue) < drift < out.index(setting)


def test_a_deleted_dlq_and_rules_broken_in_every_service_are_violations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, account: Account, manifest: dict[str, Any]
) -> None:
    expected = expected_state(manifest)
    queue, bucket = manifest["outputs"]["queueNames"]["tasks"], manifest["outputs"]["logBucketName"]
    sqs, s3 = boto3.client("sqs", region_name=REGION), boto3.client("s3", region_name=REGION)
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{queue}-dlq")["QueueUrl"])
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    flags = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True,
    }
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=flags)
    sse_s3 = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=sse_s3)
    broken = [
        ("s3", bucket, "publicAccessBlock.blockPublicPolicy"),
        ("s3", bucket, "serverSideEncryption.sseAlgorithm"),
        ("s3", bucket, "versioning"),
        ("sqs", f"{queue}-dlq", "exists"),
        ("sqs", queue, "redrivePolicy.deadLetterTargetArn"),
    ]
    system = next(g for g in expected.node_groups if g.azs and len(g.azs) > 1)
    eks = boto3.client("eks", region_name=REGION)
    live = eks.describe_nodegroup(clusterName=system.cluster, nodegroupName=system.name)["nodegroup"]
    eks.delete_nodegroup(clusterName=system.cluster, nodegroupName=system.name)
    eks.create_nodegroup(
        clusterName=system.cluster,
        nodegroupName=system.name,
        nodeRole=live["nodeRole"],
        subnets=live["subnets"][:1],
        amiType=live["amiType"],
    )
    broken.append(("eks", system.name, "subnetIds"))
    for asg in expected.auto_scaling_groups:  # worker pools, when the plan has them
        autoscaling = boto3.client("autoscaling", region_name=asg.region)
        subnets = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg.name])["AutoScalingGroups"][0]
        one_subnet = subnets["VPCZoneIdentifier"].split(",")[0]
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=asg.name, VPCZoneIdentifier=one_subnet)
        broken.append(("autoscaling", asg.name, "availabilityZones"))
    if not account.not_built:
        group_id = expected.caches[0].group_id
        boto3.client("elasticache", region_name=REGION).modify_replication_group(
            ReplicationGroupId=group_id, AutomaticFailoverEnabled=False, MultiAZEnabled=False
        )
        broken += [
            ("elasticache", group_id, "automaticFailoverEnabled"),
            ("elasticache", group_id, "multiAzEnabled"),
        ]

    code, report, out = verify_json(capsys, tmp_path, account)

    assert (code, report["drift"]) == (1, [])
    assert sorted(names(report["violations"])) == sorted(broken)
    assert "DRIFT" not in out and f"{len(broken)} violation(s), 0 drift" in out
    one_az = next(f for f in report["violations"] if f["setting"] == "subnetIds")
    assert system.azs is not None and one_az["expected"] == list(system.azs) and one_az["actual"] == [system.azs[0]]


# --- the LocalStack path, against moto's standalone server on loopback ------------------------------


def test_localstack_settings_reach_a_moto_server(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manifest: dict[str, Any]
) -> None:
    monkeypatch.setattr(logging.getLogger("werkzeug"), "level", logging.ERROR)  # no request log on stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"

        def client(service: str, region: str) -> Any:
            return boto3.client(service, region_name=region, endpoint_url=endpoint)

        account = Account(manifest, client).build()
        outputs = write_outputs(tmp_path / "outputs.json", account.outputs())

        # What a LocalStack user sets; localstack_client builds the sessions (its own test credentials).
        monkeypatch.setenv("LOCALSTACK_HOST", f"{host}:{port}")
        monkeypatch.setenv("AGENTINFRA_USE_LOCALSTACK", "1")
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name)
        code, out, err = run(capsys, ENV, "--outputs", outputs, "--json", str(tmp_path / "localstack.json"))
        assert (code, err) == (0, f"json written to {tmp_path / 'localstack.json'}\n"), out + err
        report = json.loads((tmp_path / "localstack.json").read_text())
        assert report["account"] == "123456789012" and len(report["checked"]) > 20

        # --endpoint-url takes the same server without the LocalStack settings.
        monkeypatch.delenv("LOCALSTACK_HOST")
        monkeypatch.delenv("AGENTINFRA_USE_LOCALSTACK")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        sqs = client("sqs", REGION)
        queue = manifest["outputs"]["queueNames"]["tasks"]
        sqs.set_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"], Attributes={"MessageRetentionPeriod": "86400"}
        )
        code, out, _ = run(capsys, ENV, "--outputs", outputs, "--endpoint-url", endpoint)
        assert code == 1
        assert "DRIFT" in out and "messageRetentionSeconds" in out and "VIOLATIONS" not in out
    finally:
        server.stop()


# --- bad input: one message, exit 2, no traceback -------------------------------------------------------


def test_missing_credentials(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manifest: dict[str, Any]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    outputs = write_outputs(tmp_path / "outputs.json", {"project": "agent-infra", "stack": ENV, "schemaVersion": 1})
    code, out, err = run(capsys, ENV, "--outputs", outputs)
    assert (code, out) == (2, "")
    assert err.startswith("agentinfra: error: no AWS credentials found") and len(err.splitlines()) == 1


def test_unreachable_endpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outputs = write_outputs(tmp_path / "outputs.json", {"project": "agent-infra", "stack": ENV, "schemaVersion": 1})
    code, out, err = run(capsys, ENV, "--outputs", outputs, "--endpoint-url", f"http://127.0.0.1:{port}")
    assert (code, out) == (2, "")
    assert err.startswith(f"agentinfra: error: cannot reach endpoint http://127.0.0.1:{port}")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("markers", "message"),
    [
        ({"project": "other", "stack": ENV}, "outputs of project 'other', not 'agent-infra'"),
        ({"project": "agent-infra", "stack": "dev"}, "outputs of stack 'dev', not 'prod'"),
        ({"logBucketName": "x"}, "no `project` and `stack` marker outputs"),
        ({"project": "agent-infra", "stack": ENV, "schemaVersion": 2}, "outputs schemaVersion 2"),
    ],
)
def test_outputs_of_another_project_or_stack_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, markers: dict[str, Any], message: str
) -> None:
    outputs = write_outputs(tmp_path / "outputs.json", markers)
    code, out, err = run(capsys, ENV, "--outputs", outputs)
    assert (code, out) == (2, "")
    assert err.startswith(f"agentinfra: error: {outputs}: {message}") and len(err.splitlines()) == 1


def test_unreadable_outputs_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "outputs.json").write_text("not json")
    code, _, err = run(capsys, ENV, "--outputs", str(tmp_path / "outputs.json"))
    assert code == 2 and "is not readable JSON" in err and "Traceback" not in err
    code, _, err = run(capsys, ENV, "--outputs", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err


def test_without_outputs_or_pulumi_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    code, _, err = run(capsys, ENV)
    assert code == 2
    assert "no --outputs file and no `pulumi` CLI on PATH" in err
    assert f"pulumi stack output -s {ENV} --json --show-secrets" in err


def test_outputs_through_the_automation_api(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pulumi import automation

    selected: dict[str, Any] = {}

    class Stack:
        def outputs(self) -> dict[str, automation.OutputValue]:
            return {"project": automation.OutputValue("other", False), "stack": automation.OutputValue(ENV, False)}

    def select_stack(stack_name: str, work_dir: str) -> Stack:
        selected.update(stack_name=stack_name, work_dir=work_dir)
        return Stack()

    monkeypatch.setattr("agentinfra.verify_cmd.shutil.which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(automation, "select_stack", select_stack)
    code, _, err = run(capsys, ENV)
    assert selected == {"stack_name": ENV, "work_dir": str(engine.project_root())}
    assert code == 2 and f"pulumi stack {ENV}: outputs of project 'other', not 'agent-infra'" in err
