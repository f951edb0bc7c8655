"""The tamper-evident ledger: triggers, `audit verify` naming the first bad row, checkpoints."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ekkmcp.core.ledger import GENESIS, chain, verify
from ekkmcp.errors import InvalidInput
from ekkmcp.service import Service, audit
from ekkmcp.service.audit import parse_checkpoint
from tests.conftest import cli_json, ekkmcp_cli

pytestmark = pytest.mark.anyio


async def _history(service: Service, failures: int = 4) -> str:
    forged = await service.patterns.forge("SQLite locked", "database is locked", "WAL and busy_timeout")
    for i in range(failures):
        await service.patterns.record_outcome(forged.id, "failure", note=f"attempt {i}")
    return forged.id


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "memory.db", isolation_level=None)


def test_verify_continues_from_an_earlier_page() -> None:
    entries, prev = [], None
    for i in range(5):
        prev = chain(prev, f"2026-01-0{i + 1}T00:00:00.000Z", "test", None, {"i": i})
        entries.append(prev)
    first = verify(entries[:2])
    assert verify(entries[2:], first) == verify(entries)
    assert verify([]).head_hash == GENESIS


async def test_triggers_refuse_update_and_delete(service: Service, home: Path) -> None:
    await _history(service, failures=1)
    db = _db(home)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE ledger SET payload = '{}' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM ledger WHERE seq = 1")
    assert db.execute("SELECT count(*) FROM ledger").fetchone()[0] == 2


async def test_hand_edited_row_is_named(service: Service, home: Path) -> None:
    await _history(service)
    assert cli_json(home, "audit", "verify")["ok"] is True
    db = _db(home)  # an attacker with file access: drop the guard, rewrite one outcome
    db.execute("DROP TRIGGER ledger_no_update")
    db.execute("UPDATE ledger SET payload = replace(payload, '\"failure\"', '\"success\"') WHERE seq = 3")
    db.close()
    result = ekkmcp_cli(home, "audit", "verify", check=False)
    assert result.returncode == 1
    assert "entry 3 (outcome.recorded" in result.stderr and "no longer matches its hash" in result.stderr
    as_json = ekkmcp_cli(home, "audit", "verify", "--json", check=False)
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert (report["ok"], report["first_bad_seq"], report["entries"]) == (False, 3, 2)


async def test_deleted_row_is_named(service: Service, home: Path) -> None:
    await _history(service)
    db = _db(home)
    db.execute("DROP TRIGGER ledger_no_delete")
    db.execute("DELETE FROM ledger WHERE seq = 2")
    db.close()
    result = ekkmcp_cli(home, "audit", "verify", check=False)
    assert result.returncode == 1 and "expected entry 2, found 3" in result.stderr


@pytest.mark.both_backends
async def test_checkpoint_then_growth_verifies(service: Service, home: Path, tmp_path: Path) -> None:
    pattern_id = await _history(service, failures=2)
    saved = tmp_path / "checkpoint.json"
    shown = ekkmcp_cli(home, "audit", "checkpoint", "--output", str(saved))
    assert "head_hash" in shown.stdout and "entries" in shown.stdout
    checkpoint = json.loads(saved.read_text())
    assert checkpoint["entries"] == 3
    await service.patterns.record_outcome(pattern_id, "success")
    await service.patterns.forge("Another", "another problem", "another fix")
    for given in (str(saved), json.dumps(checkpoint)):
        result = cli_json(home, "audit", "verify", "--checkpoint", given)
        assert result["ok"] is True and result["entries"] == 5


async def test_rewritten_history_fails_against_checkpoint(service: Service, home: Path) -> None:
    await _history(service, failures=2)
    checkpoint = (await service.audit.checkpoint()).model_dump()
    db = _db(home)  # rebuild a whole, self-consistent chain that says something else
    rows = db.execute("SELECT seq, at, kind, subject, payload FROM ledger ORDER BY seq").fetchall()
    db.execute("DROP TRIGGER ledger_no_delete")
    db.execute("DELETE FROM ledger")
    prev = None
    for seq, at, kind, subject, payload in rows:
        data = json.loads(payload)
        if kind == "outcome.recorded":
            data["outcome"] = "success"
        prev = chain(prev, at, kind, subject, data)
        db.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (prev.seq, prev.at, prev.kind, prev.subject, json.dumps(prev.payload), prev.prev_hash, prev.hash))
    db.close()
    assert cli_json(home, "audit", "verify")["ok"] is True  # the chain alone cannot tell
    result = ekkmcp_cli(home, "audit", "verify", "--checkpoint", json.dumps(checkpoint), check=False)
    assert result.returncode == 1
    assert "entry 3" in result.stderr and "rewritten" in result.stderr


async def test_removed_tail_fails_against_checkpoint(service: Service, home: Path) -> None:
    await _history(service, failures=3)
    checkpoint = await service.audit.checkpoint()
    db = _db(home)
    db.execute("DROP TRIGGER ledger_no_delete")
    db.execute("DELETE FROM ledger WHERE seq > 2")
    db.close()
    result = await service.audit.verify(checkpoint)
    assert not result.ok and result.first_bad_seq == 3 and "were removed" in (result.problem or "")


async def test_verification_pages_through_the_ledger(service: Service, home: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "PAGE", 2)
    await _history(service, failures=6)
    assert (await service.audit.verify()).entries == 8  # created, 6 outcomes, quarantined
    db = _db(home)
    db.execute("DROP TRIGGER ledger_no_update")
    db.execute("UPDATE ledger SET at = '2020-01-01T00:00:00.000Z' WHERE seq = 6")
    db.close()
    result = await service.audit.verify()
    assert (result.ok, result.first_bad_seq, result.entries) == (False, 6, 5)


@pytest.mark.parametrize("text", ["not json", '{"entries": 3}', '{"entries": 1, "head_hash": "xyz", "at": "now"}'])
def test_bad_checkpoint_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="checkpoint"):
        parse_checkpoint(text)


def test_cli_names_a_missing_checkpoint_file(home: Path, tmp_path: Path) -> None:
    result = ekkmcp_cli(home, "audit", "verify", "--checkpoint", str(tmp_path / "absent.json"), check=False)
    assert result.returncode == 1 and "cannot read checkpoint file" in result.stderr
