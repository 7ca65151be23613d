"""The compiled backend's machine code: one numba kernel that steps one run at a time.

Imported only by sim/engine/compiled.py, and only when `--backend compiled` is asked for (it
imports numba). The kernel is the same for every scenario (compiled once, then loaded from
numba's cache): a scenario reaches it as tables, and its expressions as one machine-code
function built from their stack-machine programs (sim/model/opcodes.py) by
sim/engine/compiled_exprs.py, which the kernel calls through its address.

Numbers are identical to the numpy engine's because every operation is the one numpy performs:
IEEE arithmetic, numpy's rules for //, %, clip, min and max, and for exp, log and power the very
routines numpy's loops call (Intel SVML's `_ha` functions, which numpy exports, where numpy uses
them; the C library's otherwise). `MATH` records which agreed with numpy on sample values at
import; an operation that agrees with neither is refused, and its models fall back to numpy.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
from pathlib import Path

import numpy as np
from numba import cfunc, njit, types
from numba.extending import intrinsic

from sim.model import opcodes as oc

OK, ERROR, UNSUPPORTED = 0, 1, 2
"""Kernel status: done; a run-time error (numpy raises it); something the kernel does not do."""

# --- exp, log and pow as numpy computes them -------------------------------------------------


def _svml(name: str, nargs: int):
    """An intrinsic calling numpy's exported SVML routine `name` on one lane (None if absent)."""
    try:
        import llvmlite.binding as llb
        import numpy._core._multiarray_umath as umath
        from llvmlite import ir

        if not umath.__cpu_features__.get("AVX512_SKX"):
            return None  # numpy's SVML routines are AVX-512 code: calling them here is SIGILL
        address = ctypes.cast(getattr(ctypes.CDLL(umath.__file__), name), ctypes.c_void_p).value
    except (ImportError, AttributeError, OSError):
        return None
    llb.add_symbol(name, address)
    vector = ir.VectorType(ir.DoubleType(), 8)

    def codegen(context, builder, signature, args):
        fn = builder.module.globals.get(name)
        if fn is None:
            fn = ir.Function(builder.module, ir.FunctionType(vector, [vector] * nargs), name)
        lanes = []
        for x in args:
            v = ir.Constant(vector, ir.Undefined)
            for i in range(8):
                v = builder.insert_element(v, x, ir.Constant(ir.IntType(32), i))
            lanes.append(v)
        return builder.extract_element(builder.call(fn, lanes), ir.Constant(ir.IntType(32), 0))

    if nargs == 1:

        @intrinsic
        def one(typingctx, x):
            return types.float64(types.float64), codegen

        return one

    @intrinsic
    def two(typingctx, x, y):
        return types.float64(types.float64, types.float64), codegen

    return two


@njit(error_model="numpy")
def _libm_exp(x):
    return np.exp(x)


@njit(error_model="numpy")
def _libm_log(x):
    return np.log(x)


@njit(error_model="numpy")
def _libm_pow(x, y):
    return np.power(x, y)


def _probe1(fn):
    @njit(error_model="numpy")
    def apply(a):
        out = np.empty_like(a)
        for i in range(a.size):
            out[i] = fn(a[i])
        return out

    return apply


def _probe2(fn):
    @njit(error_model="numpy")
    def apply(a, b):
        out = np.empty_like(a)
        for i in range(a.size):
            out[i] = fn(a[i], b[i])
        return out

    return apply


def _probe_scalar(fn):
    """The kernel's power with one exponent for all elements (see scalar_power)."""

    @njit(error_model="numpy")
    def apply(a, e):
        out = np.empty_like(a)
        for i in range(a.size):
            x = a[i]
            if e == 2.0:
                out[i] = x * x
            elif e == 0.5:
                out[i] = np.sqrt(x)
            elif e == -1.0:
                out[i] = 1.0 / x
            else:
                out[i] = fn(x, e)
        return out

    return apply


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bits, any NaN matching any NaN (a NaN's payload never reaches a result)."""
    nan = np.isnan(a) & np.isnan(b)
    return bool(
        np.array_equal(np.where(nan, 0, a.view(np.uint64)), np.where(nan, 0, b.view(np.uint64)))
    )


def _samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261202)
    x = np.concatenate(
        [
            rng.uniform(-40, 40, 40_000),
            rng.uniform(-745, 710, 10_000),
            rng.normal(0, 1, 10_000),
            np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-300, -1e-300, 700.0, -700.0]),
            np.array([np.inf, -np.inf, np.nan, 709.8, -745.2, 1e308]),
        ]
    )
    y = np.abs(rng.normal(0, 10, x.size)) * np.exp(rng.uniform(-30, 30, x.size))
    y[:14] = [0.0, 1.0, 2.0, 0.5, 1e-310, np.inf, np.nan, -1.0, 3.0, 10.0, 0.1, 7.0, 1e300, 4.0]
    y[16:20] = -rng.uniform(0, 5, 4)
    return x, y


