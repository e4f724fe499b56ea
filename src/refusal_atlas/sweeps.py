"""Steering and ablation sweeps: a grid of conditions, batched per row, resumable.

The paper's central experiment steers along every category's direction over a range of
alphas (and ablates every direction), judges every response and compares the refusal
rate on harmful prompts (RR) with the over-refusal rate on benign prompts (ORR).

Pieces (see ``docs/steering.md``)
---------------------------------
* :class:`Condition` is data: ``baseline``, ``steer`` (alpha * unit direction),
  ``vector`` (alpha * any vector, e.g. a sum of SAE decoder rows) or ``ablate``, with a
  stable string id (``baseline``, ``steer/CocoNot_Safety/a=10``,
  ``steer/CocoNot_Safety/L=12/a=10``, ``vector/sae_core/a=30``, ``ablate/WildGuard_all``).
* A *bank* ``{name: SteeringVector(vector, layer)}`` supplies the vectors conditions name.
  Directions enter through :func:`bank_from_directions`; anything else that is "a
  per-row additive vector at some layer" (SAE latents) is just another bank entry.
* Every (condition, prompt) is a row. Rows are sorted (no-ablation first, then by prompt
  length) and cut into :class:`WorkUnit` s of ``batch_size`` rows; one unit is one
  batched, KV-cached greedy generation in which every row carries its own intervention:
  one :func:`hooks.add_to_resid_pre` per layer used (per-row vectors, zero rows where
  unused) plus one :func:`hooks.ablate_direction` (per-row directions, zero rows where
  unused) when a row of the unit ablates. A unit's output depends only on its rows.
* Additive conditions with ``alpha == 0`` are the baseline by construction (the hook adds
  exact zeros); they are generated once, as ``baseline``, and stored under their own id
  too (``generated_as`` says so).
* An :class:`Executor` runs units (``LocalExecutor`` in-process; others register with
  :func:`register_executor`) and yields results as units finish; the engine appends every
  finished row to the :class:`ResultsStore` at once, so a killed sweep resumes where it
  stopped and never duplicates a row (key: condition id + prompt id).
* Judging: instant judges (substring) judge each unit inline; slow ones (WildGuard) run as
  a second resumable pass over ``responses.jsonl`` so a kill between passes loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import torch

from . import hooks
from .artifacts import append_jsonl, read_jsonl, write_json
from .errors import UserError
from .progress import console, progress_bar

KINDS = ("baseline", "steer", "vector", "ablate")
ADDITIVE = ("steer", "vector")
GROUPS = ("HR", "HC", "BR", "BC")
RESULTS_FILE = "results.jsonl"
RESPONSES_FILE = "responses.jsonl"
GAP_UNCERTAINTY = {"n_boot": 1000, "n_perm": 1000, "seed": 0}
"""Bootstrap / permutation settings for the trade-off gap in ``metrics.json``."""

# ---------------------------------------------------------------------------
# Conditions


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
        if self.kind == "ablate":
            return f"ablate/{self.name}"
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
            if parts[0] == "ablate" and len(parts) == 2:
                return cls("ablate", parts[1])
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
                        "steer/NAME/a=10, steer/NAME/L=12/a=10, vector/NAME/a=10, ablate/NAME)")


BASELINE = Condition("baseline")


def steering_grid(names: Sequence[str], alphas: Sequence[float], *,
                  layers: Sequence[int] | None = None, kind: str = "steer",
                  baseline: bool = True) -> list[Condition]:
    """``baseline`` + every name x layer x alpha (``layers=None``: each vector's own layer)."""
    if kind not in ADDITIVE:
        raise UserError(f"a steering grid is of kind steer or vector, not {kind!r}")
    out = [BASELINE] if baseline else []
    for name in names:
        for layer in (layers if layers else [None]):
            out.extend(Condition(kind, name, float(a), layer) for a in alphas)
    return _unique(out)


def ablation_grid(names: Sequence[str], *, baseline: bool = True) -> list[Condition]:
    return _unique(([BASELINE] if baseline else []) + [Condition("ablate", n) for n in names])


def _unique(conditions: Iterable[Condition]) -> list[Condition]:
    seen: dict[str, Condition] = {}
    for c in conditions:
        seen.setdefault(c.id, c)
    return list(seen.values())


# ---------------------------------------------------------------------------
# Vectors


@dataclass
class SteeringVector:
    """A vector conditions can name: added as ``alpha * vector`` at ``resid_pre`` of
    ``layer`` (``steer`` / ``vector``), or projected out everywhere (``ablate``, unit only)."""

    vector: torch.Tensor
    layer: int
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vector = torch.as_tensor(self.vector).detach().float().reshape(-1).cpu()
        self.layer = int(self.layer)

    @property
    def norm(self) -> float:
        return float(self.vector.norm())


def bank_from_directions(directions: Mapping[str, Any]) -> dict[str, SteeringVector]:
    """``{split: SteeringVector}`` from :func:`directions.load_directions` output."""
    return {name: SteeringVector(d.vector, d.layer, source="directions",
                                 meta={"projection_gap": float(d.projection_gap)})
            for name, d in directions.items()}


def latent_sum_vector(decoder: torch.Tensor, latents: Sequence[int], layer: int, *,
                      source: str = "sae") -> SteeringVector:
    """The SAE steering vector of METHOD.md: sum of the selected decoder rows ``W_dec[latents]``
    (``decoder`` is ``[n_latents, d_model]``), added at ``resid_pre`` of ``layer``."""
    idx = torch.as_tensor(list(latents), dtype=torch.long)
    if idx.numel() == 0:
        raise UserError("an SAE steering vector needs at least one latent")
    return SteeringVector(decoder.detach().float()[idx].sum(0), layer, source=source,
                          meta={"latents": [int(i) for i in idx]})


def check_conditions(conditions: Sequence[Condition], bank: Mapping[str, SteeringVector],
                     model=None) -> None:
    """Every named vector exists, ablation vectors are unit, layers exist in ``model``."""
    missing = sorted({c.name for c in conditions if c.kind != "baseline" and c.name not in bank})
    if missing:
        raise UserError(f"unknown direction(s) {', '.join(missing)}; available: "
                        f"{', '.join(bank) or 'none'}")
    dims = {v.vector.numel() for v in bank.values()}
    if len(dims) > 1:
        raise UserError(f"steering vectors have different sizes {sorted(dims)}")
    for c in conditions:
        if c.kind == "ablate" and abs(bank[c.name].norm - 1.0) > 1e-3:
            raise UserError(f"ablation needs a unit vector; {c.name!r} has norm "
                            f"{bank[c.name].norm:.4g}")
    if model is not None:
        d_model = int(model.config.hidden_size)
        if dims and dims != {d_model}:
            raise UserError(f"steering vectors have {dims.pop()} dimensions but the model has "
                            f"{d_model}")
        for c in conditions:
            if c.additive:
                layer = resolved_layer(c, bank)
                if not 0 <= layer < hooks.n_layers(model):
                    raise UserError(f"layer {layer} of condition {c.id} is out of range: the model "
                                    f"has layers 0..{hooks.n_layers(model) - 1}")


def resolved_layer(condition: Condition, bank: Mapping[str, SteeringVector]) -> int | None:
    if not condition.additive:
        return None
    return condition.layer if condition.layer is not None else bank[condition.name].layer


@contextmanager
def row_interventions(model, conditions: Sequence[Condition],
                      bank: Mapping[str, SteeringVector]) -> Iterator[None]:
    """One batch, one condition per row: per-row add-hooks (one per layer used) and one
    per-row ablation hook. Rows that do not use a hook get a zero row in it, which leaves
    them exactly untouched; hooks no row needs are not registered at all."""
    adds: dict[int, list[int]] = {}
    ablate_rows: list[int] = []
    for row, c in enumerate(conditions):
        if c.additive and c.alpha != 0.0:
            adds.setdefault(resolved_layer(c, bank), []).append(row)
        elif c.kind == "ablate":
            ablate_rows.append(row)
    d = next(iter(bank.values())).vector.numel() if bank else 0
    n = len(conditions)
    with ExitStack() as stack:
        for layer in sorted(adds):
            vectors = torch.zeros(n, d)
            alphas = torch.zeros(n)
            for row in adds[layer]:
                vectors[row] = bank[conditions[row].name].vector
                alphas[row] = conditions[row].alpha
            stack.enter_context(hooks.add_to_resid_pre(model, layer, vectors, alpha=alphas))
        if ablate_rows:
            directions = torch.zeros(n, d)
            for row in ablate_rows:
                v = bank[conditions[row].name].vector
                directions[row] = v / v.norm()
            stack.enter_context(hooks.ablate_direction(model, directions))
        yield


# ---------------------------------------------------------------------------
# Prompts


@dataclass(frozen=True)
class SweepPrompt:
    id: str
    text: str
    harmful: bool
    group: str | None = None
    """The base model's label (HR / HC / BR / BC), None when unknown."""
    split: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------
# Work units and executors


@dataclass(frozen=True)
class WorkRow:
    condition: Condition
    """The canonical (generated) condition."""
    prompt_id: str
    text: str


@dataclass(frozen=True)
class WorkUnit:
    """A batch of rows; its generation depends only on its rows (and the model)."""

    index: int
    rows: tuple[WorkRow, ...]

    @property
    def key(self) -> str:
        h = hashlib.sha256()
        for r in self.rows:
            h.update(f"{r.condition.id}\x00{r.prompt_id}\x01".encode())
        return h.hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "rows": [{"condition": r.condition.to_dict(),
                                               "prompt_id": r.prompt_id, "text": r.text}
                                              for r in self.rows]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "WorkUnit":
        return cls(int(data["index"]), tuple(
            WorkRow(Condition.from_dict(r["condition"]), r["prompt_id"], r["text"])
            for r in data["rows"]))


@dataclass
class UnitResult:
    unit: WorkUnit
    responses: list[str]
    n_tokens: list[int]
    seconds: float = 0.0


Worker = Callable[[WorkUnit], UnitResult]


class Executor(Protocol):
    """Runs independent work units; yields each result as its unit finishes (any order)."""

    name: str

    def run(self, units: Sequence[WorkUnit], worker: Worker) -> Iterator[UnitResult]: ...


class LocalExecutor:
    """In this process, one unit after another."""

    name = "local"

    def run(self, units: Sequence[WorkUnit], worker: Worker) -> Iterator[UnitResult]:
        for unit in units:
            yield worker(unit)


_EXECUTORS: dict[str, Callable[..., Executor]] = {"local": LocalExecutor}


def register_executor(name: str, factory: Callable[..., Executor]) -> None:
    _EXECUTORS[name.strip().lower()] = factory


def get_executor(name: str = "local", **options: Any) -> Executor:
    key = str(name).strip().lower()
    if key not in _EXECUTORS:
        raise UserError(f"unknown executor {name!r}; executors: {', '.join(sorted(_EXECUTORS))}")
    return _EXECUTORS[key](**options)


class GenerationWorker:
    """Generates one unit: per-row interventions, one batched KV-cached greedy run."""

    def __init__(self, lm, formatter, bank: Mapping[str, SteeringVector], *, max_new_tokens: int):
        from .generation import stop_token_ids

        self.lm = lm
        self.formatter = formatter
        self.bank = bank
        self.max_new_tokens = int(max_new_tokens)
        self.stop = stop_token_ids(lm.model, lm.tokenizer)

    def __call__(self, unit: WorkUnit) -> UnitResult:
        from .chat import pad_left
        from .generation import decode, greedy_generate

        start = time.perf_counter()
        batch = pad_left([self.formatter.encode(r.text) for r in unit.rows], self.formatter.pad_id)
        with row_interventions(self.lm.model, [r.condition for r in unit.rows], self.bank):
            ids = greedy_generate(self.lm.model, batch, max_new_tokens=self.max_new_tokens,
                                  stop_ids=self.stop)
        return UnitResult(unit, [decode(self.lm.tokenizer, x) for x in ids], [len(x) for x in ids],
                          time.perf_counter() - start)


def plan_units(conditions: Sequence[Condition], prompts: Sequence[SweepPrompt],
               lengths: Mapping[str, int], batch_size: int, *,
               dedupe: bool = True) -> list[WorkUnit]:
    """Every generated (canonical condition, prompt) row, cut into units of ``batch_size``.

    Rows are sorted so that ablation rows (which need the costlier ablation hooks) share
    units, then by prompt length (longest first: less padding), then prompt id and
    condition order, so the plan depends only on the grid, never on progress.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    generated = _unique(c.canonical() if dedupe else c for c in conditions)
    order = {c.id: i for i, c in enumerate(generated)}
    rows = [WorkRow(c, p.id, p.text) for c in generated for p in prompts]
    rows.sort(key=lambda r: (r.condition.kind == "ablate", -lengths[r.prompt_id], r.prompt_id,
                             order[r.condition.id]))
    return [WorkUnit(i, tuple(rows[s:s + batch_size]))
            for i, s in enumerate(range(0, len(rows), batch_size))]


# ---------------------------------------------------------------------------
# Results store


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (a writer killed mid-append) so the next append starts clean."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)


class ResultsStore:
    """``responses.jsonl`` (generated, not yet judged) and ``results.jsonl`` (judged rows),
    keyed by (condition id, prompt id); appends are fsynced as each unit finishes."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.responses_path = self.folder / RESPONSES_FILE
        self.results_path = self.folder / RESULTS_FILE

    @staticmethod
    def key(row: Mapping[str, Any]) -> tuple[str, str]:
        return row["condition"], row["prompt_id"]

    def _read(self, path: Path, judge_name: str | None = None) -> dict[tuple[str, str], dict]:
        out: dict[tuple[str, str], dict] = {}
        for row in read_jsonl(path):
            if judge_name is None or row.get("judge") == judge_name:
                out.setdefault(self.key(row), row)
        return out

    def generated(self) -> dict[tuple[str, str], dict]:
        """Every row with a response (judged or not)."""
        rows = self._read(self.responses_path)
        for key, row in self._read(self.results_path).items():
            rows.setdefault(key, row)
        return rows

    def judged(self, judge_name: str | None = None) -> dict[tuple[str, str], dict]:
        return self._read(self.results_path, judge_name)

    def append(self, path: Path, rows: list[dict]) -> None:
        if rows:
            _repair_tail(path)
            append_jsonl(path, rows)


# ---------------------------------------------------------------------------
# The engine


@dataclass
class SweepResult:
    rows: list[dict]
    """One judged row per (condition, prompt), in condition then prompt order."""
    stats: dict[str, Any]


def _judge_inline(judge, mode: str) -> bool:
    if mode not in ("auto", "inline", "two_pass"):
        raise UserError(f"judge mode must be auto, inline or two_pass, got {mode!r}")
    if mode != "auto":
        return mode == "inline"
    from .judges import SubstringJudge

    return isinstance(judge, SubstringJudge) or bool(getattr(judge, "inline", False))


def _response_row(c: Condition, generated_as: Condition, p: SweepPrompt,
                  bank: Mapping[str, SteeringVector], response: str, n_tokens: int) -> dict:
    return {"condition": c.id, "kind": c.kind, "direction": c.name, "alpha": c.alpha,
            "layer": resolved_layer(c, bank), "generated_as": generated_as.id,
            "prompt_id": p.id, "split": p.split, "group": p.group, "harmful": p.harmful,
            "prompt": p.text, "response": response, "n_tokens": int(n_tokens)}


def _with_judgement(row: Mapping[str, Any], j) -> dict:
    from .labels import assign_label

    return {**row, "judge": j.judge, "refused": j.refused,
            "label": assign_label(row["harmful"], j.refused),
            "judge_raw": j.raw, "parse_error": bool(j.parse_error or j.refused is None),
            "approximate": bool(j.approximate)}


def run_sweep(lm, formatter, prompts: Sequence[SweepPrompt], conditions: Sequence[Condition],
              bank: Mapping[str, SteeringVector], folder: str | Path, *, max_new_tokens: int,
              batch_size: int, judge, executor: Executor | None = None,
              worker: Worker | None = None, judge_mode: str = "auto", dedupe: bool = True,
              judge_chunk: int = 256, description: str = "sweep") -> SweepResult:
    """Generate and judge every (condition, prompt) row, resuming from ``folder``.

    ``worker`` defaults to a :class:`GenerationWorker` on ``lm``; ``executor`` to
    :class:`LocalExecutor`. ``dedupe=False`` generates alpha = 0 rows with their (zero)
    hooks instead of reusing the baseline (for tests and benchmarks).
    """
    conditions = _unique(conditions)
    if not conditions:
        raise UserError("a sweep needs at least one condition")
    if not prompts:
        raise UserError("a sweep needs at least one prompt")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise UserError("sweep prompt ids must be unique")
    check_conditions(conditions, bank, lm.model if lm is not None else None)
    executor = executor or LocalExecutor()
    worker = worker or GenerationWorker(lm, formatter, bank, max_new_tokens=max_new_tokens)
    inline = _judge_inline(judge, judge_mode)
    store = ResultsStore(folder)
    store.folder.mkdir(parents=True, exist_ok=True)
    by_id = {p.id: p for p in prompts}

    aliases: dict[str, list[Condition]] = {}
    for c in conditions:
        aliases.setdefault((c.canonical() if dedupe else c).id, []).append(c)
    lengths = {p.id: len(formatter.encode(p.text)) for p in prompts}
    units = plan_units(conditions, prompts, lengths, batch_size, dedupe=dedupe)

    # ---- pass 1: generation (judged inline for instant judges)
    have = store.generated()

    def missing(unit: WorkUnit) -> bool:
        return any((a.id, r.prompt_id) not in have
                   for r in unit.rows for a in aliases[r.condition.id])

    todo = [u for u in units if missing(u)]
    n_rows = sum(len(u.rows) for u in units)
    n_todo = sum(len(u.rows) for u in todo)
    gen_seconds, gen_tokens, gen_rows = 0.0, 0, 0
    wall = time.perf_counter()
    with progress_bar(f"{description}: generate", total=n_rows, unit="rows") as bar:
        bar.advance(n_rows - n_todo)
        for result in executor.run(todo, worker):
            new_rows: list[dict] = []
            for r, text, n_tok in zip(result.unit.rows, result.responses, result.n_tokens):
                for a in aliases[r.condition.id]:
                    if (a.id, r.prompt_id) not in have:
                        new_rows.append(_response_row(a, r.condition, by_id[r.prompt_id], bank,
                                                      text, n_tok))
                gen_tokens += n_tok
            gen_rows += len(result.unit.rows)
            gen_seconds += result.seconds
            if inline and new_rows:
                verdicts = judge.judge([by_id[x["prompt_id"]].text for x in new_rows],
                                       [x["response"] for x in new_rows])
                new_rows = [_with_judgement(x, j) for x, j in zip(new_rows, verdicts)]
                store.append(store.results_path, new_rows)
            else:
                store.append(store.responses_path, new_rows)
            for x in new_rows:
                have[store.key(x)] = x
            bar.advance(len(result.unit.rows))
    wall = time.perf_counter() - wall

    lost = sum((c.id, p.id) not in have for c in conditions for p in prompts)
    if lost:
        raise RuntimeError(f"executor {getattr(executor, 'name', executor)!r} returned no result "
                           f"for {lost} rows; re-run to resume")

    # ---- pass 2: judge what is generated but not judged by this judge
    judged = store.judged(judge.name)
    pending = [have[(c.id, p.id)] for c in conditions for p in prompts
               if (c.id, p.id) not in judged]
    if pending:
        _judge_pass(judge, store, pending, by_id, judge_chunk, description)
        judged = store.judged(judge.name)

    rows = []
    for c in conditions:
        for p in prompts:
            row = judged.get((c.id, p.id))
            if row is None:
                raise RuntimeError(f"sweep row {c.id} / {p.id} is missing after the sweep")
            rows.append(row)
    stats = {
        "n_conditions": len(conditions), "n_prompts": len(prompts),
        "n_result_rows": len(rows), "n_generated_rows_planned": n_rows,
        "n_generated_rows_this_run": gen_rows, "n_units": len(units),
        "n_units_this_run": len(todo), "dedupe_alpha0": dedupe,
        "n_aliased_rows": len(conditions) * len(prompts) - n_rows,
        "generation_seconds": round(wall, 3), "worker_seconds": round(gen_seconds, 3),
        "new_tokens": gen_tokens,
        "rows_per_s": round(gen_rows / wall, 3) if gen_rows and wall > 0 else None,
        "tokens_per_s": round(gen_tokens / wall, 3) if gen_tokens and wall > 0 else None,
        "judge": judge.name, "judge_mode": "inline" if inline else "two_pass",
        "executor": getattr(executor, "name", type(executor).__name__),
    }
    return SweepResult(rows, stats)


def _judge_pass(judge, store: ResultsStore, pending: list[dict], by_id: Mapping[str, SweepPrompt],
                chunk: int, description: str) -> None:
    """Judge each distinct (generated condition, prompt, response) once; append every alias."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in pending:
        groups.setdefault((row.get("generated_as", row["condition"]), row["prompt_id"],
                           row["response"]), []).append(row)
    keys = list(groups)
    with progress_bar(f"{description}: judge ({judge.name})", total=len(keys), unit="rows") as bar:
        for s in range(0, len(keys), chunk):
            part = keys[s:s + chunk]
            verdicts = judge.judge([by_id[k[1]].text for k in part], [k[2] for k in part])
            if len(verdicts) != len(part):
                raise RuntimeError(f"judge {judge.name} returned {len(verdicts)} verdicts for "
                                   f"{len(part)} rows")
            out = []
            for k, j in zip(part, verdicts):
                out.extend(_with_judgement(_strip_judgement(r), j) for r in groups[k])
            store.append(store.results_path, out)
            bar.advance(len(part))


_JUDGE_FIELDS = ("judge", "refused", "label", "judge_raw", "parse_error", "approximate")


def _strip_judgement(row: Mapping[str, Any]) -> dict:
    return {k: v for k, v in row.items() if k not in _JUDGE_FIELDS}


# ---------------------------------------------------------------------------
# Alphas, directions and prompts for the stages


def _round_sig(x: float, digits: int = 3) -> float:
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(round(x, digits - 1 - int(math.floor(math.log10(abs(x))))))


def parse_alphas(text: str | Sequence[Any] | None) -> list[float] | str | None:
    """``'auto'``, ``'0,10,30'`` or a list -> ``'auto'`` or finite floats (duplicates dropped)."""
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
    """Explicit alphas, or 'auto': the paper's alphas x (mean projection gap / Gemma's gap)."""
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
    alphas = parse_alphas([_round_sig(a * scale) for a in auto_alphas])
    return list(alphas), {"mode": "auto", "alphas": list(alphas), "paper_alphas": list(auto_alphas),
                          "mean_projection_gap": mean_gap, "reference_gap": reference_gap,
                          "scale": scale}


def select_directions(directions: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
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


def controlled_test_prompts(suite, test_set) -> list[SweepPrompt]:
    by_id = suite.by_id()
    out = []
    for group in GROUPS:
        for pid in test_set.groups.get(group, []):
            p = by_id[pid]
            out.append(SweepPrompt(p.id, p.text, p.harmful, group, p.split))
    if not out:
        raise UserError("the controlled test set is empty (pools.test_per_group = 0?)")
    return out


def file_prompts(path: str | Path, suite=None, labels: Mapping[str, str | None] | None = None
                 ) -> list[SweepPrompt]:
    """A labelled prompt file (JSON list or JSONL): rows with ``id`` and ``prompt``/``text``
    and ``harmful`` and optional ``group``/``label`` (HR/HC/BR/BC) and ``split``. A row with
    only an ``id`` takes the rest from the run's suite; a missing group comes from the base
    labels of the run."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"prompt file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if path.suffix.lower() == ".json" else \
            [json.loads(x) for x in text.splitlines() if x.strip()]
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON/JSONL ({exc.msg})") from None
    by_id = suite.by_id() if suite is not None else {}
    labels = labels or {}
    out, seen = [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "id" not in row:
            raise UserError(f"{path}: row {i + 1} needs an 'id'")
        pid = str(row["id"])
        if pid in seen:
            raise UserError(f"{path}: prompt id {pid!r} appears twice")
        seen.add(pid)
        ref = by_id.get(pid)
        text_ = row.get("prompt", row.get("text", ref.text if ref else None))
        group = row.get("group", row.get("label", labels.get(pid)))
        if group is not None and group not in GROUPS:
            raise UserError(f"{path}: row {i + 1} has group {group!r}; use HR, HC, BR or BC")
        harmful = row.get("harmful", ref.harmful if ref else (group in ("HR", "HC") if group
                                                              else None))
        if text_ is None or harmful is None:
            raise UserError(f"{path}: row {i + 1} ({pid}) needs 'prompt' and 'harmful' "
                            "(or an id of this run's suite)")
        out.append(SweepPrompt(pid, str(text_), bool(harmful), group,
                               str(row.get("split", ref.split if ref else ""))))
    if not out:
        raise UserError(f"{path} has no prompts")
    return out


def _file_sha(path: str) -> str | None:
    p = Path(path).expanduser()
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else None


def _prompts_setting(value: str) -> dict:
    if value == "test_set":
        return {"prompts": value}
    return {"prompts": value, "sha256": _file_sha(value)}


# ---------------------------------------------------------------------------
# Stages


def sweep_prompts(ctx) -> list[SweepPrompt]:
    """The prompts every sweep of a run uses: the controlled test set, or a labelled file."""
    from .labels import load_label_records, load_test_set

    setting = ctx.config.steering.prompts
    if setting == "test_set":
        test_set = load_test_set(ctx.stage_dir("test_set"))
        return controlled_test_prompts(ctx.suite, test_set)
    labels = {r.prompt_id: r.label for r in load_label_records(ctx.stage_dir("labels"))}
    return file_prompts(setting, ctx.suite, labels)


def _stage_directions(ctx) -> dict[str, Any]:
    from .directions import load_directions

    folder = ctx.stage_dir("directions")
    if not (folder / "directions.json").exists():
        raise UserError(f"{ctx.run.root} has no directions: run `refusal-atlas directions "
                        f"--out {ctx.run.root}` first")
    return select_directions(load_directions(folder), ctx.config.steering.directions)


def _write_stage(ctx, out_dir: Path, result: SweepResult, *, judge, alpha_info: dict | None,
                 ablation: bool) -> dict:
    from . import metrics as M

    summary = M.summarise(result.rows, judge=judge.name,
                          approximate=bool(getattr(judge, "approximate", False)),
                          alphas=alpha_info, uncertainty=GAP_UNCERTAINTY)
    summary["sweep"] = result.stats
    write_json(out_dir / "metrics.json", summary)
    if ablation:
        M.plot_ablation(summary["ablation"], out_dir / "ablation.png",
                        baseline=summary["conditions"].get("baseline"))
    else:
        M.plot_dose_response(summary["dose_response"], out_dir / "dose_response.png",
                             judge=judge.name)
        M.plot_tradeoff(summary["dose_response"], out_dir / "tradeoff.png",
                        gap=summary["tradeoff_gap"], judge=judge.name)
    return M.compact_summary(summary)


def run_steering_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.steering
    directions = _stage_directions(ctx)
    alphas, alpha_info = resolve_alphas(cfg.alphas, directions,
                                        reference_gap=cfg.auto_reference_gap,
                                        auto_alphas=cfg.auto_alphas)
    conditions = steering_grid(list(directions), alphas, layers=cfg.layers)
    return _run_stage(ctx, out_dir, directions, conditions, alpha_info, ablation=False)


def run_ablation_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    directions = _stage_directions(ctx)
    return _run_stage(ctx, out_dir, directions, ablation_grid(list(directions)), None,
                      ablation=True)


def _run_stage(ctx, out_dir: Path, directions, conditions, alpha_info, *, ablation: bool) -> dict:
    cfg = ctx.config.steering
    prompts = sweep_prompts(ctx)
    bank = bank_from_directions(directions)
    judge = ctx.judge(cfg.judge, cfg.judge_options)
    write_json(out_dir / "conditions.json",
               {"conditions": [c.to_dict() for c in conditions], "alphas": alpha_info,
                "directions": list(directions), "n_prompts": len(prompts),
                "prompts": cfg.prompts, "max_new_tokens": cfg.max_new_tokens,
                "judge": judge.name})
    result = run_sweep(ctx.lm, ctx.formatter, prompts, conditions, bank, out_dir,
                       max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, judge=judge,
                       executor=get_executor(cfg.executor),
                       description="ablation" if ablation else "steering")
    summary = _write_stage(ctx, out_dir, result, judge=judge, alpha_info=alpha_info,
                           ablation=ablation)
    console.print(_one_line(summary, ablation))
    return summary


def _one_line(summary: dict, ablation: bool) -> str:
    gap = summary.get("tradeoff_gap") or {}
    if ablation or gap.get("value") is None:
        return f"{summary['n_conditions']} conditions, {summary['n_rows']} rows judged"
    return (f"trade-off gap (max |ΔORR| at matched RR): {gap['value']:.3f} "
            f"({' vs '.join(gap['pair'])} at RR={gap['at_rr']:.2f})")


def _steering_settings(cfg) -> dict:
    s = cfg.steering
    return {"alphas": s.alphas, "auto_reference_gap": s.auto_reference_gap,
            "auto_alphas": s.auto_alphas, "directions": s.directions,
            "layers": getattr(s, "layers", None), "max_new_tokens": s.max_new_tokens,
            "judge": s.judge, "judge_options": s.judge_options, **_prompts_setting(s.prompts)}


def _ablation_settings(cfg) -> dict:
    s = cfg.steering
    return {"directions": s.directions, "max_new_tokens": s.max_new_tokens, "judge": s.judge,
            "judge_options": s.judge_options, **_prompts_setting(s.prompts)}


def _stages():
    from .pipeline import Stage

    return [
        Stage("steering", ("directions", "test_set", "labels"), _steering_settings,
              run_steering_stage, "steer along every direction over the alphas; RR / ORR"),
        Stage("ablation", ("directions", "test_set", "labels"), _ablation_settings,
              run_ablation_stage, "ablate every direction; RR / ORR",
              enabled=lambda c: bool(c.steering.ablation)),
    ]


def _register() -> None:
    from .pipeline import register_stages

    register_stages(_stages)


_register()


# ---------------------------------------------------------------------------
# Re-judging a results store with a second judge


def rejudge(stage_dir: str | Path, judge, *, description: str = "rejudge",
            chunk: int = 256) -> dict:
    """Judge a finished sweep's responses with ``judge``; report agreement with the first judge.

    Writes ``rejudge/<judge>/results.jsonl`` (resumable), ``metrics.json`` and
    ``agreement.json`` (overall and per condition, via :func:`judges.judge_agreement`).
    """
    from . import metrics as M
    from .judges import Judgement, judge_agreement

    stage_dir = Path(stage_dir)
    primary = list(ResultsStore(stage_dir).judged().values())
    if not primary:
        raise UserError(f"{stage_dir} has no judged results ({RESULTS_FILE}) to re-judge")
    first = primary[0]["judge"]
    if judge.name == first:
        raise UserError(f"the results in {stage_dir} are already judged by {judge.name!r}; "
                        "choose another judge")
    out = stage_dir / "rejudge" / judge.name
    store = ResultsStore(out)
    prompts = _prompts_from_rows(primary, stage_dir)
    done = store.judged(judge.name)
    pending = [_strip_judgement(r) for r in primary if ResultsStore.key(r) not in done]
    if pending:
        _judge_pass(judge, store, pending, prompts, chunk, description)
        done = store.judged(judge.name)
    second = [done[ResultsStore.key(r)] for r in primary]

    def as_judgements(rows):
        return [Judgement(refused=r["refused"], raw=r.get("judge_raw", ""), judge=r["judge"],
                          parse_error=bool(r.get("parse_error"))) for r in rows]

    overall = judge_agreement(as_judgements(primary), as_judgements(second))
    overall.pop("excluded_rows", None)
    per_condition = {}
    for cid in dict.fromkeys(r["condition"] for r in primary):
        idx = [i for i, r in enumerate(primary) if r["condition"] == cid]
        agr = judge_agreement(as_judgements([primary[i] for i in idx]),
                              as_judgements([second[i] for i in idx]))
        per_condition[cid] = {k: agr[k] for k in ("n", "agreement", "kappa", "refusal_rate_a",
                                                  "refusal_rate_b", "excluded")}
    agreement = {"judge_a": first, "judge_b": judge.name, "overall": overall,
                 "per_condition": per_condition}
    write_json(out / "agreement.json", agreement)
    summary = M.summarise(second, judge=judge.name,
                          approximate=bool(getattr(judge, "approximate", False)),
                          uncertainty=GAP_UNCERTAINTY)
    write_json(out / "metrics.json", summary)
    return agreement


def _prompts_from_rows(rows: list[dict], stage_dir: Path) -> dict[str, SweepPrompt]:
    """Prompt texts for re-judging: stored in each row (older rows: the run's suite snapshot)."""
    out: dict[str, SweepPrompt] = {}
    need = [r for r in rows if "prompt" not in r]
    by_id = {}
    if need:
        from .suites import read_suite_snapshot

        snapshot = stage_dir.parent / "prompts"
        if not (snapshot / "prompts.jsonl").exists():
            raise UserError(f"cannot re-judge {stage_dir}: its rows carry no prompt text and the "
                            f"run's prompt snapshot {snapshot} is missing")
        by_id = read_suite_snapshot(snapshot).by_id()
    for r in rows:
        pid = r["prompt_id"]
        if pid in out:
            continue
        text = r.get("prompt")
        if text is None:
            if pid not in by_id:
                raise UserError(f"prompt {pid!r} of {stage_dir} is not in the run's suite")
            text = by_id[pid].text
        out[pid] = SweepPrompt(pid, text, bool(r["harmful"]), r.get("group"), r.get("split", ""))
    return out
