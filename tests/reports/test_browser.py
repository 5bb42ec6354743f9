"""The report pages in a real browser: headless Chromium against the real HttpServer and real demo reports.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; .ci/run installs it). Reports come
from the in-process demo (``daemon.demo.run_demo``, ~20 s): a covariate shift and a concept
drift, so two reports of model ``churn``. Every page must load with no console message, no
uncaught exception and no browser error (a blocked or failed resource, a CSP violation); the
index must show the model, the history its reports with working links, the report its sections.
"""

from __future__ import annotations

import io
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwarden.alerts.reports.html import CSP
from driftwarden.daemon.demo import run_demo
from driftwarden.daemon.http_server import HttpServer
from driftwarden.daemon.metrics import Metrics
from tests.browser import CHROMIUM, Chromium

SECTIONS = ["headline", "what-fired", "suspects", "changes", "quality", "segments", "timelines", "other-degraded",
            "reproduce"]
CONTENT_TYPES = {"report": "text/html", "JSON": "application/json", "summary": "text/markdown",
                 "replay bundle": "application/x-tar"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("browser") / "demo"
    # the whole demo: its two faults 17 minutes apart are two incidents, two reports (in 30,000 events
    # they are 8 minutes apart, one incident within alerting.incident_span, one report)
    assert run_demo(None, str(work), out=io.StringIO()) == 0
    root = work / "reports"
    assert len(list((root / "churn").iterdir())) == 2  # one report per incident: the covariate shift's, the concept drift's
    # a page that breaks the rules, to show that the test sees a CSP violation and a console error
    (root / "bad.html").write_text(f'<html><head><meta http-equiv="Content-Security-Policy" content="{CSP}">'
                                   "</head><body><script>console.error('x')</script></body></html>")
    return root


@pytest.fixture(scope="module")
def base(reports: Path) -> Iterator[str]:
    srv = HttpServer("127.0.0.1", 0, Metrics(), reports, lambda: {"ok": True}, models=["churn", "fraud"])
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.address[1]}/reports/"
    finally:
        srv.stop()


def require_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    require_chromium()
    profile = tmp_path_factory.mktemp("chromium") / "profile"  # a fresh profile every run
    with Chromium(profile) as c:
        yield c
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Chromium) -> Iterator[Chromium]:
    """The browser, its problem list emptied; after the test, nothing must have been logged."""
    browser.problems.clear()
    console_before = browser.stderr().count(":CONSOLE")
    yield browser
    assert browser.problems == []
    assert browser.stderr().count(":CONSOLE") == console_before, "a console message was logged (see stderr)"


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        resp.read()
        return resp.status, resp.headers.get("Content-Type", "")


def links(c: Chromium, selector: str) -> list[dict[str, str]]:
    """Text, raw href and resolved URL of the links under ``selector``."""
    value = c.evaluate(f"[...document.querySelectorAll({selector!r})]"
                       ".map(a => ({text: a.textContent.trim(), href: a.getAttribute('href'), url: a.href}))")
    assert isinstance(value, list)
    return value


def test_index_shows_every_model_and_its_latest_report(page: Chromium, base: str, tmp_path: Path) -> None:
    page.open(base)
    assert page.evaluate("document.title") == "driftwarden reports"
    models = links(page, "#models a.model")
    assert [(m["text"], m["url"]) for m in models] == [("churn", base + "churn/"), ("fraud", base + "fraud/")]
    rows = page.evaluate("[...document.querySelectorAll('#models tbody tr')].map(r => r.innerText)")
    churn, fraud = rows
    # the concept drift's reports are the latest: its performance CUSUMs (F1, ROC AUC: critical), then
    # the ADWIN change on the error stream (warning), which now fires last in a report of its own
    assert ("critical" in churn and "performance " in churn) or "concept_drift " in churn
    assert "no report yet" in fraud
    latest = links(page, "#models tbody tr:first-child td:nth-child(2) a")
    assert len(latest) == 1 and latest[0]["url"].startswith(base + "churn/")
    assert latest[0]["url"].endswith("/report.html")
    assert fetch(latest[0]["url"]) == (200, "text/html")
    shot = tmp_path / "index.png"  # outside the repository
    page.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_lists_the_reports_newest_first_with_working_links(page: Chromium, base: str,
                                                                   reports: Path) -> None:
    page.open(base)
    page.open(links(page, "#models a.model")[0]["url"])
    assert page.evaluate("location.href") == base + "churn/"
    on_disk = sorted((p.name for p in (reports / "churn").iterdir()), reverse=True)
    ids = page.evaluate("[...document.querySelectorAll('#reports tbody tr td:nth-child(5) code')]"
                        ".map(c => c.textContent)")
    assert ids == on_disk  # ids start with their UTC time stamp: newest first
    for report_id in on_disk:
        found = links(page, "#reports a")
        mine = [a for a in found if f"/{report_id}/" in a["url"]]
        assert [a["text"] for a in mine] == list(CONTENT_TYPES)
        for a in mine:
            assert not a["href"].startswith("/")  # relative: works behind a proxy prefix
            status, kind = fetch(a["url"])
            assert status == 200 and kind == CONTENT_TYPES[a["text"]], a
    back = links(page, "#back")
    assert back[0]["url"] == base


def test_report_page_has_its_sections_and_plots(page: Chromium, base: str) -> None:
    page.open(base + "churn/")
    page.open(links(page, "#reports tbody tr:last-child a")[0]["url"])  # the oldest: the covariate shift
    assert page.evaluate("document.title") == "driftwarden report: churn"
    ids = page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
    assert ids == SECTIONS
    fired = page.evaluate("document.querySelector('#what-fired + table').innerText")
    assert "data_drift" in fired and "age" in fired
    suspects = page.evaluate("[...document.querySelectorAll('#suspects ~ table')][0].querySelectorAll('tbody tr')"
                             ".length")
    assert suspects >= 2
    images = page.evaluate("[...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 0])")
    assert images and all(ok for _, ok in images), images  # every inline plot decoded
    assert any(alt.startswith("distribution:") for alt, _ in images)
    bundle = links(page, "#reproduce ~ p a")
    assert len(bundle) == 1 and fetch(bundle[0]["url"]) == (200, "application/x-tar")


def test_the_browser_reports_what_breaks_a_page(base: str, tmp_path: Path) -> None:
    require_chromium()
    with Chromium(tmp_path / "profile") as browser:  # its own browser: these messages must not leak
        browser.open(base + "bad.html")
        assert any("Content Security Policy" in p for p in browser.problems), browser.problems
        browser.open("data:text/html,<script>console.error('boom')</script>")
        assert "console.error: boom" in browser.problems
        browser.open(base + "missing.png")
        assert any("404" in p for p in browser.problems), browser.problems
