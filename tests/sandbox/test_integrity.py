"""Evaluation integrity: a candidate can't read what judges it, can't point the harness at other
files, can't race the store or the caches. Each case asserts what can be observed: the node's
status, its metrics, files on disk; never the wording."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from cambrian import Candidate, EvalJob, NodeStatus
from cambrian.core.config import SandboxLimits
from cambrian.execution.evaluation import evaluate_here
from cambrian.execution.harness import private_dir, run_candidate
from tests.conftest import toy_config

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a throw-away uid needs root")
LABELS = [3.0, -1.0, 4.0, 1.5, -5.0, 9.0]
SECRET = "root-only-secret-7f3a"

EVALUATE = """\
import json
sub = [float(x) for x in open("submission.csv").read().split()]
labels = [float(x) for x in open("hidden/labels.csv").read().split()]
if len(sub) != len(labels):
    raise SystemExit(f"bad submission: {open('submission.csv').read()[:200]}")
print(json.dumps({"MAE": sum(abs(a - b) for a, b in zip(sub, labels)) / len(labels)}))
"""


def airs_task(root: Path) -> Path:
    """An AIRS-Bench-style command task whose hidden labels and scorer are world-readable on disk."""
    root.mkdir(mode=0o755)
    (root / "metadata.yaml").write_text(textwrap.dedent("""\
        metric_lower_is_better: true
        file_export_globs: [submission.csv]
        logging_info: {name: Toy, metric: MAE}
        """))
    (root / "project_description.md").write_text("Predict six numbers.\n")
    (root / "evaluate.py").write_text(EVALUATE)
    (root / "solution.py").write_text("")
    (root / "hidden").mkdir(mode=0o755)
    (root / "hidden" / "labels.csv").write_text("\n".join(map(str, LABELS)) + "\n")
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def evaluate(task: Path, run: Path, source: str, name: str):
    options = {"task": str(task), "overrides": {"budgets": {"repeats": 1, "time_s": 2, "timeout_s": 60}}}
    job = EvalJob(node_id=name, run_dir=str(run), domain="script", domain_options=options,
                  evaluator="script", candidate=Candidate(kind="script", content=source),
                  limits={"timeout_s": 120})
    work = run / "evals" / name / "work"
    work.mkdir(parents=True)
    return evaluate_here(job, work)


HONEST = "open('submission.csv', 'w').write('0\\n' * 6)\n"
STEAL = """\
import shutil
for path in ("{task}/hidden/labels.csv", "{task}/evaluate.py"):
    try:
        data = open(path).read()
    except OSError:
        continue
    if path.endswith("labels.csv"):
        open("submission.csv", "w").write(data)
        raise SystemExit(0)
open("submission.csv", "w").write("0\\n" * 6)
"""


@ROOT_ONLY
def test_hidden_labels_and_scoring_code_are_out_of_the_candidates_sight(open_tmp_path):
    task = airs_task(open_tmp_path / "task")
    honest = evaluate(task, open_tmp_path / "run", HONEST, "honest")
    thief = evaluate(task, open_tmp_path / "run", STEAL.format(task=task), "thief")
    assert honest.status == thief.status == NodeStatus.DONE, (honest.error, thief.error)
    mae = sum(abs(x) for x in LABELS) / len(LABELS)
    assert honest.metrics["MAE"].value == pytest.approx(mae)
    assert thief.metrics["MAE"].value == pytest.approx(mae)  # it found nothing to copy


@ROOT_ONLY
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_linked_or_special_submission_is_rejected_and_nothing_leaks(open_tmp_path, kind):
    task = airs_task(open_tmp_path / "task")
    secret = open_tmp_path / "root-only.txt"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    make = (f"import os\nos.symlink({str(secret)!r}, 'submission.csv')\n" if kind == "symlink"
            else "import os\nos.mkfifo('submission.csv')\n")
    run = open_tmp_path / "run"
    t0 = time.monotonic()
    out = evaluate(task, run, make, kind)
    assert out.status == NodeStatus.FAILED and out.metrics == {}
    assert time.monotonic() - t0 < 60  # a FIFO is never opened for a blocking read
    assert SECRET not in (out.error or "")
    for f in run.rglob("*"):
        if f.is_file() and not f.is_symlink():
            assert SECRET.encode() not in f.read_bytes(), f


@ROOT_ONLY
def test_private_and_hidden_paths_are_unreadable_to_the_candidate(open_tmp_path):
    cache = private_dir(open_tmp_path / "cache")
    (cache / "hidden.bin").write_bytes(b"hidden split")
    trusted = open_tmp_path / "trusted"
    trusted.mkdir(mode=0o755)
    (trusted / "score.py").write_text("LABELS = [1, 2, 3]\n")
    (trusted / "score.py").chmod(0o644)
    code = textwrap.dedent(f"""\
        import os
        seen = []
        for path in ({str(cache / 'hidden.bin')!r}, {str(trusted / 'score.py')!r}):
            try:
                if open(path).read():
                    seen.append(path)
            except OSError:
                pass
        open("seen.txt", "w").write("\\n".join(seen))
        """)
    work = open_tmp_path / "w"
    res = run_candidate([sys.executable, "-c", code], work, SandboxLimits(timeout_s=60), hide=(trusted,))
    assert res.returncode == 0, res.stderr_tail
    assert (work / "seen.txt").read_text() == ""
    assert (trusted / "score.py").read_text() == "LABELS = [1, 2, 3]\n"  # hidden only in its view


SHM = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
key, create = 0x7C1A5EED, sys.argv[1] == "leave"
shmid = libc.shmget(key, 4096, (0o1000 | 0o666) if create else 0)  # IPC_CREAT, world-readable
open("shmid.txt", "w").write(str(shmid))
"""


