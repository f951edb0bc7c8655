"""The ledger's hash chain: each entry's hash covers the previous hash and the entry's canonical JSON.

Changing, removing or reordering any entry changes every hash after it, so a verifier that
recomputes the chain names the first entry that no longer fits. A checkpoint (entry count and
head hash, kept somewhere else) proves later that the log has only grown since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int
    at: str
    kind: str
    subject: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(prev_hash: str, seq: int, at: str, kind: str, subject: str | None, payload: dict[str, Any]) -> str:
    body = canonical_json({"seq": seq, "at": at, "kind": kind, "subject": subject, "payload": payload})
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def chain(prev: LedgerEntry | None, at: str, kind: str, subject: str | None, payload: dict[str, Any]) -> LedgerEntry:
    """The entry that follows ``prev`` (None: the first entry)."""
    seq = prev.seq + 1 if prev else 1
    prev_hash = prev.hash if prev else GENESIS
    return LedgerEntry(seq, at, kind, subject, payload, prev_hash, entry_hash(prev_hash, seq, at, kind, subject, payload))


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def verify(entries: Iterable[LedgerEntry], start: Verification | None = None) -> Verification:
    """Recompute the chain in order; stop at the first entry that does not fit.

    ``start`` (an ok result for the entries before these) continues a verification page by page.
    """
    prev_hash, expected_seq, count = (start.head_hash, start.entries + 1, start.entries) if start else (GENESIS, 1, 0)
    for entry in entries:
        if entry.seq != expected_seq:
            return Verification(False, count, prev_hash, entry.seq, f"expected entry {expected_seq}, found {entry.seq}")
        if entry.prev_hash != prev_hash:
            return Verification(False, count, prev_hash, entry.seq, "its link to the previous entry is broken")
        recomputed = entry_hash(prev_hash, entry.seq, entry.at, entry.kind, entry.subject, entry.payload)
        if recomputed != entry.hash:
            return Verification(False, count, prev_hash, entry.seq, "its content no longer matches its hash")
        prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    return Verification(True, count, prev_hash)
