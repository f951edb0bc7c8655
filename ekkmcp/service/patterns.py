"""Use cases of the pattern memory and the Golden Loop: forge, recall, record outcomes, forget, restore."""

from __future__ import annotations

import functools
from datetime import datetime

import anyio

from ekkmcp.core import loop, validate
from ekkmcp.core.loop import Evidence, LoopSettings
from ekkmcp.core.models import (
    ForgeResult, OutcomeResult, OutcomeView, PatternDetail, PatternRef, PatternSummary, RecalledPattern,
    RecallResult, StatusChange,
)
from ekkmcp.core.patterns import OUTCOMES, STATUSES, Hit, Outcome, Pattern, Status, iso, new_id, utc_now
from ekkmcp.core.text import content_hash, may_hold_secret, terms
from ekkmcp.errors import InvalidInput, NotFound
from ekkmcp.semantic import SemanticRecall
from ekkmcp.service.base import Context

MAX_RECALL = 50
MAX_PAGE = 500
MAX_QUERY_TERMS = 24
SIMILAR_LIMIT = 3
SIMILARITY_THRESHOLD = 0.4
REMEMBER_SECONDS = 2.0  # a new pattern's vector waits no longer for a busy store: catch-up adds it later


def _summary(p: Pattern, settings: LoopSettings, now: float) -> PatternSummary:
    evidence = p.evidence.as_of(now, settings)
    return PatternSummary(
        id=p.id, title=p.title, status=p.status, project=p.project, tags=p.tags,
        success_rate=round(loop.success_rate(evidence, settings), 4),
        confidence=round(loop.confidence(evidence, settings), 4), uses=p.uses, reason=p.status_reason,
        updated_at=p.updated_at,
    )


RECALL_FIELD_CHARS = 2000
RECALL_ITEM_CHARS = 300
RECALL_LIST_ITEMS = 8


def _cut(text: str, limit: int, marker: str) -> str:
    return text if len(text) <= limit else text[:limit] + marker


def _outcome_view(o: Outcome) -> OutcomeView:
    return OutcomeView(pattern_id=o.pattern_id, outcome=o.outcome, source=o.source, weight=o.weight,
                       recall_id=o.recall_id, note=o.note, recorded_at=o.recorded_at)


def _statuses(include_quarantined: bool) -> tuple[Status, ...]:
    return ("active", "quarantined") if include_quarantined else ("active",)


