"""The refusal-style stage: what kind of refusal each steering direction produces.

Every response that a steered condition (alpha > 0) made the judge call a refusal gets a
style (CAPABILITY / SAFETY / UNDERSPEC / GENERIC / NONREFUSAL) from the rule-based
classifier (offline, transparent) or an LLM classifier; per direction the stage reports
the dominant style and its purity, next to the unsteered baseline's refusals.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from .artifacts import append_jsonl, read_jsonl, write_json
from .errors import UserError
from .style import (
    REFUSAL_STYLES,
    STYLES,
    HFChatBackend,
    LLMStyleClassifier,
    OpenAICompatBackend,
    RuleStyleClassifier,
    StyleLabel,
    explain_rules,
    style_summary,
)

SOURCES = ("steering", "sae_steering")


def make_classifier(cfg):
    if cfg.classifier == "rules":
        return RuleStyleClassifier()
    if cfg.endpoint:
        if not cfg.llm_model:
            raise UserError("style.endpoint needs style.llm_model (the model name to ask for)")
        backend = OpenAICompatBackend(cfg.endpoint, cfg.llm_model, api_key_env=cfg.api_key_env)
    elif cfg.llm_model:
        backend = HFChatBackend(cfg.llm_model)
    else:
        raise UserError("style.classifier=llm needs style.llm_model (a local Hugging Face chat "
                        "model) or style.endpoint + style.llm_model (an OpenAI-compatible API)")
    return LLMStyleClassifier(backend, prompt_file=cfg.prompt_file)


def steered_refusals(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(refusals under alpha > 0 additive conditions, refusals of the unsteered baseline)."""
    steered = [r for r in rows if r.get("kind") in ("steer", "vector")
               and float(r.get("alpha") or 0) > 0 and r.get("refused")]
    baseline = {r["prompt_id"]: r for r in rows if r.get("kind") == "baseline" and r.get("refused")}
    return steered, list(baseline.values())


def summarize(labelled: list[dict]) -> dict[str, Any]:
    """Style summaries by direction, by direction and prompt side, and by condition."""
    groups: dict[str, dict[str, list[StyleLabel]]] = {
        "by_direction": defaultdict(list), "by_direction_side": defaultdict(list),
        "by_condition": defaultdict(list)}
    for row in labelled:
        label = StyleLabel(row["style"], row["evidence"], row["classifier"])
        side = "harmful" if row["harmful"] else "benign"
        groups["by_direction"][row["direction"]].append(label)
        groups["by_direction_side"][f"{row['direction']} | {side}"].append(label)
        groups["by_condition"][row["condition"]].append(label)
    return {name: style_summary(dict(g)) for name, g in groups.items()}


def run_style_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    rows: list[dict] = []
    for source in SOURCES:
        path = ctx.stage_dir(source) / "results.jsonl"
        if (ctx.stage_dir(source) / "_done.json").exists() and path.exists():
            rows.extend(dict(r, source=source) for r in read_jsonl(path))
    if not rows:
        raise UserError("no steering results to classify: run `refusal-atlas steer` first")
    steered, baseline = steered_refusals(rows)
    classifier = make_classifier(ctx.config.style)
    store = out_dir / "styles.jsonl"
    done = {(r["condition"], r["prompt_id"]) for r in read_jsonl(store)}
    todo = [r for r in steered + [dict(b, condition="baseline", direction="baseline")
                                  for b in baseline]
            if (r["condition"], r["prompt_id"]) not in done]
    chunk = 256
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        labels = classifier.classify([r["response"] for r in part])
        append_jsonl(store, [{"source": r.get("source"), "condition": r["condition"],
                              "direction": r.get("direction") or r["condition"],
                              "alpha": r.get("alpha"), "prompt_id": r["prompt_id"],
                              "harmful": r["harmful"], "group": r.get("group"),
                              "style": lab.style, "evidence": lab.evidence,
                              "classifier": lab.classifier, "response": r["response"]}
                             for r, lab in zip(part, labels)])
    labelled = {(r["condition"], r["prompt_id"]): r for r in read_jsonl(store)}
    labelled_rows = list(labelled.values())
    steered_rows = [r for r in labelled_rows if r["condition"] != "baseline"]
    summary = summarize(steered_rows)
    summary["baseline"] = style_summary(
        {"baseline": [StyleLabel(r["style"], r["evidence"], r["classifier"])
                      for r in labelled_rows if r["condition"] == "baseline"]})["baseline"]
    summary["classifier"] = getattr(classifier, "name", ctx.config.style.classifier)
    summary["n_steered_refusals"] = len(steered_rows)
    if ctx.config.style.classifier == "rules":
        summary["rules"] = explain_rules(classifier)
    write_json(out_dir / "summary.json", summary)
    plot_style_breakdown(summary, out_dir / "styles.png")
    return {"classifier": summary["classifier"], "n_steered_refusals": len(steered_rows),
            "dominant": {d: s["dominant"] for d, s in summary["by_direction"].items()},
            "purity": {d: s["purity"] for d, s in summary["by_direction"].items()}}


def plot_style_breakdown(summary: dict, path: Path) -> Path:
    """One horizontal stacked bar per direction: the share of each refusal style."""
    from .figures import new_figure, save_png

    by_direction = dict(summary["by_direction"])
    if summary.get("baseline", {}).get("n"):
        by_direction = {"(baseline)": summary["baseline"], **by_direction}
    names = list(by_direction)
    colours = {"CAPABILITY": "#4c72b0", "SAFETY": "#c44e52", "UNDERSPEC": "#55a868",
               "GENERIC": "#8c8c8c", "NONREFUSAL": "#e5c494"}
    fig = new_figure((8, 0.45 * max(len(names), 2) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    left = [0.0] * len(names)
    for style in STYLES:
        shares = []
        for name in names:
            counts = by_direction[name]["counts"]
            total = sum(counts[s] for s in STYLES) or 1
            shares.append(counts[style] / total)
        ax.barh(names, shares, left=left, color=colours[style], label=style)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of steered refusals")
    ax.invert_yaxis()
    ax.legend(ncol=5, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return save_png(fig, path)


def _register() -> None:
    from .pipeline import Stage, register_stages, settings_of

    def factory():
        return [Stage("style", SOURCES,
                      lambda c: settings_of(c.style), run_style_stage,
                      "classify the style of every steered refusal",
                      enabled=lambda c: c.style.enabled, needs_model=False)]

    register_stages(factory)


_register()

__all__ = ["REFUSAL_STYLES", "make_classifier", "run_style_stage", "steered_refusals", "summarize"]
