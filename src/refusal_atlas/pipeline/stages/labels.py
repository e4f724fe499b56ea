"""``labels``: generate the base model's responses to every prompt and judge them."""

from __future__ import annotations

from pathlib import Path

from ...artifacts import write_json
from ...labels import generate_responses, judge_responses, label_counts
from ..inputs import LABELS_FILE, RESPONSES_FILE
from ..stage import Stage, model_settings


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.labels
    prompts = ctx.suite.all_prompts()
    responses = generate_responses(ctx.lm, ctx.formatter, prompts, out_dir / RESPONSES_FILE,
                                   max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                                   executor=ctx.executor)
    judge = ctx.judge(cfg.judge, cfg.judge_options)
    records = judge_responses(judge, prompts, responses, out_dir / LABELS_FILE)
    counts = label_counts(ctx.suite, records)
    summary = {"judge": judge.name, "approximate_judge": bool(getattr(judge, "approximate", False)),
               "max_new_tokens": cfg.max_new_tokens, "n_prompts": len(prompts),
               "judge_parse_errors": sum(1 for r in records if r.refused is None), **counts}
    write_json(out_dir / "counts.json", summary)
    return summary


def check(ctx) -> None:
    """The judge can be built with its options (a judge loads its own model lazily)."""
    ctx.judge(ctx.config.labels.judge, ctx.config.labels.judge_options)


def settings(c) -> dict:
    return {"model": model_settings(c), "judge": c.labels.judge,
            "judge_options": c.labels.judge_options, "max_new_tokens": c.labels.max_new_tokens}


STAGE = Stage("labels", ("prompts",), settings, run,
              "generate base responses and judge them (HR/HC/BR/BC)", check=check,
              outputs=("responses.jsonl", "labels.jsonl", "counts.json"))
