"""``agentinfra diff``: classification, replacement knowledge, flags, the PR comment, and git revisions."""

from __future__ import annotations

import copy
import functools
import inspect
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
import yaml
from helpers import ROOT

from agentinfra import diff as df
from agentinfra.diff_cmd import EXIT_FLAGGED, EXIT_OK, main
from agentinfra.engine import record
from agentinfra.errors import EXIT_INPUT
from agentinfra.gate import Finding, GateResult

STACK = "dev"
SECRET_TEXT = "s3cr3t-do-not-print"


# ------------------------------------------------------------------------------------------ fixtures


@dataclass(frozen=True)
class Shape:
    """What differs between the fixture's base and head programs."""

    expire_days: int = 365
    node_type: str = "cache.r7g.large"
    with_queue: bool = True
    public_access_blocked: bool = True
    with_access_block: bool = True
    with_bucket: bool = True


def _program(shape: Shape) -> Any:
    def build() -> None:
        if shape.with_bucket:
            bucket = aws.s3.Bucket("logs", aws.s3.BucketArgs(bucket="fixture-logs"))
            aws.s3.BucketLifecycleConfiguration(
                "logs-lifecycle",
                aws.s3.BucketLifecycleConfigurationArgs(
                    bucket=bucket.id,
                    rules=[
                        aws.s3.BucketLifecycleConfigurationRuleArgs(
                            id="expire",
                            status="Enabled",
                            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=shape.expire_days),
                        )
                    ],
                ),
            )
            if shape.with_access_block:
                flag = shape.public_access_blocked
                aws.s3.BucketPublicAccessBlock(
                    "logs-pab",
                    aws.s3.BucketPublicAccessBlockArgs(
                        bucket=bucket.id,
                        block_public_acls=flag,
                        block_public_policy=True,
                        ignore_public_acls=True,
                        restrict_public_buckets=True,
                    ),
                )
        aws.elasticache.ReplicationGroup(
            "sessions",
            aws.elasticache.ReplicationGroupArgs(
                description="agent sessions",
                engine="redis",
                node_type=shape.node_type,
                num_cache_clusters=2,
                at_rest_encryption_enabled=True,
                transit_encryption_enabled=True,
                automatic_failover_enabled=True,
                multi_az_enabled=True,
            ),
            opts=pulumi.ResourceOptions(protect=True),
        )
        if shape.with_queue:
            aws.sqs.Queue("tasks", aws.sqs.QueueArgs(name="fixture-tasks", kms_master_key_id="alias/agents"))

    return build


@functools.cache
def _recorded(shape: Shape) -> str:
    return json.dumps(record(_program(shape), stack=STACK))


def manifest(shape: Shape = Shape()) -> dict[str, Any]:
    """A fresh copy of the manifest the fixture program records (cached: recording takes a moment)."""
    return json.loads(_recorded(shape))


def _resource(urn_name: str, type_: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:{STACK}::agent-infra::{type_}::{urn_name}",
        "type": type_,
        "name": urn_name,
        "custom": True,
        "parent": None,
        "provider": None,
        "inputs": inputs,
        "dependencies": [],
        "propertyDependencies": {},
        "options": {},
    } | extra


def _manifest_of(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "project": "agent-infra",
        "stack": STACK,
        "mode": "preview",
        "config": None,
        "resources": sorted(resources, key=lambda r: r["urn"]),
        "outputs": {},
    }


def by_name(diff: df.StackDiff, name: str) -> df.ResourceChange:
    return next(c for c in diff.changes if c.name == name)


def flags_of(diff: df.StackDiff, name: str) -> dict[str, str]:
    return {f.kind: f.message for f in diff.flags if f.name == name}


# ------------------------------------------------------------------------------- the issue's scenario