def _choose():
    """For exp, log and pow: the implementation that agrees with numpy bit for bit (or None)."""
    x, y = _samples()
    with np.errstate(all="ignore"):
        want_exp, want_log = np.exp(x), np.log(y)
        exponents = np.concatenate([x[:20_000] / 10, np.round(x[20_000:30_000] / 5)])
        bases = y[: exponents.size]
        want_pow = np.power(bases, exponents)
        scalar_cases = [
            (bases, e, np.power(bases, e))
            for e in (2.0, 0.5, 3.0, -1.0, 1.5, 0.0, 1.0, -2.0, -0.5, 4.0, 10.0)
        ]
    chosen = {}
    exp_options = [("svml", _svml("__svml_exp8_ha", 1)), ("libm", _libm_exp)]
    log_options = [("svml", _svml("__svml_log8_ha", 1)), ("libm", _libm_log)]
    pow_options = [("svml", _svml("__svml_pow8_ha", 2)), ("libm", _libm_pow)]
    for label, fn in exp_options:
        if fn is not None and _same(_probe1(fn)(x), want_exp):
            chosen["exp"] = (label, fn)
            break
    for label, fn in log_options:
        if fn is not None and _same(_probe1(fn)(y), want_log):
            chosen["log"] = (label, fn)
            break
    for label, fn in pow_options:
        if fn is None:
            continue
        probe = _probe2(fn)
        if not _same(probe(bases, exponents), want_pow):
            continue
        scalar = _probe_scalar(fn)
        if all(_same(scalar(b, e), w) for b, e, w in scalar_cases):
            chosen["pow"] = (label, fn)
            break
    return chosen


_CHOSEN = _choose()
MATH = {name: label for name, (label, _) in _CHOSEN.items()}
"""Which implementation of exp, log and pow agrees with numpy here (a missing name: none)."""


@njit(error_model="numpy")
def _nan1(x):
    return np.nan


@njit(error_model="numpy")
def _nan2(x, y):
    return np.nan


def _cache_dir() -> str | None:
    """Where numba caches the kernel: a folder per numpy version, math choice and source of this
    module and of the opcodes (numba itself checks only this file's date), or None (no cache)."""
    digest = hashlib.sha256()
    for module in (__file__, oc.__file__):
        digest.update(Path(module).read_bytes())
    label = "-".join(f"{k}.{v}" for k, v in sorted(MATH.items())) or "none"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(
        base, "escalation-sim", "numba", f"numpy{np.__version__}-{label}-{digest.hexdigest()[:16]}"
    )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


_CACHE_DIR = _cache_dir()
CACHE = _CACHE_DIR is not None
"""Whether compiled kernels are kept on disk (each process then loads instead of compiling)."""
if CACHE:  # read when each cached function below is decorated; put back at the end
    import numba

    _SAVED_CACHE_DIR = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = _CACHE_DIR

_exp = _CHOSEN.get("exp", (None, _nan1))[1]
_log = _CHOSEN.get("log", (None, _nan1))[1]
_pow = _CHOSEN.get("pow", (None, _nan2))[1]


@njit(error_model="numpy", cache=CACHE)
def scalar_power(x, e):
    """numpy's power with an exponent that is the same for every element (its fast paths)."""
    if e == 2.0:
        return x * x
    if e == 0.5:
        return np.sqrt(x)
    if e == -1.0:
        return 1.0 / x
    return _pow(x, e)


# --- numpy's rules -----------------------------------------------------------------------------


