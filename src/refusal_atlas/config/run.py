"""The run config: one section per stage (or group of stages)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from .beyond import BeyondSection
from .presets import list_presets
from .sae import SAESection
from .sections import (
    ActivationsSection,
    DataSection,
    ExecutorSection,
    GeometrySection,
    LabelsSection,
    LayerScanSection,
    ModelSection,
    PoolsSection,
    ReportSection,
    SteeringSection,
    StyleSection,
    _Section,
)


class RunConfig(_Section):
    preset: str = "demo"
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    labels: LabelsSection = Field(default_factory=LabelsSection)
    pools: PoolsSection = Field(default_factory=PoolsSection)
    activations: ActivationsSection = Field(default_factory=ActivationsSection)
    layer_scan: LayerScanSection = Field(default_factory=LayerScanSection)
    geometry: GeometrySection = Field(default_factory=GeometrySection)
    steering: SteeringSection = Field(default_factory=SteeringSection)
    sae: SAESection = Field(default_factory=SAESection)
    style: StyleSection = Field(default_factory=StyleSection)
    report: ReportSection = Field(default_factory=ReportSection)
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    beyond: BeyondSection = Field(default_factory=BeyondSection)
    """Who runs the work units: local, or ray (``executor: ray`` or its settings)."""
    models: list[str] | None = None
    """Several models, one run folder each (``run --models A,B``); ``model.name`` is then
    each of them in turn. None: just ``model.name``."""

    @field_validator("models")
    @classmethod
    def _models_listed_once(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [str(v).strip() for v in value if str(v).strip()]
        if not names:
            raise ValueError("give at least one model name (or leave models out)")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed more than once")
        return names

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in list_presets():
            raise ValueError(f"unknown preset {value!r}; presets: {', '.join(list_presets())}")
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
