"""Report figures with matplotlib's Agg canvas, returned as inline ``data:image/png;base64`` URIs.

No pyplot (no global figure registry, safe from a daemon thread). Text that
comes from user data goes through :func:`plot_text`: mathtext is off for it,
characters the font cannot draw become ``?`` (no "missing glyph" warnings) and
long values are shortened.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from driftwarden.alerts.reports.history import Point
from driftwarden.alerts.reports.report import Segment
from driftwarden.detectors.binning import CategoricalBinning, missing_mask

DPI = 80
REF_COLOR, CUR_COLOR, BAD_COLOR = "#4c72b0", "#dd8452", "#c44e52"


@functools.lru_cache(maxsize=1)
def _charmap() -> frozenset[int]:
    path = font_manager.findfont(font_manager.FontProperties())
    return frozenset(FT2Font(path).get_charmap())


def plot_text(value: object, limit: int = 40) -> str:
    """User text safe for a matplotlib label: drawable characters only, no mathtext, shortened."""
    chars = _charmap()
    text = "".join(c if c.isprintable() and ord(c) in chars else "?" for c in str(value))
    text = text.replace("$", "\\$")
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _figure(width: float = 6.0, height: float = 2.8) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _times(t: Sequence[float]) -> np.ndarray:
    return (np.asarray(t, dtype=np.float64) * 1000).astype("datetime64[ms]")


# matplotlib's dates are years 1-9999; a margin keeps the axis' own padding inside them
_FIRST_DATE, _LAST_DATE = -62_000_000_000.0, 253_000_000_000.0


def time_range(times: Sequence[float]) -> tuple[float, float] | None:
    """The times a timeline plots: around the bulk of them, so that one event dated decades off
    (hostile or broken clocks) neither stretches the axis over decades nor leaves matplotlib's
    date range (which raised "Date ordinal ... converts to ..." and lost the plot). None if no
    time is plottable.

    >>> time_range([1.75e9, 1.75e9 + 60, 1.75e9 + 120, 4e11])
    (1749913060.0, 1750087060.0)
    """
    t = np.asarray(times, dtype=np.float64)
    t = t[np.isfinite(t) & (t > _FIRST_DATE) & (t < _LAST_DATE)]
    if not t.size:
        return None
    lo, mid, hi = np.percentile(t, [25, 50, 75])
    reach = 10 * (hi - lo) + 86_400.0  # ten inter-quartile spans, at least a day
    return float(max(mid - reach, _FIRST_DATE)), float(min(mid + reach, _LAST_DATE))


def distribution(name: str, reference: np.ndarray, current: np.ndarray, numeric: bool) -> str:
    """Reference vs current: density histograms (numeric) or category shares (categorical)."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title(plot_text(name, 60), fontsize=10)
    if numeric:
        ref = np.asarray(reference, np.float64)
        cur = np.asarray(current, np.float64)
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        both = np.concatenate([ref, cur])
        if both.size:
            lo, hi = np.quantile(both, [0.005, 0.995])
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, 31)
            for values, color, label in ((ref, REF_COLOR, "reference"), (cur, CUR_COLOR, "current")):
                if values.size:
                    ax.hist(
                        np.clip(values, lo, hi),
                        bins=edges.tolist(),
                        density=True,
                        histtype="stepfilled",
                        alpha=0.45,
                        color=color,
                        label=f"{label} (n={values.size})",
                    )
            ax.legend(fontsize=8)
    else:
        binning = CategoricalBinning.from_reference(reference, 12)
        ref_c = binning.counts(reference).astype(float)
        cur_c = binning.counts(current).astype(float)
        keep = (ref_c + cur_c) > 0
        labels = [plot_text(lbl, 18) for lbl, k in zip(binning.labels, keep, strict=True) if k]
        ref_p = ref_c[keep] / max(ref_c.sum(), 1)
        cur_p = cur_c[keep] / max(cur_c.sum(), 1)
        x = np.arange(len(labels))
        ax.bar(x - 0.2, ref_p, 0.4, color=REF_COLOR, label="reference")
        ax.bar(x + 0.2, cur_p, 0.4, color=CUR_COLOR, label="current")
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("share", fontsize=8)
        ax.legend(fontsize=8)
        miss = float(missing_mask(current).mean()) if len(current) else 0.0
        if miss:
            ax.text(0.99, 0.02, f"missing {miss:.0%}", transform=ax.transAxes, ha="right", fontsize=8)
    return _uri(fig)


