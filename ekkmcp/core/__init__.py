"""The pure core: no SQL, no MCP, no CLI in here."""