class SecretRedactor:
    """Runs texts through the secrets pack, collecting the kinds it redacted (each once)."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def __call__(self, text: str) -> str:
        if not may_hold_secret(text):
            return text
        from ekkmcp.directives import redact_secrets  # lazy: the rule engine is not needed to start serving

        clean, found = redact_secrets(text)
        self.kinds += [kind for kind in found if kind not in self.kinds]
        return clean

    def each(self, texts: list[str]) -> list[str]:
        return [self(text) for text in texts]


def _query_terms(query: str) -> list[str]:
    found = terms(query) or terms(query, keep_stopwords=True)
    return found[:MAX_QUERY_TERMS]


class PatternService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.config.loop
        self.semantic = SemanticRecall(ctx)

    # -- forge -------------------------------------------------------------------------------

    async def forge(
        self, title: str, problem: str, solution: str, tags: list[str] | None = None,
        works_when: list[str] | None = None, anti_patterns: list[str] | None = None, project: str | None = None,
    ) -> ForgeResult:
        now = utc_now()
        stamp = iso(now)
        redact = SecretRedactor()  # secrets never reach the store: redacted before hashing and writing
        pattern = Pattern(
            id=new_id("p"), title=redact(validate.title(title)), problem=redact(validate.text("problem", problem)),
            solution=redact(validate.text("solution", solution)),
            tags=validate.tags(redact.each(validate.text_list("tags", tags))),
            works_when=redact.each(validate.text_list("works_when", works_when)),
            anti_patterns=redact.each(validate.text_list("anti_patterns", anti_patterns)),
            project=validate.project(project), content_hash="", created_at=stamp, updated_at=stamp,
        )
        pattern.content_hash = content_hash(pattern.title, pattern.problem, pattern.solution)
        from ekkmcp.core.screening import screen  # lazy: its detectors are compiled on the first forge, not at start

        screened = screen({"title": pattern.title, "problem": pattern.problem, "solution": pattern.solution,
                           "tags": "\n".join(pattern.tags), "works_when": "\n".join(pattern.works_when),
                           "anti_patterns": "\n".join(pattern.anti_patterns)})
        if screened.suspicious:
            pattern.status = "quarantined"
            pattern.status_reason = "suspected injection: " + "; ".join(screened.reasons)

        async def work() -> ForgeResult:
            existing = await self.ctx.store.find_duplicate(pattern.content_hash, pattern.project)
            if existing:
                return ForgeResult(id=existing.id, created=False, duplicate_of=existing.id, status=existing.status,
                                   reason=existing.status_reason, redacted=redact.kinds)
            await self.ctx.store.insert_pattern(pattern)
            await self.ctx.log(now, "pattern.created", pattern.id, {
                "title": pattern.title, "project": pattern.project, "content_hash": pattern.content_hash,
                "status": pattern.status,
            })
            if screened.suspicious:
                await self.ctx.log(now, "pattern.quarantined", pattern.id,
                                   {"reason": pattern.status_reason, "automatic": True})
            similar = await self._similar(pattern)
            return ForgeResult(id=pattern.id, created=True, status=pattern.status, reason=pattern.status_reason,
                               similar=similar, redacted=redact.kinds)

        result = await self.ctx.write(work)
        if result.created:  # committed: a cancellation (the tool's timeout) must not make this an error now
            with anyio.CancelScope(shield=True), anyio.move_on_after(REMEMBER_SECONDS):
                await self.semantic.remember(pattern)  # never fails the forge; a missing vector is added later
        return result

    async def _similar(self, pattern: Pattern) -> list[PatternRef]:
        """Distinct patterns that share most of this one's title and problem words."""
        mine = set(terms(f"{pattern.title} {pattern.problem}"))
        if not mine:
            return []
        hits = await self.ctx.store.search(
            list(mine)[:MAX_QUERY_TERMS], project=pattern.project, tags=[], statuses=STATUSES, limit=10
        )
        others = {p.id: p for p in await self.ctx.store.get_patterns([h.id for h in hits if h.id != pattern.id])}
        similar = []
        for other in (others[h.id] for h in hits if h.id in others):
            theirs = set(terms(f"{other.title} {other.problem}"))
            overlap = len(mine & theirs) / len(mine | theirs) if theirs else 0.0
            if overlap >= SIMILARITY_THRESHOLD:
                similar.append(PatternRef(id=other.id, title=other.title))
        return similar[:SIMILAR_LIMIT]

    # -- recall ------------------------------------------------------------------------------

    async def rank(
        self, query: str, *, limit: int = 5, project: str | None = None, tags: list[str] | None = None,
        include_quarantined: bool = False,
    ) -> list[RecalledPattern]:
        """The best patterns for ``query``, relevance weighted by evidence; read-only.

        One read transaction: the search's hits (no text read yet) are ranked by evidence, then only
        the ``limit`` winners' text is read.
        """
        query = validate.text("query", query)
        limit = validate.integer("limit", limit, low=1, high=MAX_RECALL)
        project, wanted_tags = validate.project(project), validate.tags(tags)
        statuses, depth = _statuses(include_quarantined), max(limit * 8, 40)
        query_terms = _query_terms(query)
        meaning = await self.semantic.prepare(query)  # before the transaction: may load the model or embed

        async def work() -> list[RecalledPattern]:
            hits = await self.ctx.store.search(query_terms, project=project, tags=wanted_tags, statuses=statuses,
                                               limit=depth)
            hits = await self.semantic.fuse(meaning, hits, project=project, tags=wanted_tags, statuses=statuses,
                                            limit=depth)
            best = self._best(hits, limit)
            texts = {p.id: p for p in await self.ctx.store.get_patterns([h.id for _, h, _ in best])}
            return [self._recalled(texts[h.id], e, score) for score, h, e in best if h.id in texts]

        return await self.ctx.read(work)

    def _best(self, hits: list[Hit], limit: int) -> list[tuple[float, Hit, Evidence]]:
        """The ``limit`` best hits by relevance (relative to the best) weighted by evidence, with their scores."""
        if not hits:
            return []
        top = max(h.relevance for h in hits) or 1.0
        now = utc_now().timestamp()
        scored = []
        for h in hits:
            evidence = h.evidence.as_of(now, self.settings)
            scored.append((loop.rank_score(max(h.relevance, 1e-9) / top, evidence, self.settings), h, evidence))
        scored.sort(key=lambda item: (-item[0], item[1].uses, item[1].id))
        return scored[:limit]

    def _recalled(self, p: Pattern, evidence: Evidence, score: float) -> RecalledPattern:
        """A recall is a digest: long fields are cut (the full pattern is at ekkmcp://patterns/{id}),
        so one answer stays small in the agent's context whatever was stored."""
        more = f" … [cut; the whole pattern is at ekkmcp://patterns/{p.id}]"
        return RecalledPattern(
            id=p.id, title=p.title, problem=_cut(p.problem, RECALL_FIELD_CHARS, more),
            solution=_cut(p.solution, RECALL_FIELD_CHARS, more), tags=p.tags, status=p.status,
            success_rate=round(loop.success_rate(evidence, self.settings), 4),
            confidence=round(loop.confidence(evidence, self.settings), 4), uses=p.uses, score=round(score, 4),
            works_when=[_cut(w, RECALL_ITEM_CHARS, " …") for w in p.works_when[:RECALL_LIST_ITEMS]],
            anti_patterns=[_cut(a, RECALL_ITEM_CHARS, " …") for a in p.anti_patterns[:RECALL_LIST_ITEMS]],
            project=p.project, last_note=_cut(p.last_note, RECALL_ITEM_CHARS, " …") if p.last_note else None,
        )

    async def recall(
        self, query: str, *, limit: int = 5, project: str | None = None, tags: list[str] | None = None,
        include_quarantined: bool = False,
    ) -> RecallResult:
        """Rank, then persist the recall so an outcome can refer to it later, from any process."""
        found = await self.rank(query, limit=limit, project=project, tags=tags,
                                include_quarantined=include_quarantined)
        now = utc_now()
        recall_id = new_id("r", 12)
        await self.ctx.write(lambda: self.ctx.store.insert_recall(
            recall_id, query=SecretRedactor()(query.strip()), project=validate.project(project), created_at=iso(now),
            created_ts=now.timestamp(), pattern_ids=[p.id for p in found], cwd=self._cwd,
        ))
        return RecallResult(recall_id=recall_id, patterns=found)

    @functools.cached_property
    def _cwd(self) -> str | None:
        """Where the agent works (the server's folder): links a recall to later test runs there."""
        folder = self.ctx.config.project_dir
        return str(folder.resolve()) if folder else None

    # -- outcomes ----------------------------------------------------------------------------

    async def record_outcome(
        self, pattern_id: str, outcome: str, recall_id: str | None = None, note: str | None = None, *,
        source: str = "agent", weight: float = 1.0,
    ) -> OutcomeResult:
        """Record what happened when a pattern was applied; may quarantine it.

        One outcome per pattern per recall: recording again for the same recall replaces the
        earlier outcome (an explicit one always replaces an inferred ``test-run`` one, never the
        reverse). Without a recall id every call adds an outcome.
        """
        pattern_id = validate.identifier("pattern_id", pattern_id)
        word = validate.choice("outcome", outcome, OUTCOMES)
        recall_id = validate.identifier("recall_id", recall_id) if recall_id else None
        note = validate.text("note", note, required=False) or None if note is not None else None
        redact = SecretRedactor()
        note = redact(note) if note else None
        now = utc_now()
        record = Outcome(pattern_id=pattern_id, outcome=word, recorded_at=iso(now),  # type: ignore[arg-type]
                         recorded_ts=now.timestamp(), weight=weight, source=source, recall_id=recall_id, note=note)
        result = await self.ctx.write(lambda: self.record_within(record, now))
        return result.model_copy(update={"redacted": redact.kinds})

    async def record_within(self, record: Outcome, now: datetime) -> OutcomeResult:
        """Record ``record`` inside the caller's write transaction (replacing, quarantining, logging)."""
        store, ts = self.ctx.store, now.timestamp()
        pattern = await self._get(record.pattern_id)
        if record.recall_id:
            await self._check_recall(record.recall_id, pattern.id)
            earlier = await store.find_outcome(record.recall_id, pattern.id)
            if earlier and earlier.source != "test-run" and record.source == "test-run":
                return self._outcome_result(pattern, earlier.outcome, now, quarantined=False)
            if earlier:
                await store.delete_outcome(earlier.uid)
                pattern.evidence = pattern.evidence.minus(earlier.success, earlier.weight, earlier.recorded_ts, ts,
                                                          self.settings)
                pattern.successes -= earlier.success
                pattern.failures -= not earlier.success
        await store.insert_outcome(record)
        pattern.evidence = pattern.evidence.plus(record.success, record.weight, ts, self.settings)
        pattern.successes += record.success
        pattern.failures += not record.success
        pattern.last_note = record.note or pattern.last_note
        pattern.updated_at = iso(now)
        await self.ctx.log(now, "outcome.recorded", pattern.id, {
            "outcome": record.outcome, "recall_id": record.recall_id, "source": record.source,
            "weight": record.weight, "note": record.note, "uid": record.uid,
        })
        reason = loop.quarantine_reason(pattern.evidence, self.settings) if pattern.status == "active" else None
        if reason:
            pattern.status, pattern.status_reason = "quarantined", reason
            await self.ctx.log(now, "pattern.quarantined", pattern.id, {"reason": reason, "automatic": True})
        await store.update_pattern(pattern)
        return self._outcome_result(pattern, record.outcome, now, quarantined=reason is not None)

    async def _check_recall(self, recall_id: str, pattern_id: str) -> None:
        returned = await self.ctx.store.recall_pattern_ids(recall_id)
        if returned is None:
            raise NotFound(f"no recall {recall_id!r}; pass the recall_id that recall_pattern returned, or omit it")
        if pattern_id not in returned:
            listed = ", ".join(returned) or "no patterns"
            raise InvalidInput(f"recall {recall_id} returned {listed}, not {pattern_id}; record the outcome for a "
                               "pattern that recall returned, or omit recall_id")

    def _outcome_result(self, p: Pattern, word: str, now: datetime, *, quarantined: bool) -> OutcomeResult:
        evidence = p.evidence.as_of(now.timestamp(), self.settings)
        return OutcomeResult(
            pattern_id=p.id, outcome=word,  # type: ignore[arg-type]
            success_rate=round(loop.success_rate(evidence, self.settings), 4),
            confidence=round(loop.confidence(evidence, self.settings), 4), uses=p.uses, status=p.status,
            quarantined=quarantined, reason=p.status_reason,
        )

    # -- status changes ----------------------------------------------------------------------

    async def set_status(self, pattern_id: str, status: Status, reason: str | None = None) -> StatusChange:
        """Restore (→ active), quarantine or retire by hand. Nothing is ever deleted.

        Restoring clears the recency-weighted evidence (the outcome history and counts stay), so a
        restored pattern gets a fresh start instead of being re-quarantined by its next failure.
        """
        pattern_id = validate.identifier("pattern_id", pattern_id)
        status = validate.choice("status", status, STATUSES)  # type: ignore[assignment]
        reason = validate.text("reason", reason, max_bytes=4096, required=False) or None if reason else None
        now = utc_now()

        async def work() -> StatusChange:
            pattern = await self._get(pattern_id)
            previous, previous_reason = pattern.status, pattern.status_reason
            if previous == status:
                raise InvalidInput(f"pattern {pattern_id} is already {status}; nothing to do")
            kind = {"active": "pattern.restored", "quarantined": "pattern.quarantined", "retired": "pattern.retired"}
            payload = {"from": previous, "previous_reason": previous_reason, "reason": reason, "automatic": False}
            if status == "active":
                payload["evidence_cleared"] = {"successes": pattern.evidence.successes,
                                               "failures": pattern.evidence.failures}
                pattern.evidence = Evidence()
            pattern.status = status
            pattern.status_reason = None if status == "active" else (reason or f"{status} by the user")
            pattern.updated_at = iso(now)
            await self.ctx.store.update_pattern(pattern)
            await self.ctx.log(now, kind[status], pattern.id, payload)
            return StatusChange(id=pattern.id, status=status, previous_status=previous, reason=pattern.status_reason)

        return await self.ctx.write(work)

    # -- inspection --------------------------------------------------------------------------

    async def _get(self, pattern_id: str) -> Pattern:
        pattern = await self.ctx.store.get_pattern(pattern_id)
        if pattern is None:
            raise NotFound(f"no pattern {pattern_id!r}; find ids with recall_pattern or `ekkmcp patterns list`")
        return pattern

    async def show(self, pattern_id: str) -> PatternDetail:
        pattern_id = validate.identifier("pattern_id", pattern_id)

        async def work() -> PatternDetail:
            p = await self._get(pattern_id)
            recent = await self.ctx.store.list_outcomes(pattern_id=p.id, limit=10, offset=0)
            summary = _summary(p, self.settings, utc_now().timestamp())
            return PatternDetail(
                id=p.id, title=p.title, problem=p.problem, solution=p.solution, tags=p.tags, works_when=p.works_when,
                anti_patterns=p.anti_patterns, project=p.project, status=p.status, reason=p.status_reason,
                success_rate=summary.success_rate, confidence=summary.confidence, uses=p.uses,
                successes=p.successes, failures=p.failures, content_hash=p.content_hash, created_at=p.created_at,
                updated_at=p.updated_at, recent_outcomes=[_outcome_view(o) for o in recent],
            )

        return await self.ctx.read(work)

    async def list(
        self, *, status: str = "active", project: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[PatternSummary]:
        wanted = STATUSES if status == "all" else (validate.choice("status", status, (*STATUSES, "all")),)
        limit = validate.integer("limit", limit, low=1, high=MAX_PAGE)
        offset = validate.integer("offset", offset, low=0, high=10**9)
        project = validate.project(project)
        rows = await self.ctx.read(lambda: self.ctx.store.list_patterns(
            statuses=wanted, project=project, limit=limit, offset=offset))  # type: ignore[arg-type]
        now = utc_now().timestamp()
        return [_summary(p, self.settings, now) for p in rows]

    async def outcomes(self, *, pattern_id: str | None = None, limit: int = 50, offset: int = 0) -> list[OutcomeView]:
        limit = validate.integer("limit", limit, low=1, high=MAX_PAGE)
        offset = validate.integer("offset", offset, low=0, high=10**9)
        if pattern_id:
            pattern_id = validate.identifier("pattern_id", pattern_id)
        rows = await self.ctx.read(lambda: self.ctx.store.list_outcomes(pattern_id=pattern_id, limit=limit,
                                                                        offset=offset))
        return [_outcome_view(o) for o in rows]
