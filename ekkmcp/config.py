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
    test_commands: tuple[str, ...] = ()
    database_url: str | None = None  # postgresql://… selects the team store (ekkmcp.store.postgres)
    namespace: str = "default"  # whose rows, in a shared database (the embedded file is one namespace)

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILENAME

    @property
    def directives_dir(self) -> Path:
        return self.home / "directives"


def _read_file_settings(home: Path) -> dict[str, object]:
    """``$EKKMCP_HOME/config.yaml``, if there is one (keys: half_life_days, test_run_weight,
    test_commands, store_action_text). Environment variables win over it."""
    path = home / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SystemExit(f"ekkmcp: {path} is not valid YAML ({error}); fix or remove it") from None
    known = {"half_life_days", "test_run_weight", "test_commands", "store_action_text"}
    if not isinstance(data, dict) or set(data) - known:
        raise SystemExit(f"ekkmcp: {path} may hold only these keys: {', '.join(sorted(known))}")
    return data


def load_config(home: str | Path | None = None, project_dir: str | Path | None = None,
                database_url: str | None = None) -> Config:
    """Configuration from ``config.yaml`` and the environment; ``home`` (the CLI's ``--home``) wins over
    ``EKKMCP_HOME``, ``database_url`` (``--database-url``) over ``EKKMCP_DATABASE_URL``.

    ``project_dir`` (default: the working directory) is where a project's own directives are
    looked for, in ``.ekkmcp/directives/``.
    """
    folder = Path(home).expanduser() if home else default_home()
    file = _read_file_settings(folder)
    defaults = LoopSettings()
    loop = LoopSettings(
        half_life_days=_float_env("EKKMCP_HALF_LIFE_DAYS", float(file.get("half_life_days", defaults.half_life_days))),
        test_run_weight=_float_env("EKKMCP_TEST_RUN_WEIGHT",
                                   float(file.get("test_run_weight", defaults.test_run_weight))),
    )
    raw_flag = os.environ.get("EKKMCP_STORE_ACTION_TEXT")
    commands = file.get("test_commands", [])
    if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
        raise SystemExit(f"ekkmcp: test_commands in {folder / 'config.yaml'} must be a list of strings")
    return Config(
        home=folder,
        loop=loop,
        default_project=os.environ.get("EKKMCP_PROJECT") or None,
        store_action_text=raw_flag in {"1", "true", "yes"} if raw_flag is not None
        else bool(file.get("store_action_text", False)),
        project_dir=Path(project_dir) if project_dir else Path.cwd(),
        test_commands=tuple(commands),
        database_url=database_url or os.environ.get("EKKMCP_DATABASE_URL") or None,
        namespace=os.environ.get("EKKMCP_NAMESPACE") or "default",
    )
