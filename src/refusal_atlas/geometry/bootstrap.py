"""Bootstrap stability of the directions: recompute them from resampled HR/BC activations.

Each split's rows are resampled with its own generator (seeded by the run seed and the
split's name), so a split's resamples do not depend on which other splits are present.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from .clustering import canonical_labels, k2_labels
from .cosine import to_numpy

__all__ = ["BootstrapResult", "bootstrap_stability", "pool_pair"]


@dataclass
class BootstrapResult:
    """Stability of the directions under resampling of the HR/BC training rows."""

    names: list[str]
    n_resamples: int
    n_hr_sample: int
    n_bc_sample: int
    seed: int
    per_split: dict[str, dict[str, Any]]  # within-split cosine mean/std, pool sizes, ...
    mean_cosine: np.ndarray  # [n, n] cosine matrix averaged over resamples
    std_cosine: np.ndarray  # [n, n] its std over resamples
    cross_split: list[dict[str, Any]]  # one row per split pair: a, b, mean, std
    reference_labels: list[int] | None  # k=2 average-linkage labels compared against
    k2_match_fraction: float | None  # resamples whose k=2 partition equals the reference
    k2_ari_mean: float | None  # mean adjusted Rand index to the reference
    reference: str = ""  # what reference_labels came from
    # [n, R, d] resampled unit directions; only with keep_directions=True, never serialised
    directions: np.ndarray | None = field(default=None, repr=False)

    def within(self, name: str) -> float:
        """Mean cosine between resampled directions of split ``name``."""
        return float(self.per_split[name]["within_mean"])

    def cross(self, a: str, b: str) -> float:
        """Mean over resamples of the cosine between splits ``a`` and ``b``."""
        i, j = self.names.index(a), self.names.index(b)
        return float(self.mean_cosine[i, j])

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "n_resamples": self.n_resamples,
            "n_hr_sample": self.n_hr_sample,
            "n_bc_sample": self.n_bc_sample,
            "seed": self.seed,
            "per_split": {k: dict(v) for k, v in self.per_split.items()},
            "mean_cosine": self.mean_cosine.tolist(),
            "std_cosine": self.std_cosine.tolist(),
            "cross_split": [dict(r) for r in self.cross_split],
            "reference": self.reference,
            "reference_labels": self.reference_labels,
            "k2_match_fraction": self.k2_match_fraction,
            "k2_ari_mean": self.k2_ari_mean,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BootstrapResult:
        return cls(
            names=list(d["names"]),
            n_resamples=int(d["n_resamples"]),
            n_hr_sample=int(d["n_hr_sample"]),
            n_bc_sample=int(d["n_bc_sample"]),
            seed=int(d["seed"]),
            per_split={k: dict(v) for k, v in d["per_split"].items()},
            mean_cosine=np.asarray(d["mean_cosine"], dtype=np.float64),
            std_cosine=np.asarray(d["std_cosine"], dtype=np.float64),
            cross_split=[dict(r) for r in d["cross_split"]],
            reference_labels=None if d.get("reference_labels") is None
            else [int(x) for x in d["reference_labels"]],
            k2_match_fraction=d.get("k2_match_fraction"),
            k2_ari_mean=d.get("k2_ari_mean"),
            reference=d.get("reference", ""),
        )


def pool_pair(name: str, pool: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (HR, BC) activation matrices of one split's bootstrap pool.

    Args:
        name: the split, for error messages.
        pool: ``(hr, bc)`` or ``{"hr": ..., "bc": ...}``, each [n, d_model], numpy or torch.
    """
    if isinstance(pool, Mapping):
        try:
            hr, bc = pool["hr"], pool["bc"]
        except KeyError:
            raise UserError(f"bootstrap pool {name!r} must have keys 'hr' and 'bc'") from None
    else:
        try:
            hr, bc = pool
        except (TypeError, ValueError):
            raise UserError(f"bootstrap pool {name!r} must be (hr, bc) activation matrices") \
                from None
    hr = to_numpy(hr, f"HR activations of {name!r}")
    bc = to_numpy(bc, f"BC activations of {name!r}")
    for what, m in (("HR", hr), ("BC", bc)):
        if m.ndim != 2 or m.shape[0] == 0:
            raise UserError(f"{what} activations of {name!r} must be a non-empty [n, d_model] "
                            f"matrix, got shape {tuple(m.shape)}")
        if not np.all(np.isfinite(m)):
            raise UserError(f"{what} activations of {name!r} contain NaN or infinite values")
    if hr.shape[1] != bc.shape[1]:
        raise UserError(f"HR and BC activations of {name!r} have different widths "
                        f"({hr.shape[1]} vs {bc.shape[1]})")
    return hr, bc


