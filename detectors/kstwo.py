"""Vectorized survival function of the two-sided one-sample KS statistic: ``scipy.stats.kstwo.sf``.

``scipy.stats.kstwo.sf(d, n)`` evaluates each element in a pure-Python scalar
loop (``scipy.stats._ksstats._kolmogn``): its Pelz-Good branch, where most KS
p-values of a window without drift land, costs ~50-150 us per value, and the
drift suite asks for ~22 p-values per window. :func:`kstwo_sf` takes the same
branches (Simard & L'Ecuyer 2011, as scipy 1.17 implements them) but evaluates
each branch for all its elements at once in numpy; its results equal scipy's to
rounding (a few ulps of the CDF, see the tests):

* d <= 0.5/n -> 1, d >= 1 -> 0, n not an integer >= 1 (NaN included) or d NaN
  -> NaN (``kstwo``'s own support and argument checks);
* Ruben-Gambino: 1/(2n) < d <= 1/n (exact product for n <= 140, Stirling beyond),
  and d >= 1 - 1/n (``2 (1 - d)**n``);
* ``2 * scipy.special.smirnov(n, d)`` for d >= 0.5, for n <= 140 with n d**2 > 4,
  and for n > 140 with 2.2 <= n d**2 < 370; 0 from n d**2 >= 370;
* Pelz-Good for n > 140 with n d**2 < 2.2, except where scipy uses DMTW: scipy's
  loop over k = maxk .. 1 is a (k, element) array up to the batch's largest
  maxk, in which each element keeps only its own terms.

Elements in the DMTW or Pomeranz branches (n <= 140 with n d**2 <= 4, and
n <= 100000 with n d**1.5 <= 1.4; both rare for drift statistics) and elements
with n >= 2**63 are computed by ``scipy.stats.kstwo.sf`` itself.

``scipy.special.smirnov`` sums ~n terms in double-double, ~1 us per unit of n
(2-4 ms at n = 4545, 90 ms at n = 100000), and every drifted feature of a window
(a p-value below ~0.025) lands there. For n > 1000 :func:`smirnov_sf` takes its
place: the same Birnbaum-Tingey sum in logs, with the binomial coefficients in
Stirling form so that no term carries an error of order n log n; equal to scipy's
to ~1e-13 relative and ~10 times faster. And scipy's DMTW overflows
for some large n with tiny d (e.g. d = 0.00025, n = 97575: SF 0.0 where the
truth is ~1, with "overflow encountered in matmul"); :func:`kstwo_sf` returns
what scipy returns there, without the warning.

>>> import numpy as np
>>> from scipy.stats import kstwo
>>> d, n = np.array([0.0, 0.01, 0.02, 0.03, 0.6, 1.0]), 4545
>>> p = kstwo_sf(d, n)
>>> p.round(6).tolist()
[1.0, 0.749722, 0.052008, 0.000548, 0.0, 0.0]
>>> bool(np.allclose(p, kstwo.sf(d, n), rtol=1e-12, atol=0.0))
True
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln
from scipy.special import smirnov as _smirnov
from scipy.stats import kstwo

__all__ = ["kstwo_sf", "smirnov_sf"]

# The constants of scipy.stats._ksstats.
_SQRT2PI = np.sqrt(2 * np.pi)
_LOG_2PI = np.log(2 * np.pi)
_MIN_LOG = -708
_PI_SQUARED = np.pi**2
_PI_FOUR = np.pi**4
_PI_SIX = np.pi**6
_STIRLING_COEFFS = (-2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                    -5.952380952380952381e-4, 7.9365079365079365079e-4, -2.7777777777777777778e-3, 8.3333333333333333333e-2)

# Ruben-Gambino: up to n = 140 the probability is an exact product of n factors.
_RG_PRODUCT_MAX_N = 140
_RG_FACTORS = np.arange(1, _RG_PRODUCT_MAX_N + 1, dtype=np.float64)

# Pelz-Good. Rows k = 16 .. 1 (ceil(16 z / pi) <= 8 in the SF's Pelz-Good branch, where z < 1.49).
_K = np.arange(16.0, 0.0, -1.0)
_M2 = (2 * _K - 1) ** 2  # m**2 for the odd m = 2k - 1
_M4, _M6 = _M2**2, _M2**3
_P2, _P4, _P6 = _PI_SQUARED / 4, _PI_FOUR / 16, _PI_SIX / 64
# Powers of z computed at once: 1, z**2, z**4, z**6, z**8 (the coefficients' basis), then 1/z, 1/z**4, 1/z**7,
# 1/z**10 (K0..K3 are divided by z, 6 z**4, 72 z**7, 6480 z**10), 1/z**3 and 1/z**6 (the extra sums of K2 and K3).
_Z_EXPONENTS = np.array([0.0, 2, 4, 6, 8, -1, -4, -7, -10, -3, -6])[:, None]
_K_FACTORS = _SQRT2PI / np.array([1.0, 6, 72, 6480])[:, None]
_ZERO, _ONE = np.zeros(16), np.ones(16)
# The coefficients of K0..K3's terms for each k, as polynomials in z**2: scipy's 1, k1a + k1b m**2,
# k2a + k2b m**2 + k2c m**4 and k3a + k3b m**2 + k3c m**4 + k3d m**6, expanded. Shape (k, K0..K3, basis).
_COEFFS = np.stack([
    np.stack([_ONE, _ZERO, _ZERO, _ZERO, _ZERO], axis=1),
    np.stack([_P2 * _M2, -_ONE, _ZERO, _ZERO, _ZERO], axis=1),
    np.stack([_P4 * _M4, -5 * _P2 * _M2 - 2 * _P4 * _M4, 2 + 2 * _P2 * _M2, 6 * _ONE, _ZERO], axis=1),
    np.stack([5 * _P6 * _M6, -60 * _P4 * _M4 - 30 * _P6 * _M6, 135 * _P2 * _M2 + 212 * _P4 * _M4, -30 - 96 * _P2 * _M2,
              -90 * _ONE], axis=1),
], axis=1)
_HALF_POWERS = (np.arange(4) / 2.0)[:, None]  # K0..K3 are divided by n**0, n**0.5, n**1, n**1.5
# exp() below this is subnormal (and slow), and never matters: see _pelz_good_cdf.
_EXP_FLOOR = -700.0


def _pelz_good_tables(kmax: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64],
                                          npt.NDArray[np.float64]]:
    """For the rows k = kmax .. 1: the coefficient matrix, the k of both halves of the exponent rows,
    the exponent rows (m**2, then 4 k**2, times log q), and the weights k**2, pi**2 k**4 of the extra sums."""
    rows = slice(_K.size - kmax, None)
    k = _K[rows]
    return (_COEFFS[rows].reshape(-1, 5), np.concatenate([k, k])[:, None], np.concatenate([_M2[rows], 4 * k * k])[:, None],
            np.stack([k**2, _PI_SQUARED * k**4]))


_PELZ_GOOD_TABLES = [_pelz_good_tables(kmax) for kmax in range(_K.size + 1)]

# From here on (infinity included) n is left to scipy: no C long for scipy.special.smirnov.
_MAX_N = 2.0**63


def kstwo_sf(d: npt.ArrayLike, n: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``scipy.stats.kstwo.sf(d, n)``, vectorized: P(D_n > d) for the two-sided KS statistic D_n.

    ``d`` and ``n`` broadcast together; the result has the broadcast shape and
    dtype float64 (a 0-d array for scalar inputs, where scipy returns a numpy
    scalar). As in scipy: NaN where ``n`` is not an integer >= 1 (NaN included)
    or ``d`` is NaN, 1 where ``d <= 0.5/n``, 0 where ``d >= 1``. Elements in the
    DMTW or Pomeranz branches (n <= 140 with n d**2 <= 4, or n <= 100000 with
    n d**1.5 <= 1.4), and with n >= 2**63, are computed by ``scipy.stats.kstwo.sf``
    itself (so an infinite n with 0 < d < 1 raises OverflowError, as in scipy).
    """
    x = np.asarray(d, dtype=np.float64)
    nf = np.asarray(n, dtype=np.float64)
    if x.shape != nf.shape:
        x, nf = np.broadcast_arrays(x, nf)
    shape = x.shape
    x, nf = x.reshape(-1), nf.reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore"):  # inf * 0, x**1.5 of x < 0, 0.5 / 0: none of them used
        t = nf * x
        nxsquared = t * x
        # The common case, Pelz-Good: an integer n > 140 with n x**2 < 2.2 (so 1/n < x < 0.5), and not DMTW.
        pelz = (nf > _RG_PRODUCT_MAX_N) & (t > 1.0) & (nxsquared < 2.2) & ((nf > 100000) | (nf * x**1.5 > 1.4))
        pelz &= (nf == np.round(nf)) & (nf < _MAX_N)
        if pelz.all() and pelz.size:
            return _clip(1.0 - _pelz_good_cdf(x, nf)).reshape(shape)
        valid = (nf >= 1.0) & (nf == np.round(nf))  # kstwo._argcheck
        low = 0.5 / nf  # kstwo._get_support: (0.5/n, 1)
    out = np.zeros(x.size)
    out[~valid | np.isnan(x)] = np.nan
    out[valid & (x <= low)] = 1.0
    if pelz.any():
        i = np.flatnonzero(pelz)
        out[i] = _clip(1.0 - _pelz_good_cdf(x[i], nf[i]))
    other = valid & (x > low) & (x < 1.0) & ~pelz
    if other.any():
        i = np.flatnonzero(other)
        out[i] = _sf_other(x[i], nf[i], t[i], nxsquared[i])
    return out.reshape(shape)


