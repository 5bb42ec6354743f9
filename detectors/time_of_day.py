"""Drift judged against the reference's same time of day, for subjects that follow the day.

A feature whose distribution follows the day (longer sessions in the evening, another
region mix at night) differs at every hour from a reference of whole days: against
the whole day, the hours of the cycle's extremes look drifted (PSI 0.16-0.19 for a
+-0.3 sd cycle), as much as a real moderate fault. What recurs in the reference is
not drift, so such a subject's block is compared with the reference rows of the same
time of day.

When it applies (:func:`day_slots`): the reference has event timestamps (a ``timestamp``
column) spanning at least :data:`MIN_SPAN` (23 h: a day of data) with at least
:data:`MIN_ROWS_PER_SLOT` rows per slot. Its time of day (UTC) is then cut into
:data:`SLOTS` slots of equal reference counts (hours where the reference is busy get
narrower slots). Otherwise nothing changes: every subject is judged against the whole
reference, as without this module.

Which subjects (:func:`follows_the_day`): a chi-square test of independence of the
subject's bins (its drift bins: reference deciles, or categories) and the slot over the
reference rows, and for a numeric subject a 2-dof test of a smooth cycle (:func:`cycle_p`),
all Holm-corrected together over the model's subjects at :data:`DEPENDENCE_ALPHA`.
A steady subject keeps its KS test against the whole reference (full sensitivity); a
subject picked by chance loses only a little power, never its false-alarm guarantee.

How a block is judged (:meth:`DailyProfile.expected`): each of the block's rows weighs half
for its slot and a quarter for each neighbour (:meth:`DaySlots.weights`: every block of a
slot reuses that slot's reference rows, so their scores share its sampling noise; the
neighbours give 2.7 times the rows, and on the scenario suite's two-day cycle the CUSUMs of
the cycling subjects stayed at 0.5-0.9 h where the slot alone let them reach 1.3-1.4 h);
with slot weights ``w_s``, under "no drift" its bins follow the mixture ``sum_s w_s p_s`` of
the slots' reference proportions. The block's p-value is the chi-square homogeneity test
of its bin counts against that mixture taken as a reference sample of ``m_eff =
1 / sum_s (w_s^2 / m_s)`` rows (the mixture's sampling variance). The effect-size floor
compares the change window with the same mixture, pooled over its blocks.

Memory: per selected subject its bin counts per slot (24 x bins int32, ~1 KB), per model
the slot edges; nothing for steady subjects.

Limits: with one day of reference a daily cycle cannot be told from a trend during that
day (both are "what the reference shows at that hour"); slots are UTC, so a cycle that
follows local time moves by an hour across a daylight-saving change.

>>> rng = np.random.default_rng(1)
>>> t = np.sort(rng.uniform(0, 86_400, 20_000))
>>> slots, why = day_slots(t)
>>> slots.n, why
(24, 'the reference spans 24.0 h')
>>> day_slots(t[:10_000])[1]
'the reference spans 12.0 h of timestamps, less than 23 h'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import chdtrc

from driftwarden.detectors.binning import NumericBinning

DAY = 86_400.0
SLOTS = 24  # time-of-day slots of equal reference counts
MIN_SPAN = DAY - 3_600.0  # the reference's timestamps span at least 23 h (a day of data)
MIN_ROWS_PER_SLOT = 100
DEPENDENCE_ALPHA = 0.01  # Holm over the model's subjects
MIN_EXPECTED = 5.0  # bins of the dependence test with fewer expected rows per slot are pooled


@dataclass(frozen=True, slots=True)
class DaySlots:
    """Slots of the day (UTC seconds since midnight): slot ``i`` is ``[edges[i-1], edges[i])``."""

    edges: np.ndarray  # the inner edges, increasing

    @property
    def n(self) -> int:
        return int(self.edges.size + 1)

    @property
    def centres(self) -> np.ndarray:
        """Each slot's middle (seconds of the day; the first and last slots meet at midnight)."""
        bounds = np.concatenate([[0.0], self.edges, [DAY]])
        return (bounds[:-1] + bounds[1:]) / 2

    def of(self, timestamps: np.ndarray) -> np.ndarray:
        """Slot index of each epoch-seconds timestamp."""
        return np.searchsorted(self.edges, np.mod(timestamps, DAY), side="right")

    def weights(self, timestamps: np.ndarray) -> np.ndarray:
        """Weights of the slots a block with these ``timestamps`` is judged against: each row counts
        half for its own slot and a quarter for each neighbour (the day is a circle).

        >>> DaySlots(np.array([21_600.0, 43_200.0, 64_800.0])).weights(np.array([0.0, 100.0])).tolist()
        [0.5, 0.25, 0.0, 0.25]
        """
        own = np.bincount(self.of(timestamps), minlength=self.n) / max(timestamps.size, 1)
        return 0.5 * own + 0.25 * (np.roll(own, 1) + np.roll(own, -1))