def test_a_shared_memory_segment_does_not_outlive_its_run(open_tmp_path):
    """System V IPC is not tied to a mount or a uid: a world-readable segment one candidate leaves
    would reach the next (or a scoring process). Each run has its own IPC namespace."""
    import ctypes

    limits = SandboxLimits(timeout_s=60)
    first = run_candidate([sys.executable, "-c", SHM, "leave"], open_tmp_path / "a", limits)
    second = run_candidate([sys.executable, "-c", SHM, "find"], open_tmp_path / "b", limits)
    assert first.returncode == second.returncode == 0, (first.stderr_tail, second.stderr_tail)
    assert int((open_tmp_path / "a" / "shmid.txt").read_text()) >= 0  # it made one
    assert int((open_tmp_path / "b" / "shmid.txt").read_text()) == -1  # the next run finds none
    assert ctypes.CDLL(None).shmget(0x7C1A5EED, 0, 0) == -1  # nor does the host


KEYS = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
if sys.argv[1] == "leave":  # a key everyone may read, in this uid's keyring (add_key, then KEYCTL_SETPERM)
    kid = libc.syscall(248 if sys.argv[2] == "x86_64" else 217, b"user", b"cambrian-test-key-5e1",
                       b"the next tokens", 15, ctypes.c_int(-4))
    if kid > 0:
        libc.syscall(250 if sys.argv[2] == "x86_64" else 219, 5, kid, 0x3F3F3F3F)
    open("key.txt", "w").write(str(kid))
else:
    open("key.txt", "w").write(open("/proc/keys").read())
