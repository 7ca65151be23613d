"""The Python API (DESIGN.md 8.3): the commands of `escalation`, as functions for notebooks.

    import sim
    scenario = sim.load("camp_taji_2020", force_protection=0.9)
    results = sim.run(scenario, runs=20_000, seed=1)
    results.to_frame()

Each function builds its model with `sim.solvers.prepare.prepare_model` (or checks the
parameters exactly as the command does, where the command's own function builds the model) and
then calls the very function the command calls, so the numbers are identical to the command
line's for the same scenario, parameters and seed: `sim.run(s, runs=N, seed=S).to_dict()` is
the object `escalation run FILE --json --runs N --seed S` prints.

Parameter overrides (the command line's `--set NAME=VALUE`) can be given in two places, both
checked against each parameter's declared range (ValueError, naming the nearest parameter):

- `load(name, **overrides)` returns a validated copy of the scenario whose parameters have the
  new values; every function then uses them. The numbers are those of `--set`, but the copy is
  a changed scenario, so results carry the sha256 of its content (sim/format/digest.py), not
  the file's;
- `set={NAME: VALUE}` on any function applies to that call only, on top of the scenario's
  values: the results are then identical to `--set`'s, the file's sha256 included.

Bad scenario files raise `sim.errors.ScenarioError` (one `file:line:col: message` per problem);
bad arguments raise ValueError.
"""

from __future__ import annotations

import math
import numbers
import os
import shlex
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from sim.errors import did_you_mean
from sim.format.library import resolve_scenario_path
from sim.format.scenario import Scenario
from sim.model.compiler import resolve_parameters
from sim.model.loading import load_scenario, load_text
from sim.results import Results
from sim.solvers.prepare import prepare_model

if TYPE_CHECKING:
    from sim.analysis.check import CheckResult
    from sim.analysis.compare import Comparison
    from sim.analysis.fit import FitResult
    from sim.analysis.sweep import SweepResult
    from sim.play.trace import Story

__all__ = ["Results", "check", "compare", "exact", "fit", "load", "run", "sweep", "trace"]

ScenarioLike = Union[Scenario, str, os.PathLike]
"""A loaded scenario, or what `load` accepts: a bundled id or file stem, or a path."""
Overrides = Union[Mapping[str, float], Iterable[str], None]
"""{NAME: VALUE}, or `--set`-style "NAME=VALUE" strings."""

MAX_RUN = 2**53
"""Run indices must stay exact in the engine's arithmetic (as for `escalation trace --run`)."""


# --- scenarios and parameters ------------------------------------------------------------------


def load(name_or_path: ScenarioLike, **overrides: float) -> Scenario:
    """A scenario: a bundled one by id or file stem ('camp_taji_2020', 'camp-taji-2020'), or a
    file by path; an unknown name raises ScenarioError naming the nearest bundled scenarios.

    Keyword arguments override parameter values, as `--set NAME=VALUE` does: each is checked
    against the parameter's declared range, and the scenario returned is a copy whose
    parameters have those values (the original, and the file, are unchanged). Every function of
    this module then uses them. A Scenario may be passed instead of a name, to override more.
    """
    if isinstance(name_or_path, Scenario):
        scenario = name_or_path
    else:
        scenario = load_scenario(resolve_scenario_path(name_or_path))
    if overrides:
        scenario = with_parameters(scenario, overrides)
    return scenario


def with_parameters(scenario: Scenario, overrides: Overrides) -> Scenario:
    """A validated copy of `scenario` with new parameter values (ValueError if a name is unknown
    or a value outside its declared range); `scenario` itself is unchanged."""
    values = _overrides(overrides)
    resolve_parameters(scenario, values)  # unknown names, ranges: one ValueError for all
    parameters = dict(scenario.parameters)
    for name, value in values.items():
        param = parameters[name]
        parameters[name] = type(param).model_validate({**param.model_dump(), "value": value})
    return scenario.model_copy(update={"parameters": parameters})


def _scenario(scenario: ScenarioLike) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load(scenario)


