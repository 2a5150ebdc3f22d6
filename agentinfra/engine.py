"""The offline plan engine: run the real Pulumi program under the mock runtime and record every resource.

What it records is what the Pulumi engine passes to a policy pack: type, name, URN, parent, custom or
component, camelCase inputs, provider reference, dependencies, property dependencies and options.
This module is the only place that drives the SDK below its public surface: a recording subclass of
``MockMonitor``, the same ``run_in_stack`` entry point the language host uses, and, only while ``record``
runs, four equivalents for slow SDK internals (a linear ``wait_for_rpcs``, a stack trace that reads no
source files, scalar registrations answered without the monitor's serialise round trip, getter type hints
evaluated once per distinct annotation), and it runs the program on uvloop's event loop where installed.
Each has a switch (``LINEAR_WAIT``, ``FAST_STACK_TRACE``, ``FAST_REGISTER``, ``FAST_HINTS``, ``FAST_LOOP``)
and a test comparing it with the SDK's own on every shipped plan, pinned to the installed SDK version.

Two things a mock cannot know, by design:

* inputs are what the program sends, before the provider adds its defaults (``tagsAll`` is absent;
  the explicit ``aws.Provider`` is recorded with its default tags so rules can merge them);
* provider-computed outputs. By default the engine behaves like the first ``pulumi preview`` of a new
  stack: ids, ARNs and endpoints are unknown. ``placeholders=True`` instead gives deterministic values
  derived from the URN, for diff and cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import runpy
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import yaml
from agentinfra_policies.yamlio import safe_load
from google.protobuf import json_format
from pulumi import _types as pulumi_types
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack

from stacks.reader import SettingsError
from stacks.settings import NAMESPACE, PROJECT, TOP_LEVEL_KEYS

from .errors import InputError
from .manifest import MANIFEST_SCHEMA_VERSION, SECRET, UNKNOWN_MARK

#: Pulumi's wire signatures (sdk/python/lib/pulumi/runtime/rpc.py).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

STACK_TYPE = "pulumi:pulumi:Stack"


class PlanError(InputError):
    """Bad input to a plan (missing or malformed config, invalid settings): exit status 2, no traceback."""


class ProgramError(Exception):
    """The program itself failed for a reason that is not bad input (a bug): reported with its traceback."""


@dataclass
class StackConfig:
    """One environment's config file, as the Pulumi CLI would hand it to the program."""

    environment: str
    path: Path
    values: dict[str, str]
    """``namespace:key`` to the string Pulumi passes (structured values as JSON)."""
    secret_keys: list[str] = field(default_factory=list)


def project_root() -> Path:
    """The repository root: where Pulumi.yaml and __main__.py live."""
    return Path(__file__).resolve().parent.parent


def environments(root: Path | None = None) -> list[str]:
    """Every environment that has a config file, sorted."""
    root = root or project_root()
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (root / "config").glob("Pulumi.*.yaml"))


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_stack_config(environment: str, root: Path | None = None, path: Path | None = None) -> StackConfig:
    """Read ``config/Pulumi.<env>.yaml`` in Pulumi's stack-config format; every problem is a PlanError."""
    root = root or project_root()
    path = path or root / "config" / f"Pulumi.{environment}.yaml"
    shown = _display(path, root)
    if not path.is_file():
        known = ", ".join(environments(root)) or "none"
        raise PlanError(f"unknown environment {environment!r}: no config file {shown} (environments: {known})")
    try:
        data = safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = ""
        if getattr(exc, "problem_mark", None) is not None:
            mark = exc.problem_mark  # type: ignore[attr-defined]
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlanError(f"{shown}: not valid YAML{where}: {problem}") from None
    except OSError as exc:
        raise PlanError(f"{shown}: cannot be read: {exc.strerror}") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        found = type(data).__name__ if not isinstance(data, dict) else f"keys {sorted(data)}"
        raise PlanError(
            f"{shown}: expected a top-level `config:` mapping (Pulumi's stack config format), found {found}"
        )
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    problems: list[str] = []
    for key, value in data["config"].items():
        if not isinstance(key, str) or ":" not in key:
            problems.append(f"{key}: expected a namespaced key such as {NAMESPACE}:{key} or aws:{key}")
            continue
        namespace, name = key.split(":", 1)
        if namespace == NAMESPACE and name not in TOP_LEVEL_KEYS:
            problems.append(f"{key}: unknown setting; expected one of: {', '.join(sorted(TOP_LEVEL_KEYS))}")
            continue
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Ciphertext only the stack's secrets provider can decrypt. Offline, the program sees an
            # opaque stand-in that is marked secret, so it is redacted wherever it flows.
            secret_keys.append(key)
            value = f"offline-secret:{key}"
        values[key] = value if isinstance(value, str) else json.dumps(value)
    problems += _tool_block_problems(data["config"])
    if problems:
        raise PlanError(f"{shown}: {len(problems)} invalid key(s)\n" + "\n".join(f"  - {p}" for p in problems))
    return StackConfig(environment=environment, path=path, values=values, secret_keys=secret_keys)


