"""The layer-scan figure: separation per layer, the induce score, the chosen layer."""

from __future__ import annotations

from pathlib import Path

from ..layer_scan import LayerScan
from .figures import new_figure, save_png


def plot_layer_scan(scan: LayerScan, path: str | Path) -> Path:
    fig = new_figure((7, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(scan.layers, scan.separation, marker="o", color="black", label="all splits")
    for name, seps in scan.per_split.items():
        ax.plot(scan.layers, seps, alpha=0.35, linewidth=1)
    ax.axvline(scan.chosen_layer, color="tab:red", linestyle="--",
               label=f"chosen layer {scan.chosen_layer}")
    ax.set_xlabel("layer (resid_pre)")
    ax.set_ylabel("held-out HR/BC separation (Cohen's d)")
    handles, labels = ax.get_legend_handles_labels()
    if scan.induce:
        twin = ax.twinx()
        layers = sorted(scan.induce)
        line = twin.plot(layers, [scan.induce[k] for k in layers], marker="s", color="tab:blue",
                         label="refusal log-odds gained by steering BC prompts")
        twin.set_ylabel("induce score", color="tab:blue")
        handles, labels = handles + line, labels + [line[0].get_label()]
    ax.legend(handles, labels, loc="best", fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
