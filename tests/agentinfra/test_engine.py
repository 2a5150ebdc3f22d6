"""The offline engine records what the Pulumi engine would pass to a policy pack."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, raw_config, write_config

from agentinfra import manifest as mf
from agentinfra.engine import PlanError, ProgramError, load_stack_config, plan

PROGRAM = """
import pulumi
import pulumi_aws as aws


class Box(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Box", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(f"{name}-key", aws.kms.KeyArgs(enable_key_rotation=True), opts=child)
        bucket = aws.s3.Bucket(f"{name}-bucket", opts=pulumi.ResourceOptions(
            parent=self, protect=True, retain_on_delete=True, ignore_changes=["tags"]))
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse",
            aws.s3.BucketServerSideEncryptionConfigurationInitArgs(
                bucket=bucket.id,
                rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.
                    BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn))],
            ),
            opts=child,
        )
        self.register_outputs({"bucket": bucket.id})


token = pulumi.Config("test").require_secret("token")
aws.ssm.Parameter("param", type="SecureString", value=token)
Box("box")
pulumi.export("token", token)
pulumi.export("region", pulumi.Config("aws").require("region"))
"""

PLANTED = "planted-s3cr3t-value-7f3a"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "__main__.py").write_text(PROGRAM)
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config" / "Pulumi.dev.yaml", {"aws:region": "eu-west-1", "test:token": PLANTED})
    return tmp_path


def by_name(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in manifest["resources"] if r["name"] == name)


def test_records_parents_urns_and_custom_flag(project: Path) -> None:
    m = plan("dev", root=project)
    box, sse = by_name(m, "box"), by_name(m, "box-sse")
    assert box["urn"] == "urn:pulumi:dev::agent-infra::test:index:Box::box"
    assert box["custom"] is False and sse["custom"] is True
    assert sse["parent"] == box["urn"]
    assert sse["urn"] == (
        "urn:pulumi:dev::agent-infra::test:index:Box$"
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        "::box-sse"
    )
    assert box["parent"] == "urn:pulumi:dev::agent-infra::pulumi:pulumi:Stack::agent-infra-dev"


def test_records_camelcase_inputs_and_property_dependencies(project: Path) -> None:
    m = plan("dev", root=project)
    sse = by_name(m, "box-sse")
    rule = sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "aws:kms"
    assert sse["propertyDependencies"]["bucket"] == [by_name(m, "box-bucket")["urn"]]
    assert sse["propertyDependencies"]["rules"] == [by_name(m, "box-key")["urn"]]
    assert set(sse["dependencies"]) == {by_name(m, "box-bucket")["urn"], by_name(m, "box-key")["urn"]}
    assert by_name(m, "box-key")["inputs"]["enableKeyRotation"] is True


def test_new_stack_preview_leaves_computed_outputs_unknown(project: Path) -> None:
    sse = by_name(plan("dev", root=project), "box-sse")
    assert mf.is_unknown(sse["inputs"]["bucket"])
    assert mf.is_unknown(sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"])


def test_placeholders_are_deterministic_and_derived_from_the_urn(project: Path) -> None:
    first = by_name(plan("dev", root=project, placeholders=True), "box-sse")
    second = by_name(plan("dev", root=project, placeholders=True), "box-sse")
    assert first["inputs"]["bucket"].startswith("offline-")
    assert first["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith(
        "arn:aws:offline:::"
    )
    assert first == second


def test_records_resource_options(project: Path) -> None:
    bucket = by_name(plan("dev", root=project), "box-bucket")
    assert bucket["options"]["protect"] is True
    assert bucket["options"]["retainOnDelete"] is True
    assert bucket["options"]["ignoreChanges"] == ["tags"]
    assert bucket["provider"] is None or bucket["provider"].startswith("urn:pulumi:dev::agent-infra::")


def test_secret_config_values_never_reach_the_manifest(project: Path) -> None:
    m = plan("dev", root=project)
    text = mf.dumps(m)
    assert PLANTED not in text
    assert by_name(m, "param")["inputs"]["value"] == mf.SECRET
    assert m["outputs"]["token"] == mf.SECRET
    assert m["outputs"]["region"] == "eu-west-1"


def test_secure_config_values_are_opaque_and_secret(project: Path) -> None:
    write_config(
        project / "config" / "Pulumi.dev.yaml",
        {"aws:region": "eu-west-1", "test:token": {"secure": "v1:AAAA" + PLANTED}},
    )
    config = load_stack_config("dev", project)
    assert config.secret_keys == ["test:token"]
    text = mf.dumps(plan("dev", root=project))
    assert PLANTED not in text and "offline-secret" not in text


def test_two_runs_give_identical_bytes(project: Path) -> None:
    assert mf.dumps(plan("dev", root=project)) == mf.dumps(plan("dev", root=project))


@pytest.fixture(scope="module")
def prod_bytes() -> dict[bool, str]:
    """The shipped prod plan on the default (fast) paths, in preview and placeholder mode, as written to disk."""
    return {placeholders: mf.dumps(plan("prod", placeholders=placeholders)) for placeholders in (False, True)}


def test_shipped_prod_plan_is_byte_identical_between_runs(prod_bytes: dict[bool, str]) -> None:
    assert mf.dumps(plan("prod")) == prod_bytes[False]


def test_config_set_in_the_stack_file_reaches_the_program(tmp_path: Path) -> None:
    config = raw_config("dev")
    config["agent-infra:tags"]["owner"] = "team-from-the-stack-file"
    path = write_config(tmp_path / "Pulumi.dev.yaml", config)
    m = plan("dev", config_path=path)
    provider = next(r for r in m["resources"] if r["type"] == "pulumi:providers:aws")
    assert json.loads(provider["inputs"]["defaultTags"])["tags"]["owner"] == "team-from-the-stack-file"


def test_dev_and_prod_hold_every_resource_type(plans: dict[str, dict[str, Any]]) -> None:
    """Equivalence tests plan dev and prod only; that covers every type as long as staging adds none."""
    types = {env: {r["type"] for r in m["resources"]} for env, m in plans.items()}
    assert types["staging"] <= types["dev"] | types["prod"]


def test_every_stack_exports_marker_outputs(plans: dict[str, dict[str, Any]]) -> None:
    for env, m in plans.items():
        assert m["outputs"]["project"] == "agent-infra"
        assert m["outputs"]["stack"] == env
        assert m["outputs"]["schemaVersion"] == 1


def test_invokes_are_refused_with_an_explanation(project: Path) -> None:
    (project / "__main__.py").write_text("import pulumi_aws as aws\naws.get_caller_identity()\n")
    with pytest.raises(ProgramError, match="does not model provider functions"):
        plan("dev", root=project)


def test_unknown_top_level_key_names_file_and_key(tmp_path: Path) -> None:
    config = raw_config("dev")
    config["agent-infra:netwrk"] = {"cidr": "10.0.0.0/16"}
    path = write_config(tmp_path / "Pulumi.dev.yaml", config)
    with pytest.raises(PlanError, match=r"Pulumi.dev.yaml: 1 invalid key\(s\)\n  - agent-infra:netwrk: unknown"):
        load_stack_config("dev", path=path)


def test_shipped_program_matches_pulumi_project_layout() -> None:
    project = (ROOT / "Pulumi.yaml").read_text()
    assert "name: agent-infra" in project and "stackConfigDir: config" in project
    assert (Path(sys.executable).parent / "agentinfra").exists(), "the agentinfra console script is installed"


def test_computed_members_of_object_inputs_are_unknown_as_in_a_real_preview(tmp_path: Path) -> None:
    # The provider computes vpcConfig.clusterSecurityGroupId; echoing the input object would turn it into a
    # known None and silently drop whatever reads it.
    (tmp_path / "__main__.py").write_text(
        "import pulumi_aws as aws\n"
        "cluster = aws.eks.Cluster('c', role_arn='arn:aws:iam::123456789012:role/eks',\n"
        "    vpc_config=aws.eks.ClusterVpcConfigArgs(subnet_ids=['subnet-1', 'subnet-2']))\n"
        "aws.vpc.SecurityGroupIngressRule('r', security_group_id='sg-1', ip_protocol='tcp', from_port=1,\n"
        "    to_port=1, referenced_security_group_id=cluster.vpc_config.cluster_security_group_id)\n"
    )
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config" / "Pulumi.dev.yaml", {"aws:region": "eu-west-1"})
    rule = by_name(plan("dev", root=tmp_path), "r")
    assert mf.is_unknown(rule["inputs"]["referencedSecurityGroupId"])
    assert rule["propertyDependencies"]["referencedSecurityGroupId"] == [
        "urn:pulumi:dev::agent-infra::aws:eks/cluster:Cluster::c"
    ]


def test_linear_wait_records_exactly_what_the_sdks_own_wait_records(
    monkeypatch: pytest.MonkeyPatch, prod_bytes: dict[bool, str]
) -> None:
    from agentinfra import engine

    monkeypatch.setattr(engine, "LINEAR_WAIT", False)
    assert mf.dumps(plan("prod")) == prod_bytes[False]


def test_fast_stack_trace_is_the_sdks_on_every_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both run for each resource of a prod plan; the serialized stack traces must be identical."""
    from pulumi.runtime import resource as pulumi_resource

    from agentinfra import engine

    sdk = pulumi_resource._get_stack_trace
    compared: list[bool] = []

    def both() -> object:
        theirs = sdk()
        ours = engine._stack_trace()
        # Never raise here: an exception inside a resource constructor stalls the plan. Compare afterwards.
        compared.append(ours.SerializeToString() == theirs.SerializeToString() and len(theirs.frames) > 0)
        return theirs

    monkeypatch.setattr(engine, "FAST_STACK_TRACE", False)
    monkeypatch.setattr(pulumi_resource, "_get_stack_trace", both)
    manifest = plan("prod")
    assert len(compared) >= len(manifest["resources"]) - 1
    assert all(compared), f"{compared.count(False)} of {len(compared)} stack traces differ"


