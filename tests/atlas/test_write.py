"""Writing the atlas: figures, compare.html (self-contained, escaped), compare.md, atlas.json."""

import json
import re
import shutil

import pytest
from markupsafe import escape

from refusal_atlas.atlas import build_atlas, render_atlas_html, write_atlas
from refusal_atlas.atlas.html import ATLAS_CSP
from refusal_atlas.pipeline import STAGES, stage_states

EVIL = "<img src=x onerror=alert('atlas')>&"  # no "/": the whole name is the model's label


@pytest.fixture(scope="module")
def written(atlas_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas_out")
    data = build_atlas(atlas_inputs, seed=0)
    return data, write_atlas(data, out)


def test_every_file_is_written(written):
    data, paths = written
    out = paths["html"].parent
    for name in ("cosine.png", "dose_response.png"):
        assert (out / "figures" / name).read_bytes().startswith(b"\x89PNG")
    assert json.loads(paths["json"].read_text())["split_order"] == ["Alpha", "Beta", "Gamma"]
    md = paths["md"].read_text()
    assert "| Beta | direction | direction | **missing**: not in this run's data |" in md


def test_the_page_is_self_contained(written):
    data, paths = written
    page = paths["html"].read_text()
    assert f'content="{escape(ATLAS_CSP)}"' in page
    assert "script-src 'none'" in ATLAS_CSP and "default-src 'none'" in ATLAS_CSP
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "<script" not in page
    assert page.count('src="data:image/png;base64,') == 3  # heatmaps, dose-response, scatter
    assert "missing: not in this run&#39;s data" in page


def test_every_key_the_page_reads_is_there(written):
    data, paths = written
    render_atlas_html(data, paths["html"].parent, strict=True)


def test_names_from_a_run_folder_are_escaped(atlas_inputs, tmp_path):
    evil = tmp_path / "evil"
    shutil.copytree(atlas_inputs[0][0], evil)
    cfg = json.loads((evil / "config.json").read_text())
    cfg["model"]["name"] = f"/models/{EVIL}"
    (evil / "config.json").write_text(json.dumps(cfg))
    data = build_atlas([(evil, stage_states(evil, STAGES)), atlas_inputs[1]])
    paths = write_atlas(data, tmp_path / "out")
    page, md = paths["html"].read_text(), paths["md"].read_text()
    assert EVIL not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(&#39;atlas&#39;)&gt;&amp;" in page
    assert EVIL not in md and "&lt;img src=x onerror" in md
