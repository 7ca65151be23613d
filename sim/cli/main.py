"""The `escalation` command line: argument parsing and printing only, no model logic."""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from sim import __version__
from sim.errors import ScenarioError, SimulationError, did_you_mean
from sim.format.library import bundled_scenarios_dir, resolve_scenario_path

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM, EXIT_PIPE = 130, 143, 141

COMMAND_MODULES: tuple[str, ...] = (
    "sim.cli.sweep",
    "sim.cli.compare",
    "sim.cli.trace",
    "sim.cli.exact",
    "sim.cli.play",
    "sim.cli.report",
    "sim.cli.params",
    "sim.cli.fit",
    "sim.cli.check",
    "sim.cli.serve",
)
"""Modules of further commands; each has COMMAND, HELP, add_arguments(parser) and run(args).

All of them are imported to build the parser, `--help` and `--version` included, so at module
level and in add_arguments they import nothing heavy (numpy, scipy, matplotlib, rich, pydantic,
ruamel, the engine): `run` imports its command's machinery when it runs. The built-in commands
below follow the same rule; tests/cli/test_startup.py checks it."""


class UsageError(Exception):
    """Bad command-line usage: reported in one line, exit status 2."""


class OutputError(UsageError):
    """An output that cannot be written (read-only, through a file, disk full): exit status 2."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the stack unwinds (temporary files are
    removed) and the command exits 143."""


OUTPUT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOSPC",
        "EDQUOT",
        "EFBIG",
        "EROFS",
        "EACCES",
        "EPERM",
        "ENOTDIR",
        "EISDIR",
        "EEXIST",
        "ENAMETOOLONG",
        "EIO",
    )
    if hasattr(errno, name)
)
"""OSErrors that come from where the output goes, not from the program: exit status 2."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _folder_problem(path: Path) -> str | None:
    """Why no file can be written in the folder `path` (created if missing), or None."""
    import tempfile

    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".escalation-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return _reason(exc)
    return None


def writable_folder(path: Path, what: str) -> Path:
    """Create the folder `path` and check that a file can be written in it, before any work is
    done; otherwise an OutputError naming the folder and the reason (exit status 2)."""
    problem = _folder_problem(path)
    if problem is not None:
        raise OutputError(f"cannot write {what} to {path}: {problem}")
    return path


def writable_file(path: Path, what: str) -> Path:
    """Check, before any work, that the file `path` can be written (its folder is created)."""
    problem = "it is a folder; give the file's path" if path.is_dir() else None
    problem = problem or _folder_problem(path.parent)
    if problem is not None:
        raise OutputError(f"cannot write {what} to {path}: {problem}")
    return path


@contextlib.contextmanager
def writing(what: str, where: Path) -> Iterator[None]:
    """Turn an OSError while writing `what` into one OutputError (exit status 2); the writers
    (sim.files.write_atomic) leave no half-written file behind."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {what} to {where}: {_reason(exc)}") from None


def overrides_folder(overrides: Mapping[str, float]) -> str | None:
    """The folder name that carries `--set` overrides, e.g. `set-kh_autonomy=0.5` (names in
    order, `,` between them); None without overrides. Very long ones are named by a digest."""
    if not overrides:
        return None
    from sim.outputs.report_text import written

    name = "set-" + ",".join(f"{k}={written(v)}" for k, v in sorted(overrides.items()))
    if len(name) > 120:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"set-{len(overrides)}-overrides-{digest}"
    return name


def default_out_dir(scenario_id: str, overrides: Mapping[str, float]) -> Path:
    """Where outputs go without --out: reports/<id>/, or reports/<id>/set-NAME=VALUE,.../ under
    --set, so that charts made with overrides never overwrite the scenario's own."""
    base = Path("reports") / scenario_id
    folder = overrides_folder(overrides)
    return base / folder if folder else base