"""


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="the filter's architectures")
def test_a_kernel_key_can_not_be_left_for_the_next_run(open_tmp_path):
    """Kernel keyrings outlive a run and cross uids; candidate code may not use them at all."""
    limits = SandboxLimits(timeout_s=60)
    first = run_candidate([sys.executable, "-c", KEYS, "leave", platform.machine()], open_tmp_path / "a", limits)
    second = run_candidate([sys.executable, "-c", KEYS, "find", platform.machine()], open_tmp_path / "b", limits)
    assert first.returncode == second.returncode == 0, (first.stderr_tail, second.stderr_tail)
    assert int((open_tmp_path / "a" / "key.txt").read_text()) == -1  # refused
    assert "cambrian-test-key-5e1" not in (open_tmp_path / "b" / "key.txt").read_text()
    assert "cambrian-test-key-5e1" not in Path("/proc/keys").read_text()


def _build(cache: str) -> int:
    from cambrian.scaling.data import build_corpus

    docs = [(f"doc{i}", f"text number {i} " * 200) for i in range(40)]
    c = build_corpus(docs, name="race", cache_dir=cache)
    return sum(c.n_tokens.values())


def test_parallel_fresh_corpus_builds_all_succeed_with_one_copy(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        sizes = list(pool.map(_build, [str(tmp_path)] * 4))
    assert len(set(sizes)) == 1 and sizes[0] > 0
    roots = list((tmp_path / "corpora").iterdir())
    assert len(roots) == 1 and not list(roots[0].glob(".build-*"))


HOLD = """\
import sys, time
from cambrian.campaign.rundir import RunDirLock
RunDirLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_writer_fails_at_once_naming_the_holder_and_readers_still_work(tmp_path):
    from cambrian import Campaign
    from tests.conftest import toy_config

    run = tmp_path / "run"
    Campaign.from_config(toy_config(), run).run()
    before = (run / "store.sqlite").stat().st_mtime_ns
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        cli = [sys.executable, "-m", "cambrian.cli"]
        second = subprocess.run([*cli, "resume", str(run), "--quiet"], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert str(holder.pid) in second.stderr and len(second.stderr.strip().splitlines()) == 1
        fresh = subprocess.run([*cli, "run", "--out", str(run), "--quiet", "--default"],
                               capture_output=True, text=True, timeout=120)
        assert fresh.returncode == 2
        assert (run / "store.sqlite").stat().st_mtime_ns == before  # nothing written
        shown = subprocess.run([*cli, "show", str(run)], capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
    finally:
        holder.kill()
        holder.wait()
    again = Campaign.resume(run)  # free again once the holder is gone
    again._run_lock.release()


SYSTEM_PYTHON = "/usr/bin/python3.11"
NONROOT = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON) or not shutil.which("setpriv"),
                             reason="simulating a normal user needs root, setpriv and a python any uid can run")
AS_USER = """\
import json, sys
from pathlib import Path
from cambrian.core.config import SandboxLimits
from cambrian.execution import harness, sandbox
run = Path(sys.argv[1])
if sys.argv[2] == "no-userns":
    sandbox._userns_box = lambda: None  # as on a machine without user namespaces
code = ("import os\\ntry:\\n    open('../store.sqlite', 'a').write('forged')\\nexcept OSError:\\n    pass\\n"
        "open('mine.txt', 'w').write(str(len([p for p in os.listdir('/proc') if p.isdigit()])))\\n")
out = {}
for unsafe in (False, True):
    work = run / f"work-{unsafe}"
    try:
        res = harness.run_candidate([sys.executable, "-c", code], work,
                                    SandboxLimits(timeout_s=60, unsafe_no_isolation=unsafe))
        out[str(unsafe)] = {"rc": res.returncode, "warnings": list(res.warnings),
                            "procs": int((work / "mine.txt").read_text())}
    except harness.CandidateRefused:
        out[str(unsafe)] = "refused"
out["store"] = (run / "store.sqlite").read_text()
print(json.dumps(out))
"""


def _as_normal_user(run: Path, mode: str) -> dict:
    import json

    uid = 40000 + os.getpid() % 20000
    run.chmod(0o755)
    os.chown(run, uid, uid)
    (run / "store.sqlite").write_text("original")
    os.chown(run / "store.sqlite", uid, uid)
    paths = [str(Path(__file__).parents[2])] + [p for p in sys.path if p.endswith("site-packages")]
    env = {"PATH": os.environ["PATH"], "HOME": str(run), "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", SYSTEM_PYTHON,
                           "-c", AS_USER, str(run), mode], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@NONROOT
def test_without_root_candidates_run_boxed_in_user_namespaces(open_tmp_path):
    out = _as_normal_user(open_tmp_path, "userns")
    assert out["store"] == "original"  # the run directory is read-only to the candidate
    assert out["False"]["rc"] == 0 and out["False"]["warnings"] == [] and out["False"]["procs"] <= 2


@NONROOT
def test_without_root_or_user_namespaces_untrusted_code_is_refused_unless_allowed(open_tmp_path):
    out = _as_normal_user(open_tmp_path, "no-userns")
    assert out["False"] == "refused"
    assert out["True"]["rc"] == 0 and out["True"]["warnings"]  # ran, and its record says unisolated
    assert out["store"] == "originalforged"  # what --unsafe-no-isolation risks, shown for real


CLI_AS_USER = """\
import json, os, sys
from cambrian.execution import sandbox
sandbox._userns_box = lambda: None  # as on a machine without user namespaces
from cambrian.cli import main
try:
    main(["run", sys.argv[1], "--out", sys.argv[2], "--quiet"])
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({"rc": code}))
"""


