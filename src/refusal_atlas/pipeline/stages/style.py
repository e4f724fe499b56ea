"""``style``: classify the style of every steered refusal (rules or an LLM)."""

from __future__ import annotations

from pathlib import Path

from ...artifacts import append_jsonl, read_jsonl, write_json
from ...errors import UserError
from ...plots.style import plot_style_breakdown
from ...style import (
    StyleLabel,
    explain_rules,
    make_classifier,
    steered_refusals,
    style_summary,
    summarize,
)
from ..stage import Stage, settings_of

SOURCES = ("steering", "sae_steering")


def run(ctx, out_dir: Path, resuming: bool) -> dict:
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


def check(ctx) -> None:
    """The classifier can be built (an LLM one names its backend) before any stage runs."""
    make_classifier(ctx.config.style)


STAGE = Stage("style", SOURCES, lambda c: settings_of(c.style), run,
              "classify the style of every steered refusal",
              enabled=lambda c: c.style.enabled, disabled_by="style.enabled = false",
              needs_model=False, check=check,
              outputs=("styles.jsonl", "summary.json"))
