"""Loading directive packs from YAML, all-or-nothing.

Sources, in order: the shipped packs, the user's ``$EKKMCP_HOME/directives/*.yaml``, a
project's ``<project>/.ekkmcp/directives/*.yaml`` (scoped to that project), then ``extra``.
Everything is validated together; any problem raises :class:`DirectiveError` naming the file
and the rule, and nothing is returned.

**Contradiction.** Two rules contradict when, in the same scope (same ``project``, ``None``
being global) and at the same priority, with overlapping kinds (an empty list is every
kind), a forbidding rule (NEVER or AVOID) has a trigger (``match``) that is identical after
normalisation (keywords casefolded and whitespace-collapsed, every list order-insensitive and
deduplicated, sub-matchers recursively) to the ``requires`` of a demanding rule (MUST or
PREFER): one rule then demands exactly what the other forbids, and priority cannot settle it.
Raise the priority of one, or scope them differently.

Top-level keys starting with ``x-`` are ignored, so a pack can hold YAML anchors of shared
matchers (``x-blocks: [&stamp {patterns: [...]}]``) and reuse them with ``*stamp``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ekkmcp.errors import DirectiveError

from .model import ID_PATTERN, Directive, format_validation_error

PACK_GLOB = "*.yaml"
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster, same result


class PackFile(BaseModel):
    """A pack file's top level; each directive is validated on its own to name it in errors."""

    model_config = ConfigDict(extra="forbid")

    pack: str = Field(pattern=ID_PATTERN)
    description: str = ""
    directives: list[dict[str, Any]] = Field(default_factory=list)


def shipped_pack_dir() -> Path:
    """Where the shipped packs are: ``ekkmcp/packs`` in a wheel, else the repo's ``directives/``."""
    import ekkmcp

    package_dir = Path(ekkmcp.__file__).parent
    installed = package_dir / "packs"
    if installed.is_dir() and any(installed.glob(PACK_GLOB)):
        return installed
    return package_dir.parent / "directives"


def load_pack_file(path: Path, project: str | None = None) -> list[Directive]:
    """Load and validate one pack file; ``project`` scopes every rule to that project."""
    path = Path(path)
    name = str(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except OSError as exc:
        raise DirectiveError(f"cannot read the pack: {exc.strerror or exc}", file=name) from None
    except yaml.YAMLError as exc:
        raise DirectiveError(f"not valid YAML: {exc}", file=name) from None
    if not isinstance(raw, dict):
        raise DirectiveError("a pack must be a mapping with 'pack' and 'directives'", file=name)
    # "x-..." keys hold YAML anchors (shared matchers) and are not part of the pack
    raw = {key: value for key, value in raw.items() if not str(key).startswith("x-")}
    try:
        pack = PackFile.model_validate(raw)
    except ValidationError as exc:
        raise DirectiveError(format_validation_error(exc), file=name) from None
    directives = [_load_rule(item, pack.pack, project, name, position) for position, item in enumerate(pack.directives)]
    validate_together(directives, {d.id: name for d in directives})
    return directives


def _load_rule(item: Any, pack: str, project: str | None, file: str, position: int) -> Directive:
    rule_name = item.get("id") if isinstance(item, dict) else None
    rule_name = str(rule_name) if rule_name is not None else f"#{position + 1}"
    if not isinstance(item, dict):
        raise DirectiveError("a directive must be a mapping", file=file, rule=rule_name)
    if item.get("pack") not in (None, pack):
        raise DirectiveError(f"says pack {item['pack']!r} inside pack {pack!r}", file=file, rule=rule_name)
    data = {**item, "pack": pack}
    if project is not None:
        data["project"] = project
    try:
        return Directive.model_validate(data)
    except ValidationError as exc:
        raise DirectiveError(format_validation_error(exc), file=file, rule=rule_name) from None


def _load_dir(folder: Path, project: str | None, origins: dict[str, str]) -> list[Directive]:
    if not folder.is_dir():
        return []
    loaded: list[Directive] = []
    for path in sorted(folder.glob(PACK_GLOB)):
        directives = load_pack_file(path, project)
        for d in directives:
            _check_duplicate(d, origins, str(path))
        loaded.extend(directives)
    return loaded


def _check_duplicate(directive: Directive, origins: dict[str, str], file: str) -> None:
    if directive.id in origins:
        raise DirectiveError(f"duplicate id: already defined in {origins[directive.id]}", file=file, rule=directive.id)
    origins[directive.id] = file


def load_directives(
    home: Path | None,
    project_dir: Path | None = None,
    project: str | None = None,
    extra: Sequence[Directive] = (),
) -> list[Directive]:
    """Shipped + user (``home/directives``) + project (``project_dir/.ekkmcp/directives``) + extra.

    Project rules are scoped to ``project`` (default: the project folder's name). Raises
    :class:`DirectiveError` on any invalid file or rule, duplicate id or contradiction.
    """
    origins: dict[str, str] = {}
    directives = _load_dir(shipped_pack_dir(), None, origins)
    if home is not None:
        directives += _load_dir(Path(home) / "directives", None, origins)
    if project_dir is not None:
        scope = project or Path(project_dir).resolve().name
        directives += _load_dir(Path(project_dir) / ".ekkmcp" / "directives", scope, origins)
    for directive in extra:
        _check_duplicate(directive, origins, f"(extra: {directive.pack or 'stored'})")
        directives.append(directive)
    validate_together(directives, origins)
    return directives


def validate_together(directives: Iterable[Directive], origins: dict[str, str]) -> None:
    """Raise on duplicate ids and contradictions among active/proposed rules (see module doc)."""
    seen: set[str] = set()
    forbidding: dict[tuple[Any, ...], list[Directive]] = {}
    demanding: list[Directive] = []
    for d in directives:
        if d.id in seen:
            raise DirectiveError("duplicate id", file=origins.get(d.id), rule=d.id)
        seen.add(d.id)
        if d.status == "disabled":
            continue
        if d.type in ("NEVER", "AVOID"):
            forbidding.setdefault((d.project, d.priority, d.match.normalised()), []).append(d)
        elif d.requires is not None:
            demanding.append(d)
    for d in demanding:
        assert d.requires is not None
        for other in forbidding.get((d.project, d.priority, d.requires.normalised()), []):
            if _kinds_overlap(d, other):
                raise DirectiveError(
                    f"contradicts rule {other.id!r} ({origins.get(other.id, other.pack)}): at priority "
                    f"{d.priority} this {d.type} rule requires exactly what that {other.type} rule forbids; "
                    "give one a higher priority or a different scope",
                    file=origins.get(d.id),
                    rule=d.id,
                )


def _kinds_overlap(a: Directive, b: Directive) -> bool:
    return not a.kinds or not b.kinds or bool(set(a.kinds) & set(b.kinds))


def directives_to_yaml(directives: Iterable[Directive], pack: str = "exported", description: str = "") -> str:
    """A pack file (YAML) holding the directives, readable by :func:`load_pack_file`."""
    items = []
    for d in directives:
        data = d.to_dict()
        data.pop("pack", None)
        items.append(data)
    document: dict[str, Any] = {"pack": pack}
    if description:
        document["description"] = description
    document["directives"] = items
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