@NONROOT
def test_the_cli_refuses_an_untrusted_code_campaign_without_isolation_and_writes_nothing(open_tmp_path):
    import json

    from tests.attention.conftest import TINY

    run = open_tmp_path
    uid = 40000 + os.getpid() % 20000
    run.chmod(0o755)
    os.chown(run, uid, uid)
    options = {"model": TINY["model"], "tasks": {"mqar": TINY["tasks"]["mqar"]}, "weights": {"mqar": 1.0}}
    cfg = {**toy_config(), "domain": {"name": "attention", "options": options}}
    (run / "c.yaml").write_text(json.dumps(cfg))  # YAML is a superset of JSON
    paths = [str(Path(__file__).parents[2])] + [p for p in sys.path if p.endswith("site-packages")]
    env = {"PATH": os.environ["PATH"], "HOME": str(run), "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", SYSTEM_PYTHON,
                           "-c", CLI_AS_USER, str(run / "c.yaml"), str(run / "out")], capture_output=True,
                          text=True, env=env, timeout=300, cwd=run)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"rc": 2}, done.stderr[-2000:]
    assert "--unsafe-no-isolation" in done.stderr  # refused for isolation, not for a bad config
    assert sorted(p.name for p in run.iterdir()) == ["c.yaml"]  # nothing written: no run directory


def test_show_and_the_report_open_with_the_unisolated_warning(tmp_path):
    from cambrian import Campaign
    from cambrian.plugins.reporting.report import write_report
    from tests.conftest import toy_config

    cli = [sys.executable, "-m", "cambrian.cli"]
    for name, sandbox in (("plain", {}), ("unsafe", {"unsafe_no_isolation": True})):
        run = tmp_path / name
        Campaign.from_config(toy_config(sandbox=sandbox, budget={"max_nodes": 2}), run).run()
        first = subprocess.run([*cli, "show", str(run)], capture_output=True, text=True,
                               timeout=120).stdout.splitlines()[0]
        body = write_report(run).read_text().split("<body>", 1)[1]
        flagged = "UNISOLATED" in first, "UNISOLATED" in body.split("<h1>", 1)[0]
        assert flagged == ((True, True) if name == "unsafe" else (False, False))


# --- attention: the candidate's training process never holds evaluation data; its scoring
# process (which must run the mixer on them) leaves nothing behind -------------------------------

LOOT = """
import os
from pathlib import Path
if os.path.exists("probe.npz"):  # the training process: copy every file of the run it can read
    here = Path.cwd().resolve()
    loot, n = here / "loot", 0
    loot.mkdir(exist_ok=True)
    for base, dirs, files in os.walk("../../.."):  # the run directory (relative: a parent may be closed)
        if Path(base).resolve().is_relative_to(loot):
            continue
        for f in files:
            try:
                with open(os.path.join(base, f), "rb") as fh:
                    (loot / str(n)).write_bytes(fh.read(1 << 20))
                n += 1
            except OSError:
                pass
"""
MARK = "cambrian-persisted-7c1"
PERSIST = f"""
import os
from pathlib import Path
MARK = {MARK!r}
here = Path.cwd().resolve()
run = Path("../../..")  # the run directory (relative: a parent of it may be closed)
PLACES = [run, run / "cache", run / "evals", Path(".."), Path("../candidate"), Path("/tmp"),
          Path("/var/tmp"), Path("/dev/shm"), Path.home()]
if not os.path.exists("probe.npz"):  # the scoring process: try to leave a note for a later run
    for d in PLACES:
        try:
            (d / MARK).write_text("scored-before")
        except OSError:
            pass
else:  # a later training process: did an earlier scoring process leave anything?
    found = [str(d / MARK) for d in PLACES if (d / MARK).exists()]
    found += [str(p) for p in run.glob("evals/*/work/*/" + MARK)]
    (here / "found.txt").write_text("\\n".join(found))
"""


