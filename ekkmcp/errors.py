"""The one error tree of ekkmcp.

    EkkError                 base: every message says what was wrong and what to do instead
    ├── InvalidInput         the caller sent something unusable (a tool error / CLI exit 1)
    ├── NotFound             an id that names nothing
    ├── DirectiveError       a directive file or rule that cannot be loaded
    └── StoreError           the store cannot be opened or used
        ├── StoreCorrupt     the database file is damaged: never silently recreated
        └── SchemaTooNew     the file was written by a newer ekkmcp

Adapters translate these in exactly one place each: the MCP server into a tool error
(``isError``), the CLI into a non-zero exit (and an ``{"error": ...}`` object with ``--json``).
"""

from __future__ import annotations


class EkkError(Exception):
    """Base class: ``str(error)`` is a complete, user-facing sentence."""


class InvalidInput(EkkError, ValueError):
    pass


class NotFound(EkkError, LookupError):
    pass


class DirectiveError(EkkError):
    """A directive file or rule failed validation; names the file and the rule."""

    def __init__(self, message: str, *, file: str | None = None, rule: str | None = None) -> None:
        where = ", ".join(part for part in (f"file {file}" if file else "", f"rule {rule!r}" if rule else "") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.rule = rule


class StoreError(EkkError):
    pass


class StoreCorrupt(StoreError):
    pass


class SchemaTooNew(StoreError):
    pass
