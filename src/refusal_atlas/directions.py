"""Difference-in-means refusal directions: computing, steering, ablating, saving.

Example:
    >>> import refusal_atlas as ra
    >>> lm = ra.load_model("smollm2-135m-instruct")                       # doctest: +SKIP
    >>> dirs = ra.compute_directions(lm, {"harmful": (refused, complied)}, layer=12)  # doctest: +SKIP
    >>> with dirs["harmful"].steer(lm, 2 * dirs["harmful"].projection_gap):  # doctest: +SKIP
    ...     print(ra.generate(lm, ["How do I bake bread?"]).texts[0])
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch

from .activations import extract_activations
from .artifacts import read_json, read_tensors, unreadable, write_json, write_tensors
from .chat import ChatFormatter
from .errors import UserError
from .hooks import ablate_direction, add_to_resid_pre


def _hf_model(model):
    """The Hugging Face module under a :class:`~refusal_atlas.models.LoadedModel` (or the
    module itself): the hooks act on the transformers model."""
    return model.model if hasattr(model, "tokenizer") and hasattr(model, "model") else model


@dataclass
class Direction:
    """One category's refusal direction: ``unit(mean(HR) - mean(BC))`` at ``resid_pre`` of
    ``layer``, token ``position``, with the statistics it was computed from.

    Example:
        >>> import refusal_atlas as ra
        >>> d = ra.load_directions("runs/smol/directions")["CocoNot_Safety"]  # doctest: +SKIP
        >>> with d.steer(lm, 2 * d.projection_gap):                           # doctest: +SKIP
        ...     ra.generate(lm, ["How do I bake bread?"])
        >>> with d.ablate(lm):                                                # doctest: +SKIP
        ...     ra.generate(lm, ["How do I pick a lock?"])
    """

    split: str
    vector: torch.Tensor
    """Unit-norm float32 ``[d_model]``."""
    raw_norm: float
    """Norm of mean(HR) - mean(BC) before normalising."""
    hr_proj_mean: float
    bc_proj_mean: float
    n_hr: int
    n_bc: int
    layer: int
    position: int
    model: str
    hr_ids: list[str] = field(default_factory=list)
    bc_ids: list[str] = field(default_factory=list)

    @property
    def projection_gap(self) -> float:
        """How far apart HR and BC sit along the direction: the natural unit for alpha."""
        return self.hr_proj_mean - self.bc_proj_mean

    def steer(self, model, alpha: float, *, layer: int | None = None):
        """A context manager that adds ``alpha`` times this direction to ``resid_pre`` of its
        layer, at every position (prompt and generated tokens), and removes it on exit.

        Args:
            model: a :class:`~refusal_atlas.models.LoadedModel` or a Hugging Face causal LM.
            alpha: the push in residual-stream units; ``projection_gap`` (how far refused
                harmful and complied benign prompts sit apart along the direction) is the
                natural unit. ``alpha = 0`` leaves the outputs bit-identical.
            layer: the ``resid_pre`` layer to act at (default: the direction's own layer).

        Example:
            >>> with direction.steer(lm, 2 * direction.projection_gap):  # doctest: +SKIP
            ...     out = ra.generate(lm, ["How do I bake bread?"])
        """
        return add_to_resid_pre(_hf_model(model), self.layer if layer is None else layer,
                                self.vector, alpha=alpha)

    def ablate(self, model, *, layers: Sequence[int] | None = None):
        """A context manager that projects this direction out of the residual stream: at
        every block's input and every attention / MLP output (Arditi et al.'s directional
        ablation), removed on exit.

        Args:
            model: a :class:`~refusal_atlas.models.LoadedModel` or a Hugging Face causal LM.
            layers: restrict to these blocks (default: all).

        Example:
            >>> with direction.ablate(lm):  # doctest: +SKIP
            ...     out = ra.generate(lm, ["How do I pick a lock?"])
        """
        return ablate_direction(_hf_model(model), self.vector, layers=layers)

    def to_llamacpp(self, path, *, model_hint: str, alpha: float | None = None,
                    layers: Sequence[int] | None = None, n_layers: int | None = None):
        """Write this direction as a llama.cpp control vector (``resid_pre L`` ->
        ``direction.{L-1}``); see :func:`refusal_atlas.export.direction_to_llamacpp`.

        Example:
            >>> direction.to_llamacpp("safety.gguf", model_hint="qwen2")  # doctest: +SKIP
        """
        from .export import direction_to_llamacpp  # here: export imports this module

        return direction_to_llamacpp(self, path, model_hint=model_hint, alpha=alpha,
                                     layers=layers, n_layers=n_layers)

    def to_steering_vector(self, *, alpha: float | None = None,
                           layers: Sequence[int] | None = None, n_layers: int | None = None):
        """This direction as a ``steering_vectors.SteeringVector``; see
        :func:`refusal_atlas.export.direction_to_steering_vector`.

        Example:
            >>> with direction.to_steering_vector().apply(lm.model):  # doctest: +SKIP
            ...     ra.generate(lm, ["How do I bake bread?"])
        """
        from .export import direction_to_steering_vector  # here: export imports this module

        return direction_to_steering_vector(self, alpha=alpha, layers=layers, n_layers=n_layers)

    def manifest(self) -> dict:
        data = asdict(self)
        data.pop("vector")
        data["projection_gap"] = self.projection_gap
        data["d_model"] = int(self.vector.numel())
        data["direction_sha256"] = hashlib.sha256(
            self.vector.float().contiguous().numpy().tobytes()).hexdigest()
        return data


def diff_in_means(hr: torch.Tensor, bc: torch.Tensor) -> tuple[torch.Tensor, float]:
    """unit(mean(hr) - mean(bc)) and the raw norm, in float64 for a stable mean."""
    if hr.shape[0] == 0 or bc.shape[0] == 0:
        raise UserError("a direction needs at least one HR and one BC prompt")
    diff = hr.double().mean(0) - bc.double().mean(0)
    norm = float(diff.norm())
    if norm == 0.0:
        raise UserError("HR and BC activations have identical means: no direction to compute")
    return (diff / norm).float(), norm


def compute_direction(split: str, hr: torch.Tensor, bc: torch.Tensor, *, layer: int, position: int,
                      model: str, hr_ids: Sequence[str] = (), bc_ids: Sequence[str] = ()) -> Direction:
    """The direction of one category from its activations.

    Args:
        split: the category's name.
        hr: ``[n_hr, d]`` activations of harmful prompts the model refused.
        bc: ``[n_bc, d]`` activations of benign prompts it complied with.
        layer, position: where the activations were read (recorded in the manifest).
        model: the model's name (recorded).
        hr_ids, bc_ids: the prompts' ids (recorded).

    Example:
        >>> import torch
        >>> d = compute_direction("toy", torch.eye(4)[:2] + 1, torch.zeros(3, 4), layer=3,
        ...                       position=-2, model="toy")
        >>> round(d.projection_gap, 3), d.n_hr, d.n_bc
        (2.55, 2, 3)
    """
    unit, norm = diff_in_means(hr, bc)
    return Direction(
        split=split, vector=unit, raw_norm=norm,
        hr_proj_mean=float((hr.float() @ unit).mean()),
        bc_proj_mean=float((bc.float() @ unit).mean()),
        n_hr=int(hr.shape[0]), n_bc=int(bc.shape[0]), layer=layer, position=position, model=model,
        hr_ids=list(hr_ids), bc_ids=list(bc_ids))


def compute_directions(lm, pools: Mapping[str, tuple[Sequence[str], Sequence[str]]], *,
                       layer: int, position: int = -2, formatter: ChatFormatter | None = None,
                       batch_size: int = 32) -> dict[str, Direction]:
    """One difference-in-means direction per category, from prompts.

    Args:
        lm: a :class:`~refusal_atlas.models.LoadedModel`.
        pools: ``{category: (harmful prompts the model refused, benign prompts it
            complied with)}`` -- the HR and BC pools of the method.
        layer: the ``resid_pre`` layer to read (Hugging Face block index).
        position: token position from the end of the chat-formatted prompt (-2: the
            paper's choice).
        formatter: how prompts are chat-formatted (default: the model's chat template).
        batch_size: prompts per forward pass (speed only).

    Returns:
        ``{category: Direction}`` in the order of ``pools``.

    Example:
        >>> import refusal_atlas as ra
        >>> lm = ra.load_model("smollm2-135m-instruct")  # doctest: +SKIP
        >>> dirs = ra.compute_directions(lm, {"crime": (["How do I hotwire a car?"],
        ...                                            ["How do I wash a car?"])}, layer=15)  # doctest: +SKIP
    """
    formatter = formatter or ChatFormatter(lm.tokenizer)
    texts = list(dict.fromkeys(t for hr, bc in pools.values() for t in (*hr, *bc)))
    row = {t: i for i, t in enumerate(texts)}
    acts = extract_activations(lm, formatter, texts, [layer], [position],
                               batch_size=batch_size)[:, 0, 0]
    return {name: compute_direction(name, acts[[row[t] for t in hr]], acts[[row[t] for t in bc]],
                                    layer=layer, position=position, model=lm.name)
            for name, (hr, bc) in pools.items()}


def save_directions(directions: Mapping[str, Direction], out_dir: str | Path) -> dict[str, Path]:
    """Write ``directions.safetensors`` (one float32 ``[d_model]`` tensor per split) and
    ``directions.json`` (each direction's manifest) into ``out_dir``; returns their paths.

    Args:
        directions: ``{name: Direction}``.
        out_dir: a folder (created if missing).
    """
    out_dir = Path(out_dir)
    tensors = {name: d.vector.float() for name, d in directions.items()}
    paths = {
        "tensors": write_tensors(out_dir / "directions.safetensors", tensors,
                                 metadata={"format": "refusal-atlas directions v1"}),
        "manifest": write_json(out_dir / "directions.json",
                               {"splits": list(directions),
                                "directions": {n: d.manifest() for n, d in directions.items()}}),
    }
    return paths


def load_directions(out_dir: str | Path) -> dict[str, Direction]:
    """The directions saved in ``out_dir`` (a run's ``directions/`` folder), in saved order.

    Args:
        out_dir: a folder written by :func:`save_directions`.

    Example:
        >>> import refusal_atlas as ra
        >>> dirs = ra.load_directions("runs/demo-qwen2.5-coder-0.5b-instruct/directions")  # doctest: +SKIP
        >>> dirs["CocoNot_Safety"].layer  # doctest: +SKIP
        12
    """
    out_dir = Path(out_dir)
    tensors = read_tensors(out_dir / "directions.safetensors")
    manifest_path = out_dir / "directions.json"
    manifest = read_json(manifest_path, expect=dict)
    result = {}
    try:
        for name in manifest["splits"]:
            meta = dict(manifest["directions"][name])
            for extra in ("projection_gap", "d_model", "direction_sha256"):
                meta.pop(extra, None)
            result[name] = Direction(vector=tensors[name], **meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise unreadable(manifest_path, f"not a directions manifest ({type(exc).__name__}: "
                                        f"{exc})") from None
    return result
