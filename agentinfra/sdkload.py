"""Load the provider SDKs' modules compiled with postponed annotations (PEP 563), when they have been prepared.

Most of a cold ``agentinfra`` command is Python importing pulumi-aws and pulumi-kubernetes: their generated
modules define tens of thousands of classes, and every method annotation such as
``pulumi.Input[Optional['WebAclRuleActionArgs']]`` is evaluated through ``typing`` as the class is created.
Compiled with ``from __future__ import annotations`` the same modules keep annotations as strings, and the
imports take about 40% less time. The Pulumi SDK reads annotations only through ``typing.get_type_hints``
with each class's module globals (``pulumi/_types.py``), which evaluates a string annotation to the same
object, so what a plan records is unchanged: ``tests/agentinfra/test_sdkload.py`` plans every environment
both ways and compares the manifests byte for byte.

Compiling from source costs more than it saves, so it happens once, in ``agentinfra prepare`` (part of the
README's set-up command), like pip compiling a package's bytecode at install. The results live in the
virtual environment (``<prefix>/var/cache/agentinfra``), one file per module, each stamped like CPython's own
``.pyc`` with the interpreter's magic number and the source file's mtime and size. A module without a
current file is imported the ordinary way, so a stale or missing cache only costs speed. The loader is
installed only by the CLI, for ``pulumi_aws`` and ``pulumi_kubernetes``; the Pulumi CLI running the program
(``pulumi up``) never sees it.

A package's ``__init__`` is prepared one step further (``lazy_package``): its ``from .vpc import *`` lines, one
per resource module (about 420 over the packages a plan uses, of which it touches about 90), become a module
``__getattr__`` that performs the same star import the first time one of that module's names is asked for
(``dir()`` lists them, ``from package import *`` loads them all). The package's other lines (``_enums``,
``_inputs``, ``outputs``, ...) run as written. A module stays eager when its exports are not a literal
``__all__``, when it exports its own name (``get_vpc.py``, pulumi-kubernetes' ``Deployment.py``: importing it
directly would bind the package attribute to the module), or when it shares a name with anything else the
package binds, so the order of the star imports never matters. Each prepared ``__init__`` also records its
directory's mtime: a package whose files were added, removed or replaced since runs every star import as
written. ``tests/agentinfra/test_sdkload.py`` checks that every public name of every prepared package is the
same object either way.
"""

from __future__ import annotations
import __future__

import _imp
import ast
import importlib.abc
import importlib.machinery
import importlib.util
import marshal
import os
import re
import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Top-level packages whose modules are loaded this way.
PACKAGES = ("pulumi_aws", "pulumi_kubernetes")

#: Environment variable naming another cache directory (tests use a temporary one).
DIR_ENV = "AGENTINFRA_SDK_BYTECODE_DIR"

_FLAGS = __future__.annotations.compiler_flag
_HEADER = struct.Struct("<4sIII")


def cache_dir() -> Path:
    override = os.environ.get(DIR_ENV)
    if override:
        return Path(override)
    return Path(sys.prefix) / "var" / "cache" / "agentinfra" / f"pep563-{sys.implementation.cache_tag}"


def _cache_file(directory: Path, fullname: str) -> Path:
    return directory / f"{fullname}.pyc"


def _stamp(source: Path) -> tuple[int, int]:
    st = source.stat()
    return int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF


def read_cached(directory: Path, fullname: str, source: Path) -> Any | None:
    """The prepared code object for ``fullname``, or None when there is none for this source and interpreter."""
    try:
        data = _cache_file(directory, fullname).read_bytes()
        mtime, size = _stamp(source)
    except OSError:
        return None
    if len(data) < _HEADER.size:
        return None
    magic, flags, cached_mtime, cached_size = _HEADER.unpack_from(data)
    if magic != importlib.util.MAGIC_NUMBER or flags != 0 or (cached_mtime, cached_size) != (mtime, size):
        return None
    try:
        return marshal.loads(data[_HEADER.size :])
    except (EOFError, ValueError, TypeError):
        return None


_ALL = re.compile(rb"^__all__ = (\[[^\]]*\]|\([^)]*\))\n", re.MULTILINE)


