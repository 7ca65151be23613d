"""The sweep journal is checksummed: any damage is refused with how to restart (exit status 2),
never silently restarted from zero nor accepted; `--restart` discards a journal explicitly."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from sim.analysis.sweep import JOURNAL, Journal
from sim.analysis.sweep_journal import header_checksum, row_checksum
from sim.cli.main import main
from tests.conftest import ROOT

ONE_KNOB = ROOT / "tests" / "scenarios" / "sweep" / "one_knob.yaml"
ARGS = ["--vary", "hawkishness=0:1:5", "--runs", "200", "--seed", "3", "--no-charts"]


def sweep(out, *extra: str) -> int:
    return main(
        ["sweep", str(ONE_KNOB), *ARGS, "--out", str(out), "--workers", "1", "--quiet", *extra]
    )


@pytest.fixture
def finished(tmp_path, capsys):
    """A finished sweep's folder, and its points.csv."""
    out = tmp_path / "s"
    assert sweep(out) == 0
    capsys.readouterr()
    return out, (out / "points.csv").read_bytes()


def edit(out, *statements: str, params=()) -> None:
    db = sqlite3.connect(out / JOURNAL)
    with db:
        for sql in statements:
            db.execute(sql, params)
    db.close()


def refused(out, capsys, *extra: str) -> str:
    assert sweep(out, *extra) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def unfinish(out) -> None:
    """Drop the last two points as an interrupted sweep would have them: rows and tally agree."""
    edit(out, "DELETE FROM points WHERE idx >= 3", "UPDATE tally SET recorded = 3")


def test_an_unfinished_sweep_says_resume_or_restart(finished, capsys):
    out, whole = finished
    unfinish(out)
    err = refused(out, capsys)
    assert "unfinished sweep (3 of 5 points done)" in err
    assert "--resume" in err and "--restart" in err
    assert sweep(out, "--resume") == 0
    assert "computed 2 points" in capsys.readouterr().out
    assert (out / "points.csv").read_bytes() == whole


def test_a_hand_edited_number_is_refused_and_restart_recovers(finished, capsys):
    out, whole = finished
    db = sqlite3.connect(out / JOURNAL)
    (row,) = db.execute("SELECT row FROM points WHERE idx = 2").fetchone()
    db.close()
    values = json.loads(row)
    values[0] += 0.125
    edit(out, "UPDATE points SET row = ? WHERE idx = 2", params=(json.dumps(values),))
    for extra in ((), ("--resume",)):
        err = refused(out, capsys, *extra)
        assert "is damaged: the row of point 2 does not match its checksum" in err
        assert "--restart" in err
    assert sweep(out, "--restart") == 0
    assert "discarded the journal" in capsys.readouterr().err
    assert (out / "points.csv").read_bytes() == whole


def test_a_deleted_header_is_refused_not_restarted_from_zero(finished, capsys):
    out, _ = finished
    unfinish(out)
    edit(out, "DELETE FROM header")
    err = refused(out, capsys, "--resume")
    assert "its header is missing" in err and "--restart" in err
    assert (out / JOURNAL).exists()  # kept, for the user to decide


def test_a_dropped_header_table_is_refused(finished, capsys):
    out, _ = finished
    edit(out, "DROP TABLE header")
    assert "is damaged" in refused(out, capsys, "--resume")


