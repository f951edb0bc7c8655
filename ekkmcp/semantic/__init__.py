"""Hybrid recall, optional: keyword ranking fused with an offline embedding model's nearest neighbours.

``SemanticRecall`` is what the pattern service holds. Without the ``semantic`` extra (or with a
missing or corrupt model) it is inert: ``prepare`` gives no vector, ``fuse`` returns the keyword hits
unchanged, ``mode`` is ``"keyword"`` and ``warning`` says why. With it, the keyword search, the sync
of new vectors and the lookup of patterns found only by meaning share the recall's read transaction. numpy and the
model load lazily, on the first recall of a process (a forge never waits for them), so inspection
commands and server start stay fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ekkmcp.core.patterns import Hit, Pattern, Status

if TYPE_CHECKING:
    from ekkmcp.service.base import Context

REINDEX_BATCH = 512
# Measured (labelled set, and a 10k synthetic store): fusing the 40 nearest reranks more keyword candidates (nDCG@10
# +0.02 at 10k over 15), while reading from the store only the 10 first found by meaning alone costs nothing.
DEPTH = 40
FETCH = 10
CATCH_UP_BATCH = 1000  # patterns forged before the model was loaded, embedded per catch-up (~0.25 s)
CATCH_UP_SECONDS = 60.0  # how often a long-lived process looks for patterns without a vector
SYNC_SECONDS = 1.0  # how often a recall looks for vectors other processes wrote


class SemanticRecall:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._embedder: Any = None
        self._index: Any = None
        self.warning: str | None = None
        self._loaded = False
        self._caught_up_at = -CATCH_UP_SECONDS
        self._synced_at = -SYNC_SECONDS

    # -- state -------------------------------------------------------------------------------

    def _load(self) -> Any:
        """The embedder, or None (after saying why once on stderr)."""
        if not self._loaded:
            from ekkmcp.semantic import embedder

            self._loaded = True
            found = embedder.load(cache=self.ctx.config.home / "models")
            if isinstance(found, embedder.Unavailable):
                self.warning = found.reason
                if embedder.package_dir() is not None:  # installed but unusable: a fault, said once
                    print(f"ekkmcp: {found.reason}", file=sys.stderr)
            else:
                from ekkmcp.semantic.index import VectorIndex

                self._embedder, self._index = found, VectorIndex(found.dim)
        return self._embedder

    def disable(self, reason: str) -> None:
        """Keyword recall only for this process (benchmarks and tests compare the two)."""
        self._loaded, self._embedder, self._index, self.warning = True, None, None, reason

    @property
    def mode(self) -> str:
        return "hybrid" if self._load() is not None else "keyword"

    def status(self) -> dict[str, str | None]:
        """``recall`` and ``recall_warning`` for ``Stats``."""
        return {"recall": self.mode, "recall_warning": self.warning}

    # -- recall ------------------------------------------------------------------------------

    async def prepare(self, query: str) -> Any:
        """The query's vector, or None in keyword mode; call before the recall's read transaction (it may
        load the model, or embed patterns forged without a vector)."""
        model = self._load()
        if model is None:
            return None
        await self._catch_up()
        return model.embed([query])[0]

    async def fuse(self, vector: Any, found: list[Hit], *, project: str | None, tags: Sequence[str],
                   statuses: Sequence[Status], limit: int) -> list[Hit]:
        """The keyword hits ``found`` fused with ``vector``'s nearest patterns (same filters), best first.

        Call inside the recall's read transaction, with ``prepare``'s vector (None: ``found`` unchanged).
        """
        if vector is None:
            return found
        from ekkmcp.semantic.fusion import rrf

        nearest = await self._nearest(vector, found, project=project, tags=tags, statuses=statuses)
        by_id = {h.id: h for h in nearest} | {h.id: h for h in found}
        fused = rrf([h.id for h in found], [h.id for h in nearest])
        return [replace(by_id[pid], relevance=relevance) for pid, relevance in fused[:limit]]

    async def _nearest(self, vector: Any, found: list[Hit], *, project: str | None, tags: Sequence[str],
                       statuses: Sequence[Status]) -> list[Hit]:
        """The ``DEPTH`` nearest patterns that pass the filters, less those below the ``FETCH`` first that are not
        keyword hits; inside a read, after the keyword search."""
        await self._sync()
        hits = self._index.search(vector, project=project, k=DEPTH)
        near = [pid for pid, cosine in hits if cosine >= self._embedder.min_cosine]
        known = {h.id: h for h in found}
        missing = [pid for pid in near[:FETCH] if pid not in known]
        if missing:  # found by meaning only: the store applies the filters the keyword search applied
            known.update((h.id, h) for h in await self.ctx.store.hits(missing, project=project, tags=tags,
                                                                      statuses=statuses))
        return [known[pid] for pid in near if pid in known]

    async def _sync(self) -> None:
        """Read the vectors written since the last sync (by this process or any other).

        At most every ``SYNC_SECONDS`` (each look is a statement on the recall's path), and at once after
        this process saved vectors: another process's new pattern is found by its words at once, and by
        its meaning within the second.
        """
        from ekkmcp.semantic.index import PAGE

        now = time.monotonic()
        if now - self._synced_at < SYNC_SECONDS:
            return
        self._synced_at = now
        while True:
            rows = await self.ctx.store.vectors_page(model=self._embedder.name, after_seq=self._index.after_seq,
                                                     limit=PAGE)
            self._index.add(rows)
            if len(rows) < PAGE:
                return

    # -- writing vectors ---------------------------------------------------------------------

    async def remember(self, pattern: Pattern) -> None:
        """Embed a new pattern and store its vector; a failure here never fails the forge.

        Only once the model is loaded (by a recall): a forge never waits for the model to load. A
        pattern forged before that gets its vector from the next recall's catch-up, or `ekkmcp reindex`.
        """
        try:
            if self._embedder is not None:
                await self._save([pattern])
        except Exception as error:  # noqa: BLE001 - the pattern is stored; `ekkmcp reindex` adds the missing vector later
            print(f"ekkmcp: could not store the vector of {pattern.id} ({error}); run `ekkmcp reindex`",
                  file=sys.stderr)

    async def _catch_up(self) -> None:
        """Embed a few patterns that have no vector yet (forged by a process without the model loaded)."""
        now = time.monotonic()
        if now - self._caught_up_at < CATCH_UP_SECONDS:
            return
        self._caught_up_at = now
        try:
            missing = await self.ctx.read(lambda: self.ctx.store.missing_vectors(model=self._embedder.name,
                                                                               limit=CATCH_UP_BATCH))
            if missing:
                await self._save(missing)
        except Exception as error:  # noqa: BLE001 - a busy store: the next catch-up or `ekkmcp reindex` does it
            print(f"ekkmcp: could not add missing vectors ({error}); run `ekkmcp reindex`", file=sys.stderr)

    async def _save(self, patterns: Sequence[Pattern]) -> None:
        from ekkmcp.semantic.index import encode

        vectors = self._embedder.embed([text(p) for p in patterns])
        items = [(p.id, self._embedder.name, encode(v)) for p, v in zip(patterns, vectors, strict=True)]
        await self.ctx.write(lambda: self.ctx.store.save_vectors(items))
        self._synced_at = -SYNC_SECONDS  # the next recall reads them

    async def reindex(self) -> dict[str, Any]:
        """Embed every pattern that has no vector of the current model; returns what was done."""
        if self._load() is None:
            return {"recall": "keyword", "embedded": 0, "model": None, "warning": self.warning}
        embedded = 0
        while True:
            batch = await self.ctx.read(lambda: self.ctx.store.missing_vectors(model=self._embedder.name,
                                                                             limit=REINDEX_BATCH))
            if not batch:
                break
            await self._save(batch)
            embedded += len(batch)
        return {"recall": "hybrid", "embedded": embedded, "model": self._embedder.name, "warning": None}


def text(pattern: Pattern) -> str:
    """What is embedded: the title and the problem (what a recall query describes), plus the tags."""
    return f"{pattern.title}. {pattern.problem} {' '.join(pattern.tags)}"