def _literal_all(source: Path) -> list[str] | None:
    """The module's ``__all__`` if it is set once, at the top level, to a literal list of strings, else None.

    Read from the text (a full parse of every resource module would cost more than the laziness saves): the
    file must mention ``__all__`` exactly once, in a ``__all__ = [...]`` line at column 0.
    """
    try:
        text = source.read_bytes()
    except OSError:
        return None
    found = _ALL.findall(text)
    if len(found) != 1 or text.count(b"__all__") != 1:
        return None
    try:
        value = ast.literal_eval(found[0].decode("utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError):
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return None
    return list(value)


def _star_module(node: ast.stmt) -> str | None:
    """``m`` for a top-level ``from .m import *``, else None."""
    if (
        isinstance(node, ast.ImportFrom)
        and node.level == 1
        and node.module
        and "." not in node.module
        and [a.name for a in node.names] == ["*"]
    ):
        return node.module
    return None


def _bound_names(nodes: Sequence[ast.stmt]) -> set[str]:
    """Every name the statements could bind in the module namespace (over-approximated: any stored name)."""
    names: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).partition(".")[0] for a in sub.names if a.name != "*")
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, (ast.Global, ast.Nonlocal)):
                names.update(sub.names)
    return names


_LAZY_GETATTR = """
def _agentinfra_star_import(module):
    import importlib
    submodule = importlib.import_module("." + module, __name__)
    namespace = globals()
    for exported in getattr(submodule, "__all__", _agentinfra_lazy_exports[module]):  # as `from .m import *`
        namespace[exported] = getattr(submodule, exported)
    _agentinfra_lazy_exports.pop(module, None)


def __getattr__(name):
    if name == "__all__":  # `from package import *` asks first: load everything, then let it list __dict__
        for module in list(_agentinfra_lazy_exports):
            _agentinfra_star_import(module)
        raise AttributeError(name)
    module = _agentinfra_lazy_owner.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module in _agentinfra_lazy_exports:
        _agentinfra_star_import(module)
    return globals()[name]


def __dir__():
    return sorted({*globals(), *_agentinfra_lazy_owner})


import os as _agentinfra_os
if _agentinfra_os.stat(__path__[0]).st_mtime_ns != _agentinfra_lazy_stamp:
    # Files were added, removed or replaced since `agentinfra prepare`: the table may be stale, so run every
    # deferred star import now, as the package itself would.
    for _agentinfra_module in list(_agentinfra_lazy_exports):
        _agentinfra_star_import(_agentinfra_module)
"""


def lazy_package(tree: ast.Module, package_dir: Path) -> tuple[ast.Module, int]:
    """The package ``__init__`` with its resource modules' star imports deferred; (tree, modules deferred).

    A ``from .m import *`` is deferred when ``m.py`` is a plain module with a literal ``__all__`` that does not
    list ``m`` itself, and neither ``m`` nor any of its exports is bound by another line of the package or
    exported by another module. A package defining its own ``__getattr__``, or with a star import whose names
    cannot be read here, is left as it is. Everything not deferred runs as written, in order.
    """
    stars = [(node, _star_module(node)) for node in tree.body]
    read: dict[str, list[str] | None] = {}
    for _, module in stars:
        if module is not None:
            source = package_dir / f"{module}.py"
            read[module] = _literal_all(source) if source.is_file() else None
    if None in read.values() or "__getattr__" in _bound_names(tree.body):
        return tree, 0  # some star import's names cannot be known here: leave the package as it is
    exports = {module: names for module, names in read.items() if names is not None}
    # A name claimed twice (two modules, or a module and another line) would make the order matter: keep eager.
    claims: dict[str, int] = {}
    for module, names in exports.items():
        for name in {module, *names}:
            claims[name] = claims.get(name, 0) + 1
    others = _bound_names([node for node, module in stars if module is None])
    lazy = {
        m
        for m, names in exports.items()
        if not m.startswith("_")
        # A module exporting its own name (pulumi-kubernetes' Deployment.py, pulumi-aws' get_vpc.py) stays
        # eager: importing it directly would bind the package attribute to the module, shadowing the export.
        and m not in names
        and all(claims[n] == 1 and n not in others for n in {m, *names})
    }
    if not lazy:
        return tree, 0
    body = [node for node, module in stars if module not in lazy]
    table = {m: exports[m] for m in exports if m in lazy}  # in the package's order
    setup = ast.parse(
        f"_agentinfra_lazy_exports = {table!r}\n"
        f"_agentinfra_lazy_stamp = {package_dir.stat().st_mtime_ns}\n"
        "_agentinfra_lazy_owner = {n: m for m, ns in _agentinfra_lazy_exports.items() for n in (m, *ns)}\n"
        + _LAZY_GETATTR
    )
    # Numbered after the package's last line, so no traceback points into the SDK's own lines.
    ast.increment_lineno(setup, max((getattr(n, "end_lineno", 0) or 0) for n in tree.body) if tree.body else 0)
    return ast.Module(body=[*body, *setup.body], type_ignores=tree.type_ignores), len(lazy)


