"""The reports on disk, per model: what the ``/reports/`` index and history pages list.

Layout (see ``builder.write_report`` and ``retention.purge_reports``)::

    <directory>/<model slug>/<report id>/report.json ...      a report
    <directory>/archive/<model slug>/<report id>.tar.gz       an archived one

A report's time comes from its id (``retention.report_time``), what fired from its
``report.json`` (read from inside the archive for archived reports). A folder being
written (hidden ``.partial``) is skipped; a report whose JSON cannot be read is still
listed, with the problem, and links to the files it has. Summaries are cached by
(path, modification time, size), so a page over hundreds of reports parses each
JSON once.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from driftwarden.alerts.reports.layout import SUFFIX, slug
from driftwarden.alerts.reports.retention import ARCHIVE, report_time

FILES = ("report.html", "report.json", "summary.md")
MAX_JSON = 32 * 1024 * 1024  # a report.json larger than this is not parsed (a corrupt or hostile file)
SEVERITY_ORDER = {"critical": 0, "warning": 1}


@dataclass(frozen=True, slots=True)
class Fired:
    """One triggering check of a report."""

    kind: str
    detector: str
    subject: str
    severity: str


@dataclass(frozen=True, slots=True)
class Summary:
    """What a report's JSON says about it (``problem`` set when it could not be read)."""

    model_id: str | None = None
    created_at: float | None = None
    onset: float | None = None
    headline: str = ""
    fired: tuple[Fired, ...] = ()
    problem: str | None = None

    @property
    def severity(self) -> str | None:
        """The worst severity of what fired; None for an on-demand report."""
        levels = sorted((f.severity for f in self.fired), key=lambda s: SEVERITY_ORDER.get(s, 9))
        return levels[0] if levels else None


@dataclass(frozen=True, slots=True)
class Entry:
    """One report of a model; ``files`` are paths relative to the model's folder, in display order."""

    report_id: str
    time: float
    archived: bool
    summary: Summary
    files: tuple[tuple[str, str], ...]  # (label, relative path)


@dataclass(frozen=True, slots=True)
class Model:
    """A model of the index: its folder name, id (from its reports, else the config) and newest report."""

    folder: str
    model_id: str
    latest: Entry | None
    reports: int
    configured: bool


def summarize(data: Any) -> Summary:
    """The :class:`Summary` of a parsed report.json (tolerant: a field of the wrong type is left out).

    >>> s = summarize({"model_id": "churn", "created_at": 10.0, "onset": 5, "headline": "PSI of age",
    ...                "triggering": [{"kind": "data_drift", "detector": "psi", "subject": "age",
    ...                                "severity": "warning"},
    ...                               {"kind": "performance", "detector": "accuracy", "subject": "accuracy",
    ...                                "severity": "critical"}]})
    >>> s.severity, [f.detector for f in s.fired], s.onset
    ('critical', ['psi', 'accuracy'], 5.0)
    >>> summarize([1, 2]).problem
    'report.json is not an object'
    """
    if not isinstance(data, dict):
        return Summary(problem="report.json is not an object")

    def number(key: str) -> float | None:
        v = data.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    fired = []
    for f in data.get("triggering") or []:
        if isinstance(f, dict):
            fired.append(Fired(*(str(f.get(k, "")) for k in ("kind", "detector", "subject", "severity"))))
    model = data.get("model_id")
    return Summary(model_id=model if isinstance(model, str) else None, created_at=number("created_at"),
                   onset=number("onset"), headline=str(data.get("headline") or ""), fired=tuple(fired))


def _parse(raw: bytes) -> Summary:
    try:
        return summarize(json.loads(raw))
    except (ValueError, RecursionError) as exc:
        return Summary(problem=f"report.json is not valid JSON: {str(exc)[:120]}")


