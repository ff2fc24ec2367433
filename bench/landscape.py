"""What beats a hand-built reference at the default compose proxy: chosen designs, trained directly.

Trains each named design (a hand-built reference by name, or a layer pattern) with the default
campaign's domain options (cambrian/configs/default.yaml) through the compose evaluator's one
train-and-score path, under the given seeds and split, and compares each with the reference
``--against`` by the one verdict statistic (cambrian.scaling.verdict: margin against the sum of
the seed sds, Welch p). No search: it maps the ground the search walks, to tell whether designs
that beat the reference exist at the proxy, and whether they beat it by shape or by size.

    .venv/bin/python bench/landscape.py mix8=m,m2,att,sw,m,sw,m2,sw deep=m2,sw,m2,sw,att,sw,m2,sw,m2,sw \\
        --split val --seeds 0 1 [--against nemotron] [--workers 2] [--primitives attention,...,conv]

Short names in patterns: m = mamba, m2 = mamba2, att = attention, sw = swiglu (others as the
primitive's name); a layer's options follow as `show` writes them, e.g. the Nemotron-style
reference with its first Mamba-2 twice as wide (quote it for the shell):

    .venv/bin/python bench/landscape.py 'wide=m2(expand=4),sw,m2,sw,att(n_heads=2),sw,m2,sw' --split val --seeds 1000 1001 1002

The hidden split with seeds 1000-1004 is what the campaign's hidden phase uses.
A design given as ``name=@RUN_DIR`` is that campaign's best find as stored (its options too),
e.g. to score it on val under the hidden phase's fresh seeds (did its val lead in the search
hold on seeds the search never saw?):

    .venv/bin/python bench/landscape.py s0=@runs/demo s1=@runs/demo-s1 --split val --seeds 1000 1001 1002 1003 1004
"""

from __future__ import annotations

import argparse
import re
import tempfile
from multiprocessing import Pool
from pathlib import Path

import yaml

import cambrian
from cambrian.architectures import ArchSpec, count
from cambrian.campaign.engine import Campaign
from cambrian.campaign.standings import standings
from cambrian.core.errors import CambrianError
from cambrian.plugins.domains.compose.domain import ComposeDomain, settings
from cambrian.plugins.domains.compose.evaluator import run_proxy
from cambrian.scaling.verdict import Row, compare

SHORT = {"m": "mamba", "m2": "mamba2", "att": "attention", "sw": "swiglu"}
OPTIONS = yaml.safe_load((Path(cambrian.__file__).parent / "configs" / "default.yaml").read_text())["domain"]["options"]


def best_find(run_dir: str) -> dict:
    """The spec of a campaign's best find (the first row of its leaderboard), as the search trained it."""
    campaign = Campaign.resume(Path(run_dir), lock=False)
    ranked = standings(campaign.open_store().nodes(phase="search"), campaign.objective)
    if not ranked:
        raise CambrianError(f"{run_dir}: the campaign has no finished design yet")
    return ranked[0].node.candidate.content


def content(design: str, options: dict = OPTIONS) -> dict:
    """A baseline's spec by name, a campaign's best find (``@RUN_DIR``), else the pattern's,
    at the default proxy dims."""
    if design.startswith("@"):
        return best_find(design[1:])
    domain = ComposeDomain(**options)
    refs = domain.baselines()
    if design in refs:
        return refs[design].content
    return domain.spec([layer(x) for x in design.split(",")]).content


def layer(text: str) -> dict:
    """One layer of a pattern: a (short) name, with options as `show` writes them: m2(expand=4),
    att(n_heads=2 window=16)."""
    match = re.fullmatch(r"\s*([\w-]+)\s*(?:\((.*)\))?\s*", text)
    if not match:
        raise ValueError(f"layer {text!r}: write a primitive's name, with options as name(key=value ...)")
    name, opts = match.groups()
    options = {}
    for item in (opts or "").split():
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"layer {text!r}: option {item!r} is not key=value")
        options[key] = None if value == "None" else yaml.safe_load(value)
    return {"primitive": SHORT.get(name, name), "options": options}


def job(args: tuple[str, dict, dict, str, int]) -> tuple[str, int, float, float]:
    name, spec, options, split, seed = args
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "node" / "work"
        work.mkdir(parents=True)
        metrics, _ = run_proxy(spec, settings(options), split=split, seed=seed, workdir=work, run_dir=Path(tmp),
                               threads=1, save_model=False)
    return name, seed, metrics["bpb"], float(count(ArchSpec.from_dict(spec)).params)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("designs", nargs="*", help="name=pattern, or a baseline's name (llama, composer, nemotron, jamba)")
    ap.add_argument("--split", default="val", choices=["val", "hidden"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--against", default="nemotron", help="the reference each design is compared with")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--primitives", help="comma-separated primitives the designs may use (default: the "
                    "default campaign's family), e.g. attention,mamba,mamba2,swiglu,mlp,conv")
    args = ap.parse_args()
    options = {**OPTIONS, "primitives": args.primitives.split(",")} if args.primitives else OPTIONS
    designs = {args.against: args.against}
    for d in args.designs:
        name, _, pattern = d.partition("=")
        designs[name] = pattern or name
    try:
        specs = {n: content(p, options) for n, p in designs.items()}  # every design checked before any trains
    except (CambrianError, ValueError) as exc:  # a wrong pattern or run directory: one line, exit 2
        ap.error(str(exc))
    jobs = [(n, specs[n], options, args.split, s) for s in args.seeds for n in designs]
    values: dict[str, list[float]] = {n: [] for n in designs}
    params: dict[str, float] = {}
    with Pool(args.workers) as pool:
        for name, seed, bpb, n_params in pool.imap_unordered(job, jobs):
            values[name].append(bpb)
            params[name] = n_params
            print(f"  {name} seed {seed}: {bpb:.4f}", flush=True)
    base = Row(name=args.against, values=values[args.against], params=params[args.against])
    print(f"\n{args.split} bpb, seeds {args.seeds}, against {args.against}:")
    print(f"{'design':10} {'params':>9} {'mean':>7} {'sd':>7} {'vs ref':>7} {'margin':>8} {'spread':>7} {'p':>7}  pattern")
    for name, pattern in designs.items():
        row = Row(name=name, values=values[name], params=params[name])
        c = compare(row, base)
        p = "n/a" if c.welch_p is None else f"{c.welch_p:.3g}"
        print(f"{name:10} {params[name] / base.params:>8.2f}x {row.mean:>7.4f} {row.sd or 0:>7.4f} "
              f"{100 * c.margin / base.mean:>+6.2f}% {c.margin:>+8.4f} {c.spread:>7.4f} {p:>7}  {pattern}")


if __name__ == "__main__":
    main()
