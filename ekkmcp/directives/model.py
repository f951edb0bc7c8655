"""The directive data model: rules, their matchers and examples, and check results.

A directive's *trigger* is ``match``; a MUST or PREFER rule also has ``requires`` and fires
when the trigger is present and the requirement absent. NEVER and AVOID fire on the trigger.

A matcher node matches when all of its given parts hold:

* ``keywords`` / ``patterns``: at least one keyword (case-insensitive, word-boundary aware,
  phrases allowed) or regular expression is found;
* ``all_of``: every sub-matcher matches; ``any_of``: at least one does;
* ``none_of``: no sub-matcher matches (an exclusion; never enough on its own).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ekkmcp.errors import InvalidInput

from .regexes import validate_pattern

Kind = Literal["command", "file_edit", "reply", "tool_call", "other"]
KINDS: tuple[str, ...] = get_args(Kind)
DirectiveType = Literal["MUST", "NEVER", "PREFER", "AVOID"]
ActionLevel = Literal["block", "warn", "info"]
Verdict = Literal["allow", "warn", "block"]
Expect = Literal["block", "warn", "info", "allow"]
Mode = Literal["enforce", "log_only"]
Status = Literal["active", "proposed", "disabled"]

DEFAULT_ACTION: dict[str, ActionLevel] = {"NEVER": "block", "MUST": "block", "AVOID": "warn", "PREFER": "warn"}
SEVERITY: dict[str, int] = {"block": 3, "warn": 2, "info": 1, "allow": 0}
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,79}$"
MATCHED_MAX = 120


class Matcher(BaseModel):
    """What a rule looks for (see the module docstring for the semantics)."""

    model_config = ConfigDict(extra="forbid")

    keywords: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    any_of: list[Matcher] = Field(default_factory=list)
    all_of: list[Matcher] = Field(default_factory=list)
    none_of: list[Matcher] = Field(default_factory=list)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        cleaned = [" ".join(k.split()) for k in value]
        if any(not k for k in cleaned):
            raise ValueError("a keyword is empty")
        return cleaned

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            validate_pattern(pattern)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Matcher:
        if not (self.keywords or self.patterns or self.any_of or self.all_of):
            raise ValueError("a matcher needs keywords, patterns, any_of or all_of (none_of alone matches everything)")
        return self

    def normalised(self) -> tuple[Any, ...]:
        """A canonical form: equal for matchers that differ only in order, case or spacing."""
        return (
            tuple(sorted({k.casefold() for k in self.keywords})),
            tuple(sorted(set(self.patterns))),
            tuple(sorted({m.normalised() for m in self.any_of})),
            tuple(sorted({m.normalised() for m in self.all_of})),
            tuple(sorted({m.normalised() for m in self.none_of})),
        )


class Example(BaseModel):
    """An action the rule must decide a given way.

    YAML shorthand: ``- block: "rm -rf /"`` is ``{expect: block, action: "rm -rf /"}``.
    ``kind`` defaults to the rule's first kind (``other`` if it lists none).
    """

    model_config = ConfigDict(extra="forbid")

    action: str
    expect: Expect
    kind: Kind | None = None
    tool: str | None = None
    paths: list[str] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "expect" not in data:
            given = [word for word in get_args(Expect) if word in data]
            if len(given) == 1:
                data = dict(data)
                data["action"] = data.pop(given[0])
                data["expect"] = given[0]
        return data


class Directive(BaseModel):
    """One rule of the rulebook."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    type: DirectiveType
    rule: str = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=1000)
    priority: int = Field(default=50, ge=0, le=100)
    project: str | None = None
    kinds: list[Kind] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    match: Matcher
    requires: Matcher | None = None
    action: ActionLevel | None = None
    mode: Mode = "enforce"
    status: Status = "active"
    examples: list[Example] = Field(default_factory=list)
    pack: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _upper_type(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _requires_fits_type(self) -> Directive:
        if self.type in ("MUST", "PREFER") and self.requires is None:
            raise ValueError(f"a {self.type} rule needs 'requires' (what must be present when 'match' is)")
        if self.type in ("NEVER", "AVOID") and self.requires is not None:
            raise ValueError(f"a {self.type} rule cannot have 'requires'; put exclusions in match.none_of")
        return self

    @property
    def effective_action(self) -> ActionLevel:
        """The explicit ``action`` or the type's default (NEVER/MUST → block, AVOID/PREFER → warn)."""
        return self.action or DEFAULT_ACTION[self.type]

    @property
    def label(self) -> str:
        """A short name for what the rule detects: its id (used by redaction)."""
        return self.id

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict (defaults left out) that :meth:`from_dict` reads back."""
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Directive:
        """Rebuild a directive from :meth:`to_dict` output; raises ``InvalidInput`` if invalid."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"invalid directive {data.get('id')!r}: {format_validation_error(exc)}") from None

    def to_yaml(self) -> str:
        """This directive as a YAML mapping (one item of a pack's ``directives`` list)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_proposal(
        cls,
        id: str,
        type: str,
        rule: str,
        reason: str,
        keywords: list[str] | tuple[str, ...] = (),
        patterns: list[str] | tuple[str, ...] = (),
        kinds: list[str] | tuple[str, ...] = (),
        tools: list[str] | tuple[str, ...] = (),
        paths: list[str] | tuple[str, ...] = (),
        project: str | None = None,
        *,
        requires_keywords: list[str] | tuple[str, ...] = (),
        requires_patterns: list[str] | tuple[str, ...] = (),
        priority: int = 50,
        action: str | None = None,
        mode: str = "enforce",
        examples: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    ) -> Directive:
        """Build a ``proposed`` directive from the propose tool's flat arguments.

        Raises ``InvalidInput`` with a readable message (bad regex, unknown type or kind, ...).
        """
        data: dict[str, Any] = {
            "id": id,
            "type": type,
            "rule": rule,
            "reason": reason,
            "priority": priority,
            "project": project,
            "kinds": list(kinds),
            "tools": list(tools),
            "paths": list(paths),
            "match": {"keywords": list(keywords), "patterns": list(patterns)},
            "mode": mode,
            "status": "proposed",
            "examples": list(examples),
            "pack": "proposed",
        }
        if action is not None:
            data["action"] = action
        if requires_keywords or requires_patterns:
            data["requires"] = {"keywords": list(requires_keywords), "patterns": list(requires_patterns)}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"cannot propose directive {id!r}: {format_validation_error(exc)}") from None


class Match(BaseModel):
    """One directive that fired on an action."""

    directive_id: str
    type: DirectiveType
    rule: str
    action: ActionLevel
    reason: str
    matched: str
    mode: Mode
    priority: int
    pack: str | None = None
    project: str | None = None


class CheckResult(BaseModel):
    """The decision on one action: ``verdict`` and the matches behind it (most severe first)."""

    verdict: Verdict
    matches: list[Match] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def blocking(self) -> list[Match]:
        return [m for m in self.matches if m.mode == "enforce" and m.action == "block"]

    @property
    def warnings(self) -> list[Match]:
        return [m for m in self.matches if m.mode == "enforce" and m.action == "warn"]


def format_validation_error(exc: ValidationError) -> str:
    """A pydantic error as one readable line: ``field.path: message; ...``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(rule)"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def truncate(text: str, limit: int = MATCHED_MAX) -> str:
    """Shorten a matched span for display."""
    text = " ".join(text.split()) if len(text) > limit else text
    return text if len(text) <= limit else text[: limit - 1] + "…"
