"""Conditions of a sweep: what one row does to the model, and the grids and alphas to build them.

A :class:`Condition` is data with a stable string id (``baseline``, ``steer/NAME/a=10``,
``steer/NAME/L=12/a=10``, ``vector/NAME/a=30``, ``ablate/NAME``, ``edit/NAME``); the id is the key of a
results row, so its text never changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ..errors import UserError

KINDS = ("baseline", "steer", "vector", "ablate", "edit")
ADDITIVE = ("steer", "vector")


def format_alpha(alpha: float) -> str:
    """``10`` for 10.0, ``-2.5`` for -2.5: the shortest text that round-trips."""
    alpha = float(alpha)
    if alpha == 0:
        return "0"
    if alpha.is_integer() and abs(alpha) < 1e15:
        return str(int(alpha))
    return repr(alpha)


@dataclass(frozen=True)
class Condition:
    """One intervention, applied to every prompt of a sweep.

    ``layer`` is the ``resid_pre`` layer of an additive condition; ``None`` means the
    vector's own layer (the direction's, or the SAE's hook layer). Ablation acts on every
    layer and has no ``layer`` or ``alpha``.

    Args:
        kind: ``baseline``, ``steer`` (alpha * unit direction), ``vector`` (alpha * any
            vector, e.g. a sum of SAE decoder rows), ``ablate`` or ``edit`` (the named
            vector's edit of the hidden state at its layer, e.g. removing SAE latents'
            decoder terms).
        name: the name of the vector in the sweep's vectors (no ``/``).
        alpha: the multiplier of an additive condition.
        layer: the ``resid_pre`` layer of an additive condition (None: the vector's own).

    Example:
        >>> Condition("steer", "CocoNot_Safety", 10).id
        'steer/CocoNot_Safety/a=10'
    """

    kind: str
    name: str | None = None
    alpha: float | None = None
    layer: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"unknown condition kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        if self.kind == "baseline":
            if self.name is not None or self.alpha is not None or self.layer is not None:
                raise UserError("a baseline condition has no name, alpha or layer")
            return
        if not self.name or "/" in self.name:
            raise UserError(f"a {self.kind} condition needs a name without '/', got {self.name!r}")
        if self.kind == "ablate":
            if self.alpha is not None or self.layer is not None:
                raise UserError("an ablation condition has no alpha or layer "
                                "(it acts on all layers)")
            return
        if self.kind == "edit":
            if self.alpha is not None or self.layer is not None:
                raise UserError("an edit condition has no alpha or layer "
                                "(it acts at its vector's layer)")
            return
        if self.alpha is None or not math.isfinite(float(self.alpha)):
            raise UserError(f"{self.kind} condition {self.name!r} needs a finite alpha, "
                            f"got {self.alpha!r}")
        object.__setattr__(self, "alpha", float(self.alpha))
        if self.layer is not None:
            object.__setattr__(self, "layer", int(self.layer))

    @property
    def id(self) -> str:
        if self.kind == "baseline":
            return "baseline"
        if self.kind in ("ablate", "edit"):
            return f"{self.kind}/{self.name}"
        layer = f"/L={self.layer}" if self.layer is not None else ""
        return f"{self.kind}/{self.name}{layer}/a={format_alpha(self.alpha)}"

    @property
    def additive(self) -> bool:
        return self.kind in ADDITIVE

    @property
    def is_identity(self) -> bool:
        """True when the condition changes nothing: the baseline, or alpha = 0."""
        return self.kind == "baseline" or (self.additive and self.alpha == 0.0)

    def canonical(self) -> "Condition":
        """The condition actually generated: the baseline for identity conditions."""
        return BASELINE if self.is_identity else self

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "alpha": self.alpha,
                "layer": self.layer}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Condition":
        return cls(kind=data["kind"], name=data.get("name"), alpha=data.get("alpha"),
                   layer=data.get("layer"))

    @classmethod
    def from_id(cls, text: str) -> "Condition":
        """Inverse of :attr:`id`."""
        parts = text.strip().split("/")
        try:
            if parts == ["baseline"]:
                return BASELINE
            if parts[0] in ("ablate", "edit") and len(parts) == 2:
                return cls(parts[0], parts[1])
            if parts[0] in ADDITIVE and len(parts) in (3, 4) and parts[-1].startswith("a="):
                layer = None
                if len(parts) == 4:
                    if not parts[2].startswith("L="):
                        raise ValueError
                    layer = int(parts[2][2:])
                return cls(parts[0], parts[1], float(parts[-1][2:]), layer)
        except ValueError:
            pass
        raise UserError(f"cannot parse condition id {text!r} (e.g. baseline, "
                        "steer/NAME/a=10, steer/NAME/L=12/a=10, vector/NAME/a=10, ablate/NAME, "
                        "edit/NAME)")


BASELINE = Condition("baseline")


def unique_conditions(conditions: Iterable[Condition]) -> list[Condition]:
    """``conditions`` without repeated ids, first occurrence kept, order kept."""
    seen: dict[str, Condition] = {}
    for c in conditions:
        seen.setdefault(c.id, c)
    return list(seen.values())


def steering_grid(names: Sequence[str], alphas: Sequence[float], *,
                  layers: Sequence[int] | None = None, kind: str = "steer",
                  baseline: bool = True) -> list[Condition]:
    """``baseline`` + every name x layer x alpha (``layers=None``: each vector's own layer).

    Args:
        names: vector names, in the order the grid lists them.
        alphas: the multipliers.
        layers: ``resid_pre`` layers to steer at; None: each vector's own layer.
        kind: ``steer`` (directions) or ``vector`` (any other vector, e.g. SAE latents).
        baseline: start the grid with the baseline.

    Example:
        >>> [c.id for c in steering_grid(["A"], [0, 10])]
        ['baseline', 'steer/A/a=0', 'steer/A/a=10']
    """
    if kind not in ADDITIVE:
        raise UserError(f"a steering grid is of kind steer or vector, not {kind!r}")
    out = [BASELINE] if baseline else []
    for name in names:
        for layer in (layers if layers else [None]):
            out.extend(Condition(kind, name, float(a), layer) for a in alphas)
    return unique_conditions(out)


def ablation_grid(names: Sequence[str], *, baseline: bool = True) -> list[Condition]:
    """``baseline`` + ablating each of ``names``.

    Example:
        >>> [c.id for c in ablation_grid(["A", "B"])]
        ['baseline', 'ablate/A', 'ablate/B']
    """
    return unique_conditions(([BASELINE] if baseline else [])
                             + [Condition("ablate", n) for n in names])


# ---------------------------------------------------------------------------
# Alphas and the directions a sweep steers along


def round_sig(x: float, digits: int = 3) -> float:
    """``x`` rounded to ``digits`` significant digits (how 'auto' alphas are written)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(round(x, digits - 1 - int(math.floor(math.log10(abs(x))))))


def parse_alphas(text: str | Sequence[Any] | None) -> list[float] | str | None:
    """``'auto'``, ``'0,10,30'`` or a list -> ``'auto'`` or finite floats (duplicates dropped).

    Example:
        >>> parse_alphas("0, 10,30,10")
        [0.0, 10.0, 30.0]
    """
    if text is None:
        return None
    if isinstance(text, str):
        if text.strip().lower() == "auto":
            return "auto"
        items: list[Any] = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
    else:
        items = list(text)
    if not items:
        raise UserError("alphas: give comma-separated numbers (e.g. 0,10,30) or 'auto'")
    out: list[float] = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise UserError(f"alphas: {item!r} is not a number; give comma-separated numbers "
                            "(e.g. 0,10,30) or 'auto'") from None
        if not math.isfinite(value):
            raise UserError(f"alphas: {item!r} is not a finite number")
        if value not in out:
            out.append(value)
    return out


def resolve_alphas(setting: Sequence[float] | str, directions: Mapping[str, Any], *,
                   reference_gap: float = 119.2,
                   auto_alphas: Sequence[float] = (0, 10, 30, 60, 100)) -> tuple[list[float], dict]:
    """Explicit alphas, or 'auto': the paper's alphas x (mean projection gap / Gemma's gap).

    Args:
        setting: alphas as :func:`parse_alphas` takes them, or ``'auto'``.
        directions: ``{name: Direction}`` (only ``projection_gap`` is read).
        reference_gap: the projection gap the paper's alphas were chosen for.
        auto_alphas: the paper's alphas.

    Returns:
        ``(alphas, info)``; ``info`` is written to ``metrics.json`` / ``conditions.json``.
    """
    parsed = parse_alphas(setting)
    if parsed != "auto":
        return list(parsed), {"mode": "explicit", "alphas": list(parsed)}
    gaps = [float(d.projection_gap) for d in directions.values()]
    if not gaps:
        raise UserError("'auto' alphas need at least one direction")
    mean_gap = sum(gaps) / len(gaps)
    if not mean_gap > 0 or not reference_gap > 0:
        raise UserError(f"'auto' alphas need a positive projection gap (mean gap {mean_gap:.4g}, "
                        f"reference {reference_gap:.4g}); give explicit alphas")
    scale = mean_gap / reference_gap
    alphas = parse_alphas([round_sig(a * scale) for a in auto_alphas])
    return list(alphas), {"mode": "auto", "alphas": list(alphas), "paper_alphas": list(auto_alphas),
                          "mean_projection_gap": mean_gap, "reference_gap": reference_gap,
                          "scale": scale}


def select_directions(directions: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
    """``directions`` narrowed to ``names`` (None: all), in the order of ``names``."""
    if not directions:
        raise UserError("the run folder has no directions")
    if names is None:
        return dict(directions)
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise UserError("no directions selected")
    unknown = [n for n in names if n not in directions]
    if unknown:
        raise UserError(f"unknown direction(s) {', '.join(unknown)}; this run has "
                        f"{', '.join(directions)}")
    return {n: directions[n] for n in dict.fromkeys(names)}
