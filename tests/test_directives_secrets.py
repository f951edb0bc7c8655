"""redact_secrets uses the shipped secrets pack's detectors."""

from __future__ import annotations

from ekkmcp.directives import redact_secrets

# assembled at runtime so this file never contains a scanner-shaped secret
AWS = "AK" + "IA" + "Z7Q3XKM2L5PJ4R8T"
GH = "gh" + "p_" + "R4nd0mFakeT0kenValue0123456789abcdef"
STRIPE = "sk" + "_live_" + "FAKE0123456789abcdefABCDEF"
KEY = "-----BEGIN RSA PRIVATE" + " KEY-----\nMIIEowIBAAKCAQEAfake\nabc+/=\n-----END RSA PRIVATE" + " KEY-----"


def test_redacts_each_kind() -> None:
    text = f'aws={AWS}\ntoken {GH}\nstripe.api_key = "{STRIPE}"\n{KEY}\npassword = "Tr0ub4dor&3x"\n'
    redacted, kinds = redact_secrets(text)
    for secret in (AWS, GH, STRIPE, "MIIEowIBAAKCAQEAfake", "Tr0ub4dor&3x"):
        assert secret not in redacted
    assert kinds == ["aws-access-key", "github-token", "stripe-key", "private-key", "password"]
    assert "[REDACTED:aws-access-key]" in redacted and 'password = "[REDACTED:password]"' in redacted
    assert redacted.startswith("aws=[REDACTED:aws-access-key]\ntoken ")


def test_leaves_clean_text_and_placeholders_alone() -> None:
    text = 'password = os.environ["DB_PASSWORD"]\npassword = "changeme"\nexport AWS_PROFILE=dev\nrun git add .env'
    assert redact_secrets(text) == (text, [])


def test_url_credentials_keep_the_url_shape() -> None:
    redacted, kinds = redact_secrets("postgres://app:Xk9vTq2mP@db:5432/app")
    assert redacted == "postgres://app:[REDACTED:password]@db:5432/app" and kinds == ["password"]


def test_overlapping_detections_merge() -> None:
    redacted, kinds = redact_secrets(f'password = "{GH}"')
    assert GH not in redacted and redacted.count("[REDACTED:") == 1


def test_every_detection_is_seen_by_the_cheap_hint() -> None:
    """``may_hold_secret`` lets recall skip loading the pack; it must hold for every span any detector matches."""
    from ekkmcp.core.text import may_hold_secret
    from ekkmcp.directives.loader import load_pack_file, shipped_pack_dir
    from ekkmcp.directives.secrets import SECRETS_PACK, _detectors

    blocked = [e.action for d in load_pack_file(shipped_pack_dir() / SECRETS_PACK) for e in d.examples
               if e.expect == "block"]
    samples = [*blocked, AWS, GH, STRIPE, KEY, 'password = "Tr0ub4dor&3x"', "postgres://app:Xk9vTq2mP@db:5432/app"]
    matches = [(kind, found.group(0)) for text in samples for kind, pattern in _detectors()
               for found in pattern.finditer(text)]
    assert {kind for kind, _ in matches} == {kind for kind, _ in _detectors()}  # every detector is exercised
    assert all(may_hold_secret(text) for _, text in matches)
    assert not may_hold_secret("sqlite database is locked under load") and not may_hold_secret("pool exhausted")
