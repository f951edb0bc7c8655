"""Config entries for MCP clients, and a merge that keeps every other server and a backup."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ekkmcp.errors import InvalidInput

CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")


def server_entry(env: dict[str, str], *, vscode: bool = False) -> dict[str, Any]:
    """Run with this very interpreter: clients often start servers with a bare PATH."""
    entry: dict[str, Any] = {"command": sys.executable, "args": ["-m", "ekkmcp", "serve"], "env": env}
    return {"type": "stdio", **entry} if vscode else entry


PROJECT_FILES = ("claude-code", "vscode")  # their config lives in the project, often committed


def has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return True


def server_env(home: Path, database_url: str | None = None, namespace: str = "default", *,
               keep_password: bool = True) -> dict[str, str]:
    """The environment a client must give the server: the store, or the shared database and namespace.

    A database URL holding a password is left out where ``keep_password`` is false (project files
    that are often committed): the server then reads ``EKKMCP_DATABASE_URL`` from its environment.
    """
    env = {"EKKMCP_HOME": str(home)}
    if database_url and (keep_password or not has_password(database_url)):
        env["EKKMCP_DATABASE_URL"] = database_url
        if namespace != "default":
            env["EKKMCP_NAMESPACE"] = namespace
    return env


HOOKED_TOOLS = "Bash|Write|Edit|MultiEdit|NotebookEdit"


def claude_code_hooks(home: Path) -> dict[str, Any]:
    """The ``.claude/settings.json`` entry that lets ekkmcp block tool calls in Claude Code."""
    command = " ".join(shlex.quote(part) for part in (sys.executable, "-m", "ekkmcp", "--home", str(home),
                                                      "hook", "claude-code"))
    entry = {"type": "command", "command": command, "timeout": 30}
    return {"hooks": {"PreToolUse": [{"matcher": HOOKED_TOOLS, "hooks": [entry]}],
                      "PostToolUse": [{"matcher": "Bash", "hooks": [entry]}],
                      "PostToolUseFailure": [{"matcher": "Bash", "hooks": [entry]}]}}


def hooks_path(project_dir: Path) -> Path:
    return project_dir / ".claude" / "settings.json"


def config_path(client: str, project_dir: Path) -> Path:
    if client == "claude-desktop":
        if sys.platform == "darwin":
            return Path.home() / "Library/Application Support/Claude/claude_desktop_config.json"
        if sys.platform == "win32":
            return Path(os.environ.get("APPDATA", Path.home())) / "Claude/claude_desktop_config.json"
        return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "Claude/claude_desktop_config.json"
    if client == "claude-code":
        return project_dir / ".mcp.json"
    if client == "cursor":
        return Path.home() / ".cursor/mcp.json"
    if client == "vscode":
        return project_dir / ".vscode/mcp.json"
    raise InvalidInput(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")


def snippet(client: str, env: dict[str, str]) -> dict[str, Any]:
    """The JSON to put in the client's config file."""
    if client not in CLIENTS:
        raise InvalidInput(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")
    key = "servers" if client == "vscode" else "mcpServers"
    return {key: {"ekkmcp": server_entry(env, vscode=client == "vscode")}}


def read_json_object(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{path} is not valid JSON ({error}); fix it by hand, nothing was changed") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} does not hold a JSON object; fix it by hand, nothing was changed")
    return data


def merge(existing: dict[str, Any], addition: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``addition`` into a copy of ``existing``; lists are extended without duplicates."""
    merged = dict(existing)
    for key, value in addition.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        else:
            merged[key] = value
    return merged


def write_merged(path: Path, addition: dict[str, Any]) -> Path | None:
    """Merge into the JSON file at ``path`` atomically; returns the backup's path (None if new)."""
    data = merge(read_json_object(path), addition)
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.bak-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return backup
