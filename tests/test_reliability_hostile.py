"""Hostile input: random and malicious arguments to every tool over the real protocol.

Each call gets a clear tool error (``isError`` with a message that is more than the SDK's scrubbed
crash text) or a correct answer; never a crash, a hang (every call is bounded by
``reliability.CALL_SECONDS``) or a partial write (row counts are compared around every rejected
call, and the store's invariants are checked at the end).

Tools are read from ``list_tools()`` at run time. ``arguments_for`` gives each known tool's argument
strategies; a tool not in the tables (e.g. a new directive tool) gets hostile values for every
property of its input schema. Add a new tool's entries to the tables in ``arguments_for`` and to
``OUTPUT_MODELS``.
"""

from __future__ import annotations

import queue
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from ekkmcp.config import Config
from ekkmcp.core.models import (
    CheckDecision, DirectiveList, ForgeResult, OutcomeResult, ProposalResult, RecallResult,
)
from ekkmcp.server import build_server
from tests.reliability import (
    RawServer, SyncClient, assert_clear_error, assert_consistent, counts, stdio_params, sync_client, text_of,
)

FTS_AND_SQL = ['"', '""', '"unterminated', "*", "a*", "NEAR(", "NEAR(a b, 2)", "a OR b", "OR", "AND", "NOT",
               "-", "-a", "a - b", "^a", "title:a", "{a b}", "(", ")", "'; DROP TABLE patterns; --",
               "1' OR '1'='1", "%", "_", "\\", "a\\", "/*", "*/", "; SELECT * FROM ledger", "' UNION SELECT 1 --"]
WEIRD = ["", " ", "\t\n", "\x00", "a\x00b", "\ud800", "a\udfffb", "\ufeff", "\u202e", "\U000e0041", "🙂" * 10,
         "x" * 70_000, "é" * 40_000, "a " * 40_000, "\n" * 5000, "null", "[]", "{}", "0", "-1", "true"]


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=50))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
hostile_text = st.one_of(st.sampled_from(WEIRD + FTS_AND_SQL), st.text(max_size=300),
                         st.text(alphabet=st.characters(codec="utf-8"), max_size=100))
deep = st.integers(min_value=1, max_value=120).map(nested)
anything = st.one_of(hostile_text, json_values, deep)
text_arg = st.one_of(hostile_text, hostile_text, anything)
list_arg = st.one_of(st.lists(hostile_text, max_size=40), anything)
optional_text = st.one_of(st.none(), text_arg)
limit_arg = st.one_of(st.integers(min_value=-5, max_value=60), st.sampled_from([2**31, -(2**63), 10**30]),
                      st.floats(allow_nan=False, allow_infinity=False), anything)


def ids(known: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(known), text_arg, st.sampled_from(["p_0000000000", "r_000000000000", "p_ x"]))


