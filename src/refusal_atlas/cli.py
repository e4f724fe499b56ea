"""The ``refusal-atlas`` command line.

Every stage command runs the stages it needs in one run folder and skips what is already
done, so ``refusal-atlas directions`` after ``refusal-atlas label`` only does the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .errors import UserError

app = typer.Typer(
    name="refusal-atlas",
    help=(
        "Map how a chat model refuses: per-category refusal directions, their geometry, "
        "steering/ablation trade-offs, SAE latents and one report.\n\n"
        "Start with `refusal-atlas run` (the default model and built-in demo data), or "
        "`refusal-atlas directions --model M --data D --out RUN_DIR`."
    ),
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# --------------------------------------------------------------------------- shared options

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML/TOML config file.")]
PresetOpt = Annotated[Optional[str], typer.Option(help="Preset: demo (default) or paper.")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Packaged name, Hugging Face id, local folder or .gguf file.")]
DataOpt = Annotated[Optional[str], typer.Option(
    "--data", "-d", help="Suite (demo, paper, paper-raw, coconot-contrast) or a prompt file/folder.")]
DataDirOpt = Annotated[Optional[Path], typer.Option(help="Folder with the datasets (paper suites).")]
SplitsOpt = Annotated[Optional[str], typer.Option(help="Comma-separated splits to keep.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder.")]
LayerOpt = Annotated[Optional[int], typer.Option(help="resid_pre layer (default: preset or scan).")]
PositionOpt = Annotated[Optional[int], typer.Option(help="Token position from the end, e.g. -2.")]
JudgeOpt = Annotated[Optional[str], typer.Option(help="Refusal judge: substring or wildguard.")]
DtypeOpt = Annotated[Optional[str], typer.Option(help="auto, float32, bfloat16 or float16.")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1, ...")]
ChatTemplateOpt = Annotated[Optional[str], typer.Option(
    help="Jinja chat template file for models without one.")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override any config value: section.key=value (repeatable).")]
ForceOpt = Annotated[Optional[list[str]], typer.Option(
    "--force", help="Redo this stage and what depends on it (repeatable).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.")]


def _build_config(config: Path | None, preset: str | None, model: str | None, data: str | None,
                  data_dir: Path | None, splits: str | None, layer: int | None,
                  position: int | None, judge: str | None, dtype: str | None,
                  device: str | None, chat_template: str | None, set_values: list[str] | None,
                  extra: dict[str, Any] | None = None):
    from .config import load_config

    overrides: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("model", "name", model)
    put("model", "dtype", dtype)
    put("model", "device", device)
    put("model", "chat_template", chat_template)
    put("data", "suite", data)
    put("data", "data_dir", str(data_dir) if data_dir else None)
    put("data", "splits", _csv(splits) if splits else None)
    put("activations", "layer", layer)
    put("activations", "position", position)
    if judge is not None:
        put("labels", "judge", judge)
        put("steering", "judge", judge)
    for (section, key), value in (extra or {}).items():
        put(section, key, value)
    return load_config(config, preset=preset, overrides=overrides, set_values=set_values)


_FILE_SUFFIXES = (".gguf", ".jsonl", ".json", ".csv", ".yaml", ".yml", ".toml")


def _name_part(text: str) -> str:
    """The last component of a model id, path or file, without a file suffix. Path.stem
    would cut "qwen2.5-coder-0.5b-instruct" at its first dot."""
    name = Path(text.rstrip("/")).name or text
    for suffix in _FILE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _default_out(cfg) -> Path:
    suite = _name_part(cfg.data.suite) if cfg.data.suite else "run"
    return Path("runs") / f"{suite}-{_name_part(cfg.model.name)}"


def _execute(targets: list[str], cfg, out: Path | None, force: list[str] | None,
             dry_run: bool) -> Path:
    from .pipeline import RunContext, plan, print_plan, run_pipeline
    from .progress import console

    run_dir = out or _default_out(cfg)
    if dry_run:
        ctx = RunContext(cfg, run_dir)
        print_plan(ctx, plan(ctx, targets, force or []))
        return run_dir
    run_pipeline(cfg, run_dir, targets, force or [])
    console.print(f"[bold green]done[/bold green]: results in {run_dir}")
    return run_dir


def _stage_command(name: str, targets: list[str], help_text: str) -> None:
    def command(
        config: ConfigOpt = None, preset: PresetOpt = None, model: ModelOpt = None,
        data: DataOpt = None, data_dir: DataDirOpt = None, splits: SplitsOpt = None,
        out: OutOpt = None, layer: LayerOpt = None, position: PositionOpt = None,
        judge: JudgeOpt = None, dtype: DtypeOpt = None, device: DeviceOpt = None,
        chat_template: ChatTemplateOpt = None, set_values: SetOpt = None,
        force: ForceOpt = None, dry_run: DryRunOpt = False,
    ) -> None:
        cfg = _build_config(config, preset, model, data, data_dir, splits, layer, position, judge,
                            dtype, device, chat_template, set_values)
        _execute(targets, cfg, out, force, dry_run)

    command.__doc__ = help_text
    app.command(name)(command)


RUN_TARGETS = ["geometry", "steering", "ablation", "sae_analysis", "sae_steering", "style",
               "report"]


@app.command("run")
def run_command(
    config: ConfigOpt = None, preset: PresetOpt = None, model: ModelOpt = None,
    data: DataOpt = None, data_dir: DataDirOpt = None, splits: SplitsOpt = None,
    out: OutOpt = None, layer: LayerOpt = None, position: PositionOpt = None,
    judge: JudgeOpt = None, dtype: DtypeOpt = None, device: DeviceOpt = None,
    chat_template: ChatTemplateOpt = None, set_values: SetOpt = None,
    force: ForceOpt = None, dry_run: DryRunOpt = False,
) -> None:
    """The whole study in one run folder: labels, pools, directions, geometry, steering and
    ablation sweeps, SAE analysis and steering, refusal style, and report.html.

    With no options: the default model on the built-in demo prompts. Re-run the same
    command after an interruption to continue where it stopped.
    """
    from .pipeline import stages
    from .progress import console

    cfg = _build_config(config, preset, model, data, data_dir, splits, layer, position, judge,
                        dtype, device, chat_template, set_values)
    if judge is not None:  # one judge for the whole study
        cfg.steering.judge = judge
    registered = stages()
    targets = [t for t in RUN_TARGETS if t in registered]
    run_dir = _execute(targets, cfg, out, force, dry_run)
    report = run_dir / "report.html"
    if not dry_run and report.exists():
        console.print(f"[bold]report:[/bold] {report.resolve()}")


_stage_command("label", ["labels"],
               "Generate the base model's responses for every prompt and judge them (HR/HC/BR/BC).")
_stage_command("pools", ["pools", "test_set"],
               "Draw the balanced training pools and the controlled test set from the labels.")
_stage_command("layer-scan", ["layer_scan"],
               "Measure HR/BC separation at every layer and choose the layer.")
_stage_command("directions", ["test_set", "directions", "geometry"],
               "Per-split refusal directions and their geometry (runs label, pools, layer scan, "
               "activations first).")
_stage_command("geometry", ["geometry"],
               "Cosine matrix, clustering, silhouette, bootstrap stability and MDS of the directions.")


# --------------------------------------------------------------------------- listings


@app.command("models")
def models_command() -> None:
    """List the packaged models (fetched from PyPI wheels on first use)."""
    from rich.table import Table

    from .models import DEFAULT_MODEL, PACKAGED_MODELS, packaged_model_dir
    from .progress import console

    table = Table("name", "description", "cached")
    for name, m in PACKAGED_MODELS.items():
        cached = (packaged_model_dir(name) / "refusal_atlas_model.json").exists()
        table.add_row(name + (" (default)" if name == DEFAULT_MODEL else ""), m.description,
                      "yes" if cached else "no")
    console.print(table)


@app.command("suites")
def suites_command() -> None:
    """List the prompt suites."""
    from rich.table import Table

    from .progress import console
    from .suites import list_suites

    table = Table("suite", "description")
    for name, description in list_suites():
        table.add_row(name, description)
    console.print(table)


@app.command("fetch-model")
def fetch_model_command(model: ModelOpt = None, dtype: DtypeOpt = None) -> None:
    """Download, verify and convert a model now (otherwise done on first use)."""
    from .models import DEFAULT_MODEL, load_model
    from .progress import console

    lm = load_model(model or DEFAULT_MODEL, dtype=dtype or "auto")
    console.print(lm.describe())


# --------------------------------------------------------------------------- steering and ablation

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
ExecutorOpt = Annotated[Optional[str], typer.Option(help="Work-unit executor (default: local).")]


def _judge_options(items: list[str] | None) -> dict[str, Any] | None:
    import yaml

    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--judge-option {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def _csv(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _int_list(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        items = [int(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        raise UserError(f"{what}: {text!r} is not a comma-separated list of integers") from None
    if not items:
        raise UserError(f"{what} is empty; give comma-separated integers")
    return items


def _sweep_run(targets: list[str], out: Path | None, config: Path | None,
               set_values: list[str] | None, device: str | None, force: list[str] | None,
               extra: dict) -> Any:
    """Config = the run folder's own config.json (so upstream stages stay done) + options."""
    from .pipeline import RunContext, plan
    from .runfolder import RunFolder

    def build(cfg_file):
        return _build_config(cfg_file, preset=None, model=None, data=None, data_dir=None,
                             splits=None, layer=None, position=None, judge=None, dtype=None,
                             device=device, chat_template=None, set_values=set_values,
                             extra=extra)

    run_dir = out if out is not None else _default_out(build(config))
    if config is None and (run_dir / "config.json").exists():
        config = run_dir / "config.json"
    cfg = build(config)
    folder = RunFolder(run_dir)
    if folder.done_marker("directions") is None:
        raise UserError(f"{run_dir} has no directions: run `refusal-atlas directions --out "
                        f"{run_dir}` first")
    from .artifacts import read_json

    available = list(read_json(folder.dir("directions") / "directions.json")["splits"])
    chosen = cfg.steering.directions
    unknown = [d for d in (chosen or []) if d not in available]
    if unknown:
        raise UserError(f"unknown direction(s) {', '.join(unknown)}; {run_dir} has "
                        f"{', '.join(available)}")
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


