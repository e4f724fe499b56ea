"""What the stages of one run share: config, run folder, and lazily loaded model, suite,
activation cache and judges (loaded once, on the first stage that needs them)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from ..activations import ActivationCache
from ..artifacts import read_json
from ..chat import ChatFormatter
from ..config import RunConfig
from ..data import read_suite_snapshot
from ..judges import get_judge
from ..models import load_model
from ..progress import console
from .runfolder import RunFolder
from .stage import Stage
from .stages import STAGES


class RunContext:
    def __init__(self, config: RunConfig, run_dir: str | Path):
        self.config = config
        self.run = RunFolder(run_dir)
        self.stages: tuple[Stage, ...] = STAGES
        self._judges: dict[str, Any] = {}

    @cached_property
    def lm(self):
        cfg = self.config.model
        with console.status(f"loading model {cfg.name}"):
            return load_model(cfg.name, dtype=cfg.dtype, device=cfg.device,
                              trust_remote_code=cfg.trust_remote_code,
                              chat_template=cfg.chat_template)

    @cached_property
    def formatter(self) -> ChatFormatter:
        return ChatFormatter(self.lm.tokenizer, max_tokens=self.config.activations.max_prompt_tokens,
                             system_prompt=self.config.model.system_prompt)

    @cached_property
    def suite(self):
        return read_suite_snapshot(self.run.dir("prompts"))

    @cached_property
    def activation_cache(self) -> ActivationCache:
        return ActivationCache(self.config.activations.cache_dir, self.lm.cache_key)

    def judge(self, name: str, options: dict | None = None):
        key = f"{name}:{sorted((options or {}).items())}"
        if key not in self._judges:
            self._judges[key] = get_judge(name, **(options or {}))
        return self._judges[key]

    @property
    def layer(self) -> int:
        return int(read_json(self.run.dir("layer_scan") / "layer.json")["layer"])

    def stage_dir(self, name: str) -> Path:
        return self.run.dir(name)
