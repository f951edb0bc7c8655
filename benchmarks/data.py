"""Synthetic but realistic patterns and labelled queries, generated from a fixed seed.

Patterns read like lessons an agent would store: a title naming a symptom and a tool, a problem
and a solution written from a mixed vocabulary (shared technical words, domain words, a long tail
of project-specific names and error codes), tags, projects and outcome histories. Word choice is
Zipf-distributed so a few words are very common and most are rare, as in real notes.

Each labelled query is written from one pattern's words (plus the odd unrelated word), so that
pattern is the known answer: the top-5 hit rate and nDCG@10 of a ranking can be measured.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

SEED = 20260807

DOMAINS: dict[str, str] = {
    "databases": "sqlite postgres mysql index query transaction deadlock lock vacuum wal migration schema replica "
                 "primary shard partition cursor commit rollback isolation btree planner join constraint sequence "
                 "pgbouncer connection pool timeout busy journal checkpoint analyze explain trigger view",
    "networking": "tcp udp dns tls certificate socket proxy nginx latency packet mtu handshake keepalive http2 "
                  "websocket timeout retry backoff loadbalancer ipv6 firewall port nat route gateway econnreset "
                  "econnrefused resolver ssl sni grpc quic bandwidth",
    "build": "webpack vite babel cmake make bazel gradle maven npm yarn pnpm pip poetry wheel linker compiler "
             "cache artifact lockfile dependency version semver monorepo bundle sourcemap treeshaking esbuild "
             "rollup cargo crate toolchain",
    "languages": "python rust golang typescript javascript java kotlin ruby elixir haskell scala csharp swift "
                 "generics closure async await coroutine goroutine borrow lifetime typing decorator metaclass "
                 "iterator generator exception panic macro trait interface",
    "cloud": "aws gcp azure lambda s3 bucket iam role terraform kubernetes pod node helm ingress autoscaling "
             "container docker image registry ecs eks cloudformation quota region zone serverless secret vault "
             "kubelet daemonset configmap",
    "testing": "pytest unittest jest mocha fixture mock stub flaky snapshot coverage assertion parametrize "
               "integration e2e playwright selenium hypothesis property fuzz regression harness tox nox "
               "testcontainers conftest tmpdir teardown",
    "frontend": "react vue svelte angular css dom render hydration hook state redux component props layout "
                "flexbox grid animation accessibility aria viewport responsive tailwind storybook ssr nextjs "
                "nuxt router bundler",
    "observability": "logging metrics tracing prometheus grafana opentelemetry span alert dashboard sentry "
                     "loki jaeger histogram cardinality sampling exporter scrape retention logfmt structlog "
                     "datadog pagerduty slo",
    "security": "oauth jwt token csrf xss injection sanitize secret rotation password hash bcrypt argon2 cors "
                "csp sandbox permission rbac audit encryption aes rsa signing nonce session cookie",
    "os": "linux kernel systemd cgroup namespace memory oom swap inode filesystem ext4 permissions signal "
          "sigterm sigkill process thread fork epoll mmap ulimit cron shell bash zsh",
    "ci": "github actions gitlab jenkins pipeline runner workflow matrix artifact cache secrets deploy release "
          "tag branch merge rebase cherry bisect hook precommit lint formatter ruff black mypy eslint prettier",
    "data": "pandas numpy polars arrow parquet csv json schema etl airflow dbt spark kafka consumer producer "
            "offset partition backpressure batch stream window watermark serialization avro protobuf",
}

COMMON = ("error fails failing failure slow fast hangs crash crashes broken missing wrong unexpected intermittent "
          "config configuration setting environment variable file path directory permission denied timeout "
          "memory leak usage high low large small update upgrade install build test run server client request "
          "response cache stale invalid valid value default option flag command output input local remote "
          "production staging development debug release version old new latest warning retry limit size").split()

FILLER = ("the a when after before with without on in for of to from by while because so then it this that "
          "is was are be can cannot does not only always never every each some all").split()

VERBS = "fix avoid handle prevent debug resolve speed up work around detect recover from tune".split()
SYLLABLES = "ka lo mi nu pe ra si to vu ze bra cli dro fle gri kro pla sto tri zu xen qua vor lum tek".split()
PROJECTS = ["atlas", "borealis", "cobalt", "dynamo", "ember", "fjord", "granite", "helix"]


@dataclass
class SynthPattern:
    key: int
    title: str
    problem: str
    solution: str
    tags: list[str]
    works_when: list[str]
    project: str | None
    outcomes: list[bool] = field(default_factory=list)


@dataclass
class LabelledQuery:
    text: str
    answer: int  # the key of the pattern the query was written from
    project: str | None = None  # the answer's project: the agent asks from inside it


def _zipf_weights(n: int, s: float = 1.05) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank ** s) for rank in range(1, n + 1)))


class Generator:
    """Deterministic pattern and query generator (same seed → same data, on every machine)."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.domains = {name: words.split() for name, words in DOMAINS.items()}
        self.domain_names = list(self.domains)
        self.domain_weights = _zipf_weights(len(self.domain_names), 0.6)
        self.common_weights = _zipf_weights(len(COMMON))
        # The long tail: library names, module names, error codes, hosts — mostly seen once or twice.
        names = {"".join(self.rng.choices(SYLLABLES, k=self.rng.randint(2, 4))) for _ in range(40_000)}
        self.tail = sorted(names)
        self.rng.shuffle(self.tail)
        self.tail_weights = _zipf_weights(len(self.tail), 0.9)

    def _domain_words(self, domain: str, k: int) -> list[str]:
        words = self.domains[domain]
        return self.rng.choices(words, cum_weights=_cached_weights(len(words)), k=k)

    def _sentence(self, domain: str, n: int, tail: int) -> str:
        words = (self._domain_words(domain, n // 2) + self.rng.choices(COMMON, cum_weights=self.common_weights,
                                                                       k=n // 4)
                 + self.rng.choices(self.tail, cum_weights=self.tail_weights, k=tail))
        self.rng.shuffle(words)
        out = []
        for word in words:
            out.append(word)
            if self.rng.random() < 0.35:
                out.append(self.rng.choice(FILLER))
        return " ".join(out)

    def pattern(self, key: int) -> SynthPattern:
        rng = self.rng
        domain = rng.choices(self.domain_names, cum_weights=self.domain_weights)[0]
        second = rng.choice(self.domain_names) if rng.random() < 0.3 else domain
        focus = self._domain_words(domain, 2) + [rng.choices(self.tail, cum_weights=self.tail_weights)[0]]
        symptom = rng.choices(COMMON, cum_weights=self.common_weights, k=2)
        title = f"{rng.choice(VERBS).capitalize()} {' '.join(symptom)} in {' '.join(focus)}"
        code = f"e{rng.randint(100, 99999)}" if rng.random() < 0.3 else ""
        problem = f"{self._sentence(domain, rng.randint(14, 30), rng.randint(1, 3))} {code}".strip()
        solution = self._sentence(second, rng.randint(20, 45), rng.randint(1, 4))
        tags = sorted({domain, *self._domain_words(domain, rng.randint(1, 3))})
        works_when = [self._sentence(domain, rng.randint(4, 8), 0) for _ in range(rng.randint(0, 2))]
        project = rng.choice(PROJECTS) if rng.random() < 0.3 else None
        history = [rng.random() < rng.choice((0.2, 0.7, 0.95)) for _ in range(rng.choice((0, 0, 1, 2, 5, 12)))]
        return SynthPattern(key, title, problem, solution, tags, works_when, project, history)

    def patterns(self, n: int) -> list[SynthPattern]:
        return [self.pattern(key) for key in range(n)]

    def queries(self, patterns: list[SynthPattern], n: int) -> list[LabelledQuery]:
        """``n`` 3–6-word queries, each written from one pattern (its known answer)."""
        rng = random.Random(SEED + len(patterns))
        queries = []
        for target in rng.sample(patterns, min(n, len(patterns))):
            title = [w for w in target.title.lower().split()[1:] if w not in FILLER]
            body = [w for w in target.problem.lower().split() if w not in FILLER]
            size = rng.randint(3, 6)
            words = rng.sample(title, min(len(title), rng.randint(2, 3)))
            words += rng.sample(body, min(len(body), size - len(words)))
            if rng.random() < 0.3:  # a word the pattern does not contain, as real queries have
                words[rng.randrange(len(words))] = rng.choice(COMMON)
            rng.shuffle(words)
            queries.append(LabelledQuery(" ".join(dict.fromkeys(words)), target.key, target.project))
        return queries


_WEIGHTS: dict[int, list[float]] = {}


def _cached_weights(n: int) -> list[float]:
    if n not in _WEIGHTS:
        _WEIGHTS[n] = _zipf_weights(n)
    return _WEIGHTS[n]