def _sweep_extra(directions: str | None, judge: str | None, judge_option: list[str] | None,
                 max_new_tokens: int | None, batch_size: int | None, prompts: str | None,
                 executor: str | None) -> dict:
    extra: dict = {("steering", "directions"): _csv(directions),
                   ("steering", "judge"): judge,
                   ("steering", "judge_options"): _judge_options(judge_option),
                   ("steering", "max_new_tokens"): max_new_tokens,
                   ("steering", "batch_size"): batch_size,
                   ("steering", "prompts"): prompts,
                   ("steering", "executor"): executor}
    if directions is not None and not extra[("steering", "directions")]:
        raise UserError("--directions is empty; give comma-separated direction names")
    return extra


def _rate(x: Any) -> str:
    return "-" if x is None else f"{x:.2f}"


@app.command("steer")
def steer_command(
    out: OutOpt = None, alphas: AlphasOpt = None, directions: DirectionsOpt = None,
    layers: SteerLayersOpt = None, judge: JudgeOpt = None, judge_option: JudgeOptionOpt = None,
    max_new_tokens: MaxNewTokensOpt = None, batch_size: BatchSizeOpt = None,
    prompts: PromptsOpt = None, executor: ExecutorOpt = None, config: ConfigOpt = None,
    device: DeviceOpt = None, set_values: SetOpt = None, force: ForceOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Steer along every direction of a run folder over a range of alphas; judge every
    response; RR / ORR per direction and alpha, the trade-off gap and figures."""
    from rich.table import Table

    from .artifacts import read_json
    from .progress import console
    from .sweeps import parse_alphas

    extra = _sweep_extra(directions, judge, judge_option, max_new_tokens, batch_size, prompts,
                         executor)
    extra[("steering", "alphas")] = parse_alphas(alphas)
    if layers is not None:
        extra[("steering", "layers")] = _int_list(layers, "--layers")
    cfg, run_dir = _sweep_run(["steering"], out, config, set_values, device, force, extra)
    _execute(["steering"], cfg, run_dir, force, dry_run)
    if dry_run:
        return
    metrics = read_json(run_dir / "steering" / "metrics.json")
    alphas_used = sorted({r["alpha"] for r in metrics.get("dose_response", [])})
    table = Table("direction", *[f"a={a:g} RR/ORR" for a in alphas_used],
                  title=f"steering (judge: {metrics['judge']}"
                        + (", approximate" if metrics["judge_approximate"] else "") + ")")
    by_curve: dict[str, dict] = {}
    for r in metrics.get("dose_response", []):
        by_curve.setdefault(r["label"], {})[r["alpha"]] = f"{_rate(r['rr'])}/{_rate(r['orr'])}"
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


@app.command("ablate")
def ablate_command(
    out: OutOpt = None, directions: DirectionsOpt = None, judge: JudgeOpt = None,
    judge_option: JudgeOptionOpt = None, max_new_tokens: MaxNewTokensOpt = None,
    batch_size: BatchSizeOpt = None, prompts: PromptsOpt = None, executor: ExecutorOpt = None,
    config: ConfigOpt = None, device: DeviceOpt = None, set_values: SetOpt = None,
    force: ForceOpt = None, dry_run: DryRunOpt = False,
) -> None:
    """Ablate each direction of a run folder (every layer, attention and MLP output); judge
    every response; RR / ORR per direction against the baseline."""
    from rich.table import Table

    from .artifacts import read_json
    from .progress import console

    extra = _sweep_extra(directions, judge, judge_option, max_new_tokens, batch_size, prompts,
                         executor)
    extra[("steering", "ablation")] = True
    cfg, run_dir = _sweep_run(["ablation"], out, config, set_values, device, force, extra)
    _execute(["ablation"], cfg, run_dir, force, dry_run)
    if dry_run:
        return
    metrics = read_json(run_dir / "ablation" / "metrics.json")
    base = metrics["conditions"].get("baseline", {})
    table = Table("direction", "RR", "ORR", "ΔRR", "ΔORR",
                  title=f"ablation (judge: {metrics['judge']}; baseline RR "
                        f"{_rate(base.get('rr'))}, "
                        f"ORR {_rate(base.get('orr'))})")
    for r in metrics.get("ablation", []):
        table.add_row(r["direction"], _rate(r["rr"]), _rate(r["orr"]), _rate(r["d_rr"]),
                      _rate(r["d_orr"]))
    console.print(table)


@app.command("rejudge")
def rejudge_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")],
    judge: Annotated[str, typer.Option(help="The second judge: substring or wildguard.")],
    stage: Annotated[str, typer.Option(help="steering or ablation.")] = "steering",
    judge_option: JudgeOptionOpt = None,
) -> None:
    """Judge a finished steering/ablation sweep's responses with a second judge and report
    how often the two judges agree (overall and per condition)."""
    from .judges import get_judge
    from .progress import console
    from .sweeps import rejudge

    if stage not in ("steering", "ablation"):
        raise UserError(f"--stage must be steering or ablation, not {stage!r}")
    folder = out / stage
    if not (folder / "_done.json").exists():
        raise UserError(f"{out} has no finished {stage} sweep: run `refusal-atlas "
                        f"{'steer' if stage == 'steering' else 'ablate'} --out {out}` first")
    agreement = rejudge(folder, get_judge(judge, **(_judge_options(judge_option) or {})))
    o = agreement["overall"]
    kappa = "-" if o["kappa"] is None else f"{o['kappa']:.3f}"
    console.print(f"{agreement['judge_a']} vs {agreement['judge_b']} on {o['n']} responses: "
                  f"agreement {_rate(o['agreement'])}, Cohen's kappa {kappa}, refusal rate "
                  f"{_rate(o['refusal_rate_a'])} vs {_rate(o['refusal_rate_b'])}, parse errors "
                  f"{o['parse_errors_a']} / {o['parse_errors_b']}")
    console.print(f"written to {folder / 'rejudge' / agreement['judge_b']}")


# ------------------------------------------------------------------- SAE: sae train|analyze|steer

sae_app = typer.Typer(
    name="sae", no_args_is_help=True,
    help="SAE analysis over a run folder: train (or load) an SAE, find the latents that carry "
         "refusal in each split (shared core, long tail), and steer with them.")
app.add_typer(sae_app, name="sae")

SaeSourceOpt = Annotated[Optional[str], typer.Option(
    "--source", help="'train' (default) or a published SAE: params.npz, SAELens folder, "
                     "dictionary_learning folder, gemma-scope:REPO/PATH, saelens:RELEASE/ID.")]
SaeLayerOpt = Annotated[Optional[int], typer.Option(
    "--layer", help="resid_pre layer the SAE reads (default: the direction layer; a published "
                    "SAE: its own).")]
SaeExpansionOpt = Annotated[Optional[int], typer.Option(help="Latents per residual dimension.")]
SaeKOpt = Annotated[Optional[int], typer.Option("--k", help="Active latents per token (TopK).")]
SaeStepsOpt = Annotated[Optional[int], typer.Option("--steps", help="Training steps.")]
SaeMaxTokensOpt = Annotated[Optional[int], typer.Option(
    "--max-tokens", help="Cap on training rows (token positions).")]
SaeCorpusOpt = Annotated[Optional[list[Path]], typer.Option(
    "--corpus-file", help="Extra text for the training corpus (.txt/.md/.jsonl; repeatable).")]
SaeArchOpt = Annotated[Optional[str], typer.Option("--architecture", help="topk or jumprelu.")]
SaeTopKOpt = Annotated[Optional[str], typer.Option(
    "--top-k", help="Comma-separated K values for the per-split top-K lists (default 10,50).")]
SaeCoreMinOpt = Annotated[Optional[int], typer.Option(
    "--core-min-splits", help="A core latent is in the top-K of at least this many splits "
                              "(default: half the splits, rounded up).")]
SaeCoreKOpt = Annotated[Optional[int], typer.Option(
    "--core-k", help="The K whose core and tail are reported and steered (default: largest).")]
SaeAlphasOpt = Annotated[Optional[str], typer.Option(
    "--alphas", help="Comma-separated alphas or 'auto' ({0,10,30,60} scaled like direction "
                     "steering, on the unit-normalised latent sum).")]
SaeSetsOpt = Annotated[Optional[str], typer.Option(
    "--sets", help="Latent sets to steer with: core, split_topk, tail, user (comma-separated).")]
SaeLatentsOpt = Annotated[Optional[str], typer.Option(
    "--latents", help="Comma-separated latent ids, steered together as 'sae_user'.")]
SaeSplitsOpt = Annotated[Optional[str], typer.Option(
    "--splits", help="Splits whose top-K / tail sets are steered (default: a few spanning the "
                     "geometry's clusters).")]
SaeMaxSplitsOpt = Annotated[Optional[int], typer.Option(
    "--max-splits", help="How many splits to choose when --splits is not given.")]
SaeMaxNewOpt = Annotated[Optional[int], typer.Option(
    "--max-new-tokens", help="New tokens per response (shared with direction steering).")]
SaeBatchOpt = Annotated[Optional[int], typer.Option(
    "--batch-size", help="Rows per generation batch (speed only).")]


def _sae_run(targets: list[str], out: Path | None, config: Path | None, preset: str | None,
             model: str | None, data: str | None, device: str | None,
             set_values: list[str] | None, force: list[str] | None, dry_run: bool,
             extra: dict) -> tuple[Path, bool]:
    """Run SAE stages over a run folder, starting from its own config.json (so finished
    upstream stages stay done), with the command's options on top. Returns the run folder
    and whether the target stage ran now (False: it was already up to date)."""
    from .runfolder import RunFolder

    def build(cfg_file):
        return _build_config(cfg_file, preset, model, data, None, None, None, None, None, None,
                             device, None, set_values, extra=extra)

    run_dir = out if out is not None else _default_out(build(config))
    if config is None and (run_dir / "config.json").exists():
        config = run_dir / "config.json"
    cfg = build(config)
    if not cfg.sae.enabled:
        raise UserError("sae.enabled is false in this run's config; pass --set sae.enabled=true")
    before = [RunFolder(run_dir).completion_id(t) for t in targets]
    _execute(targets, cfg, run_dir, force, dry_run)
    return run_dir, [RunFolder(run_dir).completion_id(t) for t in targets] != before


@sae_app.command("train")
def sae_train_command(
    out: OutOpt = None, source: SaeSourceOpt = None, layer: SaeLayerOpt = None,
    expansion: SaeExpansionOpt = None, k: SaeKOpt = None, steps: SaeStepsOpt = None,
    max_tokens: SaeMaxTokensOpt = None, corpus_file: SaeCorpusOpt = None,
    architecture: SaeArchOpt = None, config: ConfigOpt = None, preset: PresetOpt = None,
    model: ModelOpt = None, data: DataOpt = None, device: DeviceOpt = None,
    set_values: SetOpt = None, force: ForceOpt = None, dry_run: DryRunOpt = False,
) -> None:
    """Train (or load) the run's SAE; report variance explained, L0 and dead latents.

    The corpus is the run's prompts (all positions, the analysis position oversampled), the
    base model's responses and your text files; the SAE is saved in the SAELens format.
    """
    from .artifacts import read_json
    from .progress import console

    extra = {("sae", "source"): source, ("sae", "layer"): layer,
             ("sae", "expansion"): expansion, ("sae", "k"): k, ("sae", "train_steps"): steps,
             ("sae", "train_max_tokens"): max_tokens, ("sae", "architecture"): architecture,
             ("sae", "corpus_files"): [str(p) for p in corpus_file] if corpus_file else None}
    run_dir, fresh = _sae_run(["sae"], out, config, preset, model, data, device, set_values,
                              force, dry_run, extra)
    if dry_run:
        return
    meta = read_json(run_dir / "sae" / "sae.json")
    if not fresh:
        from .sae.stages import _describe_metrics

        console.print(_describe_metrics(meta))
    if meta.get("train"):
        t = meta["train"]
        console.print(f"trained {t['steps']} steps on {t['n_train_rows']} rows in "
                      f"{t['seconds']:.0f}s; saved to {run_dir / 'sae' / meta['spec']}")


@sae_app.command("analyze")
def sae_analyze_command(
    out: OutOpt = None, top_k: SaeTopKOpt = None, core_min_splits: SaeCoreMinOpt = None,
    core_k: SaeCoreKOpt = None, source: SaeSourceOpt = None, config: ConfigOpt = None,
    device: DeviceOpt = None, set_values: SetOpt = None, force: ForceOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Find the SAE latents that carry refusal in each split: shared core and long tail.

    Score = HR firing share - BC firing share at the analysis position; top-K lists,
    popularity, intersections and each top latent's top-activating prompts.
    """
    from .progress import console

    extra = {("sae", "top_k"): _int_list(top_k, "--top-k"),
             ("sae", "core_min_splits"): core_min_splits, ("sae", "core_k"): core_k,
             ("sae", "source"): source}
    run_dir, fresh = _sae_run(["sae_analysis"], out, config, None, None, None, device,
                              set_values, force, dry_run, extra)
    if dry_run:
        return
    if not fresh:
        from .sae.stages import describe_analysis, load_analysis

        console.print(describe_analysis(load_analysis(run_dir)))
    console.print(f"latent sheet for labelling: {run_dir / 'sae_analysis' / 'latents.md'}")


@sae_app.command("steer")
def sae_steer_command(
    out: OutOpt = None, alphas: SaeAlphasOpt = None, sets: SaeSetsOpt = None,
    latents: SaeLatentsOpt = None, splits: SaeSplitsOpt = None,
    max_splits: SaeMaxSplitsOpt = None, judge: JudgeOpt = None,
    max_new_tokens: SaeMaxNewOpt = None, batch_size: SaeBatchOpt = None,
    config: ConfigOpt = None, device: DeviceOpt = None, set_values: SetOpt = None,
    force: ForceOpt = None, dry_run: DryRunOpt = False,
) -> None:
    """Steer with SAE latent sets (core, per-split top-10); RR / ORR next to directions.

    Adds alpha x the sum of the latents' decoder rows at the SAE's layer, every position,
    through the direction-steering engine, prompts and judge.
    """
    from rich.table import Table

    from .artifacts import read_json
    from .progress import console
    from .sweeps import parse_alphas

    extra: dict = {("sae", "steer_alphas"): parse_alphas(alphas),
                   ("sae", "steer_sets"): _csv(sets) if sets else None,
                   ("sae", "steer_latents"): _int_list(latents, "--latents"),
                   ("sae", "steer_splits"): _csv(splits) if splits else None,
                   ("sae", "steer_max_splits"): max_splits,
                   ("steering", "judge"): judge,
                   ("steering", "max_new_tokens"): max_new_tokens,
                   ("steering", "batch_size"): batch_size}
    run_dir, _ = _sae_run(["sae_steering"], out, config, None, None, None, device, set_values,
                          force, dry_run, extra)
    if dry_run:
        return
    from .sae.stages import comparison_markdown, write_comparison

    metrics = read_json(run_dir / "sae_steering" / "metrics.json")
    alphas_used = sorted({r["alpha"] for r in metrics.get("dose_response", [])})
    table = Table(title=f"SAE steering (judge: {metrics['judge']}"
                        + (", approximate" if metrics["judge_approximate"] else "") + ")")
    table.add_column("latent set", no_wrap=True)
    for a in alphas_used:
        table.add_column(f"a={a:g} RR/ORR")
    by_curve: dict[str, dict] = {}
    for r in metrics.get("dose_response", []):
        rr = "-" if r["rr"] is None else f"{r['rr']:.2f}"
        orr = "-" if r["orr"] is None else f"{r['orr']:.2f}"
        by_curve.setdefault(r["label"].removeprefix("vector/"), {})[r["alpha"]] = f"{rr}/{orr}"
    for label, cells in by_curve.items():
        table.add_row(label, *[cells.get(a, "") for a in alphas_used])
    console.print(table)
    cos = read_json(run_dir / "sae_steering" / "cosines.json")
    if cos.get("per_split"):
        cells = [f"{s} {v['cosine']:.2f}" for s, v in cos["per_split"].items()
                 if v["cosine"] is not None]
        console.print(f"cosine(top-{cos['top_k']} latent sum, direction): " + ", ".join(cells))
    comparison = write_comparison(run_dir)
    if comparison is None:
        console.print("no finished direction steering in this run yet: run `refusal-atlas steer "
                      f"--out {run_dir}`, then `refusal-atlas sae steer --out {run_dir}` again "
                      "for the side-by-side table")
    else:
        console.print(comparison_markdown(comparison))


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    from .progress import console

    try:
        app(args=argv, standalone_mode=False)
    except UserError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: re-run the same command to resume")
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.Abort):
            console.print("[yellow]aborted[/yellow]")
            return 130
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
