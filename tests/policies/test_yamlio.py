"""The fast YAML reader builds exactly what PyYAML's pure-Python safe loader builds, and fails the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from agentinfra_policies.yamlio import safe_load

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    [
        *ROOT.glob("config/*.yaml"),
        *ROOT.glob("policies/agentinfra_policies/catalog/*.yaml"),
        *ROOT.glob("agentinfra/data/*.yaml"),
    ]
)


def test_there_are_shipped_files_to_compare() -> None:
    assert len(SHIPPED) >= 8


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_same_objects_as_the_pure_python_loader(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert safe_load(text) == yaml.safe_load(text)


def test_bad_yaml_reports_the_same_place_as_the_pure_python_loader() -> None:
    """libyaml words some problems differently; where it stopped (what messages show) is the same."""
    text = "config:\n  a: [1, 2\n  b: 3\n"
    with pytest.raises(yaml.YAMLError) as ours:
        safe_load(text)
    with pytest.raises(yaml.YAMLError) as theirs:
        yaml.safe_load(text)
    mine, other = ours.value.problem_mark, theirs.value.problem_mark  # type: ignore[attr-defined]
    assert (mine.line, mine.column) == (other.line, other.column)
    assert ours.value.problem  # type: ignore[attr-defined]


def test_python_specific_tags_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        safe_load("!!python/object/apply:os.system ['true']")
