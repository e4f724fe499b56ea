"""Every docstring example that runs without a model or a run folder (the rest are marked
``+SKIP``) gives what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import refusal_atlas

MODULES = sorted(m.name for m in pkgutil.walk_packages(refusal_atlas.__path__, "refusal_atlas.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
