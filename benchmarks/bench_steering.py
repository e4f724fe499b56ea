"""Speed of steering sweeps: three ratios, measured in one run on one machine.

1. hook overhead  = throughput of per-row steered batched generation / unsteered generation,
                    same prompts, same batch, fixed length (every row makes --new-tokens).
2. grid batching  = time to run the same conditions one at a time (one engine run per
                    condition) / one grid-batched engine run of baseline + D directions x A
                    alphas (natural stopping, substring judge inline, same batch size).
                    Reported with and without the alpha = 0 -> baseline dedupe.
3. KV cache       = time of a loop that re-runs the full forward pass for every new token
                    (no KV cache; how the paper's code generates) / our generation, at
                    --nocache-tokens new tokens (fixed length, same steered rows).

Usage:  python benchmarks/bench_steering.py [--threads 1] [--batch-size 16] [--n-prompts 16]

Prompts are real (the ``paper`` suite when the shared data is there, else ``demo``);
directions are harmful-minus-harmless difference-in-means vectors computed here from a few
dozen prompts per split. Timings on a shared CPU are noisy: compare ratios within one run,
and note the load average printed at the start and end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("REFUSAL_ATLAS_NO_PROGRESS", "1")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--data", default=None, help="suite (default: paper if available, else demo)")
    p.add_argument("--batch-size", type=int, default=128,
                   help="rows per batch (default: the demo preset's steering.batch_size)")
    p.add_argument("--unit-batches", type=int, default=16,
                   help="batches per work unit (default: the pipeline's local executor.unit_batches)")
    p.add_argument("--n-prompts", type=int, default=12,
                   help="prompts per condition in the grid comparison")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--directions", type=int, default=2, help="number of directions (D)")
    p.add_argument("--alphas", default=None,
                   help="comma-separated alphas incl. 0 (default: 0 plus the paper's 30 and 100 "
                        "rescaled by the projection gap)")
    p.add_argument("--layer", type=int, default=None, help="default: n_layers // 2")
    p.add_argument("--repeats", type=int, default=2, help="repeats of the overhead timing")
    p.add_argument("--grid-repeats", type=int, default=1,
                   help="repeats of the grid comparison (alternating order, best taken)")
    p.add_argument("--nocache-prompts", type=int, default=4)
    p.add_argument("--nocache-tokens", type=int, default=64)
    p.add_argument("--skip-nocache", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    return p.parse_args()


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


class _Time:
    """Wall-clock and process CPU seconds. On a shared CPU, CPU time (with one torch thread)
    is far less sensitive to other jobs than wall time, so ratios use both."""

    def __init__(self, wall: float = 0.0, cpu: float = 0.0):
        self.wall, self.cpu = wall, cpu

    def __add__(self, other: "_Time") -> "_Time":
        return _Time(self.wall + other.wall, self.cpu + other.cpu)

    def __str__(self) -> str:
        return f"{self.wall:.1f}s wall / {self.cpu:.1f}s cpu"


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return _Time(time.perf_counter() - w, time.process_time() - c), out


def _ratio(a: "_Time", b: "_Time") -> str:
    """a / b, wall and cpu."""
    return f"{a.wall / b.wall:.2f}x wall, {a.cpu / b.cpu:.2f}x cpu"


def main() -> int:
    args = _args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from refusal_atlas import sweeps
    from refusal_atlas.activations import extract_activations
    from refusal_atlas.chat import ChatFormatter, pad_left
    from refusal_atlas.data import load_suite
    from refusal_atlas.directions import compute_direction
    from refusal_atlas.generation import greedy_generate
    from refusal_atlas.judges import get_judge
    from refusal_atlas.models import load_model
    from refusal_atlas.paths import shared_data_dir

    print(f"load average at start: {_load()}")
    suite_name = args.data or ("paper" if shared_data_dir() is not None else "demo")
    suite = load_suite(suite_name)
    lm = load_model(args.model, dtype=args.dtype)
    fmt = ChatFormatter(lm.tokenizer)
    layer = args.layer if args.layer is not None else lm.n_layers // 2
    print(f"model {lm.name} ({str(lm.dtype).replace('torch.', '')}, {lm.n_layers} layers), "
          f"suite {suite_name}, layer {layer}, torch threads {torch.get_num_threads()}")

    # ---- directions: harmful minus harmless at (layer, -2) from a few dozen prompts per split
    splits = sorted(suite.splits, key=lambda s: -len(suite.splits[s]))[:args.directions]
    bank, gaps = {}, []
    t_dir = time.perf_counter()
    for split in splits:
        harmful = [p.text for p in suite.splits[split][:24]]
        benign = [p.text for p in suite.benign[suite.benign_for[split]][:24]]
        acts = extract_activations(lm, fmt, harmful + benign, [layer], [-2], batch_size=16)[:, 0, 0]
        d = compute_direction(split, acts[:len(harmful)], acts[len(harmful):], layer=layer,
                              position=-2, model=lm.name)
        bank[split] = sweeps.LayerVector(d.vector, layer)
        gaps.append(d.projection_gap)
    gap = sum(gaps) / len(gaps)
    if args.alphas:
        alphas = sweeps.parse_alphas(args.alphas)
    else:
        alphas = [0.0] + [sweeps.round_sig(a * gap / 119.2) for a in (30.0, 100.0)]
    print(f"directions {splits} in {time.perf_counter() - t_dir:.0f}s; mean projection gap "
          f"{gap:.2f}; alphas {alphas}")

    # ---- prompts: alternate harmful and benign, real text
    harmful = [p for s in splits for p in suite.splits[s][24:]]
    benign = [p for p in suite.benign[suite.benign_for[splits[0]]][24:]]
    mixed = [x for pair in zip(harmful, benign) for x in pair]
    n_needed = max(args.n_prompts, args.batch_size, args.nocache_prompts)
    chosen = mixed[:n_needed]
    prompts = [sweeps.SweepPrompt(p.id, p.text, p.harmful, None, p.split) for p in chosen]
    steered = [c for c in sweeps.steering_grid(splits, alphas, baseline=False) if c.alpha != 0]

    # ---- 1. hook overhead at a fixed length
    texts = [p.text for p in prompts[:args.batch_size]]
    batch = pad_left([fmt.encode(t) for t in texts], fmt.pad_id)
    rows = [steered[i % len(steered)] for i in range(len(texts))]
    ablate_rows = [sweeps.Condition("ablate", splits[i % len(splits)]) for i in range(len(texts))]

    def run(conds):
        if conds is None:
            return greedy_generate(lm.model, batch, max_new_tokens=args.new_tokens, stop_ids=[])
        with sweeps.row_interventions(lm.model, conds, bank):
            return greedy_generate(lm.model, batch, max_new_tokens=args.new_tokens, stop_ids=[])

    times = {"unsteered": [], "steered": [], "ablated": []}
    run(None)  # warm-up
    for _ in range(args.repeats):
        for name, conds in (("unsteered", None), ("steered", rows), ("ablated", ablate_rows)):
            times[name].append(_timed(lambda: run(conds))[0])
    best = {k: _Time(min(t.wall for t in v), min(t.cpu for t in v)) for k, v in times.items()}
    n_tok = len(texts) * args.new_tokens
    print(f"\n[1] hook overhead (batch {len(texts)}, {args.new_tokens} tokens/row, best of "
          f"{args.repeats}, wall-clock tokens/s): unsteered {n_tok / best['unsteered'].wall:.1f}, "
          f"per-row steered {n_tok / best['steered'].wall:.1f}, per-row ablated "
          f"{n_tok / best['ablated'].wall:.1f}")
    print(f"    steered / unsteered throughput = {_ratio(best['unsteered'], best['steered'])}   "
          f"(ablated / unsteered = {_ratio(best['unsteered'], best['ablated'])})")

    # ---- 2. grid batching vs one condition at a time (same engine, same batch size)
    grid_conditions = sweeps.steering_grid(splits, alphas)
    grid_prompts = prompts[:args.n_prompts]
    judge = get_judge("substring")
    tmp = Path(tempfile.mkdtemp(prefix="bench_steering_"))

    def sweep(conds, folder, dedupe=True):
        return sweeps.run_sweep(lm, fmt, grid_prompts, conds, bank, tmp / folder,
                                max_new_tokens=args.new_tokens, batch_size=args.batch_size,
                                unit_batches=args.unit_batches, judge=judge, dedupe=dedupe)

    def singles_run(tag):
        total, rows_out = _Time(), []
        for i, c in enumerate(grid_conditions):
            t, res = _timed(lambda: sweep([c], f"{tag}_single{i}"))
            total = total + t
            rows_out.extend(res.rows)
        return total, rows_out

    variants = {
        "grid": lambda tag: _timed(lambda: sweep(grid_conditions, f"{tag}_grid")),
        "single": singles_run,
        "nodedupe": lambda tag: _timed(lambda: sweep(grid_conditions, f"{tag}_nodedupe",
                                                     dedupe=False)),
    }
    measured: dict[str, list] = {k: [] for k in variants}
    outputs: dict[str, object] = {}
    for rep in range(args.grid_repeats):  # alternate the order: load drift hits all variants
        order = list(variants) if rep % 2 == 0 else list(reversed(variants))
        for name in order:
            t, out = variants[name](f"r{rep}")
            measured[name].append(t)
            outputs[name] = out
    best2 = {k: _Time(min(t.wall for t in v), min(t.cpu for t in v)) for k, v in measured.items()}
    t_grid, t_single, t_nodedupe = best2["grid"], best2["single"], best2["nodedupe"]
    grid, singles, nodedupe = outputs["grid"], outputs["single"], outputs["nodedupe"]
    alone = {(r["condition"], r["prompt_id"]): r["response"] for r in singles}
    same = {"baseline": [0, 0], "steered": [0, 0]}
    for r in grid.rows:
        kind = "baseline" if r["generated_as"] == "baseline" else "steered"
        same[kind][0] += r["response"] == alone[(r["condition"], r["prompt_id"])]
        same[kind][1] += 1
    tokens = grid.stats["new_tokens"]
    print(f"\n[2] grid (best of {args.grid_repeats}): {len(grid_conditions)} conditions "
          f"(baseline + {len(splits)} directions x "
          f"{len(alphas)} alphas) x {len(grid_prompts)} prompts, batch {args.batch_size}, up to "
          f"{args.new_tokens} new tokens")
    print(f"    one at a time {t_single} | grid {t_grid} "
          f"({grid.stats['n_generated_rows_planned']} rows generated, {tokens / t_grid.wall:.1f} "
          f"tok/s) | grid without alpha=0 dedupe {t_nodedupe} "
          f"({nodedupe.stats['n_generated_rows_planned']} rows)")
    print(f"    speed-up grid vs one at a time = {_ratio(t_single, t_grid)}  (without dedupe "
          f"{_ratio(t_single, t_nodedupe)})")
    print(f"    responses identical to one-at-a-time: baseline/alpha=0 rows "
          f"{same['baseline'][0]}/{same['baseline'][1]}, steered rows "
          f"{same['steered'][0]}/{same['steered'][1]}"
          + ("" if all(a == b for a, b in same.values()) else
             " (different batch composition changes bf16 rounding; fp32 gives identical rows)"))

    # ---- 3. KV cache vs re-running the full forward for every token
    if not args.skip_nocache:
        from refusal_atlas.chat import position_ids_from_mask

        nc_texts = [p.text for p in prompts[:args.nocache_prompts]]
        nc_batch = pad_left([fmt.encode(t) for t in nc_texts], fmt.pad_id)
        nc_rows = [steered[i % len(steered)] for i in range(len(nc_texts))]

        def ours():
            with sweeps.row_interventions(lm.model, nc_rows, bank):
                return greedy_generate(lm.model, nc_batch, max_new_tokens=args.nocache_tokens,
                                       stop_ids=[])

        @torch.no_grad()
        def no_cache():
            ids, mask = nc_batch.input_ids, nc_batch.attention_mask
            out = [[] for _ in nc_texts]
            with sweeps.row_interventions(lm.model, nc_rows, bank):
                for _ in range(args.nocache_tokens):
                    logits = lm.model(input_ids=ids, attention_mask=mask,
                                      position_ids=position_ids_from_mask(mask),
                                      use_cache=False).logits
                    tok = logits[:, -1].argmax(-1)
                    for r, t in enumerate(tok.tolist()):
                        out[r].append(t)
                    ids = torch.cat([ids, tok[:, None]], 1)
                    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            return out

        t_ours, a = _timed(ours)
        t_nc, b = _timed(no_cache)
        match = sum(x == y for x, y in zip(a, b))
        n = len(nc_texts) * args.nocache_tokens
        print(f"\n[3] KV cache ({len(nc_texts)} steered rows, {args.nocache_tokens} new tokens "
              f"each): ours {t_ours} ({n / t_ours.wall:.1f} tok/s) | full forward per token "
              f"{t_nc} ({n / t_nc.wall:.1f} tok/s)")
        print(f"    speed-up = {_ratio(t_nc, t_ours)}; identical rows {match}/{len(nc_texts)}")
    print(f"\nload average at end: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
