"""Language-model data: documents in, memory-mapped token shards out.

Byte-level by default, so bits per byte compares across tokenizers; a
transformers tokenizer is optional. Sources are lists of named documents:

- :func:`stdlib_documents`: the Python standard library's sources, on every
  machine with Python, no download (the built-in corpus);
- :func:`text_documents`: local text files and folders, read as bytes (bytes that
  are not UTF-8 stay as they are: the tokenizer is byte-level);
- :func:`hf_documents`: a Hugging Face ``datasets`` dataset (hub name, a local
  ``save_to_disk`` folder, or a builder such as ``"text"`` with ``data_files``).

A campaign names its corpus with one option, ``corpus`` (:data:`CorpusOption`,
checked when the config loads): ``stdlib``; ``{source: text, train: PATH, val: PATH,
hidden: PATH}`` (files or folders, the split fixed by you); ``{source: text, paths:
[...]}``; ``{source: hf, path, name, text_field}``. :func:`open_corpus` builds it once
per cache folder.

Documents are split into train / val / hidden *by document* (a file never
straddles two splits), deterministically from a hash of its name, unless the
split is given (``train``/``val``/``hidden`` paths). Each split is
tokenized once, streamed to a ``.bin`` shard under a cache folder keyed by the
corpus content hash and the tokenizer, and read back with ``np.memmap``: a large
corpus never sits in RAM twice and later runs reuse the shards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import numpy as np
from filelock import FileLock
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator
from pydantic import Field as PydanticField

SPLITS = ("train", "val", "hidden")
Document = tuple[str, "str | bytes"]  # (name, text); bytes are kept as they are

# Folders of the standard library that hold tests or third-party code, not library source.
_STDLIB_SKIP = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


# ----------------------------------------------------------------------------- tokenizers

class Tokenizer(Protocol):
    vocab_size: int
    id: str  # part of the shard cache key

    def encode(self, text: str) -> list[int] | bytes: ...


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocab 256, one token per byte."""

    vocab_size = 256
    id = "bytes"

    def encode(self, text: str | bytes) -> bytes:
        return text if isinstance(text, bytes) else text.encode("utf-8", errors="replace")

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


class HFTokenizer:
    """A transformers tokenizer (hub name or local folder); documents end with EOS if it has one."""

    def __init__(self, name_or_path: str) -> None:
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(name_or_path)
        self.vocab_size = len(self.tok)
        self.id = "hf-" + hashlib.sha256(name_or_path.encode()).hexdigest()[:12]

    def encode(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):  # a subword tokenizer needs text: undecodable bytes become U+FFFD
            text = text.decode("utf-8", errors="replace")
        ids = self.tok.encode(text, add_special_tokens=False)
        return ids + ([self.tok.eos_token_id] if self.tok.eos_token_id is not None else [])

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids))


def get_tokenizer(name: str | None) -> ByteTokenizer | HFTokenizer:
    return ByteTokenizer() if name in (None, "", "bytes", "byte") else HFTokenizer(name)


# ----------------------------------------------------------------------------- sources

def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path | None = None) -> list[Path]:
    """The standard library's ``.py`` files, sorted, pruning test and third-party folders."""
    root = root or stdlib_dir()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _STDLIB_SKIP]
        out += [Path(dirpath) / f for f in filenames if f.endswith(".py")]
    return sorted(out)


def stdlib_documents(root: Path | None = None) -> Iterator[Document]:
    """The standard library's ``.py`` sources without test folders, in sorted path order."""
    root = root or stdlib_dir()
    for path in stdlib_files(root):
        yield path.relative_to(root).as_posix(), path.read_text(encoding="utf-8", errors="replace")


TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py", ".json", ".jsonl", ".csv", ".html", ".tex", ".c", ".h")