@pytest.mark.parametrize("placeholders", [False, True])
def test_scalar_registrations_answer_exactly_as_the_sdks_mock_monitor(
    monkeypatch: pytest.MonkeyPatch, placeholders: bool
) -> None:
    """Every registration of the shipped plans goes through both paths; responses must be byte-identical."""
    from pulumi.runtime import mocks as pulumi_mocks

    from agentinfra import engine

    outcomes: list[str] = []

    def both(self: engine.RecordingMonitor, request: Any) -> Any:
        ours = self._register_scalars(request)
        theirs = pulumi_mocks.MockMonitor.RegisterResource(self, request)
        if ours is None:
            outcomes.append("sdk")
        elif ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True):
            outcomes.append("same")
        else:  # never raise inside a registration: it stalls the plan; compare afterwards
            outcomes.append(f"differs: {request.type} {request.name}")
        theirs_record = engine._record(request, theirs.urn)
        with self._lock:
            self.records[theirs.urn] = theirs_record
        return theirs

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", both)
    # dev and prod between them hold every resource type the shipped environments use (staging adds none:
    # test_dev_and_prod_hold_every_resource_type).
    for env in ("dev", "prod"):
        plan(env, placeholders=placeholders)
    differing = [o for o in outcomes if o.startswith("differs")]
    assert not differing, differing[:5]
    assert outcomes.count("same") > 0.95 * len(outcomes), f"{outcomes.count('sdk')} of {len(outcomes)} fell back"


