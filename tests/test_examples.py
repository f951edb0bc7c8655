"""The examples stay true: the demo runs end to end and the config files parse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import child_env

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_golden_loop_demo_walks_the_whole_loop(home: Path) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / "golden_loop_demo.py"), "--home", str(home)],
                            capture_output=True, text=True, timeout=300, env=child_env(home))
    assert result.returncode == 0, result.stderr
    assert '"quarantined": true' in result.stdout
    assert "quarantined → active" in result.stdout
    assert '"verdict": "block"' in result.stdout and '"verdict": "allow"' in result.stdout


def test_example_configs_are_valid_json() -> None:
    for path in EXAMPLES.glob("*.json"):
        data = json.loads(path.read_text())
        assert "mcpServers" in data or "hooks" in data, path
