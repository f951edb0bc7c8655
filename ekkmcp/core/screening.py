"""Prompt-injection screening of pattern content, before it is stored (pure).

A stored pattern is later shown to other agents, so a pattern can carry an attack ("memory
poisoning"). ``screen`` looks for what only an attack needs: phrasing that addresses the reading
agent to override its instructions, hidden orders to run remote code or ship data away, and
characters that hide text from a human reviewer. Ordinary technical language must pass: "the
install instructions say to run pip install", "fetch the URL with httpx", "curl -I https://…".

Every rule is a bounded regular expression over a normalised copy of the text (NFKC, invisible
characters removed, white space collapsed, lower case), so splitting a phrase with zero-width
characters does not hide it. A suspicious pattern is quarantined, never rejected: the user can
read it and restore it (``ekkmcp patterns restore``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_TAGS = re.compile("[\U000e0000-\U000e007f]")
# A subdivision flag (🏴 + tag letters + CANCEL TAG, e.g. Scotland) is the one legitimate use of tags.
_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,8}\U000e007f")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Zero-width and filler characters that render as nothing.
_INVISIBLE = re.compile("[\u200b-\u200d\u2060-\u2064\ufeff\u180e\u034f\u115f\u1160\u3164\uffa0\u00ad]")
# A zero-width (non-)joiner between two non-ASCII characters is how emoji sequences and several
# scripts (Persian, Indic) are written; elsewhere it hides text.
_JOINER_IN_SCRIPT = re.compile("(?<=[^\x00-\x7f])[\u200c\u200d](?=[^\x00-\x7f])")
MAX_INVISIBLE = 2
MAX_QUOTE = 60

_PREVIOUS = r"(?:previous|prior|above|earlier|preceding|foregoing|original|initial|system|developer)"
_ORDERS = r"(?:instructions?|prompts?|directions?|directives?|rules|guidelines|guidance|commands?|context|messages?)"
_URL = r"(?:https?|ftp)://\S+"
_SECRET = (
    r"(?:env(?:ironment)?\s+(?:variables|vars)|\.env\b|secrets|credentials|passwords|private\s+keys?|ssh\s+keys?|"
    r"~/\.ssh\S*|id_rsa|~/\.aws\S*|conversation|chat\s+history|system\s+prompt)"
)
# Keys and tokens are sent to APIs every day; sending *all* of them, or the user's, is not.
_KEYS = r"(?:api[ _-]?keys?|access\s+tokens?|tokens|cookies|secrets?|credentials|passwords?|data|files)"
_WHOSE = r"(?:all|every|the\s+user'?s?|user'?s?)\s+(?:of\s+)?(?:the\s+|your\s+)?"
_SHELL = r"(?:sudo\s+)?(?:ba|z|k|da|fi)?sh\b|python[0-9.]*\b|perl\b|ruby\b|node\b|iex\b|invoke-expression\b"

# (label, pattern) pairs; each pattern is matched against the normalised text.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((label, re.compile(rx)) for label, rx in (
    ("instruction override", rf"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+|every\s+)?"
                             rf"(?:of\s+)?(?:the\s+|your\s+|my\s+|these\s+|those\s+)?{_PREVIOUS}\s+{_ORDERS}"),
    ("instruction override", r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+|the\s+)?(?:of\s+)?"
                             r"(?:the\s+)?(?:above|before|that came before)\s*(?:[.!;:,]|$|and\b)"),
    ("instruction override", r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:of\s+)?your\s+"
                             r"(?:instructions|rules|guidelines|programming|training|restrictions)"),
    ("instruction override", rf"\b(?:new|updated|real|actual|revised|secret|hidden)\s+{_ORDERS}\s*:"),
    ("role hijack", r"\byou\s+are\s+now\s+(?:an?\s+|the\s+|my\s+)?(?:new\s+|different\s+|unrestricted\s+|"
                    r"unfiltered\s+|evil\s+|jailbroken\s+)?(?:ai|assistant|model|chatbot|bot|agent|llm|persona|"
                    r"character|dan|jailbroken|unrestricted|unfiltered|free\s+from|no\s+longer)\b"),
    ("role hijack", r"\byou\s+are\s+now\s+in\s+(?:developer|god|admin|jailbreak|dan|unrestricted|debug)\s+mode"),
    ("role hijack", r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|shall|should|have\s+to)\b"),
    ("role hijack", r"\b(?:act|behave|respond)\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered|jailbroken|dan)\b"),
    ("system prompt", r"\b(?:reveal|print|show|output|repeat|leak|dump|disclose|override|overwrite|replace|ignore|"
                      r"bypass)\s+(?:me\s+)?(?:your|the|my|this)?\s*(?:system|developer|hidden)\s+(?:prompt|message)"),
    ("system prompt", r"\b(?:new|updated|real|actual)\s+system\s+(?:prompt|message)\b"),
    ("chat-template token", r"<\|(?:im_start|im_end|system|endoftext|start_header_id|eot_id)\|>|<<sys>>|\[/?inst\]"),
    ("addresses the agent", r"\bif\s+you\s+are\s+an?\s+(?:ai|llm|large\s+language\s+model|language\s+model|"
                            r"assistant|bot|chatbot|ai\s+agent|coding\s+agent|autonomous\s+agent)\b"),
    ("addresses the agent", r"\b(?:attention|note\s+to|message\s+to|instructions?\s+for)\s+(?:the\s+|any\s+|all\s+)?"
                            r"(?:ai|llm|language\s+model|assistant|ai\s+agent|ai\s+assistant|coding\s+agent|agent|"
                            r"model)s?\s*(?:[:!-]|,?\s*(?:reading|that\s+reads?|who\s+reads?))"),
    ("hides from the user", r"\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|alert|notify|warn|mention\s+(?:this|it)\s+"
                            r"to|reveal\s+(?:this|it)\s+to|show\s+(?:this|it)\s+to)\s+the\s+user\b"),
    ("hides from the user", r"\bwithout\s+(?:telling|informing|asking|alerting|notifying)\s+the\s+user\b"),
    ("pipes a download into a shell", rf"\b(?:curl|wget|iwr|invoke-webrequest|fetch)\b[^\n|;]{{0,300}}"
                                      rf"\|\s*(?:{_SHELL})"),
    ("pipes a download into a shell", rf"\b(?:base64\s+(?:-d|--decode)|xxd\s+-r)[^\n|;]{{0,80}}\|\s*(?:{_SHELL})"),
    ("runs downloaded code", r"\b(?:iex|invoke-expression)\b[^\n]{0,80}\b(?:iwr|invoke-webrequest|downloadstring)"),
    ("runs downloaded code", r"\b(?:eval|exec|source)\s*[\s(]\s*[\"'`$(]*\s*(?:curl|wget)\b"),
    ("runs downloaded code", rf"\b(?:download|fetch|get|retrieve)\s+{_URL}[^.\n]{{0,80}}\b(?:and|then)\s+"
                             r"(?:run|execute|eval|source|pipe)\b"),
    ("obeys a remote document", rf"\b(?:fetch|visit|open|browse\s+to|go\s+to|navigate\s+to|read|load|download|"
                                rf"follow)\s+(?:the\s+(?:page|url|link|file|document)\s+(?:at\s+)?)?{_URL}"
                                r"[^\n]{0,80}\b(?:and|then)\s+(?:follow|obey|execute|run|carry\s+out|do\s+what|"
                                r"apply)\b[^\n]{0,40}\b(?:instructions?|says|commands?|tells?|contents?|it\b)"),
    ("obeys a remote document", rf"\b(?:instructions?|orders|commands|directives)\s+(?:are\s+)?"
                                rf"(?:at|from|in)\s+{_URL}"),
    ("sends data away", rf"\b(?:send|post|upload|forward|exfiltrate|leak|transmit|copy|email|paste)\s+(?:me\s+)?"
                        rf"(?:a\s+copy\s+of\s+|the\s+contents?\s+of\s+)?(?:the\s+|your\s+)?"
                        rf"(?:(?:{_WHOSE})?{_SECRET}|{_WHOSE}{_KEYS})"
                        rf"[^\n]{{0,120}}?\b(?:to|at|via|into)\s+{_URL}"),
    ("sends data away", r"\b(?:curl|wget)\b[^\n]{0,200}(?:-d|--data\S*|-f|--form|-t|--upload-file)\s*[\"']?"
                        r"(?:@|\$\(\s*(?:cat|env|printenv|set)\b|\$\(<)[^\n]{0,40}"
                        r"(?:\.ssh|\.aws|\.env|id_rsa|credentials|passwd|shadow|printenv|\benv\b|token)"),
    ("sends data away", r"\b(?:curl|wget)\b[^\n]{0,200}\$\(\s*(?:env|printenv|set)\s*\)"),
    ("agent-directed command", r"\b(?:execute|run)\s+the\s+following\b[^\n]{0,60}\b(?:silently|secretly|quietly|"
                               r"immediately|without\s+(?:asking|confirmation|confirming|telling|checking|"
                               r"reviewing|showing)|before\s+(?:doing\s+anything|you\s+(?:reply|respond|answer)))"),
    ("agent-directed command", r"\b(?:silently|secretly|quietly|covertly)\s+(?:run|execute|fetch|send|post|upload|"
                               r"download|install|delete|call|invoke)\b"),
    ("agent-directed command", r"\b(?:before|instead\s+of)\s+(?:responding|answering|replying)\b[^\n]{0,40}\b(?:run|"
                               r"execute|fetch|send|call|visit)\b"),
))


@dataclass(frozen=True, slots=True)
class ScreenResult:
    suspicious: bool
    reasons: list[str] = field(default_factory=list)


def _quote(text: str) -> str:
    return repr(text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "…")


def _normalised(text: str) -> str:
    visible = _INVISIBLE.sub("", _BIDI.sub("", _TAGS.sub("", text)))
    return " ".join(unicodedata.normalize("NFKC", visible).split()).lower()


def _hidden_characters(text: str) -> list[str]:
    """Reasons for characters that hide or reorder text from a human reader."""
    reasons = []
    tags = len(_TAGS.findall(_FLAG.sub("", text)))
    if tags:
        reasons.append(f"{tags} invisible Unicode tag character(s) (U+E0000–U+E007F) that can carry hidden text")
    bidi = len(_BIDI.findall(text))
    if bidi:
        reasons.append(f"{bidi} bidirectional control character(s) that reorder how the text is displayed")
    invisible = len(_INVISIBLE.findall(_JOINER_IN_SCRIPT.sub("", text)))
    if invisible > MAX_INVISIBLE:
        reasons.append(f"{invisible} zero-width or invisible characters")
    return reasons


def screen_text(text: str) -> list[str]:
    """The reasons ``text`` looks like a prompt injection (empty when it does not)."""
    reasons = _hidden_characters(text)
    flat = _normalised(text)
    seen: set[str] = set()
    for label, rule in _RULES:
        found = rule.search(flat)
        if found and label not in seen:
            seen.add(label)
            reasons.append(f"{label} ({_quote(found.group(0).strip())})")
    return reasons


def screen(fields: dict[str, str]) -> ScreenResult:
    """Screen each named field (join list fields with new lines first); reasons name the field."""
    reasons = [f"{name}: {reason}" for name, text in fields.items() for reason in screen_text(text)]
    return ScreenResult(suspicious=bool(reasons), reasons=reasons)