@lru_cache(maxsize=4096)
def _folder_summary(path: str, _mtime_ns: int, _size: int) -> Summary:
    p = Path(path)
    if _size > MAX_JSON:
        return Summary(problem=f"report.json is larger than {MAX_JSON} bytes")
    return _parse(p.read_bytes())


@lru_cache(maxsize=4096)
def _archive_summary(path: str, _mtime_ns: int, _size: int) -> Summary:
    report_id = Path(path).name.removesuffix(".tar.gz")
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name != f"{report_id}/report.json":
                    continue
                if not member.isfile() or member.size > MAX_JSON:
                    return Summary(problem="report.json in the archive is not a regular file of sane size")
                f = tar.extractfile(member)
                return _parse(f.read()) if f is not None else Summary(problem="report.json unreadable")
    except (tarfile.TarError, EOFError, OSError) as exc:
        return Summary(problem=f"archive unreadable: {str(exc)[:120]}")
    return Summary(problem="no report.json in the archive")


def _cached(fn: Any, path: Path) -> Summary:
    try:
        st = path.stat()
        summary: Summary = fn(str(path), st.st_mtime_ns, st.st_size)
        return summary
    except FileNotFoundError:
        return Summary(problem="no report.json")
    except OSError as exc:
        return Summary(problem=f"report.json unreadable: {exc.strerror or exc}")


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def history(directory: str | Path, folder: str) -> list[Entry]:
    """Every report of the model stored under ``folder``, newest first; archived ones after live ones of a time."""
    root = Path(directory)
    entries: list[Entry] = []
    live = root / folder
    if folder != ARCHIVE and _visible(live) and live.is_dir():
        for d in live.iterdir():
            if not _visible(d) or not d.is_dir():
                continue
            names = [*FILES, d.name + SUFFIX]
            labels = ["report", "JSON", "summary", "replay bundle"]
            files = tuple((lab, f"{d.name}/{n}") for lab, n in zip(labels, names, strict=True) if (d / n).is_file())
            entries.append(Entry(d.name, report_time(d), False, _cached(_folder_summary, d / "report.json"), files))
    archived = root / ARCHIVE / folder
    if _visible(archived) and archived.is_dir():
        for a in archived.glob("*.tar.gz"):
            if not _visible(a) or not a.is_file():
                continue
            report_id = a.name.removesuffix(".tar.gz")
            entries.append(Entry(report_id, report_time(a), True, _cached(_archive_summary, a),
                                 (("archive", f"../{ARCHIVE}/{folder}/{a.name}"),)))
    entries.sort(key=lambda e: (-e.time, e.archived, e.report_id))
    return entries


def model_folders(directory: str | Path) -> list[str]:
    """Folder names of the models that have reports, live or archived."""
    root = Path(directory)
    found: set[str] = set()
    if root.is_dir():
        found |= {p.name for p in root.iterdir() if p.is_dir() and p.name != ARCHIVE and _visible(p)}
    if (root / ARCHIVE).is_dir():
        found |= {p.name for p in (root / ARCHIVE).iterdir() if p.is_dir() and _visible(p)}
    return sorted(found)


def is_model(directory: str | Path, folder: str, configured: Iterable[str] = ()) -> bool:
    """Whether ``/reports/<folder>/`` names a model: one with reports, or a configured model's folder."""
    return folder in model_folders(directory) or folder in {slug(m) for m in configured}


def models(directory: str | Path, configured: Iterable[str] = ()) -> list[Model]:
    """Every model with reports plus every configured one, by model id; the newest report of each."""
    configured_ids = {slug(m): m for m in configured}
    out = []
    for folder in sorted(set(model_folders(directory)) | set(configured_ids)):
        entries = history(directory, folder)
        latest = entries[0] if entries else None
        model_id = configured_ids.get(folder) or (latest.summary.model_id if latest else None) or folder
        out.append(Model(folder, model_id, latest, len(entries), folder in configured_ids))
    out.sort(key=lambda m: (m.model_id, m.folder))
    return out
