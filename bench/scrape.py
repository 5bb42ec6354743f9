"""What a Prometheus scrape of /metrics costs the daemon with many models.

    python bench/scrape.py [--models 1000] [--repeats 3] [--json PATH]

Fills one ``Metrics`` with the checks of ``--models`` models as a default monitor of 20 numeric
features evaluates them (per feature a drift CUSUM and four quality rates, plus performance,
estimated performance, prediction drift: 111 checks a model), then times, in CPU seconds,
``Metrics.exposition()`` (what ``/metrics`` serves) against prometheus_client's
``generate_latest`` of the same registry (the baseline: what it served before), alternated,
medians of ``--repeats``; and gzip's level 1 on the page (sent when the scraper accepts it, as
Prometheus does). The scrape runs in the HTTP thread, but holds the GIL the consume loop needs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from driftwarden.daemon.metrics import Metrics  # noqa: E402
from driftwarden.detectors.findings import Finding  # noqa: E402

QUALITY = ("missing_rate", "missing_key_rate", "out_of_range_rate", "type_mismatch_rate")
MODEL_CHECKS = [("performance", m, m) for m in ("accuracy", "f1", "roc_auc")] + [
    ("estimated_performance", m, m) for m in ("accuracy", "f1", "roc_auc")] + [
    ("prediction_drift", "cusum", "prediction"), ("prediction_drift", "cusum", "score"),
    ("multivariate_drift", "cusum", "features"), ("concept_drift", "adwin", "error"),
    ("quality", "future_timestamp_rate", "timestamp")]


def filled(models: int, features: int = 20) -> Metrics:
    m = Metrics()
    for i in range(models):
        found = [Finding("data_drift", "cusum", f"f{j:02d}", 0.123456 * j, 10.2, False, 1.75e9 + i, 500, p_value=0.5)
                 for j in range(features)]
        found += [Finding("quality", q, f"f{j:02d}", 0.001 * j, 0.05, False, 1.75e9 + i, 500)
                  for j in range(features) for q in QUALITY]
        found += [Finding(k, d, s, 0.8, 0.7, False, 1.75e9 + i, 500) for k, d, s in MODEL_CHECKS]
        m.observe_findings(f"model-{i:04d}", found)
    return m



def cpu(fn: object) -> float:
    t = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the figures and their baselines here (bench/run_all.py)")
    args = ap.parse_args()
    from prometheus_client import generate_latest

    m = filled(args.models)
    page = m.exposition()
    series = sum(1 for line in page.splitlines() if not line.startswith(b"#"))
    old, new, packed = [], [], []
    for _ in range(args.repeats):
        old.append(cpu(lambda: generate_latest(m.registry)))
        new.append(cpu(m.exposition))
        packed.append(cpu(lambda: gzip.compress(page, compresslevel=1)))
    size_gz = len(gzip.compress(page, compresslevel=1))
    o, n, z = (statistics.median(x) for x in (old, new, packed))
    print(f"{args.models} models, {series:,} series, {len(page) / 1e6:.1f} MB ({size_gz / 1e6:.2f} MB gzipped): "
          f"exposition {n:.2f} s CPU, generate_latest {o:.2f} s ({o / n:.1f}x), gzip level 1 {z:.2f} s")
    if args.json is not None:
        command = f"bench/scrape.py --models {args.models} --repeats {args.repeats}"
        figures = [
            figure(f"a /metrics scrape, {args.models} models x 111 checks ({series:,} series; {command})", n, "s CPU",
                   "prometheus_client's generate_latest, same registry", o),
            figure("the scrape's page, gzipped as Prometheus asks for it", size_gz / 1e6, "MB",
                   "the page as text", len(page) / 1e6),
        ]
        args.json.write_text(json.dumps({"bench": "scrape", "command": command, "figures": figures}, indent=1))


if __name__ == "__main__":
    main()
