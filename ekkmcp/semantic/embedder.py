"""The embedding model of hybrid recall, loaded from the files of an installed package, never a hub.

The model is WordLlama ``l2_supercat`` (MIT), shipped inside the ``wordllama`` wheel: a static
token-embedding table pooled by mean. It was chosen by measurement (see the README: recall quality
on ``tests/data/retrieval_set.jsonl``, latency, memory, install size). Only its two files are read —
the ``wordllama`` package itself is never imported (it would pull ``requests`` and a hub client) —
and each file's SHA-256 is checked against the value pinned here before use. What is derived from
them (the int8 table, the vocabulary) is kept in ``EKKMCP_HOME/models`` and read from there while
the files stay as they were verified (same path, size and modification time): a server's first
recall then loads the model in about 15 ms instead of 60.

Sized for a small resident memory (issue #8: a server holding 100k patterns within 150 MB):

- **128 of the 256 dimensions.** The model is Matryoshka-trained (64 to 1024), so its first 128
  dimensions are the model WordLlama itself loads with ``trunc_dim=128``. On the labelled set they
  rank at least as well as 256 (nDCG@10 0.91 vs 0.90) and halve the vector index (12.8 MB per 100k
  patterns). 64 would save 8 MB more but no longer separates off-topic queries from right answers.
- **An int8 table.** Those 128 columns are kept as int8 with a scale per token (4 MB), read from the
  file in blocks: no memory map, whose touched pages counted up to 16 MB.
- **A tokenizer from the vocabulary alone.** The model's tokenizer is a Llama-2 SentencePiece BPE
  whose merge ranks follow from its vocabulary (``Tokenizer``, pure Python, gives the same ids as the
  ``tokenizers`` library). It holds 4 MB; the library took 19 MB (its import and its object).

Anything wrong (extra not installed, file missing, corrupt or different) makes ``load()`` return an
``Unavailable`` with the cause; the caller keeps keyword recall. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DIM = 128
# The stored vectors' model: another name (the 256-dimension vectors were "…-256") makes them absent for this
# model, so the first recalls' catch-up or `ekkmcp reindex` replaces them.
MODEL = f"wordllama-l2-supercat-{DIM}"
PACKAGE = "wordllama"
WEIGHTS = ("weights/l2_supercat_256.safetensors", "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5")
TOKENIZER = ("tokenizers/l2_supercat_tokenizer_config.json",
             "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68")
MAX_TOKENS = 1024  # a static model averages tokens: more adds cost, not meaning
TABLE_BLOCK = 2048  # table rows read and converted at a time (1 MB of the file)
CACHE_WORDS = 1024  # words kept tokenized (0.3 MB): 93 % of a 100k reindex's words hit it (95 % with 4096, 1 MB)
# Below this cosine a neighbour is noise for this model: on the labelled set 96 % of right answers score above it
# and 14 of 16 off-topic queries (bread, hiking, ...) have nothing above it (``python -m benchmarks.semantic``).
# Fewer dimensions raise all cosines: at 256 the same balance was at 0.2.
MIN_COSINE = 0.25
INSTALL_HINT = 'pip install "ekkmcp[semantic]"'
CACHE_FORMAT = 1  # what a cache file holds; another value makes older files stale
CACHE_FILE = f"{MODEL}.npz"
SPACE = "\u2581"  # SentencePiece's visible space
WORDS = re.compile(f"{SPACE}*[^{SPACE}]+|{SPACE}+")  # no piece holds a space after another character
# A merge of two runs of spaces, alone on its line of the merges list (the pinned file has one merge per line).
SPACE_MERGE = re.compile(f'^[ \t]*"((?:{SPACE})+ (?:{SPACE})+)",?\r?$'.encode(), re.MULTILINE)
NO_MERGE = 1 << 62  # the rank of a pair that is no piece: above every merge's (at most 32000³ + merges)


@dataclass(frozen=True)
class Unavailable:
    """Why hybrid recall is off, in words for the user (stderr and ``ekkmcp stats``)."""

    reason: str


class Tokenizer:
    """The model's SentencePiece BPE (byte fallback, no pre-tokenizer), from its vocabulary alone.

    Its merges are every split of a piece into two pieces, ranked by the merged piece's id (then the
    two parts' ids), except the merges of runs of spaces, which come last in the file's own order:
    ``space_ranks`` holds those. ``encode`` gives the ids the ``tokenizers`` library gives for the same
    file with ``add_special_tokens=False`` (a test compares them), truncated to ``MAX_TOKENS``.
    """

    def __init__(self, vocab: dict[str, int], specials: dict[str, int], space_ranks: dict[str, int]) -> None:
        self.vocab = vocab
        self.specials = specials
        self.special = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None
        self.space_ranks = space_ranks
        self.space_runs = {vocab[pair.replace(" ", "")] for pair in space_ranks}
        self.fallback = [vocab[f"<0x{byte:02X}>"] for byte in range(256)]
        self.size = len(vocab)
        self.word = lru_cache(maxsize=CACHE_WORDS)(self._merge)

    @classmethod
    def from_file(cls, path: Path) -> Tokenizer:
        config, vocab, space_ranks = read_tokenizer(path)
        model = config["model"]
        if model.get("type") != "BPE" or not model.get("byte_fallback") or config.get("pre_tokenizer"):
            raise ValueError(f"model file {path} is not a byte-fallback SentencePiece BPE")
        specials = {token["content"]: token["id"] for token in config.get("added_tokens", [])}
        return cls(vocab, specials, space_ranks)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for part in self.special.split(text) if self.special else (text,):
            if part in self.specials:  # matched in the raw text, as the library does
                ids.append(self.specials[part])
            elif part:  # normalized alone: a leading space, spaces made visible
                for word in WORDS.findall(SPACE + part.replace(" ", SPACE)):
                    ids += self.word(word)
                    if len(ids) >= MAX_TOKENS:
                        return ids[:MAX_TOKENS]
        return ids[:MAX_TOKENS]

    def _merge(self, word: str) -> tuple[int, ...]:
        """One word's ids: its characters (unknown ones as UTF-8 byte ids), merged best pair first."""
        parts: list[str | int] = []
        for char in word:
            if char in self.vocab:
                parts.append(char)
            else:
                parts += [self.fallback[byte] for byte in char.encode("utf-8", "surrogatepass")]
        ranks = [self._rank(parts[i], parts[i + 1]) for i in range(len(parts) - 1)]  # ranks[i]: parts i and i+1
        while ranks:
            best = min(ranks)  # the leftmost on a tie, as the library
            if best == NO_MERGE:
                break
            at = ranks.index(best)
            parts[at:at + 2] = [parts[at] + parts[at + 1]]  # type: ignore[operator] - both are pieces
            del ranks[at]
            if at < len(ranks):
                ranks[at] = self._rank(parts[at], parts[at + 1])
            if at > 0:
                ranks[at - 1] = self._rank(parts[at - 1], parts[at])
        return tuple(part if isinstance(part, int) else self.vocab[part] for part in parts)

    def _rank(self, left: str | int, right: str | int) -> int:
        if isinstance(left, int) or isinstance(right, int):  # a byte of fallback never merges
            return NO_MERGE
        merged = self.vocab.get(left + right)
        if merged is None:
            return NO_MERGE
        if merged in self.space_runs:
            return self.size ** 3 + self.space_ranks[left + " " + right]
        return (merged * self.size + self.vocab[left]) * self.size + self.vocab[right]


