"""The one runner every sweep stage shares (direction steering, ablation, SAE latents).

A sweep stage builds its vectors and conditions; this module supplies the prompts (the
controlled test set or a labelled file), the judge, the sweep engine, ``conditions.json``,
``metrics.json`` with the trade-off gap's uncertainty, and the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ...artifacts import write_json
from ...errors import UserError
from ...export import read_extra_directions
from ...metrics import compact_summary
from ...plots.sweeps import plot_ablation, plot_dose_response, plot_tradeoff
from ...sweeps import (
    ResultsStore,
    controlled_test_prompts,
    file_prompts,
    run_sweep,
    select_directions,
    sweep_metrics,
)
from ..inputs import load_label_records, load_test_set, run_directions
from ..stage import file_setting


def sweep_prompts(ctx) -> list:
    """The prompts every sweep of a run uses: the controlled test set, or a labelled file."""
    setting = ctx.config.steering.prompts
    if setting == "test_set":
        return controlled_test_prompts(ctx.suite, load_test_set(ctx.stage_dir("test_set")))
    labels = {r.prompt_id: r.label for r in load_label_records(ctx.stage_dir("labels"))}
    return file_prompts(setting, ctx.suite, labels)


def prompts_setting(value: str) -> dict:
    """Fingerprint input for ``steering.prompts``: a prompt file counts by its content."""
    if value == "test_set":
        return {"prompts": value}
    return {"prompts": value, "sha256": file_setting(value)}


def check_sweep_inputs(ctx) -> None:
    """A sweep's inputs before it runs: the prompt file exists and parses (fully, once the
    run's suite exists), and the chosen directions exist in a finished directions stage."""
    ctx.judge(ctx.config.steering.judge, ctx.config.steering.judge_options)  # builds, or one line
    ctx.executor  # noqa: B018 - built now: Ray missing is one line before anything runs
    setting = ctx.config.steering.prompts
    if setting != "test_set":
        if not Path(setting).expanduser().is_file():
            raise UserError(f"steering.prompts: prompt file not found: {setting}")
        if ctx.run.done_marker("prompts") and ctx.run.done_marker("labels"):
            sweep_prompts(ctx)
    if ctx.run.done_marker("directions"):
        chosen_directions(ctx)


def chosen_directions(ctx) -> dict[str, Any]:
    """The run's directions and ``steering.extra_directions``, narrowed to
    ``steering.directions``."""
    own = run_directions(ctx)
    width = next(iter(own.values())).vector.numel() if own else None
    extra = read_extra_directions(ctx.config.steering.extra_directions, taken=list(own),
                                  d_model=width)
    return select_directions({**own, **extra}, ctx.config.steering.directions)


def sweep_settings(steering) -> dict:
    """Fingerprint input for a direction sweep's prompts and ``extra_directions`` (each
    file by its content; left out when none are set, so older runs stay done)."""
    extra = steering.extra_directions
    return {**prompts_setting(steering.prompts),
            **({"extra_directions": [[p, file_setting(p)] for p in extra]} if extra else {})}


def shared_baseline(ctx, out_dir: Path, prompts: Sequence) -> list[dict]:
    """The steering stage's baseline rows, for the run's other sweeps: one baseline,
    generated once, for every comparison of the run.

    Only from a steering folder that is current (its fingerprint matches this config and
    its upstream completions, so the same model, prompts and ``max_new_tokens``) and whose
    rows hold exactly these prompts' texts; otherwise none, and the sweep generates its own.
    """
    from .steering import STAGE as STEERING  # steering.py imports this module

    source = ctx.stage_dir(STEERING.name)
    if Path(out_dir) == source or not ctx.run.is_done(STEERING.name, STEERING.fingerprint(ctx)):
        return []
    texts = {p.id: p.text for p in prompts}
    by_prompt = {pid: r for (cid, pid), r in ResultsStore(source).generated().items()
                 if cid == "baseline"}
    if by_prompt.keys() != texts.keys() or any(r["prompt"] != texts[k] for k, r in by_prompt.items()):
        return []
    return list(by_prompt.values())


def run_sweep_stage(ctx, out_dir: Path, vectors: Mapping[str, Any], conditions: Sequence,
                    *, alpha_info: dict | None, description: str, ablation: bool = False,
                    record: Mapping[str, Any] | None = None) -> dict:
    """Generate, judge and measure ``conditions`` over the run's sweep prompts.

    Writes ``conditions.json`` (with ``record`` merged in), ``results.jsonl`` (resumable),
    ``metrics.json`` and the figures; returns the full metrics summary. The baseline rows
    come from the steering stage where it has them (:func:`shared_baseline`).
    """
    st = ctx.config.steering
    prompts = sweep_prompts(ctx)
    judge = ctx.judge(st.judge, st.judge_options)
    write_json(out_dir / "conditions.json",
               {"conditions": [c.to_dict() for c in conditions], "alphas": alpha_info,
                **(record or {}), "n_prompts": len(prompts), "prompts": st.prompts,
                "max_new_tokens": st.max_new_tokens, "judge": judge.name})
    result = run_sweep(ctx.lm, ctx.formatter, prompts, conditions, vectors, out_dir,
                       max_new_tokens=st.max_new_tokens, batch_size=st.batch_size, judge=judge,
                       executor=ctx.executor, unit_batches=ctx.config.executor.batches_per_unit(),
                       reuse=shared_baseline(ctx, out_dir, prompts), reuse_from="steering",
                       description=description)
    summary = sweep_metrics(result.rows, judge, alphas=alpha_info)
    summary["sweep"] = result.stats
    write_json(out_dir / "metrics.json", summary)
    if ablation:
        plot_ablation(summary["ablation"], out_dir / "ablation.png",
                      baseline=summary["conditions"].get("baseline"))
    else:
        plot_dose_response(summary["dose_response"], out_dir / "dose_response.png",
                           judge=judge.name)
        plot_tradeoff(summary["dose_response"], out_dir / "tradeoff.png",
                      gap=summary["tradeoff_gap"], judge=judge.name)
    return summary


def one_line(summary: dict, ablation: bool) -> str:
    """The sweep's result in one line for the terminal."""
    gap = summary.get("tradeoff_gap") or {}
    if ablation or gap.get("value") is None:
        return f"{summary['n_conditions']} conditions, {summary['n_rows']} rows judged"
    return (f"trade-off gap (max |ΔORR| at matched RR): {gap['value']:.3f} "
            f"({' vs '.join(gap['pair'])} at RR={gap['at_rr']:.2f})")


__all__ = ["chosen_directions", "compact_summary", "one_line", "prompts_setting",
           "run_sweep_stage", "shared_baseline", "sweep_prompts", "sweep_settings"]
