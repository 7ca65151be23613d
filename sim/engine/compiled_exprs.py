"""A model's expressions as one machine-code function, for the compiled backend's kernel.

sim/model/opcodes.py lowers every expression of a model to a stack-machine program; this module
turns those programs into LLVM IR with llvmlite's IR builder (no Python source is generated:
the IR is built instruction by instruction from the opcodes, its stack simulated at build time,
so each program becomes straight-line code over SSA values with its constants inlined) and
compiles it with numba's own code generator into one function

    double esim_eval(i64 program, double* fw, i64* ci, i64 turn_key, i64 offset)

that switches on the program number. The kernel (sim/engine/compiled_kernel.py) calls it through
its address: the kernel stays the same for every scenario (and is cached on disk by numba),
while the expressions are machine code specific to the scenario.

The semantics are the interpreter's, operation for operation: IEEE arithmetic without
reassociation or contraction, numpy's rules for min, max and clip as selects written like the
kernel's helpers, and the kernel's own numba functions (called through C entry points) for
floor division, remainder, power, exp, log and the poisson draw. On a run-time error the
function stores the status in ci[4] and returns NaN, as the interpreter did.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from llvmlite import ir

from sim.model import opcodes as oc

_DOUBLE = ir.DoubleType()
_I64 = ir.IntType(64)
_I1 = ir.IntType(1)
_M64 = (1 << 64) - 1
_C1, _C2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_KSITE = 0xC2B2AE3D27D4EB4F
_RUNG, _PEAK, _STEP, _STATUS, _LAST = 0, 1, 2, 4, 8
ERROR, UNSUPPORTED = 1, 2
_COUNTER = itertools.count()


def _mix_int(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return z ^ (z >> 31)


@dataclass
class Compiled:
    """The compiled function: its address, and the library that keeps its code alive."""

    address: int
    library: Any


class _Emitter:
    def __init__(self, module: ir.Module, fn: ir.Function, helpers: dict[str, int]):
        self.module = module
        self.fn = fn
        self.helpers = helpers
        self.p, self.fw, self.ci, self.tkey, self.offset = fn.args
        self.builder: ir.IRBuilder = ir.IRBuilder()
        self._declared: dict[str, Any] = {}

    # -- small pieces ----------------------------------------------------------------------

    def c(self, value: float) -> ir.Constant:
        return ir.Constant(_DOUBLE, float(value))

    def bool_to_double(self, flag: Any) -> Any:
        return self.builder.select(flag, self.c(1.0), self.c(0.0))

    def intrinsic(self, name: str, *args: Any) -> Any:
        fn = self._declared.get(name)
        if fn is None:
            fnty = ir.FunctionType(_DOUBLE, [_DOUBLE] * len(args))
            fn = self._declared[name] = ir.Function(self.module, fnty, name)
        return self.builder.call(fn, list(args))

    def helper(self, name: str, *args: Any) -> Any:
        """A call of one of the kernel's numba functions through its C entry point."""
        fnty = ir.FunctionType(_DOUBLE, [_DOUBLE] * len(args))
        address = ir.Constant(_I64, self.helpers[name])
        return self.builder.call(self.builder.inttoptr(address, fnty.as_pointer()), list(args))

    def load_ci(self, slot: int) -> Any:
        b = self.builder
        return b.sitofp(b.load(b.gep(self.ci, [ir.Constant(_I64, slot)])), _DOUBLE)

    def isnan(self, x: Any) -> Any:
        return self.builder.fcmp_unordered("uno", x, x)

    def isfinite(self, x: Any) -> Any:
        fabs = self.intrinsic("llvm.fabs.f64", x)
        return self.builder.fcmp_ordered("!=", fabs, self.c(float("inf")))

    def mix(self, z: Any) -> Any:
        b = self.builder
        z = b.mul(b.xor(z, b.lshr(z, ir.Constant(_I64, 30))), ir.Constant(_I64, _C1))
        z = b.mul(b.xor(z, b.lshr(z, ir.Constant(_I64, 27))), ir.Constant(_I64, _C2))
        return b.xor(z, b.lshr(z, ir.Constant(_I64, 31)))

    def uniform(self, site: int) -> Any:
        """compiled_kernel.uniform(tkey, site, offset), the site's mix folded here."""
        b = self.builder
        site_mix = ir.Constant(_I64, _mix_int(site * _KSITE + 13))
        bits = self.mix(b.add(self.offset, self.mix(b.xor(self.tkey, site_mix))))
        m = b.uitofp(b.lshr(bits, ir.Constant(_I64, 12)), _DOUBLE)
        one_plus = b.fadd(self.c(1.0), b.fmul(m, self.c(2.0**-52)))
        return b.fsub(one_plus, self.c(1.0 - 2.0**-53))

    def fail_unless(self, ok: Any, status: int) -> None:
        """Store `status` and return NaN unless `ok` (an i1); emission continues where ok."""
        b = self.builder
        bad = self.fn.append_basic_block()
        good = self.fn.append_basic_block()
        b.cbranch(ok, good, bad)
        b.position_at_end(bad)
        b.store(ir.Constant(_I64, status), b.gep(self.ci, [ir.Constant(_I64, _STATUS)]))
        b.ret(self.c(float("nan")))
        b.position_at_end(good)

    # -- one program -----------------------------------------------------------------------

    def program(self, code: list[tuple[int, int]], consts: list[float]) -> Any:
        """Emit the program at the builder's position; returns its value (None: it stops)."""
        b = self.builder
        stack: list[Any] = []
        regs: dict[int, Any] = {}
        site = 0
        for op, arg in code:
            if op == oc.CONST:
                stack.append(self.c(consts[arg]))
            elif op == oc.STATE:
                stack.append(b.load(b.gep(self.fw, [ir.Constant(_I64, arg)])))
            elif op == oc.RUNG:
                stack.append(self.load_ci(_RUNG))
            elif op == oc.PEAK:
                stack.append(self.load_ci(_PEAK))
            elif op == oc.STEP:
                stack.append(self.load_ci(_STEP))
            elif op == oc.LAST:
                stack.append(self.load_ci(_LAST + arg))
            elif op == oc.NEG:
                stack.append(b.fneg(stack.pop()))
            elif op in (oc.ADD, oc.SUB, oc.MUL, oc.DIV):
                y, x = stack.pop(), stack.pop()
                method = {oc.ADD: b.fadd, oc.SUB: b.fsub, oc.MUL: b.fmul, oc.DIV: b.fdiv}[op]
                stack.append(method(x, y))
            elif op in (oc.FLOORDIV, oc.MOD, oc.POW, oc.POWS):
                y, x = stack.pop(), stack.pop()
                name = {oc.FLOORDIV: "floordiv", oc.MOD: "mod", oc.POW: "pow", oc.POWS: "pows"}
                stack.append(self.helper(name[op], x, y))
            elif oc.LT <= op <= oc.NE:
                y, x = stack.pop(), stack.pop()
                if op == oc.NE:
                    flag = b.fcmp_unordered("!=", x, y)
                else:
                    sign = {oc.LT: "<", oc.LE: "<=", oc.GT: ">", oc.GE: ">=", oc.EQ: "=="}[op]
                    flag = b.fcmp_ordered(sign, x, y)
                stack.append(self.bool_to_double(flag))
            elif op in (oc.AND, oc.OR):
                y, x = stack.pop(), stack.pop()
                fx = b.fcmp_unordered("!=", x, self.c(0.0))
                fy = b.fcmp_unordered("!=", y, self.c(0.0))
                flag = b.and_(fx, fy) if op == oc.AND else b.or_(fx, fy)
                stack.append(self.bool_to_double(flag))
            elif op == oc.NOT:
                stack.append(self.bool_to_double(b.fcmp_ordered("==", stack.pop(), self.c(0.0))))
            elif op == oc.TRUTH:
                flag = b.fcmp_unordered("!=", stack.pop(), self.c(0.0))
                stack.append(self.bool_to_double(flag))
            elif op == oc.ABS:
                stack.append(self.intrinsic("llvm.fabs.f64", stack.pop()))
            elif op in (oc.EXP, oc.LOG):
                stack.append(self.helper("exp" if op == oc.EXP else "log", stack.pop()))
            elif op in (oc.SQRT, oc.FLOOR, oc.CEIL, oc.RINT):
                name = {oc.SQRT: "sqrt", oc.FLOOR: "floor", oc.CEIL: "ceil", oc.RINT: "rint"}[op]
                stack.append(self.intrinsic(f"llvm.{name}.f64", stack.pop()))
            elif op in (oc.MIN, oc.MAX):
                y, x = stack.pop(), stack.pop()
                better = b.fcmp_ordered("<" if op == oc.MIN else ">", x, y)
                stack.append(b.select(b.or_(better, self.isnan(x)), x, y))
            elif op in (oc.CLIP, oc.CLIPS):
                hi, lo, x = stack.pop(), stack.pop(), stack.pop()
                if op == oc.CLIP:  # compiled_kernel.np_clip
                    keep = b.or_(self.isnan(x), b.fcmp_ordered(">", x, lo))
                    m = b.select(keep, x, lo)
                    below = b.fcmp_ordered("<", m, hi)
                else:  # compiled_kernel.np_clip_scalar
                    keep = b.or_(b.fcmp_ordered(">=", x, lo), self.isnan(x))
                    m = b.select(keep, x, lo)
                    below = b.fcmp_ordered("<=", m, hi)
                stack.append(b.select(self.isnan(m), m, b.select(below, m, hi)))
            elif op == oc.WHERE:
                no, yes, cond = stack.pop(), stack.pop(), stack.pop()
                stack.append(b.select(b.fcmp_unordered("!=", cond, self.c(0.0)), yes, no))
            elif op == oc.STORE:
                regs[arg] = stack.pop()
            elif op == oc.LOAD:
                stack.append(regs[arg])
            elif op == oc.SITE:
                site = arg
            elif op == oc.BERNOULLI:
                u = self.uniform(site)
                prob = stack.pop()
                inside = b.and_(
                    b.fcmp_ordered(">=", prob, self.c(0.0)), b.fcmp_ordered("<=", prob, self.c(1.0))
                )
                self.fail_unless(inside, ERROR)
                stack.append(self.bool_to_double(b.fcmp_ordered("<", u, prob)))
            elif op == oc.UNIFORM:
                u = self.uniform(site)
                high, low = stack.pop(), stack.pop()
                self.fail_unless(b.and_(self.isfinite(low), self.isfinite(high)), ERROR)
                r = b.fadd(low, b.fmul(b.fsub(high, low), u))
                self.fail_unless(self.isfinite(r), ERROR)
                stack.append(r)
            elif op == oc.POISSON:
                u = self.uniform(site)
                r = self.helper("poisson", stack.pop(), u)
                self.fail_unless(b.fcmp_unordered(">=", r, self.c(-1.5)), UNSUPPORTED)
                self.fail_unless(b.fcmp_unordered(">=", r, self.c(0.0)), ERROR)
                stack.append(r)
            elif op in (oc.NORMAL, oc.BINOMIAL):
                status = b.gep(self.ci, [ir.Constant(_I64, _STATUS)])
                b.store(ir.Constant(_I64, UNSUPPORTED), status)
                b.ret(self.c(float("nan")))
                return None
            else:
                raise oc.Unsupported(f"opcode {op}")
        if len(stack) != 1:
            raise oc.Unsupported("a program that does not leave one value")
        return stack[0]


