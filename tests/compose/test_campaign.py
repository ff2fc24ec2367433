"""A 2-agent compose campaign end to end on tiny settings: search, phases, report, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cambrian import Campaign, NodeStatus
from tests.compose.tiny import TINY_DOMAIN, tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("compose") / "run"
    cfg = tiny_config(max_nodes=5)
    cfg["coordination"] = {"policy": "bandit", "warmup": 1}  # (the kill/resume test runs `fixed`)
    campaign = Campaign.from_config(cfg, run_dir)
    result = campaign.run()
    return campaign, result


def test_bandit_supervisor_gave_every_slot_with_a_reason(run):
    campaign, _ = run
    store = campaign.open_store()
    grants = store.events("allocation")
    assert grants and {e["agent"] for e in grants} == {"greedy", "evolutionary"}
    assert all(e["payload"]["reason"].startswith(("bandit warm-up", "bandit ucb")) for e in grants)
    made = {e["agent"] for e in store.events("node_created")} & {"greedy", "evolutionary"}
    assert made == {"greedy", "evolutionary"}


def test_search_and_phases_are_stored(run):
    campaign, result = run
    store = campaign.open_store()
    search = store.nodes(phase="search")
    assert len(search) == 5 and {n.agent for n in search} == {"greedy", "evolutionary"}
    assert result.best is not None and result.best.status == NodeStatus.DONE
    assert len({n.candidate.hash for n in search}) == len(search)  # deduplicated by canonical hash
    m = result.best.metrics
    assert 0 < m["bpb"].value < 9 and m["score"].value == m["bpb"].value  # mqar_weight 0: score = bpb
    assert 0 <= m["mqar_acc"].value <= 1 and m["params"].value > 0 and result.best.cost.flops > 0
    # where it trained: device auto is the CPU here, fp32 at this size, recorded by name too
    assert m["on_cuda"].value == 0.0 and m["bf16"].value == 0.0 and result.best.cost.gpu_s == 0.0
    runtime = json.loads((campaign.run_dir / "evals" / result.best.id / "work" / "runtime.json").read_text())
    assert runtime["device"] == "cpu" and runtime["dtype"] == "float32"

    agg = store.get_meta("phase:aggregation")
    assert agg["top"][0]["node"] == result.best.id
    scaling = store.get_meta("phase:scaling")
    labels = [d["label"] for d in scaling["designs"]]
    assert any(d.get("baseline") == "llama" for d in scaling["designs"]), labels
    for d in scaling["designs"]:
        assert set(d["rungs"]) == {"proxy", "x2"}
        assert d["rungs"]["x2"]["params"] > d["rungs"]["proxy"]["params"]  # wider and deeper
        # two rungs cannot resolve an exponent: no fit, no "% faster", the reason instead
        assert d["fit"] is None and d["claim"]["reason"].startswith("not resolved")
        assert "vs_llama" not in d
    assert any("not resolved" in d.get("vs_llama_note", "") for d in scaling["designs"]) or \
        len(scaling["designs"]) == 1
    assert scaling["rank_agreement"]["resolved"] is False  # fewer than 6 designs
    hidden = store.get_meta("phase:hidden")
    searched_seeds = {n.seed for n in store.nodes() if n.phase != "hidden"}
    assert len(hidden["seeds"]) == 2 and not set(hidden["seeds"]) & searched_seeds  # fresh seeds
    assert isinstance(hidden["beats_all_baselines"], bool) and hidden["strongest_baseline"] == "llama"
    assert hidden["verdict"] and "llama" in hidden["verdict"] and "Welch p" in hidden["verdict"]
    assert all(r["seeds"] == 2 for r in hidden["designs"])
    assert hidden["floors"]["split"] == "hidden" and hidden["floors"]["bigram_bpb"] > 0
    # the designs judged as finds are the search's own, best first: a reference that led the
    # search (it is seeded into the evolutionary agent) is judged as a baseline, never as a find
    from cambrian.plugins.domains.compose.phases import search_pool

    ref_hashes = {c.hash for c in campaign.domain.baselines().values()}
    found = [d["hash"] for d in hidden["designs"] if not d["baseline"]]
    pool = [n.candidate.hash for n in search_pool(campaign) if n.candidate.hash not in ref_hashes]
    assert found and found == pool[:len(found)] and not set(found) & ref_hashes
    hidden_nodes = store.nodes(phase="hidden")
    assert {n.split for n in hidden_nodes} == {"hidden"} and {n.seed for n in hidden_nodes} == set(hidden["seeds"])


def test_references_are_checked_against_the_floors_before_search(run):
    campaign, _ = run
    store = campaign.open_store()
    refs = store.get_meta("phase:references")
    assert [r["name"] for r in refs["references"]] == ["llama", "composer"]  # the former family's
    for r in refs["references"]:
        assert r["status"] == "done" and r["floor_bigram_bpb"] < r["floor_unigram_bpb"]
        assert r["below_bigram"] == (r["bpb"] < r["floor_bigram_bpb"])
    above = [r["name"] for r in refs["references"] if not r["below_bigram"]]
    assert (refs["warning"] is not None) == bool(above)
    if above:  # one line naming every reference above the floor
        assert "\n" not in refs["warning"] and all(n in refs["warning"] for n in above)
    # it ran before the agents' first evaluation
    done = next(e for e in store.events("phase_done") if e["payload"]["phase"] == "references")
    first_search = min(n.created_at for n in store.nodes(phase="search"))
    assert done["ts"] <= first_search
    best = next(n for n in store.nodes(phase="search") if n.status == NodeStatus.DONE).metrics
    # every LM score carries its floors
    assert {"floor_unigram_bpb", "floor_bigram_bpb"} <= set(best)


def test_phases_are_idempotent(run):
    campaign, _ = run
    store = campaign.open_store()
    before = {n.id for n in store.nodes()}
    designs = store.get_meta("phase:hidden")["designs"]
    from cambrian.plugins.domains.compose.phases import HiddenEvaluation

    again = HiddenEvaluation(top_k=1, seeds=2, baselines=["llama"]).run(campaign)  # no executor needed:
    assert {n.id for n in store.nodes()} == before  # every node is reused, none re-run
    assert [r["mean"] for r in again["designs"]] == [r["mean"] for r in designs]
    with pytest.raises(ValueError, match="used by the search"):  # a seed the search used is refused
        HiddenEvaluation(top_k=1, seeds=[campaign.config.seed, 7], baselines=["llama"]).run(campaign)


def test_report_has_html_and_figures(run, tmp_path):
    import shutil

    from cambrian.core.store import Store
    from cambrian.plugins.reporting.report import write_report

    campaign, _ = run
    page = write_report(campaign.run_dir)
    html = page.read_text()
    figs = campaign.run_dir / "figures"
    for name in ("leaderboard", "best_so_far", "search_graph", "quality_vs_cost", "scaling", "ladder",
                 "hidden", "costs", "slots"):  # slots: evaluation slots per agent (two agents here)
        png = figs / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG", name
    assert html.count("data:image/png;base64,") == 9
    for text in ("Scaling steps", "Hidden evaluation", "Aggregation", "Rank agreement", "Verdict"):
        assert text in html
    # the one verdict sentence, with its statistic once, in the verdict and the hidden sections
    assert html.count("Welch p = ") == 2 and "Welch t-test" not in html
    # one comparison row per baseline, with how often a rerun on fresh seeds would beat it
    hidden = campaign.open_store().get_meta("phase:hidden")
    table = html.split('id="comparisons-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + len(hidden["comparisons"]) and "rerun beats" in html
    assert all(0 <= c["rerun_beats"] <= 1 for c in hidden["comparisons"])
    # a run recorded before rerun_beats existed still gets its report, with "n/a" there
    old = shutil.copytree(campaign.run_dir, tmp_path / "old")
    store = Store(old / "store.sqlite", create=False)
    store.set_meta("phase:hidden", {**hidden, "comparisons": [
        {k: v for k, v in c.items() if k != "rerun_beats"} for c in hidden["comparisons"]]})
    table = write_report(old).read_text().split('id="comparisons-table"')[1].split("</table>")[0]
    assert table.count("n/a") == len(hidden["comparisons"])


def test_export_loads_with_transformers_in_a_fresh_process(run, tmp_path):
    from cambrian.plugins.domains.compose.export import export_node

    campaign, result = run
    out = export_node(campaign.run_dir, result.best.id, tmp_path / "hf")
    code = ("import json, sys, torch\n"
            "from transformers import AutoModelForCausalLM\n"
            f"m = AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True)\n"
            "x = torch.tensor([list(b'def f(')])\n"
            "y = m.generate(x, max_new_tokens=4, do_sample=False)\n"
            "print(json.dumps({'shape': list(y.shape), 'loss': float(m(x, labels=x).loss)}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["shape"] == [1, 10] and 0 < got["loss"] < 10
    meta = json.loads((out / "cambrian_node.json").read_text())
    assert meta["node"] == result.best.id and meta["spec"] == result.best.candidate.content


TINY_TASK = """\
task: cambrian_tiny
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def test_export_scores_with_lm_eval_hf_offline(run, tmp_path):
    """lm-eval's `hf` model on a local task: its log-likelihoods are the export's own."""
    pytest.importorskip("lm_eval")
    from cambrian.plugins.domains.compose.export import export_node

    campaign, result = run
    out = export_node(campaign.run_dir, result.best.id, tmp_path / "hf")
    docs = [{"question": "The cat sat on the", "choices": ["mat", "qzx"], "answer": 0},
            {"question": "def f(x): return", "choices": ["x", "]]"], "answer": 0},
            {"question": "Caf", "choices": ["é", "@@"], "answer": 0}]
    (tmp_path / "tiny.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny.yaml").write_text(TINY_TASK.format(data=tmp_path / "tiny.jsonl"))
    code = f"""
import json, torch, lm_eval
from lm_eval.tasks import TaskManager
from transformers import AutoModelForCausalLM
res = lm_eval.simple_evaluate(model="hf", tasks=["cambrian_tiny"], batch_size=1, device="cpu",
    model_args="pretrained={out},trust_remote_code=True,dtype=float32", log_samples=True,
    task_manager=TaskManager(include_path={str(tmp_path / "tasks")!r}))
m = AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True).eval()
pairs = []
for s in res["samples"]["cambrian_tiny"]:
    for (ctx, cont), resp in zip(s["arguments"], s["resps"]):
        ids = torch.tensor([list((ctx + cont).encode())])
        with torch.no_grad():
            logp = m(ids).logits.log_softmax(-1)[0]
        n = len(ctx.encode())
        mine = sum(float(logp[i - 1, ids[0, i]]) for i in range(n, ids.shape[1]))
        pairs.append([resp[0][0], mine])
print(json.dumps({{"results": res["results"]["cambrian_tiny"], "pairs": pairs}}))
"""
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"),
           "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["results"]["sample_len"] == 3 and 0 <= got["results"]["acc,none"] <= 1
    assert len(got["pairs"]) == 6
    for theirs, mine in got["pairs"]:  # lm-eval tokenized as bytes and scored with this model
        assert theirs == pytest.approx(mine, abs=1e-3)


