"""Text helpers shared by duplicate detection and recall."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Words that carry no meaning for recall; dropping them keeps full-text queries selective.
STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from how i if in into is it its my no not of on or so
    that the their then there these this to was we what when where which while why will with you your""".split()
)


def normalise(text: str) -> str:
    """Case-, white-space- and punctuation-insensitive form used to detect duplicates."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(folded))


def content_hash(title: str, problem: str, solution: str) -> str:
    """SHA-256 over the normalised title, problem and solution: equal hash = duplicate pattern."""
    joined = "\x1f".join(normalise(part) for part in (title, problem, solution))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """The distinct search terms of a query, in order, lower-cased; never any FTS syntax."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        if keep_stopwords or word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


# What every detector of the shipped ``secrets`` pack needs somewhere in a text: a password keyword,
# credentials in a URL, a PEM header, or a long token (the shortest, a Slack token, is 15 characters).
# tests/test_directives_secrets.py holds every detector's examples to it, so a new detector the hint
# would miss fails the tests instead of going unredacted.
_SECRET_HINT = re.compile(r"pass|://\S*@|-----BEGIN|[A-Za-z0-9_+/=-]{14,}", re.IGNORECASE)


def may_hold_secret(text: str) -> bool:
    """False only for text no secret detector can match: most queries, which then skip loading the pack."""
    return _SECRET_HINT.search(text) is not None
