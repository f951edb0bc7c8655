"""What every use case shares: the store, the configuration, retried write transactions, the ledger."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import anyio

from ekkmcp.config import Config
from ekkmcp.core.ledger import chain
from ekkmcp.core.patterns import iso
from ekkmcp.errors import StoreError
from ekkmcp.store.base import Store

T = TypeVar("T")

WRITE_RETRY_SECONDS = 30.0


class Context:
    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config

    async def write(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` in one write transaction; if the database stays busy, retry the whole of it."""
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                async with self.store.write():
                    return await work()
            except Exception as error:
                if not self.store.is_busy(error):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"the store stayed busy for {WRITE_RETRY_SECONDS:.0f} s (another process holds a long write); "
                        "nothing was written: try again"
                    ) from error
            await anyio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.25)

    async def read(self, work: Callable[[], Awaitable[T]]) -> T:
        async with self.store.read():
            return await work()

    async def log(self, moment: datetime, kind: str, subject: str | None, payload: dict[str, Any]) -> None:
        """Append to the ledger; call only inside ``write`` so the entry commits with the change it records."""
        head = await self.store.ledger_head()
        await self.store.append_ledger(chain(head, iso(moment), kind, subject, payload))
