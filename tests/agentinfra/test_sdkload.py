"""SDK modules prepared with postponed annotations record exactly the same plans, and load only when current."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentinfra import sdkload
from agentinfra.cli import EXIT_OK, main

ROOT = Path(__file__).resolve().parents[2]

_FRESH_PROCESS = """
import json, sys, types
from agentinfra import sdkload
finder = sdkload.install()
from agentinfra.parallel import PROVIDER_PACKAGES, preload
preload()
lazy = sorted(n for n in PROVIDER_PACKAGES if type(sys.modules.get(n)) is not types.ModuleType)
from agentinfra.engine import environments, plan
from agentinfra.manifest import dumps
out = {env: dumps(plan(env)) for env in environments()}
out["prod-placeholders"] = dumps(plan("prod", placeholders=True))
loaded = sorted(
    name for name, module in sys.modules.items()
    if name.split(".")[0] in ("pulumi_aws", "pulumi_kubernetes", "pulumi_random")
    and hasattr(module, "__path__") and type(module) is types.ModuleType
)
probe = ["pulumi_aws.wafv2._inputs", "pulumi_aws.ec2.outputs", "pulumi_kubernetes.core.v1._inputs", "pulumi_aws"]
prepared = {name: getattr(sys.modules[name].__spec__.loader, "prepared", False) for name in probe}
print(json.dumps({
    "installed": finder is not None, "prepared": prepared, "lazy_after_preload": lazy, "loaded_packages": loaded,
    "manifests": out,
}))
"""


def _fresh_processes(*bytecode_dirs: Path) -> list[dict]:
    """Preload and plan every shipped environment in a fresh process per cache directory, all at once."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _FRESH_PROCESS],
            cwd=ROOT,
            env={**os.environ, sdkload.DIR_ENV: str(directory)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for directory in bytecode_dirs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sdk-bytecode")
    previous = os.environ.get(sdkload.DIR_ENV)
    os.environ[sdkload.DIR_ENV] = str(directory)
    try:
        assert main(["prepare", "--jobs", "2"]) == EXIT_OK
    finally:
        # main() installed a finder for this directory; other tests in this process import the ordinary way.
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, sdkload.PreparedFinder)]
        if previous is None:
            del os.environ[sdkload.DIR_ENV]
        else:
            os.environ[sdkload.DIR_ENV] = previous
    return directory


def test_prepare_compiles_every_module_of_the_packages_the_program_uses(prepared_dir: Path) -> None:
    names = {p.name.removesuffix(".pyc") for p in prepared_dir.glob("*.pyc")}
    assert {"pulumi_aws", "pulumi_aws._inputs", "pulumi_aws.wafv2._inputs", "pulumi_aws.ec2.vpc"} <= names
    assert "pulumi_kubernetes.core.v1._inputs" in names
    assert "pulumi_aws.sagemaker._inputs" not in names  # a package no shipped environment imports
    assert not list(prepared_dir.glob("*.tmp"))


