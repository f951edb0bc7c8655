"""Directive model: validation, proposals, serialisation."""

from __future__ import annotations

import pytest

from ekkmcp.directives import Directive, directives_to_yaml, load_pack_file
from ekkmcp.errors import InvalidInput


def _never(**extra: object) -> Directive:
    data = {"id": "no-foo", "type": "NEVER", "rule": "Never foo.", "reason": "Foo hurts.", "match": {"keywords": ["foo"]}}
    return Directive.model_validate({**data, **extra})


def test_type_sets_default_action() -> None:
    assert _never().effective_action == "block"
    assert _never(type="AVOID").effective_action == "warn"
    assert _never(action="info").effective_action == "info"
    must = Directive.from_proposal("m", "MUST", "r", "why", keywords=["deploy"], requires_keywords=["--dry-run"])
    assert must.effective_action == "block"


def test_from_proposal_is_proposed_and_flat() -> None:
    d = Directive.from_proposal(
        "no-prod-db", "never", "Never touch prod.", "Prod is sacred.", keywords=["prod-db"], patterns=[r"db\d+\.prod"],
        kinds=["command"], tools=["Bash"], paths=[], project="shop",
    )
    assert d.status == "proposed" and d.type == "NEVER" and d.project == "shop"
    assert d.match.keywords == ["prod-db"] and d.kinds == ["command"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"patterns": ["(unclosed"]}, "invalid regular expression"),
        ({"patterns": ["(a+)+$"]}, "backtrack catastrophically"),
        ({"keywords": []}, "needs keywords"),
        ({"keywords": ["x"], "kinds": ["shell"]}, "kinds"),
    ],
)
def test_from_proposal_rejects_with_helpful_message(kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Directive.from_proposal("bad", "NEVER", "r", "why", **kwargs)
    assert fragment in str(info.value)
    assert "'bad'" in str(info.value)


def test_unknown_type_and_must_without_requires() -> None:
    with pytest.raises(InvalidInput, match="type"):
        Directive.from_proposal("x", "SHOULD", "r", "why", keywords=["a"])
    with pytest.raises(InvalidInput, match="needs 'requires'"):
        Directive.from_proposal("x", "MUST", "r", "why", keywords=["a"])


def test_dict_round_trip() -> None:
    d = Directive.from_proposal("p", "PREFER", "r", "why", keywords=["pytest"], requires_keywords=["uv run"], priority=70)
    data = d.to_dict()
    assert data["status"] == "proposed" and "examples" not in data  # defaults left out
    assert Directive.from_dict(data) == d
    import json

    assert Directive.from_dict(json.loads(json.dumps(data))) == d


def test_from_dict_rejects_garbage() -> None:
    with pytest.raises(InvalidInput):
        Directive.from_dict({"id": "x", "type": "NEVER"})


def test_yaml_export_round_trip(tmp_path) -> None:
    d = _never(examples=[{"block": "foo now"}, {"allow": "food"}], kinds=["command"])
    path = tmp_path / "out.yaml"
    path.write_text(directives_to_yaml([d], pack="mine"))
    [loaded] = load_pack_file(path)
    assert loaded.model_copy(update={"pack": None}) == d.model_copy(update={"pack": None})
    assert loaded.pack == "mine"
    assert "id: no-foo" in d.to_yaml()


def test_example_shorthand() -> None:
    d = _never(examples=[{"block": "foo"}, {"expect": "allow", "action": "bar", "kind": "reply"}])
    assert [(e.expect, e.action) for e in d.examples] == [("block", "foo"), ("allow", "bar")]
