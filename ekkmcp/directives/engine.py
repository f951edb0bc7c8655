"""The check engine: compiled once, then decides actions against every applicable directive.

Speed comes from a prefilter. Each directive's trigger yields a set of casefolded literals one
of which any match must contain (a keyword's longest word, a regex's required literal run, ...).
All literals go into one trie-shaped regular expression, scanned once over the casefolded
action; only directives with a literal present (or with no usable literal at all) are
evaluated in full. Directives are also indexed by kind.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import regex

from ekkmcp.errors import InvalidInput

from .model import KINDS, SEVERITY, CheckResult, Directive, Match, Matcher, truncate
from .regexes import TIMEOUT_SECONDS, best_requirement, keyword_literal, keyword_pattern, required_literals

MAX_ACTION_BYTES = 64 * 1024


class _Timeout(Exception):
    pass


@dataclass
class _Node:
    """A compiled matcher."""

    terms: list[regex.Pattern[str]]
    any_of: list[_Node]
    all_of: list[_Node]
    none_of: list[_Node]
    positive: bool = field(init=False)

    def __post_init__(self) -> None:
        self.positive = bool(self.terms)

    def search(self, text: str, notes: list[str]) -> str | None:
        """The span that made the node match, or None."""
        span: str | None = None
        if self.terms:
            span = _first_hit(self.terms, text, notes)
            if span is None:
                return None
        for child in self.all_of:
            hit = child.search(text, notes)
            if hit is None:
                return None
            span = span if span is not None else hit
        if self.any_of:
            hit = next((h for c in self.any_of if (h := c.search(text, notes)) is not None), None)
            if hit is None:
                return None
            span = span if span is not None else hit
        if any(c.search(text, notes) is not None for c in self.none_of):
            return None
        return span


def _first_hit(patterns: list[regex.Pattern[str]], text: str, notes: list[str]) -> str | None:
    for pattern in patterns:
        try:
            found = pattern.search(text, timeout=TIMEOUT_SECONDS)
        except TimeoutError:
            notes.append(f"pattern {pattern.pattern!r} timed out after {TIMEOUT_SECONDS}s and was skipped")
            continue
        if found:
            return found.group(0)
    return None


def _compile(matcher: Matcher) -> _Node:
    terms: list[regex.Pattern[str]] = []
    if matcher.keywords:
        source = "|".join(keyword_pattern(k) for k in matcher.keywords)
        terms.append(regex.compile(source, regex.IGNORECASE | regex.V0))
    terms.extend(regex.compile(p, regex.V0) for p in matcher.patterns)
    return _Node(
        terms=terms,
        any_of=[_compile(m) for m in matcher.any_of],
        all_of=[_compile(m) for m in matcher.all_of],
        none_of=[_compile(m) for m in matcher.none_of],
    )


def matcher_literals(matcher: Matcher) -> frozenset[str] | None:
    """Casefolded literals one of which must occur for the matcher to match, or None."""
    options: list[frozenset[str]] = []
    term_sets = [frozenset({keyword_literal(k)}) for k in matcher.keywords]
    term_sets += [required_literals(p) for p in matcher.patterns]  # type: ignore[misc]
    if term_sets and all(term_sets):
        options.append(frozenset().union(*term_sets))
    options += [lits for m in matcher.all_of if (lits := matcher_literals(m))]
    if matcher.any_of:
        subs = [matcher_literals(m) for m in matcher.any_of]
        if all(subs):
            options.append(frozenset().union(*subs))  # type: ignore[arg-type]
    return best_requirement(options)


@dataclass
class _Compiled:
    directive: Directive
    trigger: _Node
    requires: _Node | None
    kinds: frozenset[str]
    specificity: int
    path_globs: list[re.Pattern[str]]


def _glob_regex(glob: str) -> re.Pattern[str]:
    """A path glob: ``**`` crosses directories, ``*`` does not; a slash-free glob matches the
    base name, a relative glob with a slash matches any trailing run of path components."""
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    body = "".join(out)
    prefix = "" if glob.startswith("/") else "(?:^|.*/)"
    return re.compile(f"{prefix}{body}$", re.DOTALL)


def _trie_source(literals: Iterable[str]) -> str:
    trie: dict[str, dict] = {}
    for literal in literals:
        node = trie
        for ch in literal:
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict[str, dict]) -> str:
        ends = "" in node
        alts = [re.escape(ch) + render(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if ends:
            return body + "?" if len(alts) == 1 and len(alts[0]) == 1 else "(?:" + body + ")?"
        return body

    return render(trie)


class Engine:
    """Decides actions against a fixed set of directives (compiled once at construction)."""

    def __init__(self, directives: Iterable[Directive]) -> None:
        self.directives: list[Directive] = list(directives)
        self._compiled: list[_Compiled] = []
        literal_index: dict[str, list[int]] = {}
        always: list[int] = []
        for directive in self.directives:
            if directive.status != "active":
                continue
            index = len(self._compiled)
            self._compiled.append(
                _Compiled(
                    directive=directive,
                    trigger=_compile(directive.match),
                    requires=_compile(directive.requires) if directive.requires else None,
                    kinds=frozenset(directive.kinds or KINDS),
                    specificity=1 if directive.project else 0,
                    path_globs=[_glob_regex(g) for g in directive.paths],
                )
            )
            literals = matcher_literals(directive.match)
            if literals is None:
                always.append(index)
            else:
                for literal in literals:
                    literal_index.setdefault(literal, []).append(index)
        self._always: dict[str, list[int]] = {k: [i for i in always if k in self._compiled[i].kinds] for k in KINDS}
        # every literal that is a prefix of another: the trie scan reports only the longest
        self._hits: dict[str, list[int]] = {}
        for literal in literal_index:
            self._hits[literal] = sorted(
                {i for n in range(1, len(literal) + 1) for i in literal_index.get(literal[:n], ())}
            )
        source = _trie_source(literal_index)
        self._scanner = re.compile(f"(?=({source}))", re.DOTALL) if source else None

    def applicable(self, kind: str | None = None, project: str | None = None) -> list[Directive]:
        """Active directives that apply to ``kind`` (any kind if None) and ``project``,
        highest priority first (project rules before global ones at equal priority)."""
        if kind is not None:
            _check_kind(kind)
        chosen = [
            c
            for c in self._compiled
            if (kind is None or kind in c.kinds) and c.directive.project in (None, project)
        ]
        chosen.sort(key=lambda c: (-c.directive.priority, -c.specificity, c.directive.id))
        return [c.directive for c in chosen]

    def check(
        self,
        action: str,
        kind: str = "other",
        tool: str | None = None,
        paths: list[str] | None = None,
        project: str | None = None,
    ) -> CheckResult:
        """Decide an action: ``block`` > ``warn`` > ``allow`` over the enforced matches."""
        _validate(action, kind, tool, paths)
        paths = list(paths or ())
        notes: list[str] = []
        matches: list[tuple[Match, int]] = []
        for index in self._candidates(action, kind):
            compiled = self._compiled[index]
            if not _applies(compiled, tool, paths, project):
                continue
            span = self._fires(compiled, action, notes)
            if span is not None:
                matches.append((_to_match(compiled.directive, span), compiled.specificity))
        matches.sort(key=lambda ms: (-SEVERITY[ms[0].action], -ms[0].priority, -ms[1], ms[0].directive_id))
        ordered = [m for m, _ in matches]
        return CheckResult(verdict=_verdict(ordered), matches=ordered, notes=notes)

    def _candidates(self, action: str, kind: str) -> list[int]:
        found: set[int] = set(self._always[kind])
        if self._scanner is not None:
            hits = self._hits
            for literal in set(self._scanner.findall(action.casefold())):
                found.update(hits[literal])
        compiled = self._compiled
        return sorted(i for i in found if kind in compiled[i].kinds)

    @staticmethod
    def _fires(compiled: _Compiled, action: str, notes: list[str]) -> str | None:
        span = compiled.trigger.search(action, notes)
        if span is None:
            return None
        if compiled.requires is not None and compiled.requires.search(action, notes) is not None:
            return None
        return span


def _applies(compiled: _Compiled, tool: str | None, paths: list[str], project: str | None) -> bool:
    directive = compiled.directive
    if directive.project is not None and directive.project != project:
        return False
    if directive.tools and (tool is None or not any(fnmatch.fnmatchcase(tool, g) for g in directive.tools)):
        return False
    if compiled.path_globs:
        normalised = [p.replace("\\", "/") for p in paths]
        if not any(g.match(p) for g in compiled.path_globs for p in normalised):
            return False
    return True


def _to_match(directive: Directive, span: str) -> Match:
    return Match(
        directive_id=directive.id,
        type=directive.type,
        rule=directive.rule,
        action=directive.effective_action,
        reason=directive.reason,
        matched=truncate(span),
        mode=directive.mode,
        priority=directive.priority,
        pack=directive.pack,
        project=directive.project,
    )


def _verdict(matches: list[Match]) -> str:
    worst = max((SEVERITY[m.action] for m in matches if m.mode == "enforce"), default=0)
    return {3: "block", 2: "warn"}.get(worst, "allow")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")


def _validate(action: object, kind: str, tool: object, paths: object) -> None:
    if not isinstance(action, str):
        raise InvalidInput("action must be a string (the command, edit or reply text to check)")
    _check_kind(kind)
    if len(action) > MAX_ACTION_BYTES or (len(action) * 4 > MAX_ACTION_BYTES and len(action.encode("utf-8", "surrogatepass")) > MAX_ACTION_BYTES):
        raise InvalidInput(f"action is larger than the {MAX_ACTION_BYTES // 1024} KiB cap; check a smaller piece")
    if tool is not None and not isinstance(tool, str):
        raise InvalidInput("tool must be a tool name string or omitted")
    if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
        raise InvalidInput("paths must be a list of path strings")
