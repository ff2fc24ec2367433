import json

import numpy as np
import pytest

from cambrian.scaling.data import (
    ByteTokenizer,
    HFTokenizer,
    LMBatches,
    assign_splits,
    bits_per_byte,
    build_corpus,
    eval_windows,
    window_starts,
    load_corpus,
    stdlib_documents,
)


def test_stdlib_corpus_splits_by_file_and_is_cached(stdlib_corpus, tmp_path):
    c = stdlib_corpus
    assert c.vocab_size == 256 and c.tokens("train").dtype == np.uint8
    assert isinstance(c.tokens("val"), np.memmap)  # read from disk, not held in RAM
    assert all(c.n_docs[s] > 0 for s in ("train", "val", "hidden"))
    assert c.n_tokens["train"] > 5_000_000  # about 12 MB of sources
    names = [n for n, _ in stdlib_documents()]
    assert not any("/test/" in f"/{n}" for n in names)
    split_of = assign_splits(names)
    assert sum(s == "val" for s in split_of.values()) == c.n_docs["val"]
    # The shards are keyed by the content hash: a second load reuses them.
    meta = c.root / "meta.json"
    before = meta.stat().st_mtime_ns
    again = load_corpus("stdlib", cache_dir=c.root.parent.parent)
    assert again.root == c.root and again.content_hash == c.content_hash
    assert meta.stat().st_mtime_ns == before
    assert json.loads(meta.read_text())["content_hash"] == c.content_hash


def test_text_folder_corpus_round_trips(tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    for i in range(10):
        (src / f"f{i}.txt").write_text(f"document {i} " * 20)
    c = load_corpus("text", paths=[src], cache_dir=tmp_path / "cache")
    assert sum(c.n_docs.values()) == 10 and c.n_docs["val"] == 1 and c.n_docs["hidden"] == 1
    text = ByteTokenizer().decode(c.tokens("val"))
    assert text.startswith("document ") and c.bytes_per_token("val") == 1.0
    # Editing a file changes the content hash and so the shard folder.
    (src / "f0.txt").write_text("changed")
    assert load_corpus("text", paths=[src], cache_dir=tmp_path / "cache").content_hash != c.content_hash


def test_split_assignment_is_deterministic_and_disjoint():
    names = [f"doc{i}" for i in range(200)]
    a, b = assign_splits(names), assign_splits(list(reversed(names)))
    assert a == b
    assert sum(v == "val" for v in a.values()) == 10 and sum(v == "hidden" for v in a.values()) == 10


def test_batches_are_a_function_of_seed_and_index():
    tokens = np.arange(1000, dtype=np.uint8)
    b = LMBatches(tokens, batch_size=4, seq_len=16, seed=3)
    x1, y1 = b(7)
    x2, y2 = LMBatches(tokens, 4, 16, seed=3)(7)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert np.array_equal(x1[:, 1:], y1[:, :-1])  # targets are the next tokens
    assert not np.array_equal(b(8)[0], x1)
    windows = list(eval_windows(tokens, seq_len=100, batch_size=4))
    assert sum(len(x) for x, _ in windows) == 9  # every whole window of the split
    assert np.array_equal(np.concatenate([x for x, _ in windows]).ravel(), tokens[:900])
    assert bits_per_byte(np.log(256)) == pytest.approx(8.0)


def test_capped_eval_windows_are_spread_over_the_whole_split():
    # a split is documents in order: a capped score must not be its first document only
    starts = window_starts(10_001, seq_len=100, max_tokens=1_000)
    assert starts.tolist() == [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]
    uneven = window_starts(1_000 * 7 + 1, seq_len=7, max_tokens=7 * 3)  # 1000 windows, 3 kept
    assert uneven.tolist() == [0, 333 * 7, 666 * 7] and len(set(uneven.tolist())) == 3
    assert window_starts(801, 100, 10_000).tolist() == [i * 100 for i in range(8)]  # the cap exceeds the split
    tokens = np.arange(10_001) % 251
    wins = list(eval_windows(tokens, 100, 1_000, batch_size=4))
    assert [len(x) for x, _ in wins] == [4, 4, 2]
    x = np.concatenate([x for x, _ in wins])
    y = np.concatenate([y for _, y in wins])
    assert np.array_equal(x[:, 1:], y[:, :-1])  # targets are the next tokens, inside each window
    assert [int(r[0]) for r in x] == [int(tokens[s]) for s in starts]
    with pytest.raises(ValueError, match="too few tokens"):
        window_starts(50, 100)


def test_transformers_tokenizer_writes_uint16_shards(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = ["the quick brown fox jumps over the lazy dog"] * 50
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]", "[EOS]"]))
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="[EOS]", unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    hf = HFTokenizer(str(tmp_path / "tok"))
    docs = [(f"d{i}", f"the quick brown fox {i} jumps") for i in range(20)]
    c = build_corpus(docs, name="t", tokenizer=hf, cache_dir=tmp_path / "cache")
    assert c.vocab_size == hf.vocab_size and c.tokenizer_id.startswith("hf-")
    assert c.bytes_per_token("train") > 1.0  # subwords cover several bytes each
    assert int(c.tokens("train").max()) < c.vocab_size


def test_hugging_face_dataset_loader(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": [f"row {i} " * 10 for i in range(30)]})
    ds.save_to_disk(str(tmp_path / "ds"))
    c = load_corpus("hf", path=str(tmp_path / "ds"), cache_dir=tmp_path / "cache")
    assert sum(c.n_docs.values()) == 30
    (tmp_path / "plain.txt").write_text("\n".join(f"line {i}" for i in range(40)))
    c2 = load_corpus("hf", path="text", data_files=str(tmp_path / "plain.txt"), cache_dir=tmp_path / "cache")
    assert sum(c2.n_docs.values()) == 40
