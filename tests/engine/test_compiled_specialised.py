"""The compiled kernel specialised to a model gives the generic kernel's numbers, is compiled
only when asked for or when the runs pay for it, and never stops a run when it cannot be used.

Identical means equal (`Results.to_dict()` with ==). Each specialised kernel takes 9 to 15 s
to compile the first time on a machine (then numba's cache has it), so `make test` checks three
scenarios (two actors; hidden information with a solved lookup; the main bundled scenario) and
ESCALATION_SLOW=1 every bundled one.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

pytest.importorskip("numba")

from sim.cli.main import main  # noqa: E402
from sim.engine import compiled  # noqa: E402
from sim.engine import compiled_specialise as cs  # noqa: E402
from sim.engine.runner import run_monte_carlo  # noqa: E402
from sim.format.library import bundled_names, resolve_scenario_path  # noqa: E402
from sim.model.loading import load_scenario  # noqa: E402
from sim.solvers.prepare import prepare_model  # noqa: E402
from tests.conftest import assert_same_batch  # noqa: E402

SLOW = bool(os.environ.get("ESCALATION_SLOW"))
CHECKED = ["tit_for_tat", "bluff_2020", "camp_taji_2020"]
NAMES = bundled_names() if SLOW else CHECKED


def bundled(name: str):
    return prepare_model(load_scenario(resolve_scenario_path(name)), {})


def tables(name: str) -> dict:
    return compiled.tables_for(bundled(name)).args


def constants(args: dict) -> dict:
    return {key: v for key, v in args.items() if key not in cs.RUNTIME_ARGS}


@pytest.fixture
def always(monkeypatch):
    monkeypatch.setenv(cs.ENV, "always")


@pytest.fixture
def real_folder():
    """The kernel cache's own folder (so that each kernel is compiled once per machine)."""
    folder = cs._folder(compiled.kernel())
    if folder is None:
        pytest.skip("no private, writable numba cache folder: the generic kernel always runs")
    return folder


@pytest.fixture
def scratch(monkeypatch, tmp_path):
    """Specialised kernels written to tmp_path, none loaded, broken or confirmed yet."""
    monkeypatch.setattr(cs, "_folder", lambda kernel: tmp_path)
    for name in ("_LOADED", "_NAMES"):
        monkeypatch.setattr(cs, name, {})
    for name in ("_BROKEN", "_CONFIRMED"):
        monkeypatch.setattr(cs, name, set())
    return tmp_path


@pytest.mark.parametrize("name", NAMES)
def test_specialised_kernel_gives_the_numpy_engines_results(name, always, real_folder):
    model = bundled(name)
    args = compiled.tables_for(model).args
    made = cs.specialised_run_batch(compiled.kernel(), args, 1)
    assert made is not None  # not vacuous: the batches below run on it
    before = sum(compiled.fallbacks.values())
    for seed, batch_blocks in ((1, 16), (7, 1)):
        want = run_monte_carlo(model, 5_000, seed, batch_blocks=batch_blocks).to_dict()
        got = run_monte_carlo(model, 5_000, seed, batch_blocks=batch_blocks, backend="compiled")
        assert got.to_dict() == want
    assert sum(compiled.fallbacks.values()) == before
    assert (real_folder / f"{cs._name_of(made)}.ok").exists()  # it ran: auto may now use it


def test_specialised_batch_records_equal_the_generic_kernels(monkeypatch, real_folder):
    model = bundled("tit_for_tat")
    batch = (model, 11, 1, 2, 3 * 4096 + 17, (4,))
    monkeypatch.setenv(cs.ENV, "never")
    generic = compiled.simulate_batch_compiled(*batch)
    monkeypatch.setenv(cs.ENV, "always")
    special = compiled.simulate_batch_compiled(*batch)
    assert cs.specialised_run_batch(compiled.kernel(), compiled.tables_for(model).args, 1)
    assert_same_batch(generic, special)


def test_auto_compiles_only_for_enough_turns_and_reuses_one_that_ran(scratch, monkeypatch):
    monkeypatch.delenv(cs.ENV, raising=False)
    k, args = compiled.kernel(), tables("tit_for_tat")
    per_run = args["horizon"] * len(args["turn_actor"])
    enough = math.ceil(cs.SPECIALISE_TURNS / per_run)
    assert cs.specialised_run_batch(k, args, enough - 1) is None
    assert list(scratch.iterdir()) == []
    made = cs.specialised_run_batch(k, args, enough)
    assert made is not None
    assert sorted(p.suffix for p in scratch.iterdir() if p.is_file()) == [".npz", ".py"]
    monkeypatch.setattr(cs, "_LOADED", {})  # as a new process: written, but never ran
    assert cs.specialised_run_batch(k, args, 1) is None
    (scratch / f"{cs._name_of(made)}.ok").touch()  # what `play` leaves once it has run
    assert cs.specialised_run_batch(k, args, 1) is not None


def test_never_and_no_cache_folder_keep_the_generic_kernel(scratch, monkeypatch):
    k, args = compiled.kernel(), tables("tit_for_tat")
    for value in ("never", "off", "0", "False"):
        monkeypatch.setenv(cs.ENV, value)
        assert cs.specialised_run_batch(k, args, 10**9) is None
    monkeypatch.setenv(cs.ENV, "always")
    monkeypatch.setattr(cs, "_folder", lambda kernel: None)
    assert cs.specialised_run_batch(k, args, 10**9) is None
    assert list(scratch.iterdir()) == []


