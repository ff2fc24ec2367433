"""End-to-end: real specs from cambrian.architectures trained on real data."""


from cambrian.architectures import reference_spec
from cambrian.scaling.runs import train_lm, train_task
from cambrian.scaling.synthetic import make_task
from cambrian.scaling.trainer import TrainConfig


def test_llama_reference_learns_the_stdlib_corpus_reproducibly(stdlib_corpus):
    spec = reference_spec("llama", d_model=64, n_layers=2, max_seq_len=64)
    config = TrainConfig(lr=3e-3, max_steps=200, warmup_steps=20, threads=1)
    runs = [train_lm(spec, stdlib_corpus, config, batch_size=16, seq_len=64, seed=0, val_tokens=8192)
            for _ in range(2)]
    bpb = runs[0].metrics["bpb"]
    assert bpb < 4.0  # the uniform byte baseline is 8 bits per byte
    assert runs[1].metrics["bpb"] == bpb  # same spec and seed: the same number
    m = runs[0].metrics
    assert m["train_tokens"] == 200 * 16 * 64 and m["train_flops"] == 3 * m["flops_per_token"] * m["train_tokens"]


MQAR = {"num_kv_pairs": 4, "num_queries": 4, "num_keys": 8, "num_values": 8}


def test_attention_learns_mqar_where_an_mlp_only_model_stays_at_chance():
    task = make_task("mqar", **MQAR)
    config = TrainConfig(lr=3e-3, max_steps=200, warmup_steps=20, weight_decay=0.0, threads=1)
    # A tiny attention model with a short causal conv in front (as in Zoology's baselines), vs MLPs only.
    attention = {"d_model": 64, "layers": [{"primitive": "conv"},
                                           {"primitive": "attention", "options": {"n_heads": 2}},
                                           {"primitive": "swiglu"}]}
    mlp_only = {"d_model": 64, "layers": [{"primitive": "swiglu"}] * 3}
    att = train_task(attention, task, config, n_train=10000, n_eval=300, batch_size=64)
    mlp = train_task(mlp_only, task, config, n_train=10000, n_eval=300, batch_size=64)
    assert att["accuracy"] > 0.9
    assert mlp["accuracy"] < task.chance + 0.1


def test_command_line_trains_a_spec_and_writes_json(tmp_path, stdlib_corpus):
    import json
    import subprocess
    import sys

    spec = tmp_path / "spec.json"
    spec.write_text(reference_spec("llama", d_model=32, n_layers=1, max_seq_len=32).to_json())
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, "-m", "cambrian.scaling.train", "--spec", str(spec), "--max-steps", "3",
                    "--seq-len", "32", "--batch-size", "4", "--val-tokens", "1024", "--precision", "fp32",
                    "--cache-dir", str(stdlib_corpus.root.parent.parent), "--out", str(out)], check=True)
    result = json.loads(out.read_text())
    assert result["status"] == "completed" and result["metrics"]["steps"] == 3 and result["metrics"]["bpb"] > 0
