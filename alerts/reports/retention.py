"""Report retention: old reports are archived, old archives purged. Time is passed in.

A report's age comes from its folder name (``<YYYYmmddTHHMMSSZ>-<hash>``, written by
``write_report``), not from file times, so copying a reports directory does not
reset it; folders without a parsable stamp fall back to their modification time.

* a report folder older than ``retention_seconds`` is packed into
  ``<directory>/archive/<model>/<report id>.tar.gz`` and the folder removed;
* an archive older than ``retention_seconds + archive_seconds`` (default: another
  ``retention_seconds``) is deleted;
* a hidden ``.<report id>.<random>.partial`` (or ``.old``) folder is what a writer killed
  mid-report left behind (see ``write_report``): removed, never archived, once older than
  an hour (or ``retention_seconds`` if shorter), so a report being written is not touched.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ARCHIVE = "archive"
STAMP = "%Y%m%dT%H%M%SZ"
LEFTOVER_SECONDS = 3600.0

log = logging.getLogger(__name__)


@dataclass
class PurgeResult:
    archived: list[Path] = field(default_factory=list)  # the archive files created
    purged: list[Path] = field(default_factory=list)  # the archive files deleted


def report_time(path: Path) -> float:
    """Creation time of a report folder or archive from its name, else its mtime."""
    name = path.name.removesuffix(".tar.gz")
    try:
        return datetime.strptime(name.split("-", 1)[0], STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return path.stat().st_mtime


def _leftover(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith((".partial", ".old"))


def purge_reports(directory: str | Path, retention_seconds: float, now: float,
                  archive_seconds: float | None = None) -> PurgeResult:
    """Archive reports older than ``retention_seconds``; delete archives older than that + ``archive_seconds``."""
    root = Path(directory)
    result = PurgeResult()
    if not root.is_dir():
        return result
    keep_archives = retention_seconds if archive_seconds is None else archive_seconds
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != ARCHIVE):
        for report in sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.is_symlink()):
            if _leftover(report):
                if now - report.stat().st_mtime > min(retention_seconds, LEFTOVER_SECONDS):
                    shutil.rmtree(report, ignore_errors=True)
                continue
            if now - report_time(report) <= retention_seconds:
                continue
            target = root / ARCHIVE / model_dir.name / (report.name + ".tar.gz")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            with tarfile.open(tmp, "w:gz") as tar:
                tar.add(report, arcname=report.name)
            tmp.replace(target)
            shutil.rmtree(report)
            result.archived.append(target)
        if not any(model_dir.iterdir()):
            model_dir.rmdir()
    archive = root / ARCHIVE
    if archive.is_dir():
        for path in sorted(archive.glob("*/*.tar.gz")):
            if now - report_time(path) > retention_seconds + keep_archives:
                path.unlink()
                result.purged.append(path)
        for model_dir in archive.iterdir():
            if model_dir.is_dir() and not any(model_dir.iterdir()):
                model_dir.rmdir()
    if result.archived or result.purged:
        log.info("reports: %d archived, %d purged", len(result.archived), len(result.purged))
    return result
