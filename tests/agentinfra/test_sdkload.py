"""SDK modules prepared with postponed annotations record exactly the same plans, and load only when current."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentinfra import sdkload
from agentinfra.cli import EXIT_OK, main

ROOT = Path(__file__).resolve().parents[2]

_DESCRIBE = """
import types

PROVIDERS = ("pulumi_aws", "pulumi_kubernetes", "pulumi_random")


def real_modules(sys_modules):
    return {n for n, m in sys_modules.items() if n.split(".")[0] in PROVIDERS and type(m) is types.ModuleType}


def describe(value):
    \"\"\"What a package attribute is, without loading a lazily imported module.\"\"\"
    if isinstance(value, types.ModuleType):
        return "module " + object.__getattribute__(value, "__dict__").get("__name__", "?")
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    where = getattr(value, "__module__", None)
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    return f"{kind} {where}.{name}" if where and name else f"{kind} {value!r}"[:200]


def public_names(sys_modules, packages):
    return {p: sorted(n for n in vars(sys_modules[p]) if not n.startswith("__") and not n.startswith("_agentinfra"))
            for p in packages}
"""

_FRESH_PROCESS = (
    _DESCRIBE
    + """
import json, os, sys
from agentinfra import sdkload
finder = sdkload.install()
from agentinfra.parallel import PROVIDER_PACKAGES, preload
preload()
lazy = sorted(n for n in PROVIDER_PACKAGES if type(sys.modules.get(n)) is not types.ModuleType)
after_preload = real_modules(sys.modules)
from agentinfra.engine import environments, plan
from agentinfra.manifest import dumps
out = {env: dumps(plan(env)) for env in environments()}
out["prod-placeholders"] = dumps(plan("prod", placeholders=True))
during_plans = sorted(real_modules(sys.modules) - after_preload)
loaded = sorted(
    name for name, module in sys.modules.items()
    if name.split(".")[0] in PROVIDERS and hasattr(module, "__path__") and type(module) is types.ModuleType
)
probe = ["pulumi_aws.wafv2._inputs", "pulumi_aws.ec2.outputs", "pulumi_kubernetes.core.v1._inputs", "pulumi_aws"]
prepared = {name: getattr(sys.modules[name].__spec__.loader, "prepared", False) for name in probe}
# Every public name of the ordinary packages (listed by the test process), as this process sees it.
expected = json.loads(open(os.environ["AGENTINFRA_TEST_NAMES"]).read())
def look_up():
    return {p: {n: describe(getattr(sys.modules[p], n, "<missing>")) for n in ns} for p, ns in expected.items()}
names = look_up()
names_again = look_up()  # after every module was loaded: nothing bound on the way may have replaced a name
print(json.dumps({
    "installed": finder is not None, "prepared": prepared, "lazy_after_preload": lazy, "loaded_packages": loaded,
    "loaded_during_plans": during_plans, "manifests": out, "names": names, "names_again": names_again,
}))
"""
)


def _fresh_processes(names_file: Path, *bytecode_dirs: Path) -> list[dict]:
    """Preload and plan every shipped environment in a fresh process per cache directory, all at once."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _FRESH_PROCESS],
            cwd=ROOT,
            env={**os.environ, sdkload.DIR_ENV: str(directory), "AGENTINFRA_TEST_NAMES": str(names_file)},
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
    """The same fresh-process script with the prepared SDK modules and without them (the ordinary import).

    Both also describe every public name of every provider package as this (test) process sees it after an
    ordinary import of all of them.
    """
    from agentinfra.parallel import PROVIDER_PACKAGES, preload

    preload()  # ordinary imports here: the finder is only ever installed in the subprocesses and by prepare()
    describe: dict = {}
    exec(_DESCRIBE, describe)  # noqa: S102 - our own helper text, shared with the subprocesses
    packages = sorted({*PROVIDER_PACKAGES, "pulumi_aws", "pulumi_kubernetes"})
    names = describe["public_names"](sys.modules, packages)
    here = {p: {n: describe["describe"](getattr(sys.modules[p], n)) for n in ns} for p, ns in names.items()}
    names_file = tmp_path_factory.mktemp("names") / "names.json"
    names_file.write_text(json.dumps(names))
    prepared, plain = _fresh_processes(names_file, prepared_dir, tmp_path_factory.mktemp("no-bytecode") / "none")
    return {"prepared": prepared, "plain": plain, "here": {"names": here}}


def test_plans_are_identical_with_and_without_prepared_modules(fresh_runs: dict[str, dict]) -> None:
    prepared, plain = fresh_runs["prepared"], fresh_runs["plain"]
    assert prepared["installed"] and not plain["installed"]
    assert all(prepared["prepared"].values()), prepared["prepared"]
    assert not any(plain["prepared"].values())
    assert set(prepared["manifests"]) == {"dev", "staging", "prod", "prod-placeholders"}
    for name, manifest in plain["manifests"].items():
        assert prepared["manifests"][name] == manifest, name


@pytest.mark.parametrize("run", ["prepared", "plain"])
def test_every_public_name_of_every_package_is_the_same_object_either_way(fresh_runs: dict, run: str) -> None:
    """Prepared packages load their resource modules on first use; each name still resolves to the same thing."""
    here = fresh_runs["here"]["names"]
    assert sum(len(ns) for ns in here.values()) > 5000
    for key in ("names", "names_again"):
        there = fresh_runs[run][key]
        differing = [(p, n, d, there[p][n]) for p, ns in here.items() for n, d in ns.items() if there[p][n] != d]
        assert not differing, (key, differing[:5])


