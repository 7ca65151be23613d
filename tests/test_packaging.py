"""A real install works: the sdist holds what `make test` needs, and the wheel built from it,
installed into a fresh environment, runs every classroom command from a folder that is not the
repository (bundled scenarios, JSON Schema and bibliography found as package data).

Also: `list` with no scenarios, and `sweep --method sobol` without its optional extra SALib.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
from pathlib import Path

import pytest

from sim.cli.main import main
from tests.conftest import ROOT

SDIST_MUST_HOLD = [
    "Makefile",
    "MANIFEST.in",
    "LICENSE",
    "README.md",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/test_golden_outputs.py",
    "tests/golden/camp_taji_2020.run.json",
    "tests/scenarios/bad/unknown_key.yaml",
    "tests/scenarios/good/policy_kinds.yaml",
    "scenarios/camp_taji_2020.yaml",
    "sim/scenarios/camp_taji_2020.yaml",
    "sim/docs/scenario.schema.json",
    "sim/format/bibliography.yaml",
    "docs/scenario.schema.json",
    "docs/sources.md",
    "docs/python.md",
    "benchmarks/reference.py",
    "benchmarks/README.md",
    "data/README.md",
    "data/events.csv",
    "data/logs/camp_taji_2020.csv",
]
"""A sample of what `make test` (and the docs tests) read from a clone."""

SOURCES = ["pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "Makefile"]
SOURCE_DIRS = ["sim", "tests", "docs", "benchmarks", "data", "reports/examples"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def _source_copy(dest: Path) -> Path:
    """The project's files (not .venv, .git or build products) copied to `dest`, so that
    building writes nothing into the working tree."""
    dest.mkdir()
    for name in SOURCES:
        shutil.copy2(ROOT / name, dest / name)
    for name in SOURCE_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=IGNORE)
    shutil.copy2(ROOT / "reports" / "README.md", dest / "reports" / "README.md")
    os.symlink("sim/scenarios", dest / "scenarios")  # as in a clone
    return dest


def _build(src: Path, out: Path) -> tuple[Path, Path]:
    """`python -m build`: the sdist, then the wheel built from that sdist, as pip would."""
    pytest.importorskip("build", reason="the `build` package (test extras) is not installed")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 and "No matching distribution found" in proc.stdout + proc.stderr:
        pytest.skip("the build backend (setuptools) cannot be fetched here")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return sdist, wheel


def _fresh_env(where: Path) -> Path:
    """A new venv (system site-packages on) that sees this environment's installed dependencies
    through a .pth file, but not the package under test: its `sim` comes from the wheel alone."""
    venv.create(where, system_site_packages=True, with_pip=False, symlinks=os.name != "nt")
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site) / "_escalation_test_deps.pth").write_text("\n".join(ours) + "\n")
    return python


def _pip_install(python: Path, wheel: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(escalation executable, python, sdist, source copy) of a fresh install of the wheel."""
    base = tmp_path_factory.mktemp("packaging")
    src = _source_copy(base / "src")
    sdist, wheel = _build(src, base / "dist")
    python = _fresh_env(base / "venv")
    _pip_install(python, wheel)
    script = python.parent / ("escalation.exe" if os.name == "nt" else "escalation")
    assert script.exists(), "the wheel installs the `escalation` entry point"
    return script, python, sdist, src