@njit(error_model="numpy", cache=CACHE)
def _fmod(a, b):
    if a != a or b != b or math.isinf(a) or b == 0.0:
        return np.nan
    if math.isinf(b):
        return a
    return np.fmod(a, b)


@njit(error_model="numpy", cache=CACHE)
def np_floor_divide(a, b):
    """numpy's float floor_divide."""
    if b == 0.0:
        return a / b
    return _divmod_exact(a, b)[0]


@njit(error_model="numpy", cache=CACHE)
def np_remainder(a, b):
    """numpy's float remainder."""
    if b == 0.0:
        return _fmod(a, b)
    return _divmod_exact(a, b)[1]


@njit(error_model="numpy", cache=CACHE)
def _divmod_exact(a, b):
    mod = _fmod(a, b)
    div = (a - mod) / b
    if mod != 0.0:
        if (b < 0) != (mod < 0):
            mod += b
            div -= 1.0
    else:
        mod = math.copysign(0.0, b)
    if div != 0.0:
        floordiv = np.floor(div)
        if div - floordiv > 0.5:
            floordiv += 1.0
    else:
        floordiv = math.copysign(0.0, a / b)
    return floordiv, mod


@njit(error_model="numpy", cache=CACHE)
def np_minimum(a, b):
    """numpy's minimum: NaN propagates, and of two equal values (0.0, -0.0) the second."""
    return a if (a < b or a != a) else b


@njit(error_model="numpy", cache=CACHE)
def np_maximum(a, b):
    """numpy's maximum: NaN propagates, and of two equal values (0.0, -0.0) the second."""
    return a if (a > b or a != a) else b


@njit(error_model="numpy", cache=CACHE)
def np_clip(x, lo, hi):
    """numpy's clip with bounds given per element: NaN propagating, a bound equal to x wins."""
    m = x if (x != x or x > lo) else lo
    if m != m:
        return m
    return m if m < hi else hi


@njit(error_model="numpy", cache=CACHE)
def np_clip_scalar(x, lo, hi):
    """numpy's clip with one lower and one upper bound for all elements (its other loop): NaN
    propagating, x kept where it equals a bound (clip(-0.0, 0.0, 1.0) is -0.0)."""
    m = x if (x >= lo or x != x) else lo
    if m != m:
        return m
    return m if m <= hi else hi


# --- position-addressed uniforms (sim/engine/streams.py) --------------------------------------

_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S12 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(12)
_KSTEP, _KTURN, _KSITE = (
    np.uint64(0x100000001B3),
    np.uint64(0x9FB21C651E98DF25),
    np.uint64(0xC2B2AE3D27D4EB4F),
)
_ONE, _SEVEN, _THIRTEEN = np.uint64(1), np.uint64(7), np.uint64(13)
_ULP = 2.0**-52
_ONE_MINUS_HALF_ULP = 1.0 - 2.0**-53


@njit(cache=CACHE)
def mix(z):
    """SplitMix64's finaliser (streams._mix_array)."""
    z = (z ^ (z >> _S30)) * _C1
    z = (z ^ (z >> _S27)) * _C2
    return z ^ (z >> _S31)


@njit(cache=CACHE)
def turn_key(key, step, turn):
    """The (step, turn) part of streams.RandomField._call_key."""
    z = mix(key ^ mix(np.uint64(step) * _KSTEP + _ONE))
    return mix(z ^ mix(np.uint64(turn) * _KTURN + _SEVEN))


@njit(cache=CACHE)
def uniform(tkey, site, offset):
    """The run's uniform at a site: streams.RandomField.uniforms for one run."""
    bits = mix(offset + mix(tkey ^ mix(np.uint64(site) * _KSITE + _THIRTEEN)))
    m = bits >> _S12
    return (1.0 + np.float64(m) * _ULP) - _ONE_MINUS_HALF_ULP


# --- the stack machine -------------------------------------------------------------------------

# context slots (ci: int64)
_RUNG, _PEAK, _STEP, _TURN, _STATUS, _CODE, _STACK, _REGS, _LAST = 0, 1, 2, 3, 4, 5, 6, 7, 8
_POISSON_SMALL = 30.0
_MAX_POISSON = 1_000_000.0


