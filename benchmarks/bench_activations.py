"""Layer-L activation extraction vs a full forward pass with output_hidden_states=True.

Prints, measured in one run on the same prompts and batches, the time our extraction
(which stops after the layer it needs) takes relative to a full forward pass, next to
L / n_layers, the fraction of the blocks it has to run. Run on the default model:

    python benchmarks/bench_activations.py [--model M] [--layer L] [--n-prompts N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from refusal_atlas.chat import ChatFormatter, pad_left
from refusal_atlas.generation import length_sorted_batches
from refusal_atlas.hooks import run_capture
from refusal_atlas.models import DEFAULT_MODEL, load_model


def _prompts(n: int) -> list[str]:
    from refusal_atlas.data import load_suite

    try:
        suite = load_suite("paper")
    except Exception:  # noqa: BLE001 - no shared data here: the built-in prompts will do
        suite = load_suite("demo")
    return [p.text for p in suite.all_prompts()][:n]


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--layer", type=int, default=None, help="default: n_layers // 2")
    parser.add_argument("--n-prompts", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    lm = load_model(args.model, dtype=args.dtype)
    layer = args.layer if args.layer is not None else lm.n_layers // 2
    fmt = ChatFormatter(lm.tokenizer)
    encoded = [fmt.encode(p) for p in _prompts(args.n_prompts)]
    batches = [pad_left([encoded[i] for i in idx], fmt.pad_id)
               for idx in length_sorted_batches([len(e) for e in encoded], args.batch_size)]

    def ours():
        for b in batches:
            run_capture(lm.model, b.input_ids, b.attention_mask, [layer], [-2])

    def full_forward():
        with torch.no_grad():
            for b in batches:
                lm.model(input_ids=b.input_ids, attention_mask=b.attention_mask,
                         position_ids=b.position_ids, output_hidden_states=True, use_cache=False)

    def full_body():  # every block but no LM head: the fairer comparison for L / n_layers
        with torch.no_grad():
            for b in batches:
                lm.model.model(input_ids=b.input_ids, attention_mask=b.attention_mask,
                               position_ids=b.position_ids, output_hidden_states=True,
                               use_cache=False)

    t_ours = _time(ours, args.repeats)
    t_full = _time(full_forward, args.repeats)
    t_body = _time(full_body, args.repeats)
    n_tokens = sum(len(e) for e in encoded)
    print(f"model {lm.name} ({lm.dtype}), {len(encoded)} prompts, {n_tokens} tokens, "
          f"batch {args.batch_size}, layer {layer} of {lm.n_layers}")
    print(f"extract layer {layer} (stops after it):      {t_ours:7.3f} s")
    print(f"full forward, output_hidden_states=True:  {t_full:7.3f} s")
    print(f"all blocks, no LM head, hidden states:    {t_body:7.3f} s")
    print(f"ratio ours / full forward:               {t_ours / t_full:7.3f}")
    print(f"ratio ours / all blocks (no LM head):    {t_ours / t_body:7.3f}")
    print(f"L / n_layers:                            {layer / lm.n_layers:7.3f}")


if __name__ == "__main__":
    main()
