"""Random draws from uniforms by inversion (inverse CDF), with clear errors for bad parameters.

The one definition of how each distribution of the expression language turns a uniform into a
draw: the engine (sim/engine/streams.py) applies it to its position-addressed uniforms, and the
likelihood's particle filter (sim/solvers/likelihood.py) to its own.
"""

from __future__ import annotations

import numpy as np

from sim.errors import SimulationError
from sim.format.quiet import warnings_silenced
from sim.model.expr import MAX_BINOMIAL_N, MAX_POISSON_LAMBDA


def invert(kind: str, u: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
    """Transform uniforms into draws of `kind` (inverse CDF), with clear errors for bad params.

    Every draw is finite: parameters that are not (or a result that overflows, such as
    `normal(0, 1e308)`) stop the run with a message; `binomial` n and `poisson` lam are bounded
    (MAX_BINOMIAL_N, MAX_POISSON_LAMBDA) so that no inversion takes long."""
    if kind == "bernoulli":
        (p,) = params
        _check_probability(p, "bernoulli(p)")
        return u < p
    if kind == "uniform":
        low, high = params
        _check_finite(params, "uniform(a, b)")
        return _finite(low + (high - low) * u, "uniform(a, b)")
    if kind == "normal":
        mu, sd = params
        _check_finite(params, "normal(mu, sd)")
        if np.any(sd < 0):
            raise SimulationError(f"normal(mu, sd) needs sd >= 0, got {_first(sd, sd < 0)}")
        from scipy.special import ndtri

        return _finite(mu + sd * ndtri(u), "normal(mu, sd)")
    if kind == "poisson":
        (lam,) = params
        if np.any(lam < 0) or not np.all(np.isfinite(lam)):
            raise SimulationError(
                f"poisson(lam) needs a finite lam >= 0, got {_first(lam, ~(lam >= 0))}"
            )
        if np.any(lam > MAX_POISSON_LAMBDA):
            raise SimulationError(
                f"poisson(lam) needs lam <= {MAX_POISSON_LAMBDA:,} (the limit), got "
                f"{_first(lam, lam > MAX_POISSON_LAMBDA):g}"
            )
        return _poisson_inverse(u, np.broadcast_to(lam, u.shape))
    if kind == "binomial":
        count, p = params
        _check_probability(p, "binomial(n, p)")
        if np.any(count < 0) or not np.all(np.isfinite(count)):
            raise SimulationError("binomial(n, p) needs a finite n >= 0")
        if np.any(count > MAX_BINOMIAL_N):
            raise SimulationError(
                f"binomial(n, p) needs n <= {MAX_BINOMIAL_N:,} (the limit), got "
                f"{_first(count, count > MAX_BINOMIAL_N):g}"
            )
        n = np.floor(np.broadcast_to(count, u.shape))
        return _binomial_inverse(u, n, np.broadcast_to(p, u.shape))
    raise SimulationError(f"unknown random draw {kind}")


def _check_finite(params: list[np.ndarray], what: str) -> None:
    for value in params:
        if not np.all(np.isfinite(value)):
            raise SimulationError(
                f"{what} needs finite arguments, got {_first(value, ~np.isfinite(value))}"
            )


def _finite(draws: np.ndarray, what: str) -> np.ndarray:
    """The draws, unless one overflowed (e.g. normal(0, 1e308) beyond 1.8e308)."""
    if not np.all(np.isfinite(draws)):
        raise SimulationError(
            f"{what} drew {_first(draws, ~np.isfinite(draws))}: its arguments are too large "
            "for a finite number"
        )
    return draws


_SMALL = 30.0


def _poisson_inverse(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Smallest k with CDF(k) >= u: a vectorised search for small lam, scipy for large."""
    out = np.zeros(u.shape)
    big = lam > _SMALL
    if big.any():
        from scipy.stats import poisson

        with warnings_silenced():  # scipy's search warns on its own; never on stderr
            out[big] = poisson.ppf(u[big], lam[big])
    small = ~big
    if small.any():
        uu, ll = u[small], lam[small]
        k = np.zeros(uu.shape)
        pmf = np.exp(-ll)
        cdf = pmf.copy()
        todo = uu > cdf
        while todo.any():
            k = np.where(todo, k + 1, k)
            pmf = np.where(todo, pmf * ll / np.maximum(k, 1), pmf)
            cdf = np.where(todo, cdf + pmf, cdf)
            todo = todo & (uu > cdf) & (pmf > 0)
        out[small] = k
    return out


def _binomial_inverse(u: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    from scipy.stats import binom

    with warnings_silenced():  # scipy's search warns on its own; never on stderr
        return binom.ppf(u, n, p)


def _check_probability(p: np.ndarray, what: str) -> None:
    bad = (p < 0) | (p > 1) | np.isnan(p)
    if np.any(bad):
        raise SimulationError(f"{what} needs p in [0, 1], got {_first(p, bad)}")


def _first(a: np.ndarray, mask: np.ndarray) -> float:
    return float(np.ravel(a)[0]) if a.ndim == 0 else float(a[mask][0])