def timeline(
    title: str,
    lines: dict[str, list[Point]],
    onset: float | None,
    ylabel: str,
    band: tuple[list[float], list[float], list[float]] | None = None,
) -> str:
    """Statistic per window end for each line, its threshold dashed, degraded windows marked, onset line.

    Points dated outside :func:`time_range` of all the lines' points are left out, and counted in the title.
    """
    fig = _figure(7.0, 2.8)
    ax = fig.add_subplot()
    span = time_range([p.window_end for points in lines.values() for p in points])

    def inside(t: float) -> bool:
        return span is not None and span[0] <= t <= span[1]

    left_out = sum(not inside(p.window_end) for points in lines.values() for p in points)
    if left_out:
        title = f"{title} ({left_out} point{'s' * (left_out > 1)} dated far off left out)"
    ax.set_title(plot_text(title, 80 + 40 * bool(left_out)), fontsize=10)
    for i, (label, all_points) in enumerate(lines.items()):
        points = [p for p in all_points if inside(p.window_end)]
        if not points:
            continue
        color = f"C{i % 10}"
        t = _times([p.window_end for p in points])
        ax.plot(t, [p.statistic for p in points], marker=".", color=color, label=plot_text(label, 30))
        ax.plot(t, [p.threshold for p in points], linestyle="--", linewidth=1, color=color, alpha=0.7)
        bad = [p for p in points if p.degraded]
        if bad:
            ax.scatter(_times([p.window_end for p in bad]), [p.statistic for p in bad], color=BAD_COLOR, zorder=3, s=18)
    if band is not None and band[0]:
        keep = [i for i, t in enumerate(band[0]) if inside(t)]
        if keep:
            ax.fill_between(_times([band[0][i] for i in keep]), [band[1][i] for i in keep], [band[2][i] for i in keep],
                            color="C0", alpha=0.15, label="confidence interval")
    if onset is not None and inside(onset):
        ax.axvline(_times([onset])[0], color=BAD_COLOR, linewidth=1.2, label="onset")
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylabel(plot_text(ylabel, 30), fontsize=8)
    ax.tick_params(labelsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    return _uri(fig)


def segment_errors(segments: Sequence[Segment]) -> tuple[np.ndarray, np.ndarray]:
    """(values, 2 x n error bar lengths) for the segments whose value is a number.

    Lengths are never negative (matplotlib refuses them): a bound a float rounding on the
    wrong side of the value, or a bound that is NaN, draws no bar on that side.
    """
    values = np.array([s.value for s in segments], dtype=np.float64)
    low = values - np.array([s.ci_low for s in segments], dtype=np.float64)
    high = np.array([s.ci_high for s in segments], dtype=np.float64) - values
    err = np.nan_to_num(np.clip(np.array([low, high]).reshape(2, len(values)), 0.0, None), nan=0.0)
    return values, err


def segments_chart(segments: Sequence[Segment]) -> str:
    """Worst segments: value with its interval against the reference value (segments without a value are left out)."""
    segs = [s for s in list(segments)[:10] if np.isfinite(s.value)][::-1]
    fig = _figure(7.0, 0.45 * len(segs) + 1.0)
    ax = fig.add_subplot()
    y = np.arange(len(segs))
    values, err = segment_errors(segs)
    ax.errorbar(values, y, xerr=err, fmt="o", color=BAD_COLOR, label="current (interval)")
    ref = np.array([s.reference_value for s in segs], dtype=np.float64)
    shown = np.isfinite(ref)
    ax.scatter(ref[shown], y[shown], marker="|", s=200, color=REF_COLOR, label="reference")
    ax.set_yticks(y, [plot_text(s.label, 45) for s in segs], fontsize=8)
    ax.set_xlabel(segs[0].metric if segs else "", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=7, loc="best")
    return _uri(fig)