def compile_module(directory: Path, fullname: str, source: Path) -> None:
    """Compile one source file with postponed annotations and write it atomically (readers never see half)."""
    mtime, size = _stamp(source)  # before reading, as CPython does: a file changed meanwhile is never current
    text = source.read_bytes()
    if source.name == "__init__.py":
        tree, _ = lazy_package(ast.parse(text, str(source)), source.parent)
        code = compile(tree, str(source), "exec", flags=_FLAGS, dont_inherit=True)
    else:
        code = compile(text, str(source), "exec", flags=_FLAGS, dont_inherit=True)
    target = _cache_file(directory, fullname)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(_HEADER.pack(importlib.util.MAGIC_NUMBER, 0, mtime, size) + marshal.dumps(code))
    os.replace(partial, target)


class _PreparedLoader(importlib.machinery.SourceFileLoader):
    """A source loader that takes the prepared code when it is current, else compiles as CPython would."""

    def __init__(self, fullname: str, path: str, directory: Path):
        super().__init__(fullname, path)
        self._directory = directory
        self.prepared = False

    def get_code(self, fullname: str) -> Any:
        code = read_cached(self._directory, fullname, Path(self.path))
        if code is None:
            return super().get_code(fullname)
        # As CPython's loader does for any .pyc: frames and tracebacks name this source file, even if the
        # cache was written for a copy of the SDK elsewhere (a moved venv, a shared cache directory).
        _imp._fix_co_filename(code, self.path)  # type: ignore[attr-defined]
        self.prepared = True
        return code


class PreparedFinder(importlib.abc.MetaPathFinder):
    """Finds provider SDK modules as the path finder does and hands them to ``_PreparedLoader``."""

    def __init__(self, directory: Path):
        self.directory = directory

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        if fullname.partition(".")[0] not in PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        spec.loader = _PreparedLoader(fullname, spec.loader.path, self.directory)
        return spec


def install() -> PreparedFinder | None:
    """Put the finder first on ``sys.meta_path`` if a prepared cache exists; idempotent. Returns the finder."""
    for finder in sys.meta_path:
        if isinstance(finder, PreparedFinder):
            return finder
    directory = cache_dir()
    if not directory.is_dir():
        return None
    finder = PreparedFinder(directory)
    sys.meta_path.insert(0, finder)
    return finder


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name.partition(".")[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*name.split(".")[1:])


def modules_to_prepare(packages: Sequence[str]) -> Iterator[tuple[str, Path]]:
    """(module name, source) for the top level of each SDK and every module under the given packages."""
    seen: set[str] = set()
    roots = {p.partition(".")[0] for p in packages}
    for name in sorted(roots | set(packages)):
        directory = _package_dir(name)
        if directory is None or not directory.is_dir():
            continue
        # The top-level package itself: only its own files; the listed subpackages: everything below them.
        files = directory.glob("*.py") if name in roots else directory.rglob("*.py")
        for source in sorted(files):
            relative = source.relative_to(directory).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            fullname = ".".join([name, *parts])
            if fullname not in seen:
                seen.add(fullname)
                yield fullname, source


def _compile_one(job: tuple[str, str, str]) -> str | None:
    directory, fullname, source = job
    try:
        compile_module(Path(directory), fullname, Path(source))
    except Exception as exc:  # noqa: BLE001 - one module that cannot be prepared is imported the ordinary way
        return f"{fullname}: {type(exc).__name__}: {exc}"
    return None


def prepare(packages: Sequence[str], directory: Path | None = None, jobs: int | None = None) -> tuple[int, list[str]]:
    """Compile every module of ``packages`` (``pulumi_aws.ec2``, ...) into the cache. Returns (count, problems)."""
    import multiprocessing

    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    ours = [p for p in packages if p.partition(".")[0] in PACKAGES]  # the only ones the finder loads
    jobs_list = [(str(directory), fullname, str(source)) for fullname, source in modules_to_prepare(ours)]
    workers = max(1, min(jobs or os.cpu_count() or 1, 8))
    if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
        results = [_compile_one(job) for job in jobs_list]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_compile_one, jobs_list, chunksize=8)
    return len(jobs_list), [r for r in results if r]
