"""What the stages of one run share: config, run folder, and lazily loaded model, suite,
activation cache, judges and executor (each built once, on the first stage that needs it;
the executor's workers are released by :meth:`RunContext.close` when the run ends)."""

from __future__ import annotations

from contextlib import ExitStack
from functools import cached_property
from pathlib import Path
from typing import Any

from ..activations import ActivationCache
from ..artifacts import read_json
from ..chat import ChatFormatter
from ..config import RunConfig
from ..data import read_suite_snapshot
from ..errors import UserError
from ..judges import get_judge
from ..models import load_model
from ..progress import console
from ..sweeps import Executor, get_executor
from .runfolder import RunFolder
from .stage import Stage
from .stages import STAGES


def check_layers(config: RunConfig, n_layers: int, model: str) -> None:
    """Layer settings fit the model: checked as soon as it is loaded, before any stage
    spends time on it. resid_pre layers run 0..n_layers (n_layers: the final norm's input);
    an SAE reads the input of a block, 0..n_layers - 1."""
    wanted = [("activations.layer", config.activations.layer, n_layers)]
    wanted += [("steering.layers", layer, n_layers) for layer in config.steering.layers or []]
    wanted.append(("sae.layer", config.sae.layer, n_layers - 1))
    for key, layer, top in wanted:
        if layer is not None and not 0 <= layer <= top:
            raise UserError(f"{key} = {layer} is out of range for {model}, which has layers "
                            f"0..{top}")


class RunContext:
    def __init__(self, config: RunConfig, run_dir: str | Path):
        self.config = config
        self.run = RunFolder(run_dir)
        self.stages: tuple[Stage, ...] = STAGES
        self._judges: dict[str, Any] = {}
        self._open = ExitStack()

    @cached_property
    def executor(self) -> Executor:
        """The run's one executor (``executor`` settings): every stage with work units
        (labels, layer scan, the sweeps) uses it, so a Ray executor's actors load the model
        once per run and serve every stage; :meth:`close` shuts them down."""
        return self._open.enter_context(get_executor(self.config.executor.name,
                                                     **self.config.executor.options()))

    def close(self) -> None:
        """Release the executor's workers (Ray actors); a later use starts new ones."""
        self.__dict__.pop("executor", None)
        self._open.close()

    @cached_property
    def lm(self):
        cfg = self.config.model
        with console.status(f"loading model {cfg.name}"):
            lm = load_model(cfg.name, dtype=cfg.dtype, device=cfg.device,
                            trust_remote_code=cfg.trust_remote_code,
                            chat_template=cfg.chat_template, device_map=cfg.device_map)
        check_layers(self.config, lm.n_layers, lm.name)
        return lm

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
