"""Package names imported on first use, so that importing a package stays cheap."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable, Mapping


def lazy_exports(package: str, api: Mapping[str, str | None]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` that import ``name`` from ``api[name]``
    (a submodule) the first time it is asked for.

    Args:
        package: the package's ``__name__``.
        api: ``{name: submodule}`` of the names the package exports; ``{name: None}``
            exports the submodule ``name`` itself.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"SAE": "models"})  # doctest: +SKIP
    """
    namespace = import_module(package).__dict__

    def getattr_(name: str) -> Any:
        if name not in api:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = import_module(f".{api[name] or name}", package)
        value = module if api[name] is None else getattr(module, name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(api)

    return getattr_, dir_
