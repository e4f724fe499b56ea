"""The ``refusal-atlas`` command line (``refusal_atlas.cli:main``)."""

from .app import app, main

__all__ = ["app", "main"]
