"""Input checks shared by every adapter: each failure says what was wrong and what to send instead."""

from __future__ import annotations

from collections.abc import Iterable

from ekkmcp.errors import InvalidInput

MAX_TEXT_BYTES = 64 * 1024
MAX_TITLE_CHARS = 300
MAX_LIST_ITEMS = 32
MAX_TAG_CHARS = 64
MAX_PROJECT_CHARS = 200


def text(name: str, value: object, *, max_bytes: int = MAX_TEXT_BYTES, required: bool = True) -> str:
    """A stripped, valid UTF-8 string without NUL characters, within ``max_bytes``."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, got {type(value).__name__}; send text")
    stripped = value.strip()
    if required and not stripped:
        raise InvalidInput(f"{name} is empty; send a non-empty string")
    if "\x00" in stripped:
        raise InvalidInput(f"{name} contains a NUL character; remove it and send plain text")
    try:
        size = len(stripped.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} contains a lone surrogate (invalid Unicode); send valid UTF-8 text") from None
    if size > max_bytes:
        raise InvalidInput(f"{name} is {size:,} bytes; the limit is {max_bytes:,}: shorten it or split it up")
    return stripped


def title(value: object) -> str:
    result = text("title", value)
    if len(result) > MAX_TITLE_CHARS:
        raise InvalidInput(f"title is {len(result)} characters; keep it under {MAX_TITLE_CHARS} (one line)")
    return result


def text_list(name: str, values: object, *, item_bytes: int = 4096) -> list[str]:
    """A list of short strings, blanks dropped, duplicates removed, order kept."""
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidInput(f"{name} must be a list of strings, e.g. [\"first\", \"second\"]")
    items = [text(f"{name} item", v, max_bytes=item_bytes, required=False) for v in values]
    unique = list(dict.fromkeys(i for i in items if i))
    if len(unique) > MAX_LIST_ITEMS:
        raise InvalidInput(f"{name} has {len(unique)} items; send at most {MAX_LIST_ITEMS}")
    return unique


def tags(values: object) -> list[str]:
    """Tags are lower-case and short; order kept, duplicates removed."""
    items = [t.lower() for t in text_list("tags", values, item_bytes=MAX_TAG_CHARS * 4)]
    too_long = [t for t in items if len(t) > MAX_TAG_CHARS]
    if too_long:
        raise InvalidInput(f"tag {too_long[0][:40]!r}… is too long; keep tags under {MAX_TAG_CHARS} characters")
    return list(dict.fromkeys(items))


def project(value: object) -> str | None:
    """None (or an empty string) means global."""
    if value is None:
        return None
    result = text("project", value, max_bytes=MAX_PROJECT_CHARS * 4, required=False)
    if len(result) > MAX_PROJECT_CHARS:
        raise InvalidInput(f"project name is too long; keep it under {MAX_PROJECT_CHARS} characters")
    return result or None


def choice(name: str, value: object, allowed: Iterable[str]) -> str:
    options = list(allowed)
    if not isinstance(value, str) or value.strip().lower() not in options:
        raise InvalidInput(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}")
    return value.strip().lower()


def integer(name: str, value: object, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}; got {value!r}")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be from {low} to {high}; got {value}")
    return value


def identifier(name: str, value: object) -> str:
    result = text(name, value, max_bytes=128)
    if any(c.isspace() for c in result):
        raise InvalidInput(f"{name} {result!r} is not an id; ids look like 'p_3kq9x2m7ad'")
    return result