def test_prepared_packages_defer_their_resource_modules(prepared_dir: Path) -> None:
    import ast

    source = sdkload._package_dir("pulumi_aws.ec2") / "__init__.py"  # type: ignore[operator]
    tree, deferred = sdkload.lazy_package(ast.parse(source.read_bytes()), source.parent)
    assert deferred > 100
    kept = [m for m in (sdkload._star_module(n) for n in tree.body) if m]
    # Left eager: _enums and _inputs, and the function modules that export their own name (get_vpc.py).
    assert kept[0] == "_enums" and kept[-1] == "_inputs"
    assert all(m in (sdkload._literal_all(source.parent / f"{m}.py") or []) for m in kept[1:-1])


@pytest.mark.parametrize("run", ["prepared", "plain"])
def test_preloaded_resource_classes_cover_every_resource_module_a_plan_loads(fresh_runs: dict, run: str) -> None:
    loaded = fresh_runs[run]["loaded_during_plans"]
    assert not loaded, f"add their classes to agentinfra.parallel.PROVIDER_RESOURCES: {loaded}"


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


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a package, prepare its ``__init__`` and import it through the prepared loader (a fresh name each
    time; every module it loads leaves ``sys.modules`` after the test)."""
    import importlib.util
    import uuid

    monkeypatch.setattr(sys, "modules", dict(sys.modules))

    def make(files: dict[str, str], touch: bool = False) -> Any:
        name = f"lazyfake_{uuid.uuid4().hex}"
        package = tmp_path / name
        package.mkdir()
        for file, text in files.items():
            (package / file).write_text(text)
        cache = tmp_path / f"{name}-cache"
        cache.mkdir()
        init = package / "__init__.py"
        sdkload.compile_module(cache, name, init)
        if touch:  # a file added after prepare: the package directory changes
            (package / "added_later.py").write_text("")
        monkeypatch.syspath_prepend(str(tmp_path))
        loader = sdkload._PreparedLoader(name, str(init), cache)
        spec = importlib.util.spec_from_file_location(
            name, init, loader=loader, submodule_search_locations=[str(package)]
        )
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
        assert loader.prepared
        return module

    return make


PACKAGE = {
    "__init__.py": "from ._enums import *\nfrom .thing import *\nfrom .get_thing import *\n"
    "from .clash import *\nfrom .other import *\nfrom .widget import *\nfrom . import helper\n",
    "_enums.py": "__all__ = ['Colour']\nColour = 'enum'\n",
    "thing.py": "__all__ = ['ThingArgs', 'Thing']\nclass ThingArgs: pass\nclass Thing: pass\n",
    "get_thing.py": "__all__ = ['get_thing', 'get_thing_output']\n"
    "def get_thing(): pass\ndef get_thing_output(): pass\n",
    "clash.py": "__all__ = ['Shared', 'Clash']\nShared = 'from clash'\nClash = 1\n",
    "other.py": "__all__ = ['Shared']\nShared = 'from other'\n",
    "widget.py": "__all__ = ['Widget']\nclass Widget: pass\n",
    "helper.py": "VALUE = 3\n",
}


def test_a_deferred_star_import_binds_what_the_star_import_bound(fake_package: Any) -> None:
    pkg = fake_package(PACKAGE)
    name = pkg.__name__
    assert f"{name}.thing" not in sys.modules and f"{name}.widget" not in sys.modules  # deferred
    assert f"{name}.get_thing" in sys.modules  # exports its own name: eager
    assert f"{name}.clash" in sys.modules and pkg.Shared == "from other"  # a shared name keeps both in order
    assert pkg.Colour == "enum" and pkg.helper.VALUE == 3
    assert callable(pkg.get_thing) and pkg.get_thing.__name__ == "get_thing"  # the function, not the submodule
    assert pkg.Thing.__name__ == "Thing" and pkg.ThingArgs.__module__ == f"{name}.thing"
    assert pkg.thing is sys.modules[f"{name}.thing"]
    assert {"Widget", "widget", "Thing"} <= set(dir(pkg))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        pkg.Nope  # noqa: B018


def test_a_deferred_module_imported_directly_first_still_serves_its_names(fake_package: Any) -> None:
    import importlib

    pkg = fake_package(PACKAGE)
    module = importlib.import_module(f"{pkg.__name__}.widget")
    assert pkg.widget is module and pkg.Widget is module.Widget


def test_a_star_import_of_the_package_binds_every_deferred_name(fake_package: Any) -> None:
    pkg = fake_package(PACKAGE)
    namespace: dict[str, Any] = {}
    exec(f"from {pkg.__name__} import *", namespace)  # noqa: S102 - the statement under test
    assert {"Thing", "ThingArgs", "Widget", "get_thing", "Shared", "Colour"} <= set(namespace)


def test_a_package_changed_after_prepare_imports_everything_as_written(fake_package: Any) -> None:
    pkg = fake_package(PACKAGE, touch=True)
    assert f"{pkg.__name__}.thing" in sys.modules and f"{pkg.__name__}.widget" in sys.modules
    assert pkg.Widget.__name__ == "Widget"


def test_a_package_whose_exports_cannot_be_read_is_left_as_written(fake_package: Any) -> None:
    pkg = fake_package(
        {
            "__init__.py": "from .thing import *\nfrom .dynamic import *\n",
            "thing.py": "__all__ = ['Thing']\nclass Thing: pass\n",
            "dynamic.py": "__all__ = ['A']\n__all__ += ['B']\nA = B = 1\n",
        }
    )
    assert f"{pkg.__name__}.thing" in sys.modules and "__getattr__" not in vars(pkg)