def test_export_retrains_when_the_weights_are_missing(run, tmp_path):
    import torch

    from cambrian.plugins.domains.compose.evaluator import MODEL_FILE
    from cambrian.plugins.domains.compose.export import export_node

    campaign, result = run
    saved = campaign.run_dir / "evals" / result.best.id / "work" / MODEL_FILE
    original = torch.load(saved, weights_only=False)
    saved.unlink()
    export_node(campaign.run_dir, result.best.id, tmp_path / "hf2")
    again = torch.load(saved, weights_only=False)
    for k, v in original["state_dict"].items():  # same seed and budget: the same weights
        assert torch.allclose(v, again["state_dict"][k], atol=1e-5), k


def test_show_json_is_one_object_with_the_leaderboard_floors_and_verdict(run):
    import subprocess
    import sys

    campaign, result = run
    out = subprocess.run([sys.executable, "-m", "cambrian.cli", "show", str(campaign.run_dir), "--json"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # one JSON object, nothing else on stdout
    assert data["status"].startswith("stopped") and sum(data["counts"].values()) == 5
    top = data["leaderboard"][0]
    assert top["id"] == result.best.id and top["agent"] in ("greedy", "evolutionary")
    assert top["design"].count(",") >= 2 and top["fidelity"] == 1.0
    assert top["score"]["seeds"] >= 1 and top["score"]["mean"] == pytest.approx(result.best.metrics["score"].value)
    assert top["score"]["sd"] is None or top["score"]["seeds"] > 1
    assert set(data["floors"]) == {"val", "hidden"}
    assert data["floors"]["val"]["bigram_bpb"] < data["floors"]["val"]["unigram_bpb"]
    hidden = data["hidden"]
    assert hidden["strongest_baseline"] == "llama" and isinstance(hidden["beats_all_baselines"], bool)
    for row in hidden["rows"]:
        assert {"name", "mean", "sd", "seeds", "params"} <= set(row) and row["seeds"] == 2 and row["params"] > 0
    flagged = [row["name"] for row in hidden["rows"] if row["baseline"]]
    assert "llama" in flagged and len(flagged) < len(hidden["rows"])  # the searched design is no baseline
    # every search design is counted once under the agent and operator that made it; this
    # campaign seeds no hand-built reference, so none is compared
    made = {(n.agent, n.operator) for n in campaign.open_store().nodes(phase="search")}
    assert {(y["agent"], y["operator"]) for y in data["yield"]} == made
    assert sum(y["designs"] for y in data["yield"]) == 5
    assert all(y["compared"] == 0 and y["best_lead"] is None for y in data["yield"])
    refs = campaign.open_store().get_meta("phase:references")
    assert data["warnings"] == ([refs["warning"]] if refs["warning"] else [])


def test_hidden_phase_with_no_baselines_scores_only_the_find(tmp_path):
    """``baselines: []`` compares with none (bench/discovery.py scores them once, elsewhere);
    null keeps meaning all of the domain's. ``val_tokens`` scores the hidden split on more
    tokens than the search scored val on."""
    cfg = tiny_config(agents=1, max_nodes=2, references=False, aggregation=False, scaling=False,
                      hidden={"top_k": 1, "seeds": 1, "baselines": [], "val_tokens": 2 * TINY_DOMAIN["val_tokens"]})
    campaign = Campaign.from_config(cfg, tmp_path / "run")
    campaign.run()
    hidden = campaign.open_store().get_meta("phase:hidden")
    assert [d["baseline"] for d in hidden["designs"]] == [None]

    def scored(node):  # the settings the evaluation trained and scored with
        return json.loads((tmp_path / "run" / "evals" / node.id / "work" / "train.json").read_text())["settings"]
    store = campaign.open_store()
    assert {scored(n)["val_tokens"] for n in store.nodes(phase="search")} == {TINY_DOMAIN["val_tokens"]}
    assert [scored(n)["val_tokens"] for n in store.nodes(phase="hidden")] == [2 * TINY_DOMAIN["val_tokens"]]
    assert hidden["strongest_baseline"] is None and hidden["verdict"].startswith("no verdict")


def test_size_matched_hidden_phase_holds_a_deeper_find_to_baselines_as_deep(tmp_path):
    """``size_matched`` rebuilds each baseline at the find's depth (``llama@6`` beside the
    4-layer proxy's ``llama``), and a reference rebuilt at another depth is never the find."""
    from cambrian.plugins.domains.compose.phases import HiddenEvaluation

    cfg = tiny_config(agents=1, max_nodes=2, references=False, aggregation=False, scaling=False,
                      hidden={"top_k": 1, "seeds": 2, "baselines": ["llama"]})
    campaign = Campaign.from_config(cfg, tmp_path / "run")
    domain = campaign.domain
    find = domain.spec(["attention", "swiglu", "swiglu", "attention", "swiglu", "swiglu"])  # 6 layers
    deep_llama = domain.validate(domain.baselines(n_layers=6)["llama"])  # att, swiglu x 3: hand-built
    assert len(deep_llama.content["layers"]) == 6 and deep_llama.hash != domain.baselines()["llama"].hash
    campaign._prepare()  # the store and executor a run opens, without its agents
    try:
        campaign.evaluate([find, deep_llama], phase="search", split="val", seeds=(0,), agent="search")
        plain = HiddenEvaluation(top_k=1, seeds=2, baselines=["llama"]).run(campaign)
        out = HiddenEvaluation(top_k=1, seeds=2, baselines=["llama"], size_matched=True).run(campaign)
    finally:
        campaign.executor.shutdown()
    assert [d["baseline"] for d in plain["designs"]][1:] == ["llama"]  # off: the proxy's llama only
    designs = out["designs"]
    assert [d["kind"] for d in designs] == ["search", "baseline", "baseline"]
    assert designs[0]["hash"] == find.hash  # never the deeper llama, whatever the two scored
    assert [d["baseline"] for d in designs[1:]] == ["llama", "llama@6"]
    assert designs[2]["hash"] == deep_llama.hash and designs[2]["n"] == 2
    assert {c["baseline"] for c in out["comparisons"]} == {"llama", "llama@6"}
    means = {d["baseline"]: d["mean"] for d in designs[1:]}
    assert out["strongest_baseline"] == min(means, key=means.get)  # the verdict counts llama@6 too
