"""ekkmcp: a memory and a rulebook for AI agents that the user owns.

Layout (the architecture is in the folder names):

- ``core/``        pure domain: patterns, the Golden Loop's math, text handling, the ledger's hash chain
- ``directives/``  pure rule engine and YAML pack loading
- ``store/``       the one storage interface and its SQLite implementation (owns all SQL)
- ``service.py``   one method per use case; owns transactions
- ``server.py``    the MCP adapter (stdio)
- ``cli/``         the command-line adapter

Nothing happens at import time: no folders are created and no database is opened.
"""

__version__ = "0.1.0"
