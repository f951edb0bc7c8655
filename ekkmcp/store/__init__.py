"""Storage: one interface (``Store``), one implementation per database. All SQL lives here."""

from ekkmcp.store.base import Store

__all__ = ["Store"]