def check_override_names(scenario, overrides: Mapping[str, float]) -> None:
    """An unknown --set name is a UsageError that lists the scenario's parameters."""
    for name in overrides:
        if name not in scenario.parameters:
            known = ", ".join(scenario.parameters) or "none (this scenario has no parameters)"
            raise UsageError(
                f"--set: unknown parameter '{name}'{did_you_mean(name, scenario.parameters)}; "
                f"parameters: {known}"
            )


def load_with_overrides(file: str, settings: list[str] | None):
    """The scenario named on the command line and its checked `--set` overrides."""
    from sim.engine.runner import parse_overrides
    from sim.model.compiler import resolve_parameters
    from sim.model.loading import load_scenario

    scenario = load_scenario(resolve_scenario_path(file))
    try:
        overrides = parse_overrides(settings)
        check_override_names(scenario, overrides)
        resolve_parameters(scenario, overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return scenario, overrides


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars go to a terminal only, never with --quiet."""
    stream = sys.stderr
    return not getattr(args, "quiet", False) and stream is not None and stream.isatty()


def add_quiet_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_executor_arguments(
    p: argparse.ArgumentParser, workers_default: int | None = 1, workers_help: str | None = None
) -> None:
    """The flags of where a heavy command runs (`run`, `compare`, `report`, `sweep`):
    docs/cluster.md. Read them with `executor_spec(args)`."""
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=workers_default,
        metavar="K",
        help=workers_help
        or "worker processes, or the workers of a local Dask cluster (default 1); results are "
        "identical for any number and any executor",
    )
    p.add_argument(
        "--executor",
        choices=("process", "dask"),
        default="process",
        help="a local process pool of K workers (default), or Dask: a local cluster of K "
        "workers, or the cluster of --scheduler or --scheduler-file",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (implies --executor dask)",
    )
    where.add_argument(
        "--scheduler-file",
        metavar="PATH",
        help="run on the Dask cluster whose scheduler wrote PATH (dask scheduler "
        "--scheduler-file, dask-jobqueue, dask-mpi: HPC launchers)",
    )
    p.add_argument(
        "--cluster-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="give up, with a message, when no Dask worker has joined within SECONDS (default 30)",
    )


def add_backend_argument(p: argparse.ArgumentParser) -> None:
    """--backend numpy|compiled (DESIGN.md section 8.5); read it with `backend_of(args)`."""
    p.add_argument(
        "--backend",
        choices=("numpy", "compiled"),
        default="numpy",
        help="numpy (default), or compiled: a numba kernel (pip install "
        "'escalation-sim[compiled]'); identical results",
    )


def backend_of(args: argparse.Namespace) -> str:
    """The backend asked for, checked before any work: without numba, a UsageError (exit 2)."""
    backend = getattr(args, "backend", "numpy")
    if backend == "compiled":
        from sim.engine.compiled import check_backend

        try:
            check_backend(backend)
        except (ImportError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        if os.environ.get("ESCALATION_DEBUG"):  # which batches fell back to numpy, and why
            import logging

            logging.basicConfig(format="%(message)s")
            logging.getLogger("sim.engine.compiled").setLevel(logging.DEBUG)
    return backend


def executor_spec(args: argparse.Namespace, workers: int | None = None):
    """The `sim.engine.executors.ExecutorSpec` the executor flags ask for."""
    from sim.engine.executors import ExecutorSpec

    return ExecutorSpec(
        args.executor,
        workers or args.workers or 1,
        args.scheduler,
        args.scheduler_file,
        args.cluster_timeout,
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError("the timeout must be a positive number of seconds")
    return value


def add_beliefs_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--beliefs",
        action="store_true",
        help="also report each strategic actor's beliefs and choices at every information set "
        '(hidden information; in the JSON under "beliefs")',
    )


def _beliefs(model) -> list[dict]:
    from sim.solvers.information import beliefs

    return beliefs(model, model.strategic) if model.strategic else []


def with_beliefs(data: dict, model, args: argparse.Namespace) -> dict:
    """The JSON result, with the beliefs under "beliefs" when --beliefs was given."""
    if getattr(args, "beliefs", False):
        data["beliefs"] = _beliefs(model)
    return data


def print_beliefs(model, args: argparse.Namespace) -> None:
    if getattr(args, "beliefs", False):
        from sim.outputs.beliefs import belief_lines

        print("\n".join(["", *belief_lines(_beliefs(model))]))


def add_scenario_argument(p: argparse.ArgumentParser) -> None:
    """The FILE argument every scenario command takes."""
    p.add_argument("file", metavar="FILE", help="scenario file (or the id of a bundled one)")


def add_set_argument(
    p: argparse.ArgumentParser, help: str = "override a parameter (repeatable)"
) -> None:
    """The repeatable --set NAME=VALUE option, read by `load_with_overrides`."""
    p.add_argument("--set", action="append", metavar="NAME=VALUE", dest="overrides", help=help)


def _command_named(argv: Sequence[str]) -> str | None:
    """The command an argument list names (its first argument that is not an option), if any:
    the one subparser that parsing it needs filled in."""
    return next((a for a in argv if not a.startswith("-")), None)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with `command` (a name from the arguments), only that
    command's subparser gets its arguments: the others are listed with their help but left
    empty, since parsing never reads them (building them all took some 25 ms of a short
    `run`'s start-up on a loaded 2-CPU machine). An unknown name fills in all of them."""
    parser = argparse.ArgumentParser(
        prog="escalation",
        description="Escalation-ladder decision simulator: play out a crisis many times.",
    )
    parser.add_argument("--version", action="version", version=f"escalation-sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("list", help="the bundled scenarios with their titles")

    from sim.cli import validate

    modules = _command_modules()
    names = {"list", validate.COMMAND, "run", "schema"}
    names.update(n for m in modules for n in (m.COMMAND, *getattr(m, "ALIASES", ())))
    everything = command not in names

    def wanted(*called: str) -> bool:
        return everything or command in called

    p = sub.add_parser(validate.COMMAND, help=validate.HELP)
    if wanted(validate.COMMAND):
        validate.add_arguments(p)

    p = sub.add_parser("run", help="Monte Carlo: outcome table with 95%% intervals, and charts")
    if wanted("run"):
        _add_run_arguments(p)

    sub.add_parser("schema", help="JSON Schema of the scenario format, for editor completion")
    for module in modules:
        aliases = list(getattr(module, "ALIASES", ()))
        p = sub.add_parser(module.COMMAND, help=module.HELP, aliases=aliases)
        if wanted(module.COMMAND, *aliases):
            module.add_arguments(p)
    return parser


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of `run`."""
    add_scenario_argument(p)
    p.add_argument("--runs", type=_positive_int, default=10_000, help="runs (default 10000)")
    p.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    add_set_argument(p)
    p.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    p.add_argument(
        "--out",
        type=Path,
        help="chart folder (default reports/<id>/, or reports/<id>/set-NAME=VALUE/ under --set; "
        "with --json, charts are written only when --out is given)",
    )
    p.add_argument("--no-charts", action="store_true", help="do not write charts")
    from sim.cli.chart_args import add_chart_arguments

    add_chart_arguments(p)
    p.add_argument(
        "--precision",
        type=_half_width,
        metavar="H",
        help="add runs until every outcome's 95%% half-width is at most H (stops at --max-runs)",
    )
    p.add_argument(
        "--max-runs",
        type=_positive_int,
        default=None,
        help="cap for --precision (default 4,000,000)",
    )
    add_executor_arguments(p)
    add_backend_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_beliefs_argument(p)
    p.add_argument(
        "--exact-check",
        action="store_true",
        help="also solve exactly and report each outcome's z-score against it",
    )


def _command_modules() -> list:
    import importlib

    return [importlib.import_module(name) for name in COMMAND_MODULES]


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the seed must be >= 0")
    return value


def _half_width(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError("the half-width must be between 0 and 0.5")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 bad input, usage or an output that
    cannot be written, 1 internal, 130 Ctrl-C, 141 closed pipe, 143 SIGTERM)."""
    _signalled.clear()
    with _unwinding_signals():
        said = False  # a command that handles Ctrl-C itself (play) has said so already
        try:
            status = _main(argv)
            said = status == EXIT_SIGINT
        except KeyboardInterrupt:
            status = EXIT_SIGINT
        except Terminated:
            status = EXIT_SIGTERM
        if _signalled:  # a library may turn the interrupt into another error, or swallow it
            status = EXIT_SIGTERM if signal.SIGTERM in _signalled else EXIT_SIGINT
        if status == EXIT_SIGINT and not said:
            with _signals_ignored():
                _say("interrupted")
        return status


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser(_command_named(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from sim.cli import validate

    handlers = {"list": cmd_list, "validate": validate.run, "run": cmd_run, "schema": cmd_schema}
    for m in _command_modules():
        for name in (m.COMMAND, *getattr(m, "ALIASES", ())):
            handlers[name] = m.run
    handler = handlers[args.command]
    try:
        status = handler(args)
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe or a full disk shows here, not at exit
        return status
    except ScenarioError as exc:
        for problem in exc.problems:
            _say(str(problem))
        return EXIT_INPUT
    except (UsageError, SimulationError) as exc:
        _say(f"escalation {args.command}: error: {exc}")
        return EXIT_INPUT
    except BrokenPipeError:
        # the reader (e.g. `| head`) closed the pipe: stop quietly, as other Unix tools do
        _stdout_to_devnull()
        return EXIT_PIPE
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            return _internal(args, exc)
        # files are written inside `writing`, which names them: this is stdout or a stray file
        where = f"{exc.filename}: " if exc.filename else "cannot write the output: "
        if _stdout_broken():
            _stdout_to_devnull()
        _say(f"escalation {args.command}: error: {where}{_reason(exc)}")
        return EXIT_INPUT
    except SystemExit as exc:  # a library that exits (it should not): keep its status
        return exc.code if isinstance(exc.code, int) else EXIT_INTERNAL
    except Exception as exc:  # an internal failure: one line, and the details on request
        return _internal(args, exc)


def _internal(args: argparse.Namespace, exc: BaseException) -> int:
    if _signalled:  # e.g. numpy reports a Ctrl-C during its import as an ImportError
        return EXIT_SIGINT
    if os.environ.get("ESCALATION_DEBUG"):
        raise exc
    _say(
        f"escalation {args.command}: internal error: {type(exc).__name__}: {exc} "
        "(set ESCALATION_DEBUG=1 for the traceback)"
    )
    return EXIT_INTERNAL


def _say(line: str) -> None:
    """One line on stderr, if there is a stderr that still works."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(line, file=sys.stderr, flush=True)


def _stdout_broken() -> bool:
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        return True
    return False


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that the flush at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


_signalled: list[int] = []
"""The signals received while the current command ran."""


def _raise_interrupt(signum: int, frame: object) -> None:
    _signalled.append(signum)
    raise KeyboardInterrupt


def _raise_terminated(signum: int, frame: object) -> None:
    _signalled.append(signum)
    raise Terminated


@contextlib.contextmanager
def _unwinding_signals() -> Iterator[None]:
    """While a command runs, Ctrl-C raises KeyboardInterrupt and SIGTERM Terminated, so that
    the stack unwinds and temporary files are removed; the previous handlers come back after."""
    previous = {}
    for signum, handler in (
        (signal.SIGINT, _raise_interrupt),
        (signal.SIGTERM, _raise_terminated),
    ):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[signum] = signal.signal(signum, handler)
    hook = sys.unraisablehook
    again = [10]

    def unraisable(info) -> None:
        """A signal that landed in a callback Python cannot raise from (a weakref callback, a
        __del__): no "Exception ignored" traceback; the signal is raised again, outside it."""
        if isinstance(info.exc_value, (KeyboardInterrupt, Terminated)):
            if again[0] > 0 and previous:
                again[0] -= 1
                terminated = isinstance(info.exc_value, Terminated)
                signum = signal.SIGTERM if terminated else signal.SIGINT
                timer = threading.Timer(0.05, os.kill, (os.getpid(), signum))  # after this hook
                timer.daemon = True
                timer.start()
            return
        hook(info)

    thread_hook = threading.excepthook

    def thread_exception(args) -> None:
        """A Ctrl-C that cancels a process pool's futures while its manager thread is marking
        them broken makes that thread raise InvalidStateError (CPython gh-107219; 3.11 still has
        it): a race inside the pool, harmless, and not the user's concern."""
        futures = sys.modules.get("concurrent.futures._base")  # loaded once a pool exists
        stale = futures is not None and isinstance(args.exc_value, futures.InvalidStateError)
        if stale and str(args.exc_value).startswith("CANCELLED"):
            return
        thread_hook(args)

    sys.unraisablehook = unraisable
    threading.excepthook = thread_exception
    try:
        yield
    finally:
        sys.unraisablehook = hook
        threading.excepthook = thread_hook
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """No second signal while the first one is being reported."""
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler)


def entry_point() -> None:
    try:
        status = main()
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being reported
        status = EXIT_SIGINT
    except Terminated:
        status = EXIT_SIGTERM
    # the command is over: a signal during the interpreter's shutdown is ignored (a Python
    # handler running while the interpreter finalizes can abort it)
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_IGN)
    if _stdout_broken():
        _stdout_to_devnull()
    if status in (EXIT_SIGINT, EXIT_SIGTERM):
        # interrupted: the stack has unwound (temporary files are gone); skip the interpreter's
        # finalization, which can abort on objects a signal left half-built in C extensions
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def cmd_list(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from sim.model.loading import load_scenario
    from sim.outputs.tables import print_table, terminal

    library = bundled_scenarios_dir()
    files = sorted(library.glob("*.yaml")) if library.is_dir() else []
    if not files:  # an empty table would look like success
        if os.environ.get("ESCALATION_SCENARIOS"):
            why = (
                " (named by ESCALATION_SCENARIOS): point it at a folder of scenario .yaml files, "
                "or unset it to list the bundled scenarios"
            )
        else:
            why = (
                ": this installation of escalation-sim lacks its package data; reinstall it "
                "(`pip install --force-reinstall .` in a clone of the repository)"
            )
        raise UsageError(f"no scenarios found in {library}{why}")
    table = Table(title=f"Bundled scenarios ({library})", title_justify="left")
    table.add_column("file", no_wrap=True)  # file names and ids are never cut
    table.add_column("id", no_wrap=True)
    table.add_column("title")
    for path in files:
        try:
            scenario = load_scenario(path)
            table.add_row(path.name, scenario.id, escape(scenario.title))
        except ScenarioError as exc:
            table.add_row(path.name, "-", f"[red]invalid: {escape(exc.problems[0].message)}[/red]")
    print_table(terminal(), table)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from sim.format.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from sim.engine.executors import open_executor
    from sim.engine.runner import PRECISION_CAP, run_monte_carlo, run_to_precision
    from sim.engine.streams import BLOCK_SIZE
    from sim.solvers.prepare import prepare_model

    backend = backend_of(args)
    scenario, overrides = load_with_overrides(args.file, args.overrides)
    model = prepare_model(scenario, overrides)
    exact = None
    if args.exact_check:  # solved first: a scenario that cannot be solved fails before the runs
        from sim.solvers.exact import solve

        exact = solve(model)
    cap = args.max_runs or PRECISION_CAP
    if args.precision and cap < BLOCK_SIZE:
        raise UsageError(f"--max-runs must be at least {BLOCK_SIZE:,} (one block) with --precision")
    out_dir = None
    # --json is for scripts: charts only when asked for with --out
    if not args.no_charts and (args.out is not None or not args.json):
        out_dir = args.out or default_out_dir(scenario.id, overrides)
        writable_folder(out_dir, "charts")  # before the runs: a bad folder costs no simulation
    total = cap if args.precision else args.runs
    show = show_progress(args) and total >= 50_000
    with early_charts(out_dir, args, model) as charts_writer:
        with (
            open_executor(executor_spec(args)) as pool,
            ProgressBar(show, total, scenario.id, _run_columns) as advance,
        ):
            if args.precision:
                results = run_to_precision(
                    model,
                    args.precision,
                    args.seed,
                    args.runs,
                    cap,
                    progress=advance,
                    executor=pool,
                    backend=backend,
                )
            else:
                results = run_monte_carlo(
                    model, args.runs, args.seed, progress=advance, executor=pool, backend=backend
                )
        if exact is not None:
            from sim.solvers.exact import exact_check

            results.extra["exact_check"] = exact_check(results, exact)
        if results.precision is not None:
            results.extra["precision"] = results.precision
        if args.json:
            print(json.dumps(with_beliefs(results.to_json(), model, args), indent=2))
        else:
            from sim.outputs.tables import print_run

            print_run(results, [], overrides)
            print_beliefs(model, args)
        if out_dir is not None:  # after the results are out: a chart failure cannot lose them
            with writing("charts", out_dir):
                charts = charts_writer.write(results)
            if not args.json:
                print("Charts: " + ", ".join(str(c) for c in charts))
    return EXIT_OK


def early_charts(out_dir: Path | None, args: argparse.Namespace, model):
    """The four `run` charts' writer of `run` and `exact`, forked before the runs or the solve
    so that matplotlib's import overlaps them (sim.outputs.early_charts); nothing without
    charts."""
    if out_dir is None:
        return contextlib.nullcontext()
    from sim.cli.chart_args import chart_options
    from sim.outputs.early_charts import EarlyCharts

    return EarlyCharts(out_dir, chart_options(args), shared=(model,))


class ProgressBar:
    """A transient rich progress bar on stderr; does nothing when disabled (not a terminal,
    --quiet, or too short to be worth it). `columns` builds the rich columns lazily (default:
    a spinner, the label and the time elapsed, for work of unknown length: `total` None).

    With `delay`, the bar appears only if the work is still going after that many seconds.
    `with` gives None when disabled, else a callable that advances the bar by n and whose
    `stage(label, total=None)` starts the next stage of the work."""

    def __init__(
        self,
        enabled: bool,
        total: int | None,
        label: str,
        columns: Callable[[], list] | None = None,
        delay: float = 0.0,
    ):
        self.enabled, self.total, self.label = enabled, total, label
        self.columns = columns or busy_columns
        self.delay = delay
        self.bar = None
        self.timer: threading.Timer | None = None
        self.lock = threading.Lock()
        self.started = self.closed = False

    def __enter__(self) -> _Ticker | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(*self.columns(), console=Console(stderr=True), transient=True)
        task = self.bar.add_task(self.label, total=self.total)
        if self.delay > 0:
            self.timer = threading.Timer(self.delay, self._start)
            self.timer.daemon = True
            self.timer.start()
        else:
            self._start()
        return _Ticker(self.bar, task)

    def _start(self) -> None:
        with self.lock:
            if not self.closed and self.bar is not None:
                self.bar.start()
                self.started = True

    def __exit__(self, *exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()  # no thread left behind (a later fork needs to be the only one)
        with self.lock:
            self.closed = True
            if self.started and self.bar is not None:
                self.bar.stop()


class _Ticker:
    """What `with ProgressBar(...)` gives: call it with a number of units done; `stage` moves
    on to the next stage of the work."""

    def __init__(self, bar, task):
        self.bar, self.task = bar, task

    def __call__(self, n: int) -> None:
        self.bar.advance(self.task, n)

    def stage(self, label: str, total: int | None = None) -> None:
        self.bar.update(self.task, description=label, total=total, completed=0)


def busy_columns() -> list:
    """Columns for work of unknown length: a spinner, what is being done, the time elapsed."""
    from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn

    return [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]


def _run_columns() -> list:
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

    return [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} runs"),
        TimeRemainingColumn(),
    ]