def read_tokenizer(path: Path) -> tuple[dict[str, Any], dict[str, int], dict[str, int]]:
    """(the configuration less its vocabulary and merges, the vocabulary, the ranks of the space merges).

    Read without building the 61k merges as Python strings: with ``json.load`` of the whole file, a
    100k-pattern server peaked 7 MB higher (the freed strings left holes in its heap). ValueError if
    the file is not laid out as a tokenizers BPE file (its vocabulary, then its merges as strings).
    """
    raw = path.read_bytes()
    vocab_at = raw.index(b"{", raw.index(b'"vocab"', raw.index(b'"model"')))
    merges_key = raw.index(b'"merges"', vocab_at)
    vocab_end = raw.rindex(b"}", vocab_at, merges_key) + 1  # only a comma between the vocabulary and "merges"
    merges_at = raw.index(b"[", merges_key)
    space_ranks, merges_end = _space_merges(raw, merges_at + 1)
    vocab = json.loads(raw[vocab_at:vocab_end])
    config = json.loads(raw[:vocab_at] + b"{}" + raw[vocab_end:merges_at] + b"[]" + raw[merges_end:])
    return config, vocab, space_ranks


def _space_merges(raw: bytes, at: int) -> tuple[dict[str, int], int]:
    """The ranks of the merges of runs of spaces (as ``"▁▁ ▁"``) in the merges list opened just before ``at``,
    and where the list ends.

    A merge's rank is its line in the list: the pinned file holds one merge per line (a test checks every
    rank against the whole list), and JSON escapes a newline inside a string. Searching for these few
    merges and counting lines takes 9 ms, where matching all 61k merges one by one took 60 ms of every
    server's first recall.
    """
    end = raw.rindex(b"]")  # the merges list is the file's last array ("model" is its last key, "merges" model's)
    if raw[end + 1:].strip(b" \t\r\n}") or raw.count(b"\n", at, end) < 2:
        raise ValueError("the tokenizer's merges are not its last list, laid out one per line")
    found, line, counted = {}, -1, at  # the first merge is on the line after the "["
    for item in SPACE_MERGE.finditer(raw, at, end):
        line, counted = line + raw.count(b"\n", counted, item.start()), item.start()
        found[item[1].decode()] = line
    return found, end + 1


