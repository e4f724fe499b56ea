"""Decoding and SAE training steps with and without keep_freed_memory (glibc's thresholds).

Each measurement runs in a new process (the allocator's settings are per process), the two
settings alternating, ``--repeats`` times each: greedy decoding of a batch of the demo's
prompts (the demo's steering batch of 128 rows), and TopK SAE training steps at the demo's
size (896 x 3584, batch 1024, on random rows). Prints the median times, the ratio and the
minor page faults; the generated token ids must be identical.

    python benchmarks/bench_allocator.py [--model M] [--rows 128] [--tokens 24] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

_SETTINGS = {"kept": {}, "system": {"REFUSAL_ATLAS_MALLOC": "system"}}


def _decode(args: argparse.Namespace) -> dict:
    from refusal_atlas.chat import ChatFormatter
    from refusal_atlas.data import load_suite
    from refusal_atlas.generation import greedy_generate
    from refusal_atlas.models import load_model

    lm = load_model(args.model)
    fmt = ChatFormatter(lm.tokenizer)
    texts = [p.text for p in load_suite("demo").all_prompts()][::7][:args.rows]
    batch = fmt.batch(texts)
    greedy_generate(lm.model, batch, max_new_tokens=2, stop_ids=[])  # warm-up
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    ids = greedy_generate(lm.model, batch, max_new_tokens=args.tokens, stop_ids=[])
    return {"seconds": time.perf_counter() - start,
            "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
            "ids": [list(map(int, x)) for x in ids]}


def _sae_steps(args: argparse.Namespace) -> dict:
    import torch

    from refusal_atlas.sae.train import SAETrainConfig, train_sae

    rows = torch.randn(40_000, 896, generator=torch.Generator().manual_seed(0))
    config = SAETrainConfig(expansion=4, k=32, steps=args.sae_steps, batch_size=1024)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    _, report = train_sae(rows, config, hook_layer=0, model_name="bench")
    return {"seconds": report.seconds,
            "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
            "ids": []}


def _child(args: argparse.Namespace) -> None:
    import refusal_atlas as ra

    applied = ra.keep_freed_memory()
    result = (_decode if args.child == "decode" else _sae_steps)(args)
    print(json.dumps({"applied": applied, **result}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--rows", type=int, default=128)
    p.add_argument("--tokens", type=int, default=24)
    p.add_argument("--sae-steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", choices=["decode", "sae"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args)
    from refusal_atlas.allocator import is_glibc

    if not is_glibc():
        sys.exit("keep_freed_memory changes glibc's settings only; this C library is not glibc")

    from bench_demo import cpu_name

    print(f"CPU: {cpu_name()}", flush=True)
    for work in ("decode", "sae"):
        seen: dict[str, list[dict]] = {name: [] for name in _SETTINGS}
        for _ in range(args.repeats):
            for name, env in _SETTINGS.items():
                out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", work],
                                     env={**os.environ, **env}, capture_output=True, text=True,
                                     check=True).stdout
                seen[name].append(json.loads(out.strip().splitlines()[-1]))
        assert all(r["applied"] for r in seen["kept"]) and \
            not any(r["applied"] for r in seen["system"])
        same = len({json.dumps(r["ids"]) for rs in seen.values() for r in rs}) == 1
        median = {name: statistics.median(r["seconds"] for r in rs) for name, rs in seen.items()}
        faults = {name: statistics.median(r["faults"] for r in rs) for name, rs in seen.items()}
        what = (f"decoding {args.rows} rows x {args.tokens} tokens" if work == "decode"
                else f"{args.sae_steps} TopK SAE steps (896 x 3584, batch 1024)")
        print(f"{what}: system {median['system']:.2f} s ({faults['system']:,.0f} faults), "
              f"kept {median['kept']:.2f} s ({faults['kept']:,.0f} faults): "
              f"{median['system'] / median['kept']:.2f}x"
              + (f"; outputs identical: {same}" if work == "decode" else ""), flush=True)


if __name__ == "__main__":
    main()