def test_a_misspelt_mode_is_an_error_before_any_work(monkeypatch, capsys):
    monkeypatch.setenv(cs.ENV, "alwyas")
    with pytest.raises(ValueError, match="did you mean 'always'"):
        compiled.check_backend("compiled")
    assert main(["run", "tit_for_tat", "--backend", "compiled", "--runs", "100"]) == 2
    err = capsys.readouterr().err
    assert "ESCALATION_SPECIALISE must be auto, always or never" in err
    assert "Traceback" not in err


def test_tables_beyond_the_limit_keep_the_generic_kernel(scratch, always, monkeypatch):
    k, args = compiled.kernel(), tables("tit_for_tat")
    size = sum(v.nbytes for v in constants(args).values() if isinstance(v, np.ndarray))
    monkeypatch.setattr(cs, "MAX_CONSTANT_BYTES", size - 1)
    assert cs.specialised_run_batch(k, args, 10**9) is None
    monkeypatch.setattr(cs, "MAX_CONSTANT_BYTES", size)
    assert cs.specialised_run_batch(k, args, 10**9) is not None


def test_one_changed_table_entry_names_another_kernel():
    k, known = compiled.kernel(), constants(tables("tit_for_tat"))
    changed = dict(known, weights=known["weights"].copy())
    changed["weights"][-1] = np.nextafter(changed["weights"][-1], 2.0)
    assert cs._digest(k, changed) != cs._digest(k, known)
    assert cs._digest(k, dict(known, horizon=known["horizon"] + 1)) != cs._digest(k, known)


def test_a_damaged_npz_is_skipped_with_a_warning_and_removed(scratch, always, caplog):
    k, args = compiled.kernel(), tables("tit_for_tat")
    assert cs.specialised_run_batch(k, args, 1) is not None
    name = cs._name_for(k, args, constants(args))
    (scratch / f"{name}.npz").write_bytes(b"not a zip file")
    cs._LOADED.clear()
    assert cs.specialised_run_batch(k, args, 1) is None
    assert "cannot run" in caplog.text
    assert not (scratch / f"{name}.py").exists()  # written afresh by the next process


def test_a_truncated_source_is_written_again_before_it_is_imported(scratch, always):
    k, args = compiled.kernel(), tables("tit_for_tat")
    assert cs.specialised_run_batch(k, args, 1) is not None
    name = cs._name_for(k, args, constants(args))
    source = scratch / f"{name}.py"
    whole = source.read_text()
    source.write_text(whole[: len(whole) // 2])
    cs._LOADED.clear()
    assert cs.specialised_run_batch(k, args, 1) is not None
    assert source.read_text() == whole


def test_a_kernel_numba_cannot_compile_leaves_the_batch_to_the_generic_one(
    scratch, always, monkeypatch, caplog
):
    model = bundled("tit_for_tat")
    real = cs.module_source

    def broken(kernel, consts):
        text = real(kernel, consts)
        head = text.index("):\n", text.index("def run_batch(")) + 3
        return text[:head] + "    return no_such_name\n"

    monkeypatch.setattr(cs, "module_source", broken)
    want = run_monte_carlo(model, 4_100, 5).to_dict()
    assert run_monte_carlo(model, 4_100, 5, backend="compiled").to_dict() == want
    assert "cannot run" in caplog.text
    assert list(scratch.glob("*.py")) == []
    assert len(cs._BROKEN) == 1  # not tried again in this process


def test_the_generated_module_holds_only_literals_imports_and_the_kernels_body():
    k, args = compiled.kernel(), tables("camp_taji_2020")
    text = cs.module_source(k, constants(args))
    header = text[: text.index("@njit")]
    for line in header.splitlines()[1:]:
        value = line.split(" = ", 1)[1] if " = " in line else ""
        assert (
            line == ""
            or line.startswith(("import ", "from "))
            or line == "with np.load(__file__[:-3] + '.npz', allow_pickle=False) as _tables:"
            or value.lstrip("-").isdigit()
            or (line.startswith("    ") and value.startswith("_tables['"))
        ), line
    assert "Camp Taji" not in text and "camp_taji" not in text
    assert text[text.index("def run_batch(") :].count("def ") == 1
    decorator = text[text.index("@njit") :].splitlines()[0]
    assert "error_model='numpy'" in decorator and "_nrt=False" in decorator  # the kernel's own


def test_only_the_most_recently_used_kernels_are_kept(scratch, monkeypatch):
    monkeypatch.setattr(cs, "MAX_KERNELS", 2)
    for i, name in enumerate(["k_old", "k_mid", "k_new"]):
        (scratch / f"{name}.py").write_text("")  # its date is the same for all: the .npz says
        (scratch / f"{name}.npz").write_text("")  # when a kernel was last used
        os.utime(scratch / f"{name}.npz", (1000 + i, 1000 + i))
    (scratch / "k_old.ok").write_text("")
    (scratch / "__pycache__").mkdir()
    (scratch / "__pycache__" / "k_old.run_batch-77.py311.nbi").write_text("")
    (scratch / ".k_gone.py-abc.tmp").write_text("")
    os.utime(scratch / ".k_gone.py-abc.tmp", (1000, 1000))
    cs._prune(scratch, keep="k_new")
    assert sorted(p.name for p in scratch.rglob("*k_*")) == [
        "k_mid.npz", "k_mid.py", "k_new.npz", "k_new.py"
    ]  # fmt: skip