def text_documents(paths: str | Path | Sequence[str | Path],
                   suffixes: Sequence[str] = TEXT_SUFFIXES) -> Iterator[Document]:
    """Local text files, and the files with one of ``suffixes`` under any folder given, as bytes."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    for item in items:
        p = Path(item)
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file() and x.suffix in suffixes):
                yield f.relative_to(p).as_posix(), f.read_bytes()
        elif p.is_file():
            yield p.name, p.read_bytes()
        else:
            raise FileNotFoundError(f"no such text file or folder: {p}")


def split_documents(splits: dict[str, str | Path | Sequence[str | Path]],
                    suffixes: Sequence[str] = TEXT_SUFFIXES) -> Iterator[Document]:
    """Documents of user-split text: ``{split: file or folder}``; names are ``<split>/<name>``."""
    for split in SPLITS:
        for name, text in text_documents(splits[split], suffixes):
            yield f"{split}/{name}", text


def fixed_splits(names: Sequence[str]) -> dict[str, str]:
    """The split of documents named ``<split>/...`` (see :func:`split_documents`)."""
    return {n: n.split("/", 1)[0] for n in names}


def hf_documents(path: str, *, name: str | None = None, split: str = "train", text_field: str = "text",
                 data_files: Any = None, **load_kwargs: Any) -> Iterator[Document]:
    """Rows of a Hugging Face dataset as documents named by row index.

    ``path`` is a folder written by ``Dataset.save_to_disk`` (loaded with
    ``load_from_disk``), or anything ``datasets.load_dataset`` accepts (a hub
    name, or a builder such as ``"text"``/``"json"`` with ``data_files``).
    """
    try:
        import datasets
    except ImportError as exc:  # an optional dependency
        raise ImportError("Hugging Face corpora need the `datasets` package (pip install datasets)") from exc
    p = Path(path)
    if p.is_dir() and ((p / "state.json").exists() or (p / "dataset_dict.json").exists()):
        ds = datasets.load_from_disk(str(p))
        if isinstance(ds, datasets.DatasetDict):
            ds = ds[split]
    else:
        ds = datasets.load_dataset(path, name, split=split, data_files=data_files, **load_kwargs)
    if text_field not in ds.column_names:
        raise KeyError(f"dataset has no {text_field!r} column (columns: {ds.column_names})")
    for i, row in enumerate(ds):
        yield f"{split}/{i:09d}", str(row[text_field])


# ----------------------------------------------------------------------------- splitting

def _name_hash(name: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{name}".encode()).hexdigest()


def assign_splits(names: Sequence[str], val_frac: float = 0.05, hidden_frac: float = 0.05,
                  salt: str = "cambrian") -> dict[str, str]:
    """Map each document name to a split, deterministically and by document.

    Documents are ordered by a salted hash of their name; the first
    ``val_frac`` go to val, the next ``hidden_frac`` to hidden (at least one
    document each when there are three or more), the rest to train.
    """
    order = sorted(names, key=lambda n: _name_hash(n, salt))
    n = len(order)
    n_val = max(1, round(n * val_frac)) if n >= 3 else 0
    n_hidden = max(1, round(n * hidden_frac)) if n >= 3 else 0
    out = {name: "val" for name in order[:n_val]}
    out.update({name: "hidden" for name in order[n_val:n_val + n_hidden]})
    out.update({name: "train" for name in order[n_val + n_hidden:]})
    return out


# ----------------------------------------------------------------------------- corpus

def default_cache_dir() -> Path:
    env = os.environ.get("CAMBRIAN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cambrian"


def _token_dtype(vocab_size: int) -> np.dtype:
    if vocab_size <= 256:
        return np.dtype(np.uint8)
    if vocab_size <= 65536:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


@dataclass(frozen=True)
class Corpus:
    """Token shards of one corpus, memory-mapped read-only, one per split."""

    name: str
    content_hash: str  # sha256 over (document name, text hash, split) of every document
    tokenizer_id: str
    vocab_size: int
    root: Path  # the shard folder
    n_tokens: dict[str, int]
    n_bytes: dict[str, int]
    n_docs: dict[str, int]
    _maps: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def tokens(self, split: str) -> np.ndarray:
        """The split's tokens as a read-only memmap (shared by the OS page cache, not copied)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if split not in self._maps:
            if self.n_tokens[split] == 0:
                self._maps[split] = np.zeros(0, dtype=_token_dtype(self.vocab_size))
            else:
                self._maps[split] = np.memmap(self.root / f"{split}.bin", mode="r",
                                              dtype=_token_dtype(self.vocab_size))
        return self._maps[split]

    def bytes_per_token(self, split: str) -> float:
        return self.n_bytes[split] / max(1, self.n_tokens[split])

    @classmethod
    def open(cls, root: Path) -> Corpus:
        meta = json.loads((root / "meta.json").read_text())
        return cls(name=meta["name"], content_hash=meta["content_hash"], tokenizer_id=meta["tokenizer_id"],
                   vocab_size=meta["vocab_size"], root=root, n_tokens=meta["n_tokens"],
                   n_bytes=meta["n_bytes"], n_docs=meta["n_docs"])