def test_lifecycle_update_redis_resize_and_removed_queue() -> None:
    base = manifest()
    head = manifest(Shape(expire_days=30, node_type="cache.r7g.xlarge", with_queue=False))
    diff = df.diff_manifests(base, head)

    lifecycle = by_name(diff, "logs-lifecycle")
    assert lifecycle.kind == "update"
    assert [tuple(p) for p in lifecycle.properties] == [("rules[0].expiration.days", 365, 30)]
    assert lifecycle.replacement is None

    # nodeType is modified in place by the provider (vertical scaling), so this is an update of a
    # stateful resource; it is flagged because the group is protected.
    redis = by_name(diff, "sessions")
    assert redis.kind == "update"
    assert redis.stateful and redis.protected
    assert [tuple(p) for p in redis.properties] == [("nodeType", "cache.r7g.large", "cache.r7g.xlarge")]
    assert redis.replacement is None
    assert flags_of(diff, "sessions") == {"protected": "protected resource changes in place: `nodeType`"}

    queue = by_name(diff, "tasks")
    assert queue.kind == "delete" and queue.stateful
    assert flags_of(diff, "tasks") == {"stateful": "stateful resource deleted: its data goes with it"}

    assert diff.counts == {"create": 0, "update": 2, "replace": 0, "delete": 1, "same": len(diff.unchanged)}
    assert len(diff.unchanged) == len(base["resources"]) - 3

    text = df.render_markdown([diff])
    assert "cost: not estimated" in text
    assert "| dev | 0 | 2 | 0 | 1 | \u26a0\ufe0f 2 | not run | not estimated |" in text
    assert "`rules[0].expiration.days`: `365` \u2192 `30`" in text
    priced = df.render_markdown([diff], cost_deltas={"dev": 123.45})
    assert "cost: +123.45 USD/month" in priced
    assert "cost: not estimated" not in priced


def test_flagged_items_come_before_the_changes() -> None:
    diff = df.diff_manifests(manifest(), manifest(Shape(with_queue=False)))
    text = df.render_markdown([diff])
    assert text.index("**\u26a0\ufe0f Flagged**") < text.index("**Delete** (1)")


def test_a_replacing_property_from_the_table_replaces_and_flags_the_stateful_resource() -> None:
    base, head = manifest(), manifest()
    redis = next(r for r in head["resources"] if r["name"] == "sessions")
    redis["inputs"]["atRestEncryptionEnabled"] = False
    diff = df.diff_manifests(base, head)
    change = by_name(diff, "sessions")
    assert change.kind == "replace"
    assert change.replacement is not None and change.replacement.certain
    assert [(r.path, r.source) for r in change.replacement.reasons] == [("atRestEncryptionEnabled", "table")]
    assert flags_of(diff, "sessions") == {
        "stateful": "stateful resource replaced, a new and empty one takes its place: `atRestEncryptionEnabled`",
        "protected": "protected resource would be replaced: `pulumi up` refuses until protect is removed",
        "weakened": "at-rest encryption turned off: `atRestEncryptionEnabled` true \u2192 false",
    }


def test_an_uncertain_table_entry_is_a_possible_replacement() -> None:
    base, head = manifest(), manifest()
    next(r for r in head["resources"] if r["name"] == "sessions")["inputs"]["engine"] = "valkey"
    diff = df.diff_manifests(base, head)
    change = by_name(diff, "sessions")
    assert change.kind == "update"
    assert change.replacement is not None and not change.replacement.certain
    assert "may be replaced" in flags_of(diff, "sessions")["stateful"]
    assert "| 0 (+1 possible) |" in df.render_markdown([diff])


# ------------------------------------------------------------------------------------ classification


def test_unknown_type_infers_replacement_from_a_name_property_only() -> None:
    type_ = "aws:example/widget:Widget"
    base = _manifest_of(_resource("w", type_, {"clusterName": "a", "size": 1}))
    renamed = _manifest_of(_resource("w", type_, {"clusterName": "b", "size": 1}))
    resized = _manifest_of(_resource("w", type_, {"clusterName": "a", "size": 2}))

    change = df.diff_manifests(base, renamed).changes[0]
    assert change.kind == "update"
    assert change.replacement is not None
    assert [(r.path, r.source, r.certain) for r in change.replacement.reasons] == [
        ("clusterName", "inferred: unknown type", False)
    ]
    plain = df.diff_manifests(base, resized).changes[0]
    assert (plain.kind, plain.replacement) == ("update", None)


