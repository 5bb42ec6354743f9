"""What a daemon loads before it has anything to report: not the plotting stack (~40 MiB of RSS per
process, loaded by the first report instead)."""

from __future__ import annotations

import subprocess
import sys


def test_the_daemon_loads_matplotlib_with_its_first_report_not_at_start() -> None:
    code = ("import sys; import driftwarden.daemon.app, driftwarden.daemon.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'PIL')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
    code = "import sys; from driftwarden.alerts.reports import builder, plots; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip() == "True"