def _raw(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", errors="replace")


def build_corpus(documents: Sequence[Document] | Callable[[], Iterable[Document]], *, name: str,
                 tokenizer: Any = None,
                 cache_dir: str | Path | None = None, val_frac: float = 0.05,
                 hidden_frac: float = 0.05,
                 split_of: Callable[[Sequence[str]], dict[str, str]] | None = None) -> Corpus:
    """Split, tokenize and shard ``documents``; reuse the shards when they already exist.

    ``documents`` is a list, or a function returning a fresh iterator (so a
    large source streams twice instead of being held): the first pass hashes
    texts (keeping only names and digests), the second, only on a cache miss,
    tokenizes one document at a time straight into the shard files. ``split_of`` maps
    document names to splits (default: :func:`assign_splits`, by a hash of the name).
    """
    tokenizer = tokenizer or ByteTokenizer()
    stream = documents if callable(documents) else (lambda: iter(documents))
    digests: dict[str, str] = {}
    for n, t in stream():
        if n in digests:
            raise ValueError(f"document names must be unique; {n!r} repeats")
        digests[n] = hashlib.sha256(_raw(t)).hexdigest()
    fixed = split_of is not None
    split_of = split_of(list(digests)) if fixed else assign_splits(list(digests), val_frac, hidden_frac)
    bad = sorted({s for s in split_of.values()} - set(SPLITS))
    if bad:
        raise ValueError(f"unknown split {bad[0]!r}; expected one of {SPLITS}")
    h = hashlib.sha256()
    for n in sorted(digests):
        h.update(f"{n}\0{digests[n]}\0{split_of[n]}\n".encode())
    content_hash = h.hexdigest()
    root = Path(cache_dir or default_cache_dir()) / "corpora" / f"{content_hash[:20]}-{tokenizer.id}"
    if (root / "meta.json").exists():
        return Corpus.open(root)

    root.mkdir(parents=True, exist_ok=True)
    # One builder at a time per corpus (a lock file, not a PID: sandboxed workers are each
    # PID 1 of their own namespace); the build goes to a unique temporary folder and is
    # renamed into place, meta.json last, so a reader never sees half a corpus.
    with FileLock(str(root / ".build.lock")):
        if not (root / "meta.json").exists():
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
            try:
                _write_shards(stream, split_of, tokenizer, tmp, root, name, content_hash, val_frac, hidden_frac,
                              fixed)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return Corpus.open(root)


def _write_shards(stream: Callable[[], Iterable[Document]], split_of: dict[str, str], tokenizer: Any,
                  tmp: Path, root: Path, name: str, content_hash: str, val_frac: float,
                  hidden_frac: float, fixed: bool = False) -> None:
    """Tokenize into ``tmp``, then rename the shards into ``root`` (meta.json last)."""
    dtype = _token_dtype(tokenizer.vocab_size)
    n_tokens, n_bytes, n_docs = dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0)
    with contextlib.ExitStack() as stack:
        files = {s: stack.enter_context(open(tmp / f"{s}.bin", "wb")) for s in SPLITS}
        for n, text in stream():
            s = split_of[n]
            data = _raw(text) + b"\n"
            ids = tokenizer.encode(data)
            arr = np.frombuffer(ids, dtype=np.uint8) if isinstance(ids, bytes) else np.asarray(ids, dtype=dtype)
            files[s].write(arr.astype(dtype, copy=False).tobytes())
            n_tokens[s] += len(arr)
            n_bytes[s] += len(data)
            n_docs[s] += 1
    meta = {"name": name, "content_hash": content_hash, "tokenizer_id": tokenizer.id,
            "vocab_size": tokenizer.vocab_size, "n_tokens": n_tokens, "n_bytes": n_bytes, "n_docs": n_docs,
            "splits": {"fixed": True} if fixed else {"val_frac": val_frac, "hidden_frac": hidden_frac}}
    for s in SPLITS:  # rename into place
        os.replace(tmp / f"{s}.bin", root / f"{s}.bin")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    os.replace(tmp / "meta.json", root / "meta.json")  # last: its presence marks the shards complete