def test_scalar_registrations_record_the_same_manifests(
    monkeypatch: pytest.MonkeyPatch, prod_bytes: dict[bool, str]
) -> None:
    from agentinfra import engine

    monkeypatch.setattr(engine, "FAST_REGISTER", False)
    assert {p: mf.dumps(plan("prod", placeholders=p)) for p in (False, True)} == prod_bytes


def _clear_type_caches() -> None:
    """Forget every class's type hints, so the next plan evaluates them again (through whichever path is on)."""
    from pulumi import _types

    from agentinfra import engine

    for cached in (
        _types._raw_return_hints,
        _types._types_from_py_properties,
        _types._required_property_names,
        _types._wire_union_members,
        engine._raw_return_hints,
    ):
        cached.cache_clear()
    engine._HINTS_BY_ANNOTATIONS.clear()


def test_fast_return_hints_are_the_sdks_for_every_class_of_the_shipped_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi import _types

    from agentinfra import engine

    sdk = _types._raw_return_hints
    classes: list[type] = []

    def recording(cls: type) -> dict[str, Any]:
        classes.append(cls)
        return sdk(cls)

    _clear_type_caches()
    with monkeypatch.context() as patch:
        patch.setattr(engine, "FAST_HINTS", False)
        patch.setattr(_types, "_raw_return_hints", recording)
        for env in ("dev", "prod"):  # every resource type the shipped environments use
            plan(env, placeholders=True)
    assert len(set(classes)) > 300
    _clear_type_caches()
    differing = []
    for cls in dict.fromkeys(classes):  # in the order the plans met them, sharing the memo as a plan does
        ours, theirs = engine._raw_return_hints(cls), sdk.__wrapped__(cls)
        if ours != theirs or repr(ours) != repr(theirs):
            differing.append(cls.__qualname__)
    assert not differing, differing[:5]
    assert len(engine._HINTS_BY_ANNOTATIONS) < sum(len(_types._py_properties(c)) for c in set(classes))  # shared