def _tool_block_problems(config: dict[str, Any]) -> list[str]:
    """Validate the blocks only the tools read (the program ignores them), so a typo fails every plan."""
    from .cost import parse_assumptions
    from .resilience import parse_targets

    problems: list[str] = []
    for key, parse in (("resilience", parse_targets), ("cost", parse_assumptions)):
        full = f"{NAMESPACE}:{key}"
        if full in config:
            _, found = parse(config[full], full)
            problems += [f"{k}: {m}" for k, m in found]
    return problems


class OfflineMocks(pulumi_mocks.Mocks):
    """Provider behaviour offline: echo inputs as state; computed outputs unknown, or placeholders."""

    def __init__(self, placeholders: bool):
        self.placeholders = placeholders

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return "", {}
        # Scalar inputs come back as outputs, as a provider's planned state would show them. Object-valued
        # inputs do not: their provider-computed members (an EKS cluster's vpcConfig.clusterSecurityGroupId)
        # are unknown in a real preview, and an echoed object would make them a known None instead.
        state = {k: v for k, v in args.inputs.items() if not _is_object(v)}
        if not self.placeholders:
            # A new-stack preview: the id and every output the provider computes are unknown.
            return "", state
        digest = hashlib.sha256(f"{args.typ}::{args.name}".encode()).hexdigest()[:16]

        if args.typ.startswith("aws:"):
            state.setdefault("arn", f"arn:aws:offline:::{args.typ.split(':')[-1]}/{args.name}-{digest}")
        return f"offline-{digest}", state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        raise ProgramError(
            f"the program called the provider function {args.token!r}; the offline engine does not model "
            "provider functions (their results depend on the live account). Take the value from config "
            "instead, as the AZ list and account ids are."
        )


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that also records each registration the way the engine sees it."""

    def __init__(self, mocks: OfflineMocks):
        super().__init__(mocks)
        self._lock = threading.Lock()
        self.records: dict[str, dict[str, Any]] = {}
        self.stack_urn: str | None = None
        self.stack_outputs: dict[str, Any] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the real engine forms them: the parent's full qualified type, the root stack left out."""
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != STACK_TYPE:
                type_ = f"{parent_type}${type_}"
        stack, project = pulumi_settings.get_stack(), pulumi_settings.get_project()
        return f"urn:pulumi:{stack}::{project}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = self._register_scalars(request) if FAST_REGISTER else None
        if response is None:
            response = super().RegisterResource(request)
        record = _record(request, response.urn)
        with self._lock:
            if request.type == STACK_TYPE:
                self.stack_urn = response.urn
            self.records[response.urn] = record
        return response

    def _register_scalars(self, request: Any) -> Any | None:
        """``MockMonitor.RegisterResource`` for a request whose top-level inputs are scalars, lists of scalars,
        plain objects or lists holding one; None for anything else (secrets, resource references, assets).

        The SDK's monitor deserialises every input (objects included, rehydrating resource references), hands
        them to the mocks, and serialises the state they return through a fresh event loop on its worker
        thread: about 1 ms a resource. ``OfflineMocks`` keeps only scalar inputs, and a scalar's round trip is
        the identity on the wire (an unknown comes back unknown, a null is dropped both ways), so for these
        requests the state is built from the scalars directly and copied back as they came. Installed only
        while ``record`` runs (``FAST_REGISTER``); ``tests/agentinfra/test_engine.py`` compares responses with
        the SDK's on every registration of every shipped plan, in both modes.
        """
        from google.protobuf import struct_pb2
        from pulumi.output import Unknown
        from pulumi.runtime.proto import resource_pb2

        if request.type == STACK_TYPE:
            return None
        inputs: dict[str, Any] = {}
        wire: dict[str, Any] = {}
        for key, value in request.object.fields.items():
            kind = value.WhichOneof("kind")
            if kind == "struct_value":
                if _SIG_KEY in value.struct_value.fields:
                    return None  # a secret, asset, archive, resource reference or output value
                continue  # an object: deserialised to a dict, which the mocks drop
            if kind == "list_value":
                items, has_object = [], False
                for item in value.list_value.values:
                    item_kind = item.WhichOneof("kind")
                    if item_kind == "struct_value" and _SIG_KEY not in item.struct_value.fields:
                        has_object = True  # a list holding an object is an object: the mocks drop it
                    elif item_kind in _SCALAR_KINDS or item_kind == "null_value":
                        items.append(_scalar(item, item_kind, Unknown))
                    else:
                        return None  # a secret or reference inside a list, or a nested list
                if has_object:
                    continue
                inputs[key] = items
            elif kind == "null_value":
                continue  # deserialised to None, which the SDK treats as absent
            elif kind in _SCALAR_KINDS:
                inputs[key] = _scalar(value, kind, Unknown)
            else:
                return None
            wire[key] = value
        urn = self.make_urn(request.parent, request.type, request.name)
        args = pulumi_mocks.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
        )
        id_, state = self.mocks.new_resource(args)
        obj = struct_pb2.Struct()
        for key, value in state.items():
            if key in wire and value is inputs[key]:
                obj.fields[key].CopyFrom(wire[key])
            elif isinstance(value, str):
                obj.fields[key].string_value = value
            else:
                return None  # the mocks made up something else: let the SDK serialise it
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_, state)  # type: ignore[arg-type]
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_ or "", object=obj)

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        if request.urn == self.stack_urn:
            with self._lock:
                self.stack_outputs = _plain(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)


