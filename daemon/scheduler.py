"""Periodic maintenance jobs of a running daemon (apscheduler, in a background thread).

* report retention: reports older than ``reports.retention`` are archived, old archives purged;
* outbox retention: delivered or permanently failed notifications older than
  ``OUTBOX_KEEP`` seconds are deleted (pending ones are never touched).

Both jobs touch only files and the outbox (which has its own lock), never the consume
loop's state, so they can run beside it. ``run_once(now)`` runs them synchronously (tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.reports.retention import purge_reports
from driftwarden.daemon.config import Config, parse_duration

log = logging.getLogger(__name__)
OUTBOX_KEEP = 7 * 86400.0  # longer than repeat_interval: threads of open alerts stay resolvable


class Maintenance:
    def __init__(self, config: Config, outbox: Outbox, clock: Callable[[], float] = time.time,
                 interval: float = 3600.0) -> None:
        self.config = config
        self.outbox = outbox
        self.clock = clock
        self.interval = interval
        self._scheduler: BackgroundScheduler | None = None

    def run_once(self, now: float | None = None) -> dict[str, int]:
        now = self.clock() if now is None else now
        result = purge_reports(self.config.resolve(self.config.reports.directory),
                               parse_duration(self.config.reports.retention), now)
        purged = self.outbox.purge(now - OUTBOX_KEEP)
        counts = {"reports_archived": len(result.archived), "archives_purged": len(result.purged),
                  "outbox_purged": purged}
        if any(counts.values()):
            log.info("maintenance: %s", counts)
        return counts

    def _job(self) -> None:
        try:
            self.run_once()
        except Exception:  # a maintenance failure must not stop the daemon
            log.exception("maintenance job failed")

    def start(self) -> None:
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(self._job, "interval", seconds=self.interval, id="maintenance",
                                max_instances=1, coalesce=True)
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
