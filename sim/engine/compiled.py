"""The compiled backend (DESIGN.md section 8.5): a batch stepped by machine code, run by run.

`simulate_batch_compiled` is a drop-in for `sim.engine.batch.simulate_batch` (without
observers, choosers or per-run paths): it returns the same `BatchOutput`, which the one
summarising routine (`sim.results.summarise_batch`) turns into results, so both backends share
everything after the batch. The model reaches the kernel (sim/engine/compiled_kernel.py) as
index tables and stack-machine programs (sim/model/opcodes.py); random numbers are the same
position-addressed uniforms as sim/engine/streams.py's, so every run draws what it draws there.

What the kernel does not do exactly as numpy does (a normal or binomial draw, a poisson mean
above 30, numpy's integer rules for `//`, `%` and `**`, a math routine that disagreed with
numpy at start-up), and every run-time error (a branch probability outside [0, 1], a NaN
condition, ...), makes that batch run on the numpy engine instead: the same numbers and the
same error message, by construction. Each fallback is logged at DEBUG level on the logger
`sim.engine.compiled` (`escalation -v`); `fallbacks` counts them.

numba is imported only when a batch is first simulated here (`pip install
'escalation-sim[compiled]'`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engine.batch import BatchOutput, RunRecords, simulate_batch
from sim.engine.compiled_specialise import mode as specialise_mode
from sim.engine.compiled_specialise import play, specialised_run_batch
from sim.engine.streams import RandomField, block_runs
from sim.model import opcodes as oc
from sim.model.compiled import Located, Model
from sim.model.semantics import terminals_to_check

BACKENDS = ("numpy", "compiled")
NEEDS_NUMBA = "needs numba: pip install 'escalation-sim[compiled]'"
log = logging.getLogger("sim.engine.compiled")
fallbacks: Counter = Counter()
"""Batches this process left to the numpy engine, by reason (for tests and `-v`)."""

_POLICY_KINDS = {"fixed": 1, "sequence": 2, "table": 3, "logit": 4, "lookup": 5}
_MATH_OPS = {oc.EXP: "exp", oc.LOG: "log", oc.POW: "pow"}


def check_backend(backend: str) -> None:
    """ValueError for an unknown backend (or ESCALATION_SPECIALISE value); ImportError
    (NEEDS_NUMBA) when numba is missing."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "compiled":
        specialise_mode()  # a misspelt ESCALATION_SPECIALISE stops here, before any work
        kernel()


_KERNEL: list[Any] = []


def kernel() -> Any:
    """The kernel module (numba compiles on first use); ImportError(NEEDS_NUMBA) without numba."""
    if not _KERNEL:
        try:
            import numba  # noqa: F401
        except ImportError:
            raise ImportError(NEEDS_NUMBA) from None
        from sim.engine import compiled_kernel

        _KERNEL.append(compiled_kernel)
    return _KERNEL[0]


class _Programs:
    """Every expression of a model, lowered, in one code array."""

    def __init__(self, model: Model, math: dict[str, str]):
        self.model = model
        self.math = math
        self.code: list[tuple[int, int]] = []
        self.consts: list[float] = []
        self.start: list[int] = [0]
        self.types: list[int] = []
        self.max_stack = 1
        self.max_regs = 0
        self.ids: dict[int, int] = {}

    def add(self, located: Located) -> int:
        key = id(located)
        if key in self.ids:
            return self.ids[key]
        program = oc.lower(self.model, located)
        for op in program.uses:
            if op in _MATH_OPS and _MATH_OPS[op] not in self.math:
                raise oc.Unsupported(f"{_MATH_OPS[op]} does not match numpy's here")
        base, reg = len(self.consts), self.max_regs
        for op, arg in program.code:
            if op == oc.CONST:
                arg += base
            elif op in (oc.STORE, oc.LOAD):
                arg += reg
            self.code.append((op, arg))
        self.consts += program.consts
        self.max_regs += program.registers
        self.max_stack = max(self.max_stack, len(program.code) + 1)
        self.start.append(len(self.code))
        self.types.append(program.type)
        self.ids[key] = len(self.types) - 1
        return self.ids[key]


@dataclass
class Tables:
    """A model as the kernel's arguments (everything but the seed and the runs)."""

    args: dict[str, Any]
    width: int
    """Length of the kernel's scratch rows."""
    fw: int
    """Length of a run's float work array (state, stack, registers)."""
    ci: np.ndarray
    """A run's integer context, with the offsets filled in (sim/engine/compiled_kernel.py)."""
    exprs: Any
    """The model's expressions as machine code (sim/engine/compiled_exprs.py): kept alive here,
    called by the kernel through `args["ea"]`, its address."""


