"""Configs of older releases: their keys moved to where they live now, silently, so a run
folder's ``config.json`` and a user's file written then still load."""

from __future__ import annotations

from typing import Any

from .sae import nest_sae_keys


def migrate_config(data: dict[str, Any]) -> dict[str, Any]:
    """A config mapping with the keys of older releases moved to where they live now.

    Args:
        data: a config mapping (a run folder's config.json, a user file, overrides).

    Example:
        >>> migrate_config({"sae": {"train_steps": 200}})
        {'sae': {'train': {'steps': 200}}}
    """
    # The style section moves its old keys when it is validated, after the layers are merged:
    # ``llm_model`` and ``endpoint`` set in different layers belong together.
    out = dict(data)
    if isinstance(out.get("sae"), dict):
        out["sae"] = nest_sae_keys(out["sae"])
    steering = out.get("steering")
    if isinstance(steering, dict) and "executor" in steering:  # now the top-level executor
        out["steering"] = {k: v for k, v in steering.items() if k != "executor"}
        executor = out.get("executor")
        if isinstance(executor, dict):
            out["executor"] = {"name": steering["executor"], **executor}
        elif executor is None:
            out["executor"] = {"name": steering["executor"]}
    return out