def _sf_other(x: npt.NDArray[np.float64], n: npt.NDArray[np.float64], t: npt.NDArray[np.float64],
              nxsquared: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``_kolmogn(n, x, cdf=False)`` outside Pelz-Good, for integers n >= 1 and 0.5/n < x < 1 (1-d arrays)."""
    res = np.zeros(x.size)  # 0 for n > 140 with n x**2 >= 370
    huge = ~(n < _MAX_N)
    rg_low = (t <= 1.0) & ~huge
    if rg_low.any():
        i = np.flatnonzero(rg_low)
        res[i] = _ruben_gambino_low(t[i], n[i])
    rg_high = ~rg_low & ~huge & (t >= n - 1.0)
    if rg_high.any():
        i = np.flatnonzero(rg_high)
        res[i] = _clip(2 * (1.0 - x[i]) ** n[i])
    middle = ~(rg_low | rg_high | huge)
    small = n <= _RG_PRODUCT_MAX_N
    smirnov = middle & ((x >= 0.5) | np.where(small, nxsquared > 4.0, (nxsquared >= 2.2) & (nxsquared < 370.0)))
    if smirnov.any():
        i = np.flatnonzero(smirnov & (n <= SMIRNOV_SUM_MIN_N))
        res[i] = _clip(2 * _smirnov(n[i].astype(np.int64), x[i]))
        for k in np.flatnonzero(smirnov & (n > SMIRNOV_SUM_MIN_N)).tolist():
            res[k] = min(max(2 * smirnov_sf(int(n[k]), float(x[k])), 0.0), 1.0)
    # Left in the middle, Pelz-Good excluded: n <= 140 with n x**2 <= 4 (DMTW or Pomeranz), n > 140 with
    # n x**2 < 2.2 (DMTW), n > 140 with n x**2 >= 370 (0).
    exact = (middle & ~smirnov & (small | (nxsquared < 2.2))) | huge
    if exact.any():
        i = np.flatnonzero(exact)
        with np.errstate(over="ignore", invalid="ignore"):  # scipy's DMTW can overflow (see the module docstring)
            res[i] = kstwo.sf(x[i], n[i])
    return res


SMIRNOV_SUM_MIN_N = 1000  # from here on smirnov_sf replaces scipy.special.smirnov
_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


def smirnov_sf(n: int, x: float) -> float:
    """``scipy.special.smirnov(n, x)``: P(D_n+ >= x), for an integer n >= 1 and 0 < x < 1.

    The Birnbaum-Tingey sum x * sum_j C(n, j) (1 - x - j/n)**(n - j) (x + j/n)**(j - 1),
    j = 0 .. floor(n (1 - x)), evaluated in logs with log C(n, j) in Stirling form:
    the terms' large parts (n log n, j log j, ...) cancel analytically, leaving
    (n - j) log1p(-x / (1 - j/n)) + j log1p(x n / j) - log(x + j/n) + O(log n),
    so each log-term is accurate to ~eps * n x instead of ~eps * n log n.

    >>> from scipy.special import smirnov
    >>> p = smirnov_sf(4545, 0.03)
    >>> round(p, 8), bool(abs(p / smirnov(4545, 0.03) - 1) < 1e-12)
    (0.00027404, True)
    """
    jmax = int(np.floor(n * (1.0 - x)))
    j = np.arange(1, jmax + 1, dtype=np.float64)
    u = j / n
    ratio = x / (1.0 - u)  # 1 (or an ulp above) at j = n (1 - x): that term is 0
    with np.errstate(divide="ignore"):
        head = np.where(ratio < 1.0, (n - j) * np.log1p(-np.minimum(ratio, 1.0)), -np.inf)
        logs = (head + j * np.log1p(x / u) - np.log(x + u)
                + 0.5 * np.log(n / (j * (n - j))) - _HALF_LOG_2PI
                + _stirling_rest(np.array([float(n)]))[0] - _stirling_rest(j) - _stirling_rest(n - j))
    logs = np.append(n * np.log1p(-x) - np.log(x), logs)  # j = 0: (1 - x)**n / x
    top = float(logs.max())
    return float(np.exp(top + np.log(x)) * np.exp(logs - top).sum())


def _stirling_rest(k: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """lgamma(k + 1) - (k log k - k + log(2 pi k) / 2) for k >= 1: the remainder of Stirling's formula."""
    out = np.empty_like(k)
    small = k < 50
    ks = k[small]
    out[small] = gammaln(ks + 1) - (ks * np.log(ks) - ks + 0.5 * np.log(ks) + _HALF_LOG_2PI)
    out[~small] = _stirling_series(k[~small])
    return out


def _stirling_series(n: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """lgamma(n + 1) - (n log n - n + log(2 pi n) / 2) for large n: scipy's series (``_STIRLING_COEFFS``)."""
    rn = 1.0 / n
    poly = np.zeros(n.size)
    for c in _STIRLING_COEFFS:  # np.polyval in 1/n**2
        poly = poly * (rn / n) + c
    return rn * poly


def _clip(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``np.clip(p, 0, 1)`` (scipy's ``_clip_prob``), NaN kept."""
    return np.minimum(np.maximum(p, 0.0), 1.0)


def _ruben_gambino_low(t: npt.NDArray[np.float64], n: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """SF for t = n x <= 1: 1 - n!/n**n (2t - 1)**n (Ruben & Gambino), and 1 for t <= 0.5."""
    prob = np.zeros(t.size)
    base = 2 * t - 1
    product = (t > 0.5) & (n <= _RG_PRODUCT_MAX_N)
    if product.any():
        i = np.flatnonzero(product)
        ni = n[i, None]
        factors = _RG_FACTORS[: int(ni.max())] * (1.0 / ni) * base[i, None]
        factors[_RG_FACTORS[: factors.shape[1]] > ni] = 1.0  # each element multiplies its own n factors
        prob[i] = np.prod(factors, axis=1)
    stirling = (t > 0.5) & ~product
    if stirling.any():
        i = np.flatnonzero(stirling)
        ni = n[i]
        log_nfactorial_div_n_pow_n = np.log(ni) / 2 - ni + _LOG_2PI / 2 + _stirling_series(ni)
        prob[i] = np.exp(log_nfactorial_div_n_pow_n + ni * np.log(base[i]))
    return _clip(1.0 - prob)


def _pelz_good_cdf(x: npt.NDArray[np.float64], n: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``scipy.stats._ksstats._kolmogn_PelzGood(n, x, cdf=True)`` for 0 < x < 1 with n x**2 < 2.2, elementwise.

    scipy's scalar loop over k = maxk .. 1 becomes a (k, element) array over
    k = max(maxk) .. 1 in which each element keeps only its own terms (k <= its
    maxk); the other terms are 0. The sums are scipy's, rounded differently (within
    a few ulps): the coefficients are a constant matrix times the powers of z;
    the Horner scheme sum of c_m q**(m**2) over odd m = 2k - 1 is summed directly,
    with q**(m**2) = exp(m**2 log q); the extra sums of K2 and K3 are weighted sums
    of q**(4 k**2) = exp(4 k**2 log q).

    exp() arguments below -700 are raised to -700: the true term is then below
    1e-304 times a coefficient < 1e10, and divided by z**10 n**1.5 (> 1e-14 as
    z > 0.04) it is < 1e-280, far below what 1 - CDF can resolve.
    """
    z = np.sqrt(n) * x
    zpowers = z**_Z_EXPONENTS
    zsquared = zpowers[1]
    qlog = (-_PI_SQUARED / 8) / zsquared

    maxk = np.ceil(z * (16 / np.pi))  # scipy: ceil(16 z / pi), maybe 1 more or less at a tie: a term < 1e-50 of the sum
    kmax = int(maxk.max())
    coeff_matrix, row_k, row_exponents, extra_weights = _PELZ_GOOD_TABLES[kmax]
    coeffs = (coeff_matrix @ zpowers[:5]).reshape(kmax, 4, z.size)
    qpowers = row_exponents * qlog
    np.maximum(qpowers, _EXP_FLOOR, out=qpowers)
    np.exp(qpowers, out=qpowers)
    qpowers = np.where(row_k <= maxk, qpowers, 0.0)  # each element's own terms, k <= its maxk

    # K0..K3: sums over odd m of c_m q**(m**2), times sqrt(2 pi) / (z, 6 z**4, 72 z**7, 6480 z**10).
    k0to3 = np.einsum("krn,kn->rn", coeffs, qpowers[:kmax])
    k0to3 *= zpowers[5:9] * _K_FACTORS
    # The extra sums over all integers k of K2, K3 with q**4 = exp(-pi^2 / (2 z^2)):
    # K2: (pi^2 k^2) q^(4k^2), K3: (3 pi^2 k^2 z^2 - pi^4 k^4) q^(4k^2).
    sums = extra_weights @ qpowers[kmax:]
    k0to3[2] += sums[0] * (zpowers[9] * (_PI_SQUARED * _SQRT2PI / -36))
    k0to3[3] += (3 * zsquared * sums[0] - sums[1]) * (zpowers[10] * (_PI_SQUARED * _SQRT2PI / 216))
    k0to3 /= n**_HALF_POWERS

    cdf = k0to3.sum(axis=0)  # K0 + K1 + K2 + K3, left to right
    negligible = qlog < _MIN_LOG  # z < ~0.0417: scipy returns 0 before any sum
    if negligible.any():
        cdf[negligible] = 0.0
    return cdf
