"""The portable bundle, pure: its format, its checks, and the rules for merging one into a store.

Format (JSON Lines, UTF-8, one canonical JSON object per line, so a bundle diffs well in git):

    {"type": "manifest", "format": "ekkmcp-bundle", "version": 1, "counts": {...}, "checksum": "sha256:…", ...}
    {"type": "pattern", ...}          every pattern, all statuses, with its statistics
    {"type": "recall", ...}           recalls and the pattern ids they returned (closure needs them)
    {"type": "outcome", ...}          every outcome, with its unique ``uid``
    {"type": "decision", ...}         directive decisions
    {"type": "directive_file", ...}   the user's own pack files ($EKKMCP_HOME/directives/*.yaml), verbatim
    {"type": "directive_proposal", ...} / {"type": "directive_override", ...}
    {"type": "ledger", ...}           the exporting store's ledger, for the record
    {"type": "end"}

``checksum`` is the SHA-256 of every byte between the manifest line and the end line. A reader
checks, in order: the format and version (a newer bundle is refused before anything else is
trusted), then that the end line is there (else the file was truncated), then the checksum and
the counts (else it was changed after export). The checksum proves integrity, not authorship:
anyone can recompute it, so every record is still validated on import.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ekkmcp.core import validate
from ekkmcp.core.ledger import LedgerEntry, canonical_json
from ekkmcp.core.loop import Evidence, LoopSettings
from ekkmcp.core.patterns import Outcome, OutcomeWord, Status
from ekkmcp.errors import InvalidInput

FORMAT = "ekkmcp-bundle"
VERSION = 1
KINDS = ("pattern", "recall", "outcome", "decision", "directive_file", "directive_proposal", "directive_override",
         "ledger")
DIRECTIVE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.yaml$")


class BundleError(InvalidInput):
    """The bundle cannot be imported; the message says whether it is truncated, tampered or too new."""


class BundleTooNew(BundleError):
    pass


class Manifest(BaseModel):
    type: Literal["manifest"] = "manifest"
    format: str = FORMAT
    version: int = VERSION
    created_at: str
    ekkmcp_version: str
    counts: dict[str, int]
    ledger_head: dict[str, Any] = Field(default_factory=dict, description="The exporter's ledger size and head.")
    checksum: str


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatternRecord(_Record):
    id: str
    title: str
    problem: str
    solution: str
    tags: list[str]
    works_when: list[str]
    anti_patterns: list[str]
    project: str | None
    status: Status
    status_reason: str | None
    content_hash: str
    created_at: str
    updated_at: str
    successes: int
    failures: int
    evidence_successes: float
    evidence_failures: float
    evidence_at: float | None
    last_note: str | None
    evidence_reset_ts: float | None = Field(default=None, description="When its weighted evidence was last cleared.")


class OutcomeRecord(_Record):
    uid: str
    pattern_id: str
    recall_id: str | None
    outcome: OutcomeWord
    weight: float
    source: str
    note: str | None
    recorded_at: str
    recorded_ts: float

    def to_outcome(self, pattern_id: str) -> Outcome:
        return Outcome(pattern_id=pattern_id, outcome=self.outcome, recorded_at=self.recorded_at,
                       recorded_ts=self.recorded_ts, weight=self.weight, source=self.source,
                       recall_id=self.recall_id, note=self.note, uid=self.uid)


class RecallRecord(_Record):
    id: str
    query: str
    project: str | None
    created_at: str
    created_ts: float
    pattern_ids: list[str]


class DecisionRecord(_Record):
    id: str
    at: str
    at_ts: float
    kind: str
    tool: str | None
    project: str | None
    verdict: Literal["allow", "warn", "block"]
    directive_ids: str
    log_only_ids: str
    action_sha256: str
    action: str | None
    source: str


class DirectiveFileRecord(_Record):
    name: str = Field(pattern=DIRECTIVE_FILE_NAME.pattern)
    text: str
    sha256: str


class ProposalRecord(_Record):
    id: str
    body: str
    status: Literal["proposed", "active", "rejected", "disabled"]
    project: str | None
    created_at: str
    decided_at: str | None


class OverrideRecord(_Record):
    directive_id: str
    status: Literal["active", "disabled"]
    updated_at: str


class LedgerRecord(_Record):
    seq: int
    at: str
    kind: str
    subject: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_entry(self) -> LedgerEntry:
        return LedgerEntry(self.seq, self.at, self.kind, self.subject, self.payload, self.prev_hash, self.hash)


RECORD_TYPES: dict[str, type[_Record]] = {
    "pattern": PatternRecord, "recall": RecallRecord, "outcome": OutcomeRecord, "decision": DecisionRecord,
    "directive_file": DirectiveFileRecord, "directive_proposal": ProposalRecord,
    "directive_override": OverrideRecord, "ledger": LedgerRecord,
}


# -- writing -------------------------------------------------------------------------------------

def line(kind: str, record: BaseModel | dict[str, Any]) -> bytes:
    """One record as a line of the bundle."""
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else dict(record)
    body = canonical_json(data)
    # "type" first, the rest canonical: a reader (and a person) sees the kind at the start of the line
    return (f'{{"type":"{kind}"' + ("," + body[1:] if body != "{}" else "}") + "\n").encode("utf-8")


def manifest_line(manifest: Manifest) -> bytes:
    return (canonical_json(manifest.model_dump(mode="json")) + "\n").encode("utf-8")


END_LINE = b'{"type":"end"}\n'


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- reading -------------------------------------------------------------------------------------

def read_manifest(first: bytes) -> Manifest:
    """The manifest from the first line; refuses what is not a bundle, or one from a newer ekkmcp."""
    try:
        data = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("type") != "manifest" or data.get("format") != FORMAT:
        raise BundleError("not an ekkmcp bundle: its first line is not an ekkmcp-bundle manifest; pass a file "
                          "written by `ekkmcp export`, or use --from reference-memory for the reference server's file. "
                          "Nothing was imported.")
    version = data.get("version")
    if isinstance(version, int) and version > VERSION:
        raise BundleTooNew(f"the bundle is from a newer ekkmcp (bundle format version {version}; this ekkmcp reads up "
                           f"to version {VERSION}); upgrade ekkmcp (pip install -U ekkmcp) and import again. "
                           "Nothing was imported.")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as error:
        raise BundleError(f"tampered or damaged bundle: the manifest is malformed ({error.errors()[0]['msg']}). "
                          "Nothing was imported.") from None
    if manifest.version < 1 or not manifest.checksum.startswith("sha256:"):
        raise BundleError("tampered or damaged bundle: the manifest's version or checksum is malformed. "
                          "Nothing was imported.")
    return manifest


def check(lines: Iterable[bytes]) -> Manifest:
    """Check a whole bundle (its lines, newline kept) without trusting any record yet; returns its manifest.

    Raises :class:`BundleError` saying *truncated*, *tampered* or *newer version*.
    """
    it = iter(lines)
    manifest = read_manifest(next(it, b""))
    digest, counts, ended, body_lines = hashlib.sha256(), Counter[str](), False, 0
    for raw in it:
        if ended:
            raise BundleError("tampered bundle: there is data after its end line. Nothing was imported.")
        if raw == END_LINE:
            ended = True
            continue
        digest.update(raw)
        body_lines += 1
        counts[_kind_of(raw)] += 1
    expected = sum(manifest.counts.values())
    if not ended:
        raise BundleError(f"truncated bundle: it stops after {body_lines} of the {expected} records its manifest "
                          "lists (the end line is missing); copy or export the whole file again. Nothing was imported.")
    if f"sha256:{digest.hexdigest()}" != manifest.checksum:
        raise BundleError("tampered bundle: its SHA-256 checksum does not match the manifest, so it was changed after "
                          "export; use an unchanged copy. Nothing was imported.")
    found = {k: v for k, v in counts.items() if v}
    promised = {k: v for k, v in manifest.counts.items() if v}
    if found != promised:
        differ = ", ".join(f"{promised.get(k, 0)} {k} listed but {found.get(k, 0)} present"
                           for k in sorted(set(found) | set(promised)) if found.get(k) != promised.get(k))
        raise BundleError(f"tampered bundle: its manifest does not match its records ({differ}). "
                          "Nothing was imported.")
    return manifest


def _kind_of(raw: bytes) -> str:
    match = re.match(rb'\{"type":"([a-z_]+)"[,}]', raw)
    if match:
        return match.group(1).decode()
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "(malformed)"
    return str(value.get("type")) if isinstance(value, dict) else "(malformed)"


def records(lines: Iterable[bytes]) -> Iterator[tuple[str, _Record]]:
    """Decode and validate the records of a checked bundle (the manifest and end lines are skipped)."""
    for number, raw in enumerate(lines, start=1):
        if number == 1 or raw == END_LINE:
            continue
        try:
            data = json.loads(raw)
            kind = data.pop("type")
            yield kind, RECORD_TYPES[kind].model_validate(data)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, AttributeError, TypeError, ValidationError) as e:
            raise BundleError(f"damaged bundle: line {number} is not a valid record ({_short(e)}); "
                              "Nothing was imported.") from None


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return type(error).__name__ if isinstance(error, KeyError) else str(error).splitlines()[0]


# -- merging -------------------------------------------------------------------------------------

def winner(a: Outcome, b: Outcome) -> Outcome:
    """Of two outcomes for the same pattern and recall, the one the loop keeps.

    The same rule as recording: the later one replaces the earlier, except that an inferred
    ``test-run`` outcome never replaces an explicit one.
    """
    earlier, later = sorted((a, b), key=lambda o: (o.recorded_ts, o.uid))
    if later.source == "test-run" and earlier.source != "test-run":
        return earlier
    return later


def replay(outcomes: Sequence[Outcome], reset_ts: float | None, settings: LoopSettings) -> tuple[int, int, Evidence]:
    """(successes, failures, weighted evidence) from a pattern's outcomes, in time order.

    Counts cover every outcome; the decaying evidence only those after the last reset (a
    restore clears it, exactly as ``PatternService.set_status`` does).
    """
    evidence = Evidence()
    successes = failures = 0
    for o in sorted(outcomes, key=lambda o: (o.recorded_ts, o.uid)):
        successes += o.success
        failures += not o.success
        if reset_ts is None or o.recorded_ts > reset_ts:
            evidence = evidence.plus(o.success, o.weight, o.recorded_ts, settings)
    return successes, failures, evidence


# -- the reference memory server's file ----------------------------------------------------------

class ReferenceEntity(BaseModel):
    name: str
    entity_type: str = Field(alias="entityType")
    observations: list[str] = Field(default_factory=list)


class ReferenceRelation(BaseModel):
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    relation_type: str = Field(alias="relationType")


def parse_reference_memory(text: str) -> tuple[list[ReferenceEntity], list[ReferenceRelation]]:
    """The reference ``memory`` server's file: JSON Lines of entities and relations.

    (An older layout, one ``{"entities": [...], "relations": [...]}`` object, is read too.)
    """
    stripped = text.strip()
    if stripped.startswith("{") and "\n" not in stripped:
        whole = _json_or_none(stripped)
        if isinstance(whole, dict) and "entities" in whole:
            items = [{"type": "entity", **e} for e in whole.get("entities", [])]
            items += [{"type": "relation", **r} for r in whole.get("relations", [])]
            return _reference_items(enumerate(items, start=1))
    numbered = [(n, _json_or_none(raw)) for n, raw in enumerate(text.splitlines(), start=1) if raw.strip()]
    return _reference_items(iter(numbered))


def _json_or_none(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None


def _reference_items(items: Iterator[tuple[int, Any]]) -> tuple[list[ReferenceEntity], list[ReferenceRelation]]:
    entities, relations = [], []
    for number, item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        try:
            if kind == "entity":
                entities.append(ReferenceEntity.model_validate(item))
            elif kind == "relation":
                relations.append(ReferenceRelation.model_validate(item))
            else:
                raise ValueError('expected {"type": "entity", ...} or {"type": "relation", ...}')
        except (ValidationError, ValueError) as error:
            raise InvalidInput(f"line {number} of the memory file is not an entity or relation of the reference "
                               f"memory server ({_short(error)}); pass its memory.json (JSON Lines)") from None
    if not entities:
        raise InvalidInput("the memory file holds no entities; pass the reference memory server's memory.json")
    return entities, relations


def reference_pattern_fields(entity: ReferenceEntity, relations: Sequence[ReferenceRelation]) -> dict[str, Any]:
    """One entity (with at least one observation) as pattern fields.

    title = the entity's name; problem = what it is (type and name); solution = its observations,
    one per line; tags = its type; works_when = its outgoing relations ("<relation> <target>").
    """
    kind = " ".join(entity.entity_type.split()) or "entity"
    title = " ".join(entity.name.split())
    if len(title) > validate.MAX_TITLE_CHARS:
        title = title[: validate.MAX_TITLE_CHARS - 1] + "…"
    tag = re.sub(r"\s+", "-", kind.lower())[: validate.MAX_TAG_CHARS]
    links = [f"{r.relation_type} {r.target}" for r in relations if r.source == entity.name]
    return {
        "title": validate.title(title),
        "problem": validate.text("problem", f"What is known about the {kind} “{entity.name}” "
                                            "(imported from the reference memory server)"),
        "solution": validate.text("solution", "\n".join(f"- {o.strip()}" for o in entity.observations if o.strip())),
        "tags": validate.tags([tag]),
        "works_when": validate.text_list("works_when", links[: validate.MAX_LIST_ITEMS]),
        "relations_dropped": max(0, len(links) - validate.MAX_LIST_ITEMS),
    }


# -- results -------------------------------------------------------------------------------------

class ExportResult(BaseModel):
    file: str
    version: int
    checksum: str
    counts: dict[str, int]
    bytes: int


class ImportResult(BaseModel):
    source: Literal["ekkmcp-bundle", "reference-memory"]
    file: str
    checksum: str = Field(description="The bundle's checksum (or the memory file's SHA-256).")
    changed: bool = Field(description="False when everything was already here: nothing was written.")
    added: dict[str, int]
    skipped: dict[str, int] = Field(description="Records already here (by content hash, uid or id), or superseded.")
    quarantined: list[str] = Field(default_factory=list, description="Patterns the merged outcomes quarantined.")
    source_ledger: dict[str, Any] | None = Field(
        default=None, description="The exporter's ledger (entries, head_hash, verified): kept for the record only.")
    notes: list[str] = Field(default_factory=list)
