"""Benchmark the offline engine and gate on this machine: ``python bench/run.py [--reps N] [--out FILE]``.

Measures whole processes (wall time, CPU time, peak memory; median of ``--reps`` runs) for ``plan`` of each
environment, ``plan --all``, ``check --all`` and a ``diff`` of two revisions; the same plan and check on
synthetic fleets 3x and 10x the size of prod (more model pools, worker pools and queues, generated config);
and where the time goes in one prod plan and check (imports, program, mock runtime, recording, policy
evaluation, writing), from a profile. No result is kept between runs; the one thing that outlives a run is
the bytecode `agentinfra prepare` compiles once per install, and ``check --all`` is also measured without it.
Prints Markdown.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "agentinfra.cli"]
TARGETS = {"check --all": 4.0, "10x prod plan+check": 20.0}


#: Environment that makes a command import the provider SDKs the ordinary way (no `agentinfra prepare`).
UNPREPARED = {"AGENTINFRA_SDK_BYTECODE_DIR": "/nonexistent/agentinfra-unprepared"}


def run_once(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds including worker processes, peak RSS MiB of the largest, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    # Peak RSS of the largest process (children of a parallel run count separately: ru_maxrss is per process).
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def measure(label: str, argv: list[str], reps: int, env: dict[str, str] | None = None) -> dict[str, object]:
    runs = [run_once(argv, env) for _ in range(reps)]
    return {
        "label": label,
        "wall": statistics.median(r[0] for r in runs),
        "cpu": statistics.median(r[1] for r in runs),
        "rss": statistics.median(r[2] for r in runs),
        "exit": sorted({r[3] for r in runs}),
    }


def synthetic_config(factor: int, directory: Path) -> Path:
    """Prod's config with ``factor`` times its model pools, worker pools and queues."""
    config = yaml.safe_load((ROOT / "config" / "Pulumi.prod.yaml").read_text())["config"]
    for key, name_key in (("agent-infra:model_pools", "name"), ("agent-infra:worker_pools", "name")):
        originals = config[key]
        config[key] = [
            dict(copy.deepcopy(item), **{name_key: f"{item[name_key]}-{i}" if i else item[name_key]})
            for i in range(factor)
            for item in originals
        ]
    queues = config["agent-infra:queues"]["queues"]
    config["agent-infra:queues"]["queues"] = [
        dict(copy.deepcopy(q), name=f"{q['name']}-{i}" if i else q["name"]) for i in range(factor) for q in queues
    ]
    path = directory / f"Pulumi.prod-{factor}x.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def breakdown() -> str:
    """Where the time of one prod plan and check goes, in this process (imports measured separately)."""
    import_times = {}
    for label, env in (("prepared", None), ("not prepared", UNPREPARED)):
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time; t = time.perf_counter(); from agentinfra import sdkload; sdkload.install(); "
                "from agentinfra import parallel; parallel.preload(); print(time.perf_counter() - t)",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **(env or {})},
        )
        import_times[label] = float(probe.stdout)
    sys.path.insert(0, str(ROOT))
    import gc

    from agentinfra import sdkload

    sdkload.install()  # as the CLI does
    from agentinfra import manifest as mf
    from agentinfra.engine import plan
    from agentinfra.gate import evaluate, load_policy_config

    gc.disable()  # as the CLI runs
    plan("prod")  # first plan loads the rest of the SDK lazily; profile a warm one
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    manifest = plan("prod")
    profile.disable()
    t1 = time.perf_counter()
    evaluate(manifest, load_policy_config("prod"))
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        mf.write_atomic(Path(tmp) / "prod.json", mf.dumps(manifest))
    t3 = time.perf_counter()
    buckets: dict[str, float] = defaultdict(float)
    stats = pstats.Stats(profile)
    for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "agentinfra/engine" in filename and function == "_run_program":
            # It runs the loop: with uvloop the loop's own work is C code the profiler charges to it.
            buckets["mock runtime (pulumi SDK, asyncio, serialisation)"] += tottime
        elif (
            "/stacks/" in filename
            or "/components/" in filename
            or "pulumi_aws" in filename
            or "pulumi_kubernetes" in filename
            or "pulumi_random" in filename
        ):
            buckets["program (stacks, components, provider SDK classes)"] += tottime
        elif "agentinfra/engine" in filename or "json_format" in filename:
            buckets["recording (engine, protobuf to JSON)"] += tottime
        else:
            buckets["mock runtime (pulumi SDK, asyncio, serialisation)"] += tottime
    total = sum(buckets.values()) or 1.0
    lines = [
        "| stage | seconds | share of plan |",
        "| --- | ---: | ---: |",
        "| imports: engine, gate, program and every provider package it uses (fresh process, SDK prepared) "
        f"| {import_times['prepared']:.2f} | |",
        f"| the same imports, SDK not prepared | {import_times['not prepared']:.2f} | |",
    ]
    lines += [f"| {k} | {(t1 - t0) * v / total:.2f} | {100 * v / total:.0f}% |" for k, v in sorted(buckets.items())]
    lines += [f"| policy evaluation (51 rules) | {t2 - t1:.2f} | |", f"| writing the manifest | {t3 - t2:.3f} | |"]
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(8)
    top = [line for line in out.getvalue().splitlines() if line.strip()][-9:]
    return "\n".join(lines) + "\n\nTop functions of the plan by own time:\n\n```\n" + "\n".join(top) + "\n```"