@intrinsic
def evaluate(typingctx, ea, p, fw, ci, tkey, offset):
    """Value of program `p` for one run: a call of the model's machine-code expressions at
    address `ea` (sim/engine/compiled_exprs.py); on failure it sets ci[_STATUS], returns NaN.

    `fw`: the run's state variables; `ci`: rung, peak rung, step, turn, status, (unused), then
    the `last` rows."""
    sig = types.float64(types.int64, types.int64, fw, ci, tkey, offset)

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        address, program, fw_value, ci_value, turn_key_, offset_ = args
        fw_data = context.make_array(signature.args[2])(context, builder, fw_value).data
        ci_data = context.make_array(signature.args[3])(context, builder, ci_value).data
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(ir.DoubleType(), [i64, fw_data.type, ci_data.type, i64, i64])
        fn = builder.inttoptr(address, fnty.as_pointer())
        return builder.call(fn, [program, fw_data, ci_data, turn_key_, offset_])

    return sig, codegen


# --- strategic look-ups ------------------------------------------------------------------------


@njit(cache=CACHE)
def key_hash(bits):
    """A 64-bit hash of one state key's words (its exact bits), for the sorted look-up."""
    h = np.uint64(0x243F6A8885A308D3)
    for i in range(bits.size):
        h = mix(h ^ (bits[i] + np.uint64(0x9E3779B97F4A7C15)))
    return h


@intrinsic
def _bits(typingctx, x):
    """The bits of a float64 as a uint64 (no array view needed)."""

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@njit(cache=CACHE)
def hash_rows(rows):
    """key_hash of each row of a (keys, words) uint64 matrix."""
    out = np.empty(rows.shape[0], dtype=np.uint64)
    for i in range(rows.shape[0]):
        out[i] = key_hash(rows[i])
    return out


# --- one batch ---------------------------------------------------------------------------------

# columns of the payoffs-and-effects groups (pe)
_PS, _PE, _SS, _SE, _AS, _AE, _TS, _TE, _GS, _GE = range(10)


@njit(error_model="numpy", _nrt=False, cache=CACHE, inline="always")
def _apply(g, w, fx, ea, fw, state, pay, ci, tkey, offset, vals, before, inc):
    """step.payoffs_and_effects for one run: payoffs, effects (read on the state before),
    settled; tallied increases into their totals and charged per unit. `fx` holds the payoff,
    effect and tally tables, in the order run_batch packs them."""
    (pe, entry_actor, entry_prog, fx_var, fx_prog, tal_var, tal_rate, tal_idx) = fx[:8]
    (target_var, target_span, target_tally, st_min, st_max, st_int) = fx[8:]
    k = 0
    for e in range(pe[g, _PS], pe[g, _PE]):
        vals[k] = evaluate(ea, entry_prog[e], fw, ci, tkey, offset)
        k += 1
    for e in range(pe[g, _SS], pe[g, _AE]):
        vals[k] = evaluate(ea, fx_prog[e], fw, ci, tkey, offset)
        k += 1
    for t in range(pe[g, _TS], pe[g, _TE]):
        tally = tal_idx[t]
        for e in range(tal_rate[tally, 0], tal_rate[tally, 1]):
            vals[k] = evaluate(ea, entry_prog[e], fw, ci, tkey, offset)
            k += 1
    if ci[_STATUS] != OK:
        return
    k = 0
    for e in range(pe[g, _PS], pe[g, _PE]):
        v = vals[k]
        if not math.isfinite(v):
            ci[_STATUS] = ERROR
            return
        pay[entry_actor[e]] += w * v
        k += 1
    n_fx = pe[g, _AE] - pe[g, _SS]
    if n_fx == 0:
        return
    for e in range(pe[g, _SS], pe[g, _AE]):
        j = k + e - pe[g, _SS]
        if e >= pe[g, _AS]:
            vals[j] = state[fx_var[e]] + vals[j]
        if not math.isfinite(vals[j]):
            ci[_STATUS] = ERROR
            return
    for t in range(pe[g, _TS], pe[g, _TE]):
        before[t - pe[g, _TS]] = state[tal_var[tal_idx[t]]]
    for e in range(pe[g, _SS], pe[g, _AE]):
        var = fx_var[e]
        v = vals[k + e - pe[g, _SS]]
        if st_int[var]:
            v = np.rint(v)
        state[var] = np_clip_scalar(v, st_min[var], st_max[var])
    if pe[g, _TS] == pe[g, _TE]:
        return
    for t in range(pe[g, _TS], pe[g, _TE]):
        d = state[tal_var[tal_idx[t]]] - before[t - pe[g, _TS]]
        inc[t - pe[g, _TS]] = np_maximum(d, 0.0)
    for e in range(pe[g, _GS], pe[g, _GE]):
        added = 0.0
        for q in range(target_span[e, 0], target_span[e, 1]):
            added = added + inc[target_tally[q]]
        var = target_var[e]
        v = state[var] + added
        if st_int[var]:
            v = np.rint(v)
        state[var] = np_clip_scalar(v, st_min[var], st_max[var])
    k += n_fx
    for t in range(pe[g, _TS], pe[g, _TE]):
        tally = tal_idx[t]
        for e in range(tal_rate[tally, 0], tal_rate[tally, 1]):
            v = vals[k]
            if not math.isfinite(v):
                ci[_STATUS] = ERROR
                return
            pay[entry_actor[e]] += w * v * inc[t - pe[g, _TS]]
            k += 1


