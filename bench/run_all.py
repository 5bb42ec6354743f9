"""`make bench`: every benchmark, every figure next to its baseline measured in the same run.

    python bench/run_all.py [--quick] [--no-write]

Runs each benchmark script in its own process (one after the other: the machine is shared and
has 2 cores), collects the figures it writes with ``--json`` (medians of its repeats, each
with the baseline it was compared with in the same run), prints them as one table with the
ratio figure / baseline, and writes that table into README.md and bench/README.md between
their ``bench-table`` markers (``--no-write``: print only). ``--quick`` runs smaller sizes, to
check the wiring, not to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench-table:begin (bench/run_all.py writes this table) -->", "<!-- bench-table:end -->"


@dataclass(frozen=True)
class Bench:
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]


BENCHES = [
    Bench("bench/detectors.py", ("--repeats", "5", "--events", "50000"), ("--repeats", "1", "--events", "5000")),
    Bench("bench/kafka_run.py", ("--events", "100000", "--repeats", "3"), ("--events", "5000", "--repeats", "1")),
    Bench("bench/scrape.py", ("--models", "1000", "--repeats", "3"), ("--models", "20", "--repeats", "1")),
    # many models in one process; the size (--models 1000 --events 10000000) takes hours here
    Bench("bench/models.py", ("--models", "200", "--events", "2000000", "--window-size", "1000",
                              "--breakdown-models", "0"),
          ("--models", "5", "--events", "20000", "--window-size", "1000", "--breakdown-models", "0")),
]


def run(bench: Bench, quick: bool, out: Path) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / bench.script), *(bench.quick if quick else bench.args), "--json", str(out)]
    print(f"$ {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)  # its own output goes to the terminal as it runs
    print(f"({bench.script}: {time.perf_counter() - started:.0f} s)\n", flush=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def fmt(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def rows(results: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(what, figure, baseline, ratio) per figure; figures without a baseline have no ratio."""
    out = []
    for result in results:
        for f in result["figures"]:
            if f.get("baseline_value"):
                out.append((f["what"], fmt(f["value"], f["unit"]), f"{f['baseline']}: {fmt(f['baseline_value'], f['unit'])}",
                            f"{f['value'] / f['baseline_value']:.2f}x"))
            else:
                out.append((f["what"], fmt(f["value"], f["unit"]), "", ""))
    return out


def markdown(table: list[tuple[str, str, str, str]], when: str) -> str:
    lines = [f"Medians, each figure against its baseline measured in the same run (`make bench`, {when}):", "",
             "| what | figure | baseline, same run | ratio |", "| --- | --- | --- | --- |"]
    lines += [f"| {what} | {value} | {baseline} | {ratio} |" for what, value, baseline, ratio in table]
    return "\n".join(lines)


def write_table(path: Path, table: str) -> bool:
    """Replace the text between the markers of ``path``; False when it has none."""
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        return False
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text))
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the wiring, figures not to quote")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave the READMEs alone")
    args = parser.parse_args()
    results = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for i, bench in enumerate(BENCHES):
            if (ROOT / bench.script).exists():
                results.append(run(bench, args.quick, Path(tmp) / f"{i}.json"))
    table = rows(results)
    width = max(len(what) for what, *_ in table)
    print(f"{'what':<{width}}  {'figure':>18}  {'ratio':>7}  baseline (same run)")
    for what, value, baseline, ratio in table:
        print(f"{what:<{width}}  {value:>18}  {ratio:>7}  {baseline}")
    if not args.no_write and not args.quick:
        when = time.strftime("%Y-%m-%d", time.gmtime())
        commands = "; ".join(f"`{r['command']}`" for r in results)
        load = f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} cores"
        text = markdown(table, f"{when}, {commands}; {load}")
        for path in (ROOT / "README.md", ROOT / "bench" / "README.md"):
            print(f"{path.relative_to(ROOT)}: {'table written' if write_table(path, text) else 'no bench-table markers'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
