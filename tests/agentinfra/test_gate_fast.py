"""The gate's fast path (policies per resource type, conversions done once) changes no result.

``agentinfra.gate`` hands each resource only the policies whose check reads its type and remembers
pulumi-policy's pure conversions; these tests run the same manifests through the plain analyser (one
servicer with the whole pack, nothing remembered) and require identical findings and not-applicable lists,
on the shipped plans and on manifests broken on purpose so that most rules fire or meet unknown values.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from google.protobuf import json_format
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import _DictProxy, _ListProxy, unknown_checking_proxy

from agentinfra import gate

UNKNOWN = {"$unknown": True}


def _evaluate(manifest: dict[str, Any], env: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(gate, "SUBSET_BY_TYPE", fast)
        patch.setattr(gate, "ACCELERATE", fast)
        return gate.evaluate(manifest, gate.load_policy_config(env))


def _comparable(result: Any) -> Any:
    data = result.to_json()
    data["notApplicable"] = sorted((n["policy"], n["reason"]) for n in data["notApplicable"])
    return data


def _broken(manifest: dict[str, Any], mode: str) -> dict[str, Any]:
    """Every resource with alternate inputs dropped and booleans flipped, or every second input unknown."""
    changed = copy.deepcopy(manifest)
    for resource in changed["resources"]:
        inputs = resource.get("inputs", {})
        for index, key in enumerate(sorted(inputs)):
            if mode == "drop" and index % 2 == 1:
                del inputs[key]
            elif mode == "drop" and isinstance(inputs[key], bool):
                inputs[key] = not inputs[key]
            elif mode == "unknown" and index % 2 == 0:
                inputs[key] = dict(UNKNOWN)
        if mode == "drop":
            resource["options"].pop("protect", None)
    return changed


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_shipped_plans_give_the_same_results_either_way(
    plans: dict[str, Any], env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _evaluate(plans[env], env, False, monkeypatch)
    fast = _evaluate(plans[env], env, True, monkeypatch)
    assert _comparable(fast) == _comparable(plain)


@pytest.mark.parametrize("mode", ["drop", "unknown"])
def test_broken_manifests_give_the_same_findings_either_way(
    plans: dict[str, Any], mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _broken(plans["prod"], mode)
    plain = _evaluate(manifest, "prod", False, monkeypatch)
    fast = _evaluate(manifest, "prod", True, monkeypatch)
    assert _comparable(fast) == _comparable(plain)
    # The comparison means something only if the broken manifest makes many rules speak.
    kind = "violation" if mode == "drop" else "unknown"
    assert len({f.rule_id for f in plain.findings if f.kind == kind}) >= 15


def _same_proxy(ours: Any, theirs: Any) -> None:
    for kind in (_DictProxy, _ListProxy):
        assert isinstance(ours, kind) == isinstance(theirs, kind)
    if not isinstance(theirs, (_DictProxy, _ListProxy)):
        assert type(ours) is type(theirs)
    if isinstance(theirs, _DictProxy):
        assert ours._DictProxy__props_acc == theirs._DictProxy__props_acc  # type: ignore[attr-defined]
        assert list(ours["__target"]) == list(theirs["__target"])
        for key in theirs["__target"]:
            _same_proxy(ours["__target"][key], theirs["__target"][key])
    elif isinstance(theirs, _ListProxy):
        assert ours._ListProxy__props_acc == theirs._ListProxy__props_acc  # type: ignore[attr-defined]
        assert len(ours["__target"]) == len(theirs["__target"])
        for mine, other in zip(ours["__target"], theirs["__target"], strict=True):
            _same_proxy(mine, other)
    else:
        assert ours == theirs


def test_the_proxy_is_the_one_pulumi_policy_builds(plans: dict[str, Any]) -> None:
    checked = 0
    for resource in plans["prod"]["resources"]:
        props = deserialize_properties(json_format.MessageToDict(gate._struct(resource.get("inputs", {}))))
        _same_proxy(gate._unknown_checking_proxy(props), unknown_checking_proxy(props))
        checked += 1
    assert checked > 300


def test_unknown_values_still_stop_a_rule_through_the_fast_proxy() -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    proxy = gate._unknown_checking_proxy({"a": [{"b": UNKNOWN_STRING_VALUE}]})
    with pytest.raises(UnknownValueError) as caught:
        _ = proxy["a"][0]["b"]
    assert caught.value.props == ["a", "0", "b"]


def test_the_analyser_is_restored_after_a_run(plans: dict[str, Any]) -> None:
    from pulumi_policy import policy as policy_module

    before = (policy_module.json_format, policy_module.deserialize_properties, policy_module.unknown_checking_proxy)
    gate.evaluate(plans["dev"], gate.load_policy_config("dev"))
    after = (policy_module.json_format, policy_module.deserialize_properties, policy_module.unknown_checking_proxy)
    assert after == before


def test_lazy_proxies_read_like_pulumi_policys_and_never_write_to_the_shared_data() -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    data = {"a": [{"b": 1}, {"c": UNKNOWN_STRING_VALUE}, [2, 3]], "d": {"e": "f"}, "g": 4}
    pristine = copy.deepcopy(data)
    ours, theirs = gate._unknown_checking_proxy(data), unknown_checking_proxy(copy.deepcopy(data))
    assert ours["a"] is ours["a"]  # a child is wrapped once
    assert dict(ours["d"]) == dict(theirs["d"]) == {"e": "f"}
    assert ours["a"][-1][1] == theirs["a"][-1][1] == 3
    for proxy in (ours, theirs):
        with pytest.raises(UnknownValueError) as caught:
            _ = proxy["a"][-2]["c"]
        assert caught.value.props == ["a", "1", "c"]
        with pytest.raises(IndexError):
            _ = proxy["a"][3]
        assert list(proxy) == ["a", "d", "g"] and len(proxy["a"]) == 3
    ours["d"] = {"raw": True}
    assert ours["d"] == {"raw": True} and type(ours["d"]) is dict  # written values come back as written
    ours["a"][0]["b"] = 99
    assert data == pristine  # the deserialised data other policies share is untouched
    _same_proxy(gate._unknown_checking_proxy(data), unknown_checking_proxy(data))


def test_list_keys_that_are_not_plain_ints_read_like_pulumi_policys() -> None:
    """A bool or any __index__ object indexes a list; the child keeps its numeric path and stays a proxy."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    class Index:
        def __index__(self) -> int:
            return 1

    data = {"a": [{"x": 1}, {"y": UNKNOWN_STRING_VALUE}]}
    pristine = copy.deepcopy(data)
    for key in (True, Index()):
        ours, theirs = gate._unknown_checking_proxy(data), unknown_checking_proxy(copy.deepcopy(data))
        messages = []
        for proxy in (ours, theirs):
            child = proxy["a"][key]
            assert isinstance(child, _DictProxy)
            with pytest.raises(UnknownValueError) as caught:
                _ = child["y"]
            messages.append(caught.value.message)
            child["y"] = "written"
        assert messages[0] == messages[1] == "string value at .a.1.y can't be known during preview"
    assert data == pristine


def test_a_lazy_stack_resource_copies_like_a_policy_resource() -> None:
    import copy as copying
    import pickle

    from pulumi_policy.policy import PolicyResource

    built: list[str] = []

    def make(name: str) -> Any:
        built.append(name)
        return {"name": name}

    resource = gate._LazyPolicyResource(
        "aws:s3/bucket:Bucket",
        gate._Deferred(make, "props"),
        "urn:x",
        "x",
        gate._Deferred(make, "opts"),
        None,
        None,
        [],
        {},
    )
    assert isinstance(resource, PolicyResource) and built == []
    clone = copying.copy(resource)
    assert built == ["props", "opts"] and clone.props is resource.props
    clone.props = {"changed": True}
    assert resource.props == {"name": "props"}
    deep = copying.deepcopy(resource)
    assert deep.props == resource.props and deep.props is not resource.props
    assert pickle.loads(pickle.dumps(resource)).opts == {"name": "opts"}
