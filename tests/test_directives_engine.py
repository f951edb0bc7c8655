"""Engine: applicability, verdicts, ordering, input validation, prefilter soundness, bounded regex work."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ekkmcp.directives import Directive, Engine, Matcher
from ekkmcp.directives.engine import _compile
from ekkmcp.errors import InvalidInput


def rule(id: str, type: str = "NEVER", **extra: object) -> Directive:
    data: dict = {"id": id, "type": type, "rule": f"rule {id}", "reason": f"reason {id}", "match": {"keywords": ["deploy"]}}
    data.update(extra)
    return Directive.model_validate(data)


def test_verdict_and_order() -> None:
    engine = Engine([
        rule("warn-low", "AVOID", priority=10),
        rule("block-low", priority=20),
        rule("block-high", priority=90),
        rule("info", "AVOID", action="info", priority=99),
        rule("proj", priority=20, project="shop"),
    ])
    result = engine.check("please deploy now", project="shop")
    assert result.verdict == "block"
    assert [m.directive_id for m in result.matches] == ["block-high", "proj", "block-low", "warn-low", "info"]
    m = result.matches[0]
    assert (m.type, m.action, m.mode, m.priority, m.matched, m.reason) == ("NEVER", "block", "enforce", 90, "deploy", "reason block-high")
    assert m.model_dump()["directive_id"] == "block-high"


def test_info_never_changes_allow_and_log_only_changes_nothing() -> None:
    engine = Engine([rule("i", "AVOID", action="info"), rule("l", mode="log_only")])
    result = engine.check("deploy")
    assert result.verdict == "allow"
    assert {(m.directive_id, m.mode, m.action) for m in result.matches} == {("i", "enforce", "info"), ("l", "log_only", "block")}


def test_applicability_filters() -> None:
    engine = Engine([
        rule("cmd", kinds=["command"]),
        rule("any"),
        rule("bash", tools=["Bash"]),
        rule("mcp", tools=["mcp__*"]),
        rule("py", paths=["*.py"]),
        rule("src", paths=["src/**"]),
        rule("shop", project="shop"),
        rule("off", status="disabled"),
        rule("prop", status="proposed"),
    ])

    def ids(**kw: object) -> set[str]:
        return {m.directive_id for m in engine.check("deploy", **kw).matches}

    assert ids() == {"any"}
    assert ids(kind="command") == {"cmd", "any"}
    assert ids(tool="Bash") == {"any", "bash"}
    assert ids(tool="mcp__github__create_issue") == {"any", "mcp"}
    assert ids(paths=["/work/app/src/pkg/a.py"]) == {"any", "py", "src"}
    assert ids(paths=["README.md"]) == {"any"}
    assert ids(project="shop") == {"any", "shop"}
    assert ids(project="other") == {"any"}
    assert {d.id for d in engine.applicable(kind="reply")} == {"any", "bash", "mcp", "py", "src"}
    assert "shop" in {d.id for d in engine.applicable(project="shop")}


def test_applicable_sorted_by_priority() -> None:
    engine = Engine([rule("a", priority=10), rule("b", priority=80), rule("c", priority=80, project="p")])
    assert [d.id for d in engine.applicable(project="p")] == ["c", "b", "a"]


def test_keywords_are_case_insensitive_word_bounded_phrases() -> None:
    engine = Engine([rule("k", match={"keywords": ["git push", "--no-verify", "c++"]})])
    assert engine.check("GIT   Push origin").verdict == "block"
    assert engine.check("git pushed it").verdict == "allow"
    assert engine.check("digit push").verdict == "allow"
    assert engine.check("commit --no-verify").verdict == "block"
    assert engine.check("I like C++ a lot").verdict == "block"


def test_must_fires_when_trigger_without_requirement() -> None:
    must = rule("dry", "MUST", match={"keywords": ["terraform apply"]}, requires={"keywords": ["-auto-approve=false", "plan.out"]})
    engine = Engine([must])
    assert engine.check("terraform apply").verdict == "block"
    assert engine.check("terraform apply plan.out").verdict == "allow"
    assert engine.check("terraform plan").verdict == "allow"


def test_all_any_none_of() -> None:
    m = {"all_of": [{"keywords": ["alpha"]}, {"any_of": [{"keywords": ["beta"]}, {"patterns": [r"gam+a"]}]}], "none_of": [{"keywords": ["safe"]}]}
    engine = Engine([rule("tree", match=m)])
    assert engine.check("alpha and gammma").verdict == "block"
    assert engine.check("alpha beta").matches[0].matched == "alpha"
    assert engine.check("alpha only").verdict == "allow"
    assert engine.check("alpha beta but safe").verdict == "allow"


def test_matched_span_is_truncated() -> None:
    engine = Engine([rule("long", match={"patterns": [r"x{10,}"]})])
    assert len(engine.check("x" * 500).matches[0].matched) <= 120


def test_input_validation() -> None:
    engine = Engine([rule("a")])
    with pytest.raises(InvalidInput) as info:
        engine.check("deploy", kind="shell")
    assert all(k in str(info.value) for k in ("command", "file_edit", "reply", "tool_call", "other"))
    with pytest.raises(InvalidInput, match="64 KiB"):
        engine.check("a" * (64 * 1024 + 1))
    with pytest.raises(InvalidInput, match="64 KiB"):
        engine.check("é" * (40 * 1024))
    engine.check("a" * (64 * 1024))
    with pytest.raises(InvalidInput):
        engine.check(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        engine.applicable(kind="nope")


def test_pathological_pattern_is_bounded_by_timeout() -> None:
    # bypass validation to simulate a pattern the static check cannot see
    bad = Matcher.model_construct(keywords=[], patterns=[r"(a|aa)+$"], any_of=[], all_of=[], none_of=[])
    d = rule("evil").model_copy(update={"match": bad})
    engine = Engine([d, rule("fine", match={"keywords": ["aaa"]})])
    started = time.perf_counter()
    result = engine.check("aaa " + "a" * 3000 + "!")
    assert time.perf_counter() - started < 2
    assert [m.directive_id for m in result.matches] == ["fine"]
    assert any("timed out" in note for note in result.notes)


WORDS = ["deploy", "git push", "rm", "--force", "main", "prod db", "token", "x"]
PATTERNS = [r"\bAKIA[0-9A-Z]{4}\b", r"rm\s+-rf", r"(?i)drop\s+table", r"\d{3,}", r"(?:ab|cd)ef"]


@st.composite
def matchers(draw: st.DrawFn, depth: int = 0) -> dict:
    m: dict = {}
    if draw(st.booleans()) or depth >= 2:
        m["keywords"] = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=2))
    if draw(st.booleans()):
        m["patterns"] = draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2))
    if depth < 2 and draw(st.booleans()):
        m["all_of"] = draw(st.lists(matchers(depth + 1), min_size=1, max_size=2))
    if depth < 2 and draw(st.booleans()):
        m["any_of"] = draw(st.lists(matchers(depth + 1), min_size=1, max_size=2))
    if depth < 2 and draw(st.booleans()):
        m["none_of"] = draw(st.lists(matchers(depth + 1), min_size=1, max_size=1))
    if not (m.get("keywords") or m.get("patterns") or m.get("all_of") or m.get("any_of")):
        m["keywords"] = ["deploy"]
    return m


@settings(max_examples=150, deadline=None)
@given(
    st.lists(matchers(), min_size=1, max_size=6),
    st.lists(st.sampled_from(WORDS + ["AKIAABCD", "rm  -rf", "DROP TABLE", "12345", "cdef", "Deploy", "safe", " ", "é"]), max_size=12),
)
def test_prefilter_never_hides_a_match(specs: list[dict], parts: list[str]) -> None:
    directives = [rule(f"r{i}", match=spec) for i, spec in enumerate(specs)]
    engine = Engine(directives)
    text = " ".join(parts)
    got = {m.directive_id for m in engine.check(text).matches}
    expected = {d.id for d in directives if _compile(d.match).search(text, []) is not None}
    assert got == expected
