"""Export and import of the whole memory as a portable bundle (the format is in ``core.bundle``).

Import is one write transaction: patterns merge by content hash (no duplicates), outcomes are
carried over once by their ``uid``, recalls, decisions, proposals and overrides by their id
(local rows win). Pattern statistics are then replayed from the merged outcomes. Importing the
same bundle twice changes nothing, not even the ledger.

The bundle's ledger is the exporter's history. It is checked and summarised, never spliced
into the local chain (foreign rows would break it and could not be told from local ones):
the import is recorded as ONE local ``import`` entry carrying the bundle's checksum, the
exporter's ledger head and the counts.

The user's directive files travel verbatim. On import a file is written only where no file of
that name exists; a same-named file with different content refuses the whole import (the user
decides which rule set is right), and every file must load together with the existing ones.
Files are written after the transaction commits; if that fails, importing again finishes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ekkmcp import __version__
from ekkmcp.core import bundle as fmt
from ekkmcp.core import loop, validate
from ekkmcp.core.ledger import GENESIS, Verification, verify
from ekkmcp.core.loop import Evidence
from ekkmcp.core.patterns import Outcome, Pattern, iso, new_id, utc_now
from ekkmcp.core.text import content_hash
from ekkmcp.errors import DirectiveError, EkkError, InvalidInput, StoreError
from ekkmcp.service.base import Context

PAGE = 5_000


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def _read_checked(path: Path) -> fmt.Manifest:
    if not path.is_file():
        raise InvalidInput(f"no bundle file {path}; pass the file that `ekkmcp export FILE` wrote")
    return fmt.check(_lines(path))


class Parsed:
    """A checked bundle's records, validated and grouped by kind."""

    def __init__(self, path: Path) -> None:
        self.by_kind: dict[str, list[Any]] = {kind: [] for kind in fmt.KINDS}
        self.ledger = Verification(True, 0, GENESIS)
        chunk: list[Any] = []
        for kind, record in fmt.records(_lines(path)):
            if kind != "ledger":
                self.by_kind[kind].append(record)
                continue
            chunk.append(record.to_entry())  # type: ignore[attr-defined]
            if len(chunk) >= PAGE:
                self._verify(chunk)
                chunk = []
        self._verify(chunk)
        for record in self.by_kind["pattern"]:
            _validate_pattern(record)

    def _verify(self, chunk: list[Any]) -> None:
        if chunk and self.ledger.ok:
            self.ledger = verify(chunk, self.ledger)


def _validate_pattern(r: fmt.PatternRecord) -> None:
    try:
        r.title, r.problem, r.solution = validate.title(r.title), validate.text("problem", r.problem), \
            validate.text("solution", r.solution)
        r.tags, r.project = validate.tags(r.tags), validate.project(r.project)
        r.works_when = validate.text_list("works_when", r.works_when)
        r.anti_patterns = validate.text_list("anti_patterns", r.anti_patterns)
    except InvalidInput as error:
        raise fmt.BundleError(f"damaged bundle: pattern {r.id}: {error}. Nothing was imported.") from None


def _guard(pattern: Pattern) -> None:
    """Foreign content gets what ``forge`` gives: secrets redacted, suspected injections quarantined."""
    from ekkmcp.core.screening import screen
    from ekkmcp.directives import redact_secrets

    pattern.title, pattern.problem, pattern.solution = (
        redact_secrets(pattern.title)[0], redact_secrets(pattern.problem)[0], redact_secrets(pattern.solution)[0])
    pattern.works_when = [redact_secrets(t)[0] for t in pattern.works_when]
    pattern.anti_patterns = [redact_secrets(t)[0] for t in pattern.anti_patterns]
    pattern.content_hash = content_hash(pattern.title, pattern.problem, pattern.solution)
    screened = screen({"title": pattern.title, "problem": pattern.problem, "solution": pattern.solution,
                       "tags": "\n".join(pattern.tags), "works_when": "\n".join(pattern.works_when),
                       "anti_patterns": "\n".join(pattern.anti_patterns)})
    if screened.suspicious and pattern.status == "active":
        pattern.status, pattern.status_reason = "quarantined", "suspected injection: " + "; ".join(screened.reasons)


