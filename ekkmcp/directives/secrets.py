"""Redacting secrets with the shipped ``secrets`` pack's own detectors.

The detectors are the pack's rules that apply to content (kind ``other``); a rule like
``env-file-commit`` that is about a command, not a secret value, is not one. Each detected span
becomes ``[REDACTED:<rule id>]``; a pattern with a named group ``secret`` redacts only that
group (``password = "[REDACTED:password]"`` keeps the code readable).
"""

from __future__ import annotations

from functools import lru_cache

import regex

from .loader import load_pack_file, shipped_pack_dir
from .model import Directive
from .regexes import TIMEOUT_SECONDS

SECRETS_PACK = "secrets.yaml"


@lru_cache(maxsize=1)
def _detectors() -> tuple[tuple[str, regex.Pattern[str]], ...]:
    directives = load_pack_file(shipped_pack_dir() / SECRETS_PACK)
    return tuple(
        (d.id, regex.compile(pattern, regex.V0))
        for d in directives
        if _is_detector(d)
        for pattern in d.match.patterns
    )


def _is_detector(directive: Directive) -> bool:
    return not directive.kinds or "other" in directive.kinds


def _spans(text: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in _detectors():
        try:
            for found in pattern.finditer(text, timeout=TIMEOUT_SECONDS):
                group = "secret" if "secret" in pattern.groupindex and found.group("secret") else 0
                start, end = found.span(group)
                if end > start:
                    spans.append((start, end, kind))
        except TimeoutError:
            continue
    spans.sort(key=lambda s: (s[0], -s[1]))
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in spans:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, kind))
    return merged


def redact_secrets(text: str) -> tuple[str, list[str]]:
    """Replace every detected secret with ``[REDACTED:<kind>]``; return the text and the kinds
    found (each once, in order of first appearance)."""
    spans = _spans(text)
    pieces: list[str] = []
    position = 0
    kinds: list[str] = []
    for start, end, kind in spans:
        pieces.append(text[position:start])
        pieces.append(f"[REDACTED:{kind}]")
        position = end
        if kind not in kinds:
            kinds.append(kind)
    pieces.append(text[position:])
    return "".join(pieces), kinds
