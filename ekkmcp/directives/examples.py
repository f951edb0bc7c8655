"""Running every rule's examples.

All the given directives are compiled into one :class:`Engine` (so the prefilter and the kind
index are exercised exactly as in production), and each example is judged on **its own rule's
outcome**: ``block`` / ``warn`` / ``info`` expect that rule to fire with that action, ``allow``
expects it not to fire. Judging by the overall verdict instead would make one pack's examples
fail because of another pack's rules; cross-pack interplay is what ``ekkmcp check`` shows.

A ``log_only`` rule is judged on what it would do (its mode does not change its examples), and
rules that are not ``active`` (proposed, disabled) are tested too: examples are how a
proposed rule earns activation.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from .engine import Engine
from .model import Directive, Example


class ExampleFailure(BaseModel):
    """An example that its rule decided otherwise."""

    pack: str | None
    directive_id: str
    example: str
    kind: str
    expected: str
    got: str

    def __str__(self) -> str:
        return (
            f"{self.pack or '-'}/{self.directive_id}: expected {self.expected}, got {self.got} "
            f"for {self.kind} {self.example!r}"
        )


def example_kind(directive: Directive, example: Example) -> str:
    """The kind an example is checked as: its own, else the rule's first, else ``other``."""
    return example.kind or (directive.kinds[0] if directive.kinds else "other")


def run_examples(directives: Iterable[Directive]) -> list[ExampleFailure]:
    """Check every example of every directive; return the ones decided otherwise."""
    directives = list(directives)
    testable = [d.model_copy(update={"status": "active", "mode": "enforce"}) for d in directives]
    engine = Engine(testable)
    failures: list[ExampleFailure] = []
    for directive in testable:
        for example in directive.examples:
            kind = example_kind(directive, example)
            result = engine.check(
                example.action,
                kind=kind,
                tool=example.tool,
                paths=example.paths or None,
                project=directive.project,
            )
            own = next((m for m in result.matches if m.directive_id == directive.id), None)
            got = own.action if own else "allow"
            if got != example.expect:
                failures.append(
                    ExampleFailure(
                        pack=directive.pack,
                        directive_id=directive.id,
                        example=example.action,
                        kind=kind,
                        expected=example.expect,
                        got=got,
                    )
                )
    return failures
