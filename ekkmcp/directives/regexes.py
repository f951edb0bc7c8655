"""Regular-expression helpers: compiling, backtracking analysis and literal extraction.

Patterns run on the third-party ``regex`` module (it supports a per-call ``timeout=``, the
backstop that keeps a pathological pattern from hanging a check). The static analysis below
parses the pattern with the standard library's parser (``re._parser``); a pattern that only
``regex`` understands (``\\p{L}``, ...) skips the analysis and relies on the timeout alone.

Three questions are answered statically:

* ``catastrophic_reason`` -- can the pattern backtrack exponentially? A star-height-2 pattern
  (an unbounded repeat around a variable-length repeat, ``(a+)+``, ``(.*)*``) unless the inner
  repeat is always followed by a mandatory item it cannot eat (``([a-z]+\\.)+`` is fine), a
  repeat around a body that can match the empty string, and an alternation under an unbounded
  repeat whose branches can start with the same character (``(a|aa)*``). Possessive repeats
  and atomic groups never backtrack and are exempt. Rejected at load time.
* ``polynomial_reason`` -- adjacent unbounded repeats over overlapping characters (``.*.*``,
  ``\\d+\\d+``): polynomial, not exponential, so only a lint warning.
* ``required_literals`` -- a set of strings one of which every match must contain (casefolded),
  the engine's prefilter key; ``None`` when no useful literal is required.
"""

from __future__ import annotations

import re
import re._constants as C
import re._parser as P
from functools import lru_cache
from typing import Any

import regex

MAX_CHAR = 0x10FFFF
TIMEOUT_SECONDS = 0.05  # per search; a linear pattern on 64 KiB takes well under 5 ms
_BIG_REPEAT = 50  # {0,50}+ is treated as unbounded
_MIN_LITERAL = 2

