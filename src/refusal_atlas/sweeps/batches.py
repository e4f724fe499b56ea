"""Batches of a sweep: every (condition, prompt) row to generate, cut into batches.

* :class:`SweepRow` - one generation: a (canonical) condition and a prompt.
* :class:`SweepBatch` - ``batch_size`` rows generated together; its output depends only on
  its rows (and the model), so batches can run in any order, in any process.
* :func:`plan_batches` - the plan: depends only on the grid, never on progress.
* :class:`BatchGenerator` - generates one batch (per-row interventions, one batched,
  KV-cached greedy run); any ``GenerateBatch`` callable can stand in for it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping, Sequence

from ..chat import pad_left
from ..errors import UserError
from ..generation import PromptCapture, decode, greedy_generate, stop_at_phrases, stop_token_ids
from .conditions import Condition, unique_conditions
from .interventions import row_interventions
from .prompts import SweepPrompt
from .vectors import LayerVector


@dataclass(frozen=True)
class SweepRow:
    """One row to generate.

    Args:
        condition: the canonical (generated) condition; alpha = 0 aliases are the baseline.
        prompt_id: the prompt's id.
        text: the prompt's text.
    """

    condition: Condition
    """The canonical (generated) condition."""
    prompt_id: str
    text: str


@dataclass(frozen=True)
class SweepBatch:
    """A batch of rows; its generation depends only on its rows (and the model).

    Batches are JSON-serialisable (:meth:`to_dict` / :meth:`from_dict`) so that an executor
    can ship them to other processes.

    Args:
        index: position in the plan.
        rows: the rows, in generation order.
    """

    index: int
    rows: tuple[SweepRow, ...]

    @property
    def key(self) -> str:
        """A short hash of the batch's (condition id, prompt id) rows."""
        h = hashlib.sha256()
        for r in self.rows:
            h.update(f"{r.condition.id}\x00{r.prompt_id}\x01".encode())
        return h.hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "rows": [{"condition": r.condition.to_dict(),
                                               "prompt_id": r.prompt_id, "text": r.text}
                                              for r in self.rows]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SweepBatch":
        return cls(int(data["index"]), tuple(
            SweepRow(Condition.from_dict(r["condition"]), r["prompt_id"], r["text"])
            for r in data["rows"]))


@dataclass
class BatchResult:
    """What generating one batch gives back.

    Args:
        batch: the batch generated.
        responses: one decoded response per row, in row order.
        n_tokens: new tokens per row.
        seconds: time spent generating the batch.
        oom_splits: how many times the batch was halved after running out of memory
            (:class:`~.backoff.OOMBackoff`).
        acts: the prompts' activations ``{layer: [rows, n_positions, d]}`` (CPU) when the
            generator was asked to capture them, else None.
    """

    batch: SweepBatch
    responses: list[str]
    n_tokens: list[int]
    seconds: float = 0.0
    oom_splits: int = 0
    acts: dict | None = None


GenerateBatch = Callable[[SweepBatch], BatchResult]
"""Generates one batch; :class:`BatchGenerator` is the one the engine uses by default."""