def _span(pairs: list[tuple[int, int]]) -> np.ndarray:
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def build_tables(model: Model, math: dict[str, str]) -> Tables:
    """The kernel's tables for `model`; raises opcodes.Unsupported for what it does not do."""
    progs = _Programs(model, math)
    n_state = len(model.state_names)
    # payoffs-and-effects groups
    pe_rows: list[list[int]] = []
    entry_actor: list[int] = []
    entry_prog: list[int] = []
    fx_var: list[int] = []
    fx_prog: list[int] = []
    tal_var = [t.var for t in model.tallies]
    tal_rate: list[tuple[int, int]] = []
    for t in model.tallies:
        s = len(entry_actor)
        for actor, e in t.payoffs:
            entry_actor.append(actor)
            entry_prog.append(progs.add(e))
        tal_rate.append((s, len(entry_actor)))
    tal_idx: list[int] = []
    target_var: list[int] = []
    target_span: list[tuple[int, int]] = []
    target_tally: list[int] = []
    max_vals = 1

    def group(payoffs: Any, effects: Any) -> int:
        nonlocal max_vals
        ps = len(entry_actor)
        for actor, e in payoffs:
            entry_actor.append(actor)
            entry_prog.append(progs.add(e))
        pe_ = len(entry_actor)
        ss = len(fx_var)
        for var, e in effects.set:
            fx_var.append(var)
            fx_prog.append(progs.add(e))
        as_ = len(fx_var)
        for var, e in effects.add:
            fx_var.append(var)
            fx_prog.append(progs.add(e))
        ae = len(fx_var)
        tallies = [i for i, t in enumerate(model.tallies) if effects and effects.changes(t.var)]
        ts = len(tal_idx)
        tal_idx.extend(tallies)
        te = len(tal_idx)
        order: dict[int, list[int]] = {}
        for local, i in enumerate(tallies):
            for target in model.tallies[i].into:
                order.setdefault(target, []).append(local)
        gs = len(target_var)
        for target, parts in order.items():
            target_var.append(target)
            target_span.append((len(target_tally), len(target_tally) + len(parts)))
            target_tally.extend(parts)
        ge = len(target_var)
        rates = sum(tal_rate[i][1] - tal_rate[i][0] for i in tallies)
        max_vals = max(max_vals, (pe_ - ps) + (ae - ss) + rates)
        pe_rows.append([ps, pe_, ss, as_, as_, ae, ts, te, gs, ge])
        return len(pe_rows) - 1

    actors = len(model.actors)
    opt_base, n_opts = [], []
    opt_requires, opt_rung, opt_pe, opt_site, opt_br, util_prog = [], [], [], [], [], []
    br_p, br_rung, br_pe, br_cum, br_const = [], [], [], [], []
    for a in range(actors):
        menu = model.options[a]
        opt_base.append(len(opt_requires))
        n_opts.append(len(menu))
        policy = model.policies[a]
        for o in menu:
            opt_requires.append(-1 if o.requires is None else progs.add(o.requires))
            opt_rung.append(-1 if o.rung is None else o.rung)
            opt_pe.append(group(o.payoffs, o.effects))
            opt_site.append(o.branch_site)
            b0 = len(br_p)
            if o.branches and o.constant_cumulative is None and len(o.branches) > 8:
                raise oc.Unsupported("more than 8 branches with run-time probabilities")
            for j, b in enumerate(o.branches):
                br_p.append(-1 if b.p is None else progs.add(b.p))
                br_rung.append(-1 if b.rung is None else b.rung)
                br_pe.append(group(b.payoffs, b.effects))
                cum = o.constant_cumulative
                br_cum.append(float(cum[j]) if cum is not None else 0.0)
            br_const.append(o.constant_cumulative is not None)
            opt_br.append((b0, len(br_p)))
            if policy is not None and policy.kind == "logit":
                util_prog.append(progs.add(policy.utilities[o.index]))
            else:
                util_prog.append(-1)
    step_pe = group(model.step_payoffs, model.step_effects)
    # policies
    pol_kind, pol_option, pol_seq, pol_seq_span = [], [], [], []
    pol_respond, pol_rowcode, pol_rowcode_span, pol_rows, pol_rows_span = [], [], [], [], []
    pol_rationality, forced = [], []
    lookups: dict[tuple[int, int], Any] = {}
    for a, policy in enumerate(model.policies):
        kind = 0 if policy is None else _POLICY_KINDS.get(policy.kind)
        if kind is None:
            raise oc.Unsupported(f"policy kind {policy.kind}")
        pol_kind.append(kind)
        pol_option.append(policy.option if policy is not None else 0)
        s = len(pol_seq)
        pol_seq.extend(policy.sequence if policy is not None else ())
        pol_seq_span.append((s, len(pol_seq)))
        if kind == 3:
            pol_respond.append(policy.respond_to)
            pol_rowcode_span.append((len(pol_rowcode), len(pol_rowcode) + policy.row_of_code.size))
            pol_rowcode.extend(int(c) for c in policy.row_of_code)
            rows = np.ascontiguousarray(policy.rows_by_option, dtype=float)
            pol_rows_span.append((len(pol_rows), rows.shape[1]))
            pol_rows.extend(rows.ravel().tolist())
        else:
            pol_respond.append(0)
            pol_rowcode_span.append((0, 0))
            pol_rows_span.append((0, 1))
        pol_rationality.append(float(policy.rationality) if policy is not None else 1.0)
        forced.append(model.forced_first.get(a, -1))
        if kind == 5:
            for (step, turn), table in policy.lookup.choices.items():
                lookups[(step, turn)] = (policy.lookup, table)
    lk = _lookup_tables(model, lookups)
    # terminals
    plan = terminals_to_check(model)
    index = {id(t): i for i, t in enumerate(model.terminals)}
    plan_idx: list[int] = []
    plan_span = []
    for terminals in plan:
        s = len(plan_idx)
        plan_idx.extend(index[id(t)] for t in terminals)
        plan_span.append((s, len(plan_idx)))
    term_pe = {}
    for i, t in enumerate(model.terminals):
        if t.payoffs:
            term_pe[i] = group(t.payoffs, _NO_EFFECTS)
    term_pay, term_pay_span = [], []
    for o in range(len(model.outcome_ids)):
        s = len(term_pay)
        for t1 in model.terminals:
            if t1.payoffs and t1.outcome == o:
                for i, t2 in enumerate(model.terminals):
                    if t2.outcome == o and t2.payoffs:
                        term_pay.append(term_pe[i])
        term_pay_span.append((s, len(term_pay)))
    term_when = [progs.add(t.when) for t in model.terminals]
    # turns
    turns = model.turn_order
    per_actor = Counter(turns)
    move_number = np.zeros((model.horizon, max(len(turns), 1)), dtype=np.int64)
    seen: Counter = Counter()
    for turn, actor in enumerate(turns):
        for step in range(model.horizon):
            move_number[step, turn] = step * per_actor[actor] + seen[actor]
        seen[actor] += 1
    weights = np.array([1.0] + [model.discount ** (s - 1) for s in range(1, model.horizon + 1)])
    ch_codes: list[int] = []
    ch_span = []
    for ch in model.channels:
        ch_span.append(len(ch_codes))
        ch_codes.extend(int(c) for c in ch.codes)
    i64 = np.int64
    from sim.engine import compiled_exprs  # imports llvmlite, which comes with numba

    exprs = compiled_exprs.build(progs.code, progs.consts, progs.start, kernel().HELPERS)

    def arr(values: Any, dtype: Any = i64) -> np.ndarray:
        return np.array(values, dtype=dtype)

    args = dict(
        horizon=model.horizon,
        n_rungs=model.n_rungs,
        initial_rung=model.initial_rung,
        weights=weights,
        turn_actor=arr(turns),
        move_number=move_number,
        st_init=np.array(model.state_initial, dtype=float),
        st_min=np.array(model.state_min, dtype=float),
        st_max=np.array(model.state_max, dtype=float),
        st_int=np.array(model.state_integer, dtype=np.bool_),
        n_last=model.n_last_rows,
        opt_base=arr(opt_base),
        n_opts=arr(n_opts),
        opt_requires=arr(opt_requires),
        opt_rung=arr(opt_rung),
        opt_pe=arr(opt_pe),
        opt_site=arr(opt_site),
        opt_br=_span(opt_br),
        util_prog=arr(util_prog),
        br_p=arr(br_p),
        br_rung=arr(br_rung),
        br_pe=arr(br_pe),
        br_cum=arr(br_cum, float),
        br_const=arr(br_const, np.bool_),
        pol_kind=arr(pol_kind),
        pol_option=arr(pol_option),
        pol_seq=arr(pol_seq),
        pol_seq_span=_span(pol_seq_span),
        pol_respond=arr(pol_respond),
        pol_rowcode=arr(pol_rowcode),
        pol_rowcode_span=_span(pol_rowcode_span),
        pol_rows=arr(pol_rows, float),
        pol_rows_span=_span(pol_rows_span),
        pol_rationality=arr(pol_rationality, float),
        forced=arr(forced),
        ch_mover=arr([c.mover for c in model.channels]),
        ch_row=arr([c.row for c in model.channels]),
        ch_codes=arr(ch_codes),
        ch_span=arr(ch_span),
        **lk,
        pe=np.array(pe_rows, dtype=i64).reshape(-1, 10),
        entry_actor=arr(entry_actor),
        entry_prog=arr(entry_prog),
        fx_var=arr(fx_var),
        fx_prog=arr(fx_prog),
        tal_var=arr(tal_var),
        tal_rate=_span(tal_rate),
        tal_idx=arr(tal_idx),
        target_var=arr(target_var),
        target_span=_span(target_span),
        target_tally=arr(target_tally),
        step_pe=step_pe,
        term_when=arr(term_when),
        term_out=arr([t.outcome for t in model.terminals]),
        term_type=arr([progs.types[p] for p in term_when]),
        term_pay=arr(term_pay),
        term_pay_span=_span(term_pay_span),
        plan=_span(plan_span),
        plan_idx=arr(plan_idx),
        end_outcome=model.end_outcome,
        ea=exprs.address,
        ptype=arr(progs.types),
    )
    width = max(
        n_state + 2 + model.n_last_rows,
        actors,
        model.max_options + 2,
        progs.max_stack + 1,
        progs.max_regs + 1,
        max_vals + 1,
        len(model.terminals) + 1,
        6,
    )
    fw = n_state + progs.max_stack + 1 + progs.max_regs + 1
    ci = np.zeros(8 + model.n_last_rows, dtype=i64)
    ci[5:8] = len(progs.start), n_state, n_state + progs.max_stack + 1
    return Tables(args, width, fw, ci, exprs)


