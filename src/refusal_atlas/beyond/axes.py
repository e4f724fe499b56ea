"""The shared refusal axis and each split's specific part (issue 14, experiment 1).

From the unit split directions ``d_c`` (one layer):

* the **shared axis** ``s`` = the mean of the unit directions, unit-normalised;
* the **first principal component** of the directions, taken uncentred (the top right
  singular vector of the stacked unit directions): centring would subtract exactly the
  shared mean this axis is meant to find. Its sign is aligned with ``s``; reported with
  its share of the directions' second moment and its cosine with ``s``;
* each split's **specific part** ``r_c`` = ``d_c`` with ``s`` projected out, unit-normalised;
  ``specific_norm`` is its norm before normalising (``sin`` of the angle between ``d_c`` and
  ``s``: how much of ``d_c`` is not shared).

Steering with ``d_c``, ``s`` and ``r_c`` at matched norms: all three are unit vectors, and a
``steer`` condition adds ``alpha`` times its unit vector, so the same alphas (the steering
stage's scale, :func:`~refusal_atlas.sweeps.resolve_alphas`) push equally far along each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from ..errors import UserError
from ..sweeps import LayerVector, format_alpha
from .findings import Finding
from .style_rate import style_without_rate, verdict_finding

SHARED_NAME = "shared_axis"


def specific_name(split: str) -> str:
    """The vector / condition name of a split's specific part (names cannot hold '/')."""
    return f"specific:{split}"


@dataclass
class SharedAxes:
    """The shared axis, PC1 and the specific parts of a set of unit split directions."""

    names: list[str]
    layer: int
    shared: torch.Tensor
    """``s``: unit mean of the unit directions."""
    pc1: torch.Tensor
    """Unit first principal component (uncentred), sign aligned with ``s``."""
    pc1_variance: float
    """Share of the directions' (uncentred) second moment along PC1."""
    cos_shared_pc1: float
    specific: dict[str, torch.Tensor] = field(default_factory=dict)
    """``r_c``: unit ``d_c`` with ``s`` projected out (absent when ``d_c`` is parallel to s)."""
    specific_norm: dict[str, float] = field(default_factory=dict)
    """``|d_c - (d_c . s) s|`` before normalising."""
    cos_with_shared: dict[str, float] = field(default_factory=dict)
    """``d_c . s``."""

    def summary(self) -> dict[str, Any]:
        """The numbers (JSON-ready), without the vectors."""
        return {"names": self.names, "layer": self.layer,
                "cos_shared_pc1": self.cos_shared_pc1, "pc1_variance": self.pc1_variance,
                "specific_norm": self.specific_norm, "cos_with_shared": self.cos_with_shared,
                "definition": "s = unit mean of the unit split directions; PC1 = top right "
                              "singular vector of the stacked unit directions (uncentred), "
                              "sign aligned with s; r_c = unit(d_c - (d_c . s) s)"}


def shared_axes(directions: Mapping[str, Any]) -> SharedAxes:
    """The shared axis, PC1 and specific parts of ``{split: Direction}`` (one layer).

    Example:
        >>> from types import SimpleNamespace as D
        >>> ax = shared_axes({"a": D(vector=torch.tensor([1., 0.]), layer=3),
        ...                   "b": D(vector=torch.tensor([0., 1.]), layer=3)})
        >>> [round(float(x), 4) for x in ax.shared], round(ax.specific_norm["a"], 4)
        ([0.7071, 0.7071], 0.7071)
    """
    if len(directions) < 2:
        raise UserError("a shared axis needs at least two split directions")
    layers = {int(d.layer) for d in directions.values()}
    if len(layers) > 1:
        raise UserError(f"the split directions sit at different layers {sorted(layers)}; "
                        "a shared axis needs one layer")
    names = list(directions)
    units = torch.stack([_unit(torch.as_tensor(directions[n].vector).float().reshape(-1))
                         for n in names])
    mean = units.mean(0)
    if float(mean.norm()) < 1e-8:
        raise UserError("the split directions cancel out: their mean is zero, no shared axis")
    s = mean / mean.norm()
    _, sing, vh = torch.linalg.svd(units.double(), full_matrices=False)
    pc1 = vh[0].float()
    if float(pc1 @ s) < 0:
        pc1 = -pc1
    power = sing ** 2
    out = SharedAxes(names=names, layer=layers.pop(), shared=s, pc1=pc1,
                     pc1_variance=float(power[0] / power.sum()),
                     cos_shared_pc1=float(pc1 @ s))
    for name, d in zip(names, units):
        out.cos_with_shared[name] = float(d @ s)
        rest = d - (d @ s) * s
        norm = float(rest.norm())
        out.specific_norm[name] = norm
        if norm > 1e-6:
            out.specific[name] = rest / norm
    return out


