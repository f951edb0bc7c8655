"""The command line, run as a user would (a real ``ekkmcp`` process), mostly with ``--json``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child_env, cli_json, ekkmcp_cli


def seed(home: Path) -> None:
    """Put a few patterns and outcomes in the store through the service, as an agent would."""
    import asyncio

    from ekkmcp.config import load_config
    from ekkmcp.service import Service

    async def work() -> None:
        async with Service.for_config(load_config(home)) as service:
            ok = await service.patterns.forge("Pin the node version", "CI breaks on a new node release",
                                              "Pin node in .nvmrc", tags=["node", "ci"])
            bad = await service.patterns.forge("Clear the cache", "CI breaks on a new node release",
                                               "Delete node_modules", project="web")
            await service.patterns.record_outcome(ok.id, "success", note="green again")
            for _ in range(5):
                await service.patterns.record_outcome(bad.id, "failure")

    asyncio.run(work())


def test_listings_are_json_with_the_tools_field_names(home: Path) -> None:
    seed(home)
    active = cli_json(home, "patterns", "list")
    assert [p["title"] for p in active] == ["Pin the node version"]
    assert set(active[0]) >= {"id", "title", "status", "success_rate", "confidence", "uses", "reason", "tags"}
    quarantined = cli_json(home, "patterns", "list", "--status", "quarantined")
    assert quarantined[0]["reason"].startswith("keeps failing")
    assert len(cli_json(home, "patterns", "list", "--status", "all")) == 2
    assert cli_json(home, "patterns", "list", "--project", "web", "--status", "all")[0]["title"] == "Clear the cache"
    shown = cli_json(home, "patterns", "show", active[0]["id"])
    assert shown["recent_outcomes"][0]["note"] == "green again"
    found = cli_json(home, "patterns", "search", "node release ci")
    assert found[0]["id"] == active[0]["id"] and "score" in found[0]
    assert len(cli_json(home, "outcomes", "list")) == 6
    assert len(cli_json(home, "outcomes", "list", "--pattern", active[0]["id"])) == 1
    stats = cli_json(home, "stats")
    assert stats["patterns"] == {"active": 1, "quarantined": 1, "retired": 0} and stats["outcomes"] == 6


def test_paging_is_bounded(home: Path) -> None:
    seed(home)
    assert len(cli_json(home, "patterns", "list", "--status", "all", "--limit", "1")) == 1
    assert len(cli_json(home, "patterns", "list", "--status", "all", "--limit", "1", "--offset", "1")) == 1
    result = ekkmcp_cli(home, "patterns", "list", "--limit", "100000", "--json", check=False)
    assert result.returncode == 1 and "limit must be from 1 to 500" in json.loads(result.stdout)["error"]


def test_restore_retire_and_errors(home: Path) -> None:
    seed(home)
    [bad] = cli_json(home, "patterns", "list", "--status", "quarantined")
    change = cli_json(home, "patterns", "restore", bad["id"])
    assert (change["previous_status"], change["status"]) == ("quarantined", "active")
    cli_json(home, "patterns", "retire", bad["id"], "--reason", "obsolete")
    assert cli_json(home, "patterns", "list", "--status", "retired")[0]["reason"] == "obsolete"
    missing = ekkmcp_cli(home, "patterns", "show", "p_nope", check=False)
    assert missing.returncode == 1 and "no pattern 'p_nope'" in missing.stderr


def test_inspection_does_not_import_the_mcp_sdk(home: Path) -> None:
    code = ("import sys; from ekkmcp.cli.main import cli\n"
            "try:\n    cli(['stats', '--json'], standalone_mode=False)\nfinally:\n"
            "    assert not [m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')], 'mcp imported'\n")
    result = subprocess.run([sys.executable, "-c", code], env=child_env(home), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_corrupt_store_stops_with_a_clear_message(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "memory.db").write_bytes(b"garbage" * 1000)
    result = ekkmcp_cli(home, "stats", check=False)
    assert result.returncode == 1 and "not a readable ekkmcp store" in result.stderr
    assert (home / "memory.db").read_bytes() == b"garbage" * 1000


def test_serve_refuses_a_corrupt_store_and_exits(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "memory.db").write_bytes(b"garbage" * 1000)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "ekkmcp", "serve"], env=child_env(home), input="",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "not a readable ekkmcp store" in result.stderr
    assert result.stdout == "" and time.monotonic() - started < 30


@pytest.mark.parametrize("client", ["claude-desktop", "cursor", "claude-code", "vscode"])
def test_init_prints_a_config_entry(home: Path, client: str) -> None:
    out = ekkmcp_cli(home, "init", "--client", client).stdout
    first = json.loads(out[: out.index("\n}") + 2])
    servers = first["servers" if client == "vscode" else "mcpServers"]
    assert servers["ekkmcp"]["args"] == ["-m", "ekkmcp", "serve"]
    assert servers["ekkmcp"]["env"]["EKKMCP_HOME"] == str(home)


def test_init_write_merges_keeps_other_servers_and_a_backup(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"other": {"command": "other-server"}}}))
    (project / ".claude" / "settings.json").write_text(json.dumps(
        {"permissions": {"allow": ["Bash(ls:*)"]}, "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [
            {"type": "command", "command": "my-own-hook"}]}]}}))
    for _ in range(2):  # running it again changes nothing more
        ekkmcp_cli(home, "init", "--client", "claude-code", "--write", "--project-dir", str(project))
    servers = json.loads((project / ".mcp.json").read_text())["mcpServers"]
    assert set(servers) == {"other", "ekkmcp"}
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    assert settings["permissions"] == {"allow": ["Bash(ls:*)"]}
    commands = [h["command"] for entry in settings["hooks"]["PreToolUse"] for h in entry["hooks"]]
    assert commands[0] == "my-own-hook" and len(commands) == 2 and commands[1].endswith("hook claude-code")
    assert list(project.glob(".mcp.json.bak-*")) and list((project / ".claude").glob("settings.json.bak-*"))


def test_init_refuses_to_touch_an_invalid_config(home: Path, tmp_path: Path) -> None:
    (tmp_path / ".mcp.json").write_text("{not json")
    result = ekkmcp_cli(home, "init", "--client", "claude-code", "--write", "--project-dir", str(tmp_path),
                        check=False)
    assert result.returncode == 1 and "not valid JSON" in result.stderr
    assert (tmp_path / ".mcp.json").read_text() == "{not json"


def test_init_carries_the_shared_database_and_namespace(home: Path) -> None:
    env = child_env(home, EKKMCP_DATABASE_URL="postgresql://ekk@db.example.com/ekkmcp", EKKMCP_NAMESPACE="team-a")
    out = ekkmcp_cli(home, "init", "--client", "cursor", env=env).stdout
    server_env = json.loads(out)["mcpServers"]["ekkmcp"]["env"]
    assert server_env == {"EKKMCP_HOME": str(home), "EKKMCP_DATABASE_URL": "postgresql://ekk@db.example.com/ekkmcp",
                          "EKKMCP_NAMESPACE": "team-a"}


def test_init_keeps_a_database_password_out_of_project_files(home: Path, tmp_path: Path) -> None:
    env = child_env(home, EKKMCP_DATABASE_URL="postgresql://ekk:S3cretPW@db.example.com/ekkmcp")
    result = ekkmcp_cli(home, "init", "--client", "claude-code", "--write", "--project-dir", str(tmp_path), env=env)
    assert "S3cretPW" not in (tmp_path / ".mcp.json").read_text() and "export EKKMCP_DATABASE_URL" in result.stderr
    desktop = ekkmcp_cli(home, "init", "--client", "cursor", env=env).stdout
    assert "S3cretPW" in desktop  # a user-level file outside any repository keeps the whole URL


def test_every_command_is_documented_in_the_readme() -> None:
    import click

    from ekkmcp.cli.main import cli

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = []
    for name, command in cli.commands.items():
        subcommands = command.commands if isinstance(command, click.Group) else {}
        if not subcommands and f"ekkmcp {name}" not in readme and f"{name} " not in readme:
            missing.append(name)
        missing += [f"{name} {sub}" for sub in subcommands if sub not in readme]
    assert missing == []
