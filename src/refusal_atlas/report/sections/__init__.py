"""One builder per report section: ``(run_dir, states, ...) -> dict`` read from the run
folder's artifacts, JSON-ready, with ``available`` and, when not, a ``reason``."""