def test_fast_return_hints_record_the_same_manifest(
    monkeypatch: pytest.MonkeyPatch, prod_bytes: dict[bool, str]
) -> None:
    from agentinfra import engine

    monkeypatch.setattr(engine, "FAST_HINTS", False)
    _clear_type_caches()
    assert mf.dumps(plan("prod")) == prod_bytes[False]


@pytest.fixture
def loops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The event loop of every program run that follows, in order ("uvloop" or "asyncio")."""
    from agentinfra import engine

    used: list[str] = []
    inner = engine._run_program

    def recording(*args: Any) -> Any:
        used.append("asyncio" if args[-1] is None else "uvloop")
        return inner(*args)

    monkeypatch.setattr(engine, "_run_program", recording)
    return used


def test_uvloop_and_asyncio_loops_record_the_same_manifests(
    monkeypatch: pytest.MonkeyPatch, prod_bytes: dict[bool, str], loops: list[str]
) -> None:
    from agentinfra import engine

    assert engine._uvloop is not None, "uvloop is a dependency on this platform"
    monkeypatch.setattr(engine, "FAST_LOOP", False)
    assert {p: mf.dumps(plan("prod", placeholders=p)) for p in (False, True)} == prod_bytes
    monkeypatch.setattr(engine, "FAST_LOOP", True)  # the default, which prod_bytes was planned with
    plan("dev")
    assert loops == ["asyncio", "asyncio", "uvloop"]


SYNC_WAIT_PROGRAM = """
import json

import pulumi
import pulumi_aws as aws


class Holder:
    def __init__(self, value):
        self.value = value


class Encoder(json.JSONEncoder):
    def default(self, o):
        return o.__dict__ if isinstance(o, Holder) else super().default(o)


pulumi.log.warn("from the program")
# json_dumps meets an output inside an object it cannot lift: the SDK waits for it synchronously.
doc = pulumi.Output.json_dumps(Holder(pulumi.Output.from_input("a")), cls=Encoder)
aws.ssm.Parameter("p", type="String", value=doc)
pulumi.export("doc", doc)
"""


def test_a_program_that_waits_synchronously_is_planned_again_on_asyncios_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, loops: list[str]
) -> None:
    from agentinfra import engine

    (tmp_path / "__main__.py").write_text(SYNC_WAIT_PROGRAM)
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config" / "Pulumi.dev.yaml", {"aws:region": "eu-west-1"})
    with caplog.at_level("WARNING"):
        fast = plan("dev", root=tmp_path)
    assert loops == ["uvloop", "asyncio"]
    assert fast["outputs"]["doc"] == '{"value": "a"}'
    # Only the run that counts speaks: one warning from the program, nothing from the abandoned attempt.
    assert [r.getMessage() for r in caplog.records if r.levelname != "DEBUG"] == ["from the program"]
    monkeypatch.setattr(engine, "FAST_LOOP", False)
    assert mf.dumps(plan("dev", root=tmp_path)) == mf.dumps(fast)


def test_hints_of_equal_but_differently_ordered_annotations_are_not_shared() -> None:
    """typing calls Optional[int] and Union[None, int] equal; the SDK reads their members in order."""
    import sys
    import typing

    from agentinfra import engine

    def first() -> None: ...

    def second() -> None: ...

    # Objects, as in an SDK module not prepared (this file's own annotations are strings).
    first.__annotations__ = {"return": typing.Union[None, int]}  # noqa: UP007 - the spelling is the point
    second.__annotations__ = {"return": typing.Optional[int]}  # noqa: UP045
    assert first.__annotations__ == second.__annotations__

    module = (sys.modules[__name__],)
    engine._HINTS_BY_ANNOTATIONS.clear()
    for function in (first, second):
        ours = engine._type_hints(function, module, vars(sys.modules[__name__]), {})["return"]
        assert typing.get_args(ours) == typing.get_args(typing.get_type_hints(function)["return"])
    engine._HINTS_BY_ANNOTATIONS.clear()
