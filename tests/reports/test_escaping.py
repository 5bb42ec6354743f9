"""Hostile user data (feature names, categories, model ids) must leave the HTML inert."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from driftwarden.alerts.reports.builder import build_report, write_report
from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "</title></style><svg onload=alert(1)>",
    "x" * 5000,
    "日本語 😀 \u202eevil\u0000 $\\frac{1}{0}$ `code` *bold* <@channel>",
]
ALLOWED = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "span", "table", "thead",
           "tbody", "tr", "th", "td", "ul", "li", "div", "img", "a"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def objects(values: list[str | None]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def test_hostile_values_stay_inert(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    names = HOSTILE[:4]
    spec = ModelSpec(task="binary", features={names[0]: FeatureSpec("numeric"), names[1]: FeatureSpec("categorical"),
                                              names[2]: FeatureSpec("categorical"), names[3]: FeatureSpec("numeric")})
    n = 600
    cats = objects([HOSTILE[i % len(HOSTILE)] for i in range(n)])

    def rows(shift: float, new: bool) -> OutcomeBatch:
        y = objects([str(v) for v in rng.integers(0, 2, n)])
        c = objects([HOSTILE[5] if new and i % 3 == 0 else str(v) for i, v in enumerate(cats)])
        return OutcomeBatch(timestamps=np.arange(n, dtype=float) + 10, prediction_timestamps=np.arange(n, dtype=float),
                            y_true=y, y_pred=objects([str(v) for v in rng.integers(0, 2, n)]),
                            score=rng.random(n), features={names[0]: rng.normal(shift, 1, n), names[1]: c,
                                                           names[2]: cats.copy(), names[3]: rng.normal(0, 1, n)},
                            model_version=objects([HOSTILE[1]] * n))

    reference, current = rows(0.0, False), rows(2.0, True)
    window = PredictionBatch(current.prediction_timestamps, current.features, current.y_pred, current.score,
                             current.model_version)
    from driftwarden.detectors.monitor import compare

    found = compare(spec, reference, current)
    report = build_report(model_id=HOSTILE[0] + HOSTILE[4], spec=spec, reference=reference, current=window,
                          outcomes=current, triggering=[f for f in found if f.degraded], recent=found,
                          now=1_800_000_000.0, model_version=HOSTILE[3])
    assert report.suspects[0].feature == names[0]
    files = write_report(report, tmp_path / "reports", 1_800_000_000.0, base_url="https://example.test/r")
    assert files.html.resolve().is_relative_to((tmp_path / "reports").resolve())
    text = files.html.read_text(encoding="utf-8")
    parser = Tags()
    parser.feed(text)
    parser.close()
    tags = {t for t, _ in parser.tags}
    assert "script" not in tags and "svg" not in tags and tags <= ALLOWED, tags - ALLOWED
    for tag, attrs in parser.tags:
        for key, value in attrs:
            assert not key.startswith("on"), (tag, key)
            if tag == "img" and key == "src":
                assert value is not None and value.startswith("data:image/png;base64,")
            if tag == "a" and key == "href":
                assert value is not None and value.endswith(".replay.tar.gz") and "/" not in value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "x" * 300 not in text  # long values shortened
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert data["model_id"] == HOSTILE[0] + HOSTILE[4]  # JSON keeps the exact values
    md = files.markdown.read_text(encoding="utf-8")
    assert "<script" not in md and "<@channel>" not in md and "<https://example.test/r/" in md