#: protobuf ``Value`` kinds that deserialise to a Python scalar (``null_value`` aside: it means absent).
_SCALAR_KINDS = ("string_value", "number_value", "bool_value")


def _scalar(value: Any, kind: str | None, unknown: type) -> Any:
    """A protobuf scalar as ``rpc.deserialize_property`` gives it in a preview (the unknown marker as Unknown)."""
    if kind == "string_value":
        return unknown() if value.string_value == _UNKNOWN else value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None


def _record(request: Any, urn: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "protect": bool(request.protect),
        "retainOnDelete": bool(request.retainOnDelete),
        "deleteBeforeReplace": bool(request.deleteBeforeReplace) if request.deleteBeforeReplaceDefined else None,
        "ignoreChanges": sorted(request.ignoreChanges),
        "replaceOnChanges": sorted(request.replaceOnChanges),
        "additionalSecretOutputs": sorted(request.additionalSecretOutputs),
        "aliases": [_alias(a) for a in request.aliases] + sorted(request.aliasURNs),
        "deletedWith": request.deletedWith or None,
        "customTimeouts": _plain(json_format.MessageToDict(request.customTimeouts))
        if request.HasField("customTimeouts")
        else None,
    }
    provider_urn = request.provider.rsplit("::", 1)[0] if request.provider else None
    return {
        "urn": urn,
        "type": request.type,
        "name": request.name,
        "custom": bool(request.custom),
        "parent": request.parent or None,
        "provider": provider_urn,
        "inputs": _plain(json_format.MessageToDict(request.object)),
        "dependencies": sorted(set(request.dependencies)),
        "propertyDependencies": {
            key: sorted(set(deps.urns)) for key, deps in sorted(request.propertyDependencies.items()) if deps.urns
        },
        "options": {k: v for k, v in options.items() if v not in (None, [], False)},
    }