class BatchGenerator:
    """Generates one batch: per-row interventions, one batched KV-cached greedy run.

    Args:
        lm: a loaded model (:func:`refusal_atlas.models.load_model`).
        formatter: the model's :class:`~refusal_atlas.chat.ChatFormatter`.
        vectors: the vectors the conditions name.
        max_new_tokens: generation budget per row.
        capture: ``(layers, positions)``: also return each prompt's ``resid_pre`` there,
            read during the prefill (:class:`~refusal_atlas.generation.PromptCapture`);
            local only (a worker spec does not carry it).
        max_active: rows decoded at once; a batch with more rows decodes them as a running
            batch that others join as rows finish (continuous batching). None: all at once.
        stop_phrases: stop a row once its response holds one of these (a judge's
            ``settling_phrases``: its verdict cannot change after). None: only EOS and the
            budget stop a row.

    Example::

        generate_batch = BatchGenerator(lm, formatter, vectors, max_new_tokens=32)
        result = generate_batch(plan_batches(conditions, prompts, lengths, 16)[0])
    """

    def __init__(self, lm, formatter, vectors: Mapping[str, LayerVector], *,
                 max_new_tokens: int,
                 capture: tuple[Sequence[int], Sequence[int]] | None = None,
                 max_active: int | None = None, stop_phrases: Sequence[str] | None = None):
        self.lm = lm
        self.formatter = formatter
        self.vectors = vectors
        self.max_new_tokens = int(max_new_tokens)
        self.capture = capture
        self.stop = stop_token_ids(lm.model, lm.tokenizer)
        self.max_active = max_active
        self.stop_phrases = tuple(stop_phrases) if stop_phrases else None
        self._stop_when = (stop_at_phrases(lm.tokenizer, self.stop_phrases)
                           if self.stop_phrases else None)

    def worker_spec(self) -> dict[str, Any]:
        """What another process needs to build this generator again (plain data): the
        model's :func:`~refusal_atlas.models.load_model` arguments, the formatter's
        settings, the vectors and the budget (:func:`~.worker.generator_from_spec`).

        Example::

            spec = BatchGenerator(lm, formatter, vectors, max_new_tokens=32).worker_spec()
            spec["model"]["name_or_path"], sorted(spec["vectors"])
        """
        edits = [name for name, v in self.vectors.items() if v.edit is not None]
        if edits:
            raise UserError(f"vectors {edits} edit the hidden state with local code; run "
                            "them with the local executor")
        load_args = getattr(self.lm, "load_args", None)
        if not load_args:
            raise UserError("a remote executor needs a model loaded by load_model() (it loads "
                            "the same model again in every worker)")
        return {"model": dict(load_args),
                "formatter": {"max_tokens": self.formatter.max_tokens,
                              "system_prompt": self.formatter.system_prompt},
                "vectors": {name: {"vector": v.vector.tolist(), "layer": v.layer,
                                   "source": v.source,
                                   **({"basis": v.basis.tolist()} if v.basis is not None else {})}
                            for name, v in self.vectors.items()},
                "max_new_tokens": self.max_new_tokens, "max_active": self.max_active,
                "stop_phrases": list(self.stop_phrases) if self.stop_phrases else None}

    def __call__(self, batch: SweepBatch) -> BatchResult:
        start = time.perf_counter()
        encoded = pad_left([self.formatter.encode(r.text) for r in batch.rows],
                           self.formatter.pad_id)
        capture = PromptCapture(*self.capture) if self.capture else None
        with row_interventions(self.lm.model, [r.condition for r in batch.rows], self.vectors):
            ids = greedy_generate(self.lm.model, encoded, max_new_tokens=self.max_new_tokens,
                                  stop_ids=self.stop, capture=capture,
                                  max_active=self.max_active, stop_when=self._stop_when)
        acts = ({layer: a.cpu() for layer, a in capture.acts.items()}
                if capture is not None else None)
        return BatchResult(batch, [decode(self.lm.tokenizer, x) for x in ids],
                           [len(x) for x in ids], time.perf_counter() - start, acts=acts)


def plan_batches(conditions: Sequence[Condition], prompts: Sequence[SweepPrompt],
                 lengths: Mapping[str, int], batch_size: int, *,
                 dedupe: bool = True,
                 skip: Collection[tuple[str, str]] = ()) -> list[SweepBatch]:
    """Every generated (canonical condition, prompt) row, cut into batches of ``batch_size``.

    Rows are sorted so that ablation rows (which need the costlier ablation hooks) share
    batches, then by prompt length (longest first: less padding), then prompt id and
    condition order, so the plan depends only on the grid, never on progress.

    Args:
        conditions: the sweep's conditions.
        prompts: the sweep's prompts.
        lengths: ``{prompt id: prompt length in tokens}``.
        batch_size: rows per batch.
        dedupe: generate alpha = 0 conditions once, as the baseline.
        skip: (condition id, prompt id) rows not to generate (rows reused from another
            sweep); the rest are planned as if these were not in the grid.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    generated = unique_conditions(c.canonical() if dedupe else c for c in conditions)
    order = {c.id: i for i, c in enumerate(generated)}
    rows = [SweepRow(c, p.id, p.text) for c in generated for p in prompts
            if (c.id, p.id) not in skip]
    rows.sort(key=lambda r: (r.condition.kind == "ablate", -lengths[r.prompt_id], r.prompt_id,
                             order[r.condition.id]))
    return [SweepBatch(i, tuple(rows[s:s + batch_size]))
            for i, s in enumerate(range(0, len(rows), batch_size))]