def test_replace_on_changes_and_delete_before_replace_options() -> None:
    type_ = "aws:example/widget:Widget"
    opts = {"replaceOnChanges": ["spec.size"], "deleteBeforeReplace": True}
    base = _manifest_of(_resource("w", type_, {"spec": {"size": 1, "tag": "a"}}, options=opts))
    head = _manifest_of(_resource("w", type_, {"spec": {"size": 2, "tag": "a"}}, options=opts))
    change = df.diff_manifests(base, head).changes[0]
    assert change.kind == "replace"
    assert change.replacement is not None
    assert change.replacement.delete_before_replace
    assert [(r.path, r.source, r.certain) for r in change.replacement.reasons] == [
        ("spec.size", "replaceOnChanges", True)
    ]
    tag_only = _manifest_of(_resource("w", type_, {"spec": {"size": 1, "tag": "b"}}, options=opts))
    assert df.diff_manifests(base, tag_only).changes[0].kind == "update"


def test_provider_change_replaces_and_urn_change_is_delete_plus_create() -> None:
    type_ = "aws:sqs/queue:Queue"
    base = _manifest_of(_resource("q", type_, {"name": "q"}, provider="urn:p::a"))
    moved = _manifest_of(_resource("q", type_, {"name": "q"}, provider="urn:p::b"))
    change = df.diff_manifests(base, moved).changes[0]
    assert change.kind == "replace"
    assert change.replacement is not None and change.replacement.reasons[0].source == "provider"

    reparented = _resource("q", type_, {"name": "q"})
    reparented["urn"] = f"urn:pulumi:{STACK}::agent-infra::agent-infra:queue:Queues${type_}::q"
    diff = df.diff_manifests(base, _manifest_of(reparented))
    assert sorted(c.kind for c in diff.changes) == ["create", "delete"]
    assert flags_of(diff, "q") == {"stateful": "stateful resource deleted: its data goes with it"}


def test_an_alias_turns_a_urn_change_into_an_update() -> None:
    type_ = "aws:sqs/queue:Queue"
    old = _resource("q", type_, {"name": "q", "delaySeconds": 0})
    new = _resource("q", type_, {"name": "q", "delaySeconds": 5}, options={"aliases": [old["urn"]]})
    new["urn"] = f"urn:pulumi:{STACK}::agent-infra::agent-infra:queue:Queues${type_}::q"
    diff = df.diff_manifests(_manifest_of(old), _manifest_of(new))
    assert [(c.kind, c.previous_urn) for c in diff.changes] == [("update", old["urn"])]
    assert diff.flags == []


def test_ignore_changes_hides_the_paths_it_covers() -> None:
    type_ = "aws:sqs/queue:Queue"
    opts = {"ignoreChanges": ["tags"]}
    base = _manifest_of(_resource("q", type_, {"name": "q", "tags": {"a": "1"}}, options=opts))
    head = _manifest_of(_resource("q", type_, {"name": "q", "tags": {"a": "2"}}, options=opts))
    diff = df.diff_manifests(base, head)
    assert diff.changes == [] and len(diff.unchanged) == 1


def test_unknown_values_are_shown_and_json_strings_are_diffed_by_path() -> None:
    type_ = "aws:iam/rolePolicy:RolePolicy"
    policy = {"Statement": [{"Action": ["sqs:SendMessage"], "Effect": "Allow"}]}
    wider = {"Statement": [{"Action": ["sqs:*"], "Effect": "Allow"}]}
    base = _manifest_of(_resource("p", type_, {"role": "r", "policy": json.dumps(policy)}))
    head = _manifest_of(_resource("p", type_, {"role": {"$unknown": True}, "policy": json.dumps(wider)}))
    change = df.diff_manifests(base, head).changes[0]
    assert [tuple(p) for p in change.properties] == [
        ("policy(json).Statement[0].Action[0]", "sqs:SendMessage", "sqs:*"),
        ("role", "r", {"$unknown": True}),
    ]
    assert change.kind == "replace"  # `role` forces replacement (rolePolicy), even to an unknown value
    text = df.render_markdown([df.diff_manifests(base, head)])
    assert '`role`: `"r"` \u2192 `(unknown)`' in text