def _overrides(values: Overrides) -> dict[str, float]:
    """Overrides as {NAME: float}: from a mapping, or from "NAME=VALUE" strings like `--set`."""
    if values is None:
        return {}
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Mapping):
        from sim.engine.runner import parse_overrides

        return dict(parse_overrides(list(values)))
    out = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"parameter {name}: {value!r} is not a number")
        if not math.isfinite(value):
            raise ValueError(f"parameter {name}: value must be finite")
        out[str(name)] = float(value)
    return out


def _checked(scenario: Scenario, values: Overrides) -> dict[str, float]:
    """Overrides of one call, checked against the scenario's parameters (ValueError)."""
    overrides = _overrides(values)
    resolve_parameters(scenario, overrides)
    return overrides


def _count(name: str, value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def _backend(backend: str) -> None:
    """ValueError for an unknown backend; ImportError saying how to install numba."""
    from sim.engine.compiled import check_backend

    check_backend(backend)


def _number(x: float) -> str:
    """A float as the shortest text that reads back the same (1.0 -> '1', 0.1 -> '0.1')."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


# --- the commands ------------------------------------------------------------------------------


def run(
    scenario: ScenarioLike,
    runs: int = 10_000,
    seed: int = 1,
    workers: int = 1,
    set: Overrides = None,
    *,
    precision: float | None = None,
    max_runs: int | None = None,
    executor: str = "process",
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike[str] | None = None,
    backend: str = "numpy",
) -> Results:
    """Monte Carlo, as `escalation run`: `runs` runs from `seed` on `workers` processes (the
    results are identical for any number). With `precision=H`, whole blocks of runs are added
    until every outcome's 95% half-width is at most H, up to `max_runs` (`--precision H`).
    `executor="dask"` runs the blocks on a local Dask cluster of `workers`, or on the cluster at
    `scheduler` (an address) or `scheduler_file` (docs/cluster.md): the same numbers.
    `backend="compiled"` steps the runs with a numba kernel (`--backend compiled`; ImportError
    without numba): the same numbers again."""
    from sim.engine.executors import open_executor
    from sim.engine.runner import PRECISION_CAP, run_monte_carlo, run_to_precision
    from sim.engine.streams import BLOCK_SIZE

    scenario = _scenario(scenario)
    runs, seed = _count("runs", runs), _count("seed", seed, 0)
    workers = _count("workers", workers)
    where = _executor_spec(workers, executor, scheduler, scheduler_file)
    _backend(backend)
    model = prepare_model(scenario, _checked(scenario, set))
    if precision is None:
        with open_executor(where) as pool:
            return run_monte_carlo(model, runs, seed, executor=pool, backend=backend)
    if not 0 < precision < 0.5:
        raise ValueError(f"precision (a half-width) must be between 0 and 0.5, got {precision}")
    cap = _count("max_runs", max_runs) if max_runs is not None else PRECISION_CAP
    if cap < BLOCK_SIZE:
        raise ValueError(f"max_runs must be at least {BLOCK_SIZE:,} (one block) with precision")
    with open_executor(where) as pool:
        results = run_to_precision(
            model, precision, seed, runs, cap, executor=pool, backend=backend
        )
    if results.precision is not None:
        results.extra["precision"] = results.precision
    return results


def exact(scenario: ScenarioLike, max_states: int | None = None, set: Overrides = None) -> Results:
    """The exact outcome distribution, as `escalation exact` (no sampling error; `runs` and
    `seed` are None in `to_dict()`). Refuses, with ScenarioError at the cause's file:line:col,
    scenarios with draws it cannot enumerate or more than `max_states` states at once."""
    from sim.solvers.exact import DEFAULT_MAX_STATES, solve

    scenario = _scenario(scenario)
    limit = DEFAULT_MAX_STATES if max_states is None else _count("max_states", max_states)
    return solve(prepare_model(scenario, _checked(scenario, set)), max_states=limit)


def compare(
    scenario: ScenarioLike,
    actor: str,
    mode: str = "first-move",
    runs: int = 20_000,
    seed: int = 1,
    set: Overrides = None,
    max_risk: tuple[str, float] | Mapping[str, float] | str | None = None,
    *,
    workers: int = 1,
    executor: str = "process",
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike[str] | None = None,
    backend: str = "numpy",
) -> Comparison:
    """An actor's choices side by side with common random numbers, as `escalation compare`:
    `mode="first-move"` (one column per option available at its first move, the default) or
    `"policies"` (its current policy and each named alternative). `max_risk=("war", 0.05)`
    (or `{"war": 0.05}` or `"war=0.05"`) adds the best column within that risk.

    `workers`, `executor`, `scheduler`, `scheduler_file` and `backend` are as for `run`.

    Returns a `sim.analysis.compare.Comparison`: `.columns[i].results` (Results),
    `.differences()`, `.recommendation()`, `.to_json()` (what `compare --json` prints)."""
    from sim.analysis.compare import compare_first_moves, compare_policies
    from sim.engine.executors import open_executor

    scenario = _scenario(scenario)
    runs, seed = _count("runs", runs), _count("seed", seed, 0)
    where = _executor_spec(_count("workers", workers), executor, scheduler, scheduler_file)
    _backend(backend)
    overrides = _checked(scenario, set)
    if actor not in scenario.actors:
        raise ValueError(
            f"unknown actor '{actor}'{did_you_mean(actor, scenario.actors)}; "
            f"actors: {', '.join(scenario.actors)}"
        )
    if actor not in scenario.turn_order:
        raise ValueError(f"actor '{actor}' never moves (not in turn_order)")
    risk = _max_risk(max_risk, tuple(scenario.outcome_ids))
    kind = mode.replace("_", "-")
    if kind == "policies":
        if not scenario.alternatives.get(actor):
            raise ValueError(
                f"the scenario has no alternatives for '{actor}'; "
                "add them under `alternatives:` or use mode='first-move'"
            )
        with open_executor(where) as pool:
            return compare_policies(scenario, actor, runs, seed, overrides, risk, pool, backend)
    if kind != "first-move":
        raise ValueError(f"mode must be 'first-move' or 'policies', got {mode!r}")
    with open_executor(where) as pool:
        return compare_first_moves(scenario, actor, runs, seed, overrides, risk, pool, backend)


def _executor_spec(workers: int, executor: str, scheduler: Any, scheduler_file: Any):
    """Where the blocks run (sim.engine.executors.ExecutorSpec), as the executor flags say."""
    from sim.engine.executors import ExecutorSpec

    file = None if scheduler_file is None else os.fspath(scheduler_file)
    return ExecutorSpec(executor, workers, scheduler, file)


def _max_risk(value: Any, outcomes: tuple[str, ...]) -> tuple[str, float] | None:
    """`--max-risk OUTCOME=P` from a tuple, a one-entry mapping or the string itself."""
    if value is None:
        return None
    if isinstance(value, str):
        name, sep, text = value.partition("=")
        if not sep:
            raise ValueError(f"max_risk expects OUTCOME=P, got '{value}'")
        try:
            limit = float(text)
        except ValueError:
            raise ValueError(f"max_risk: '{text}' is not a probability") from None
    else:
        items = list(value.items()) if isinstance(value, Mapping) else [tuple(value)]
        if len(items) != 1 or len(items[0]) != 2:
            raise ValueError(f"max_risk expects (outcome, p), got {value!r}")
        name, limit = items[0]
    if name not in outcomes:
        raise ValueError(
            f"max_risk: unknown outcome '{name}'{did_you_mean(str(name), outcomes)}; "
            f"outcomes: {', '.join(outcomes)}"
        )
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 <= limit <= 1:
        raise ValueError(f"max_risk: {limit!r} is not a probability in [0, 1]")
    return str(name), float(limit)


def trace(scenario: ScenarioLike, seed: int = 1, run: int = 0, set: Overrides = None) -> Story:
    """One run told move by move, as `escalation trace --seed S --run I`: run `run` of any
    experiment with this seed. Returns a `sim.play.trace.Story` (`.moves`, `.outcome`,
    `.to_json()`; `sim.play.trace.story_lines(story)` gives the printed story)."""
    from sim.play.trace import trace_run

    scenario = _scenario(scenario)
    seed = _count("seed", seed, 0)
    if isinstance(run, bool) or not isinstance(run, numbers.Integral) or not 0 <= run < MAX_RUN:
        raise ValueError(f"run must be between 0 and {MAX_RUN - 1:,}, got {run!r}")
    return trace_run(prepare_model(scenario, _checked(scenario, set)), seed, int(run))


VaryLike = Union[str, Iterable[str], Mapping[str, Any]]
""""NAME=LO:HI:N" strings, or {NAME: (LO, HI, N)} ((LO, HI) for lhs and sobol; or "LO:HI:N")."""


def sweep(
    scenario: ScenarioLike,
    vary: VaryLike,
    method: str = "grid",
    samples: int | None = None,
    runs: int = 2000,
    seed: int = 1,
    set: Overrides = None,
    workers: int = 1,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    executor: str = "process",
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike[str] | None = None,
    backend: str = "numpy",
) -> SweepResult:
    """A parameter sweep, as `escalation sweep`: `vary={"war_risk": (0, 1, 11)}` (or
    `"war_risk=0:1:11"`, or a list of such strings), `method` "grid", "lhs" or "sobol".

    The outputs (points.csv, sweep.json, the journal) go into `out`; without it, into a
    temporary folder removed afterwards (the returned result keeps its table in memory; its
    `files` is then empty). `resume=True` finishes an interrupted sweep in `out`. Parameters
    overridden in `load` are held fixed (they appear as `--set` in sweep.json's command),
    except those varied here. `workers` defaults to 1 here (the command's default is every
    core); the numbers are the same for any number, and for either `backend` (as for `run`).

    Returns a `sim.analysis.sweep.SweepResult`: `.columns`, `.table` (one row per point),
    `.column(name)`, `.sobol`; charts in `sim.outputs.sweep_charts`.
    """
    from sim.analysis.sweep import SweepSpec, check_varies, make_design, run_sweep
    from sim.engine.executors import open_executor

    scenario = _scenario(scenario)
    runs, seed = _count("runs", runs), _count("seed", seed, 0)
    workers = _count("workers", workers)
    where = _executor_spec(workers, executor, scheduler, scheduler_file)
    _backend(backend)
    if samples is not None:
        samples = _count("samples", samples)
    text, file = _source_text(scenario)
    base = load_text(text, file)  # the scenario as written, whatever `load` overrode
    explicit = _overrides(set)
    varies = _varies(vary)
    varied = {v.name for v in varies}
    fixed = {
        name: param.value
        for name, param in scenario.parameters.items()
        if name in base.parameters
        and param.value != base.parameters[name].value
        and name not in varied
    }
    fixed.update(explicit)
    resolve_parameters(base, fixed)
    check_varies(base, varies, method, dict(explicit))
    design = make_design(varies, method, samples, seed)
    spec = SweepSpec(text, file, design, runs, seed, tuple(sorted(fixed.items())))
    command = _sweep_command(file, varies, method, samples, runs, seed, fixed, workers, where)
    if out is None and resume:
        raise ValueError("resume=True needs out=, the folder of the sweep to finish")
    with tempfile.TemporaryDirectory(prefix="escalation-sweep-") as tmp:
        out_dir = Path(tmp) if out is None else Path(out)
        with open_executor(where) as pool:
            result = run_sweep(
                spec,
                out_dir,
                pool,
                workers,
                resume,
                command=command,
                notify=lambda note: warnings.warn(note, stacklevel=3),
                backend=backend,
            )
    if out is None:
        result.files = []
    return result


def _source_text(scenario: Scenario) -> tuple[str, str]:
    """The scenario's text and file name, as sweep workers reload it (a scenario built in Python
    has no file: its JSON is YAML too, and hashes the same)."""
    source = scenario._source
    if source is not None and source.lines:
        return "\n".join(source.lines), source.file
    return scenario.model_dump_json(by_alias=True), "<scenario>"


def _varies(vary: VaryLike) -> list:
    from sim.analysis.sweep import Vary

    if isinstance(vary, str):
        return [Vary.parse(vary)]
    if not isinstance(vary, Mapping):
        return [Vary.parse(str(v)) for v in vary]
    out = []
    for name, spec in vary.items():
        if isinstance(spec, str):
            text = spec
        else:
            parts = list(spec)
            if not 2 <= len(parts) <= 3:
                raise ValueError(f"vary {name}: expected (LO, HI) or (LO, HI, N), got {spec!r}")
            text = ":".join(_number(x) if i < 2 else str(x) for i, x in enumerate(parts))
        out.append(Vary.parse(f"{name}={text}"))
    return out


def _sweep_command(
    file: str,
    varies: list,
    method: str,
    samples: int | None,
    runs: int,
    seed: int,
    fixed: Mapping[str, float],
    workers: int,
    where: Any,
) -> str:
    """The command line that reproduces the sweep (written to sweep.json, as the command does)."""
    parts = ["escalation", "sweep", file]
    for v in varies:
        rng = f"{_number(v.lo)}:{_number(v.hi)}" + ("" if v.n is None else f":{v.n}")
        parts += ["--vary", f"{v.name}={rng}"]
    parts += ["--method", method]
    if samples:
        parts += ["--samples", str(samples)]
    parts += ["--runs", str(runs), "--seed", str(seed)]
    for name, value in sorted(fixed.items()):
        parts += ["--set", f"{name}={_number(value)}"]
    parts += ["--workers", str(workers), *where.command_flags()]
    return shlex.join(parts)


# --- evidence: episode logs --------------------------------------------------------------------

LogLike = Union[str, os.PathLike]
"""An episode log: its path (DESIGN.md section 8.2)."""


def fit(
    scenario: ScenarioLike,
    data: LogLike,
    free: str | Iterable[str],
    set: Overrides = None,
    *,
    particles: int | None = None,
    bootstrap: int = 0,
    profile: bool = False,
    seed: int = 1,
    doctrine: Mapping[str, str] | None = None,
) -> FitResult:
    """Maximum-likelihood estimates of the `free` parameters from the episode log at `data`, as
    `escalation fit FILE --data LOG --free NAME ...`: `.to_dict()` is what `fit --json` prints
    (estimates with `ci95` and `se`, `loglik`, `method`). `particles`, `bootstrap`, `profile`
    and `seed` are the command's `--particles`, `--bootstrap`, `--profile` and `--seed`;
    `doctrine={"us": "as_it_happened"}` is `--doctrine us=as_it_happened`.
    A log that does not fit the scenario raises ScenarioError at its file:line:col."""
    from sim.analysis.fit import fit as fit_log
    from sim.format.episode_log import read_episode_log

    scenario = _scenario(scenario)
    names = [free] if isinstance(free, str) else list(free)
    if particles is not None and (isinstance(particles, bool) or particles < 0):
        raise ValueError("particles must be 0 (exact) or a positive number of states")
    bootstrap = _count("bootstrap", bootstrap, 0)
    log = read_episode_log(data, scenario)
    return fit_log(
        scenario,
        log,
        names,
        _checked(scenario, set),
        particles=particles,
        seed=_count("seed", seed, 0),
        bootstrap=bootstrap,
        profiled=profile,
        doctrines=doctrine,
    )


def check(
    scenario: ScenarioLike,
    data: LogLike,
    runs: int = 10_000,
    seed: int = 1,
    set: Overrides = None,
    doctrine: Mapping[str, str] | None = None,
) -> CheckResult:
    """Each episode of the log at `data` against `runs` model runs, as `escalation check`:
    `.episodes[i].statistics` (observed value, percentile, 90% band, inside) and `.verdict`;
    `.to_dict()` is what `check --json` prints; `sim.outputs.evidence.check_figure(result)`
    draws the chart. `doctrine={"us": "as_it_happened"}` is `--doctrine us=as_it_happened`."""
    from sim.analysis.check import check as check_log
    from sim.format.episode_log import read_episode_log

    scenario = _scenario(scenario)
    runs, seed = _count("runs", runs, 2), _count("seed", seed, 0)
    log = read_episode_log(data, scenario)
    return check_log(
        scenario, log, runs=runs, seed=seed, fixed=_checked(scenario, set), doctrines=doctrine
    )
