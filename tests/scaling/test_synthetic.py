import numpy as np
import pytest

from cambrian.scaling.synthetic import (
    IGNORE,
    LISTOPS_OPS,
    SUITES,
    TASKS,
    ListOps,
    Memorization,
    _listops_eval,
    make_split,
    make_task,
)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_is_seeded_split_and_in_vocab(name):
    task = make_task(name)
    a, b = make_split(task, "train", 64, seed=1), make_split(task, "train", 64, seed=1)
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.targets, b.targets)
    val = make_split(task, "val", 64, seed=1)
    assert not np.array_equal(val.inputs, a.inputs)  # splits draw from separate streams
    for d in (a, val):
        assert d.inputs.shape == (64, task.seq_len) and d.inputs.dtype == np.int64
        assert 0 <= d.inputs.min() and d.inputs.max() < task.vocab_size
        scored = d.targets[d.targets != IGNORE]
        assert len(scored) >= 64 and scored.min() >= 0 and scored.max() < task.vocab_size
    assert 0 < task.chance < 1


def test_mqar_answers_are_the_values_seen_in_context():
    task = make_task("mqar", num_kv_pairs=4, num_queries=6)
    d = make_split(task, "val", 50, seed=0)
    for x, y in zip(d.inputs, d.targets):
        table = dict(zip(x[0:8:2], x[1:8:2]))
        for t in np.nonzero(y != IGNORE)[0]:
            assert t >= 8 and y[t] == table[x[t]] and x[t + 1] == y[t]


def test_selective_copying_targets_are_the_content_in_order():
    task = make_task("selective_copying")
    d = make_split(task, "train", 20, seed=0)
    for x, y in zip(d.inputs, d.targets):
        ctx = x[:task.context_len]
        content = ctx[ctx < task.vocab]
        assert np.array_equal(y[task.context_len:], content)


def test_memorization_shares_one_table_across_splits():
    task = Memorization()
    table = task.table()
    for split in ("train", "val", "hidden"):
        d = make_split(task, split, 10, seed=5)
        assert np.array_equal(d.targets[:, 0::2], table[d.inputs[:, 0::2]])


def _evaluate_listops(tokens):
    def parse(i):
        op = LISTOPS_OPS[tokens[i] - 10]
        args, i = [], i + 1
        while tokens[i] != 14:
            if tokens[i] >= 10:
                v, i = parse(i)
            else:
                v, i = int(tokens[i]), i + 1
            args.append(v)
        return _listops_eval(op, args), i + 1
    return parse(0)[0]


def test_listops_labels_match_an_independent_parse():
    task = ListOps(max_len=48)
    d = make_split(task, "val", 100, seed=2)
    for x, y in zip(d.inputs, d.targets):
        (t,) = np.nonzero(y != IGNORE)[0]
        assert x[t] == 14 and y[t] == _evaluate_listops(list(x[:t + 1]))


def test_suites_name_known_tasks():
    assert set(SUITES["all"]) == set(TASKS) and len(SUITES["mad"]) == 6