def _prepared() -> str:
    sys.path.insert(0, str(ROOT))
    from agentinfra import sdkload

    directory = sdkload.cache_dir()
    if not directory.is_dir():
        return f"no ({directory} missing; rows other than 'not prepared' then import the ordinary way too)"
    return f"yes ({directory})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="runs per measurement (median reported; default 5)")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--skip-diff", action="store_true", help="skip the two-revision diff (needs git history)")
    args = parser.parse_args()
    rows = [measure(f"plan {env}", [*CLI, "plan", env, "--quiet"], args.reps) for env in ("dev", "staging", "prod")]
    rows.append(measure("plan --all", [*CLI, "plan", "--all", "--quiet"], args.reps))
    rows.append(measure("check --all", [*CLI, "check", "--all"], args.reps))
    rows.append(measure("check --all, SDK not prepared", [*CLI, "check", "--all"], args.reps, UNPREPARED))
    rows.append(measure("check --all --jobs 1", [*CLI, "check", "--all", "--jobs", "1"], args.reps))
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(
            measure(
                "prepare (once per install)",
                [*CLI, "prepare"],
                1,
                {"AGENTINFRA_SDK_BYTECODE_DIR": str(Path(tmp) / "sdk")},
            )
        )
    if not args.skip_diff:
        rows.append(
            measure(
                "diff HEAD WORKTREE --env prod",
                [*CLI, "diff", "HEAD", "WORKTREE", "--env", "prod"],
                max(1, args.reps // 2),
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (1, 3, 10):
            config = synthetic_config(factor, Path(tmp))
            out = Path(tmp) / f"prod-{factor}x.json"
            rows.append(
                measure(
                    f"{factor}x prod plan",
                    [*CLI, "plan", "prod", "--config", str(config), "--quiet", "--out", str(out)],
                    args.reps,
                )
            )
            count = len(__import__("json").loads(out.read_text())["resources"])
            rows[-1]["label"] = f"{factor}x prod plan ({count} resources)"
            rows.append(
                measure(f"{factor}x prod check (manifest)", [*CLI, "check", "prod", "--manifest", str(out)], args.reps)
            )
    table = ["| command | wall s (median) | CPU s | peak RSS MiB | exit |", "| --- | ---: | ---: | ---: | --- |"]
    table += [f"| {r['label']} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss']:.0f} | {r['exit']} |" for r in rows]
    report = (
        f"# agent-infra benchmark\n\n{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{args.reps} runs each (median). Provider SDK prepared (`agentinfra prepare`): {_prepared()}.\n\n"
        + "\n".join(table)
        + "\n\n## Where the time goes (prod)\n\n"
        + breakdown()
        + "\n"
    )
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
