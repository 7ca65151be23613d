"""What a sweep computes: the varied parameters (`--vary`), the design points, and the spec."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import did_you_mean
from sim.format.quiet import warnings_silenced
from sim.format.scenario import Scenario

METHODS = ("grid", "lhs", "sobol")
DEFAULT_SAMPLES = 64
MAX_POINTS = 1_000_000


class SweepError(ValueError):
    """A sweep that cannot run as asked (a journal mismatch, a missing executor): exit status 2."""


SALIB_MISSING = (
    "--method sobol needs SALib, which is not installed: pip install 'escalation-sim[sobol]' "
    "(or pip install SALib)"
)


def import_salib(name: str) -> Any:
    """A module of SALib, the optional extra `sobol` (it brings pandas: imported only for
    `--method sobol`); SweepError, exit status 2, with how to install it if it is absent."""
    with warnings_silenced():
        try:
            return importlib.import_module(name)
        except ImportError:
            raise SweepError(SALIB_MISSING) from None


# --- what is varied -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Vary:
    """One `--vary NAME=LO:HI[:N]` (N is the number of grid levels; lhs and sobol ignore it)."""

    name: str
    lo: float
    hi: float
    n: int | None = None

    @classmethod
    def parse(cls, text: str) -> Vary:
        name, sep, rest = text.partition("=")
        name, parts = name.strip(), rest.split(":")
        if not sep or not name or len(parts) not in (2, 3):
            raise ValueError(f"--vary expects NAME=LO:HI:N, got '{text}'")
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"--vary {name}: LO and HI must be numbers, got '{rest}'") from None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"--vary {name}: LO and HI must be finite")
        if lo > hi:
            raise ValueError(f"--vary {name}: LO ({lo:g}) is above HI ({hi:g})")
        n = None
        if len(parts) == 3:
            try:
                n = int(parts[2])
            except ValueError:
                raise ValueError(
                    f"--vary {name}: N must be a whole number, got '{parts[2]}'"
                ) from None
            if n < 1:
                raise ValueError(f"--vary {name}: N must be at least 1, got {n}")
            if (n == 1) != (lo == hi):
                raise ValueError(f"--vary {name}: use N=1 exactly when LO equals HI")
        return cls(name, lo, hi, n)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "lo": self.lo, "hi": self.hi, "n": self.n}


def check_varies(
    scenario: Scenario, varies: Sequence[Vary], method: str, fixed: dict[str, float]
) -> None:
    """Raise ValueError (one line) unless every varied name is a parameter, within its range."""
    problems, seen = [], set()
    for v in varies:
        param = scenario.parameters.get(v.name)
        if param is None:
            hint = did_you_mean(v.name, scenario.parameters)
            problems.append(f"--vary: unknown parameter '{v.name}'{hint}")
            continue
        if v.name in seen:
            problems.append(f"--vary {v.name}: given twice")
        if v.name in fixed:
            problems.append(f"{v.name}: given both to --vary and to --set")
        seen.add(v.name)
        if (param.min is not None and v.lo < param.min) or (
            param.max is not None and v.hi > param.max
        ):
            problems.append(
                f"--vary {v.name}={v.lo:g}:{v.hi:g} is outside the parameter's declared range "
                f"[{_bound(param.min)}, {_bound(param.max)}]"
            )
        if method == "grid" and v.n is None:
            problems.append(f"--vary {v.name}: a grid needs the number of levels, NAME=LO:HI:N")
        if method != "grid" and v.lo == v.hi:
            problems.append(f"--vary {v.name}: --method {method} needs LO below HI")
    if not varies:
        problems.append("give at least one --vary NAME=LO:HI:N")
    if problems:
        raise ValueError("; ".join(problems))


def _bound(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:g}"


# --- the design ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """The points of a sweep: one tuple of values per point, in `names` order."""

    method: str
    varies: tuple[Vary, ...]
    points: tuple[tuple[float, ...], ...]
    samples: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.varies)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "samples": self.samples,
            "vary": [v.to_json() for v in self.varies],
            "names": list(self.names),
            "points": [list(p) for p in self.points],
        }


def make_design(varies: Sequence[Vary], method: str, samples: int | None, seed: int) -> Design:
    """The full factorial grid, a scrambled Latin hypercube, or a Saltelli (Sobol) design."""
    varies = tuple(varies)
    if method == "grid":
        total = math.prod(v.n or 1 for v in varies)
        if total > MAX_POINTS:
            raise ValueError(f"the grid has {total:,} points, more than {MAX_POINTS:,}")
        levels = [_levels(v) for v in varies]
        return Design(method, varies, tuple(itertools.product(*levels)))
    varies = tuple(Vary(v.name, v.lo, v.hi) for v in varies)  # N means nothing here
    samples = samples or DEFAULT_SAMPLES
    lo = np.array([v.lo for v in varies])
    hi = np.array([v.hi for v in varies])
    check_samples(method, samples, len(varies))
    if method == "lhs":
        values = _latin_hypercube(len(varies), samples, seed, lo, hi)
    elif method == "sobol":
        values = _saltelli(varies, samples, seed)
    else:
        raise ValueError(f"unknown method '{method}' (choose from {', '.join(METHODS)})")
    values = np.clip(values, lo, hi)
    points = tuple(tuple(float(x) for x in row) for row in values)
    return Design(method, varies, points, samples)


def check_samples(method: str, samples: int, dims: int) -> None:
    """Refuse `--samples` whose design would have more than MAX_POINTS points, before any point
    is drawn (so `--samples 10**9` is a message, not a MemoryError)."""
    if method not in ("lhs", "sobol"):
        return
    points = samples if method == "lhs" else samples * (dims + 2)
    if points > MAX_POINTS:
        size = "" if method == "lhs" else f" ({samples:,} x ({dims} parameters + 2))"
        most = MAX_POINTS if method == "lhs" else 2 ** int(math.log2(MAX_POINTS // (dims + 2)))
        raise ValueError(
            f"--samples {samples:,}: the {method} design would have {points:,} points{size}, "
            f"more than the limit of {MAX_POINTS:,}; use --samples {most:,} or fewer"
        )


def _latin_hypercube(
    dims: int, samples: int, seed: int, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    from scipy.stats import qmc

    try:
        sampler = qmc.LatinHypercube(dims, scramble=True, rng=seed)
    except TypeError:  # scipy < 1.15 calls it `seed`
        sampler = qmc.LatinHypercube(dims, scramble=True, seed=seed)
    return qmc.scale(sampler.random(samples), lo, hi)


def _saltelli(varies: tuple[Vary, ...], samples: int, seed: int) -> np.ndarray:
    if samples & (samples - 1):
        raise ValueError(f"--samples for sobol must be a power of 2 (e.g. 64), got {samples}")
    saltelli = import_salib("SALib.sample.sobol")
    with warnings_silenced():
        values = saltelli.sample(
            salib_problem(varies), samples, calc_second_order=False, scramble=True, seed=seed
        )
    if len(values) > MAX_POINTS:
        raise ValueError(f"the design has {len(values):,} points, more than {MAX_POINTS:,}")
    return values


def _levels(v: Vary) -> list[float]:
    """Evenly spaced grid levels, without binary noise (0.30000000000000004 -> 0.3)."""
    n = v.n or 1
    if n == 1:
        return [v.lo]
    out = []
    for k in range(n):
        x = v.lo + (v.hi - v.lo) * k / (n - 1)
        short = float(f"{x:.15g}")
        out.append(short if abs(short - x) <= 2 * math.ulp(x) else x)
    return [min(max(x, v.lo), v.hi) for x in out]


def salib_problem(varies: Sequence[Vary]) -> dict[str, Any]:
    """The varied parameters as SALib's `problem` dictionary (for sampling and analysis)."""
    return {
        "num_vars": len(varies),
        "names": [v.name for v in varies],
        "bounds": [[v.lo, v.hi] for v in varies],
    }


# --- the spec -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSpec:
    """Everything that determines a sweep's numbers."""

    text: str
    file: str
    design: Design
    runs: int
    seed: int
    fixed: tuple[tuple[str, float], ...] = ()

    def design_sha256(self) -> str:
        data = {**self.design.to_json(), "fixed": [list(kv) for kv in self.fixed]}
        return hashlib.sha256(
            json.dumps(data, sort_keys=True, allow_nan=False).encode()
        ).hexdigest()