class _NoEffects:
    set: tuple = ()
    add: tuple = ()

    def __bool__(self) -> bool:
        return False

    def changes(self, var: int) -> bool:
        return False


_NO_EFFECTS = _NoEffects()


def _lookup_tables(model: Model, lookups: dict[tuple[int, int], Any]) -> dict[str, np.ndarray]:
    """Solved choices as sorted hashes of their state keys (the kernel searches them)."""
    k = kernel()
    n_state, n_last = len(model.state_names), model.n_last_rows
    table = np.full((model.horizon + 1, max(len(model.turn_order), 1) + 1), -1, dtype=np.int64)
    spans, cols, cols_span, hashes, bits, probs = [], [], [], [], [], []
    width = n_state + 2 + n_last
    start = 0
    for t, ((step, turn), (lookup, (keys, p))) in enumerate(sorted(lookups.items())):
        view = lookup.views.get((step, turn))
        state_cols = list(range(n_state)) if view is None else list(view.state)
        last_rows = list(range(n_last)) if view is None else list(view.last_rows)
        mine = state_cols + [n_state, n_state + 1] + [n_state + 2 + r for r in last_rows]
        cols_span.append((len(cols), len(cols) + len(mine)))
        cols.extend(mine)
        rows = np.ascontiguousarray(keys).view(np.float64).reshape(keys.shape[0], len(mine))
        rows = rows.view(np.uint64)
        if rows.shape[1] != len(mine):
            raise oc.Unsupported("lookup key layout")
        h = k.hash_rows(np.ascontiguousarray(rows))
        order = np.argsort(h, kind="stable")
        padded = np.zeros((rows.shape[0], width), dtype=np.uint64)
        padded[:, : rows.shape[1]] = rows[order]
        hashes.append(h[order])
        bits.append(padded)
        pp = np.zeros((rows.shape[0], model.max_options + 1))
        pp[:, : p.shape[1]] = p[order]
        probs.append(pp)
        spans.append((start, start + rows.shape[0]))
        start += rows.shape[0]
        table[step, turn] = t
    return dict(
        lk_table=table,
        lk_span=_span(spans),
        lk_cols=np.array(cols, dtype=np.int64),
        lk_cols_span=_span(cols_span),
        lk_hash=np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64),
        lk_bits=np.concatenate(bits) if bits else np.zeros((0, width), dtype=np.uint64),
        lk_probs=np.concatenate(probs) if probs else np.zeros((0, model.max_options + 1)),
    )


