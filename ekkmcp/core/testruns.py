"""Is a shell command a test or build run? (Its exit status then becomes an outcome.)

Commands are recognised at command position: the start of the command line or of a segment
after ``;``, ``&&``, ``||``, ``|``, ``(`` or a leading ``env VAR=…``/``time``/``sudo``. Users add
their own (``test_commands`` in ``$EKKMCP_HOME/config.yaml``): each entry is a command prefix,
matched as whole words (``just test`` matches ``just test -v`` but not ``just tests``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_TEST_COMMANDS = (
    "pytest", "py.test", "python -m pytest", "python3 -m pytest", "uv run pytest", "poetry run pytest",
    "python -m unittest", "python3 -m unittest", "tox", "nox", "hatch test", "hatch run test",
    "npm test", "npm run test", "npm run build", "npm t", "pnpm test", "pnpm run test", "pnpm build",
    "pnpm run build", "yarn test", "yarn run test", "yarn build", "bun test", "deno test", "npx jest", "npx vitest",
    "jest", "vitest", "cargo test", "cargo build", "cargo nextest", "go test", "go build", "go vet",
    "make test", "make check", "make build", "make", "ctest", "mvn", "./mvnw", "gradle", "./gradlew",
    "dotnet test", "dotnet build", "bundle exec rspec", "rspec", "rake test", "mix test", "phpunit",
    "vendor/bin/phpunit", "swift test", "swift build", "zig build", "stack test", "cabal test",
)

_PREFIX = r"(?:^|[;&|(]\s*|&&\s*|\|\|\s*)\s*(?:(?:env\s+)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*)(?:(?:time|sudo|nice)\s+)*"


def compile_matcher(extra: Iterable[str] = ()) -> re.Pattern[str]:
    commands = sorted({*DEFAULT_TEST_COMMANDS, *(c.strip() for c in extra if c.strip())}, key=len, reverse=True)
    alternatives = "|".join(r"\s+".join(re.escape(word) for word in c.split()) for c in commands)
    return re.compile(rf"{_PREFIX}(?:{alternatives})(?=$|[\s;&|)])", re.MULTILINE)


_DEFAULT = compile_matcher()


def is_test_command(command: str, extra: Iterable[str] = ()) -> bool:
    extra = list(extra)
    matcher = compile_matcher(extra) if extra else _DEFAULT
    return bool(matcher.search(command))