class BundleService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.config.loop

    # -- export ------------------------------------------------------------------------------

    async def export(self, file: str | Path) -> fmt.ExportResult:
        """Write the whole memory to ``file`` (replaced atomically); one consistent read of the store."""
        path = Path(file).expanduser()
        if path.is_dir():
            raise InvalidInput(f"{path} is a folder; pass a file name such as memory.ekk.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, counts = hashlib.sha256(), Counter[str]()
        fd, body_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".body", dir=path.parent)
        final_name = body_name.removesuffix(".body") + ".tmp"
        try:
            with os.fdopen(fd, "wb") as body:
                def emit(kind: str, record: Any) -> None:
                    raw = fmt.line(kind, record)
                    body.write(raw)
                    digest.update(raw)
                    counts[kind] += 1

                head = await self.ctx.read(lambda: self._dump(emit))
                for record in self._directive_files():
                    emit("directive_file", record)
            manifest = fmt.Manifest(
                created_at=iso(utc_now()), ekkmcp_version=__version__,
                counts={kind: counts.get(kind, 0) for kind in fmt.KINDS},
                ledger_head=head, checksum=f"sha256:{digest.hexdigest()}",
            )
            with open(final_name, "wb") as out, open(body_name, "rb") as body_in:
                out.write(fmt.manifest_line(manifest))
                shutil.copyfileobj(body_in, out)
                out.write(fmt.END_LINE)
            os.replace(final_name, path)
        finally:
            for leftover in (body_name, final_name):
                Path(leftover).unlink(missing_ok=True)
        return fmt.ExportResult(file=str(path), version=manifest.version, checksum=manifest.checksum,
                                counts=manifest.counts, bytes=path.stat().st_size)

    async def _dump(self, emit: Any) -> dict[str, Any]:
        store = self.ctx.store
        resets = await store.evidence_resets()
        after = 0
        while page := await store.patterns_in_order(after_seq=after, limit=PAGE):
            for _, p in page:
                emit("pattern", fmt.PatternRecord(
                    id=p.id, title=p.title, problem=p.problem, solution=p.solution, tags=p.tags,
                    works_when=p.works_when, anti_patterns=p.anti_patterns, project=p.project, status=p.status,
                    status_reason=p.status_reason, content_hash=p.content_hash, created_at=p.created_at,
                    updated_at=p.updated_at, successes=p.successes, failures=p.failures,
                    evidence_successes=p.evidence.successes, evidence_failures=p.evidence.failures,
                    evidence_at=p.evidence.at, last_note=p.last_note, evidence_reset_ts=resets.get(p.id)))
            after = page[-1][0]
        after = 0
        while rows := await store.recalls_in_order(after_rowid=after, limit=PAGE):
            for _, recall in rows:
                emit("recall", fmt.RecallRecord(**recall))
            after = rows[-1][0]
        after = 0
        while outcomes := await store.outcomes_in_order(after_seq=after, limit=PAGE):
            for o in outcomes:
                emit("outcome", fmt.OutcomeRecord(
                    uid=o.uid, pattern_id=o.pattern_id, recall_id=o.recall_id, outcome=o.outcome, weight=o.weight,
                    source=o.source, note=o.note, recorded_at=o.recorded_at, recorded_ts=o.recorded_ts))
            after = outcomes[-1].id or 0
        after = 0
        while decisions := await store.decisions_in_order(after_seq=after, limit=PAGE):
            for _, decision in decisions:
                emit("decision", fmt.DecisionRecord(**decision))
            after = decisions[-1][0]
        state = await store.directive_state()
        for proposal in state["proposals"]:
            emit("directive_proposal", fmt.ProposalRecord(**proposal))
        for override in state["overrides"]:
            emit("directive_override", fmt.OverrideRecord(**override))
        after, head = 0, {"entries": 0, "head_hash": GENESIS}
        while entries := await store.ledger_entries(after_seq=after, limit=PAGE):
            for e in entries:
                emit("ledger", fmt.LedgerRecord(seq=e.seq, at=e.at, kind=e.kind, subject=e.subject,
                                                payload=e.payload, prev_hash=e.prev_hash, hash=e.hash))
            after, head = entries[-1].seq, {"entries": entries[-1].seq, "head_hash": entries[-1].hash}
        return head

    def _directive_files(self) -> list[fmt.DirectiveFileRecord]:
        folder = self.ctx.config.directives_dir
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.glob("*.yaml")):
            if path.is_file() and fmt.DIRECTIVE_FILE_NAME.match(path.name):
                text = path.read_text(encoding="utf-8")
                found.append(fmt.DirectiveFileRecord(name=path.name, text=text, sha256=fmt.sha256_text(text)))
        return found

    # -- import ------------------------------------------------------------------------------

    async def import_bundle(self, file: str | Path) -> fmt.ImportResult:
        """Check the bundle completely (version, end, checksum, counts, every record), then merge it at once."""
        path = Path(file).expanduser()
        manifest = _read_checked(path)
        parsed = Parsed(path)
        to_write = self._plan_directive_files(parsed.by_kind["directive_file"])
        now = utc_now()
        result = await self.ctx.write(lambda: self._merge(parsed, manifest, to_write, now))
        result.file = str(path)
        self._write_directive_files(to_write)
        return result

    def _plan_directive_files(self, records: list[fmt.DirectiveFileRecord]) -> list[fmt.DirectiveFileRecord]:
        folder = self.ctx.config.directives_dir
        wanted, conflicts = [], []
        for record in records:
            if fmt.sha256_text(record.text) != record.sha256:
                raise fmt.BundleError(f"tampered bundle: directive file {record.name} does not match its own "
                                      "checksum. Nothing was imported.")
            target = folder / record.name
            if not target.exists():
                wanted.append(record)
            elif target.read_text(encoding="utf-8") != record.text:
                conflicts.append(record.name)
        if conflicts:
            raise InvalidInput(
                f"directive file(s) {', '.join(conflicts)} already exist in {folder} with different content; "
                "keep one version (rename or remove yours, or edit the bundle's out by exporting again), then "
                "import again. Nothing was imported."
            )
        if wanted:
            self._check_directives_load(wanted)
        return wanted

    def _check_directives_load(self, wanted: list[fmt.DirectiveFileRecord]) -> None:
        from ekkmcp.directives.loader import load_directives

        folder = self.ctx.config.directives_dir
        with tempfile.TemporaryDirectory() as scratch:
            trial = Path(scratch) / "directives"
            if folder.is_dir():
                shutil.copytree(folder, trial)
            trial.mkdir(exist_ok=True)
            for record in wanted:
                (trial / record.name).write_text(record.text, encoding="utf-8")
            try:
                load_directives(Path(scratch))
            except DirectiveError as error:
                message = str(error).replace(scratch, "$EKKMCP_HOME")
                raise InvalidInput(f"the bundle's directive files would not load with yours: {message}; "
                                   "Nothing was imported.") from None

    def _write_directive_files(self, records: list[fmt.DirectiveFileRecord]) -> None:
        folder = self.ctx.config.directives_dir
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            for record in records:
                target = folder / record.name
                if target.exists():
                    continue
                temporary = folder / f".{record.name}.{new_id('t')}.tmp"
                temporary.write_text(record.text, encoding="utf-8")
                os.replace(temporary, target)
        except OSError as error:
            raise StoreError(f"the memory was imported, but directive files could not be written to {folder} "
                             f"({error.strerror or error}); fix that and import again to finish") from None

    async def _merge(self, parsed: Parsed, manifest: fmt.Manifest, files: list[fmt.DirectiveFileRecord],
                     now: datetime) -> fmt.ImportResult:
        merge = _Merge(self.ctx, self.settings, parsed)
        await merge.patterns()
        await merge.recalls()
        await merge.outcomes()
        quarantined = await merge.replay(now)
        store = self.ctx.store
        merge.added["decisions"] = await store.merge_decisions(
            [d.model_dump() for d in parsed.by_kind["decision"]])
        # The rulebook is governed by the user of THIS store: a bundle's proposals arrive as proposals
        # (each must be a valid directive), and its approvals and overrides are never applied here.
        state = await store.merge_directive_state(_proposals_to_review(parsed.by_kind["directive_proposal"]), [])
        merge.added["directive_proposals"], merge.added["directive_overrides"] = state["proposals"], state["overrides"]
        merge.added["directive_files"] = len(files)
        for kind, record_kind in (("decisions", "decision"), ("directive_proposals", "directive_proposal"),
                                  ("directive_overrides", "directive_override")):
            merge.skipped[kind] = len(parsed.by_kind[record_kind]) - merge.added[kind]
        source_ledger = {"entries": parsed.ledger.entries if parsed.ledger.ok else None,
                         "head_hash": manifest.ledger_head.get("head_hash"), "verified": parsed.ledger.ok,
                         "problem": None if parsed.ledger.ok else
                         f"entry {parsed.ledger.first_bad_seq}: {parsed.ledger.problem}"}
        changed = any(merge.added.values()) or bool(quarantined)
        if changed:
            await self.ctx.log(now, "import", None, {
                "source": "ekkmcp-bundle", "checksum": manifest.checksum, "format_version": manifest.version,
                "exported_at": manifest.created_at, "exporter_ledger": source_ledger,
                "added": merge.added, "skipped": merge.skipped, "directive_files": [f.name for f in files],
                "evidence_resets": merge.resets_carried,
            })
        return fmt.ImportResult(source="ekkmcp-bundle", file="", checksum=manifest.checksum, changed=changed,
                                added=merge.added, skipped=merge.skipped, quarantined=quarantined,
                                source_ledger=source_ledger, notes=merge.notes)

    # -- the reference memory server ---------------------------------------------------------

    async def import_reference_memory(self, file: str | Path) -> fmt.ImportResult:
        """Entities of the reference ``memory`` server become global patterns (see ``core.bundle``)."""
        path = Path(file).expanduser()
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput(f"cannot read {path} as UTF-8 text ({error}); pass the reference memory server's "
                               "memory.json") from None
        entities, relations = fmt.parse_reference_memory(text)
        checksum = f"sha256:{hashlib.sha256(raw).hexdigest()}"
        empty = [e.name for e in entities if not any(o.strip() for o in e.observations)]
        fields = []
        for entity in entities:
            if entity.name in empty:
                continue
            try:
                fields.append(fmt.reference_pattern_fields(entity, relations))
            except EkkError as error:
                raise InvalidInput(f"entity {entity.name!r}: {error}") from None
        now = utc_now()

        async def work() -> fmt.ImportResult:
            added = 0
            for item in fields:
                added += await self._insert_reference(item, now)
            result = fmt.ImportResult(
                source="reference-memory", file=str(path), checksum=checksum, changed=added > 0,
                added={"patterns": added}, skipped={"patterns": len(fields) - added, "entities_without_observations":
                                                     len(empty)},
                notes=[f"{len(relations)} relations kept as works_when of their source entity"] if relations else [],
            )
            if added:
                await self.ctx.log(now, "import", None, {
                    "source": "reference-memory", "checksum": checksum, "file": path.name, "added": result.added,
                    "skipped": result.skipped, "relations": len(relations),
                    "relations_dropped": sum(f["relations_dropped"] for f in fields),
                })
            return result

        return await self.ctx.write(work)

    async def _insert_reference(self, item: dict[str, Any], now: datetime) -> int:
        stamp = iso(now)
        pattern = Pattern(id=new_id("p"), title=item["title"], problem=item["problem"], solution=item["solution"],
                          tags=item["tags"], works_when=item["works_when"], content_hash="", created_at=stamp,
                          updated_at=stamp)
        _guard(pattern)
        if await self.ctx.store.find_duplicate(pattern.content_hash, None):
            return 0
        await self.ctx.store.insert_pattern(pattern)
        return 1


