"""Audit of the ledger: recompute the hash chain, take checkpoints, prove the log only grew since one."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError

from ekkmcp.core.ledger import GENESIS, LedgerEntry, Verification, verify
from ekkmcp.core.models import AuditResult, Checkpoint
from ekkmcp.core.patterns import iso, utc_now
from ekkmcp.errors import InvalidInput
from ekkmcp.service.base import Context

PAGE = 5_000  # entries per read: a million-entry ledger is verified in constant memory
_HASH = re.compile(r"^[0-9a-f]{64}$")


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its JSON text (what ``audit checkpoint --json`` printed)."""
    try:
        data = json.loads(text)
        checkpoint = Checkpoint.model_validate(data)
    except (json.JSONDecodeError, ValidationError) as error:
        raise InvalidInput(
            f"not a checkpoint ({str(error).splitlines()[0]}); pass the JSON that `ekkmcp audit checkpoint --json` "
            'printed, e.g. {"entries": 42, "head_hash": "…", "at": "…"}, or a file holding it'
        ) from None
    if checkpoint.entries < 0 or not _HASH.match(checkpoint.head_hash):
        raise InvalidInput("a checkpoint needs entries ≥ 0 and head_hash of 64 lower-case hex digits")
    return checkpoint


def load_checkpoint(file_or_json: str) -> Checkpoint:
    """``file_or_json`` is either the checkpoint's JSON itself or the path of a file holding it."""
    if file_or_json.lstrip().startswith("{"):
        return parse_checkpoint(file_or_json)
    path = Path(file_or_json).expanduser()
    try:
        return parse_checkpoint(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInput(f"cannot read checkpoint file {path}: {error.strerror or error}; pass the file "
                           "that `ekkmcp audit checkpoint --output FILE` wrote, or the JSON itself") from None


def _describe(entry: LedgerEntry | None, seq: int) -> str:
    if entry is None:
        return f"entry {seq}"
    about = f" on {entry.subject}" if entry.subject else ""
    return f"entry {seq} ({entry.kind}{about}, {entry.at})"


class AuditService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def checkpoint(self) -> Checkpoint:
        """The ledger's size and head hash now: keep it elsewhere, verify against it later."""
        head = await self.ctx.read(self.ctx.store.ledger_head)
        return Checkpoint(entries=head.seq if head else 0, head_hash=head.hash if head else GENESIS,
                          at=iso(utc_now()))

    async def verify(self, checkpoint: Checkpoint | None = None) -> AuditResult:
        """Recompute the whole chain page by page; with a checkpoint, also prove the log only grew since.

        A broken chain is reported (the first entry that does not fit), never repaired.
        """
        result = Verification(True, 0, GENESIS)
        pinned: LedgerEntry | None = None
        bad: LedgerEntry | None = None
        after = 0
        while True:
            page = await self.ctx.read(lambda: self.ctx.store.ledger_entries(after_seq=after, limit=PAGE))
            if not page:
                break
            result = verify(page, result)
            if checkpoint is not None and pinned is None:
                pinned = next((e for e in page if e.seq == checkpoint.entries), None)
            if not result.ok:
                bad = next((e for e in page if e.seq == result.first_bad_seq), None)
                break
            after = page[-1].seq
        if not result.ok:
            assert result.first_bad_seq is not None
            return AuditResult(ok=False, entries=result.entries, head_hash=result.head_hash,
                               first_bad_seq=result.first_bad_seq, checkpoint=checkpoint,
                               problem=f"{_describe(bad, result.first_bad_seq)}: {result.problem}")
        return self._against(result, checkpoint, pinned)

    def _against(self, result: Verification, checkpoint: Checkpoint | None, pinned: LedgerEntry | None) -> AuditResult:
        ok = AuditResult(ok=True, entries=result.entries, head_hash=result.head_hash, checkpoint=checkpoint)
        if checkpoint is None or checkpoint.entries == 0:
            return ok
        if checkpoint.entries > result.entries:
            return ok.model_copy(update={
                "ok": False, "first_bad_seq": result.entries + 1,
                "problem": f"the ledger has {result.entries} entries but the checkpoint of {checkpoint.at} recorded "
                           f"{checkpoint.entries}: entries from {result.entries + 1} on were removed",
            })
        if pinned is None or pinned.hash != checkpoint.head_hash:
            return ok.model_copy(update={
                "ok": False, "first_bad_seq": checkpoint.entries,
                "problem": f"{_describe(pinned, checkpoint.entries)}: its hash differs from the checkpoint of "
                           f"{checkpoint.at}: the history up to it was rewritten since",
            })
        return ok
