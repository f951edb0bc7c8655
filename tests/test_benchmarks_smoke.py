"""The benchmark suite runs end to end at tiny sizes and writes its JSON (no timing is asserted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.clients import MEMORY_SERVER
from benchmarks.run import SECTIONS, main

pytestmark = pytest.mark.slow


def test_quick_run_writes_every_section(tmp_path: Path) -> None:
    # The reference server is compared only where it is installed already: CI never downloads it.
    sections = [s for s in SECTIONS if s != "reference" or (shutil.which("node") and MEMORY_SERVER.exists())]
    output = tmp_path / "latest.json"
    main(["--quick", "--only", ",".join(sections), "--output", str(output)])
    report = json.loads(output.read_text())
    assert set(report) == {"machine", "quick", "sizes", "targets", "results"}
    assert report["quick"] is True and report["machine"]["sqlite"]
    assert set(report["results"]) == set(sections)
    for figures in report["results"]["recall"].values():
        assert figures["recall"]["n"] > 0
        assert set(figures["quality"]) == {"queries", "plain_fts5_bm25", "recall_index", "recall_with_evidence"}
    assert report["results"]["outcome"]["synchronous_full"]["per_second"] > 0
    assert report["results"]["stdio"]["recall_answer_text_bytes_limit5"] > 0
    assert report["results"]["memory"]["peak_rss_mb"] > 0


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--quick", "--only", "nonsense", "--output", str(tmp_path / "x.json")])