class _Merge:
    """The steps of merging one parsed bundle, inside the import's write transaction."""

    def __init__(self, ctx: Context, settings: loop.LoopSettings, parsed: Parsed) -> None:
        self.store, self.ctx, self.settings, self.parsed = ctx.store, ctx, settings, parsed
        self.ids: dict[str, str] = {}  # bundle pattern id → local pattern id
        self.new: dict[str, Pattern] = {}
        self.resets: dict[str, float] = {}
        self.resets_carried: dict[str, float] = {}
        self.touched: dict[str, list[Outcome]] = {}
        self.removed: set[str] = set()
        self.added: dict[str, int] = {}
        self.skipped: dict[str, int] = {}
        self.notes: list[str] = []

    async def patterns(self) -> None:
        self.resets = await self.store.evidence_resets()
        records: list[fmt.PatternRecord] = self.parsed.by_kind["pattern"]
        for r in records:
            pattern = Pattern(
                id=r.id, title=r.title, problem=r.problem, solution=r.solution, content_hash="",
                created_at=r.created_at, updated_at=r.updated_at, tags=r.tags, works_when=r.works_when,
                anti_patterns=r.anti_patterns, project=r.project, status=r.status, status_reason=r.status_reason,
                successes=r.successes, failures=r.failures, last_note=r.last_note,
                evidence=Evidence(r.evidence_successes, r.evidence_failures, r.evidence_at),
            )
            _guard(pattern)  # also (re)computes the content hash: merging is by content, never by id
            existing = await self.store.find_duplicate(pattern.content_hash, r.project)
            if existing is not None:
                self.ids[r.id] = existing.id
                if r.evidence_reset_ts and r.evidence_reset_ts > self.resets.get(existing.id, 0.0):
                    self.resets[existing.id] = self.resets_carried[existing.id] = r.evidence_reset_ts
                continue
            local_id = pattern.id = r.id if await self.store.get_pattern(r.id) is None else new_id("p")
            await self.store.insert_pattern(pattern)
            self.ids[r.id], self.new[local_id] = local_id, pattern
            if r.evidence_reset_ts:
                self.resets[local_id] = self.resets_carried[local_id] = r.evidence_reset_ts
        self.added["patterns"] = len(self.new)
        self.skipped["patterns"] = len(records) - len(self.new)

    async def recalls(self) -> None:
        records: list[fmt.RecallRecord] = self.parsed.by_kind["recall"]
        rows = [{**r.model_dump(), "pattern_ids": [self.ids.get(p, p) for p in r.pattern_ids]} for r in records]
        self.added["recalls"] = await self.store.merge_recalls(rows)
        self.skipped["recalls"] = len(records) - self.added["recalls"]

    async def outcomes(self) -> None:
        records: list[fmt.OutcomeRecord] = self.parsed.by_kind["outcome"]
        present = await self.store.existing_outcome_uids([r.uid for r in records])
        incoming: dict[str, Outcome] = {}
        for r in records:
            if r.uid in present or r.uid in incoming:
                continue
            if r.pattern_id not in self.ids:
                raise fmt.BundleError(f"damaged bundle: outcome {r.uid} is for pattern {r.pattern_id}, which the "
                                      "bundle does not hold. Nothing was imported.")
            incoming[r.uid] = r.to_outcome(self.ids[r.pattern_id])
        superseded = 0
        for o in sorted(incoming.values(), key=lambda o: (o.recorded_ts, o.uid)):
            superseded += await self._take(o)
        kept = sorted((o for outcomes in self.touched.values() for o in outcomes if o.id is None),
                      key=lambda o: (o.recorded_ts, o.uid))
        await self.store.insert_outcomes(kept)
        self.added["outcomes"] = len(kept)
        self.skipped["outcomes"] = len(records) - len(kept)
        if superseded:
            self.notes.append(f"{superseded} outcome(s) replaced by a later one for the same recall and pattern")

    async def _take(self, incoming: Outcome) -> int:
        """Queue ``incoming`` unless the pattern already has the outcome the loop keeps for that recall."""
        pid = incoming.pattern_id
        if pid not in self.touched:
            self.touched[pid] = [] if pid in self.new else await self.store.list_outcomes(
                pattern_id=pid, limit=-1, offset=0)
        current = self.touched[pid]
        rival = next((o for o in current if incoming.recall_id and o.recall_id == incoming.recall_id), None)
        if rival is None:
            current.append(incoming)
            return 0
        if fmt.winner(rival, incoming) is rival:
            return 1
        current.remove(rival)
        if rival.id is not None:  # stored here: the later outcome replaces it, as record_outcome would
            await self.store.delete_outcome(rival.uid)
        current.append(incoming)
        return 1

    async def replay(self, now: datetime) -> list[str]:
        """Recompute every touched pattern from its merged outcomes; quarantine what the loop would."""
        quarantined = []
        for pid, outcomes in self.touched.items():
            pattern = self.new.get(pid) or await self.store.get_pattern(pid)
            assert pattern is not None
            pattern.successes, pattern.failures, pattern.evidence = fmt.replay(
                outcomes, self.resets.get(pid), self.settings)
            if pid not in self.new:
                latest = max(outcomes, key=lambda o: o.recorded_ts)
                noted = [o for o in outcomes if o.note]
                pattern.last_note = max(noted, key=lambda o: o.recorded_ts).note if noted else pattern.last_note
                pattern.updated_at = max(pattern.updated_at, latest.recorded_at)
                reason = loop.quarantine_reason(pattern.evidence, self.settings) if pattern.status == "active" else None
                if reason:
                    pattern.status, pattern.status_reason = "quarantined", reason
                    await self.ctx.log(now, "pattern.quarantined", pid, {"reason": reason, "automatic": True,
                                                                         "via": "import"})
                    quarantined.append(pid)
            await self.store.update_pattern(pattern)
        return quarantined


def _proposals_to_review(records: list[Any]) -> list[dict[str, Any]]:
    """A bundle's directive proposals, each checked and reset to ``proposed`` for the local user to decide."""
    from ekkmcp.directives import Directive

    rows = []
    for record in records:
        row = record.model_dump()
        body = row["body"] if isinstance(row["body"], dict) else json.loads(row["body"])
        try:
            Directive.from_dict({**body, "status": "proposed"})
        except InvalidInput as error:
            raise InvalidInput(f"the bundle's directive proposal {row['id']!r} is not a valid directive ({error}); "
                               "nothing was imported") from None
        rows.append({**row, "status": "proposed", "decided_at": None})
    return rows