def evaluate_attention(run: Path, source: str, name: str, split: str = "hidden"):
    from tests.attention.conftest import TINY

    options = {**TINY, "tasks": {"lm": TINY["tasks"]["lm"]}, "weights": {"lm": 1.0}}
    job = EvalJob(node_id=name, run_dir=str(run), domain="attention", domain_options=options,
                  evaluator="attention", candidate=Candidate(kind="code", content=source),
                  limits={"timeout_s": 300}, split=split)
    work = run / "evals" / name / "work"
    work.mkdir(parents=True)
    return evaluate_here(job, work), work


@ROOT_ONLY
def test_attention_training_never_sees_the_hidden_split(open_tmp_path):
    import numpy as np

    from cambrian.plugins.domains.attention.domain import seed_source
    from cambrian.scaling.data import open_corpus
    from tests.attention.conftest import TINY

    honest = seed_source("softmax")
    first, _ = evaluate_attention(open_tmp_path, honest, "honest")  # a final evaluation before it
    out, work = evaluate_attention(open_tmp_path, honest + LOOT, "looter")
    assert first.status == out.status == NodeStatus.DONE, (first.error, out.error)
    loot = [f.read_bytes() for f in (work / "candidate" / "loot").iterdir()]
    assert len(loot) >= 4  # it did read files of the run (its own inputs: mixer, config, training data)
    hidden = open_corpus(TINY["corpus"], open_tmp_path / "cache").tokens("hidden")
    window = np.asarray(hidden[:32])  # the first hidden evaluation window (seq_len 32)
    needles = [window.astype(t).tobytes() for t in (np.uint8, np.uint16, np.int32, np.int64)]
    cache = [f.read_bytes() for f in (open_tmp_path / "cache").rglob("*") if f.is_file()]
    assert any(n in c for n in needles for c in cache)  # the needle is findable where it is kept
    assert not any(n in blob for n in needles for blob in loot)  # but not by the candidate
    assert not list(open_tmp_path.glob("evals/*/work/*/*_inputs.npz"))  # no inputs stay on disk
    assert not list(open_tmp_path.glob("evals/*/work/scoring*")) + list(open_tmp_path.glob("evals/*/work/prefix*"))


@ROOT_ONLY
def test_attention_scoring_process_can_persist_nothing_for_a_later_run(open_tmp_path):
    from cambrian.plugins.domains.attention.domain import seed_source

    source = seed_source("softmax") + PERSIST
    first, w1 = evaluate_attention(open_tmp_path, source, "first")
    second, w2 = evaluate_attention(open_tmp_path, source, "second")
    assert first.status == second.status == NodeStatus.DONE, (first.error, second.error)
    assert (w2 / "candidate" / "found.txt").read_text() == ""  # the later run found no note
    # the only place a scoring process could write is its own directory (its uid only), which
    # is removed when it ends
    assert list(open_tmp_path.rglob(MARK)) == []
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not (Path(d) / MARK).exists()


# --- attention: the scoring process can't look up what follows a prefix -----------------------
# A mixer that is causal while trained and probed; at scoring time its module patches the model's
# forward to answer every position t with the window's own next token, found in the window itself
# (a full pass) or, for a prefix, in the windows it has seen: a module-level cache of every full
# window, topped up by walking the garbage collector for token arrays of that length.
LOOKUP = '''

import gc as _gc

import numpy as _np
from cambrian.architectures.model import CambrianLM as _LM

_SEEN = []  # every full window this process has seen
_forward = _LM.forward


def _harvest(T):
    for o in _gc.get_objects():
        vals = o.values() if isinstance(o, dict) else (o if isinstance(o, (list, tuple)) else ())
        for v in list(vals):
            if isinstance(v, (_np.ndarray, torch.Tensor)) and v.ndim == 2 and v.shape[-1] == T \\
                    and str(v.dtype).split(".")[-1].startswith("int"):
                _SEEN.extend(torch.as_tensor(_np.asarray(v)).long())


def _matches(row):
    """[windows seen, len(row)]: whether each seen window starts with row[:t+1]."""
    seen = torch.stack(_SEEN)
    return torch.cumprod((seen[:, :len(row)] == row).long(), dim=1).bool(), seen


def _lookup(self, idx, targets=None, ignore_index=-100):
    out = _forward(self, idx, targets, ignore_index)
    if targets is not None or self.training:
        return out
    T = self.spec.max_seq_len
    if len(idx[0]) == T:
        _SEEN.extend(r.clone() for r in idx)
    out = out.clone()
    for b, row in enumerate(idx):
        if len(row) < T and not (_SEEN and _matches(row)[0][:, -1].any()):
            _harvest(T)  # a prefix of no window seen yet: look for windows in the process
        if not _SEEN:
            continue
        match, seen = _matches(row)
        unique = match.sum(0) == 1  # where the prefix names one window: answer with its next token
        if not unique[-1]:
            continue
        full = seen[int(match[:, -1].long().argmax())]
        ts = torch.nonzero(unique[:T - 1]).flatten()
        out[b, ts] = -30.0
        out[b, ts, full[ts + 1]] = 30.0
    return out


_LM.forward = _lookup
'''


