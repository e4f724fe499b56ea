"""docs/api.md runs: every Python block, in order, in one namespace, on the packaged SmolLM2."""

import re
from pathlib import Path

import pytest

import refusal_atlas as ra

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_flat_api_names_resolve():
    for name in ra.__all__:
        assert getattr(ra, name) is not None, name
    with pytest.raises(AttributeError):
        ra.no_such_name  # noqa: B018


@pytest.mark.integration
def test_api_doc_examples_run(smol_env):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    crime = namespace["crime"]
    assert crime.vector.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert namespace["plain"].texts[0]
    assert ra.hooks.active_hook_count(namespace["lm"].model) == 0
