"""The ``corpus`` option: stdlib, your own text (split fixed or by document), HF datasets."""

from __future__ import annotations

import numpy as np
import pytest

from cambrian.scaling.data import (
    CorpusError,
    HFCorpus,
    StdlibCorpus,
    TextPathsCorpus,
    TextSplitsCorpus,
    open_corpus,
    parse_corpus,
)


@pytest.fixture
def split_files(tmp_path):
    texts = {"train": b"the train text\n" * 40, "val": "val: caf\u00e9\n".encode() * 20,
             "hidden": b"hidden \xff\xfe bytes\n" * 20}  # not UTF-8: kept as bytes
    for name, data in texts.items():
        (tmp_path / f"{name}.txt").write_bytes(data)
    return tmp_path, texts


def test_the_forms_parse_to_their_models(split_files):
    root, _ = split_files
    assert parse_corpus("stdlib") == StdlibCorpus() and parse_corpus(None) == StdlibCorpus()
    fixed = parse_corpus({"source": "text", **{s: str(root / f"{s}.txt") for s in ("train", "val", "hidden")}})
    assert isinstance(fixed, TextSplitsCorpus)
    assert isinstance(parse_corpus({"source": "text", "paths": str(root)}), TextPathsCorpus)
    assert isinstance(parse_corpus({"source": "hf", "path": "x"}), HFCorpus)


@pytest.mark.parametrize(("value", "key"), [
    ({"source": "text", "train": "/nonexistent/a", "val": "/nonexistent/b", "hidden": "/nonexistent/c"},
     "corpus.train: no such file or folder: /nonexistent/a"),
    ({"source": "text", "paths": ["/nonexistent/x"]}, "corpus.paths: no such file or folder"),
    ({"source": "text"}, "corpus.paths: Field required"),
    ({"source": "text", "paths": ["."], "colour": 1}, "corpus.colour: Extra inputs are not permitted"),
    ({"source": "s3", "path": "x"}, "corpus.source: expected stdlib, text or hf, got 's3'"),
    ("wikipedia", "corpus: expected 'stdlib' or a mapping"),
])
def test_bad_values_name_the_key_in_one_line(value, key):
    with pytest.raises(CorpusError) as err:
        parse_corpus(value)
    assert str(err.value).startswith(key) and "\n" not in str(err.value)


def test_a_fixed_split_is_kept_exactly_and_bytes_stay_bytes(split_files, tmp_path_factory):
    root, texts = split_files
    spec = {"source": "text", **{s: str(root / f"{s}.txt") for s in texts}}
    cache = tmp_path_factory.mktemp("cache")
    corpus = open_corpus(spec, cache)
    for split, data in texts.items():  # one document per split: its bytes and the separator
        assert bytes(np.asarray(corpus.tokens(split))) == data + b"\n", split
    assert corpus.n_docs == {"train": 1, "val": 1, "hidden": 1}
    # reopened through the pointer file: the same shards
    assert open_corpus(spec, cache).root == corpus.root


def test_folders_per_split_and_split_by_document(tmp_path, tmp_path_factory):
    for split in ("train", "val", "hidden"):
        (tmp_path / split).mkdir()
        for i in range(3):
            (tmp_path / split / f"{i}.txt").write_text(f"{split} document {i}\n")
    fixed = open_corpus({"source": "text", **{s: str(tmp_path / s) for s in ("train", "val", "hidden")}},
                        tmp_path_factory.mktemp("c1"))
    assert fixed.n_docs == {"train": 3, "val": 3, "hidden": 3}
    assert b"val document" in bytes(np.asarray(fixed.tokens("val")))
    assert b"val document" not in bytes(np.asarray(fixed.tokens("train")))
    by_doc = open_corpus({"source": "text", "paths": [str(tmp_path)]}, tmp_path_factory.mktemp("c2"))
    assert sum(by_doc.n_docs.values()) == 9 and by_doc.n_docs["val"] >= 1 and by_doc.n_docs["hidden"] >= 1


def test_a_local_hf_dataset(tmp_path, tmp_path_factory):
    datasets = pytest.importorskip("datasets")
    rows = [f"row {i}: some text" for i in range(30)]
    datasets.Dataset.from_dict({"body": rows}).save_to_disk(str(tmp_path / "ds"))
    corpus = open_corpus({"source": "hf", "path": str(tmp_path / "ds"), "text_field": "body"},
                         tmp_path_factory.mktemp("cache"))
    assert sum(corpus.n_docs.values()) == 30
    everything = b"".join(bytes(np.asarray(corpus.tokens(s))) for s in ("train", "val", "hidden"))
    assert all(r.encode() in everything for r in rows)


def _cli(args, cwd):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "cambrian.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_a_bad_corpus_fails_when_the_config_loads_in_one_line(tmp_path):
    import yaml

    from tests.compose.tiny import tiny_config

    cfg = tiny_config()
    cfg["domain"]["options"]["corpus"] = {"source": "text", "train": str(tmp_path / "missing.txt"),
                                          "val": str(tmp_path), "hidden": str(tmp_path)}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = _cli(["run", "c.yaml", "--out", "run", "--quiet"], tmp_path)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "domain.options.corpus" in lines[0] and "train" in lines[0] and "missing.txt" in lines[0]
    assert not (tmp_path / "run").exists()  # nothing written


def test_a_compose_evaluation_trains_on_your_own_split(split_files, tmp_path):
    """Before: any corpus other than stdlib failed every compose evaluation at run time."""
    from cambrian.plugins.domains.compose.domain import settings
    from cambrian.plugins.domains.compose.evaluator import run_proxy
    from tests.compose.tiny import TINY_DOMAIN

    root, texts = split_files
    for name in texts:  # enough bytes for a few windows of 64
        (root / f"{name}.txt").write_bytes(texts[name] * 8)
    corpus = {"source": "text", **{s: str(root / f"{s}.txt") for s in texts}}
    s = settings({**TINY_DOMAIN, "corpus": corpus, "mqar_steps": 0, "val_tokens": 512, "train_tokens": 2048,
                  "cache_dir": str(tmp_path / "cache")})
    from cambrian.architectures import reference_spec

    spec = reference_spec("llama", d_model=32, n_layers=1, max_seq_len=64).to_dict()
    work = tmp_path / "work"
    work.mkdir()
    m, _ = run_proxy(spec, s, split="hidden", seed=0, workdir=work, run_dir=tmp_path, threads=1, save_model=False)
    assert m["bpb"] > 0 and m["floor_unigram_bpb"] > 0 and m["floor_bigram_bpb"] > 0