_TABLES: dict[int, tuple[Model, Tables | str]] = {}


def tables_for(model: Model) -> Tables | str:
    """The model's tables, built once per model object (a string: why it falls back)."""
    cached = _TABLES.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]
    try:
        built: Tables | str = build_tables(model, kernel().MATH)
    except oc.Unsupported as exc:
        built = str(exc)
    if len(_TABLES) > 16:
        _TABLES.clear()
    _TABLES[id(model)] = (model, built)
    return built


def simulate_batch_compiled(
    model: Model,
    seed: int,
    first_block: int,
    n_blocks: int,
    runs: int,
    stream: tuple[int, ...] = (),
) -> BatchOutput:
    """`simulate_batch(model, seed, first_block, n_blocks, runs, stream=stream,
    record_moves=False)`, computed by the kernel; the numpy engine where it cannot be."""
    k = kernel()
    tables = tables_for(model)
    if isinstance(tables, str):
        return _fallback(model, seed, first_block, n_blocks, runs, stream, tables)
    ranges = [block_runs(runs, b) for b in range(first_block, first_block + n_blocks)]
    sizes = [hi - lo for lo, hi in ranges]
    first_run, n = ranges[0][0], sum(sizes)
    n_state, n_actors = len(model.state_names), len(model.actors)
    h = model.horizon
    rec = RunRecords(
        first_run=first_run,
        outcome=np.full(n, -1, dtype=np.int16),
        steps=np.zeros(n, dtype=np.int32),
        peak_rung=np.zeros(n, dtype=np.int16),
        final_rung=np.zeros(n, dtype=np.int16),
        payoffs=np.zeros((n_actors, n)),
        state=np.zeros((n_state, n)),
        moves_by_run=None,
        rung_path=None,
    )
    occupancy = np.zeros((n_blocks, h + 1, model.n_rungs), dtype=np.int64)
    ended = np.zeros((n_blocks, h + 1, len(model.outcome_ids)), dtype=np.int64)
    moves = np.zeros((n_blocks, n_actors, model.max_options + 1), dtype=np.int64)
    key = np.uint64(RandomField(seed, stream).key & ((1 << 64) - 1))
    work = dict(
        fw=np.zeros(tables.fw),
        ci=tables.ci.copy(),
        f_scratch=np.zeros((11, tables.width)),
        u_scratch=np.zeros((1, tables.width), dtype=np.uint64),
        i_scratch=np.zeros((2, tables.width), dtype=np.int64),
        b_scratch=np.zeros((2, tables.width), dtype=np.bool_),
        tkeys=np.zeros((h + 1, len(tables.args["turn_actor"]) + 2), dtype=np.uint64),
        out_outcome=rec.outcome,
        out_steps=rec.steps,
        out_peak=rec.peak_rung,
        out_rung=rec.final_rung,
        out_pay=rec.payoffs,
        out_state=rec.state,
        occupancy=occupancy,
        ended=ended,
        move_counts=moves,
    )
    special = specialised_run_batch(k, tables.args, runs)
    played = None if special is None else play(special, first_run, n, key, tables.args["ea"], work)
    if played is None:
        played = k.run_batch(first_run, n, key, **tables.args, **work)
    status, at = played
    if status != k.OK:
        why = "a run-time error" if status == k.ERROR else "a step it does not compile"
        return _fallback(
            model, seed, first_block, n_blocks, runs, stream, f"{why} in run {first_run + at}"
        )
    return BatchOutput(first_block, sizes, rec, occupancy, ended, moves)


def _fallback(
    model: Model,
    seed: int,
    first_block: int,
    n_blocks: int,
    runs: int,
    stream: tuple[int, ...],
    why: str,
) -> BatchOutput:
    fallbacks[why.split(" in run ")[0]] += 1
    log.debug(
        "compiled backend: blocks %d-%d of %s run on the numpy engine (%s)",
        first_block,
        first_block + n_blocks - 1,
        model.scenario.id,
        why,
    )
    return simulate_batch(
        model, seed, first_block, n_blocks, runs, stream=stream, record_moves=False
    )


def fallback_reason(model: Model) -> str | None:
    """Why the kernel cannot run this model at all (None: it can, barring run-time surprises)."""
    tables = tables_for(model)
    return tables if isinstance(tables, str) else None
