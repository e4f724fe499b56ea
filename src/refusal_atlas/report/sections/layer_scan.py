"""The ``layer-scan`` section: the chosen layer, why, and the separation there."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..format import num
from .common import figure, not_run, read_json_or_none

__all__ = ["layer_scan_section"]


def layer_scan_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """The chosen layer and why, the HR/BC separation and accuracy there, the best layer.

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
    """
    layer = read_json_or_none(run_dir / "layer_scan" / "layer.json")
    if states.get("layer_scan", {}).get("status") != "done" or not layer:
        return {"available": False, "reason": not_run(states, "layer_scan")
                or "not run: layer_scan/layer.json is missing"}
    scan = read_json_or_none(run_dir / "layer_scan" / "layer_scan.json") or {}
    layers = scan.get("layers") or []
    sep = [num(x) for x in scan.get("separation") or []]
    acc = scan.get("accuracy") or []
    chosen = layer.get("layer")
    at = layers.index(chosen) if chosen in layers else None
    finite = [i for i, x in enumerate(sep) if x is not None]
    best = max(finite, key=lambda i: sep[i]) if finite else None
    return {
        "available": True, "layer": chosen, "position": layer.get("position"),
        "reason": layer.get("reason"), "n_layers": layer.get("n_layers"),
        "separation_at_layer": sep[at] if at is not None and at < len(sep) else None,
        "accuracy_at_layer": acc[at] if at is not None and at < len(acc) else None,
        "best_layer": layers[best] if best is not None and best < len(layers) else None,
        "best_separation": sep[best] if best is not None else None,
        "figure": figure(run_dir, "layer_scan/layer_scan.png",
                         "HR/BC separation per layer (layer_scan/layer_scan.png)"),
        "sources": ["layer_scan/layer.json", "layer_scan/layer_scan.json"],
    }