def _files_fingerprint(files: Iterable[Path], extra: str) -> str:
    """A cheap key for a set of files: names, sizes and modification times (stat only, no reads)."""
    h = hashlib.sha256(extra.encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _source_files(source: str, options: dict[str, Any]) -> list[Path] | None:
    if source == "stdlib":
        return stdlib_files(options.get("root"))
    if source == "text":
        if "paths" in options:
            items = options["paths"]
            items = [items] if isinstance(items, (str, Path)) else items
        else:
            items = [options[s] for s in SPLITS]
        suffixes = options.get("suffixes", TEXT_SUFFIXES)
        return [f for p in map(Path, items)
                for f in (sorted(x for x in p.rglob("*") if x.is_file() and x.suffix in suffixes)
                          if p.is_dir() else [p])]
    return None  # Hugging Face datasets: always hashed (the library caches its own files)


def load_corpus(source: str = "stdlib", *, tokenizer: str | None = None, cache_dir: str | Path | None = None,
                val_frac: float = 0.05, hidden_frac: float = 0.05, **source_options: Any) -> Corpus:
    """A corpus by source name: ``"stdlib"``, ``"text"`` (``paths=``, split by document; or
    ``train=``, ``val=``, ``hidden=``, the split fixed by the caller) or ``"hf"`` (``path=`` ...).

    For file sources a stat-only fingerprint (names, sizes, mtimes) points to
    the shards built before, so a warm load reads no source text at all; any
    change to the files misses the index and re-hashes the contents.
    """
    cache = Path(cache_dir or default_cache_dir())
    tok = get_tokenizer(tokenizer)
    files = _source_files(source, source_options)
    index = None
    if files is not None:
        fixed = ":fixed" if source == "text" and "paths" not in source_options else ""  # same files, other split
        fp = _files_fingerprint(files, f"{source}{fixed}:{tok.id}:{val_frac}:{hidden_frac}")
        index = cache / "corpora" / "index" / f"{fp}.json"
        if index.is_file():
            root = Path(json.loads(index.read_text())["root"])
            if (root / "meta.json").is_file():
                return Corpus.open(root)
    if source == "stdlib":
        docs: Callable[[], Iterable[Document]] = lambda: stdlib_documents(source_options.get("root"))
        name = "stdlib"
    elif source == "text" and "paths" not in source_options:
        missing = [s for s in SPLITS if s not in source_options]
        if missing:
            raise ValueError(f"a text corpus needs `paths`, or all of train, val and hidden (missing {missing[0]})")
        splits = {s: source_options[s] for s in SPLITS}
        docs = lambda: split_documents(splits, source_options.get("suffixes", TEXT_SUFFIXES))
        corpus = build_corpus(docs, name="text", tokenizer=tok, cache_dir=cache, split_of=fixed_splits)
        _write_index(index, corpus)
        return corpus
    elif source == "text":
        docs = lambda: text_documents(source_options["paths"], source_options.get("suffixes", TEXT_SUFFIXES))
        name = "text"
    elif source == "hf":
        docs = lambda: hf_documents(**source_options)
        name = f"hf:{source_options.get('path')}"
    else:
        raise ValueError(f"unknown corpus source {source!r}; expected 'stdlib', 'text' or 'hf'")
    corpus = build_corpus(docs, name=name, tokenizer=tok, cache_dir=cache, val_frac=val_frac,
                          hidden_frac=hidden_frac)
    _write_index(index, corpus)
    return corpus


def _write_index(index: Path | None, corpus: Corpus) -> None:
    if index is None:
        return
    index.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{index.stem}-", suffix=".tmp", dir=index.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"root": str(corpus.root)}))
    os.replace(tmp, index)


class CorpusError(ValueError):
    """A bad ``corpus`` option: one line naming the key."""


class _CorpusModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _exists(v: str) -> str:
    if not Path(v).expanduser().exists():
        raise ValueError(f"no such file or folder: {v}")
    return str(Path(v).expanduser())


class StdlibCorpus(_CorpusModel):
    """The built-in corpus: the standard library's sources, split by file."""

    source: Literal["stdlib"] = "stdlib"


class TextSplitsCorpus(_CorpusModel):
    """Your own text, the split fixed by you: a file or a folder per split."""

    source: Literal["text"]
    train: str
    val: str
    hidden: str
    suffixes: tuple[str, ...] = TEXT_SUFFIXES  # of the files read from folders

    @field_validator("train", "val", "hidden")
    @classmethod
    def _exist(cls, v: str) -> str:
        return _exists(v)


class TextPathsCorpus(_CorpusModel):
    """Your own text files and folders, split into train/val/hidden by document."""

    source: Literal["text"]
    paths: list[str] = PydanticField(min_length=1)
    suffixes: tuple[str, ...] = TEXT_SUFFIXES

    @field_validator("paths", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("paths")
    @classmethod
    def _all_exist(cls, v: list[str]) -> list[str]:
        return [_exists(p) for p in v]


class HFCorpus(_CorpusModel):
    """A Hugging Face dataset (needs the ``datasets`` package: ``pip install 'cambrian[data]'``);
    its rows are split into train/val/hidden by document."""

    source: Literal["hf"]
    path: str  # hub name, a save_to_disk folder, or a builder ("text", "json") with data_files
    name: str | None = None
    text_field: str = "text"
    split: str = "train"  # the dataset's own split whose rows are used
    data_files: Any = None

    @field_validator("path")
    @classmethod
    def _datasets_installed(cls, v: str) -> str:
        import importlib.util

        if importlib.util.find_spec("datasets") is None:
            raise ValueError("source hf needs the `datasets` package (pip install 'cambrian[data]')")
        return v


CorpusSpec = StdlibCorpus | TextSplitsCorpus | TextPathsCorpus | HFCorpus


def parse_corpus(value: Any, key: str = "corpus") -> CorpusSpec:
    """The corpus option as a model; a bad value raises :class:`CorpusError` naming ``key``."""
    if isinstance(value, (StdlibCorpus, TextSplitsCorpus, TextPathsCorpus, HFCorpus)):
        return value
    if value is None or value == "stdlib":
        return StdlibCorpus()
    if not isinstance(value, dict):
        raise CorpusError(f"{key + ': ' if key else ''}expected 'stdlib' or a mapping with source: text or hf, "
                          f"got {value!r}")
    source = value.get("source")
    if source == "text":
        cls: type[_CorpusModel] = (TextSplitsCorpus if any(s in value for s in SPLITS) else TextPathsCorpus)
    elif source in ("stdlib", "hf"):
        cls = StdlibCorpus if source == "stdlib" else HFCorpus
    else:
        raise CorpusError(f"{key + '.' if key else ''}source: expected stdlib, text or hf, got {source!r}")
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        path = ".".join(p for p in (key, where) if p)
        raise CorpusError(f"{path}: {msg}" if path else msg) from None


# For a component's pydantic ``Options``: ``corpus: CorpusOption = "stdlib"``.
# Inside a model the key path comes from pydantic (``domain.options.corpus: train: ...``).
CorpusOption = Annotated[CorpusSpec, BeforeValidator(lambda v: parse_corpus(v, key=""))]


def corpus_key(spec: CorpusSpec) -> str:
    """A short stable name of a corpus option (for pointer files)."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16]


def load_corpus_spec(spec: Any, *, tokenizer: str | None = None,
                     cache_dir: str | Path | None = None) -> Corpus:
    """Build (or reopen) the corpus a ``corpus`` option names."""
    spec = parse_corpus(spec)
    opts = spec.model_dump(exclude={"source"})
    if isinstance(spec, HFCorpus) and opts.get("data_files") is None:
        opts.pop("data_files")
    return load_corpus(spec.source, tokenizer=tokenizer, cache_dir=cache_dir, **opts)


def open_corpus(spec: Any, cache_dir: str | Path, tokenizer: str | None = None) -> Corpus:
    """The corpus a ``corpus`` option names, as shards under ``cache_dir``, built on first use.

    File sources reopen through :func:`load_corpus`'s stat fingerprint (an edited file is
    noticed); a Hugging Face dataset, which has no such fingerprint, through a pointer file
    per option, so an evaluation worker does not re-hash it for every job.
    :func:`build_corpus` serialises concurrent builders.
    """
    spec = parse_corpus(spec)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if not isinstance(spec, HFCorpus):
        return load_corpus_spec(spec, tokenizer=tokenizer, cache_dir=cache_dir)
    pointer = cache_dir / f"corpus-{corpus_key(spec)}-{tokenizer or 'bytes'}.json"
    if pointer.is_file():
        root = Path(json.loads(pointer.read_text())["root"])
        if (root / "meta.json").is_file():
            return Corpus.open(root)
    corpus = load_corpus_spec(spec, tokenizer=tokenizer, cache_dir=cache_dir)
    _write_index(pointer, corpus)
    return corpus


# ----------------------------------------------------------------------------- batches

class LMBatches:
    """Seeded random windows of a token array: batch ``i`` is a pure function of (seed, i).

    No sampler state to checkpoint: a resumed run asks for the same indices
    and gets the same batches as an uninterrupted one.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, seq_len: int, seed: int = 0) -> None:
        if len(tokens) < seq_len + 2:
            raise ValueError(f"split has {len(tokens)} tokens, fewer than seq_len + 2 = {seq_len + 2}")
        self.tokens, self.batch_size, self.seq_len, self.seed = tokens, batch_size, seq_len, seed

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, index])
        starts = rng.integers(0, len(self.tokens) - self.seq_len - 1, size=self.batch_size)
        window = np.stack([np.asarray(self.tokens[s:s + self.seq_len + 1], dtype=np.int64) for s in starts])
        return window[:, :-1], window[:, 1:]  # inputs, next-token targets: (B, T) each