def build(
    code: list[tuple[int, int]],
    consts: list[float],
    starts: list[int],
    helpers: dict[str, int],
) -> Compiled:
    """Compile the programs (program i: code[starts[i]:starts[i + 1]]) into one function."""
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    module = ir.Module(name=f"esim_exprs_{next(_COUNTER)}")
    fnty = ir.FunctionType(_DOUBLE, [_I64, _DOUBLE.as_pointer(), _I64.as_pointer(), _I64, _I64])
    fn = ir.Function(module, fnty, name="esim_eval")
    fn.attributes.add("nounwind")
    for arg in fn.args[1:3]:
        arg.add_attribute("noalias")
    em = _Emitter(module, fn, helpers)
    entry = fn.append_basic_block("entry")
    default = fn.append_basic_block("default")
    em.builder.position_at_end(default)
    em.builder.ret(em.c(float("nan")))
    em.builder.position_at_end(entry)
    switch = em.builder.switch(fn.args[0], default)
    for i in range(len(starts) - 1):
        block = fn.append_basic_block(f"p{i}")
        switch.add_case(ir.Constant(_I64, i), block)
        em.builder.position_at_end(block)
        value = em.program(code[starts[i] : starts[i + 1]], consts)
        if value is not None:
            em.builder.ret(value)
    with global_compiler_lock:
        codegen = cpu_target.target_context.codegen()
        library = codegen.create_library(module.name)
        library.add_ir_module(module)
        library.finalize()
        return Compiled(library.get_pointer_to_function("esim_eval"), library)