@njit(error_model="numpy", _nrt=False, cache=CACHE)
def _sample(weights, n, u, positive):
    """policies._sample for one run: the option drawn with probability proportional to weight."""
    total = weights[0]
    for i in range(1, n):
        total += weights[i]
    target = u * total
    running = weights[0]
    choice = 0
    for i in range(1, n):
        if running <= target:
            choice += 1
        running += weights[i]
    if positive or total > 0:
        return choice
    return -1


@njit(error_model="numpy", _nrt=False, cache=CACHE)
def _terminal(
    turn_slot, first, plan, plan_idx, term_when, term_out, term_type,
    ea, fw, ci, tkey, offset, hits,
):  # fmt: skip
    """The first terminal outcome that holds (-1: none): step.first_terminal for one run."""
    n = term_when.shape[0]
    count = n if first else plan[turn_slot, 1] - plan[turn_slot, 0]
    for i in range(count):
        t = i if first else plan_idx[plan[turn_slot, 0] + i]
        v = evaluate(ea, term_when[t], fw, ci, tkey, offset)
        if term_type[t] != oc.BOOL and v != v:
            ci[_STATUS] = ERROR
        hits[i] = v != 0.0
    if ci[_STATUS] != OK:
        return -1
    for i in range(count):
        if hits[i]:
            t = i if first else plan_idx[plan[turn_slot, 0] + i]
            return term_out[t]
    return -1


