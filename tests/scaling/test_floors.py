"""Count-based floors against entropies computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cambrian.scaling import floors as F
from cambrian.scaling.data import build_corpus, eval_windows, window_starts


@pytest.mark.parametrize("dense", [True, False])
def test_unigram_and_bigram_bits_match_a_hand_computation(monkeypatch, dense):
    if not dense:
        monkeypatch.setattr(F, "_DENSE_VOCAB", 1)  # the sparse path for large vocabularies
    # train 0 0 0 1: c(0)=3, c(1)=1; k=0.5, V=2 -> p(0)=3.5/5, p(1)=1.5/5
    # pairs (0,0) x2, (0,1) x1 -> context 0 seen 3 times, context 1 never; a = k V = 1
    model = F.CountModel.fit(np.array([0, 0, 0, 1]), vocab_size=2)
    assert model.p_uni.tolist() == pytest.approx([0.7, 0.3])
    # score 0 1 1: targets 1 (after 0) and 1 (after 1)
    u, b, n = model.bits(np.array([0, 1, 1]))
    assert n == 2
    assert u == pytest.approx(-2 * math.log2(0.3))
    p_1_after_0 = (1 + 1 * 0.3) / (3 + 1)  # (c(0,1) + a p(1)) / (c(0) + a)
    p_1_after_1 = (0 + 1 * 0.3) / (0 + 1)  # an unseen context falls back to the unigram
    assert b == pytest.approx(-math.log2(p_1_after_0) - math.log2(p_1_after_1))
    fl = F.floors_of(model, np.array([0, 1, 1]), bytes_per_token=2.0)
    assert fl.unigram_bpb == pytest.approx(u / 2 / 2) and fl.bigram_bpb == pytest.approx(b / 2 / 2)


def test_a_deterministic_text_has_a_near_zero_bigram_floor_and_a_one_bit_unigram_floor():
    model = F.CountModel.fit(np.frombuffer(b"ab" * 5000, dtype=np.uint8), vocab_size=256)
    fl = F.floors_of(model, np.frombuffer(b"ab" * 500, dtype=np.uint8))
    assert fl.unigram_bpb == pytest.approx(1.0, abs=0.02)  # two equally likely bytes: 1 bit
    assert fl.bigram_bpb < 0.05  # the next byte is determined by the previous one
    # an unseen byte costs finite bits
    assert math.isfinite(F.floors_of(model, np.frombuffer(b"abz", dtype=np.uint8)).bigram_bpb)


def test_corpus_floors_are_cached_atomically_and_reused(tmp_path, monkeypatch):
    docs = [(f"d{i}", "the cat sat on the mat. " * (i + 1)) for i in range(12)]
    corpus = build_corpus(docs, name="tiny", cache_dir=tmp_path)
    val = corpus.tokens("val")
    fl = F.corpus_floors(corpus, "val", 40)
    assert fl.n_tokens == 40 and fl.split == "val"
    # by hand from the train split's byte counts, on targets val[1..40]
    train = np.asarray(corpus.tokens("train"), dtype=np.int64)
    c = np.bincount(train, minlength=256)
    p = (c + 0.5) / (len(train) + 128)
    want = -np.log2(p[np.asarray(val[1:41], dtype=np.int64)]).sum() / 40 / corpus.bytes_per_token("val")
    assert fl.unigram_bpb == pytest.approx(want)
    assert fl.bigram_bpb < fl.unigram_bpb  # repetitive text: the previous byte helps
    files = list(corpus.root.glob("floors-val-40-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["n_tokens"] == 40
    assert not list(corpus.root.glob(".floors*tmp"))
    monkeypatch.setattr(F.CountModel, "fit", lambda *a, **k: pytest.fail("recomputed a cached floor"))
    assert F.corpus_floors(corpus, "val", 40) == fl


def test_windowed_floors_score_the_windows_the_lm_scores_and_no_pair_across_them(tmp_path):
    docs = [(f"d{i}", "the cat sat on the mat. " * (i + 1) + "0123456789" * i) for i in range(40)]
    corpus = build_corpus(docs, name="tiny-w", cache_dir=tmp_path)
    val = np.asarray(corpus.tokens("val"), dtype=np.int64)
    seq = 8
    fl = F.corpus_floors(corpus, "val", 24, seq_len=seq)
    starts = window_starts(len(val), seq, 24)
    assert len(starts) == 3 and fl.n_tokens == 24
    train = np.asarray(corpus.tokens("train"), dtype=np.int64)
    c = np.bincount(train, minlength=256)
    p = (c + 0.5) / (len(train) + 128)
    # the targets of each window: its tokens 1..seq, the same ones eval_windows yields
    targets = np.concatenate([y.ravel() for _, y in eval_windows(val, seq, 24)])
    assert np.array_equal(targets, np.concatenate([val[s + 1:s + seq + 1] for s in starts]))
    want = -np.log2(p[targets]).sum() / 24 / corpus.bytes_per_token("val")
    assert fl.unigram_bpb == pytest.approx(want)
    model = F.CountModel.fit(train, 256)
    bits = sum(model.bits(val[s:s + seq + 1])[1] for s in starts)  # pairs inside windows only
    assert fl.bigram_bpb == pytest.approx(bits / 24 / corpus.bytes_per_token("val"))
    # a separate cache entry from the contiguous floors of the same count
    assert F.corpus_floors(corpus, "val", 24) != fl
    assert len(list(corpus.root.glob("floors-val-24-*.json"))) == 2


def test_below():
    assert F.below(3.0, 3.5) is True and F.below(3.5, 3.5) is False
    assert F.below(None, 3.5) is None and F.below(math.nan, 3.0) is None
