"""The ``summary`` section: model, layer, judges, data, test set, timings and stage states."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..format import num
from .common import group_sizes, read_json_or_none

__all__ = ["summary_section"]


def _total(counts: Mapping[str, Any]) -> int:
    return sum(int(num(v) or 0) for v in counts.values())


def summary_section(run_dir: Path, cfg: Mapping[str, Any], states: Mapping[str, dict]) -> dict:
    """The run at a glance.

    Args:
        run_dir: the run folder.
        cfg: the run's ``config.json``.
        states: each stage's state (every stage is listed, with its time when done).
    """
    model = (cfg.get("model") or {})
    layer = read_json_or_none(run_dir / "layer_scan" / "layer.json") or {}
    suite = read_json_or_none(run_dir / "prompts" / "suite.json") or {}
    counts = read_json_or_none(run_dir / "labels" / "counts.json") or {}
    steer_metrics = read_json_or_none(run_dir / "steering" / "metrics.json") or {}
    test_set = read_json_or_none(run_dir / "test_set" / "test_set.json") or {}
    acts = cfg.get("activations") or {}
    steering_cfg = cfg.get("steering") or {}
    timings = [{"stage": n, "seconds": s.get("seconds"), "finished_at": s.get("finished_at")}
               for n, s in states.items() if s.get("status") == "done"]
    splits = suite.get("splits") or {}
    benign = suite.get("benign") or {}
    labels_judge = counts.get("judge") or (cfg.get("labels") or {}).get("judge")
    steering_judge = steer_metrics.get("judge") or steering_cfg.get("judge")
    approximate = bool(counts.get("approximate_judge")) or bool(steer_metrics.get("judge_approximate"))
    return {
        "available": True, "model": model.get("name"), "dtype": model.get("dtype"), "device": model.get("device"),
        "preset": cfg.get("preset"),
        "layer": layer.get("layer", acts.get("layer")),
        "layer_reason": layer.get("reason"), "n_layers": layer.get("n_layers"),
        "position": layer.get("position", acts.get("position")),
        "labels_judge": labels_judge, "steering_judge": steering_judge,
        "judge_approximate": approximate,
        "judge_note": ("the substring judge approximates refusal judging (METHOD.md); "
                       "use --judge wildguard for reference numbers")
        if approximate else None,
        "data": suite.get("name") or (cfg.get("data") or {}).get("suite"),
        "n_splits": len(splits), "n_split_prompts": _total(splits),
        "n_benign_prompts": _total(benign),
        # runs from before lazy labelling labelled every prompt (n_prompts)
        "n_labelled": counts.get("n_labelled", counts.get("n_prompts")),
        "n_not_labelled": counts.get("n_not_labelled", 0),
        "label_all": counts.get("label_all", True if counts else None),
        "judge_parse_errors": counts.get("judge_parse_errors"),
        "labels_max_new_tokens": counts.get("max_new_tokens"),
        "steering_max_new_tokens": steering_cfg.get("max_new_tokens"),
        "limit": (cfg.get("data") or {}).get("limit"),
        "test_set": group_sizes(test_set),
        "timings": timings,
        "total_seconds": sum(num(t["seconds"]) or 0.0 for t in timings),
        "stages": [{"name": n, "status": s.get("status"), "reason": s.get("reason"),
                    "seconds": s.get("seconds")} for n, s in states.items()],
        "sources": ["config.json", "layer_scan/layer.json", "prompts/suite.json",
                    "labels/counts.json", "test_set/test_set.json", "*/_done.json (seconds)"],
    }