def _is_object(value: Any) -> bool:
    """An object-typed value (a secret counts as whatever it wraps, an asset as a scalar)."""
    if isinstance(value, dict) and _SIG_KEY in value:
        return value.get(_SIG_KEY) == _SECRET_SIG and _is_object(value.get("value"))
    return isinstance(value, dict) or (isinstance(value, list) and any(_is_object(v) for v in value))


async def _wait_for_rpcs_linear(await_all_outstanding_tasks: bool = True) -> None:
    """The SDK's ``wait_for_rpcs`` with the outstanding outputs awaited together, not first-completed in turn.

    The SDK (pulumi 3.x, ``runtime/stack.py``) waits ``FIRST_COMPLETED`` over every pending output and loops,
    re-attaching callbacks to all of them each time: quadratic in the number of outputs, most of a plan's time at
    a few hundred resources. Waiting ``ALL_COMPLETED`` ends in the same state (the RPCs are drained first, new
    outputs are picked up by the next round, exceptions are re-raised), in linear time. Installed only while
    ``record`` runs; ``tests/agentinfra/test_engine.py`` checks that manifests are identical either way.
    """
    from pulumi.runtime.settings import SETTINGS, _get_rpc_manager

    rpc_manager = _get_rpc_manager()
    while True:
        while len(rpc_manager.rpcs) > 0:
            await asyncio.sleep(0)
            try:
                await rpc_manager.rpcs.pop()
            except Exception as exn:
                if rpc_manager.unhandled_exception is not None:
                    raise exn from rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
                raise
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        if await_all_outstanding_tasks:
            while True:
                with SETTINGS.lock:
                    if len(SETTINGS.outputs) == 0:
                        break
                    pending = list(SETTINGS.outputs)
                    SETTINGS.outputs.clear()
                done, _ = await asyncio.wait(pending, return_when=asyncio.ALL_COMPLETED)
                for task in done:
                    await task
        if len(rpc_manager.rpcs) == 0:
            break


@contextlib.contextmanager
def patched(module: Any, replacements: dict[str, Any]) -> Iterator[None]:
    """Attributes of a module (or object) replaced for the duration of the block, restored however it ends.

    How this module and ``gate`` install their equivalents of SDK internals, only while they run.
    """
    own = vars(module)
    saved = {name: (name in own, getattr(module, name)) for name in replacements}
    for name, value in replacements.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, (was_own, value) in saved.items():
            if was_own:
                setattr(module, name, value)
            else:  # it came from the class (an object's method): remove the shadowing attribute again
                delattr(module, name)


#: Whether ``record`` installs the linear wait (tests turn it off to compare with the SDK's own).
LINEAR_WAIT = True

#: Whether ``record`` installs ``_stack_trace`` for the SDK's ``_get_stack_trace`` (tests compare both).
FAST_STACK_TRACE = True

#: Whether the recording monitor registers scalar-only requests itself (``_register_scalars``; tests compare).
FAST_REGISTER = True

#: Whether ``record`` installs ``_raw_return_hints`` for the SDK's (tests compare both, class by class).
FAST_HINTS = True

#: Whether ``record`` runs the program on uvloop's event loop when uvloop is installed (tests compare both).
FAST_LOOP = True

_uvloop: Any
try:
    import uvloop as _uvloop
except ImportError:  # not on Windows; asyncio's loop does the same, more slowly
    _uvloop = None


_HINTS_BY_ANNOTATIONS: dict[Any, dict[str, Any]] = {}


