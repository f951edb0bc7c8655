"""The embedding model of hybrid recall, loaded from the files of an installed package, never a hub.

The model is WordLlama ``l2_supercat`` at 256 dimensions (MIT), shipped inside the ``wordllama``
wheel: a static token-embedding table pooled by mean. It was chosen by measurement (see the README:
recall quality on ``tests/data/retrieval_set.jsonl``, latency, memory, install size). Only its two
files are read — the ``wordllama`` package itself is never imported (it would pull ``requests`` and a
hub client) — and each file's SHA-256 is checked against the value pinned here before use.

Anything wrong (extra not installed, file missing, corrupt or different) makes ``load()`` return an
``Unavailable`` with the cause; the caller keeps keyword recall. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "wordllama-l2-supercat-256"
PACKAGE = "wordllama"
WEIGHTS = ("weights/l2_supercat_256.safetensors", "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5")
TOKENIZER = ("tokenizers/l2_supercat_tokenizer_config.json",
             "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68")
MAX_TOKENS = 1024  # a static model averages tokens: more adds cost, not meaning
BATCH = 256
# Below this cosine a neighbour is noise for this model: on the labelled set 95 % of right answers score above
# it and off-topic queries (bread, hiking) stay under 0.15, so unrelated recalls still come back empty.
MIN_COSINE = 0.2
INSTALL_HINT = 'pip install "ekkmcp[semantic]"'


@dataclass(frozen=True)
class Unavailable:
    """Why hybrid recall is off, in words for the user (stderr and ``ekkmcp stats``)."""

    reason: str


class Embedder:
    """``embed(texts)`` → an (n, dim) float32 array of unit vectors (zero rows for texts with no token)."""

    name = MODEL
    min_cosine = MIN_COSINE

    def __init__(self, table: Any, tokenizer: Any) -> None:
        self._np = _numpy()
        self.table = table
        self.dim = int(table.shape[1])
        self.tokenizer = tokenizer

    def embed(self, texts: list[str]) -> Any:
        np = self._np
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            batch = texts[start:start + BATCH]
            # One text (a recall's query) skips encode_batch's thread pool: waking it costs more than encoding.
            encoded = (self.tokenizer.encode_batch(batch, add_special_tokens=False) if len(batch) > 1
                       else [self.tokenizer.encode(batch[0], add_special_tokens=False)])
            for row, item in enumerate(encoded, start=start):
                if item.ids:
                    ids = np.clip(np.asarray(item.ids, dtype=np.int64), 0, len(self.table) - 1)
                    out[row] = self.table[ids].mean(axis=0, dtype=np.float32)
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


def verified(base: Path, relative: str, expected: str) -> Path:
    """The file, after checking it exists and matches its pinned SHA-256; ValueError says what is wrong."""
    path = base / relative
    if not path.is_file():
        raise ValueError(f"model file {path} is missing; reinstall it with {INSTALL_HINT} --force-reinstall")
    actual = sha256(path)
    if actual != expected:
        raise ValueError(f"model file {path} does not match its pinned SHA-256 (expected {expected[:12]}…, "
                         f"found {actual[:12]}…): it is corrupt or another version; reinstall with {INSTALL_HINT}")
    return path


def read_table(path: Path) -> Any:
    """The one tensor of a safetensors file, mapped read-only in its stored dtype (no extra dependency).

    Mapped, not read: only the rows of tokens actually embedded are ever loaded into memory (a server's
    queries touch a few MB of the 16 MB table), and ``embed`` averages them in float32.
    """
    np = _numpy()
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = {k: v for k, v in json.loads(handle.read(size)).items() if k != "__metadata__"}
    if len(header) != 1:
        raise ValueError(f"model file {path} holds {len(header)} tensors, expected 1")
    (info,) = header.values()
    dtypes = {"F32": np.float32, "F16": np.float16, "BF16": None}
    dtype = dtypes.get(info["dtype"])
    if dtype is None:
        raise ValueError(f"model file {path} has unsupported dtype {info['dtype']}")
    start, end = info["data_offsets"]
    shape = tuple(info["shape"])
    if len(shape) != 2 or end - start != shape[0] * shape[1] * np.dtype(dtype).itemsize:
        raise ValueError(f"model file {path} has a tensor of {end - start} bytes, not of shape {shape}")
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + size + start, shape=shape)


def load(base: Path | None = None) -> Embedder | Unavailable:
    """The embedder from the installed package's files (or ``base``), or why it cannot be used."""
    # Defensive: no library below consults a hub, and none may start to.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    base = base or package_dir()  # first: without the extra, nothing heavy is imported
    if base is None:
        return Unavailable(f"keyword recall only: the model package {PACKAGE!r} is not installed; run {INSTALL_HINT}")
    try:
        _numpy()
        from tokenizers import Tokenizer
    except ImportError as error:
        return Unavailable(f"keyword recall only: the semantic extra is not installed ({error.name} missing); "
                           f"for recall by meaning run {INSTALL_HINT}")
    try:
        table = read_table(verified(base, *WEIGHTS))
        tokenizer = Tokenizer.from_file(str(verified(base, *TOKENIZER)))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
    except Exception as error:  # noqa: BLE001 - ValueError, OSError, or the plain Exception tokenizers raises on a bad file
        return Unavailable(f"keyword recall only: {error}")
    return Embedder(table, tokenizer)