@njit(error_model="numpy", _nrt=False, cache=CACHE)
def run_batch(
    first_run, n, key, horizon, n_rungs, initial_rung, weights, turn_actor, move_number,
    st_init, st_min, st_max, st_int, n_last,
    opt_base, n_opts, opt_requires, opt_rung, opt_pe, opt_site, opt_br, util_prog,
    br_p, br_rung, br_pe, br_cum, br_const,
    pol_kind, pol_option, pol_seq, pol_seq_span, pol_respond, pol_rowcode, pol_rowcode_span,
    pol_rows, pol_rows_span, pol_rationality, forced,
    ch_mover, ch_row, ch_codes, ch_span,
    lk_table, lk_span, lk_cols, lk_cols_span, lk_hash, lk_bits, lk_probs,
    pe, entry_actor, entry_prog, fx_var, fx_prog, tal_var, tal_rate, tal_idx,
    target_var, target_span, target_tally, step_pe,
    term_when, term_out, term_type, term_pay, term_pay_span, plan, plan_idx, end_outcome,
    ea, ptype, fw, ci, f_scratch, u_scratch, i_scratch, b_scratch, tkeys,
    out_outcome, out_steps, out_peak, out_rung, out_pay, out_state,
    occupancy, ended, move_counts,
):  # fmt: skip
    """Every run of a batch, one after the other; returns (status, run index it stopped at).

    `tkeys` (horizon + 1, turns + 2) receives each (step, turn)'s key once, for all the runs."""
    n_state = st_init.shape[0]
    n_actors = n_opts.shape[0]
    n_turns = turn_actor.shape[0]
    state = fw[:n_state]
    last = ci[_LAST : _LAST + n_last]
    pay, z, wts = f_scratch[1], f_scratch[2], f_scratch[3]
    probs, vals = f_scratch[4], f_scratch[7]
    before, inc = f_scratch[8], f_scratch[9]
    keyrow = f_scratch[10]
    keybits = u_scratch[0]
    avail, hits = b_scratch[0], b_scratch[1]
    gamma = np.uint64(0x9E3779B97F4A7C15)
    fx = (pe, entry_actor, entry_prog, fx_var, fx_prog, tal_var, tal_rate, tal_idx,
          target_var, target_span, target_tally, st_min, st_max, st_int)  # fmt: skip
    for step in range(1, horizon + 1):
        for turn in range(n_turns + 2):
            tkeys[step, turn] = turn_key(key, step, turn)
    for r in range(n):
        run = first_run + r
        block = r // 4096
        offset = gamma * (np.uint64(run) + np.uint64(1))
        for i in range(n_state):
            state[i] = st_init[i]
        for i in range(n_actors):
            pay[i] = 0.0
        for i in range(n_last):
            last[i] = -2
        ci[_RUNG] = initial_rung
        ci[_PEAK] = initial_rung
        ci[_STATUS] = OK
        occupancy[block, 0, initial_rung] += 1
        first_check = True
        outcome = -1
        end_step = horizon
        w = 1.0
        for step in range(1, horizon + 1):
            ci[_STEP] = step
            w = weights[step]
            for turn in range(n_turns + 1):
                ci[_TURN] = turn
                tkey = tkeys[step, turn]
                if turn < n_turns:
                    actor = turn_actor[turn]
                    mnum = move_number[step - 1, turn]
                    kind = pol_kind[actor]
                    preferred = -1
                    if kind != 0 and forced[actor] >= 0 and mnum == 0:
                        kind = 1
                        preferred = forced[actor]
                    elif kind == 1:
                        preferred = pol_option[actor]
                    elif kind == 2:
                        s0 = pol_seq_span[actor, 0]
                        length = pol_seq_span[actor, 1] - s0
                        preferred = pol_seq[s0 + min(mnum, length - 1)]
                    nopt = n_opts[actor]
                    base = opt_base[actor]
                    chosen = -1
                    if kind != 0 and nopt > 0:
                        any_req = False
                        for i in range(nopt):
                            p = opt_requires[base + i]
                            if p >= 0:
                                any_req = True
                                v = evaluate(ea, p, fw, ci, tkey, offset)
                                if ptype[p] != oc.BOOL and v != v:
                                    ci[_STATUS] = ERROR
                                avail[i] = v != 0.0
                            else:
                                avail[i] = True
                        if ci[_STATUS] != OK:
                            return ci[_STATUS], r
                        if kind == 1 or kind == 2:
                            if avail[preferred]:
                                chosen = preferred
                            else:
                                for i in range(nopt):
                                    if avail[i]:
                                        chosen = i
                                        break
                        elif kind == 3:  # table
                            code_ = last[pol_respond[actor]] + 2
                            row = pol_rowcode[pol_rowcode_span[actor, 0] + code_]
                            nrows = pol_rows_span[actor, 1]
                            r0 = pol_rows_span[actor, 0]
                            for i in range(nopt):
                                wv = pol_rows[r0 + i * nrows + row]
                                wts[i] = wv * (1.0 if avail[i] else 0.0) if any_req else wv
                            u = uniform(tkey, 0, offset)
                            chosen = _sample(wts, nopt, u, not any_req)
                        elif kind == 4:  # logit
                            lam = pol_rationality[actor]
                            for i in range(nopt):
                                p = util_prog[base + i]
                                v = evaluate(ea, p, fw, ci, tkey, offset)
                                if not math.isfinite(v):
                                    ci[_STATUS] = ERROR
                                z[i] = lam * v
                            if ci[_STATUS] != OK:
                                return ci[_STATUS], r
                            if any_req:
                                for i in range(nopt):
                                    if not avail[i]:
                                        z[i] = -np.inf
                            top = z[0]
                            for i in range(1, nopt):
                                if (z[i] > top or z[i] != z[i]) and top == top:
                                    top = z[i]
                            if any_req and not math.isfinite(top):
                                top = 0.0
                            for i in range(nopt):
                                wts[i] = _exp(z[i] - top)
                            u = uniform(tkey, 0, offset)
                            chosen = _sample(wts, nopt, u, not any_req)
                        else:  # lookup
                            t = lk_table[step, turn]
                            if t < 0:
                                return UNSUPPORTED, r
                            c0 = lk_cols_span[t, 0]
                            ncols = lk_cols_span[t, 1] - c0
                            for i in range(ncols):
                                col = lk_cols[c0 + i]
                                if col < n_state:
                                    keyrow[i] = state[col]
                                elif col == n_state:
                                    keyrow[i] = ci[_RUNG]
                                elif col == n_state + 1:
                                    keyrow[i] = ci[_PEAK]
                                else:
                                    keyrow[i] = last[col - n_state - 2]
                            for i in range(ncols):
                                keybits[i] = _bits(keyrow[i])
                            h = np.uint64(0x243F6A8885A308D3)
                            for i in range(ncols):
                                h = mix(h ^ (keybits[i] + np.uint64(0x9E3779B97F4A7C15)))
                            k0 = lk_span[t, 0]
                            k1 = lk_span[t, 1]
                            lo, hi = k0, k1
                            while lo < hi:
                                mid = (lo + hi) // 2
                                if lk_hash[mid] < h:
                                    lo = mid + 1
                                else:
                                    hi = mid
                            j = lo
                            found = -1
                            while j < k1 and lk_hash[j] == h:
                                same = True
                                for i in range(ncols):
                                    if lk_bits[j, i] != keybits[i]:
                                        same = False
                                        break
                                if same:
                                    found = j
                                    break
                                j += 1
                            if found < 0:
                                return ERROR, r
                            for i in range(nopt + 1):
                                probs[i] = lk_probs[found, i]
                            u = uniform(tkey, 0, offset)
                            chosen = _sample(probs, nopt + 1, u, True) - 1
                    move_counts[block, actor, chosen + 1] += 1
                    if chosen >= 0:
                        g = base + chosen
                        _apply(
                            opt_pe[g],
                            w,
                            fx,
                            ea,
                            fw,
                            state,
                            pay,
                            ci,
                            tkey,
                            offset,
                            vals,
                            before,
                            inc,
                        )
                        if ci[_STATUS] != OK:
                            return ci[_STATUS], r
                        b0 = opt_br[g, 0]
                        nb = opt_br[g, 1] - b0
                        if nb == 0:
                            if opt_rung[g] >= 0:
                                ci[_RUNG] = opt_rung[g]
                        else:
                            if br_const[g]:
                                for j in range(nb):
                                    probs[j] = br_cum[b0 + j]
                            else:
                                rem = -1
                                for j in range(nb):
                                    p = br_p[b0 + j]
                                    if p < 0:
                                        rem = j
                                        probs[j] = 0.0
                                        continue
                                    v = evaluate(ea, p, fw, ci, tkey, offset)
                                    probs[j] = v
                                if ci[_STATUS] != OK:
                                    return ci[_STATUS], r
                                for j in range(nb):
                                    if j != rem and not (probs[j] >= 0.0 and probs[j] <= 1.0):
                                        return ERROR, r
                                total = probs[0]
                                for j in range(1, nb):
                                    total = total + probs[j]
                                if rem < 0:
                                    if abs(total - 1.0) > 1e-9:
                                        return ERROR, r
                                else:
                                    rest = 1.0 - total
                                    if rest < -1e-9:
                                        return ERROR, r
                                    probs[rem] = np_maximum(rest, 0.0)
                                for j in range(1, nb):
                                    probs[j] = probs[j - 1] + probs[j]
                            u = uniform(tkey, opt_site[g], offset)
                            jb = 0
                            for j in range(nb - 1):
                                if u >= probs[j]:
                                    jb += 1
                            bb = b0 + jb
                            _apply(
                                br_pe[bb],
                                w,
                                fx,
                                ea,
                                fw,
                                state,
                                pay,
                                ci,
                                tkey,
                                offset,
                                vals,
                                before,
                                inc,
                            )
                            if ci[_STATUS] != OK:
                                return ci[_STATUS], r
                            if br_rung[bb] >= 0:
                                ci[_RUNG] = br_rung[bb]
                            elif opt_rung[g] >= 0:
                                ci[_RUNG] = opt_rung[g]
                    last[actor] = chosen
                    for c in range(ch_mover.shape[0]):
                        if ch_mover[c] == actor:
                            seen = ch_codes[ch_span[c] + chosen + 2]
                            if seen != -3:
                                last[ch_row[c]] = seen
                    if ci[_RUNG] > ci[_PEAK]:
                        ci[_PEAK] = ci[_RUNG]
                else:
                    _apply(
                        step_pe,
                        w,
                        fx,
                        ea,
                        fw,
                        state,
                        pay,
                        ci,
                        tkey,
                        offset,
                        vals,
                        before,
                        inc,
                    )
                    if ci[_STATUS] != OK:
                        return ci[_STATUS], r
                if term_when.shape[0] > 0:
                    slot = turn
                    outcome = _terminal(
                        slot,
                        first_check,
                        plan,
                        plan_idx,
                        term_when,
                        term_out,
                        term_type,
                        ea,
                        fw,
                        ci,
                        tkey,
                        offset,
                        hits,
                    )
                    first_check = False
                    if ci[_STATUS] != OK:
                        return ci[_STATUS], r
                    if outcome >= 0:
                        end_step = step
                        break
            if outcome >= 0:
                break
            occupancy[block, step, ci[_RUNG]] += 1
        if outcome < 0:
            outcome = end_outcome
            ci[_TURN] = n_turns + 1
            w = weights[horizon]
            tkey = tkeys[horizon, n_turns + 1]
        else:
            tkey = tkeys[end_step, ci[_TURN]]
        for e in range(term_pay_span[outcome, 0], term_pay_span[outcome, 1]):
            _apply(
                term_pay[e],
                w,
                fx,
                ea,
                fw,
                state,
                pay,
                ci,
                tkey,
                offset,
                vals,
                before,
                inc,
            )
            if ci[_STATUS] != OK:
                return ci[_STATUS], r
        out_outcome[r] = outcome
        out_steps[r] = end_step
        out_peak[r] = ci[_PEAK]
        out_rung[r] = ci[_RUNG]
        for i in range(n_actors):
            out_pay[i, r] = pay[i]
        for i in range(n_state):
            out_state[i, r] = state[i]
        ended[block, end_step, outcome] += 1
    return OK, n