def test_a_mixer_that_looks_up_the_continuation_of_a_prefix_is_invalid(open_tmp_path):
    """Before the scoring processes were split (full pass / prefix passes), this design answered
    both consistently and ranked with about 1/32 of an honest bits per byte; now the prefix pass
    runs where no full window ever was, the answers differ, and the node is invalid."""
    from cambrian.plugins.domains.attention.domain import seed_source

    out, _ = evaluate_attention(open_tmp_path, seed_source("softmax") + LOOKUP, "lookup", split="val")
    assert out.status == NodeStatus.INVALID, (out.status, out.metrics, out.error)
    assert "score" not in out.metrics and "lm_bpb" not in out.metrics


def test_the_scoring_processes_count_in_the_nodes_cost(open_tmp_path):
    """The training and both scoring runs are children of the evaluation worker: the CPU time the
    node is charged (measured around the worker by the fork server) includes all three."""
    import json

    from cambrian.execution.evaluation import finish_job, start_job
    from cambrian.execution.forkserver import ForkServer
    from cambrian.plugins.domains.attention.domain import seed_source
    from tests.attention.conftest import TINY

    options = {**TINY, "tasks": {"lm": TINY["tasks"]["lm"]}, "weights": {"lm": 1.0}}
    job = EvalJob(node_id="costed", run_dir=str(open_tmp_path), domain="attention", domain_options=options,
                  evaluator="attention", candidate=Candidate(kind="code", content=seed_source("softmax")),
                  limits={"timeout_s": 300})
    server = ForkServer(preload=["torch"])
    try:
        out = finish_job(job, start_job(job, server))
    finally:
        server.close()
    assert out.status == NodeStatus.DONE, out.error
    work = open_tmp_path / "evals" / "costed" / "work"
    nested = [json.loads((work / f"sandbox{s}.json").read_text())["cpu_s"] for s in ("", "_scoring", "_prefix")]
    assert all(c > 0 for c in nested)
    assert out.cost.cpu_s >= sum(nested)


# A full scoring pass that opens its directory to everyone and leaves the windows there for
# a while: a candidate of another node, running meanwhile as another uid, must not find them.
DUMP = """
import os, time
from pathlib import Path
if not os.path.exists("probe.npz") and any(Path(".").glob("*_inputs.npz")):
    import numpy as np
    if "x" in np.load("lm_inputs.npz").files:  # the full pass, not the prefixes
        os.chmod(".", 0o777)
        Path("dump.txt").write_text("every window")
        os.chmod("dump.txt", 0o666)
        time.sleep(8)
"""
FIND = """
import glob, os, sys
run = sys.argv[1]
found = glob.glob(os.path.join(run, "evals", "*", "work", "*", "dump.txt"))
try:
    listed = os.listdir(os.path.join(run, "evals", "dumper", "work"))
except OSError:
    listed = []
open("found.txt", "w").write(repr((found, listed)))
"""


