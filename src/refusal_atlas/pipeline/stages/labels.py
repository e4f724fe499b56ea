"""``labels``: generate the base model's responses and judge them (HR/HC/BR/BC).

Lazy by default: in rounds, only the prompts the training pools and the controlled test set
need (:func:`~refusal_atlas.labels.next_to_label`); ``labels.label_all`` labels every
prompt. Either way the responses and verdicts are appended to resumable stores, so an
interrupted run, or a larger demand later (a larger ``pools.test_per_group``), labels only
the prompts still missing.

Generating reads every prompt's activations at the layer scan's layers on the way (the
prefill computes them anyway) into the activation cache, so the layer scan and the
activations stage find them there instead of running the prompts again."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ...artifacts import read_jsonl, write_json
from ...labels import (
    LabelDemand,
    LabelRecord,
    generate_responses,
    judge_responses,
    label_counts,
    next_to_label,
)
from ..inputs import LABELS_FILE, RESPONSES_FILE
from ..stage import Stage, model_settings


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.labels
    suite = ctx.suite
    judge = ctx.judge(cfg.judge, cfg.judge_options)
    scan = ctx.config.layer_scan
    layers = list(range(0, ctx.lm.n_layers + 1, scan.stride))
    stop_phrases = getattr(judge, "settling_phrases", None) if cfg.stop_at_verdict else None

    def label(prompts, description: str) -> list[LabelRecord]:
        responses = generate_responses(
            ctx.lm, ctx.formatter, prompts, out_dir / RESPONSES_FILE,
            max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
            description=description, executor=ctx.executor,
            activation_cache=ctx.activation_cache,
            capture=(layers, [ctx.config.activations.position]),
            unit_batches=ctx.config.executor.batches_per_unit(), stop_phrases=stop_phrases)
        return judge_responses(judge, prompts, responses, out_dir / LABELS_FILE)

    rounds = 0
    if cfg.label_all:
        records = {r.prompt_id: r for r in label(suite.all_prompts(), "label: generate")}
    else:
        # what a resumed (or re-demanded) run labelled before counts; a round's prompts
        # are generated and judged before the next round is sized from their labels
        records = {row["prompt_id"]: LabelRecord(**row)
                   for row in read_jsonl(out_dir / LABELS_FILE) if row.get("judge") == judge.name}
        demand = label_demand(ctx.config)
        while True:
            todo = next_to_label(suite, {i: r.label for i, r in records.items()}, demand,
                                 batch_size=cfg.batch_size)
            if not todo:
                break
            rounds += 1
            records.update((r.prompt_id, r) for r in
                           label(todo, f"label: generate (round {rounds}, lazy)"))
    ordered = [records[p.id] for p in suite.all_prompts() if p.id in records]
    counts = label_counts(suite, ordered)
    summary = {"judge": judge.name, "approximate_judge": bool(getattr(judge, "approximate", False)),
               "max_new_tokens": cfg.max_new_tokens, "label_all": cfg.label_all,
               "stopped_at_verdict": bool(stop_phrases),
               "n_prompts": len(suite.all_prompts()), "n_labelled": len(ordered),
               "n_not_labelled": len(suite.all_prompts()) - len(ordered),
               **({} if cfg.label_all else {"rounds": rounds}),
               "judge_parse_errors": sum(1 for r in ordered if r.refused is None), **counts}
    write_json(out_dir / "counts.json", summary)
    return summary


def label_demand(c) -> LabelDemand:
    """What lazy labelling must label: the pools' and the test set's needs."""
    p = c.pools
    return LabelDemand(n_hr=p.n_hr, n_bc=p.n_bc, test_per_group=p.test_per_group, seed=p.seed,
                       min_pool=p.min_pool)


def check(ctx) -> None:
    """The judge can be built with its options (a judge loads its own model lazily)."""
    ctx.judge(ctx.config.labels.judge, ctx.config.labels.judge_options)


def keeps(c) -> dict:
    """What the stores (responses, verdicts) depend on: another demand keeps them."""
    # Only asking for full responses counts: stores cut at the verdict must not serve it,
    # while full responses (any store from before the setting existed) serve either.
    return {"model": model_settings(c), "judge": c.labels.judge,
            "judge_options": c.labels.judge_options, "max_new_tokens": c.labels.max_new_tokens,
            **({} if c.labels.stop_at_verdict else {"full_responses": True})}


def settings(c) -> dict:
    # Lazy labelling labels what the pools and the test set need, so their sizes and seed
    # decide which prompts get labels; with label_all they do not matter (and the settings
    # are the stores' alone, as before lazy labelling existed). A changed demand re-runs
    # labels, which keeps its stores (`keeps`) and labels only the prompts still missing.
    if c.labels.label_all:
        return keeps(c)
    return {**keeps(c), "demand": asdict(label_demand(c))}


STAGE = Stage("labels", ("prompts",), settings, run,
              "generate base responses and judge them (HR/HC/BR/BC)", check=check,
              keeps=keeps, outputs=("responses.jsonl", "labels.jsonl", "counts.json"))
