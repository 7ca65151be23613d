"""Peak memory of `escalation run` as the number of runs grows: it should stay flat.

Each run count is measured in a fresh subprocess that runs the command in-process
(`sim.cli.main.main(["run", "camp_taji_2020", "--runs", N, "--no-charts", "--quiet", "--json"])`)
and then reads its own peak resident set size, `VmHWM` from /proc/self/status (the whole Python
process: interpreter, imports and the experiment). Worker processes (`--workers`) have their own,
flat too, and are not counted.

    python benchmarks/memory.py                      # 1M, 4M and 16M runs
    python benchmarks/memory.py --runs 1000000 100000000
    python benchmarks/memory.py --quick              # 20k and 80k runs: a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIO = "camp_taji_2020"
TARGET_MIB = 1024
"""Peak resident memory allowed at any run count (docs: 100,000,000 runs under 1 GiB)."""


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status (Linux only)")


def child(runs: int, workers: int) -> None:
    """In a fresh subprocess: run the command, then print the peak RSS as JSON."""
    from sim.cli.main import main

    before = peak_rss_mib()
    argv = ["run", SCENARIO, "--runs", str(runs), "--seed", "1", "--no-charts", "--quiet"]
    argv += ["--json", "--workers", str(workers)]
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    elapsed = time.perf_counter() - start
    result = json.loads(out.getvalue())
    figures = {"runs": result["runs"], "status": status, "seconds": round(elapsed, 1)}
    figures.update({"imports_mib": round(before, 1), "peak_mib": round(peak_rss_mib(), 1)})
    print(json.dumps(figures))


def measure(runs: int, workers: int) -> dict:
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import memory; "
    code += f"memory.child({runs}, {workers})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:  # show the child's traceback, not only its exit status
        sys.stderr.write(out.stderr)
        raise SystemExit(f"the {runs:,}-run subprocess failed with exit status {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20,000 and 80,000 runs")
    args = parser.parse_args(argv)
    counts = [20_000, 80_000] if args.quick else args.runs
    print(f"peak resident memory of `escalation run {SCENARIO} --runs N --no-charts --quiet`")
    print(f"{'runs':>12} {'seconds':>9} {'after imports':>14} {'peak':>10}")
    rows = []
    for runs in counts:
        row = measure(runs, args.workers)
        rows.append(row)
        print(
            f"{row['runs']:>12,} {row['seconds']:>9.1f} {row['imports_mib']:>10.1f} MiB"
            f" {row['peak_mib']:>6.1f} MiB",
            flush=True,
        )
    peaks = [r["peak_mib"] for r in rows]
    growth = peaks[-1] - peaks[0]
    ok = max(peaks) < TARGET_MIB
    verdict = "met" if ok else "MISSED"
    print(f"largest peak {max(peaks):.1f} MiB (target < {TARGET_MIB} MiB): {verdict}")
    print(f"growth from {counts[0]:,} to {counts[-1]:,} runs: {growth:+.1f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
