"""Loading packs: shipped, user, project; all-or-nothing validation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ekkmcp.directives import lint, load_directives, load_pack_file, run_examples, shipped_pack_dir
from ekkmcp.errors import DirectiveError

SHIPPED = {"core-safety", "secrets", "disempowerment", "coding-hygiene"}


def _write(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


RULE = """\
pack: {pack}
directives:
  - id: {id}
    type: NEVER
    rule: Never deploy on Friday.
    reason: Weekends.
    match: {{keywords: [deploy friday]}}
    examples: [{{block: deploy friday}}, {{allow: deploy monday}}]
"""


def test_shipped_packs_load_and_their_examples_pass() -> None:
    directives = load_directives(None)
    assert {d.pack for d in directives} == SHIPPED
    failures = run_examples(directives)
    assert failures == [], "\n".join(map(str, failures))
    assert all(len([e for e in d.examples if e.expect == "allow"]) >= 2 for d in directives)


def test_shipped_packs_lint_clean() -> None:
    problems = [p for p in lint(load_directives(None)) if p.level == "error" or "backtrack" in p.message or "no " in p.message]
    assert problems == [], "\n".join(map(str, problems))


def test_shipped_pack_dir_is_the_repo_folder_in_a_checkout() -> None:
    assert {p.stem for p in shipped_pack_dir().glob("*.yaml")} == SHIPPED


def test_user_and_project_packs(tmp_path: Path) -> None:
    _write(tmp_path / "home" / "directives", "mine.yaml", RULE.format(pack="mine", id="no-friday"))
    _write(tmp_path / "proj" / ".ekkmcp" / "directives", "team.yaml", RULE.format(pack="team", id="team-friday"))
    directives = load_directives(tmp_path / "home", tmp_path / "proj", project="shop")
    by_id = {d.id: d for d in directives}
    assert by_id["no-friday"].project is None and by_id["no-friday"].pack == "mine"
    assert by_id["team-friday"].project == "shop"
    default = load_directives(tmp_path / "home", tmp_path / "proj")
    assert {d.id: d for d in default}["team-friday"].project == "proj"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("pack: p\ndirectives:\n  - id: r1\n    type: NEVER\n    rule: x\n    reason: y\n    match: {patterns: ['(']}\n", "invalid regular expression"),
        ("pack: p\ndirectives:\n  - id: r1\n    type: SOMETIMES\n    rule: x\n    reason: y\n    match: {keywords: [a]}\n", "type"),
        ("pack: p\ndirectives:\n  - id: r1\n    type: NEVER\n    rule: x\n    reason: y\n    match: {keyword: [a]}\n", "keyword"),
        ("pack: p\ndirectives:\n  - id: r1\n    type: NEVER\n    rule: x\n    reason: y\n    match: {patterns: ['(a|aa)*$']}\n", "catastrophic"),
        ("pack: p\ndirectives:\n  - id: r1\n    type: NEVER\n    rule: x\n    reason: y\n    match: {patterns: ['(x+x+)+y']}\n", "catastrophic"),
    ],
)
def test_bad_rule_names_file_and_rule(tmp_path: Path, body: str, fragment: str) -> None:
    path = _write(tmp_path, "bad.yaml", body)
    with pytest.raises(DirectiveError) as info:
        load_pack_file(path)
    message = str(info.value)
    assert str(path) in message and "'r1'" in message and fragment in message
    assert info.value.file == str(path) and info.value.rule == "r1"


def test_bad_yaml_and_bad_top_level(tmp_path: Path) -> None:
    with pytest.raises(DirectiveError, match="not valid YAML"):
        load_pack_file(_write(tmp_path, "a.yaml", "pack: [\n"))
    with pytest.raises(DirectiveError, match="directivs"):
        load_pack_file(_write(tmp_path, "b.yaml", "pack: p\ndirectivs: []\n"))


def test_duplicate_ids_across_files_fail_and_nothing_loads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write(home / "directives", "a.yaml", RULE.format(pack="a", id="same"))
    _write(home / "directives", "b.yaml", RULE.format(pack="b", id="same"))
    with pytest.raises(DirectiveError, match="duplicate id"):
        load_directives(home)


def test_user_rule_cannot_reuse_a_shipped_id(tmp_path: Path) -> None:
    _write(tmp_path / "directives", "a.yaml", RULE.format(pack="a", id="rm-rf-root"))
    with pytest.raises(DirectiveError, match="duplicate id"):
        load_directives(tmp_path)


def test_contradiction_same_scope_and_priority(tmp_path: Path) -> None:
    body = """\
    pack: p
    directives:
      - id: never-lease
        type: NEVER
        rule: Never use lease.
        reason: a
        priority: 70
        match: {keywords: [--force-with-lease]}
      - id: must-lease
        type: MUST
        rule: Always lease when force pushing.
        reason: b
        priority: 70
        match: {keywords: [git push --force]}
        requires: {keywords: [--FORCE-WITH-LEASE]}
    """
    path = _write(tmp_path, "c.yaml", body)
    with pytest.raises(DirectiveError, match="contradicts rule 'never-lease'"):
        load_pack_file(path)
    path.write_text(textwrap.dedent(body).replace("priority: 70\n    match: {keywords: [git", "priority: 80\n    match: {keywords: [git"))
    assert len(load_pack_file(path)) == 2


def test_extra_directives_are_validated_together(tmp_path: Path) -> None:
    from ekkmcp.directives import Directive

    extra = Directive.from_proposal("no-friday", "NEVER", "r", "why", keywords=["friday"])
    assert load_directives(None, extra=[extra])[-1].id == "no-friday"
    with pytest.raises(DirectiveError, match="duplicate"):
        load_directives(None, extra=[extra, extra])


def test_x_keys_hold_anchors(tmp_path: Path) -> None:
    body = """\
    pack: p
    x-blocks:
      - &kw {keywords: [alpha]}
    directives:
      - {id: a, type: NEVER, rule: r, reason: y, match: *kw}
    """
    [d] = load_pack_file(_write(tmp_path, "x.yaml", body))
    assert d.match.keywords == ["alpha"]