class _Same:
    """A key part equal only to the very same object (kept alive with the key, so its id is not reused)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.value is self.value


def _type_hints(function: Any, modules: tuple[Any, ...], globalns: Any, localns: dict[str, Any]) -> dict[str, Any]:
    """``typing.get_type_hints(function, globalns, localns)``, remembered per (MRO modules, annotations).

    ``globalns`` is what the SDK's ``_globals_for_cls`` merges from the modules of a class's MRO, so the same
    annotations of another class with the same modules evaluate to the same objects. An evaluation that raises
    is not remembered.
    """
    import typing

    annotations = getattr(function, "__annotations__", None)
    # Strings (the prepared SDK) are compared by text; anything else by identity: typing calls Optional[X] and
    # Union[None, X] equal, though the SDK reads their members in order.
    items = tuple((k, v if isinstance(v, str) else _Same(v)) for k, v in annotations.items()) if annotations else None
    key = (modules, items, getattr(function, "__no_type_check__", 0))
    hit = _HINTS_BY_ANNOTATIONS.get(key)
    if hit is None:
        hit = _HINTS_BY_ANNOTATIONS[key] = typing.get_type_hints(function, globalns=globalns, localns=localns)
    return hit


@functools.cache
def _raw_return_hints(cls: type) -> dict[str, Any]:
    """The SDK's ``_raw_return_hints`` (pulumi 3.x, ``_types.py``) with each getter's hints remembered.

    The SDK evaluates every property getter's return annotation with ``typing.get_type_hints`` the first time
    it meets a class (about 3,300 evaluations in a prod plan, from 1,400 distinct annotation/module pairs):
    the largest cost of a worker's first plan. This is its loop, with the evaluation shared between classes
    whose annotations and modules are the same (cleared for every plan). Installed only while ``record`` runs;
    ``tests/agentinfra/test_engine.py`` compares it with the SDK's for every class of the shipped plans.
    """
    from pulumi import Output

    globalns = pulumi_types._globals_for_cls(cls)
    # The module objects themselves (not names): a program run again by runpy is another module of that name.
    modules = tuple(sys.modules[base.__module__] for base in reversed(cls.__mro__) if base.__module__ in sys.modules)
    localns = {"Output": Output, "T": type(None)}
    hints: dict[str, Any] = {}
    for _, pulumi_name, prop in pulumi_types._py_properties(cls):
        return_hint = _type_hints(prop.fget, modules, globalns, localns).get("return")
        if return_hint is not None:
            hints[pulumi_name] = return_hint
    return hints


_URIS: dict[str, str | None] = {}


def _file_uri(filename: str) -> str | None:
    """``pathlib.Path(filename).as_uri()``, or None where the SDK gets None (relative or odd paths), remembered."""
    if filename not in _URIS:
        try:
            _URIS[filename] = Path(filename).as_uri()
        except BaseException:  # noqa: BLE001 - the SDK catches everything here too
            _URIS[filename] = None
    return _URIS[filename]


def _stack_trace() -> Any:
    """The SDK's ``_get_stack_trace`` (pulumi 3.x, ``runtime/resource.py``) without reading any source file.

    The SDK calls ``traceback.extract_stack()`` for every resource, which looks up each frame's source line
    (stat-ing and reading files through ``linecache``) and then uses only file names and line numbers. This
    walks the same frames: from the caller outwards, past the third ``__init__`` (Resource, Custom/Component
    Resource, the concrete class), and returns the frames outside it, innermost first, as the SDK does. The
    engine sends the result as the registration's stack trace; the manifest does not record it. Installed
    only while ``record`` runs; ``tests/agentinfra/test_engine.py`` compares it with the SDK's on every
    registration of a prod plan.
    """
    from pulumi.runtime.proto import source_pb2

    frame: FrameType | None = sys._getframe(0)
    inits = 0
    while frame is not None:
        if frame.f_code.co_name == "__init__":
            inits += 1
            if inits == 3:
                break
        frame = frame.f_back
    if frame is None or frame.f_back is None:
        return source_pb2.StackTrace()
    frames = []
    outer: FrameType | None = frame.f_back
    while outer is not None:
        filename, line = outer.f_code.co_filename, outer.f_lineno
        uri = _file_uri(filename) if filename != "" and line is not None else None
        frames.append(source_pb2.StackFrame(pc=source_pb2.SourcePosition(uri=uri, line=line) if uri else None))
        outer = outer.f_back
    return source_pb2.StackTrace(frames=frames)


_WORKERS = 4


def _close_worker_loops(executor: ThreadPoolExecutor) -> None:
    """Close the event loops the mock monitor creates on executor threads, then the executor.

    ``MockMonitor`` calls ``_ensure_event_loop()`` on the threads that run monitor calls; those loops are
    never closed and fail noisily when collected later. A barrier makes every worker take exactly one
    cleanup call, so each closes its own loop.
    """
    barrier = threading.Barrier(_WORKERS)

    def close_own_loop() -> None:
        barrier.wait(timeout=10)
        try:
            thread_loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            return
        if not thread_loop.is_running() and not thread_loop.is_closed():
            thread_loop.close()
        asyncio.set_event_loop(None)

    for future in [executor.submit(close_own_loop) for _ in range(_WORKERS)]:
        future.result(timeout=15)
    executor.shutdown(wait=True)


def _alias(alias: Any) -> Any:

    data = _plain(json_format.MessageToDict(alias))
    return data.get("urn", data) if isinstance(data, dict) else data


def _plain(value: Any) -> Any:
    """Wire form to manifest form: secrets redacted, unknowns marked, whole numbers as ints."""
    if isinstance(value, dict):
        sig = value.get(_SIG_KEY)
        if sig == _SECRET_SIG:
            return dict(SECRET)
        if sig == _RESOURCE_SIG:
            return {"$resourceRef": value.get("urn")}
        if sig in (_ASSET_SIG, _ARCHIVE_SIG):
            kind = "$asset" if sig == _ASSET_SIG else "$archive"
            return {kind: {k: _plain(v) for k, v in sorted(value.items()) if k != _SIG_KEY}}
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value == _UNKNOWN:
        return dict(UNKNOWN_MARK)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def plan(
    environment: str, *, root: Path | None = None, placeholders: bool = False, config_path: Path | None = None
) -> dict[str, Any]:
    """Plan one environment offline: run ``__main__.py`` with its config and return the manifest."""
    root = root or project_root()
    config = load_stack_config(environment, root, config_path)
    program = root / "__main__.py"
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    def run_main() -> None:
        runpy.run_path(str(program), run_name="__main__")

    try:
        manifest = record(
            run_main, stack=environment, config=config.values, secret_keys=config.secret_keys, placeholders=placeholders
        )
    except SettingsError as exc:
        raise PlanError(exc.with_source(_display(config.path, root)).render()) from None
    manifest["config"] = _display(config.path, root)
    return manifest


def record(
    program: Callable[[], None],
    *,
    stack: str,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    placeholders: bool = False,
) -> dict[str, Any]:
    """Run ``program`` as a Pulumi program in a fresh event loop with fresh mocks; return its manifest.

    Nothing leaks between calls: each gets its own loop, monitor, settings, root stack and config. On uvloop
    (``FAST_LOOP``) a program that waits synchronously on an output (the SDK's ``_sync_await``: a provider
    function call, ``Output.json_dumps`` meeting a nested output) cannot run, because the SDK pumps the loop
    through asyncio's internals; such a plan is run again from the start on asyncio's loop, and only the
    messages of the run that counts are shown.
    """
    args = (program, stack, config, secret_keys, placeholders)
    if FAST_LOOP and _uvloop is not None:
        attempt = _UvloopAttempt()
        try:
            monitor = _run_program(*args, attempt)
        except BaseException:
            if not attempt.waited_synchronously:
                attempt.replay()
                raise
        else:
            if not attempt.waited_synchronously:
                attempt.replay()
                return _manifest(monitor, stack, placeholders)
    return _manifest(_run_program(*args, None), stack, placeholders)


class _UvloopAttempt:
    """A run on uvloop: holds its messages back until it is known to count, notes a synchronous wait."""

    def __init__(self) -> None:
        self.waited_synchronously = False
        self.records: list[logging.LogRecord] = []
        self.loop_errors: list[dict[str, Any]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.logger = logging.Logger(_PROGRAM_LOGGER)  # not registered: its records go only to `records`
        self.logger.addHandler(_Collect(self.records))

    def replay(self) -> None:
        """Show the held messages as the run would have shown them."""
        logger = logging.getLogger(_PROGRAM_LOGGER)
        for record in self.records:
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        for context in self.loop_errors:
            if self.loop is not None:
                self.loop.default_exception_handler(context)

    def sync_await(self, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """The SDK's ``_sync_await``, refusing (and noting) a wait on uvloop's loop."""
        from pulumi.runtime.sync_await import _ensure_event_loop

        def waiting(awaitable: Any) -> Any:
            if isinstance(_ensure_event_loop(), _uvloop.Loop):
                self.waited_synchronously = True
                if asyncio.iscoroutine(awaitable):
                    awaitable.close()
                raise RuntimeError("a synchronous wait cannot run on uvloop; planning again on asyncio's loop")
            return original(awaitable)

        return waiting


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]):
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_PROGRAM_LOGGER = "agentinfra.program"


def _sync_await_holders(original: Any) -> list[Any]:
    """Every loaded module holding the SDK's ``_sync_await`` by name (the SDK and each provider's utilities)."""
    # Only plain modules: reading an attribute of a lazily imported one (pulumi_aws.<service>) would import it.
    return [m for m in list(sys.modules.values()) if type(m) is ModuleType and vars(m).get("_sync_await") is original]


def _run_program(
    program: Callable[[], None],
    stack: str,
    config: dict[str, str] | None,
    secret_keys: list[str] | None,
    placeholders: bool,
    attempt: _UvloopAttempt | None,
) -> RecordingMonitor:
    from pulumi.runtime import sync_await

    _HINTS_BY_ANNOTATIONS.clear()  # remembered within one plan, where no module changes
    monitor = RecordingMonitor(OfflineMocks(placeholders))
    loop = _uvloop.new_event_loop() if attempt is not None else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="agentinfra-monitor")
    loop.set_default_executor(executor)
    holders: list[Any] = []
    waiting: dict[str, Any] = {}
    if attempt is not None:
        attempt.loop = loop
        loop.set_exception_handler(lambda _, context: attempt.loop_errors.append(context))
        holders = _sync_await_holders(sync_await._sync_await)
        waiting = {"_sync_await": attempt.sync_await(sync_await._sync_await)}
    try:
        pulumi_settings.configure(
            pulumi_mocks.MockSettings(
                monitor=monitor,
                monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
                engine=pulumi_mocks.MockEngine(attempt.logger if attempt else logging.getLogger(_PROGRAM_LOGGER)),
                project=PROJECT,
                stack=stack,
                dry_run=True,
                organization="organization",
                callbacks=None,
            )
        )
        pulumi_settings.ROOT.set(None)
        set_all_config(dict(config or {}), list(secret_keys or []))
        with (
            patched(pulumi_stack, {"wait_for_rpcs": _wait_for_rpcs_linear} if LINEAR_WAIT else {}),
            patched(pulumi_resource, {"_get_stack_trace": _stack_trace} if FAST_STACK_TRACE else {}),
            patched(pulumi_types, {"_raw_return_hints": _raw_return_hints} if FAST_HINTS else {}),
            contextlib.ExitStack() as holding,
        ):
            for module in holders:
                holding.enter_context(patched(module, waiting))
            loop.run_until_complete(run_in_stack(program))
    finally:
        _close_worker_loops(executor)
        loop.close()
        asyncio.set_event_loop(None)
    return monitor


def _manifest(monitor: RecordingMonitor, stack: str, placeholders: bool) -> dict[str, Any]:
    return {
        "schemaVersion": MANIFEST_SCHEMA_VERSION,
        "project": PROJECT,
        "stack": stack,
        "mode": "placeholders" if placeholders else "preview",
        "config": None,
        "resources": [monitor.records[urn] for urn in sorted(monitor.records)],
        "outputs": monitor.stack_outputs,
    }