def _resample_means(x: np.ndarray, m: int, n_resamples: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, bool]:
    """[n_resamples, d] means of m rows drawn from x; without replacement iff pool > m."""
    n_pool = x.shape[0]
    replace = n_pool <= m
    if replace:
        idx = rng.integers(0, n_pool, size=(n_resamples, m))
    else:
        # the m smallest of n_pool uniform keys form a uniform random m-subset
        keys = rng.random((n_resamples, n_pool))
        idx = np.argpartition(keys, m - 1, axis=1)[:, :m]
    flat = (np.arange(n_resamples)[:, None] * n_pool + idx).ravel()
    weights = np.bincount(flat, minlength=n_resamples * n_pool).reshape(n_resamples, n_pool)
    return (weights / m) @ x, replace


def _split_rng(seed: int, name: str) -> np.random.Generator:
    """One generator per split, independent of the order (and number) of splits."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def bootstrap_stability(
    pools: Mapping[str, Any],
    *,
    n_resamples: int = 100,
    n_hr_sample: int = 32,
    n_bc_sample: int = 32,
    seed: int = 0,
    reference_labels: Sequence[int] | None = None,
    keep_directions: bool = False,
) -> BootstrapResult:
    """Resample each split's HR/BC rows and measure how stable the directions are.

    ``pools`` maps split name -> ``(hr, bc)`` (or ``{"hr": ..., "bc": ...}``), the HR
    activations [n_hr, d] and BC activations [n_bc, d] of the split's available pool
    (numpy or torch). Each resample draws ``n_hr_sample`` HR and ``n_bc_sample`` BC rows
    (without replacement when the pool is larger than the sample, otherwise with
    replacement) and recomputes d = unit(mean(HR) - mean(BC)).

    Reports per split the mean/std cosine between resampled directions of that split over
    all pairs of resamples ("within"), and the mean cosine of the resampled directions to
    the full-pool direction; per split pair the mean/std cosine between the two splits'
    directions of the same resample; the cosine matrix averaged over resamples; and how
    often a resample's average-linkage k=2 partition equals ``reference_labels`` (default:
    the partition of the full-pool directions), with the mean adjusted Rand index.
    ``keep_directions`` keeps the resampled directions [n, R, d] on the result.

    Args:
        pools: split name -> (hr, bc) activation matrices.
        n_resamples: number of resamples R (>= 2).
        n_hr_sample: HR rows drawn per resample.
        n_bc_sample: BC rows drawn per resample.
        seed: base seed; each split's generator also depends on its name.
        reference_labels: k=2 labels to compare resampled partitions with.
        keep_directions: keep the resampled unit directions on the result.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> pools = {s: (rng.normal(size=(20, 8)) + i, rng.normal(size=(20, 8)))
        ...          for i, s in enumerate("abc")}
        >>> boot = bootstrap_stability(pools, n_resamples=10, n_hr_sample=8, n_bc_sample=8)
        >>> [row["a"] + "-" + row["b"] for row in boot.cross_split]
        ['a-b', 'a-c', 'b-c']
    """
    from sklearn.metrics import adjusted_rand_score  # sklearn is slow to import; defer it

    if not isinstance(pools, Mapping) or len(pools) == 0:
        raise UserError("bootstrap needs a mapping from split name to (hr, bc) activations")
    n_resamples, n_hr_sample, n_bc_sample = int(n_resamples), int(n_hr_sample), int(n_bc_sample)
    if n_resamples < 2:
        raise UserError(f"bootstrap needs at least 2 resamples, got {n_resamples}")
    if n_hr_sample < 1 or n_bc_sample < 1:
        raise UserError("bootstrap sample sizes must be at least 1 row each")
    names = [str(k) for k in pools]
    n = len(names)
    dirs = []
    full = []
    per_split: dict[str, dict[str, Any]] = {}
    dim: int | None = None
    for name, pool in pools.items():
        hr, bc = pool_pair(str(name), pool)
        if dim is None:
            dim = hr.shape[1]
        elif hr.shape[1] != dim:
            raise UserError(f"bootstrap pools have different widths: {names[0]!r} has {dim}, "
                            f"{name!r} has {hr.shape[1]}")
        rng = _split_rng(seed, str(name))
        mu_hr, hr_replace = _resample_means(hr, n_hr_sample, n_resamples, rng)
        mu_bc, bc_replace = _resample_means(bc, n_bc_sample, n_resamples, rng)
        diff = mu_hr - mu_bc
        norms = np.linalg.norm(diff, axis=1)
        if np.any(norms == 0):
            raise UserError(f"split {name!r}: a resample has identical HR and BC means, so its "
                            "direction is undefined (are the HR and BC activations the same?)")
        d_res = diff / norms[:, None]
        full_diff = hr.mean(axis=0) - bc.mean(axis=0)
        full_norm = float(np.linalg.norm(full_diff))
        if full_norm == 0:
            raise UserError(f"split {name!r}: mean HR and BC activations are identical, so "
                            "its direction is undefined")
        d_full = full_diff / full_norm
        gram = d_res @ d_res.T
        pairs = gram[np.triu_indices(n_resamples, 1)]
        to_full = d_res @ d_full
        per_split[str(name)] = {
            "n_hr_pool": int(hr.shape[0]),
            "n_bc_pool": int(bc.shape[0]),
            "hr_sampling": "with_replacement" if hr_replace else "without_replacement",
            "bc_sampling": "with_replacement" if bc_replace else "without_replacement",
            "within_mean": float(pairs.mean()),
            "within_std": float(pairs.std()),
            "to_full_mean": float(to_full.mean()),
            "to_full_std": float(to_full.std()),
        }
        dirs.append(d_res)
        full.append(d_full)
    stacked = np.stack(dirs)  # [n, R, d]
    by_resample = np.ascontiguousarray(stacked.transpose(1, 0, 2))  # [R, n, d]
    per_resample = by_resample @ by_resample.transpose(0, 2, 1)  # [R, n, n]
    per_resample = np.clip(per_resample, -1.0, 1.0)
    mean_cos = per_resample.mean(axis=0)
    std_cos = per_resample.std(axis=0)
    np.fill_diagonal(mean_cos, 1.0)
    np.fill_diagonal(std_cos, 0.0)
    cross = [
        {"a": names[i], "b": names[j], "mean": float(mean_cos[i, j]), "std": float(std_cos[i, j])}
        for i in range(n) for j in range(i + 1, n)
    ]
    ref_labels = match = ari = None
    reference = ""
    if n >= 3:
        if reference_labels is not None:
            ref_labels = [int(x) for x in reference_labels]
            if len(ref_labels) != n:
                raise UserError(f"reference_labels has {len(ref_labels)} entries for {n} splits")
            reference = "given"
        else:
            f = np.stack(full)
            ref_labels = k2_labels(f @ f.T)
            reference = "full-pool directions, average linkage, k=2"
        cache: dict[tuple[int, ...], float] = {}  # few distinct partitions: score each once
        aris = []
        for c in per_resample:
            part = k2_labels(c)
            key = tuple(canonical_labels(np.asarray(part), range(n)))
            if key not in cache:
                cache[key] = float(adjusted_rand_score(ref_labels, part))
            aris.append(cache[key])
        aris = np.asarray(aris)
        match = float(np.mean(aris > 1.0 - 1e-9))
        ari = float(aris.mean())
    else:
        reference = "skipped: k=2 clustering needs at least 3 splits"
    return BootstrapResult(
        names=names, n_resamples=n_resamples, n_hr_sample=n_hr_sample,
        n_bc_sample=n_bc_sample, seed=int(seed), per_split=per_split, mean_cosine=mean_cos,
        std_cosine=std_cos, cross_split=cross, reference_labels=ref_labels,
        k2_match_fraction=match, k2_ari_mean=ari, reference=reference,
        directions=stacked if keep_directions else None,
    )
