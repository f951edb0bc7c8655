"""The pure directive core: rules, packs, the check engine, examples, lint and hook mapping.

No storage, MCP, CLI or terminal imports here: adapters call these functions.
"""

from __future__ import annotations

from .engine import MAX_ACTION_BYTES, Engine
from .examples import ExampleFailure, run_examples
from .lint import LintProblem, lint
from .loader import directives_to_yaml, load_directives, load_pack_file, shipped_pack_dir
from .model import KINDS, CheckResult, Directive, Example, Match, Matcher
from .secrets import redact_secrets

__all__ = [
    "KINDS",
    "MAX_ACTION_BYTES",
    "CheckResult",
    "Directive",
    "Engine",
    "Example",
    "ExampleFailure",
    "LintProblem",
    "Match",
    "Matcher",
    "directives_to_yaml",
    "lint",
    "load_directives",
    "load_pack_file",
    "redact_secrets",
    "run_examples",
    "shipped_pack_dir",
]
