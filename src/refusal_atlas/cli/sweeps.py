"""``steer``, ``ablate`` and ``rejudge``: sweeps over a finished directions run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..artifacts import read_json
from ..config import RunConfig
from ..errors import UserError
from ..judges import get_judge
from ..pipeline import RunContext, plan
from ..pipeline.rejudge import rejudge_stage
from ..pipeline.runfolder import RunFolder
from ..progress import console
from ..sweeps import parse_alphas
from .options import (
    ConfigOpt,
    DeviceOpt,
    DryRunOpt,
    ExecutorOpt,
    ForceOpt,
    JudgeOpt,
    OutOpt,
    SetOpt,
    check_run_dir,
    config_of_run,
    csv_list,
    int_list,
    key_values,
    rate,
)
from .run import execute

AlphasOpt = Annotated[Optional[str], typer.Option(
    help="Comma-separated alphas (e.g. 0,10,30) or 'auto': the paper's {0,10,30,60,100} scaled "
         "by this run's projection gap.")]
DirectionsOpt = Annotated[Optional[str], typer.Option(
    help="Comma-separated directions to use (default: all of the run's).")]
SteerLayersOpt = Annotated[Optional[str], typer.Option(
    "--layers",
    help="Comma-separated resid_pre layers to steer at (default: the directions' layer).")]
MaxNewTokensOpt = Annotated[Optional[int], typer.Option(help="New tokens per response.")]
BatchSizeOpt = Annotated[Optional[int], typer.Option(
    help="Rows per generation batch (speed only).")]
PromptsOpt = Annotated[Optional[str], typer.Option(
    help="'test_set' (the controlled test set, default) or a labelled prompt file.")]
JudgeOptionOpt = Annotated[Optional[list[str]], typer.Option(
    "--judge-option", help="Judge setting key=value (repeatable), e.g. backend=vllm.")]
ExtraDirectionsOpt = Annotated[Optional[list[str]], typer.Option(
    "--extra-directions", help="Direction file made elsewhere (.gguf control vector, "
                               "steering-vectors or plain .safetensors), swept beside the run's "
                               "own (repeatable); see docs/export.md.")]


def over_run_folder(targets: list[str], out: Path | None, config: Path | None,
                    set_values: list[str] | None, force: list[str] | None,
                    **options: Any) -> tuple[RunConfig, Path]:
    """Config = the run folder's own config.json (so upstream stages stay done) + options;
    refuses settings that would redo a finished upstream stage."""
    cfg, run_dir = config_of_run(out, config, None, set_values, **options)
    folder = RunFolder(run_dir)
    if folder.done_marker("directions") is None:
        raise UserError(f"{run_dir} has no directions: run `refusal-atlas directions --out "
                        f"{run_dir}` first")
    # Which directions exist (the run's, --extra-directions) is the sweep stage's own check,
    # run before anything is written.
    ctx = RunContext(cfg, run_dir)
    # A finished upstream stage that these settings would invalidate is a mistake; one that
    # never ran (e.g. the test set after `directions` only) simply runs.
    redo = [p.name for p in plan(ctx, targets, force or [])
            if p.name not in ("steering", "ablation", *(force or [])) and p.status != "done"
            and folder.done_marker(p.name) is not None]
    if redo:
        raise UserError(f"these settings would redo {', '.join(redo)} in {run_dir}; `steer` and "
                        "`ablate` reuse a finished directions run (change those settings with "
                        "`refusal-atlas directions`)")
    return cfg, run_dir


def _sweep_options(directions: str | None, judge: str | None, judge_option: list[str] | None,
                   max_new_tokens: int | None, batch_size: int | None, prompts: str | None,
                   executor: str | None) -> dict[str, Any]:
    return {"directions": csv_list(directions, empty_error="--directions is empty; give "
                                                          "comma-separated direction names"),
            "steer_judge": judge, "judge_options": key_values(judge_option, "--judge-option"),
            "max_new_tokens": max_new_tokens, "batch_size": batch_size, "prompts": prompts,
            "executor": executor}


def steer_command(
    out: OutOpt = None, alphas: AlphasOpt = None, directions: DirectionsOpt = None,
    layers: SteerLayersOpt = None, judge: JudgeOpt = None, judge_option: JudgeOptionOpt = None,
    max_new_tokens: MaxNewTokensOpt = None, batch_size: BatchSizeOpt = None,
    prompts: PromptsOpt = None, executor: ExecutorOpt = None, config: ConfigOpt = None,
    device: DeviceOpt = None, set_values: SetOpt = None, force: ForceOpt = None,
    dry_run: DryRunOpt = False, extra_directions: ExtraDirectionsOpt = None,
) -> None:
    """Steer along every direction of a run folder over a range of alphas; judge every
    response; RR / ORR per direction and alpha, the trade-off gap and figures."""
    options = _sweep_options(directions, judge, judge_option, max_new_tokens, batch_size,
                             prompts, executor)
    cfg, run_dir = over_run_folder(["steering"], out, config, set_values, force, device=device,
                                   alphas=parse_alphas(alphas),
                                   steer_layers=int_list(layers, "--layers"),
                                   extra_directions=extra_directions, **options)
    execute(["steering"], cfg, run_dir, force, dry_run)
    if dry_run:
        return
    metrics = read_json(run_dir / "steering" / "metrics.json")
    alphas_used = sorted({r["alpha"] for r in metrics.get("dose_response", [])})
    table = Table("direction", *[f"a={a:g} RR/ORR" for a in alphas_used],
                  title=f"steering (judge: {metrics['judge']}"
                        + (", approximate" if metrics["judge_approximate"] else "") + ")")
    by_curve: dict[str, dict] = {}
    for r in metrics.get("dose_response", []):
        by_curve.setdefault(r["label"], {})[r["alpha"]] = f"{rate(r['rr'])}/{rate(r['orr'])}"
    for label, cells in by_curve.items():
        table.add_row(label, *[cells.get(a, "") for a in alphas_used])
    console.print(table)
    gap = metrics.get("tradeoff_gap") or {}
    if gap.get("value") is not None:
        console.print(f"trade-off gap (max |ORR difference| at matched RR): {gap['value']:.3f} "
                      f"({gap['pair'][0]} vs {gap['pair'][1]} at RR {gap['at_rr']:.2f}); mean over "
                      f"pairs {gap['mean_over_pairs']:.3f}")
        unc = gap.get("uncertainty") or {}
        boot, perm = unc.get("bootstrap") or {}, unc.get("permutation")
        if boot.get("value_ci95") and perm:
            lo, hi = boot["value_ci95"]
            console.print(f"  bootstrap 95% CI [{lo:.3f}, {hi:.3f}]; permutation p = "
                          f"{perm['p_value']:.3f} (identical knobs give up to "
                          f"{perm['null_95']:.3f} "
                          f"by noise alone, 95th percentile)")
    sweep = metrics.get("sweep", {})
    if sweep.get("rows_per_s"):
        console.print(f"generated {sweep['n_generated_rows_this_run']} rows in "
                      f"{sweep['generation_seconds']:.0f}s ({sweep['rows_per_s']:.2f} rows/s, "
                      f"{sweep['tokens_per_s']:.1f} tokens/s)")


def ablate_command(
    out: OutOpt = None, directions: DirectionsOpt = None, judge: JudgeOpt = None,
    judge_option: JudgeOptionOpt = None, max_new_tokens: MaxNewTokensOpt = None,
    batch_size: BatchSizeOpt = None, prompts: PromptsOpt = None, executor: ExecutorOpt = None,
    config: ConfigOpt = None, device: DeviceOpt = None, set_values: SetOpt = None,
    force: ForceOpt = None, dry_run: DryRunOpt = False, extra_directions: ExtraDirectionsOpt = None,
) -> None:
    """Ablate each direction of a run folder (every layer, attention and MLP output); judge
    every response; RR / ORR per direction against the baseline."""
    options = _sweep_options(directions, judge, judge_option, max_new_tokens, batch_size,
                             prompts, executor)
    cfg, run_dir = over_run_folder(["ablation"], out, config, set_values, force, device=device,
                                   ablation=True, extra_directions=extra_directions, **options)
    execute(["ablation"], cfg, run_dir, force, dry_run)
    if dry_run:
        return
    metrics = read_json(run_dir / "ablation" / "metrics.json")
    base = metrics["conditions"].get("baseline", {})
    table = Table("direction", "RR", "ORR", "ΔRR", "ΔORR",
                  title=f"ablation (judge: {metrics['judge']}; baseline RR "
                        f"{rate(base.get('rr'))}, "
                        f"ORR {rate(base.get('orr'))})")
    for r in metrics.get("ablation", []):
        table.add_row(r["direction"], rate(r["rr"]), rate(r["orr"]), rate(r["d_rr"]),
                      rate(r["d_orr"]))
    console.print(table)


def rejudge_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")],
    judge: Annotated[str, typer.Option(help="The second judge: substring or wildguard.")],
    stage: Annotated[str, typer.Option(help="steering or ablation.")] = "steering",
    judge_option: JudgeOptionOpt = None,
) -> None:
    """Judge a finished steering/ablation sweep's responses with a second judge and report
    how often the two judges agree (overall and per condition)."""
    check_run_dir(out)
    second = get_judge(judge, **(key_values(judge_option, "--judge-option") or {}))
    agreement = rejudge_stage(out, stage, second)
    o = agreement["overall"]
    kappa = "-" if o["kappa"] is None else f"{o['kappa']:.3f}"
    console.print(f"{agreement['judge_a']} vs {agreement['judge_b']} on {o['n']} responses: "
                  f"agreement {rate(o['agreement'])}, Cohen's kappa {kappa}, refusal rate "
                  f"{rate(o['refusal_rate_a'])} vs {rate(o['refusal_rate_b'])}, parse errors "
                  f"{o['parse_errors_a']} / {o['parse_errors_b']}")
    console.print(f"written to {out / stage / 'rejudge' / agreement['judge_b']}")