# --- C entry points for the machine-code expressions (sim/engine/compiled_exprs.py) -----------

_F1 = types.float64(types.float64)
_F2 = types.float64(types.float64, types.float64)


@cfunc(_F1, cache=CACHE, error_model="numpy")
def _c_exp(x):
    return _exp(x)


@cfunc(_F1, cache=CACHE, error_model="numpy")
def _c_log(x):
    return _log(x)


@cfunc(_F2, cache=CACHE, error_model="numpy")
def _c_pow(x, y):
    return _pow(x, y)


@cfunc(_F2, cache=CACHE, error_model="numpy")
def _c_pows(x, e):
    return scalar_power(x, e)


@cfunc(_F2, cache=CACHE, error_model="numpy")
def _c_floordiv(a, b):
    return np_floor_divide(a, b)


@cfunc(_F2, cache=CACHE, error_model="numpy")
def _c_mod(a, b):
    return np_remainder(a, b)


@cfunc(_F2, cache=CACHE, error_model="numpy")
def _c_poisson(lam, u):
    """The poisson draw of uniform u by inversion; -1: a run-time error, -2: not done here."""
    if not (lam >= 0.0 and math.isfinite(lam)) or lam > _MAX_POISSON:
        return -1.0
    if lam > _POISSON_SMALL:
        return -2.0
    kk = 0.0
    pmf = _exp(-lam)
    cdf = pmf
    while u > cdf:
        kk = kk + 1.0
        pmf = pmf * lam / max(kk, 1.0)
        cdf = cdf + pmf
        if not pmf > 0.0:
            break
    return kk


HELPERS = {
    "exp": _c_exp.address,
    "log": _c_log.address,
    "pow": _c_pow.address,
    "pows": _c_pows.address,
    "floordiv": _c_floordiv.address,
    "mod": _c_mod.address,
    "poisson": _c_poisson.address,
}
"""Addresses of the functions the machine-code expressions call."""

if CACHE:
    numba.config.CACHE_DIR = _SAVED_CACHE_DIR