def test_environments_new_on_one_side() -> None:
    diffs = df.diff_all({}, {STACK: manifest()})
    assert [(d.environment, d.base_present, d.counts["create"]) for d in diffs] == [
        (STACK, False, len(manifest()["resources"]))
    ]
    with pytest.raises(df.DiffInputError, match="base is stack 'dev' but head is stack 'prod'"):
        df.diff_manifests(manifest(), manifest() | {"stack": "prod"})


# --------------------------------------------------------------------------------- weakened settings


def test_public_access_block_turned_off_is_flagged() -> None:
    diff = df.diff_manifests(manifest(), manifest(Shape(public_access_blocked=False)))
    assert flags_of(diff, "logs-pab") == {
        "weakened": "public access block flag turned off: `blockPublicAcls` true \u2192 false"
    }


def test_deleting_a_setting_is_flagged_only_while_its_bucket_stays() -> None:
    setting_gone = df.diff_manifests(manifest(), manifest(Shape(with_access_block=False)))
    assert flags_of(setting_gone, "logs-pab")["weakened"].endswith("(resource deleted)")

    bucket_gone = df.diff_manifests(manifest(), manifest(Shape(with_bucket=False)))
    assert "logs-pab" not in {f.name for f in bucket_gone.flags}
    assert flags_of(bucket_gone, "logs") == {"stateful": "stateful resource deleted: its data goes with it"}


def test_security_group_gaining_the_internet_is_flagged_on_update_and_create() -> None:
    type_ = "aws:ec2/securityGroup:SecurityGroup"
    closed: dict[str, Any] = {
        "ingress": [{"cidrBlocks": ["10.0.0.0/16"], "fromPort": 443, "toPort": 443, "protocol": "tcp"}]
    }
    opened = copy.deepcopy(closed)
    opened["ingress"][0]["cidrBlocks"].append("0.0.0.0/0")
    update = df.diff_manifests(
        _manifest_of(_resource("sg", type_, closed)), _manifest_of(_resource("sg", type_, opened))
    )
    assert flags_of(update, "sg")["weakened"].startswith("ingress opened to the whole internet (0.0.0.0/0)")
    create = df.diff_manifests(_manifest_of(), _manifest_of(_resource("sg", type_, opened)))
    assert "weakened" in flags_of(create, "sg")


def test_removed_queue_encryption_is_flagged() -> None:
    base, head = manifest(), manifest()
    del next(r for r in head["resources"] if r["name"] == "tasks")["inputs"]["kmsMasterKeyId"]
    diff = df.diff_manifests(base, head)
    assert flags_of(diff, "tasks") == {
        "weakened": 'queue no longer encrypted with a KMS key: `kmsMasterKeyId` "alias/agents" \u2192 (absent)'
    }


# -------------------------------------------------------------------------------------- secrets, size


def test_secret_values_never_appear_in_any_output() -> None:
    type_ = "aws:elasticache/replicationGroup:ReplicationGroup"
    base = _manifest_of(
        _resource(
            "r",
            type_,
            {"authToken": {"$secret": SECRET_TEXT}, "users": [{"name": "a", "password": {"$secret": SECRET_TEXT}}]},
        )
    )
    head = _manifest_of(_resource("r", type_, {"users": [], "description": {"$secret": SECRET_TEXT + "-2"}}))
    diff = df.diff_manifests(base, head)
    outputs = [
        df.render_markdown([diff]),
        df.render_text([diff]),
        json.dumps(df.to_json([diff])),
    ]
    for text in outputs:
        assert SECRET_TEXT not in text
    markdown = outputs[0]
    assert "`authToken`: `(secret)` \u2192 `(absent)`" in markdown
    assert "`description`: `(absent)` \u2192 `(secret)`" in markdown
    assert '`users[0]`: `{"name":"a","password":"(secret)"}` \u2192 `(absent)`' in markdown
    assert "AUTH token removed: `authToken` (secret) \u2192 (absent)" in markdown