@ROOT_ONLY
def test_a_running_scoring_process_can_not_be_found_by_another_node(open_tmp_path):
    import threading

    from cambrian.plugins.domains.attention.domain import seed_source

    result = {}
    worker = threading.Thread(target=lambda: result.update(
        out=evaluate_attention(open_tmp_path, seed_source("softmax") + DUMP, "dumper", split="val")[0]))
    worker.start()
    deadline = time.monotonic() + 240
    while not list(open_tmp_path.glob("evals/dumper/work/*/dump.txt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(open_tmp_path.glob("evals/dumper/work/*/dump.txt")), "the dump never appeared"
    probe = open_tmp_path / "evals" / "other" / "work"
    res = run_candidate([sys.executable, "-c", FIND, str(open_tmp_path)], probe, SandboxLimits(timeout_s=60))
    worker.join()
    assert res.returncode == 0, res.stderr_tail
    assert (probe / "found.txt").read_text() == repr(([], []))  # neither found nor listed
    assert result["out"].status == NodeStatus.DONE, result["out"].error


# Another evaluation's folder left open to everyone (a scoring directory with its windows): a
# candidate, as root's throw-away uid or, without root, as the campaign's own uid, must not list
# or read it; its own work directory still works.
SIBLING = """\
import json, sys
from pathlib import Path
from cambrian.core.config import SandboxLimits
from cambrian.execution import harness
run = Path(sys.argv[1])
code = ("import glob, json, os\\n"
        "try:\\n    listed = os.listdir(os.path.join(%(run)r, 'evals'))\\nexcept OSError:\\n    listed = None\\n"
        "try:\\n    read = open(%(secret)r).read()\\nexcept OSError:\\n    read = None\\n"
        "found = glob.glob(os.path.join(%(run)r, 'evals', '*', 'work', '*', '*.txt'))\\n"
        "try:\\n    open(os.path.join(%(run)r, 'evals', 'planted'), 'w').close(); planted = True\\n"
        "except OSError:\\n    planted = False\\n"
        "open('mine.txt', 'w').write('own work')\\n"
        "print(json.dumps({'listed': listed, 'read': read, 'found': found, 'planted': planted,\\n"
        "                  'mine': open('mine.txt').read()}))\\n"
        ) % {"run": str(run), "secret": sys.argv[2]}
try:
    res = harness.run_candidate([sys.executable, "-c", code], run / "evals" / "me" / "work" / "candidate",
                                SandboxLimits(timeout_s=60))
except harness.CandidateRefused:  # no box for a normal user on this machine
    print(json.dumps({"refused": True}))
    raise SystemExit(0)
print(json.dumps({"rc": res.returncode, "stderr": res.stderr_tail, "warnings": list(res.warnings),
                  "seen": json.loads(res.stdout_tail.strip().splitlines()[-1]) if res.returncode == 0 else None}))
"""


@pytest.mark.parametrize("who", ["root", "user"])
def test_a_candidate_sees_no_other_evaluations_folder(open_tmp_path, who):
    import json

    if os.geteuid() != 0 or not shutil.which("setpriv") or (who == "user" and not os.path.exists(SYSTEM_PYTHON)):
        pytest.skip("needs root and setpriv (and, as a normal user, a python any uid can run)")
    run = open_tmp_path
    sibling = run / "evals" / "other" / "work" / "scoring-0f3a9c"
    sibling.mkdir(parents=True)
    secret = sibling / "windows.txt"
    secret.write_text("every window")
    for p in (run / "evals", run / "evals" / "other", sibling.parent, sibling):
        p.chmod(0o777)
    secret.chmod(0o666)
    args = [SIBLING, str(run), str(secret)]
    if who == "root":
        from cambrian.execution import sandbox

        if not sandbox._lock_tmp_ok():
            pytest.skip("no mount namespace on this machine")
        done = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, timeout=120)
    else:  # the campaign's own uid, which owns the sibling's folders too: only the box keeps it out
        uid = 40000 + os.getpid() % 20000
        run.chmod(0o755)
        for p in [run, *run.rglob("*")]:
            os.chown(p, uid, uid)
        paths = [str(Path(__file__).parents[2])] + [p for p in sys.path if p.endswith("site-packages")]
        env = {"PATH": os.environ["PATH"], "HOME": str(run), "PYTHONPATH": os.pathsep.join(paths)}
        done = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", SYSTEM_PYTHON,
                               "-c", *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out.get("refused"):
        pytest.skip("no user-namespace box on this machine")
    assert out["rc"] == 0, out["stderr"]
    seen = out["seen"]
    assert seen["read"] is None and seen["found"] == []  # the file can't be read or found
    assert seen["listed"] == ["me"]  # the listing of evals/ lacks the other node
    assert seen["planted"] is False  # and the cover's top is not writable by the candidate
    assert seen["mine"] == "own work"
    assert (run / "evals" / "me" / "work" / "candidate" / "mine.txt").read_text() == "own work"  # on disk
    assert secret.read_text() == "every window"  # and the sibling's file is untouched
