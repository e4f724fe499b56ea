"""The SAE module every other SAE stage uses, and the metadata it carries.

One :class:`SAE` class covers the three inference architectures refusal-atlas needs:

* ``jumprelu`` (Gemma Scope, dictionary_learning JumpReLU/BatchTopK, SAELens ``jumprelu``)::

      pre = x @ W_enc + b_enc
      f   = pre * (pre > threshold)

  exactly the formula of METHOD.md ("SAE analysis"). SAELens and dictionary_learning
  write it as ``relu(pre) * (pre > threshold)``; the two agree whenever
  ``threshold >= 0``, and the loaders clamp negative thresholds to 0 so that they agree
  always.
* ``relu`` (SAELens ``standard``, dictionary_learning ``AutoEncoder``): ``f = relu(pre)``.
* ``topk`` (SAELens ``topk``, dictionary_learning ``AutoEncoderTopK``): keep the ``k``
  largest entries of ``pre`` and apply ReLU to them (SAELens' order: top-k, then ReLU).
  Taking the top-k of ``relu(pre)`` instead (dictionary_learning's order) gives the same
  ``f``.

Decoding is ``x_hat = f @ W_dec + b_dec`` for every architecture.

If ``info.apply_b_dec_to_input`` is true, ``b_dec`` is subtracted from ``x`` before the
encoder (``pre = (x - b_dec) @ W_enc + b_enc``). Gemma Scope and dictionary_learning's
``JumpReluAutoEncoder``: false; SAELens' default, dictionary_learning's ``AutoEncoder``,
``AutoEncoderTopK`` and ``BatchTopKSAE``: true.

Input normalisation: no format refusal-atlas reads needs a run-time normalisation. A
constant input scale (SAELens' ``expected_average_only_in``, refusal-atlas' own training)
is folded into the weights on load / after training, so ``encode`` always takes raw
residual-stream activations; the folded constant is kept in ``info.extras["input_scale"]``
for reference only.

Layers follow the project convention (DEVELOPERS.md): ``info.hook_layer = L`` means the SAE
reads ``resid_pre`` of Hugging Face block ``L``, the input of ``model.layers[L]``
(= ``hidden_states[L]``). Gemma Scope "layer L" and TransformerLens
``blocks.L.hook_resid_post`` are the output of block ``L``, i.e. ``hook_layer = L + 1``;
``blocks.L.hook_resid_pre`` is ``hook_layer = L``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import nn

from ..errors import UserError

Architecture = Literal["jumprelu", "relu", "topk"]
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)

NEURONPEDIA_URL = "https://www.neuronpedia.org"

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"`` (the spelling SAELens' cfg.json uses)."""
    for name, value in _DTYPES.items():
        if value == dtype:
            return name
    raise UserError(f"unsupported SAE dtype {dtype}; use float32, float64, float16 or bfloat16")


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32"``, ``"torch.float32"`` or a ``torch.dtype`` -> ``torch.dtype``."""
    if isinstance(dtype, torch.dtype):
        dtype_name(dtype)  # validates
        return dtype
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise UserError(f"unsupported SAE dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
    return _DTYPES[name]


_TL_HOOK = re.compile(r"^blocks\.(\d+)\.hook_resid_(pre|post)$")
_HF_HOOK = re.compile(r"^model\.layers\.(\d+)(?:\.(input|output))?$")
_DL_HOOK = re.compile(r"^resid_(pre|post)_layer_(\d+)$")


def hook_layer_from_name(hook_name: str) -> int | None:
    """Map a source's hook name to our ``hook_layer`` (resid_pre index), or None if unknown.

    Understands TransformerLens names (``blocks.L.hook_resid_pre`` -> L,
    ``blocks.L.hook_resid_post`` -> L+1), Hugging Face module names
    (``model.layers.L.output`` -> L+1, ``model.layers.L.input`` -> L) and
    dictionary_learning's ``resid_post_layer_L`` -> L+1 / ``resid_pre_layer_L`` -> L.
    Other hook points (``hook_resid_mid``, ``hook_mlp_out``, ``attn.hook_z``, ...) are not
    residual-stream block boundaries and give None.
    """
    name = hook_name.strip()
    m = _TL_HOOK.match(name)
    if m:
        layer = int(m.group(1))
        return layer if m.group(2) == "pre" else layer + 1
    m = _HF_HOOK.match(name)
    if m:
        layer = int(m.group(1))
        return layer if m.group(2) == "input" else layer + 1
    m = _DL_HOOK.match(name)
    if m:
        layer = int(m.group(2))
        return layer if m.group(1) == "pre" else layer + 1
    return None


@dataclass
class SAEInfo:
    """What an SAE is and where it came from.

    Attributes:
        d_in: input width (must equal the model's ``hidden_size``).
        d_sae: number of latents.
        architecture: ``"jumprelu"``, ``"relu"`` or ``"topk"``.
        hook_layer: the SAE reads ``resid_pre`` of HF block ``hook_layer`` (input of
            ``model.layers[hook_layer]``); None if the source reads something else or
            does not say.
        k: number of active latents for ``topk`` (None otherwise).
        apply_b_dec_to_input: subtract ``b_dec`` from the input before encoding.
        hook_name: the hook point exactly as the source names it (``"layer_20"`` for Gemma
            Scope, ``"blocks.20.hook_resid_post"`` for SAELens, ``"resid_post_layer_19"``
            for dictionary_learning), for messages and provenance.
        model_name: the model the SAE was trained on, as the source names it.
        source: where it was loaded from (file, folder, hub path).
        source_format: ``"gemma_scope"``, ``"saelens"``, ``"dictionary_learning"`` or
            ``"refusal_atlas"`` (trained here).
        dtype: parameter dtype name (``"float32"``, ...).
        neuronpedia_id: e.g. ``"gemma-2-9b-it/20-gemmascope-res-16k"``; None when the SAE
            has no Neuronpedia dashboards (or we cannot tell which ones are its).
        extras: anything else worth keeping (JSON-serialisable): ``input_scale``,
            ``average_l0``, training settings, the source config, ...
    """

    d_in: int
    d_sae: int
    architecture: str
    hook_layer: int | None
    k: int | None = None
    apply_b_dec_to_input: bool = False
    hook_name: str | None = None
    model_name: str | None = None
    source: str | None = None
    source_format: str | None = None
    dtype: str = "float32"
    neuronpedia_id: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise UserError(
                f"unknown SAE architecture {self.architecture!r}; "
                f"refusal-atlas supports {', '.join(ARCHITECTURES)}"
            )
        if self.d_in <= 0 or self.d_sae <= 0:
            raise UserError(f"SAE sizes must be positive (d_in={self.d_in}, d_sae={self.d_sae})")
        if self.architecture == "topk":
            if self.k is None or not 0 < int(self.k) <= self.d_sae:
                raise UserError(
                    f"a topk SAE needs 0 < k <= d_sae={self.d_sae}, got k={self.k}"
                )
            self.k = int(self.k)
        if self.hook_layer is not None and self.hook_layer < 0:
            raise UserError(f"hook_layer must be >= 0, got {self.hook_layer}")
        parse_dtype(self.dtype)

    # ------------------------------------------------------------------ descriptions
    def hook_description(self) -> str:
        """E.g. ``"resid_pre of layer 21 (Gemma Scope layer 20)"``."""
        if self.hook_layer is None:
            where = "an unknown hook point" if not self.hook_name else f"hook {self.hook_name!r}"
            return f"{where} (not a resid_pre block boundary refusal-atlas can hook)"
        text = f"resid_pre of layer {self.hook_layer}"
        original = self.source_hook_label()
        if original:
            text += f" ({original})"
        return text

    def source_hook_label(self) -> str | None:
        """The source's own name for the hook point, phrased for humans."""
        if self.source_format == "gemma_scope" and self.hook_layer is not None:
            return f"Gemma Scope layer {self.hook_layer - 1}"
        if self.hook_name and self.hook_name != f"blocks.{self.hook_layer}.hook_resid_pre":
            return self.hook_name
        return None

    def neuronpedia_url(self, latent_index: int) -> str | None:
        """Neuronpedia dashboard of one latent, or None if this SAE has none we know of."""
        if not self.neuronpedia_id:
            return None
        if not 0 <= int(latent_index) < self.d_sae:
            raise UserError(f"latent index {latent_index} out of range for d_sae={self.d_sae}")
        return f"{NEURONPEDIA_URL}/{self.neuronpedia_id}/{int(latent_index)}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class SAE(nn.Module):
    """A sparse autoencoder: ``encode`` [..., d_in] -> [..., d_sae], ``decode`` back.

    Parameters: ``W_enc`` [d_in, d_sae], ``b_enc`` [d_sae], ``W_dec`` [d_sae, d_in],
    ``b_dec`` [d_in], and for ``jumprelu`` also ``threshold`` [d_sae]. Inputs of any float
    dtype are cast to the SAE's dtype; outputs are in the SAE's dtype.

    Parameters are frozen (``requires_grad=False``): SAEs here are used for analysis and
    steering. Call ``sae.requires_grad_(True)`` to differentiate through one.
    """

    threshold: nn.Parameter | None

    def __init__(self, info: SAEInfo, *, device: str | torch.device = "cpu"):
        super().__init__()
        self.info = info
        dtype = parse_dtype(info.dtype)
        kw = {"dtype": dtype, "device": device}
        self.W_enc = nn.Parameter(torch.zeros(info.d_in, info.d_sae, **kw))
        self.b_enc = nn.Parameter(torch.zeros(info.d_sae, **kw))
        self.W_dec = nn.Parameter(torch.zeros(info.d_sae, info.d_in, **kw))
        self.b_dec = nn.Parameter(torch.zeros(info.d_in, **kw))
        if info.architecture == "jumprelu":
            self.threshold = nn.Parameter(torch.zeros(info.d_sae, **kw))
        else:
            self.threshold = None
        self.requires_grad_(False)

    # ------------------------------------------------------------------ properties
    @property
    def d_in(self) -> int:
        return self.info.d_in

    @property
    def d_sae(self) -> int:
        return self.info.d_sae

    @property
    def architecture(self) -> str:
        return self.info.architecture

    @property
    def k(self) -> int | None:
        return self.info.k

    @property
    def hook_layer(self) -> int | None:
        return self.info.hook_layer

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    def neuronpedia_url(self, latent_index: int) -> str | None:
        return self.info.neuronpedia_url(latent_index)

    def extra_repr(self) -> str:
        k = f", k={self.k}" if self.k is not None else ""
        return (
            f"architecture={self.architecture}{k}, d_in={self.d_in}, d_sae={self.d_sae}, "
            f"reads {self.info.hook_description()}"
        )

    # ------------------------------------------------------------------ tensors
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The parameters by their canonical names (W_enc, b_enc, W_dec, b_dec[, threshold])."""
        out = {
            "W_enc": self.W_enc.detach(),
            "b_enc": self.b_enc.detach(),
            "W_dec": self.W_dec.detach(),
            "b_dec": self.b_dec.detach(),
        }
        if self.threshold is not None:
            out["threshold"] = self.threshold.detach()
        return out

    @classmethod
    def from_tensors(
        cls,
        info: SAEInfo,
        tensors: dict[str, torch.Tensor],
        *,
        device: str | torch.device = "cpu",
    ) -> SAE:
        """Build an SAE from canonical tensors, checking every shape (UserError if wrong).

        Tensors are copied and cast to ``info.dtype``.
        """
        required = ["W_enc", "b_enc", "W_dec", "b_dec"]
        if info.architecture == "jumprelu":
            required.append("threshold")
        missing = [name for name in required if name not in tensors]
        where = f" in {info.source}" if info.source else ""
        if missing:
            raise UserError(f"SAE weights{where} lack {', '.join(missing)}")
        d, n = info.d_in, info.d_sae
        expected = {
            "W_enc": (d, n),
            "b_enc": (n,),
            "W_dec": (n, d),
            "b_dec": (d,),
            "threshold": (n,),
        }
        for name in required:
            shape = tuple(tensors[name].shape)
            if shape != expected[name]:
                raise UserError(
                    f"SAE weight {name}{where} has shape {list(shape)}, expected "
                    f"{list(expected[name])} for d_in={d}, d_sae={n}"
                )
        sae = cls(info, device=device)
        with torch.no_grad():
            for name in required:
                getattr(sae, name).copy_(tensors[name].to(device=device, dtype=sae.dtype))
        return sae

    # ------------------------------------------------------------------ encode/decode
    def _as_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d_in:
            raise UserError(
                f"SAE input has width {x.shape[-1]}, but this SAE expects d_in={self.d_in}"
            )
        return x.to(device=self.device, dtype=self.dtype)

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """``(x [- b_dec]) @ W_enc + b_enc`` for ``x`` [..., d_in] -> [..., d_sae]."""
        x = self._as_input(x)
        if self.info.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """The architecture's nonlinearity applied to pre-activations."""
        arch = self.architecture
        if arch == "jumprelu":
            assert self.threshold is not None
            return pre * (pre > self.threshold)
        if arch == "relu":
            return torch.relu(pre)
        k = self.info.k
        assert k is not None
        values, indices = pre.topk(k, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations ``f`` [..., d_sae] for residual-stream activations ``x`` [..., d_in]."""
        return self.activation(self.pre_activations(x))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``f @ W_dec + b_dec`` for ``f`` [..., d_sae] -> [..., d_in]."""
        if f.shape[-1] != self.d_sae:
            raise UserError(
                f"latent tensor has width {f.shape[-1]}, but this SAE has d_sae={self.d_sae}"
            )
        f = f.to(device=self.device, dtype=self.dtype)
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``decode(encode(x))``."""
        return self.decode(self.encode(x))

    # ------------------------------------------------------------------ helpers
    def decoder_directions(self, latents: list[int] | torch.Tensor | None = None, *,
                           normalize: bool = False) -> torch.Tensor:
        """Rows of ``W_dec`` (optionally unit-normalised) for the given latents (all if None)."""
        rows = self.W_dec.detach()
        if latents is not None:
            idx = torch.as_tensor(latents, dtype=torch.long, device=rows.device)
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.d_sae):
                raise UserError(f"latent indices must lie in [0, {self.d_sae})")
            rows = rows[idx]
        if normalize:
            rows = rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return rows

    @torch.no_grad()
    def fold_input_scale(self, scale: float) -> None:
        """Make ``encode`` take raw ``x`` for an SAE trained on ``x * scale``.

        ``W_enc *= scale``, ``W_dec /= scale``, ``b_dec /= scale``; ``b_enc`` and
        ``threshold`` are unchanged, so the latent activations ``f`` are exactly those of
        the scaled SAE on ``x * scale``, and the reconstruction is in raw units. The scale
        is multiplied into ``info.extras["input_scale"]`` for the record.
        """
        scale = float(scale)
        if not scale > 0:
            raise UserError(f"input scale must be positive, got {scale}")
        self.W_enc.mul_(scale)
        self.W_dec.div_(scale)
        self.b_dec.div_(scale)
        self.info.extras["input_scale"] = float(self.info.extras.get("input_scale", 1.0)) * scale


def check_compatible(sae: SAE, *, d_model: int, layer: int, n_layers: int | None = None) -> None:
    """Raise UserError unless ``sae`` can be applied at ``resid_pre`` of ``layer``.

    ``layer`` uses the project convention (input of ``model.layers[layer]``); ``d_model`` is
    the model's hidden size and ``n_layers`` its number of blocks, if known.
    """
    info = sae.info
    what = f"this SAE ({info.model_name})" if info.model_name else "this SAE"
    if info.d_in != d_model:
        raise UserError(
            f"{what} has width d_in={info.d_in}, but the model's residual stream has "
            f"d_model={d_model}; it belongs to a different model"
        )
    if info.hook_layer is None:
        raise UserError(
            f"{what} reads {info.hook_description()}; refusal-atlas can only apply SAEs "
            "trained on the residual stream at a block boundary"
        )
    if n_layers is not None and not 0 <= info.hook_layer < n_layers:
        raise UserError(
            f"{what} reads {info.hook_description()}, but the model has only {n_layers} "
            f"layers (resid_pre exists for layers 0..{n_layers - 1})"
        )
    if n_layers is not None and not 0 <= layer < n_layers:
        raise UserError(f"layer {layer} is out of range for a model with {n_layers} layers")
    if layer != info.hook_layer:
        raise UserError(
            f"{what} reads {info.hook_description()}, but you asked for layer {layer}"
        )
