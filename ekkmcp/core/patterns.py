"""Patterns: lessons that worked ("problem → solution"), and the outcomes recorded against them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from ekkmcp.core.loop import Evidence

Status = Literal["active", "quarantined", "retired"]
OutcomeWord = Literal["success", "failure"]
STATUSES: tuple[Status, ...] = ("active", "quarantined", "retired")
OUTCOMES: tuple[OutcomeWord, ...] = ("success", "failure")

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_id(prefix: str, length: int = 10) -> str:
    """A short random id such as ``p_3kq9x2m7ad`` (50 bits: no collisions at millions of rows)."""
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Pattern:
    id: str
    title: str
    problem: str
    solution: str
    content_hash: str
    created_at: str
    updated_at: str
    tags: list[str] = field(default_factory=list)
    works_when: list[str] = field(default_factory=list)
    anti_patterns: list[str] = field(default_factory=list)
    project: str | None = None
    status: Status = "active"
    status_reason: str | None = None
    successes: int = 0
    failures: int = 0
    evidence: Evidence = field(default_factory=Evidence)
    last_note: str | None = None

    @property
    def uses(self) -> int:
        return self.successes + self.failures


@dataclass(slots=True, frozen=True)
class Hit:
    """A pattern found by a search, before its text is read: what ranking it by evidence needs."""

    id: str
    relevance: float
    uses: int
    evidence: Evidence


@dataclass(slots=True)
class Outcome:
    pattern_id: str
    outcome: OutcomeWord
    recorded_at: str
    recorded_ts: float
    weight: float = 1.0
    source: str = "agent"
    recall_id: str | None = None
    note: str | None = None
    uid: str = field(default_factory=lambda: new_id("o", 12))
    id: int | None = None

    @property
    def success(self) -> bool:
        return self.outcome == "success"
