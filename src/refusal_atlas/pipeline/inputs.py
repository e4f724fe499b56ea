"""Typed readers of the artifacts that one stage writes and later stages read.

The file names live here and in the stage that writes them, never in the library: the
library takes records, pools and tensors, not run folders.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts import read_json, read_jsonl
from ..directions import load_directions
from ..errors import UserError
from ..labels import LabelRecord
from ..pools import TestSet, TrainingPools
from ..sae.analysis import LatentAnalysis
from ..sae.loaders import load_sae, load_saelens_dir

LABELS_FILE = "labels.jsonl"
RESPONSES_FILE = "responses.jsonl"
POOLS_FILE = "pools.json"
TEST_SET_FILE = "test_set.json"
SAE_JSON = "sae.json"
ANALYSIS_JSON = "analysis.json"


def load_label_records(labels_dir: Path) -> list[LabelRecord]:
    rows = {r["prompt_id"]: r for r in read_jsonl(Path(labels_dir) / LABELS_FILE)}
    return [LabelRecord(**r) for r in rows.values()]


def load_training_pools(pools_dir: Path) -> TrainingPools:
    return TrainingPools.from_dict(read_json(Path(pools_dir) / POOLS_FILE))


def load_test_set(test_set_dir: Path) -> TestSet:
    return TestSet.from_dict(read_json(Path(test_set_dir) / TEST_SET_FILE))


def run_directions(ctx) -> dict:
    """The run's directions, or one line saying how to make them."""
    folder = ctx.stage_dir("directions")
    if not (folder / "directions.json").exists():
        raise UserError(f"{ctx.run.root} has no directions: run `refusal-atlas directions "
                        f"--out {ctx.run.root}` first")
    return load_directions(folder)


def run_sae(run_dir: str | Path, *, device: str = "cpu"):
    """``(SAE, sae.json)`` of a run folder's finished ``sae`` stage."""
    folder = Path(run_dir) / "sae"
    if not (folder / SAE_JSON).exists():
        raise UserError(f"{run_dir} has no SAE: run `refusal-atlas sae train --out {run_dir}` "
                        "first")
    meta = read_json(folder / SAE_JSON)
    if meta["source"] == "train":
        sae = load_saelens_dir(folder / meta["spec"], device=device)
    else:
        sae = load_sae(meta["spec"], device=device)
    if sae.hook_layer != meta["hook_layer"]:
        sae.info.hook_layer = int(meta["hook_layer"])
    return sae, meta


def run_analysis(run_dir: str | Path) -> LatentAnalysis:
    """The finished ``sae_analysis`` stage's result."""
    path = Path(run_dir) / "sae_analysis" / ANALYSIS_JSON
    if not path.exists():
        raise UserError(f"{run_dir} has no SAE analysis: run `refusal-atlas sae analyze --out "
                        f"{run_dir}` first")
    return LatentAnalysis.from_dict(read_json(path))
