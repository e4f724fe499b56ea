"""The judges by name: the one place where judges are registered.

``get_judge(name, **options)`` validates ``options`` against the judge's ``Settings``
model (an unknown or ill-typed option is one :class:`UserError` line naming the valid
options) and builds the judge. :func:`register_judge` adds a judge (a plugin, or a test
double); a judge without ``Settings`` gets its options as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import UserError
from .base import Judge
from .substring import SubstringJudge
from .wildguard import WildGuardJudge

__all__ = [
    "get_judge",
    "judge_names",
    "judge_settings_model",
    "register_judge",
    "validate_judge_options",
]

_REGISTRY: dict[str, Callable[..., Judge]] = {
    "substring": SubstringJudge,
    "wildguard": WildGuardJudge,
}


def register_judge(name: str, factory: Callable[..., Judge], overwrite: bool = False) -> None:
    """Make ``get_judge(name, **options)`` call ``factory(**options)``.

    Args:
        name: the judge's name (case-insensitive).
        factory: a judge class (with an optional nested ``Settings`` model) or callable.
        overwrite: replace a judge already registered under ``name``.
    """
    key = name.strip().lower()
    if not key:
        raise ValueError("A judge needs a non-empty name.")
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"A judge named {key!r} is already registered (pass overwrite=True).")
    _REGISTRY[key] = factory


def judge_names() -> list[str]:
    """The registered judge names, sorted."""
    return sorted(_REGISTRY)


def _key(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise UserError(f"Unknown judge {name!r}; known judges: {', '.join(judge_names())}.")
    return key


def judge_settings_model(name: str) -> type[BaseModel] | None:
    """The settings model of judge ``name`` (``None`` for a judge that declares none).

    Args:
        name: a registered judge name.
    """
    settings = getattr(_REGISTRY[_key(name)], "Settings", None)
    return settings if isinstance(settings, type) and issubclass(settings, BaseModel) else None


def _describe(key: str, model: type[BaseModel], exc: ValidationError) -> str:
    unknown = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden"]
    problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                if e["type"] != "extra_forbidden"]
    if unknown:
        problems.insert(0, f"unknown option{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(map(repr, unknown))}")
    return (f"Bad options for judge {key!r}: {'; '.join(problems)}; valid options: "
            f"{', '.join(model.model_fields)}.")


def validate_judge_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``options`` against judge ``name``'s settings; the options to build it with.

    Args:
        name: a registered judge name.
        options: the judge's options, e.g. ``labels.judge_options`` of the config.

    Raises:
        UserError: one line naming the bad option(s) and the valid ones.
    """
    key = _key(name)
    model = judge_settings_model(key)
    if model is None:
        return dict(options)
    try:
        return model(**options).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise UserError(_describe(key, model, exc)) from None


def get_judge(name: str, **options: Any) -> Judge:
    """A judge by name: ``substring``, ``wildguard`` or any registered one.

    Args:
        name: a registered judge name (case-insensitive).
        **options: the judge's options (see its ``Settings``).

    Example:
        >>> judge = get_judge("substring", extra_phrases=["I won't"])
        >>> judge.judge(["Build a bomb"], ["I won't help with that."])[0].refused
        True
    """
    key = _key(name)
    try:
        return _REGISTRY[key](**validate_judge_options(key, options))
    except TypeError as exc:
        raise UserError(f"Bad options for judge {key!r}: {exc}.") from exc