@pytest.fixture(scope="module")
def fresh_runs(prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The same fresh-process script with the prepared SDK modules and without them (the ordinary import)."""
    prepared, plain = _fresh_processes(prepared_dir, tmp_path_factory.mktemp("no-bytecode") / "none")
    return {"prepared": prepared, "plain": plain}


def test_plans_are_identical_with_and_without_prepared_modules(fresh_runs: dict[str, dict]) -> None:
    prepared, plain = fresh_runs["prepared"], fresh_runs["plain"]
    assert prepared["installed"] and not plain["installed"]
    assert all(prepared["prepared"].values()), prepared["prepared"]
    assert not any(plain["prepared"].values())
    assert set(prepared["manifests"]) == {"dev", "staging", "prod", "prod-placeholders"}
    for name, manifest in plain["manifests"].items():
        assert prepared["manifests"][name] == manifest, name


@pytest.mark.parametrize("run", ["prepared", "plain"])
def test_preload_runs_the_lazily_imported_packages(fresh_runs: dict[str, dict], run: str) -> None:
    assert fresh_runs[run]["lazy_after_preload"] == []


@pytest.mark.parametrize("run", ["prepared", "plain"])
def test_preloaded_packages_cover_every_provider_package_a_plan_imports(fresh_runs: dict[str, dict], run: str) -> None:
    """Planning every shipped environment after preload() imports no provider package the parent missed."""
    from agentinfra.parallel import PROVIDER_PACKAGES

    # A listed package brings in its parents; the three top-level packages come with any of them.
    covered = set(PROVIDER_PACKAGES) | {".".join(p.split(".")[:i]) for p in PROVIDER_PACKAGES for i in (1, 2)}
    missing = sorted(set(fresh_runs[run]["loaded_packages"]) - covered)
    assert not missing, f"add these to agentinfra.parallel.PROVIDER_PACKAGES: {missing}"


def _module(tmp_path: Path, body: str = "def f(x: 'Missing[int]') -> list[int]: return [x]\n") -> Path:
    source = tmp_path / "sample.py"
    source.write_text(body)
    return source


def test_annotations_stay_strings_in_prepared_code(tmp_path: Path) -> None:
    source = _module(tmp_path)
    sdkload.compile_module(tmp_path, "sample", source)
    code = sdkload.read_cached(tmp_path, "sample", source)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own test module
    assert namespace["f"].__annotations__ == {"x": "'Missing[int]'", "return": "list[int]"}


def test_a_changed_source_is_not_served_from_the_cache(tmp_path: Path) -> None:
    source = _module(tmp_path)
    sdkload.compile_module(tmp_path, "sample", source)
    assert sdkload.read_cached(tmp_path, "sample", source) is not None
    source.write_text("X = 1  # a different size\n")
    assert sdkload.read_cached(tmp_path, "sample", source) is None
    stat = source.stat()
    sdkload.compile_module(tmp_path, "sample", source)
    os.utime(source, (stat.st_atime, stat.st_mtime + 10))
    assert sdkload.read_cached(tmp_path, "sample", source) is None


def test_a_foreign_or_damaged_file_is_ignored(tmp_path: Path) -> None:
    source = _module(tmp_path)
    sdkload.compile_module(tmp_path, "sample", source)
    cached = tmp_path / "sample.pyc"
    data = cached.read_bytes()
    cached.write_bytes(b"\0\0\0\0" + data[4:])  # another interpreter's magic number
    assert sdkload.read_cached(tmp_path, "sample", source) is None
    cached.write_bytes(data[:20])  # truncated
    assert sdkload.read_cached(tmp_path, "sample", source) is None
    assert data[:4] == importlib.util.MAGIC_NUMBER


def test_install_needs_a_prepared_directory_and_happens_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, sdkload.PreparedFinder)])
    monkeypatch.setenv(sdkload.DIR_ENV, str(tmp_path / "missing"))
    assert sdkload.install() is None
    monkeypatch.setenv(sdkload.DIR_ENV, str(tmp_path))
    finder = sdkload.install()
    assert finder is not None and sys.meta_path[0] is finder
    assert sdkload.install() is finder
    assert sum(isinstance(f, sdkload.PreparedFinder) for f in sys.meta_path) == 1
    assert finder.find_spec("yaml", None) is None  # only the provider SDKs


def test_prepare_reports_an_unwritable_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(sdkload.DIR_ENV, str(blocker / "cache"))
    assert main(["prepare"]) == 2
    assert "cannot write the SDK bytecode cache" in capsys.readouterr().err


def test_code_from_a_copy_of_the_sdk_names_this_source_file(tmp_path: Path) -> None:
    """A cache written for one copy of a module (same mtime and size) loads with this copy's file name."""
    import shutil

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    source = _module(first)
    shutil.copytree(first, second)  # copies mtimes too
    sdkload.compile_module(tmp_path, "sample", source)
    loader = sdkload._PreparedLoader("sample", str(second / "sample.py"), tmp_path)
    code = loader.get_code("sample")
    assert loader.prepared
    assert code.co_filename == str(second / "sample.py")
    nested = next(c for c in code.co_consts if hasattr(c, "co_filename"))
    assert nested.co_filename == str(second / "sample.py")


def test_a_module_that_cannot_be_compiled_is_reported_not_fatal(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def broken(:\n")
    problem = sdkload._compile_one((str(tmp_path), "pulumi_aws.bad", str(bad)))
    assert problem is not None and problem.startswith("pulumi_aws.bad: SyntaxError")
    assert not (tmp_path / "pulumi_aws.bad.pyc").exists()
