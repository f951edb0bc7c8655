"""One way to print results: ``--json`` (stable keys, the tools' field names) or a readable table."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel


def plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    return json.dumps(plain(value), indent=2, ensure_ascii=False)


def print_json(value: Any) -> None:
    sys.stdout.write(dumps(value) + "\n")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *, title: str | None = None,
          empty: str = "nothing to show") -> None:
    """A terminal table; ``columns`` are (key, heading) pairs."""
    if not rows:
        print(empty)
        return
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title, show_lines=False, header_style="bold")
    for key, heading in columns:
        view.add_column(heading, overflow="fold", no_wrap=key.endswith("id"))
    for row in rows:
        view.add_row(*(_cell(row.get(key)) for key, _ in columns))
    # Piped output gets a wide table instead of rich's 80-column default.
    Console(width=None if sys.stdout.isatty() else 160).print(view)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def fields(value: Any, *, order: Sequence[str] | None = None, format_value: Callable[[Any], str] = _cell) -> None:
    """A ``key: value`` listing of one object."""
    data = plain(value)
    keys = list(order or data.keys())
    width = max(len(k) for k in keys)
    for key in keys:
        print(f"{key:<{width}}  {format_value(data.get(key))}")