def arguments_for(tool: Any, known_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments for ``tool``: plausible ones, plausible ones with one hostile field, or all hostile.

    A tool missing from the tables gets hostile values for each property of its input schema.
    """
    id_arg = ids(known_ids)
    words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=60)
    plausible: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "forge_pattern": {"title": words, "problem": words, "solution": words,
                          "tags": st.lists(st.text(min_size=1, max_size=10), max_size=4)},
        "recall_pattern": {"query": words, "limit": st.integers(min_value=1, max_value=50)},
        "record_outcome": {"pattern_id": st.sampled_from(known_ids[:1]),
                           "outcome": st.sampled_from(["success", "failure"]), "note": words},
        "check_directive": {"action": words, "kind": st.sampled_from(["command", "file_edit", "reply", "tool_call",
                                                                     "other"])},
        "list_directives": {},
        "propose_directive": {"type": st.sampled_from(["MUST", "NEVER", "PREFER", "AVOID"]), "rule": words,
                              "reason": words, "keywords": st.lists(words, min_size=1, max_size=3)},
    }
    hostile: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "forge_pattern": {"title": text_arg, "problem": text_arg, "solution": text_arg, "tags": list_arg,
                          "works_when": list_arg, "anti_patterns": list_arg, "project": optional_text},
        "recall_pattern": {"query": text_arg, "limit": limit_arg, "project": optional_text, "tags": list_arg,
                           "include_quarantined": st.one_of(st.booleans(), anything)},
        "record_outcome": {"pattern_id": id_arg, "outcome": st.one_of(st.sampled_from(["success", "failure"]),
                                                                      text_arg),
                           "recall_id": st.one_of(st.none(), id_arg), "note": optional_text},
        "check_directive": {"action": text_arg, "kind": text_arg, "tool": optional_text, "paths": list_arg,
                            "project": optional_text},
        "list_directives": {"project": optional_text},
        "propose_directive": {"type": text_arg, "rule": text_arg, "reason": text_arg, "keywords": list_arg,
                              "patterns": list_arg, "kinds": list_arg, "tools": list_arg, "paths": list_arg,
                              "project": optional_text, "requires_keywords": list_arg},
        # a new tool: add its plausible and hostile arguments to both tables (else it gets schema-based ones)
    }
    bad = hostile.get(tool.name) or {name: anything for name in tool.input_schema.get("properties", {})}
    good = plausible.get(tool.name, {})
    all_hostile = st.fixed_dictionaries({}, optional=bad)
    extra = st.dictionaries(st.text(max_size=20), anything, max_size=2)
    choices = [all_hostile, st.builds(lambda a, b: {**b, **a}, all_hostile, extra)]
    if tool.name in plausible and bad:
        one_field = st.sampled_from(sorted(bad)).flatmap(lambda key: bad[key].map(lambda value: (key, value)))
        choices += [st.fixed_dictionaries(good),
                    st.builds(lambda base, kv: {**base, kv[0]: kv[1]}, st.fixed_dictionaries(good), one_field)]
    return st.one_of(choices)


OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    "forge_pattern": ForgeResult, "recall_pattern": RecallResult, "record_outcome": OutcomeResult,
    "check_directive": CheckDecision, "list_directives": DirectiveList, "propose_directive": ProposalResult,
}


def check_call(client: SyncClient, db: Path, name: str, arguments: dict[str, Any]) -> str:
    """Call once and check the outcome; returns what happened (for hypothesis' statistics)."""
    before = counts(db)
    try:
        result = client.call_tool(name, arguments)
    except MCPError as error:  # a protocol-level refusal is fine when it says what is wrong
        assert str(error).strip(), f"{name}: empty protocol error"
        assert counts(db) == before
        return "protocol error"
    except ValueError as error:
        # the *client* refused to serialise the request (e.g. nesting deeper than pydantic allows)
        assert "serializ" in str(error).lower(), error
        return "not sendable"
    if result.is_error:
        assert_clear_error(name, result)
        assert counts(db) == before, f"{name} failed but wrote something: {arguments!r:.300}"
        return "tool error"
    assert result.structured_content is not None, f"{name}: a success without structured content"
    model = OUTPUT_MODELS.get(name)
    if model is not None:
        model.model_validate(result.structured_content)
    return "answer"


def has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_surrogate(v) for v in value)
    return False


def run_properties(client: SyncClient, config: Config, examples: int, *, surrogates: bool = True) -> None:
    """``surrogates=False`` over stdio: the SDK client cannot encode a lone surrogate (see the xfail below)."""
    seed = client.call_tool("forge_pattern", {"title": "Seed pattern", "problem": "sqlite database is locked",
                                              "solution": "use WAL and a busy timeout"}).structured_content["id"]
    recall = client.call_tool("recall_pattern", {"query": "sqlite locked"}).structured_content["recall_id"]
    tools = client.tools()
    seen: Counter[str] = Counter()
    assert {"forge_pattern", "recall_pattern", "record_outcome"} <= {t.name for t in tools}

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def one_call(data: st.DataObject) -> None:
        tool = data.draw(st.sampled_from(tools), label="tool")
        arguments = data.draw(arguments_for(tool, [seed, recall]), label="arguments")
        assume(surrogates or not has_surrogate(arguments))
        outcome = check_call(client, config.db_path, tool.name, arguments)
        seen[outcome] += 1
        event(f"{tool.name}: {outcome}")

    one_call()
    print(f"hostile calls: {dict(seen)}")
    assert seen["answer"] >= examples // 20 and seen["tool error"] >= examples // 4, seen  # both paths exercised
    assert not client.call_tool("recall_pattern", {"query": "sqlite locked"}).is_error  # still serving
    assert_consistent(config.db_path)


@pytest.mark.slow
def test_hostile_arguments_in_process_over_json_rpc(config: Config) -> None:
    with sync_client(build_server(config), mode="legacy") as client:
        run_properties(client, config, examples=1000)


@pytest.mark.slow
def test_hostile_arguments_over_real_stdio(home: Path, config: Config) -> None:
    with sync_client(stdio_params(home), mode="legacy") as client:
        run_properties(client, config, examples=200, surrogates=False)


@pytest.mark.parametrize("query", FTS_AND_SQL)
def test_fts_and_sql_syntax_in_a_query_is_searched_as_text(config: Config, query: str) -> None:
    with sync_client(build_server(config), mode="legacy") as client:
        forged = client.call_tool("forge_pattern", {"title": "Drop table or near operator", "problem": "union select",
                                                    "solution": "title ledger patterns"}).structured_content
        result = client.call_tool("recall_pattern", {"query": query, "include_quarantined": True})
        assert not result.is_error, text_of(result)
        found = [p["id"] for p in result.structured_content["patterns"]]
        assert found in ([], [forged["id"]])
    assert counts(config.db_path)["patterns"] == 1


@pytest.mark.parametrize(("name", "arguments", "expected"), [
    ("forge_pattern", {"title": "t", "problem": "p\x00", "solution": "s"}, "NUL"),
    ("forge_pattern", {"title": "t\ud800", "problem": "p", "solution": "s"}, "surrogate"),
    ("forge_pattern", {"title": "t", "problem": "p" * 70_000, "solution": "s"}, "the limit is"),
    ("forge_pattern", {"title": "t", "problem": "p", "solution": "s", "tags": ["x"] * 5 + [str(i) for i in range(40)]},
     "at most"),
    ("forge_pattern", {"title": 5, "problem": "p", "solution": "s"}, "valid string"),
    ("forge_pattern", {"title": "t", "problem": "p", "solution": "s", "tags": nested(30)}, "tags"),
    ("recall_pattern", {"query": nested(50)}, "query"),
    ("recall_pattern", {"query": "x", "limit": "many"}, "limit"),
    ("record_outcome", {"pattern_id": "p_0000000000", "outcome": "success"}, "no pattern"),
    ("record_outcome", {"pattern_id": "'; DROP TABLE patterns; --", "outcome": "success"}, "not an id"),
    ("record_outcome", {"pattern_id": "p_x", "outcome": "maybe"}, "'success', 'failure'"),
    ("no_such_tool", {}, "Unknown tool"),
])
def test_each_kind_of_bad_argument_gets_a_clear_error_and_writes_nothing(
        config: Config, name: str, arguments: dict[str, Any], expected: str) -> None:
    with sync_client(build_server(config), mode="legacy") as client:
        client.call_tool("forge_pattern", {"title": "seed", "problem": "p", "solution": "s"})
        before = counts(config.db_path)
        message = assert_clear_error(name, client.call_tool(name, arguments))
        assert expected in message
        assert counts(config.db_path) == before


def test_hostile_resource_uris_get_a_clear_error(config: Config) -> None:
    with sync_client(build_server(config), mode="legacy") as client:
        for pattern_id in ["p_0000000000", "'%20OR%201=1", "..%2F..%2Fetc%2Fpasswd", "%00", "x" * 5000]:
            with pytest.raises(MCPError) as raised:
                client.read_resource(f"ekkmcp://patterns/{pattern_id}")
            assert str(raised.value).strip()


def test_a_lone_surrogate_escape_over_stdio_gets_an_answer(home: Path) -> None:
    server = RawServer(home)
    try:
        server.handshake()
        server.call_tool("recall_pattern", {"query": "\ud800"})  # json.dumps sends the escape \\ud800
        try:
            answer = server.reply(timeout=5)
        except queue.Empty:
            answer = None
        assert answer is not None and answer.get("id") == 2
    finally:
        server.close()


@pytest.mark.parametrize(("line", "expected"), [
    ('{"q": "\\ud800"}', '{"q": "\\ufffd"}'),
    ('{"q": "\\udc00x"}', '{"q": "\\ufffdx"}'),
    ('{"q": "\\ud83d\\ude00"}', '{"q": "\\ud83d\\ude00"}'),
    ('{"q": "\\\\ud800"}', '{"q": "\\\\ud800"}'),
    ('{"q": "plain"}', '{"q": "plain"}'),
])
def test_lone_surrogate_escapes_are_repaired_before_parsing(line: str, expected: str) -> None:
    from ekkmcp.stdio import repair_lone_surrogates

    assert repair_lone_surrogates(line) == expected
