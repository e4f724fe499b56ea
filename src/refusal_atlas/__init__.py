"""refusal-atlas: per-category refusal directions, their geometry and what steering along them does."""

__version__ = "0.1.0"