def window_starts(n_tokens: int, seq_len: int, max_tokens: int | None = None) -> np.ndarray:
    """Start offsets of the scored windows of a split of ``n_tokens`` tokens (each window is
    ``seq_len + 1`` tokens: ``seq_len`` targets).

    All of the split's non-overlapping windows, or, when ``max_tokens`` caps the targets,
    ``max_tokens // seq_len`` of them spread evenly from its start to its end. A split is
    documents in order, so its first windows are one or two documents: a score on them
    measures those files (the model x file interaction varied the hidden bpb of a design by
    about as much as its training seed did), a score on windows spread over the split
    measures the split.
    """
    n_win = (n_tokens - 1) // seq_len
    if n_win == 0:
        raise ValueError(f"split has too few tokens ({n_tokens}) for one window of {seq_len}")
    k = n_win if max_tokens is None else max(1, min(n_win, int(max_tokens) // seq_len))
    return (np.arange(k, dtype=np.int64) * n_win // k) * seq_len  # k distinct windows, the first at 0


def eval_windows(tokens: np.ndarray, seq_len: int, max_tokens: int | None = None,
                 batch_size: int = 64) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The scored windows (:func:`window_starts`) in batches: deterministic, (inputs, targets)."""
    starts = window_starts(len(tokens), seq_len, max_tokens)
    for b in range(0, len(starts), batch_size):
        window = np.stack([np.asarray(tokens[s:s + seq_len + 1], dtype=np.int64) for s in starts[b:b + batch_size]])
        yield window[:, :-1], window[:, 1:]  # (B, T) each


def bits_per_byte(mean_nats_per_token: float, bytes_per_token: float = 1.0) -> float:
    return mean_nats_per_token / math.log(2) / bytes_per_token