def day_slots(timestamps: np.ndarray | None) -> tuple[DaySlots | None, str]:
    """The reference's slots of the day, or None and why the time of day is not used."""
    if timestamps is None:
        return None, "the reference has no timestamps"
    t = timestamps[np.isfinite(timestamps) & (timestamps > 0)]
    if t.size < SLOTS * MIN_ROWS_PER_SLOT:
        return None, (f"the reference has {t.size} timestamped rows, fewer than {SLOTS * MIN_ROWS_PER_SLOT}"
                      if t.size else "the reference has no timestamps")
    span = float(t.max() - t.min())
    if span < MIN_SPAN:
        return None, f"the reference spans {span / 3600:.1f} h of timestamps, less than {MIN_SPAN / 3600:.0f} h"
    edges = np.unique(np.quantile(np.mod(t, DAY), np.arange(1, SLOTS) / SLOTS))
    return DaySlots(edges), f"the reference spans {span / 3600:.1f} h"


def independence_p(table: np.ndarray) -> float:
    """Chi-square test of independence of a slots x bins count table (sparse bins pooled).

    Bins whose smallest expected count per slot is under :data:`MIN_EXPECTED` are
    pooled into one; empty rows and columns are dropped. Equal to
    ``scipy.stats.chi2_contingency(table, correction=False)`` otherwise.

    >>> round(independence_p(np.array([[30, 10], [10, 30]])), 8)
    7.74e-06
    """
    t = np.asarray(table, dtype=np.float64)
    t = t[t.sum(axis=1) > 0]
    t = t[:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return 1.0
    rows = t.sum(axis=1)
    sparse = t.sum(axis=0) * rows.min() / t.sum() < MIN_EXPECTED
    if sparse.sum() >= 2:
        t = np.column_stack([t[:, ~sparse], t[:, sparse].sum(axis=1)])
    if t.shape[1] < 2:
        return 1.0
    expected = rows[:, None] * t.sum(axis=0)[None, :] / t.sum()
    stat = float(np.sum((t - expected) ** 2 / expected))
    return float(chdtrc((t.shape[0] - 1) * (t.shape[1] - 1), stat))


def cycle_p(table: np.ndarray, centres: np.ndarray) -> float:
    """Test of a daily cycle in an ordered variable: its bins' mid-ranks against ``(cos, sin)`` of the
    slots' centres (seconds of the day), the linear-by-linear association test with two row scores.

    ``Q = T' Cov(T)^-1 T`` with ``T = sum_s x_s sum_b n_sb (v_b - v)`` (x_s the centred row scores,
    v_b the bins' mid-ranks), ``Cov(T) = S_xx sum_i (v_i - v)^2 / (N - 1)`` under independence
    (permutation covariance), is chi-square with 2 dof; it equals ``(N - 1) R^2`` of the rows'
    mid-ranks regressed on the two scores. Far more powerful than :func:`independence_p` for a
    smooth cycle (2 dof instead of (slots - 1)(bins - 1)).

    >>> t = np.array([[40, 30, 30], [30, 40, 30], [30, 30, 40], [30, 30, 40]])
    >>> round(cycle_p(t, np.array([0.0, 21_600.0, 43_200.0, 64_800.0])), 4)
    0.1554
    """
    t = np.asarray(table, dtype=np.float64)
    n = t.sum()
    rows, cols = t.sum(axis=1), t.sum(axis=0)
    if n < 3 or (cols > 0).sum() < 2 or (rows > 0).sum() < 3:
        return 1.0
    v = np.cumsum(cols) - (cols - 1) / 2  # mid-rank of each bin
    v = v - cols @ v / n
    angle = 2 * np.pi * np.asarray(centres, dtype=np.float64) / DAY
    x = np.column_stack([np.cos(angle), np.sin(angle)])
    x = x - rows @ x / n
    stat = x.T @ (t @ v)
    cov = (x.T * rows) @ x * (cols @ (v * v)) / (n - 1)
    if np.linalg.matrix_rank(cov) < 2:
        return 1.0
    q = float(stat @ np.linalg.solve(cov, stat))
    return float(chdtrc(2, q))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values.

    >>> holm(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    m = p.size
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(np.minimum(p[order] * (m - np.arange(m)), 1.0))
    out = np.empty(m)
    out[order] = adjusted
    return out


class DailyProfile:
    """One subject's reference bin counts per slot of the day; the reference a block is judged against.

    >>> p = DailyProfile(np.array([[90, 10], [10, 90]]))
    >>> p.expected(np.array([1.0, 0.0])).tolist()  # a block inside slot 0: that slot's counts
    [90.0, 10.0]
    >>> ref = p.expected(np.array([0.5, 0.5])); ref.round(1).tolist(), round(float(ref.sum()), 1)
    ([100.0, 100.0], 200.0)
    """

    def __init__(self, slot_counts: np.ndarray, p_value: float = 0.0) -> None:
        self.slot_counts = np.asarray(slot_counts).astype(np.int32)
        self.p_value = p_value  # of the dependence test (shown in findings)

    @classmethod
    def of(cls, by_slot: np.ndarray, bounds: np.ndarray, values: np.ndarray, binning: object) -> DailyProfile:
        """Per-slot counts of ``values`` with ``binning`` (its ``counts`` method); ``values[by_slot]`` are
        the rows in slot order, slot ``s`` from ``bounds[s]`` to ``bounds[s + 1]``."""
        ordered = values[by_slot]
        n = bounds.size - 1
        if isinstance(binning, NumericBinning):  # one search for the whole column (bins as binning.counts)
            slot = np.repeat(np.arange(n), np.diff(bounds))
            present = ~np.isnan(ordered)
            idx = np.searchsorted(binning.edges, ordered[present], side="left")
            flat = np.bincount(slot[present] * binning.n_bins + idx, minlength=n * binning.n_bins)
            return cls(flat.reshape(n, binning.n_bins))
        counts = [binning.counts(ordered[bounds[s]:bounds[s + 1]]) for s in range(n)]  # type: ignore[attr-defined]
        return cls(np.vstack(counts))

    def expected(self, weights: np.ndarray) -> np.ndarray:
        """The reference counts a block with slot ``weights`` is judged against: the slots' mixture
        of proportions, scaled to its effective size ``1 / sum(w_s^2 / m_s)`` (float counts)."""
        m = self.slot_counts.sum(axis=1).astype(np.float64)
        use = (weights > 0) & (m > 0)
        if not use.any():
            return self.slot_counts.sum(axis=0).astype(np.float64)
        w = weights[use] / weights[use].sum()
        props = self.slot_counts[use] / m[use][:, None]
        m_eff = 1.0 / float(np.sum(w * w / m[use]))
        out: np.ndarray = (w @ props) * m_eff
        return out

    @property
    def thin(self) -> bool:
        """True when a slot holds fewer than :data:`MIN_ROWS_PER_SLOT` of the subject's values."""
        return bool(self.slot_counts.sum(axis=1).min() < MIN_ROWS_PER_SLOT)


def follows_the_day(profiles: dict[str, DailyProfile], centres: np.ndarray, ordered: set[str],
                    alpha: float = DEPENDENCE_ALPHA) -> dict[str, DailyProfile]:
    """The subjects whose reference distribution depends on the slot.

    Every subject gets :func:`independence_p` (any dependence); an ``ordered`` (numeric)
    one also :func:`cycle_p` (a smooth cycle of its level, which the first misses when it
    is weak: the scenario suite's score moves by ~0.06 sd over the day, p = 0.19 by the
    first, yet against the whole day its CUSUM reached 1.2 h in two days). All p-values of
    the model form one Holm family; a subject is chosen by its smallest adjusted one.
    """
    tests = [(n, independence_p(p.slot_counts)) for n, p in profiles.items() if not p.thin]
    tests += [(n, cycle_p(profiles[n].slot_counts, centres)) for n in profiles if n in ordered and not profiles[n].thin]
    if not tests:
        return {}
    adjusted = holm(np.array([p for _, p in tests]))
    best: dict[str, float] = {}
    for (name, _), p in zip(tests, adjusted, strict=True):
        best[name] = min(best.get(name, 1.0), float(p))
    out = {}
    for name, p in best.items():
        if p < alpha:
            profiles[name].p_value = p
            out[name] = profiles[name]
    return out


def daily_profiles(timestamps: np.ndarray | None, columns: dict[str, tuple[np.ndarray, object]],
                   alpha: float = DEPENDENCE_ALPHA) -> tuple[DaySlots | None, dict[str, DailyProfile], str]:
    """(slots, the profiles of the subjects that follow the day, what was decided and why).

    ``columns``: subject -> (its reference values, row-aligned with ``timestamps``; its binning).
    Rows without a timestamp (0 or NaN) count for neither the slots nor the profiles.
    """
    slots, why = day_slots(timestamps)
    if slots is None or timestamps is None:
        return None, {}, f"every subject is judged against the whole reference ({why})"
    stamped = np.flatnonzero(np.isfinite(timestamps) & (timestamps > 0))
    slot_of_rows = slots.of(timestamps[stamped])
    order = np.argsort(slot_of_rows, kind="stable")
    bounds = np.searchsorted(slot_of_rows[order], np.arange(slots.n + 1))
    by_slot = stamped[order]  # the timestamped rows, slot by slot
    profiles = {name: DailyProfile.of(by_slot, bounds, values, binning) for name, (values, binning) in columns.items()}
    ordered = {name for name, (_, binning) in columns.items() if isinstance(binning, NumericBinning)}
    chosen = follows_the_day(profiles, slots.centres, ordered, alpha)
    if not chosen:
        return slots, {}, f"no subject depends on the time of day in the reference ({why})"
    listed = ", ".join(f"{n} (p={p.p_value:.1e})" for n, p in chosen.items())
    return slots, chosen, (f"judged against the reference's same time of day ({slots.n} slots; {why}), "
                           f"their distribution depending on it: {listed}")
