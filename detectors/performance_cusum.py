"""Accuracy of a classifier judged sequentially, overall and per segment, naming the segment that fell.

Why: a window of 5,000 labels (and two of them for an alert) made a performance
fault wait 10,000 outcomes. Here every labelled outcome adds evidence:

* one :class:`~driftwarden.detectors.cusum.BernoulliCusum` on the error stream of all
  outcomes, against the reference's error rate, and one per segment (each value of
  each segment column with at least ``MIN_REFERENCE`` reference rows) against that
  segment's reference error rate (each rate's upper bound at ``REFERENCE_Z`` standard
  errors: a rate estimated low from a small reference would make healthy traffic look
  worse), so a fault confined to ``plan=pro`` is not diluted
  by the healthy rest of the traffic;
* every threshold is calibrated (Markov chain run length, see ``cusum.py``) so that
  the ``m`` CUSUMs of the model together expect at most ``false_alarms_per_million``
  false alarms per million labelled outcomes: each gets an in-control run length of
  ``m * 1e6 / budget`` (Bonferroni over the CUSUMs; a segment's run length counts
  only its own rows, so its share of the budget is spent more slowly still);
* a verdict (one finding, key ``performance/accuracy/accuracy``) every ``block_size``
  outcomes: degraded while any CUSUM is past its threshold. ``statistic`` is the
  largest ``S / h`` (the evidence in units of its threshold), ``threshold`` 1. Every
  ``S`` is held at most ``CEILING * h``, so after a recovery the alarm clears within
  about ``h`` divided by the in-control drift outcomes;
* a degraded verdict names the worst segments: exact one-sided binomial tests of each
  segment's accuracy since the change-point estimate (the last time the leading
  CUSUM was 0) against its reference accuracy, Holm-adjusted across all segments
  (``segments.SegmentBaseline``), and whether it fell further than the rest of the
  traffic; the most significant segment blamed at ``segment_alpha`` is
  ``details["segment"]`` (``plan=pro``); it and its test's numbers are kept for the
  rest of the alarm (segments are tested until one is blamed). A fault of the whole
  model names no segment;
* a degraded verdict is ``critical`` when the accuracy since the change (of the blamed
  segment, when a segment's CUSUM leads) is worse than its baseline by ``critical_factor``
  times 5 % of it, the rule F1, ROC AUC and CBPE's estimates follow
  (:func:`~driftwarden.detectors.metric_cusum.effect_severity`).

Results do not depend on how outcomes are batched: batches are cut at block ends.

>>> from driftwarden.detectors.spec import FeatureSpec, ModelSpec
>>> rng = np.random.default_rng(0)
>>> spec = ModelSpec(task="binary", features={"plan": FeatureSpec("categorical")})
>>> def rows(n, pro_error):
...     plan = rng.choice(["basic", "pro"], n).astype(object)
...     yt = rng.choice(["0", "1"], n).astype(object)
...     wrong = rng.random(n) < np.where(plan == "pro", pro_error, 0.1)
...     return yt, np.where(wrong, np.where(yt == "1", "0", "1"), yt).astype(object), {"plan": plan}
>>> yt, yp, feats = rows(20_000, 0.1)
>>> seq = SequentialAccuracy(spec, yt, yp, feats, PerformanceSettings())
>>> sorted(c.name for c in seq.cusums)
['all', 'plan=basic', 'plan=pro']
>>> yt, yp, feats = rows(1000, 0.4)
>>> first = next(f for f in seq.observe(yt, yp, feats, np.arange(1000.0)) if f.degraded)
>>> first.window_end, first.details["segment"], first.details["leading"]
(299.0, 'plan=pro', 'all')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftwarden.detectors.cusum import BernoulliCusum, threshold_for
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.metric_cusum import effect_severity
from driftwarden.detectors.replay_steps import ReplayStep
from driftwarden.detectors.segments import SegmentBaseline, default_segment_columns
from driftwarden.detectors.settings import PerformanceSettings
from driftwarden.detectors.spec import ModelSpec

REFERENCE_Z = 2.0  # CUSUMs start from the reference error rate's upper bound at this many standard errors
MIN_REFERENCE = 200  # reference rows a segment needs for a CUSUM of its own
CEILING = 2.0  # S is held at most CEILING * h at each verdict
KEEP = 5000  # recent outcomes kept to name segments (bounded memory)
NAMED = 3  # segments listed in details["segments"]


@dataclass
class _Named:
    cusum: BernoulliCusum
    name: str
    column: str | None = None
    code: int = 0
    zero_at: int = 0  # outcome index (all outcomes) after which this CUSUM last left 0


class Recent:
    """The last :data:`KEEP` rows of some columns, in arrays of that length claimed (and written)
    at construction: a model's memory does not creep up over its first KEEP outcomes, and no
    array is allocated per batch to hold them.

    >>> r = Recent({"x": np.float64}, keep=3)
    >>> r.keep({"x": np.arange(5.0)}); r.columns()["x"]
    array([2., 3., 4.])
    """

    def __init__(self, dtypes: dict[str, Any], keep: int = KEEP) -> None:
        # written, not np.zeros: calloc'd pages fresh from the system stay unmapped until first written
        self._cols = {k: np.full(keep, 0, dtype=d) for k, d in dtypes.items()}
        self.n = 0

    def columns(self) -> dict[str, np.ndarray]:
        """The rows kept, oldest first (views: read them before the next :meth:`keep`)."""
        return {k: v[: self.n] for k, v in self._cols.items()}

    def keep(self, cols: dict[str, np.ndarray]) -> None:
        """Keep the last rows of ``cols`` (every column as long; the rows kept so far lead them, if wanted)."""
        for k, v in self._cols.items():
            tail = cols[k][-v.size :]
            v[: tail.size] = tail
        self.n = tail.size


def errors_of(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """1.0 where the label differs from the prediction (compared as text), else 0.0."""
    if y_true.dtype.kind == "O" and y_pred.dtype.kind == "O":  # labels already text (see batch.py)
        return np.not_equal(y_true, y_pred).astype(np.float64)
    return (y_true.astype(str) != y_pred.astype(str)).astype(np.float64)


class SequentialAccuracy:
    """Accuracy CUSUMs of one classifier; see the module docstring."""

    def __init__(self, spec: ModelSpec, y_true: np.ndarray, y_pred: np.ndarray, features: dict[str, np.ndarray],
                 settings: PerformanceSettings, critical_factor: float = 2.0) -> None:
        err = errors_of(y_true, y_pred)
        self.block = settings.block_size
        self.alpha = settings.segment_alpha
        self.budget = settings.false_alarms_per_million
        self.critical_factor = critical_factor
        self.baseline = SegmentBaseline(spec, features, 1.0 - err, default_segment_columns(spec, features))
        self.reference_error = float(err.mean()) if err.size else float("nan")
        plans: list[tuple[str, str | None, int, float, int]] = [("all", None, 0, self.reference_error, err.size)]
        for s in self.baseline.slicers:
            n = self.baseline.n[s.name]
            for code in np.flatnonzero(n >= MIN_REFERENCE).tolist():
                plans.append((f"{s.name}={s.labels[code]}", s.name, code,
                              1.0 - float(self.baseline.rate[s.name][code]), int(n[code])))
        target = len(plans) * 1e6 / settings.false_alarms_per_million
        self.cusums: list[_Named] = []
        for name, column, code, p0, rows in plans:
            p0 = min(max(p0, 1e-4), 1 - 1e-4)
            # the reference's error rate is itself an estimate: one from too few rows that came out
            # low makes healthy traffic look worse; judge against its upper bound
            p0 = min(p0 + REFERENCE_Z * math.sqrt(p0 * (1 - p0) / rows), 1 - 1e-4)
            cs = BernoulliCusum(p0, settings.odds_ratio, 0.0)
            cs.h = threshold_for(cs.p0, cs.p1, target)
            self.cusums.append(_Named(cs, name, column, code))
        self.seen = 0
        self.named: dict[str, Any] | None = None  # the segment blamed in the current alarm, and its test
        # the last KEEP outcomes: errors (0/1, a byte each), their predictions' times, segment codes
        self._code_columns = self.baseline.columns  # (a property: made once here)
        self._recent = Recent({"errors": np.uint8, "times": np.float64, **{c: np.int64 for c in self._code_columns}})
        self.last_degraded: ReplayStep | None = None  # the last batch of :meth:`observe` with a degraded verdict

    def observe(self, y_true: np.ndarray, y_pred: np.ndarray, features: dict[str, np.ndarray],
                t: np.ndarray, prediction_t: np.ndarray | None = None) -> list[Finding]:
        """Add labelled outcomes in order; one finding per ``block_size`` outcomes completed.

        ``t``: the outcomes' event times (a verdict is dated by its last outcome);
        ``prediction_t``: their predictions' (the change point is dated by them; default ``t``).
        """
        err = errors_of(y_true, y_pred)
        n = err.size
        if n == 0:
            return []
        codes = self.baseline.codes(features)
        base, named = self.seen, self.named
        before: list[list[float | int]] = []  # each CUSUM's S, count and change point before the batch
        ends = np.arange(self.block - base % self.block, n + 1, self.block)  # verdicts after these rows
        # per CUSUM: its rows in this batch, S after each, and S and the change point at each block end
        at_ends: list[tuple[np.ndarray, np.ndarray]] = []
        for c in self.cusums:
            rows = np.arange(n) if c.column is None else (
                np.flatnonzero(codes[c.column] == c.code) if c.column in codes else np.empty(0, dtype=np.int64))
            before_s, before_zero = c.cusum.s, c.zero_at
            before.append([before_s, c.cusum.seen, before_zero])
            path = c.cusum.update(err[rows], CEILING * c.cusum.h)
            last_zero = np.maximum.accumulate(np.where(path <= 0.0, np.arange(path.size), -1)) if path.size else path
            k = np.searchsorted(rows, ends)  # rows of this CUSUM up to each block end
            has = k > 0
            s_end = np.where(has, path[np.maximum(k - 1, 0)] if path.size else before_s, before_s)
            z = last_zero[np.maximum(k - 1, 0)].astype(np.int64) if path.size else np.full(ends.size, -1)
            zero_end = np.where(has & (z >= 0), base + rows[np.maximum(z, 0)] + 1 if rows.size else 0, -1)
            zero_end = np.maximum.accumulate(np.maximum(zero_end, before_zero)) if ends.size else zero_end
            if path.size and (path <= 0.0).any():
                c.zero_at = int(base + rows[int(last_zero[-1])] + 1)
            at_ends.append((s_end, zero_end))
        recent = self._recent.columns()
        keep = {"errors": np.concatenate([recent["errors"], err]),
                "times": np.concatenate([recent["times"], np.asarray(t if prediction_t is None else prediction_t,
                                                                     dtype=np.float64)]),
                "ends": np.asarray(t, dtype=np.float64),
                **{k: np.concatenate([recent[k], codes.get(k, np.full(n, -1))]) for k in self._code_columns}}
        offset = keep["errors"].size - n  # where this batch starts in ``keep``
        out = []
        outcome_t = keep.pop("ends")
        for i, end in enumerate(ends.tolist()):
            state = [(float(s_end[i]), int(zero_end[i])) for s_end, zero_end in at_ends]
            out.append(self._verdict(base + end, state, keep, offset + end, float(outcome_t[end - 1])))
        if any(f.degraded for f in out):  # what replays it: the state before, the rows kept before (no copy: fresh)
            batch = {"t": np.asarray(t, dtype=np.float64), "y_true": y_true, "y_pred": y_pred,
                    **({"prediction_t": np.asarray(prediction_t, dtype=np.float64)} if prediction_t is not None
                       else {}),
                    **{"f:" + k: v for k, v in features.items()},
                    **{"recent:" + k: v[:offset] for k, v in keep.items()}}
            self.last_degraded = ReplayStep("accuracy_batch", out[-1].window_end,
                                            {"seen": base, "named": named, "cusums": before}, batch)
        self.seen += n
        self._recent.keep(keep)
        return out

    def replay(self, step: ReplayStep) -> list[Finding]:
        """The verdicts of a batch again: the state before it loaded (``step`` as :meth:`observe` kept it)."""
        self.seen, self.named = int(step.state["seen"]), step.state["named"]
        for c, (s, seen, zero_at) in zip(self.cusums, step.state["cusums"], strict=True):
            c.cusum.s, c.cusum.seen, c.zero_at = float(s), int(seen), int(zero_at)
        recent = {k[len("recent:"):]: v for k, v in step.rows.items() if k.startswith("recent:")}
        self._recent.n = 0
        if len(recent["errors"]):
            self._recent.keep(recent)
        rows = step.rows
        return self.observe(rows["y_true"], rows["y_pred"], {k[2:]: v for k, v in rows.items() if k.startswith("f:")},
                            rows["t"], rows.get("prediction_t"))

    def _verdict(self, seen: int, state: list[tuple[float, int]], keep: dict[str, np.ndarray], stop: int,
                 end: float) -> Finding:
        """The verdict after ``seen`` outcomes (the last at ``end``): CUSUM levels and change points;
        ``keep[...][:stop]`` are the recent rows (the last ``KEEP`` of them count)."""
        ratios = [s / c.cusum.h for (s, _), c in zip(state, self.cusums, strict=True)]
        i = 0 if ratios[0] > 1.0 else int(np.argmax(ratios))  # the whole traffic leads when it is in alarm
        lead, (level, zero_at), ratio = self.cusums[i], state[i], max(ratios)
        degraded = ratio > 1.0
        kept = min(stop, KEEP)
        since = max(zero_at, seen - kept)
        rows = seen - since if since < seen else min(self.block, kept)
        view = {k: v[stop - rows: stop] for k, v in keep.items()}
        recent = view["errors"]
        accuracy = 1.0 - float(recent.mean())
        details: dict[str, Any] = {
            "leading": lead.name, "cusum": round(level, 4), "cusum_threshold": lead.cusum.h,
            "change_at": since, "change_time": float(view["times"][0]), "n_since_change": int(rows),
            "accuracy_since_change": accuracy, "baseline": 1.0 - self.reference_error,
            "false_alarms_per_million": self.budget}
        summary = f"accuracy within bounds (CUSUM {ratio:.2f} of its threshold)"
        severity = "warning"
        if degraded:
            if self.named is None:  # tested until a segment is blamed; then its numbers stay those
                codes = {k: v for k, v in view.items() if k in self._code_columns}
                blamed = [t for t in self.baseline.tests(codes, 1.0 - recent, self.alpha) if t.blamed(self.alpha)]
                if blamed:
                    t = blamed[0]
                    self.named = {"segment": t.label, "segments": ",".join(b.label for b in blamed[:NAMED]),
                                  "segment_accuracy": t.rate, "segment_baseline": t.reference_rate,
                                  "segment_n": t.n, "segment_p_holm": t.adjusted}
            if self.named is not None:
                details.update(self.named)
            where = f" in {lead.name}" if lead.column is not None else ""
            summary = (f"accuracy{where} fell: {accuracy:.3g} over the {rows} outcomes since outcome "
                       f"{since} (reference {1.0 - self.reference_error:.3g}); CUSUM {level:.3g} past "
                       f"{lead.cusum.h:.3g}")
            if self.named is not None:
                summary += f"; worst segment {self._describe(details)}"
            # the effect's size, by the rule of every other metric (F1, ROC AUC, estimates): relative to the baseline
            value, base = accuracy, 1.0 - self.reference_error
            if lead.column is not None and "segment_accuracy" in details:
                value, base = details["segment_accuracy"], details["segment_baseline"]
            severity = effect_severity(base - value, base, self.critical_factor)
        else:
            self.named = None
        return Finding(kind="performance", detector="accuracy", subject="accuracy", statistic=round(ratio, 6),
                       threshold=1.0, degraded=degraded, window_end=end, window_size=int(rows),
                       severity=severity, summary=summary, details=details)  # type: ignore[arg-type]

    @staticmethod
    def _describe(d: dict[str, Any]) -> str:
        if "segment_accuracy" not in d:
            return str(d["segment"])
        return (f"{d['segment']}: accuracy {d['segment_accuracy']:.3g} vs reference {d['segment_baseline']:.3g} "
                f"(n={d['segment_n']}, Holm p={d['segment_p_holm']:.2g})")

    def state(self) -> dict[str, Any]:
        recent = self._recent.columns()
        return {"seen": self.seen, "named": self.named, "errors": recent["errors"].tolist(),
                "times": recent["times"].tolist(), "codes": {k: recent[k].tolist() for k in self._code_columns},
                "cusums": {c.name: {**c.cusum.state(), "since": c.zero_at} for c in self.cusums}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.seen, self.named = int(state["seen"]), state["named"]
        errors = np.asarray(state["errors"], dtype=np.float64)
        self._recent.n = 0
        self._recent.keep({"errors": errors, "times": np.asarray(state["times"], dtype=np.float64),
                           **{k: np.asarray(state["codes"].get(k, np.full(errors.size, -1)), dtype=np.int64)
                              for k in self._code_columns}})
        for c in self.cusums:
            if c.name in state["cusums"]:
                c.cusum.load_state(state["cusums"][c.name])
                c.zero_at = int(state["cusums"][c.name]["since"])
