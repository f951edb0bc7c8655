"""Benchmark: one ``Engine.check`` of a 2,000-character action against ~1,000 directives.

The directives are synthesised with a fixed seed (keyword rules, phrase rules, regex rules with
and without a required literal, MUST rules with a requirement, mixed kinds, some tool/path
scoped) and the shipped packs are added. The action is realistic shell/prose text of 2,000
characters in which a handful of synthetic keywords are planted, so a few rules fire, as in
real use. Prints p50/p99 in milliseconds; ``run()`` returns the figures as a dict.

    python benchmarks/check_directive.py [--directives 1000] [--repeat 2000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ekkmcp.directives import Directive, Engine, load_directives  # noqa: E402

SEED = 20240601
ACTION_CHARS = 2_000
KINDS = ["command", "file_edit", "reply", "tool_call", "other"]
FILLER = (
    "cd /srv/app && git status && git diff --stat HEAD~1 ; ls -la src/ tests/ ; "
    "python -m pytest -q tests/test_api.py -x --maxfail=1 ; echo 'the build finished in 42s' ; "
    "npm run lint -- --fix ; docker compose up -d db cache ; curl -s http://localhost:8080/health | jq . ; "
    "The user asked to refactor the cache layer so that eviction happens on write, not on read. "
    "I updated the handler, added a regression test and ran the suite twice; all green. "
)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4)))


def synthesise(n: int, seed: int = SEED) -> tuple[list[Directive], list[str]]:
    """``n`` varied directives and the vocabulary their keywords come from."""
    rng = random.Random(seed)
    vocab = sorted({_word(rng) for _ in range(n * 3)})
    directives: list[Directive] = []
    for i in range(n):
        style = i % 6
        kinds = rng.sample(KINDS, rng.randint(0, 2))
        base = {
            "id": f"synthetic-{i:04d}",
            "rule": f"Synthetic rule {i}.",
            "reason": "Benchmark load.",
            "priority": rng.randint(0, 100),
            "kinds": kinds,
            "pack": "synthetic",
        }
        words = rng.sample(vocab, 3)
        if style == 0:
            data = {**base, "type": "NEVER", "match": {"keywords": words[:2]}}
        elif style == 1:
            data = {**base, "type": "AVOID", "match": {"keywords": [f"{words[0]} {words[1]}"]}}
        elif style == 2:
            data = {**base, "type": "NEVER", "match": {"patterns": [rf"\b{words[0]}-\d+\b", rf"{words[1]}[_-]?{words[2]}"]}}
        elif style == 3:
            data = {**base, "type": "MUST", "match": {"keywords": [words[0]]}, "requires": {"keywords": [words[1]]}}
        elif style == 4:
            data = {
                **base,
                "type": "AVOID",
                "match": {"all_of": [{"keywords": [words[0]]}, {"patterns": [rf"(?i)\b{words[1]}\s+\w+"]}]},
                "tools": ["Bash", "mcp__*"] if rng.random() < 0.3 else [],
                "paths": ["src/**/*.py"] if rng.random() < 0.2 else [],
            }
        else:
            # a regex with no usable literal: always evaluated (the prefilter's worst case)
            pattern = rf"\b[0-9a-f]{{{rng.randint(30, 40)}}}\b" if i % 60 == 5 else rf"(?i){words[0]}\d{{2,4}}"
            data = {**base, "type": "NEVER", "match": {"patterns": [pattern]}}
        directives.append(Directive.model_validate(data))
    return directives, vocab


def make_action(directives: list[Directive], planted: int = 6, seed: int = SEED) -> str:
    """2,000 characters of realistic text with keywords of ``planted`` command rules in it."""
    rng = random.Random(seed + 1)
    text = (FILLER * (ACTION_CHARS // len(FILLER) + 2))[:ACTION_CHARS]
    words = text.split(" ")
    eligible = [d for d in directives if d.type == "NEVER" and d.match.keywords and (not d.kinds or "command" in d.kinds)]
    for word in [d.match.keywords[0] for d in rng.sample(eligible, planted)]:
        words[rng.randrange(len(words))] = word
    return " ".join(words)[:ACTION_CHARS].ljust(ACTION_CHARS, ".")


def run(n_directives: int = 1000, repeat: int = 2000) -> dict[str, float | int | str]:
    """Time ``repeat`` checks; return p50/p99/mean in ms and the setup figures."""
    synthetic, _ = synthesise(n_directives)
    directives = load_directives(None, extra=synthetic)
    started = time.perf_counter()
    engine = Engine(directives)
    build_ms = (time.perf_counter() - started) * 1000
    action = make_action(synthetic)
    result = engine.check(action, kind="command", tool="Bash", paths=["src/app/cache.py"])
    for _ in range(min(50, repeat)):
        engine.check(action, kind="command", tool="Bash")
    timings = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        engine.check(action, kind="command", tool="Bash", paths=["src/app/cache.py"])
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return {
        "directives": len(directives),
        "action_chars": len(action),
        "repeat": repeat,
        "build_ms": round(build_ms, 2),
        "p50_ms": round(statistics.median(timings), 4),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 4),
        "mean_ms": round(statistics.fmean(timings), 4),
        "matches": len(result.matches),
        "verdict": result.verdict,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directives", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args(argv)
    figures = run(args.directives, args.repeat)
    print(
        f"Engine.check: {figures['directives']} directives, {figures['action_chars']}-char action, "
        f"{figures['repeat']} runs: p50 {figures['p50_ms']:.3f} ms, p99 {figures['p99_ms']:.3f} ms "
        f"(build {figures['build_ms']:.0f} ms, {figures['matches']} matches, verdict {figures['verdict']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