class Embedder:
    """``embed(texts)`` → an (n, dim) float32 array of unit vectors (zero rows for texts with no token)."""

    name = MODEL
    min_cosine = MIN_COSINE

    def __init__(self, table: Any, scales: Any, tokenizer: Tokenizer) -> None:
        self._np = _numpy()
        self.table = table
        self.scales = scales
        self.dim = int(table.shape[1])
        self.tokenizer = tokenizer

    def embed(self, texts: list[str]) -> Any:
        np = self._np
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self.tokenizer.encode(text)
            if ids:
                at = np.asarray(ids, dtype=np.intp)
                # The sum, not the mean, of the tokens' rows: the same direction, and only the direction is kept.
                out[row] = (self.table[at] * self.scales[at, None]).sum(axis=0, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def _numpy() -> Any:
    import numpy

    return numpy


def package_dir() -> Path | None:
    """Where the model's package is installed, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def present(base: Path, relative: str) -> Path:
    """The file; ValueError if it is missing."""
    path = base / relative
    if not path.is_file():
        raise ValueError(f"model file {path} is missing; reinstall it with {INSTALL_HINT} --force-reinstall")
    return path


def verified(base: Path, relative: str, expected: str) -> Path:
    """The file, after checking it exists and matches its pinned SHA-256; ValueError says what is wrong."""
    path = present(base, relative)
    actual = sha256(path)
    if actual != expected:
        raise ValueError(f"model file {path} does not match its pinned SHA-256 (expected {expected[:12]}…, "
                         f"found {actual[:12]}…): it is corrupt or another version; reinstall with {INSTALL_HINT}")
    return path


def read_table(path: Path, dim: int = DIM) -> tuple[Any, Any]:
    """The first ``dim`` columns of a safetensors file's one tensor, as int8 rows and a float32 scale per row.

    A row is stored as in the vector index: divided by its largest component, times 127. The file is
    read ``TABLE_BLOCK`` rows at a time (no extra dependency, never the whole tensor in memory).
    """
    np = _numpy()
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = {k: v for k, v in json.loads(handle.read(size)).items() if k != "__metadata__"}
        dtype, start, shape = _tensor(path, header)
        if shape[1] < dim:
            raise ValueError(f"model file {path} has {shape[1]} dimensions, fewer than {dim}")
        handle.seek(8 + size + start)
        table = np.empty((shape[0], dim), dtype=np.int8)
        scales = np.empty(shape[0], dtype=np.float32)
        for first in range(0, shape[0], TABLE_BLOCK):
            count = min(TABLE_BLOCK, shape[0] - first)
            raw = handle.read(count * shape[1] * dtype.itemsize)
            if len(raw) != count * shape[1] * dtype.itemsize:
                raise ValueError(f"model file {path} ends inside its tensor")
            rows = np.frombuffer(raw, dtype=dtype).reshape(count, shape[1])[:, :dim].astype(np.float32)
            scale = np.abs(rows).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            scales[first:first + count] = scale
            table[first:first + count] = np.round(rows / scale[:, None])
    return table, scales


def _tensor(path: Path, header: dict[str, Any]) -> tuple[Any, int, tuple[int, int]]:
    """(dtype, data offset, 2-d shape) of a safetensors header's one tensor; ValueError if it is not that."""
    np = _numpy()
    if len(header) != 1:
        raise ValueError(f"model file {path} holds {len(header)} tensors, expected 1")
    (info,) = header.values()
    dtypes = {"F32": np.float32, "F16": np.float16}
    if info["dtype"] not in dtypes:
        raise ValueError(f"model file {path} has unsupported dtype {info['dtype']}")
    dtype = np.dtype(dtypes[info["dtype"]])
    start, end = info["data_offsets"]
    shape = tuple(info["shape"])
    if len(shape) != 2 or end - start != shape[0] * shape[1] * dtype.itemsize:
        raise ValueError(f"model file {path} has a tensor of {end - start} bytes, not of shape {shape}")
    return dtype, start, shape  # type: ignore[return-value] - two dimensions, checked above


def load(base: Path | None = None, cache: Path | None = None) -> Embedder | Unavailable:
    """The embedder from the installed package's files (or ``base``), or why it cannot be used.

    With ``cache`` (a folder), what is derived from the verified files is read from there if it was
    derived from the files as they are now, and written there otherwise.
    """
    # Defensive: no library below consults a hub, and none may start to.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    base = base or package_dir()  # first: without the extra, nothing heavy is imported
    if base is None:
        return Unavailable(f"keyword recall only: the model package {PACKAGE!r} is not installed; run {INSTALL_HINT}")
    try:
        _numpy()
    except ImportError as error:
        return Unavailable(f"keyword recall only: the semantic extra is not installed ({error.name} missing); "
                           f"for recall by meaning run {INSTALL_HINT}")
    try:
        stamp = _stamp(base)
        found = _read_cache(cache, stamp) if cache else None
        if found is None:
            table, scales = read_table(verified(base, *WEIGHTS))
            found = table, scales, Tokenizer.from_file(verified(base, *TOKENIZER))
            if cache:
                _write_cache(cache, stamp, *found)
        table, scales, tokenizer = found
        if max(tokenizer.vocab.values()) >= len(table):
            raise ValueError(f"the model's vocabulary has more tokens than its table's {len(table)} rows")
    except (ValueError, OSError, KeyError, TypeError, struct.error) as error:
        return Unavailable(f"keyword recall only: {error}")
    return Embedder(table, scales, tokenizer)


Derived = tuple[Any, Any, Tokenizer]  # the int8 table, its scales, the tokenizer


def _stamp(base: Path) -> str:
    """The model files as found now (path, size, modification time) with their pinned hashes; ValueError if one
    is missing."""
    parts = [MODEL, str(CACHE_FORMAT)]
    for relative, expected in (WEIGHTS, TOKENIZER):
        path = present(base, relative)
        info = path.stat()
        parts += [str(path.resolve()), expected, str(info.st_size), str(info.st_mtime_ns)]
    return "\n".join(parts)


def _read_cache(folder: Path, stamp: str) -> Derived | None:
    """What was derived from the files ``stamp`` describes, or None (absent, stale or damaged: zip's CRC-32
    is checked as each array is read)."""
    np = _numpy()
    try:
        with np.load(folder / CACHE_FILE, allow_pickle=False) as data:
            if data["stamp"].tobytes() != stamp.encode():
                return None
            table, scales, words = data["table"], data["scales"], json.loads(data["words"].tobytes())
        if (table.dtype, table.shape[1:], scales.dtype, scales.shape) != (np.int8, (DIM,), np.float32, (len(table),)):
            return None
        return table, scales, Tokenizer(words["vocab"], words["specials"], words["space_ranks"])
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(folder: Path, stamp: str, table: Any, scales: Any, tokenizer: Tokenizer) -> None:
    """Best effort, atomically (readers see the old file or the new one): a read-only or full disk only means
    the next process derives the model again."""
    np = _numpy()
    words = json.dumps({"vocab": tokenizer.vocab, "specials": tokenizer.specials,
                        "space_ranks": tokenizer.space_ranks}).encode()
    temp = None
    try:
        for private in (folder.parent, folder):  # EKKMCP_HOME too, private as the SQLite store makes it
            private.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".npz")  # private: mode 0600
        with os.fdopen(handle, "wb") as out:
            np.savez(out, stamp=np.frombuffer(stamp.encode(), np.uint8), table=table, scales=scales,
                     words=np.frombuffer(words, np.uint8))
        os.replace(temp, folder / CACHE_FILE)
    except OSError:
        if temp:
            Path(temp).unlink(missing_ok=True)