Intervals = tuple[tuple[int, int], ...]
_ANY: Intervals = ((0, MAX_CHAR),)
_SPACE: Intervals = (
    (9, 13), (28, 32), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip
# non-ASCII word/digit characters are over-approximated as "every non-ASCII non-space"
_DIGIT: Intervals = ((48, 57), (0x80, MAX_CHAR))
_WORD: Intervals = ((48, 57), (65, 90), (95, 95), (97, 122), (0x80, MAX_CHAR))
_UNBOUNDED_OPS = (C.MAX_REPEAT, C.MIN_REPEAT)


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile a directive pattern, raising ``ValueError`` with a readable message."""
    try:
        return regex.compile(pattern, regex.V0)
    except regex.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def validate_pattern(pattern: str) -> None:
    """Raise ``ValueError`` when the pattern does not compile or can backtrack catastrophically."""
    compile_pattern(pattern)
    reason = catastrophic_reason(pattern)
    if reason:
        raise ValueError(
            f"regular expression {pattern!r} can backtrack catastrophically ({reason}); rewrite it "
            "without nested or overlapping repeats, or make the inner repeat possessive (a++) "
            "or atomic ((?>...))"
        )


def keyword_pattern(keyword: str) -> str:
    """A regex source for a case-insensitive, word-boundary aware keyword or phrase."""
    words = keyword.split()
    body = r"\s+".join(regex.escape(word) for word in words)
    if re.match(r"\w", words[0]):
        body = r"(?<!\w)" + body
    if re.search(r"\w$", words[-1]):
        body = body + r"(?!\w)"
    return body


def keyword_literal(keyword: str) -> str:
    """The prefilter literal of a keyword: its longest whitespace-free run, casefolded."""
    return max(keyword.casefold().split(), key=len)


@lru_cache(maxsize=4096)
def _parse(pattern: str) -> Any | None:
    try:
        return P.parse(pattern)
    except Exception:  # a regex-module-only construct: no static analysis
        return None


# ---- character sets ----------------------------------------------------------------------


def _union(*sets: Intervals) -> Intervals:
    spans = sorted(span for s in sets for span in s)
    merged: list[list[int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


def _complement(s: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    start = 0
    for lo, hi in _union(s):
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CHAR:
        out.append((start, MAX_CHAR))
    return tuple(out)


def _overlap(a: Intervals, b: Intervals) -> bool:
    return any(alo <= bhi and blo <= ahi for alo, ahi in a for blo, bhi in b)


def _char(code: int, ignorecase: bool) -> Intervals:
    ch = chr(code)
    if ignorecase and ch.lower() != ch.upper():
        return _union(*(((ord(c), ord(c)),) for c in {ch.lower(), ch.upper()} if len(c) == 1))
    return ((code, code),)


def _without_unicode_space(s: Intervals) -> Intervals:
    return _intersect(s, _complement(_SPACE))


def _intersect(a: Intervals, b: Intervals) -> Intervals:
    return _complement(_union(_complement(a), _complement(b)))


def _category(cat: Any) -> Intervals:
    name = str(cat)
    if "DIGIT" in name:
        base = _without_unicode_space(_DIGIT)
    elif "WORD" in name:
        base = _without_unicode_space(_WORD)
    else:
        base = _SPACE if "SPACE" in name else _ANY
    return _complement(base) if "NOT" in name and base is not _ANY else base


def _in_set(items: Any, ignorecase: bool) -> Intervals:
    parts: list[Intervals] = []
    negate = False
    exact = True  # \\d and \\w are over-approximated: their complement would be too small
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.CATEGORY and "SPACE" not in str(av):
            exact = False
            parts.append(_category(av))
        elif op is C.LITERAL:
            parts.append(_char(av, ignorecase))
        elif op is C.RANGE:
            parts.append(((av[0], av[1]),))
            if ignorecase:
                parts.append(_ANY if av[1] - av[0] > 200 else _union(*(_char(c, True) for c in range(av[0], av[1] + 1))))
        elif op is C.CATEGORY:
            parts.append(_category(av))
        else:
            parts.append(_ANY)
    result = _union(*parts) if parts else ()
    if not negate:
        return result
    return _complement(result) if exact else _ANY


def _item_first(op: Any, av: Any, ic: bool) -> Intervals | None:
    """First-character set of one parsed item; None for zero-width items."""
    if op is C.LITERAL:
        return _char(av, ic)
    if op in (C.NOT_LITERAL, C.ANY, C.GROUPREF, C.GROUPREF_EXISTS):
        return _ANY
    if op is C.IN:
        return _in_set(av, ic)
    if op is C.CATEGORY:
        return _category(av)
    if op is C.SUBPATTERN:
        return _first(av[-1], ic)
    if op is C.ATOMIC_GROUP:
        return _first(av, ic)
    if op is C.BRANCH:
        return _union(*(_first(alt, ic) for alt in av[1]))
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        return _first(av[2], ic)
    return None  # AT, ASSERT, ASSERT_NOT: zero width


def _first(seq: Any, ic: bool) -> Intervals:
    """Characters a match of ``seq`` can start with."""
    parts: list[Intervals] = []
    for op, av in seq:
        first = _item_first(op, av, ic)
        if first is None:
            continue
        parts.append(first)
        if _min_width(op, av) > 0:
            break
    return _union(*parts) if parts else ()


def _min_width(op: Any, av: Any) -> int:
    sub = P.SubPattern(P.State(), [(op, av)])
    try:
        return sub.getwidth()[0]
    except Exception:
        return 0


def _seq_min_width(seq: Any) -> int:
    try:
        return seq.getwidth()[0]
    except Exception:
        return 0


def _flatten(seq: Any) -> list[tuple[Any, Any]]:
    """Items of a sequence with plain groups inlined (so ``(a+)b`` is ``a+, b``)."""
    out: list[tuple[Any, Any]] = []
    for op, av in seq:
        if op is C.SUBPATTERN:
            out.extend(_flatten(av[-1]))
        else:
            out.append((op, av))
    return out


# ---- catastrophic backtracking -------------------------------------------------------------


def _is_unbounded(op: Any, av: Any) -> bool:
    return op in _UNBOUNDED_OPS and (av[1] is C.MAXREPEAT or av[1] > _BIG_REPEAT)


def _is_variable(op: Any, av: Any) -> bool:
    return op in _UNBOUNDED_OPS and av[0] != av[1]


def _contains_variable_repeat(seq: Any) -> bool:
    for op, av in seq:
        if _is_variable(op, av):
            return True
        if op is C.SUBPATTERN and _contains_variable_repeat(av[-1]):
            return True
        if op is C.BRANCH and any(_contains_variable_repeat(alt) for alt in av[1]):
            return True
        if op in _UNBOUNDED_OPS and _contains_variable_repeat(av[2]):
            return True
    return False


def _nested_is_guarded(body: Any, ic: bool) -> bool:
    """True when every variable repeat in the body is followed by a mandatory item it can't eat.

    ``([a-z]+\\.)+`` is guarded (``.`` ends each ``[a-z]+``); ``(\\w+\\s?)+`` is not.
    """
    items = _flatten(body)
    body_first = _first(body, ic)
    for index, (op, av) in enumerate(items):
        if op is C.BRANCH or (op in _UNBOUNDED_OPS and _contains_variable_repeat(av[2])):
            if _contains_variable_repeat_item(op, av):
                return False
        if not _is_variable(op, av):
            continue
        inner = _first(av[2], ic)
        follower = _next_mandatory_first(items[index + 1 :], ic)
        if follower is None:
            follower = body_first  # wraps around to the next iteration
        if _overlap(inner, follower):
            return False
    return True


def _contains_variable_repeat_item(op: Any, av: Any) -> bool:
    return _contains_variable_repeat(P.SubPattern(P.State(), [(op, av)]))


def _next_mandatory_first(items: list[tuple[Any, Any]], ic: bool) -> Intervals | None:
    parts: list[Intervals] = []
    for op, av in items:
        first = _item_first(op, av, ic)
        if first is None:
            continue
        parts.append(first)
        if _min_width(op, av) > 0:
            return _union(*parts)
    return None


def _branch_overlaps(body: Any, ic: bool) -> bool:
    for op, av in _flatten(body):
        if op is C.BRANCH:
            alts = av[1]
            if any(_seq_min_width(alt) == 0 for alt in alts):
                return True
            firsts = [_first(alt, ic) for alt in alts]
            for i, a in enumerate(firsts):
                if any(_overlap(a, b) for b in firsts[i + 1 :]):
                    return True
    return False


def _walk_catastrophic(seq: Any, ic: bool) -> str | None:
    for op, av in seq:
        if op is C.ATOMIC_GROUP:
            continue  # never backtracks into
        if op is C.SUBPATTERN:
            found = _walk_catastrophic(av[-1], ic)
        elif op is C.BRANCH:
            found = next((r for alt in av[1] if (r := _walk_catastrophic(alt, ic))), None)
        elif op is C.POSSESSIVE_REPEAT:
            found = None
        elif op in _UNBOUNDED_OPS:
            found = _repeat_reason(av, ic) or _walk_catastrophic(av[2], ic)
        else:
            found = None
        if found:
            return found
    return None


def _repeat_reason(av: Any, ic: bool) -> str | None:
    lo, hi, body = av
    if not (hi is C.MAXREPEAT or hi > _BIG_REPEAT):
        return None
    if _seq_min_width(body) == 0:
        return "a repeated group that can match the empty string, like (a*)*"
    if _contains_variable_repeat(body) and not _nested_is_guarded(body, ic):
        return "a nested quantifier, like (a+)+"
    if _branch_overlaps(body, ic):
        return "a repeated alternation whose branches overlap, like (a|aa)*"
    return None


def catastrophic_reason(pattern: str) -> str | None:
    """Why the pattern can backtrack exponentially, or None."""
    parsed = _parse(pattern)
    if parsed is None:
        return None
    return _walk_catastrophic(parsed, bool(parsed.state.flags & C.SRE_FLAG_IGNORECASE))


def polynomial_reason(pattern: str) -> str | None:
    """Why the pattern may backtrack polynomially (a lint warning), or None."""
    parsed = _parse(pattern)
    if parsed is None:
        return None
    ic = bool(parsed.state.flags & C.SRE_FLAG_IGNORECASE)
    return _walk_polynomial(parsed, ic)


def _walk_polynomial(seq: Any, ic: bool) -> str | None:
    items = _flatten(seq)
    previous: Intervals | None = None
    for op, av in items:
        if _is_unbounded(op, av):
            current = _first(av[2], ic)
            if previous is not None and _overlap(previous, current):
                return "two adjacent unbounded repeats over overlapping characters, like .*.* or \\d+\\d+"
            single_char = len(av[2]) == 1 and _min_width(*av[2][0]) == 1
            previous = current if single_char else None
        elif op is C.GROUPREF or (_item_first(op, av, ic) is not None and _min_width(op, av) > 0):
            previous = None
        if op is C.BRANCH:
            found = next((r for alt in av[1] if (r := _walk_polynomial(alt, ic))), None)
            if found:
                return found
        if op in _UNBOUNDED_OPS + (C.POSSESSIVE_REPEAT,):
            found = _walk_polynomial(av[2], ic)
            if found:
                return found
    return None


# ---- required literals (the prefilter) -----------------------------------------------------

Literals = frozenset[str] | None


def best_requirement(options: list[frozenset[str]]) -> Literals:
    """Of several necessary literal sets, the most selective (longest shortest literal)."""
    usable = [o for o in options if o and min(len(s) for s in o) >= _MIN_LITERAL]
    if not usable:
        return None
    return max(usable, key=lambda o: (min(len(s) for s in o), -len(o)))


def _seq_literals(seq: Any) -> Literals:
    options: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            options.append(frozenset({"".join(run).casefold()}))
            run.clear()

    for op, av in seq:
        if op is C.LITERAL:
            run.append(chr(av))
            continue
        if op in (C.AT,):
            continue  # zero width: does not break a literal run
        # the parser factors a common prefix out of alternatives (gh_|github_ → g(h_|ithub_)):
        # glue the pending run back onto each alternative
        prefix = [(C.LITERAL, ord(ch)) for ch in run]
        flush()
        sub: Literals = None
        if op is C.SUBPATTERN:
            sub = _seq_literals(av[-1])
        elif op is C.ATOMIC_GROUP:
            sub = _seq_literals(av)
        elif op is C.BRANCH:
            alts = [_seq_literals(prefix + list(alt)) for alt in av[1]]
            if all(a for a in alts):
                sub = frozenset().union(*alts)  # type: ignore[arg-type]
        elif op in _UNBOUNDED_OPS + (C.POSSESSIVE_REPEAT,) and av[0] >= 1:
            sub = _seq_literals(av[2])
        if sub:
            options.append(sub)
    flush()
    return best_requirement(options)


def required_literals(pattern: str) -> Literals:
    """Casefolded strings one of which every match of the pattern contains, or None."""
    parsed = _parse(pattern)
    if parsed is None:
        return None
    if parsed.state.flags & (C.SRE_FLAG_VERBOSE):
        pass  # the parser already dropped verbose whitespace
    return _seq_literals(parsed)