def axis_vectors(axes: SharedAxes, directions: Mapping[str, Any],
                 splits: Sequence[str]) -> dict[str, LayerVector]:
    """The sweep's vectors: ``d_c`` (named as the split, as in the steering stage), ``s``
    (:data:`SHARED_NAME`) and ``r_c`` (:func:`specific_name`), all unit, at the axes' layer.
    Splits whose ``d_c`` is parallel to ``s`` get no ``r_c``."""
    vectors = {SHARED_NAME: LayerVector(axes.shared, axes.layer, source="beyond.axes",
                                        meta={"what": "shared axis s"})}
    for split in splits:
        vectors[split] = LayerVector(_unit(torch.as_tensor(directions[split].vector).float()),
                                     axes.layer, source="directions", meta={"what": "d_c"})
        if split in axes.specific:
            vectors[specific_name(split)] = LayerVector(
                axes.specific[split], axes.layer, source="beyond.axes",
                meta={"what": "specific part r_c", "norm_before_unit":
                      axes.specific_norm[split]})
    return vectors


QUESTION = ("Does steering along the split's specific part r_c change how the model refuses "
            "(its refusal styles, against the shared axis s) without changing how often "
            "(RR against the baseline)?")


def axes_findings(table: Mapping[str, Mapping[str, Any]], axes: SharedAxes,
                  splits: Sequence[str], alpha: float, *, min_refusals: int = 5,
                  n_perm: int = 1000, seed: int = 0,
                  experiment: str = "style_vs_rate") -> list[Finding]:
    """One "style without rate" finding per split at ``alpha`` (r_c against s for style,
    against the baseline for RR; d_c's numbers beside), and one summary finding.

    Args:
        table: :func:`~.style_rate.style_rate_table` of the sweep.
        axes: the axes steered along.
        splits: the splits steered.
        alpha: the (matched) alpha the verdicts compare at.
    """
    def cid(name: str) -> str:
        return f"steer/{name}/a={format_alpha(alpha)}"

    findings = []
    for split in splits:
        context = {"alpha": alpha, "cos_d_s": axes.cos_with_shared[split],
                   "specific_norm": axes.specific_norm[split],
                   "rr_d": table.get(cid(split), {}).get("rr"),
                   "rr_s": table.get(cid(SHARED_NAME), {}).get("rr")}
        if split not in axes.specific:
            findings.append(Finding(experiment, QUESTION, measured="d_c is parallel to s",
                                    criterion="needs a specific part", verdict="not decidable",
                                    supported=None, subject=split, details=context))
            continue
        result = style_without_rate(table, cid(specific_name(split)), cid(SHARED_NAME),
                                    "baseline", min_refusals=min_refusals, n_perm=n_perm,
                                    seed=seed)
        findings.append(verdict_finding(experiment, QUESTION, split, result, **context))
    counts = Counter("supported" if f.supported else "not decidable" if f.supported is None
                     else "not supported" for f in findings)
    n_yes = counts.get("supported", 0)
    findings.append(Finding(
        experiment, "Is there one shared refusal axis, with split-specific parts that change "
        "only the style?",
        measured=(f"cos(s, PC1) = {axes.cos_shared_pc1:.3f}; PC1 explains "
                  f"{axes.pc1_variance:.1%} of the directions' (uncentred) variance; mean "
                  f"|r_c| before normalising {_mean(axes.specific_norm.values()):.3f}; "
                  f"style without rate in {n_yes}/{len(findings)} splits "
                  f"({counts.get('not decidable', 0)} not decidable) at alpha {alpha:g}"),
        criterion="supported when most decidable splits show style without rate",
        verdict=f"style without rate in {n_yes} of {len(findings)} splits",
        supported=(None if counts.get("not decidable", 0) == len(findings)
                   else n_yes > (len(findings) - counts.get("not decidable", 0)) / 2),
        subject="summary", details={**axes.summary(), "alpha": alpha, "counts": dict(counts)}))
    return findings


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _unit(v: torch.Tensor) -> torch.Tensor:
    norm = float(v.norm())
    if norm == 0:
        raise UserError("a split direction is the zero vector")
    return v / norm


__all__ = ["QUESTION", "SHARED_NAME", "SharedAxes", "axes_findings", "axis_vectors", "shared_axes", "specific_name"]