def test_a_truncated_journal_is_refused(finished, capsys):
    out, _ = finished
    unfinish(out)
    path = out / JOURNAL
    data = path.read_bytes()
    for size in (len(data) // 2, 100, 0):
        path.write_bytes(data[:size])
        err = refused(out, capsys, "--resume")
        assert "is damaged" in err and "--restart" in err


def test_garbage_instead_of_a_journal_is_refused(finished, capsys):
    out, _ = finished
    (out / JOURNAL).write_bytes(b"not a database at all\n" * 100)
    assert "is damaged" in refused(out, capsys)


def test_missing_rows_are_found_by_the_tally(finished, capsys):
    out, _ = finished
    edit(out, "DELETE FROM points WHERE idx = 1")  # the tally still says 5
    err = refused(out, capsys, "--resume")
    assert "holds 4 rows but 5 recorded" in err


def test_a_short_or_bad_row_with_a_matching_checksum_is_refused(finished, capsys):
    out, _ = finished
    journal = Journal(out / JOURNAL)
    key = journal.header()["header_sha256"]
    journal.close()
    for text, message in (
        ("[0.5, 0.1]", "does not hold"),
        ('[0.5, "x", 1, 2, 3, 4, 5, 6, 7, 8, 9]', "does not hold"),
        ("[NaN]", "does not hold"),
        ("{not json", "is not readable"),
    ):
        edit(
            out,
            "UPDATE points SET row = ?, sum = ? WHERE idx = 0",
            params=(text, row_checksum(key, 0, text)),
        )
        assert message in refused(out, capsys, "--resume")


def test_a_header_that_is_not_a_whole_number_is_refused(finished, capsys):
    out, _ = finished
    edit(out, "UPDATE header SET value = 'five' WHERE key = 'points'")
    assert "its header does not match its checksum" in refused(out, capsys, "--resume")
    journal = Journal(out / JOURNAL)
    header = journal.header()
    journal.close()
    edit(
        out,
        "UPDATE header SET value = ? WHERE key = 'header_sha256'",
        params=(header_checksum(header),),
    )  # the checksum made to match: the number itself is refused
    assert "points is not a whole number" in refused(out, capsys, "--resume")


def test_a_journal_without_checksums_is_refused_with_restart(tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    db = sqlite3.connect(out / JOURNAL)
    with db:
        db.execute("CREATE TABLE header (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("CREATE TABLE points (idx INTEGER PRIMARY KEY, row TEXT)")
        db.executemany("INSERT INTO header VALUES (?, ?)", [("points", "5"), ("seed", "3")])
    db.close()
    err = refused(out, capsys, "--resume")
    assert "is damaged" in err and "--restart" in err
    assert sweep(out, "--restart") == 0


def test_resume_and_restart_together_are_refused(finished, capsys):
    out, _ = finished
    assert "contradict" in refused(out, capsys, "--resume", "--restart")


def test_restart_without_a_journal_just_runs(tmp_path, capsys):
    assert sweep(tmp_path / "fresh", "--restart") == 0
    assert "discarded" not in capsys.readouterr().err


# --- where the journal is stored fails: a full disk is an output error, exit 2 ------------------


@pytest.mark.parametrize(
    "pragma,number,reason",
    [
        ("max_page_count = {pages}", errno.ENOSPC, os.strerror(errno.ENOSPC)),  # SQLITE_FULL
        ("query_only = 1", errno.EACCES, "attempt to write a readonly database"),  # READONLY
    ],
    ids=["full", "read-only"],
)
def test_a_journal_that_cannot_be_written_is_an_oserror_that_names_it(
    tmp_path, pragma, number, reason
):
    """SQLite's "database or disk is full" or "attempt to write a readonly database" was an
    OperationalError the command did not expect: status 1. It is the OSError it stands for,
    which the command reports as an output it cannot write (status 2)."""
    path = tmp_path / JOURNAL
    journal = Journal(path)
    journal.write_header({"points": "400", "columns": "50"})
    (pages,) = journal.db.execute("PRAGMA page_count").fetchone()
    journal.db.execute("PRAGMA " + pragma.format(pages=pages))
    with pytest.raises(OSError) as err:
        journal.record([(i, [0.25] * 50) for i in range(400)])
    journal.close()
    assert err.value.errno == number and err.value.filename == str(path)
    assert err.value.strerror == reason


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="no file size limits here")
def test_a_sweep_on_a_full_disk_exits_2_and_leaves_no_half_made_journal(tmp_path):
    """Files are limited to 4 KiB (RLIMIT_FSIZE): SQLite cannot grow the new journal, as on a
    full disk. The sweep ended in an internal error (status 1) and left .sweep-journal.sqlite.new
    behind; now one line, status 2, and nothing left (the folder probe is an empty file)."""
    import resource

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    out = tmp_path / "s"
    argv = ["sweep", str(ONE_KNOB), *ARGS, "--out", str(out), "--workers", "1", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-m", "sim", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=small_files,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"escalation sweep: error: cannot write the sweep to {out}: ")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""
    assert [p.name for p in out.iterdir()] == []
