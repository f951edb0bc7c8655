"""Where the store lives and how the loop is tuned. Reading configuration never creates anything."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ekkmcp.core.loop import LoopSettings

DB_FILENAME = "memory.db"


def default_home() -> Path:
    """``$EKKMCP_HOME``, else the platform's user data folder (e.g. ~/.local/share/ekkmcp)."""
    env = os.environ.get("EKKMCP_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("ekkmcp", appauthor=False))


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"ekkmcp: {name}={raw!r} is not a number; unset it or set e.g. {name}={default}") from None


@dataclass(frozen=True)
class Config:
    home: Path
    loop: LoopSettings = field(default_factory=LoopSettings)
    default_project: str | None = None
    store_action_text: bool = False
    project_dir: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILENAME

    @property
    def directives_dir(self) -> Path:
        return self.home / "directives"


def load_config(home: str | Path | None = None, project_dir: str | Path | None = None) -> Config:
    """Configuration from the environment; ``home`` (the CLI's ``--home``) wins over ``EKKMCP_HOME``.

    ``project_dir`` (default: the working directory) is where a project's own directives are
    looked for, in ``.ekkmcp/directives/``.
    """
    defaults = LoopSettings()
    loop = LoopSettings(
        half_life_days=_float_env("EKKMCP_HALF_LIFE_DAYS", defaults.half_life_days),
        test_run_weight=_float_env("EKKMCP_TEST_RUN_WEIGHT", defaults.test_run_weight),
    )
    return Config(
        home=Path(home).expanduser() if home else default_home(),
        loop=loop,
        default_project=os.environ.get("EKKMCP_PROJECT") or None,
        store_action_text=os.environ.get("EKKMCP_STORE_ACTION_TEXT", "") in {"1", "true", "yes"},
        project_dir=Path(project_dir) if project_dir else Path.cwd(),
    )
