"""`escalation validate`: files, folders and stdin, as text, JSON and GitHub annotations."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim.cli.main import main
from tests.conftest import CAMP_TAJI, ROOT

BAD = ROOT / "tests" / "scenarios" / "bad"
UNDEFINED = BAD / "undefined_name.yaml"


def test_text_names_each_file_and_exits_2_if_any_is_bad(capsys):
    status = main(["validate", str(CAMP_TAJI), str(UNDEFINED)])
    lines = capsys.readouterr().out.splitlines()
    assert status == 2
    assert lines[0] == f"{CAMP_TAJI}: ok"
    assert lines[1].startswith(f"{UNDEFINED}:17:31: undefined name 'credibilty'")


def test_json_is_one_strict_document_with_located_problems(capsys):
    status = main(["validate", "--format", "json", str(CAMP_TAJI), str(UNDEFINED)])
    doc = json.loads(capsys.readouterr().out)
    assert status == 2
    assert (doc["valid"], doc["invalid"]) == (1, 1)
    good, bad = doc["files"]
    assert good == {"file": str(CAMP_TAJI), "valid": True, "problems": []}
    assert bad["valid"] is False
    assert bad["problems"][0] | {"message": None} == {
        "file": str(UNDEFINED),
        "line": 17,
        "col": 31,
        "message": None,
    }


def test_github_annotations_escape_commas_colons_and_newlines():
    from sim.cli.validate import _annotation
    from sim.errors import Problem

    line = _annotation(Problem("a,b:c.yaml", 3, 4, "50% bad\nsecond line"))
    assert line == "::error file=a%2Cb%3Ac.yaml,line=3,col=4::50%25 bad%0Asecond line"
    assert _annotation(Problem("x.yaml", 0, 0, "m")) == "::error file=x.yaml::m"


def test_github_format_marks_every_problem_and_counts(capsys):
    status = main(["validate", "--format", "github", str(UNDEFINED), str(CAMP_TAJI)])
    lines = capsys.readouterr().out.splitlines()
    assert status == 2
    assert lines[0].startswith(f"::error file={UNDEFINED},line=17,col=31::undefined name")
    assert lines[-1] == "1 of 2 scenario files valid"


def test_a_folder_is_every_scenario_file_in_it_recursively(tmp_path, capsys):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "b.yml").write_text(UNDEFINED.read_text())
    (tmp_path / "a.yaml").write_text(CAMP_TAJI.read_text())
    (tmp_path / "notes.txt").write_text("not a scenario")
    status = main(["validate", "--format", "json", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert status == 2
    assert [f["file"] for f in doc["files"]] == [
        str(tmp_path / "a.yaml"),
        str(tmp_path / "deep" / "er" / "b.yml"),
    ]


def test_the_bundled_library_folder_is_all_valid(capsys):
    assert main(["validate", str(ROOT / "sim" / "scenarios")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 10 and all(line.endswith(": ok") for line in lines)


def test_an_empty_folder_is_an_error_not_a_silent_success(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 2
    assert capsys.readouterr().out.strip() == f"{tmp_path}: no .yaml or .yml files in this folder"


@pytest.mark.parametrize(
    ("text", "status", "expected"),
    [
        (CAMP_TAJI.read_bytes(), 0, "<stdin>: ok"),
        (b"id: x\n", 2, "<stdin>:1:1: missing required key 'schema'"),
        (b"id: \xff\n", 2, "<stdin>:1:5: the file is not UTF-8 text (byte 0xff cannot be decoded)"),
    ],
)
def test_dash_reads_standard_input(text, status, expected):
    done = subprocess.run(
        [sys.executable, "-m", "sim", "validate", "-"],
        input=text,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == status, done.stderr
    assert done.stdout.decode().splitlines()[0].startswith(expected)
    assert b"Traceback" not in done.stderr


def test_standard_input_is_read_only_up_to_the_size_limit():
    from sim.format.loader import MAX_FILE_BYTES

    done = subprocess.run(
        [sys.executable, "-m", "sim", "validate", "-"],
        input=b"#" * (MAX_FILE_BYTES + 10),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "more than the limit" in done.stdout.decode()
