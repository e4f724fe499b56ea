"""report.html: model text escaped, nothing external, every section and figure present."""

from __future__ import annotations

import re

import markupsafe

from refusal_atlas.report import CSP, SECTION_IDS
from refusal_atlas.report.html import collect_figures


def test_html_escapes_model_text_and_is_self_contained(rendered, data):
    page = rendered[0].read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__xss = 1;" in page
    assert "&lt;img src=x onerror=" in page
    assert "<script>window.__xss" not in page and "<img src=x" not in page
    assert page.count("<script") == 1  # the page's own filter script only
    # no external resource: every src/href is a data: URI or an in-page anchor
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), \
        [r for r in refs if not r.startswith(("data:", "#"))]
    assert "<link rel=\"stylesheet\"" not in page and "@import" not in page
    assert f'content="{markupsafe.escape(CSP)}"' in page
    n_figs = len(collect_figures(data))
    assert page.count('src="data:image/png;base64,') == n_figs >= 8
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page
    # traceability: artifact names next to the numbers
    for src in ("geometry/geometry.json", "steering/metrics.json", "ablation/metrics.json",
                "style/summary.json", "test_set/pool_report.json", "steering/results.jsonl"):
        assert src in page, src
    assert len(page) < 3_000_000