def _run(cwd: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCALATION_", "PYTHON"))}
    return subprocess.run(
        argv, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300, env=env
    )


def test_the_sdist_holds_what_make_test_needs(installed):
    _, _, sdist, src = installed
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = [name for name in SDIST_MUST_HOLD if name not in names]
    assert not missing, f"MANIFEST.in leaves out {missing} (sdist {top})"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    tests_here = {str(p.relative_to(src)) for p in (src / "tests").rglob("*") if p.is_file()}
    tests_here = {n for n in tests_here if "__pycache__" not in n}
    assert tests_here <= names, f"tests missing from the sdist: {sorted(tests_here - names)}"


def test_the_installed_package_is_not_the_repository(installed, tmp_path):
    _, python, _, _ = installed
    proc = _run(tmp_path, str(python), "-c", "import sim; print(sim.__file__)")
    assert proc.returncode == 0, proc.stderr
    where = Path(proc.stdout.strip()).resolve()
    assert ROOT.resolve() not in where.parents, where


def test_list_run_report_schema_and_play_work_from_an_install(installed, tmp_path):
    escalation, python, _, _ = installed
    exe = str(escalation)

    listed = _run(tmp_path, exe, "list")
    assert listed.returncode == 0, listed.stderr
    assert "camp_taji_2020.yaml" in listed.stdout and "camp-taji-2020" in listed.stdout
    assert str(ROOT) not in listed.stdout  # the installed package data, not the clone

    ran = _run(tmp_path, exe, "run", "camp_taji_2020", "--runs", "300", "--no-charts")
    assert ran.returncode == 0, ran.stderr
    assert "Camp Taji rocket attack, March 2020" in ran.stdout and "Regional war" in ran.stdout
    assert "300 runs" in ran.stdout

    report = tmp_path / "X.html"
    made = _run(tmp_path, exe, "report", "camp_taji_2020", "--runs", "300", "--out", str(report))
    assert made.returncode == 0, made.stderr
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "Asfandyar Mir and Ramzy Mardini" in page  # the bibliography is package data too

    schema = _run(tmp_path, exe, "schema")
    assert schema.returncode == 0, schema.stderr
    printed = json.loads(schema.stdout)
    assert printed == json.loads((ROOT / "docs" / "scenario.schema.json").read_text())
    shipped = _run(
        tmp_path,
        str(python),
        "-c",
        "from importlib import resources; import sim; "
        "s = resources.files('sim'); "
        "print((s / 'scenarios' / '..' / 'docs' / 'scenario.schema.json').read_text())",
    )
    assert shipped.returncode == 0, shipped.stderr
    assert json.loads(shipped.stdout) == printed  # the bundled scenarios' modeline resolves

    moves = "1\n" * 40  # more than the 26 weeks; the rest, and then end of input, are not read
    played = _run(tmp_path, exe, "play", "camp_taji_2020", "--as", "us", "--seed", "1", stdin=moves)
    assert played.returncode == 0, played.stderr
    assert "Week 1 of 26" in played.stdout and "The crisis is over" in played.stdout
    assert "How your line of play compares" in played.stdout

    early = _run(
        tmp_path, exe, "play", "camp_taji_2020", "--as", "us", "--compare-runs", "0", stdin="1\n2\n"
    )
    assert early.returncode == 0, early.stderr  # end of input after two moves: a clean stop


# --- no scenarios, no SALib ---------------------------------------------------------------------


def test_list_exits_2_when_the_folder_it_names_has_no_scenarios(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ESCALATION_SCENARIOS", str(tmp_path))
    assert main(["list"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"no scenarios found in {tmp_path} (named by ESCALATION_SCENARIOS)" in captured.err


def test_list_exits_2_when_the_package_data_is_missing(tmp_path, monkeypatch, capsys):
    import sim.cli.main as cli

    monkeypatch.delenv("ESCALATION_SCENARIOS", raising=False)
    monkeypatch.setattr(cli, "bundled_scenarios_dir", lambda: tmp_path / "gone")
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "no scenarios found in" in err and "lacks its package data; reinstall it" in err


def test_sobol_without_salib_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    for name in [m for m in sys.modules if m == "SALib" or m.startswith("SALib.")] + ["SALib"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import SALib...` now fails, even cached
    out = tmp_path / "sweep"
    argv = ["sweep", "camp_taji_2020", "--vary", "war_risk=0:1", "--method", "sobol"]
    assert main([*argv, "--samples", "8", "--runs", "100", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--method sobol needs SALib" in err and "escalation-sim[sobol]" in err
    assert not out.exists(), "it stops before any work"


def test_salib_is_an_extra_and_markdown_it_a_dependency():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = [
        d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in project["dependencies"]
    ]
    assert "salib" not in core
    assert "markdown-it-py" in core  # imported by sim/outputs/report_html.py
    extras = project["optional-dependencies"]
    assert any(d.lower().startswith("salib") for d in extras["sobol"])
    assert any(d.lower().startswith("salib") for d in extras["test"])
    assert project["classifiers"] and project["keywords"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_demo_ends_by_saying_how_to_put_escalation_on_path():
    outer = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")  # under `make test`, make would print dirs
    clean = {k: v for k, v in os.environ.items() if k not in outer}
    recipe = subprocess.run(
        ["make", "-n", "-B", "--no-print-directory", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=clean,
    )
    last = recipe.stdout.strip().splitlines()[-1]
    assert last.startswith("echo ") and ". .venv/bin/activate" in last
    assert ".venv/bin/escalation" in last
    for doc in ("README.md", "docs/teaching.md"):
        assert ". .venv/bin/activate" in (ROOT / doc).read_text(), doc
