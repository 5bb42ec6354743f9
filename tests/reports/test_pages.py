"""The /reports/ index and per-model history: what they list, in what order, escaped, with relative links."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

from driftwarden.alerts.reports import catalog
from driftwarden.alerts.reports.layout import slug
from driftwarden.alerts.reports.pages import render_history, render_index
from driftwarden.alerts.reports.retention import purge_reports
from driftwarden.daemon.http_server import HttpServer
from driftwarden.daemon.metrics import Metrics

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
DAY = 86400.0
T0 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y%m%dT%H%M%SZ")


def write(root: Path, model: str, t: float, fired: list[tuple[str, str, str, str]], bundle: bool = True) -> str:
    """A report folder as write_report lays it out, with a report.json holding exactly ``fired``."""
    report_id = f"{stamp(t)}-{abs(hash((model, t))) % 10**8:08d}"
    folder = root / slug(model) / report_id
    folder.mkdir(parents=True)
    data = {"report_id": report_id, "model_id": model, "created_at": t, "onset": t - 60, "headline": "h",
            "triggering": [dict(zip(("kind", "detector", "subject", "severity"), f, strict=True)) for f in fired]}
    (folder / "report.json").write_text(json.dumps(data))
    (folder / "report.html").write_text("<html>report</html>")
    (folder / "summary.md").write_text("summary")
    if bundle:
        (folder / f"{report_id}.replay.tar.gz").write_bytes(b"bundle")
    return report_id


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    @property
    def hrefs(self) -> list[str]:
        return [str(a["href"]) for t, a in self.tags if t == "a"]


def parse(text: str) -> Links:
    p = Links()
    p.feed(text)
    p.close()
    return p


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    write(root, "churn", T0 - 40 * DAY, [("data_drift", "psi", "age", "warning")])  # archived below
    write(root, "churn", T0 - 2 * DAY, [("data_drift", "psi", "age", "warning")], bundle=False)
    write(root, "churn", T0 - DAY, [("data_drift", "psi", "age", "warning"),
                                    ("performance", "accuracy", "accuracy", "critical")])
    write(root, HOSTILE, T0 - DAY, [("data_quality", "missing_rate", HOSTILE, "warning")])
    write(root, "ondemand", T0 - DAY, [])
    result = purge_reports(root, retention_seconds=30 * DAY, now=T0)
    assert [p.parent.name for p in result.archived] == ["churn"]
    return root


def test_history_lists_every_report_newest_first_archived_included(reports: Path) -> None:
    entries = catalog.history(reports, "churn")
    assert [(e.time, e.archived) for e in entries] == [(T0 - DAY, False), (T0 - 2 * DAY, False),
                                                      (T0 - 40 * DAY, True)]
    newest, older, archived = entries
    assert [f.detector for f in newest.summary.fired] == ["psi", "accuracy"]
    assert newest.summary.severity == "critical" and older.summary.severity == "warning"
    assert [label for label, _ in newest.files] == ["report", "JSON", "summary", "replay bundle"]
    assert [label for label, _ in older.files] == ["report", "JSON", "summary"]  # no bundle on disk, no link
    assert archived.summary.onset == T0 - 40 * DAY - 60  # read from inside the archive
    assert archived.files == (("archive", f"../archive/churn/{archived.report_id}.tar.gz"),)


def test_index_has_every_model_with_its_latest_report_and_configured_ones(reports: Path) -> None:
    models = catalog.models(reports, configured=["churn", "fraud"])
    by_id = {m.model_id: m for m in models}
    assert set(by_id) == {"churn", "fraud", "ondemand", HOSTILE}
    assert by_id["churn"].reports == 3 and by_id["churn"].latest is not None
    assert by_id["churn"].latest.time == T0 - DAY and by_id["churn"].configured
    assert by_id["fraud"].latest is None and by_id["fraud"].reports == 0
    assert by_id[HOSTILE].folder == slug(HOSTILE)
    ondemand = by_id["ondemand"].latest
    assert ondemand is not None and ondemand.summary.severity is None
    text = render_index(models)
    assert "no report yet" in text and "on demand" in text and 'class="sev-critical"' in text


def test_pages_are_inert_and_links_are_relative(reports: Path) -> None:
    pages = {"": render_index(catalog.models(reports, ["fraud"]))}
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</code>" in pages[""]
    for m in catalog.model_folders(reports):
        pages[m + "/"] = render_history(m, catalog.history(reports, m))
    for where, text in pages.items():
        p = parse(text)
        assert {t for t, _ in p.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "p", "div",
                                            "table", "thead", "tbody", "tr", "th", "td", "a", "code", "span",
                                            "ul", "li", "nav"}
        assert all(not k.startswith("on") for _, attrs in p.tags for k in attrs)
        assert "<script" not in text and "onerror=" not in text.replace("onerror=alert", "")
        base = "https://proxy.test/prefix/driftwarden/reports/" + where
        for h in p.hrefs:
            assert not h.startswith("/") and ":" not in h.split("/")[0], h
            assert urljoin(base, h).startswith("https://proxy.test/prefix/driftwarden/reports/"), h


def test_unreadable_report_json_is_listed_with_the_problem(reports: Path) -> None:
    newest = reports / "churn" / catalog.history(reports, "churn")[0].report_id
    (newest / "report.json").write_text("{not json")
    entry = catalog.history(reports, "churn")[0]  # the cache key (mtime, size) changed: parsed again
    assert entry.summary.problem is not None and entry.summary.problem.startswith("report.json is not valid JSON")
    assert "report.json is not valid JSON" in render_history("churn", [entry])
    (newest / "report.json").unlink()
    assert catalog.history(reports, "churn")[0].summary.problem == "no report.json"


def test_a_folder_being_written_is_not_listed(reports: Path) -> None:
    (reports / "churn" / ".20261101T000000Z-x.abcd.partial").mkdir()
    (reports / ".hidden").mkdir()
    assert len(catalog.history(reports, "churn")) == 3
    assert ".hidden" not in catalog.model_folders(reports)


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


@pytest.fixture
def base(reports: Path) -> Iterator[str]:
    srv = HttpServer("127.0.0.1", 0, Metrics(), reports, lambda: {"ok": True}, models=["churn", "fraud"])
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.address[1]}/reports/"
    finally:
        srv.stop()


def test_served_pages_and_every_link_on_them(base: str) -> None:
    status, kind, body = get(base)
    assert status == 200 and kind == "text/html; charset=utf-8"
    models = [h for h in parse(body.decode()).hrefs if h.endswith("/")]
    assert sorted(models) == sorted(f"./{slug(m)}/" for m in ("churn", "fraud", "ondemand", HOSTILE))
    for m in models:
        status, _, page = get(urljoin(base, m))
        assert status == 200, m
        for h in parse(page.decode()).hrefs:
            assert get(urljoin(urljoin(base, m), h))[0] == 200, (m, h)


def test_reports_without_slash_redirects_relatively(base: str) -> None:
    conn = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as err:
        conn.open(base[:-1], timeout=5)
    err.value.close()
    assert err.value.code == 301 and err.value.headers["Location"] == "reports/"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


@pytest.mark.parametrize("path", ["nope/", "archive/", "../", "./", "churn/x/", ".hidden/"])
def test_no_history_page_for_what_is_not_a_model(base: str, reports: Path, path: str) -> None:
    (reports / ".hidden").mkdir()
    assert get(base + path)[0] == 404


def test_archived_only_model_keeps_its_history(reports: Path, base: str) -> None:
    purge_reports(reports, retention_seconds=0.5 * DAY, now=T0, archive_seconds=100 * DAY)  # all archived, none purged
    assert not (reports / "churn").exists()
    status, _, body = get(base + "churn/")
    assert status == 200 and body.decode().count("archived</span>") == 3
