"""A finished sweep and its files: the tidy table, Sobol indices, points.csv and sweep.json."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim import __version__
from sim.analysis.sweep_design import SweepSpec, import_salib, salib_problem
from sim.files import write_atomic
from sim.format.quiet import warnings_silenced
from sim.format.scenario import Scenario
from sim.model.compiled import Model

SOBOL_RESAMPLES = 1000
STALE = ("points.csv", "points.parquet", "sweep.json", "sobol_indices.csv")


@dataclass
class SweepResult:
    """A finished sweep: its table (parameters, then metrics; one row per point) and its files."""

    spec: SweepSpec
    model: Model
    columns: list[str]
    table: np.ndarray
    computed: int
    seconds: float
    workers: int
    sobol: list[dict[str, Any]] | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def scenario(self) -> Scenario:
        return self.model.scenario

    def column(self, name: str) -> np.ndarray:
        return self.table[:, self.columns.index(name)]

    def metrics(self) -> list[str]:
        """Columns that are point estimates (not interval ends, not parameters)."""
        names = set(self.spec.design.names)
        return [c for c in self.columns if c not in names and not c.endswith(("_lo", "_hi"))]


def sobol_indices(result: SweepResult) -> list[dict[str, Any]]:
    """First- and total-order Sobol indices (SALib, 95% bootstrap intervals) of every metric."""
    sobol = import_salib("SALib.analyze.sobol")
    design = result.spec.design
    problem = salib_problem(design.varies)
    out = []
    for metric in result.metrics():
        y = result.column(metric)
        if np.ptp(y) == 0:  # a constant metric has no variance to share out
            r = {k: np.full(len(design.names), np.nan) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            with warnings_silenced():
                r = sobol.analyze(
                    problem,
                    y,
                    calc_second_order=False,
                    num_resamples=SOBOL_RESAMPLES,
                    conf_level=0.95,
                    seed=result.spec.seed,
                )
        for j, name in enumerate(design.names):
            row = {"metric": metric, "parameter": name}
            row.update({k: float(r[k][j]) for k in ("S1", "S1_conf", "ST", "ST_conf")})
            out.append(row)
    return out


def remove_stale(out_dir: Path) -> None:
    """A new sweep removes the outputs of an earlier one, so none is mistaken for its own."""
    for name in STALE:
        (out_dir / name).unlink(missing_ok=True)
    for chart in out_dir.glob("sweep_*.png"):
        chart.unlink()


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    """CSV through the csv module (a name holding a comma or a quote is quoted, RFC 4180), with
    `\n` line ends; the cells are already text, so the bytes depend on the numbers alone."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def points_csv(result: SweepResult) -> bytes:
    """The tidy table, rows in point order, floats as repr (byte-identical when numbers are)."""
    rows = [[str(i), *(repr(float(x)) for x in row)] for i, row in enumerate(result.table)]
    return _csv(["point", *result.columns], rows)


def _table_csv(rows: list[dict[str, Any]]) -> bytes:
    keys = list(rows[0]) if rows else []
    cells = [[v if isinstance(v, str) else repr(float(v)) for v in r.values()] for r in rows]
    return _csv(keys, cells)


def write_outputs(result: SweepResult, out_dir: Path, command: str) -> list[Path]:
    """points.csv (+ points.parquet with pyarrow), sobol_indices.csv, and sweep.json last."""
    files = [write_atomic(out_dir / "points.csv", points_csv(result))]
    parquet = _write_parquet(result, out_dir)
    if parquet is not None:
        files.append(parquet)
    if result.sobol is not None:
        files.append(write_atomic(out_dir / "sobol_indices.csv", _table_csv(result.sobol)))
    text = json.dumps(_metadata(result, command), indent=2, allow_nan=False) + "\n"
    files.append(write_atomic(out_dir / "sweep.json", text.encode()))
    return files


def _write_parquet(result: SweepResult, out_dir: Path) -> Path | None:
    """points.parquet, when pyarrow is installed (None when it is not)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    columns = {
        "point": np.arange(len(result.table)),
        **{c: result.table[:, k] for k, c in enumerate(result.columns)},
    }
    table = pa.table(columns)
    return write_atomic(out_dir / "points.parquet", lambda f: pq.write_table(table, f))


def _metadata(result: SweepResult, command: str) -> dict[str, Any]:
    """The contents of sweep.json: what was run, by which command, and what each column is."""
    spec, model = result.spec, result.model
    return {
        "scenario": model.scenario.id,
        "scenario_file": spec.file,
        "scenario_sha256": model.sha256,
        "version": __version__,
        "seed": spec.seed,
        "runs": spec.runs,
        "command": command,
        "parameters": model.parameters,
        "fixed": dict(spec.fixed),
        "design": spec.design.to_json(),
        "design_sha256": spec.design_sha256(),
        "columns": ["point", *result.columns],
        "outcomes": list(model.outcome_ids),
        "sobol": _without_nan(result.sobol),
    }


def _without_nan(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """JSON has no NaN: an undefined index (a constant metric) is written as null."""
    if rows is None:
        return None
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in rows
    ]
