"""The pipeline: an explicit, ordered list of stages over one run folder.

The library (everything outside this package) takes models, prompts and tensors and
returns results; this package reads and writes the run folder around it. The library
never imports the pipeline.

* :mod:`.stage`: the :class:`Stage` type; :mod:`.stages`: the list, one module per stage.
* :mod:`.runfolder`: completion markers and fingerprints; :mod:`.runner`: plan and run.
* :mod:`.context`: what stages share (model, suite, judges); :mod:`.inputs`: typed
  readers of upstream artifacts; :mod:`.states`: each stage's state for the report.
"""

from .context import RunContext
from .runner import PlannedStage, plan, print_plan, required, run_pipeline, write_run_report
from .stage import Stage, model_settings, settings_of
from .stages import STAGES, stage_map
from .states import stage_states

__all__ = ["STAGES", "PlannedStage", "RunContext", "Stage", "model_settings", "plan",
           "print_plan", "required", "run_pipeline", "settings_of", "stage_map", "stage_states",
           "write_run_report"]