def test_markdown_is_trimmed_to_the_limit_keeping_summary_and_flags() -> None:
    type_ = "aws:example/widget:Widget"
    base = _manifest_of(*[_resource(f"w{i:03}", type_, {"size": i}) for i in range(300)])
    head = _manifest_of(*[_resource(f"w{i:03}", type_, {"size": i + 1}) for i in range(300)])
    queue = _resource("tasks", "aws:sqs/queue:Queue", {"name": "tasks"})
    base["resources"].append(queue)
    diff = df.diff_manifests(base, head)
    full = df.render_markdown([diff])
    assert len(full) > 6000
    text = df.render_markdown([diff], limit=6000)
    assert len(text) <= 6000
    assert "| dev | 0 | 300 | 0 | 1 |" in text
    assert "**stateful** `tasks`" in text
    trimmed = int(re.search(r"_Trimmed (\d+) line\(s\) of detail", text).group(1))  # type: ignore[union-attr]
    assert trimmed > 0
    assert "the full report is in the JSON artifact" in text
    assert text.count("<details>") == text.count("</details>") == 1
    assert len(df.to_json([diff])["environments"][0]["changes"]) == 301


def test_policy_status_in_the_summary() -> None:
    diff = df.diff_manifests(manifest(), manifest())
    failed = GateResult(STACK, rules_evaluated=3, resources=5)
    failed.findings.append(Finding("violation", "AI-X-001", "x", "mandatory", "urn:a::b", "fix it"))
    text = df.render_markdown([diff], gate_results={STACK: failed})
    assert "| \u274c 1 mandatory |" in text
    assert "- \u274c `AI-X-001` `b`: fix it" in text
    assert df.to_json([diff], {STACK: failed})["environments"][0]["policy"]["passed"] is False


# ------------------------------------------------------------------------- the shipped tables are real


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _inputs_of(type_: str) -> set[str] | None:
    _, module, name = type_.split(":")
    package = getattr(aws, module.split("/")[0], None)
    cls = getattr(package, name, None)
    if cls is None:
        return None
    return set(inspect.signature(cls._internal_init).parameters)


def test_every_type_and_property_in_the_tables_exists_in_pulumi_aws() -> None:
    know = df.knowledge()
    pairs = [(t, r.path) for t, rules in know.replace.items() for r in rules]
    pairs += [(r.type, r.path) for r in know.weakening]
    problems = []
    for type_ in sorted({t for t, _ in pairs} | set(know.stateful)):
        if _inputs_of(type_) is None:
            problems.append(f"{type_}: no such resource in pulumi_aws")
    for type_, path in pairs:
        inputs = _inputs_of(type_)
        top = re.match(r"[^.\[]+", path).group(0)  # type: ignore[union-attr]
        if inputs is not None and _snake(top) not in inputs:
            problems.append(f"{type_}: no input {top!r}")
    assert problems == []


def test_the_issue_entries_are_in_the_table() -> None:
    """The entries the issue asked for, minus the ones the provider modifies in place."""
    know = df.knowledge()

    def paths(type_: str) -> set[str]:
        return {r.path for r in know.replace[type_]}

    assert {"bucket", "bucketPrefix", "objectLockEnabled"} <= paths("aws:s3/bucket:Bucket")
    assert {"replicationGroupId", "atRestEncryptionEnabled", "kmsKeyId", "subnetGroupName", "engine"} <= paths(
        "aws:elasticache/replicationGroup:ReplicationGroup"
    )
    assert {"nodeType", "numNodeGroups"}.isdisjoint(paths("aws:elasticache/replicationGroup:ReplicationGroup"))
    assert {"name", "kmsKeyArn", "tlsEnabled", "subnetGroupName"} <= paths("aws:memorydb/cluster:Cluster")
    assert {
        "nodeGroupName",
        "clusterName",
        "subnetIds",
        "amiType",
        "capacityType",
        "instanceTypes",
        "diskSize",
    } <= paths("aws:eks/nodeGroup:NodeGroup")
    assert {"vpcId", "cidrBlock", "availabilityZone", "availabilityZoneId"} <= paths("aws:ec2/subnet:Subnet")


