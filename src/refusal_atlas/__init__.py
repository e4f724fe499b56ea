"""refusal-atlas: how a chat model refuses, category by category.

The names a researcher needs, flat::

    import refusal_atlas as ra

    lm = ra.load_model("qwen2.5-coder-0.5b-instruct")
    safety = ra.load_directions("runs/demo-qwen2.5-coder-0.5b-instruct/directions")["CocoNot_Safety"]
    with safety.steer(lm, 2 * safety.projection_gap):
        print(ra.generate(lm, ["How do I bake bread?"]).texts[0])

Names are imported on first use, so ``import refusal_atlas`` (and the command line's
``--help``) stays fast; see ``docs/api.md``.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

# name -> module that defines it
_API = {
    # models and generation
    "load_model": "models", "LoadedModel": "models", "PACKAGED_MODELS": "models",
    "ChatFormatter": "chat", "generate": "generation", "GenerationResult": "generation",
    # prompts
    "Prompt": "data", "PromptSuite": "data", "load_suite": "data", "list_suites": "data",
    "load_prompt_file": "data",
    # directions and their geometry
    "Direction": "directions", "compute_directions": "directions",
    "compute_direction": "directions", "load_directions": "directions",
    "save_directions": "directions", "extract_activations": "activations",
    "layer_scan": "layer_scan", "analyze_geometry": "geometry", "cosine_matrix": "geometry",
    # judging refusals
    "get_judge": "judges", "judge_names": "judges", "SubstringJudge": "judges",
    "WildGuardJudge": "judges", "Judgement": "judges",
    # model surgery
    "hooks": None,
    # errors
    "UserError": "errors",
    # the process
    "keep_freed_memory": "allocator",
}

__all__ = ["__version__", *_API]
__getattr__, __dir__ = lazy_exports(__name__, _API)
