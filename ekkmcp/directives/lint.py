"""Lint: advice about rules that load fine but may not behave well (never raises)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import BaseModel

from .model import Directive, Matcher
from .regexes import catastrophic_reason, polynomial_reason

# Words so common in commands, code and prose that a keyword on them alone matches nearly anything.
COMMON_WORDS = frozenset(
    """a an and are as at be but by do for from get go has have he i if in is it me my no not of
    on or run set she so than that the then there they this to up use was we what when which who
    will with you your file files code test tests make new add all any can fix just like now one
    out see some time way yes""".split()
)


class LintProblem(BaseModel):
    """One piece of advice about one rule."""

    pack: str | None
    directive_id: str
    level: Literal["warning", "error"] = "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.pack or '-'}/{self.directive_id}: {self.level}: {self.message}"


def _matchers(matcher: Matcher) -> Iterator[Matcher]:
    yield matcher
    for child in (*matcher.any_of, *matcher.all_of, *matcher.none_of):
        yield from _matchers(child)


def _problems(directive: Directive) -> Iterator[str | tuple[str, str]]:
    if not directive.examples:
        yield "has no examples: add actions it must block/warn on and look-alikes it must allow"
    else:
        if not any(e.expect == "allow" for e in directive.examples):
            yield "has no allow example: add a look-alike it must not flag"
        if all(e.expect == "allow" for e in directive.examples):
            yield "has only allow examples: add one it must flag"
    roots = [directive.match] + ([directive.requires] if directive.requires else [])
    for matcher in (m for root in roots for m in _matchers(root)):
        for keyword in matcher.keywords:
            if keyword.casefold() in COMMON_WORDS:
                yield f"keyword {keyword!r} is a common word and will match almost anything"
            elif len(keyword) < 3:
                yield f"keyword {keyword!r} is very short and will match often"
        for pattern in matcher.patterns:
            reason = catastrophic_reason(pattern)
            if reason:
                yield "error", f"pattern {pattern!r} can backtrack catastrophically ({reason})"
            reason = polynomial_reason(pattern)
            if reason:
                yield f"pattern {pattern!r} may backtrack slowly on long input ({reason})"
    if directive.mode == "log_only" and directive.status == "active":
        yield "is log_only: it reports but changes nothing; switch to enforce once its matches look right"


def lint(directives: Iterable[Directive]) -> list[LintProblem]:
    """Warnings about rules: no examples, no allow example, risky patterns, common-word keywords."""
    problems: list[LintProblem] = []
    for directive in directives:
        for problem in _problems(directive):
            level, message = problem if isinstance(problem, tuple) else ("warning", problem)
            problems.append(
                LintProblem(pack=directive.pack, directive_id=directive.id, level=level, message=message)  # type: ignore[arg-type]
            )
    return problems
