"""The GitHub Actions workflows users run (.github/workflows): valid for GitHub, and shaped as docs/ci.md says.

The schema check runs check-jsonschema with its vendored copy of SchemaStore's github-workflow schema:
no network. The inline programs the workflows carry (the policy-event summariser in preview.yml, the
comment script in comment.yml) are run here on made-up inputs, the script with Node.js when it is
installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ENVIRONMENTS = ["dev", "staging", "prod"]
MARKER = "<!-- agent-infra-preview -->"
COMMENT_LIMIT = 65536
# Anything that tries to reach the network through these fails at once instead of passing unnoticed.
NO_NETWORK = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


def _workflow(name: str) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the `on:` key as the boolean true
        data["on"] = data.pop(True)
    return data


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in _steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def _run_text(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in _steps(job))


def _one_line(command: str) -> str:
    return " ".join(command.replace("\\\n", " ").split())


def _check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        pytest.fail("check-jsonschema is not installed: install the test extras (pip install -e '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **NO_NETWORK},
        timeout=120,
    )


# ------------------------------------------------------------------------------------------ all files


def test_the_three_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.y*ml")} >= {"preview.yml", "comment.yml", "deploy.yml"}


def test_every_workflow_matches_githubs_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    result = _check_jsonschema(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_an_invalid_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    step:\n      - run: echo hi\n")
    result = _check_jsonschema(str(bad))
    assert result.returncode == 1
    assert "'step' was unexpected" in result.stdout


def test_actions_are_pinned_to_a_major_version_or_a_commit() -> None:
    pinned = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+|[0-9a-f]{40})$")
    for path in WORKFLOWS.glob("*.y*ml"):
        for job_name, job in _workflow(path.name)["jobs"].items():
            for step in _steps(job):
                if "uses" in step:
                    assert pinned.match(step["uses"]), f"{path.name} {job_name}: {step['uses']}"


def test_no_workflow_uses_long_lived_aws_keys() -> None:
    for path in WORKFLOWS.glob("*.y*ml"):
        text = path.read_text(encoding="utf-8")
        for key in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
            assert key not in text, f"{path.name} mentions {key}"


def test_every_variable_and_secret_is_documented() -> None:
    docs = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    names: set[str] = set()
    for path in WORKFLOWS.glob("*.y*ml"):
        names |= set(re.findall(r"\b(?:vars|secrets)\.([A-Za-z_]\w*)", path.read_text(encoding="utf-8")))
    matrix = _workflow("preview.yml")["jobs"]["pulumi-preview"]["strategy"]["matrix"]["include"]
    names |= {entry["role_var"] for entry in matrix}
    assert {"AWS_ROLE_ARN", "PULUMI_ACCESS_TOKEN", "PULUMI_ORG"} <= names
    assert [n for n in sorted(names) if f"`{n}`" not in docs] == []


# ------------------------------------------------------------------------------------------ preview


def test_preview_runs_on_pull_requests() -> None:
    preview = _workflow("preview.yml")
    assert "pull_request" in preview["on"]
    assert "pull_request_target" not in preview["on"]  # it runs the pull request's code
    assert preview["permissions"] == {"contents": "read"}


def test_preview_offline_job_needs_no_credentials() -> None:
    job = _workflow("preview.yml")["jobs"]["offline"]
    assert "secrets." not in json.dumps(job)
    assert "id-token" not in job["permissions"]
    assert "if" not in job  # every pull request, forks included
    (checkout,) = _uses(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # the base revision is planned from history
    (python,) = _uses(job, "actions/setup-python")
    assert python["with"]["python-version"] == "3.11"
    assert "pip install -e ." in _run_text(job)


def test_preview_offline_job_diffs_the_base_commit_and_runs_the_gate() -> None:
    job = _workflow("preview.yml")["jobs"]["offline"]
    steps = {s.get("id"): s for s in _steps(job)}
    diff = _one_line(steps["diff"]["run"])
    assert diff.startswith('agentinfra diff "$BASE_SHA" WORKTREE --all --policy --limit 60000 --markdown ')
    assert "--json " in diff
    assert steps["diff"]["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    (check,) = [s for s in _steps(job) if "agentinfra check" in str(s.get("run"))]
    assert re.search(r"agentinfra check --all --sarif \S+ --json \S+", check["run"])
    assert "!cancelled()" in check["if"]  # runs even when the diff failed
    assert "continue-on-error" not in check  # a mandatory violation fails the job
    assert "pr-number.txt" in _run_text(job)


def test_preview_offline_job_uploads_its_reports_whatever_happened() -> None:
    job = _workflow("preview.yml")["jobs"]["offline"]
    report = job["env"]["REPORT"]
    (upload,) = _uses(job, "actions/upload-artifact")
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == report
    run = _run_text(job)
    for name in ("pr-number.txt", "comment.md", "diff.json", "results.sarif", "check.json"):
        assert f"$REPORT/{name}" in run
    (sarif,) = _uses(job, "github/codeql-action/upload-sarif")
    assert "github.event.pull_request.head.repo.full_name == github.repository" in sarif["if"]
    assert sarif["with"]["sarif_file"] == f"{report}/results.sarif"
    assert job["permissions"]["security-events"] == "write"


def test_preview_real_job_is_gated_on_credentials_and_same_repository() -> None:
    job = _workflow("preview.yml")["jobs"]["pulumi-preview"]
    assert "vars.AWS_ROLE_ARN != ''" in job["if"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert [e["env"] for e in job["strategy"]["matrix"]["include"]] == ENVIRONMENTS
    assert job["strategy"]["fail-fast"] is False
    assert job["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    (aws,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert "vars.AWS_ROLE_ARN" in aws["with"]["role-to-assume"]
    assert _uses(job, "pulumi/actions")
    assert "vars.PULUMI_RUNS_ON" in job["runs-on"]


def test_preview_real_job_runs_pulumi_preview_with_the_policy_pack_and_event_log() -> None:
    job = _workflow("preview.yml")["jobs"]["pulumi-preview"]
    steps = {s.get("id"): s for s in _steps(job)}
    command = _one_line(steps["preview"]["run"])
    assert "pulumi preview --diff" in command
    assert "--policy-pack policies " in command
    assert "--policy-pack-config policies/config/${{ matrix.env }}.json" in command
    assert "--event-log events-${{ matrix.env }}.json" in command
    assert '-s "$stack"' in command
    assert steps["preview"]["shell"] == "bash"  # pipefail: tee keeps the exit status
    (upload,) = _uses(job, "actions/upload-artifact")
    assert upload["with"]["name"] == "pulumi-preview-${{ matrix.env }}"
    assert "policy-${{ matrix.env }}.md" in upload["with"]["path"]
    assert "events-${{ matrix.env }}.json" in upload["with"]["path"]


def test_each_environment_has_a_stack_config_and_a_policy_config() -> None:
    for env in ENVIRONMENTS:
        assert (ROOT / "config" / f"Pulumi.{env}.yaml").is_file()
        assert (ROOT / "policies" / "config" / f"{env}.json").is_file()


def _summariser() -> str:
    job = _workflow("preview.yml")["jobs"]["pulumi-preview"]
    text = _run_text(job)
    found = re.search(r"python - <<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert found, "the policy-event summariser is not in preview.yml"
    return found.group(1)


def _event(kind: str, body: dict[str, Any]) -> str:
    return json.dumps({"sequence": 1, "timestamp": 0, kind: body})


def _summarise(tmp_path: Path, outcome: str) -> str:
    env = {**os.environ, "STACK_ENV": "dev", "OUTCOME": outcome}
    result = subprocess.run(
        [sys.executable, "-c", _summariser()], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return (tmp_path / "policy-dev.md").read_text(encoding="utf-8")


def test_the_summariser_reports_policy_events_from_the_event_log(tmp_path: Path) -> None:
    urn = "urn:pulumi:dev::agent-infra::agentinfra:LogBucket$aws:s3/bucket:Bucket::logs-bucket"
    lines = [
        _event("preludeEvent", {"config": {}}),
        _event(
            "policyEvent",
            {
                "resourceUrn": urn,
                "message": "<{%fg 1%}>AI-S3-001 | not encrypted<{%reset%}>\nFix: add SSE-KMS.",
                "policyName": "s3-kms-encryption",
                "policyPackName": "agent-infra",
                "enforcementLevel": "advisory",
            },
        ),
        _event(
            "policyEvent",
            {"message": "AI-OPS-001 unprotected", "policyName": "protect-stateful", "enforcementLevel": "mandatory"},
        ),
        "",
        _event("diagnosticEvent", {"severity": "error", "message": "preview failed"}),
        _event("summaryEvent", {"resourceChanges": {"create": 2, "same": 40, "update": 1}}),
        '{"sequence": 9, "policyEv',  # cut short by a killed run
    ]
    (tmp_path / "events-dev.json").write_text("\n".join(lines) + "\n")
    text = _summarise(tmp_path, "failure")
    assert text.splitlines()[:4] == [
        "#### :x: `pulumi preview` of `dev`: failure",
        "",
        "Changes: 2 create, 1 update; 1 error(s).",
        "Policy: 2 violation(s) (1 advisory, 1 mandatory).",
    ]
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == [  # mandatory first; colour markup gone; pipes escaped; one line per violation
        "| mandatory | `protect-stateful` | (stack) | AI-OPS-001 unprotected |",
        "| advisory | `s3-kms-encryption` | `logs-bucket` (aws:s3/bucket:Bucket) "
        "| AI-S3-001 \\| not encrypted Fix: add SSE-KMS. |",
    ]


def test_the_summariser_says_when_the_preview_never_started(tmp_path: Path) -> None:
    text = _summarise(tmp_path, "failure")
    assert "No event log: the preview did not start" in text


# ------------------------------------------------------------------------------------------ comment


def test_comment_runs_after_the_preview_workflow_with_a_write_token() -> None:
    comment, preview = _workflow("comment.yml"), _workflow("preview.yml")
    assert comment["on"] == {"workflow_run": {"workflows": [preview["name"]], "types": ["completed"]}}
    assert comment["permissions"] == {"actions": "read", "pull-requests": "write"}
    job = comment["jobs"]["comment"]
    assert "github.event.workflow_run.event == 'pull_request'" in job["if"]


def test_comment_never_runs_the_pull_requests_code() -> None:
    for job in _workflow("comment.yml")["jobs"].values():
        assert not _uses(job, "actions/checkout")
        assert _run_text(job).strip() == ""


def test_comment_downloads_the_artifacts_the_preview_uploads() -> None:
    preview, comment = _workflow("preview.yml")["jobs"], _workflow("comment.yml")["jobs"]["comment"]
    downloads = _uses(comment, "actions/download-artifact")
    for step in downloads:
        assert step["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
        assert step["with"]["github-token"] == "${{ github.token }}"
    (offline_upload,) = _uses(preview["offline"], "actions/upload-artifact")
    (real_upload,) = _uses(preview["pulumi-preview"], "actions/upload-artifact")
    assert downloads[0]["with"]["name"] == offline_upload["with"]["name"]
    assert real_upload["with"]["name"].startswith(downloads[1]["with"]["pattern"].rstrip("*"))
    script = _uses(comment, "actions/github-script")[0]["with"]["script"]
    assert f"const MARKER = '{MARKER}';" in script
    assert f"const MAX_CHARS = {COMMENT_LIMIT};" in script


# The comment script under Node.js, with GitHub's API and the toolkit replaced by recorders.
HARNESS = """
const fs = require('fs');
const scenario = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const calls = [];
const api = (name, data) => async (params) => { calls.push({ name, params }); return { data }; };
const github = {
  rest: {
    pulls: { get: api('pulls.get', scenario.pr) },
    issues: {
      listComments: 'listComments',
      createComment: api('createComment', {}),
      updateComment: api('updateComment', {}),
    },
  },
  paginate: async (method, params) => { calls.push({ name: 'paginate', params }); return scenario.comments; },
};
const core = {
  info: () => {},
  warning: (message) => calls.push({ name: 'warning', message }),
  setFailed: (message) => calls.push({ name: 'setFailed', message }),
};
const context = { repo: { owner: 'acme', repo: 'agent-infra' }, payload: { workflow_run: scenario.run } };
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const script = new AsyncFunction('require', 'github', 'context', 'core', fs.readFileSync(process.argv[2], 'utf8'));
script(require, github, context, core).then(
  () => process.stdout.write(JSON.stringify(calls)),
  (error) => { console.error(error); process.exit(1); },
);
"""

HEAD = "a" * 40
RUN = {
    "id": 7,
    "head_sha": HEAD,
    "head_repository": {"full_name": "acme/agent-infra"},
    "html_url": "https://github.com/acme/agent-infra/actions/runs/7",
}
PR = {"number": 12, "head": {"sha": HEAD, "repo": {"full_name": "acme/agent-infra"}}}


def _post(
    tmp_path: Path,
    *,
    number: str = "12",
    report: str = "### Infrastructure diff\n\nno changes\n",
    real: dict[str, str] | None = None,
    pr: dict[str, Any] | None = None,
    comments: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the comment script cannot be run")
    (tmp_path / "preview").mkdir()
    (tmp_path / "preview" / "pr-number.txt").write_text(number + "\n")
    (tmp_path / "preview" / "comment.md").write_text(report)
    for env, text in (real or {}).items():
        folder = tmp_path / "pulumi" / f"pulumi-preview-{env}"
        folder.mkdir(parents=True)
        (folder / f"policy-{env}.md").write_text(text)
    comment = _workflow("comment.yml")["jobs"]["comment"]
    (tmp_path / "script.js").write_text(_uses(comment, "actions/github-script")[0]["with"]["script"])
    (tmp_path / "harness.js").write_text(HARNESS)
    scenario = {"run": RUN, "pr": pr or PR, "comments": comments or []}
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    result = subprocess.run(
        [node, "harness.js", "script.js", "scenario.json"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    calls: list[dict[str, Any]] = json.loads(result.stdout)
    return calls


def _writes(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in calls if c["name"] in ("createComment", "updateComment")]


def test_the_comment_is_created_with_both_reports(tmp_path: Path) -> None:
    calls = _post(tmp_path, real={"prod": "#### prod summary\n", "dev": "#### dev summary\n"})
    (write,) = _writes(calls)
    assert write["name"] == "createComment"
    assert write["params"]["issue_number"] == 12
    body = write["params"]["body"]
    assert body.startswith(MARKER + "\n### Infrastructure diff")
    assert body.index("#### dev summary") < body.index("#### prod summary")  # in deploy order
    assert "did not run" not in body
    assert RUN["html_url"] in body


def test_the_comment_says_when_the_real_preview_did_not_run(tmp_path: Path) -> None:
    (write,) = _writes(_post(tmp_path))
    assert "The credentialed `pulumi preview` did not run" in write["params"]["body"]


def test_the_bots_comment_is_updated_and_nobody_elses(tmp_path: Path) -> None:
    comments = [
        {"id": 1, "user": {"type": "User"}, "body": f"{MARKER} quoted by a person"},
        {"id": 2, "user": {"type": "Bot"}, "body": "another bot"},
        {"id": 3, "user": {"type": "Bot"}, "body": f"{MARKER}\nold report"},
    ]
    (write,) = _writes(_post(tmp_path, comments=comments))
    assert write["name"] == "updateComment"
    assert write["params"]["comment_id"] == 3


@pytest.mark.parametrize("shift", ["", "x"])
def test_a_long_report_is_trimmed_to_githubs_limit(tmp_path: Path, shift: str) -> None:
    # 🚀 is two UTF-16 units (JavaScript's string length): with either parity of the cut, no half is left.
    report = "### Infrastructure diff\n\n" + shift + "🚀" * 50_000
    (write,) = _writes(_post(tmp_path, report=report, real={"dev": "#### dev summary\n"}))
    body = write["params"]["body"]
    assert len(body.encode("utf-16-le", "surrogatepass")) // 2 <= COMMENT_LIMIT
    assert not re.search("[\ud800-\udfff]", body)  # a lone surrogate: half an emoji
    assert "report trimmed to fit a GitHub comment" in body
    assert "#### dev summary" in body
    assert body.endswith("full reports in its artifacts</sub>")


def test_a_report_for_another_commit_is_not_posted(tmp_path: Path) -> None:
    moved_on = {"number": 12, "head": {"sha": "b" * 40, "repo": {"full_name": "acme/agent-infra"}}}
    calls = _post(tmp_path, pr=moved_on)
    assert _writes(calls) == []
    assert any(c["name"] == "warning" for c in calls)


def test_a_fork_cannot_borrow_another_pull_requests_number(tmp_path: Path) -> None:
    same_commit_other_repo = {"number": 12, "head": {"sha": HEAD, "repo": {"full_name": "someone/agent-infra"}}}
    assert _writes(_post(tmp_path, pr=same_commit_other_repo)) == []


def test_a_malformed_pull_request_number_is_refused(tmp_path: Path) -> None:
    calls = _post(tmp_path, number="12; rm -rf /")
    assert [c["name"] for c in calls] == ["warning"]


# ------------------------------------------------------------------------------------------ deploy


def test_deploy_runs_on_main_and_by_hand() -> None:
    deploy = _workflow("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in deploy["on"]
    assert deploy["permissions"] == {"contents": "read"}


def test_deploy_goes_dev_then_staging_then_prod() -> None:
    jobs = _workflow("deploy.yml")["jobs"]
    assert sorted(jobs) == sorted(ENVIRONMENTS)
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(jobs):
        ready = [n for n, j in jobs.items() if n not in done and set(_needs(j)) <= done]
        assert len(ready) == 1, f"not a single chain: {ready}"
        order.append(ready[0])
        done.add(ready[0])
    assert order == ENVIRONMENTS
    assert [_needs(jobs[e]) for e in ENVIRONMENTS] == [[], ["dev"], ["staging"]]


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_deploy_job_is_bound_to_its_environment(env: str) -> None:
    job = _workflow("deploy.yml")["jobs"][env]
    environment = job["environment"]
    assert (environment if isinstance(environment, str) else environment["name"]) == env
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["concurrency"] == {"group": f"deploy-{env}", "cancel-in-progress": False}
    assert job["env"]["STACK_ENV"] == env
    assert job["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    (aws,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    command = _one_line(_run_text(job))
    assert "pulumi up --yes" in command
    assert '--policy-pack policies --policy-pack-config "policies/config/$STACK_ENV.json"' in command
    assert '-s "$stack"' in command
