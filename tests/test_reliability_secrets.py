"""Secrets are never stored: pattern fields, outcome notes and recall queries pass through the secrets pack.

The fake secrets are assembled from pieces so that secret scanners do not flag this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ekkmcp.config import Config
from ekkmcp.server import build_server
from ekkmcp.service import Service
from tests.reliability import connect, ledger, sync_client

pytestmark = pytest.mark.anyio

AWS_KEY = "AKIA" + "Z7Q3XKM2L5PJ4R8T"
GITHUB_TOKEN = "ghp" + "_R4nd0mFakeT0kenValue0123456789abcdef"
STRIPE_KEY = "sk" + "_live_FAKE0123456789abcdefABCDEF"
PASSWORD = "Xk9vTq2mP"
DB_URL = f"postgres://app:{PASSWORD}@db.internal:5432/app"
SLACK = "xox" + "b-2048-1234567890-AbCdEfGhIjKlMnOp"
SECRETS = [AWS_KEY, GITHUB_TOKEN, STRIPE_KEY, PASSWORD, SLACK]


def stored_bytes(config: Config) -> bytes:
    """Every byte ekkmcp has written: the database, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(config.home.iterdir()) if p.is_file())


def assert_nowhere(config: Config, *secrets: str) -> None:
    raw = stored_bytes(config)
    for secret in secrets:
        assert secret.encode() not in raw, f"{secret[:6]}… reached the store"


async def test_secrets_in_every_pattern_field_are_redacted_before_writing(service: Service, config: Config) -> None:
    result = await service.patterns.forge(
        f"Deploy with key {AWS_KEY}", f"git push fails; token {GITHUB_TOKEN} expired",
        f"Set stripe.api_key = \"{STRIPE_KEY}\" and connect with psql \"{DB_URL}\"",
        tags=["deploy", AWS_KEY], works_when=[f"SLACK_BOT_TOKEN={SLACK}"],
        anti_patterns=[f"committing {GITHUB_TOKEN}"])
    assert result.created
    assert set(result.redacted) == {"aws-access-key", "github-token", "stripe-key", "password", "slack-token"}
    shown = await service.patterns.show(result.id)
    assert shown.title == "Deploy with key [REDACTED:aws-access-key]"
    assert "[REDACTED:github-token]" in shown.problem
    assert "[REDACTED:stripe-key]" in shown.solution and "[REDACTED:password]" in shown.solution
    assert shown.tags == ["deploy", "[redacted:aws-access-key]"]
    assert shown.works_when == ["SLACK_BOT_TOKEN=[REDACTED:slack-token]"]
    assert shown.anti_patterns == ["committing [REDACTED:github-token]"]
    assert_nowhere(config, *SECRETS)


async def test_the_content_hash_is_taken_after_redaction(service: Service) -> None:
    first = await service.patterns.forge("Rotate keys", "a key leaked", f"revoke {AWS_KEY} in IAM")
    again = await service.patterns.forge("Rotate keys", "a key leaked", f"revoke {'AKIA' + 'Q7Z3XKM2L5PJ4R8A'} in IAM")
    assert (again.created, again.duplicate_of, again.redacted) == (False, first.id, ["aws-access-key"])


async def test_outcome_notes_are_redacted_and_the_result_says_so(service: Service, config: Config) -> None:
    forged = await service.patterns.forge("Connect to postgres", "connection refused", "use the unix socket")
    result = await service.patterns.record_outcome(forged.id, "success", note=f"worked with {DB_URL}")
    assert result.redacted == ["password"]
    outcome = (await service.patterns.outcomes(pattern_id=forged.id))[0]
    assert outcome.note == "worked with postgres://app:[REDACTED:password]@db.internal:5432/app"
    plain = await service.patterns.record_outcome(forged.id, "success", note="no secret here")
    assert plain.redacted == []
    recorded = [e.payload["note"] for e in ledger(config.db_path) if e.kind == "outcome.recorded"]
    assert recorded[0] == outcome.note
    assert_nowhere(config, PASSWORD)


async def test_a_recall_query_is_stored_without_its_secret(service: Service, config: Config) -> None:
    await service.patterns.recall(f"why does {GITHUB_TOKEN} get rejected")
    with connect(config.db_path) as db:
        assert db.execute("SELECT query FROM recalls").fetchone()[0] == "why does [REDACTED:github-token] get rejected"
    assert_nowhere(config, GITHUB_TOKEN)


def test_tool_results_list_what_was_redacted(home: Path, config: Config) -> None:
    with sync_client(build_server(config), mode="legacy") as client:
        forged = client.call_tool("forge_pattern", {"title": "Slack alerts", "problem": "webhook 404",
                                                    "solution": f"token {SLACK} was revoked; make a new one"})
        assert forged.structured_content["redacted"] == ["slack-token"]
        outcome = client.call_tool("record_outcome", {"pattern_id": forged.structured_content["id"],
                                                      "outcome": "failure", "note": f"still 404 with {SLACK}"})
        assert outcome.structured_content["redacted"] == ["slack-token"]
        recalled = client.call_tool("recall_pattern", {"query": "slack webhook"})
        assert SLACK not in recalled.content[0].text
    assert_nowhere(config, SLACK)
