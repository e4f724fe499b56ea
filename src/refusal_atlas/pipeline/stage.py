"""The stage type: one step of the pipeline, as data.

A stage names the stages it reads from, the config settings its result depends on (its
fingerprint input), and the one function that reads its inputs from the run folder, calls
the library and writes its artifacts. Stages are listed, in order, in
:mod:`refusal_atlas.pipeline.stages`; nothing registers itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..config import RunConfig
from .runfolder import fingerprint

if TYPE_CHECKING:  # the context imports the stage list, which imports this module
    from .context import RunContext


@dataclass(frozen=True)
class Stage:
    name: str
    deps: tuple[str, ...]
    settings: Callable[[RunConfig], Any]
    """The settings the stage's result depends on (fingerprint input). Performance-only
    settings (batch sizes, device) stay out, so changing them never redoes work."""
    run: Callable[["RunContext", Path, bool], dict]
    """run(ctx, stage_dir, resuming) -> summary (JSON-ready)."""
    description: str
    enabled: Callable[[RunConfig], bool] = lambda cfg: True
    disabled_by: str | None = None
    """The setting that turns the stage off, for messages ("sae.enabled = false")."""
    needs_model: bool = True
    outputs: tuple[str, ...] = ()
    """The artifacts (paths in the stage folder) that ``_done.json`` vouches for by hash."""
    keeps: Callable[[RunConfig], Any] | None = None
    """The settings the stage's resumable stores depend on, where fewer than ``settings``:
    when only the others changed (same ``keeps``, same upstream), the stage runs again
    resuming from what its folder holds instead of starting afresh (``labels``: a larger
    demand labels only the extra prompts)."""
    check: Callable[["RunContext"], None] | None = None
    """Validates the stage's inputs before anything runs or is cleared: files exist and
    parse, names are known, finished upstream artifacts load. Cheap and model-free; raises
    :class:`~refusal_atlas.errors.UserError`."""

    def upstream(self, ctx: "RunContext") -> dict[str, str | None]:
        """The completion ids of the stages it reads."""
        return {d: ctx.run.completion_id(d) for d in self.deps}

    def fingerprint(self, ctx: "RunContext") -> str:
        """What this stage's finished folder must record to be current: its settings and
        the completions of the stages it reads."""
        return fingerprint(self.settings(ctx.config), self.upstream(ctx))


def settings_of(section) -> dict:
    """A config section as fingerprint input: only values that differ from the defaults,
    so adding a new setting to refusal-atlas does not invalidate existing run folders."""
    return section.model_dump(mode="json", exclude_defaults=True)


def model_settings(cfg: RunConfig) -> dict:
    """What identifies the model's behaviour: every stage that runs the model depends on it."""
    m = cfg.model
    return {"name": m.name, "dtype": m.dtype, "chat_template": m.chat_template,
            "system_prompt": m.system_prompt, "max_prompt_tokens": cfg.activations.max_prompt_tokens}


def file_setting(path: str) -> str | None:
    """Fingerprint input for a user file: its content hash (None when it does not exist)."""
    p = Path(path).expanduser()
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else None