# ------------------------------------------------------------------------------------------ the CLI


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_cli_with_manifest_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _write(tmp_path / "base.json", manifest())
    head = _write(tmp_path / "head.json", manifest(Shape(with_queue=False)))
    md, js = tmp_path / "diff.md", tmp_path / "diff.json"
    assert main([str(base), str(head), "--markdown", str(md), "--json", str(js)]) == EXIT_OK
    assert "dev: 0 to create, 0 to update, 0 to replace, 1 to delete; 1 flagged" in capsys.readouterr().out
    assert "<summary><b>dev</b>: 1 to delete, \u26a0\ufe0f 1 flagged</summary>" in md.read_text()
    assert json.loads(js.read_text())["flagged"] == 1
    assert main([str(base), str(head), "--fail-on-flag"]) == EXIT_FLAGGED
    assert main([str(base), str(base), "--fail-on-flag"]) == EXIT_OK


def test_cli_bad_input_names_the_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _write(tmp_path / "base.json", manifest())
    assert main([str(base), "no-such-rev", "--repo", str(ROOT)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "HEAD: 'no-such-rev' is not a manifest file, a directory of manifests or a git revision" in err
    assert "Traceback" not in err
    assert main([str(base), str(base), "--env", "qa"]) == EXIT_INPUT
    assert "--env: environment 'qa' is in neither BASE nor HEAD" in capsys.readouterr().err
    assert main([str(base), str(base), "--limit", "10"]) == EXIT_INPUT
    assert "--limit: expected at least 500" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- git revisions

_PROGRAM = ("Pulumi.yaml", "__main__.py", "stacks", "components", "config", "policies")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def program_repo(tmp_path: Path) -> Path:
    """A repository of its own with two commits: dev's log retention 30 days, then 60."""
    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "venv", ".venv")
    for name in _PROGRAM:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=ignore)
        else:
            shutil.copy2(source, repo / name)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    config = repo / "config" / "Pulumi.dev.yaml"
    text = config.read_text()
    assert yaml.safe_load(text)["config"]["agent-infra:logs"]["retention_days"] == 30
    config.write_text(text.replace("retention_days: 30", "retention_days: 60"))
    _git(repo, "commit", "-qam", "longer log retention in dev")
    return repo


def test_diff_between_two_revisions(program_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "diff.json"
    code = main(["HEAD~1", "HEAD", "--env", "dev", "--repo", str(program_repo), "--json", str(out)])
    assert code == EXIT_OK, capsys.readouterr().err
    (env,) = json.loads(out.read_text())["environments"]
    log_groups = {c["name"]: c for c in env["changes"] if c["type"] == "aws:cloudwatch/logGroup:LogGroup"}
    assert "network-flow-logs" in log_groups
    for change in log_groups.values():  # every log group takes its retention from the same setting
        assert (change["kind"], change["properties"]) == (
            "update",
            [{"path": "retentionInDays", "before": 30, "after": 60}],
        )
    assert env["flags"] == []
    assert _git(program_repo, "worktree", "list").count("\n") == 1  # the temporary worktrees are gone


def test_unknown_revision_is_a_clear_error(program_repo: Path) -> None:
    with pytest.raises(df.RevisionError, match="git revision 'v9.9.9' not found in"):
        df.plan_revision("v9.9.9", ["dev"], program_repo)
    assert _git(program_repo, "worktree", "list").count("\n") == 1


def test_manifests_planned_in_different_modes_are_refused() -> None:
    with pytest.raises(df.DiffInputError, match="base was planned in 'preview' mode and head in 'placeholders'"):
        df.diff_manifests(manifest(), manifest() | {"mode": "placeholders"})
