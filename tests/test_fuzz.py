"""Seeded mutation fuzzing of the bundled scenarios, through the command line in subprocesses.

Each case takes a bundled scenario and damages it (lines deleted, duplicated or swapped, numbers
and expressions mutated, hostile strings inserted, invalid bytes), then runs
`python -m sim validate FILE` and `python -m sim run FILE --runs 50 --no-charts` under
`resource` limits: 1 GiB of address space and 20 seconds. Every case must exit 0 or 2, never 1,
with no traceback and no NumPy RuntimeWarning on stderr.

`make test` runs 40 cases (about a minute). More, and the figures of docs/hardening.md:

    ESCALATION_FUZZ_CASES=3000 ESCALATION_FUZZ_REPORT=fuzz.json \
        .venv/bin/pytest -q tests/test_fuzz.py

`ESCALATION_FUZZ_SEED` picks another campaign; `ESCALATION_FUZZ_KEEP=DIR` keeps every case's
file there (failing cases are always kept, in pytest's tmp_path, and named in the failure).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, SCENARIOS

CASES = int(os.environ.get("ESCALATION_FUZZ_CASES", "40"))
SEED = int(os.environ.get("ESCALATION_FUZZ_SEED", "13"))
MEMORY = 1 << 30
"""RLIMIT_AS of each command: 1 GiB."""
TIMEOUT = 20.0
"""Seconds a command may take."""
PARALLEL = 2

BUNDLED = sorted(SCENARIOS.glob("*.yaml"))

NUMBERS = [
    "0", "-1", "-0.5", "2", "7", "1e308", "-1e308", "1.7976931348623157e308", "1e18", "1e-320",
    ".nan", ".inf", "-.inf", "nan", "0x7fffffffffffffff", "9" * 5000, "1_000", "0_5", "3.0e+400",
    "100000", "1e6", "0.9999999999", "-0", "1e9", "4096", "65", "0o777", "true", "~", "''",
]  # fmt: skip
EXPRESSIONS = [
    "binomial(1e18, 0.5)", "poisson(1e30)", "poisson(1e6)", "binomial(1e6, 0.5)",
    "normal(0, 1e308) * 10", "normal(0, 1e308 * 10)", "uniform(-1e308, 1e308)", "ｓｔｅｐ",
    "True", "False + 1", "__import__('os').system('touch /tmp/escalation-fuzz-pwned')",
    "().__class__.__bases__", "'a' * 10", "9 ** 9 ** 9", "1 / 0", "step / 0", "log(0)",
    "sqrt(-1)", "exp(1000)", "exp(step * 1000)", "x if y else z", "(lambda: 1)()",
    "step ** 1e308", "(" * 200 + "1" + ")" * 200, "1 +" * 600 + "1", "-" * 1500 + "1",
    "min(1)", "where(1, 2)", "clip(step, 1, 0)", "last_us == 'nope'", "last_us", "rung + 'x'",
    "bernoulli(2)", "bernoulli(step)", "binomial(-1, 0.5)", "binomial(step * 1e17, 0.5)",
    "poisson(-step)", "poisson(step * 1e7)", "normal(0, -1)", "0_5", "1e999", "#",
    "a" * 2500, "step and", "not", "\\u0000", "step\x00", "rung >= 6 or",
]  # fmt: skip
HOSTILE_LINES = [
    "bomb: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
    "\n".join(
        ["b0: &b0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        + [f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 10) + "]" for i in range(1, 9)]
    ),
    "\n".join(
        ["c0: &c0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        + [f"c{i}: &c{i} [" + ", ".join([f"*c{i - 1}"] * 10) + "]" for i in range(1, 4)]
        + ["c3: *c3", "horizon: *c3"]
    ),
    "deep: " + "[" * 300 + "]" * 300,
    "deep: " + "{a: " * 250 + "1" + "}" * 250,
    'title: "\\udcff"',
    'title: "ok \\ud800 then"',
    "horizon: " + "9" * 5000,
    "horizon: 100000",
    "discount: 1e999",
    "rec: &r [1, *r]",
    "merged:\n  <<: *nowhere",
    "evil: !!python/object/apply:os.system ['touch /tmp/escalation-fuzz-pwned']",
    "tag: !custom {a: 1}",
    "%YAML 1.1",
    "---",
    "--- !!map\n...",
    "long: " + "a" * 200_000,
    "\t tabs: [1, 2]",
    "actors: {'us;touch x': {label: X}}",
    "state: {big: {initial: 1e308}}",
    "every_step: {effects: {add: {quiet: 1e308}}}",
    "parameters: {ｓｔｅｐ: 1}",
    "parameters: {é: 1}",
    "outcomes: {'a b': {when: 'true'}}",
    "? [complex, key]\n: 1",
    "? *undefined_alias\n: 1",
    "x: [" + ", ".join(["1"] * 2000) + "]",
]
BYTES = [
    b"\x00",
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xed\xb3\xbf",
    b"\r",
    b"\x1b[31m",
    b"\xef\xbb\xbf",
]
EXTENSIONS = [
    " + poisson(1e6)", " * binomial(1e6, 0.5)", " + normal(0, 1e308)", " * 1e308", " / 0",
    " + log(0)", " - sqrt(-1)", " + exp(step * 800)", " and True", " + ｓｔｅｐ", " ** 1e3",
    " + uniform(0, 1e308)", " + bernoulli(1.5)", " + 0_5", " * (rung > 2)",
]  # fmt: skip
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")
EXPRESSION = re.compile(r"\"[^\"\n]{1,200}\"|'[^'\n]{1,200}'")


def mutate(text: str, rng: random.Random) -> bytes:
    """One to four seeded mutations (mostly one) of a scenario, as bytes (maybe not UTF-8)."""
    lines = text.split("\n")
    raw: list[tuple[int, bytes]] = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        kind = rng.choice(
            ["delete", "duplicate", "replace", "number", "number", "number", "expression"]
            + ["expression", "extend", "extend", "hostile", "hostile", "top", "top", "bytes"]
            + ["indent", "swap"]
        )
        i = rng.randrange(len(lines))
        if kind == "delete" and len(lines) > 1:
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "replace":
            lines[i] = rng.choice(lines)
        elif kind == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = " " * rng.choice([1, 2, 3, 8]) + lines[i]
        elif kind == "number":
            candidates = [k for k, line in enumerate(lines) if NUMBER.search(line)]
            if candidates:
                k = rng.choice(candidates)
                found = list(NUMBER.finditer(lines[k]))
                m = rng.choice(found)
                new = rng.choice(NUMBERS)
                lines[k] = lines[k][: m.start()] + new + lines[k][m.end() :]
        elif kind == "expression":
            candidates = [k for k, line in enumerate(lines) if EXPRESSION.search(line)]
            if candidates:
                k = rng.choice(candidates)
                m = rng.choice(list(EXPRESSION.finditer(lines[k])))
                new = json.dumps(rng.choice(EXPRESSIONS), ensure_ascii=False)
                lines[k] = lines[k][: m.start()] + new + lines[k][m.end() :]
        elif kind == "extend":
            candidates = [k for k, line in enumerate(lines) if EXPRESSION.search(line)]
            if candidates:
                k = rng.choice(candidates)
                m = rng.choice(list(EXPRESSION.finditer(lines[k])))
                inner = f"({m.group()[1:-1]}){rng.choice(EXTENSIONS)}"
                new = json.dumps(inner, ensure_ascii=False)
                lines[k] = lines[k][: m.start()] + new + lines[k][m.end() :]
        elif kind == "hostile":
            lines.insert(i, rng.choice(HOSTILE_LINES))
        elif kind == "top":  # at the top level: in place of the same key's line, else at the end
            hostile = rng.choice(HOSTILE_LINES)
            key = hostile.split(":", 1)[0] + ":"
            same = [
                k
                for k, line in enumerate(lines)
                if line.startswith(key)
                and not (k + 1 < len(lines) and lines[k + 1].startswith(" "))
            ]
            if same and "\n" not in hostile:
                lines[same[0]] = hostile
            else:
                lines.append(hostile)
        elif kind == "bytes":
            raw.append((i, rng.choice(BYTES)))
    data = [line.encode("utf-8", errors="surrogatepass") for line in lines]
    for i, junk in raw:
        if i < len(data):
            at = rng.randint(0, len(data[i]))
            data[i] = data[i][:at] + junk + data[i][at:]
    return b"\n".join(data)


def _limits() -> None:  # in the child, before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass
class Outcome:
    case: int
    command: str
    status: int | None
    seconds: float
    max_rss_mb: float
    stderr: str

    @property
    def bad(self) -> str | None:
        if self.status is None:
            return f"no answer within {TIMEOUT:g} s"
        if self.status not in (0, 2):
            return f"exit status {self.status}"
        if "Traceback" in self.stderr:
            return "a traceback on stderr"
        if "Warning" in self.stderr:
            return "a warning on stderr"
        return None


def _run(case: int, command: str, args: list[str], cwd: Path) -> Outcome:
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",  # thread buffers alone would exceed 1 GiB on a big machine
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ESCALATION_DEBUG", None)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_limits,
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    status: int | None = None
    rss = 0.0
    while True:  # wait4 gives this child's own peak memory, which communicate() would lose
        pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            status = os.waitstatus_to_exitcode(wait_status)
            rss = usage.ru_maxrss / 1024
            break
        if time.perf_counter() - start > TIMEOUT:
            proc.kill()  # our own child, by its id
            _, _, usage = os.wait4(proc.pid, 0)
            rss = usage.ru_maxrss / 1024
            break
        time.sleep(0.01)
    proc.returncode = -9 if status is None else status  # reaped here, not by Popen
    seconds = time.perf_counter() - start
    reader.join()
    proc.stderr.close()
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return Outcome(case, command, status, seconds, rss, text)


def _folder(tmp: Path) -> Path:
    keep = os.environ.get("ESCALATION_FUZZ_KEEP")
    return Path(keep) if keep else tmp


def _campaign(tmp: Path, cases: int, seed: int) -> list[Outcome]:
    folder = _folder(tmp)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for case in range(cases):
        rng = random.Random(seed * 1_000_003 + case)
        base = BUNDLED[case % len(BUNDLED)]
        path = folder / f"case{case:05d}_{base.stem}.yaml"
        path.write_bytes(mutate(base.read_text(encoding="utf-8"), rng))
        jobs.append((case, "validate", ["validate", str(path)]))
        jobs.append((case, "run", ["run", str(path), "--runs", "50", "--no-charts", "--quiet"]))
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda job: _run(*job, cwd=folder), jobs))


def _summary(outcomes: list[Outcome], cases: int, seconds: float) -> dict:
    by_status: dict[str, int] = {}
    for o in outcomes:
        key = "timeout" if o.status is None else str(o.status)
        by_status[key] = by_status.get(key, 0) + 1
    slowest = max(outcomes, key=lambda o: o.seconds)
    done = [o for o in outcomes if o.status is not None] or outcomes
    slowest_done = max(done, key=lambda o: o.seconds)
    biggest = max(outcomes, key=lambda o: o.max_rss_mb)
    return {
        "cases": cases,
        "seed": SEED,
        "commands": len(outcomes),
        "exit_statuses": by_status,
        "failures": sum(o.bad is not None for o in outcomes),
        "worst_seconds": round(slowest.seconds, 2),
        "worst_seconds_case": f"{slowest.case} {slowest.command}",
        "mean_seconds": round(sum(o.seconds for o in outcomes) / len(outcomes), 3),
        "worst_seconds_answered": round(slowest_done.seconds, 2),
        "worst_seconds_answered_case": f"{slowest_done.case} {slowest_done.command}",
        "worst_rss_mb": round(biggest.max_rss_mb, 1),
        "worst_rss_case": f"{biggest.case} {biggest.command}",
        "failed": [f"{o.case} {o.command}: {o.bad}" for o in outcomes if o.bad][:50],
        "limits": {"address_space_bytes": MEMORY, "timeout_seconds": TIMEOUT},
        "total_seconds": round(seconds, 1),
    }


def test_mutated_scenarios_exit_0_or_2_without_traceback_in_bounded_time_and_memory(tmp_path):
    start = time.perf_counter()
    outcomes = _campaign(tmp_path, CASES, SEED)
    summary = _summary(outcomes, CASES, time.perf_counter() - start)
    report = os.environ.get("ESCALATION_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    failures = [o for o in outcomes if o.bad is not None]
    detail = "\n".join(
        f"case {o.case} ({o.command}): {o.bad}; file {_folder(tmp_path)}/case{o.case:05d}_*.yaml\n"
        f"{o.stderr[-1500:]}"
        for o in failures[:10]
    )
    assert not failures, f"{len(failures)} of {len(outcomes)} commands failed:\n{detail}"
    assert not Path("/tmp/escalation-fuzz-pwned").exists()


def test_mutations_are_seeded_and_damage_the_file():
    text = BUNDLED[0].read_text(encoding="utf-8")
    first = [mutate(text, random.Random(k)) for k in range(20)]
    again = [mutate(text, random.Random(k)) for k in range(20)]
    assert first == again
    assert sum(m != text.encode() for m in first) >= 18
