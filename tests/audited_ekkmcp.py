"""Run the ``ekkmcp`` command under a Python audit hook that logs sockets and file writes (a test helper).

Usage: ``python tests/audited_ekkmcp.py LOG ekkmcp-arguments...``. Each audited event becomes one
JSON line in LOG: every socket event, every ``open`` for writing, every file-system change, every
SQLite connection. The hook is installed before ekkmcp is imported, so nothing escapes it that
goes through Python (C libraries that open files or sockets on their own are not seen; ekkmcp's
only C library doing I/O is SQLite, whose files are seen through ``sqlite3.connect``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
FS_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate", "os.chmod",
             "os.chown", "os.utime", "shutil.copyfile", "shutil.move", "shutil.rmtree", "tempfile.mkstemp",
             "tempfile.mkdtemp", "sqlite3.connect"}


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return repr(value)[:200]


def _install(log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event.startswith("socket."):
            record: list[Any] = [event, [_plain(a) for a in args]]
        elif event == "open":
            path, mode, flags = (list(args) + [None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS)
            if not writing or isinstance(path, int):
                return
            record = [event, [_plain(path), _plain(mode), flags]]
        elif event in FS_EVENTS:
            record = [event, [_plain(a) for a in args]]
        else:
            return
        os.write(fd, (json.dumps(record) + "\n").encode())

    sys.addaudithook(hook)


if __name__ == "__main__":
    _install(sys.argv[1])
    sys.argv = ["ekkmcp", *sys.argv[2:]]
    from ekkmcp.cli import main

    main()
