"""The on-disk cache of scenario parses (sim/format/cache.py): a hit is the same as a miss."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from sim.cli.main import main
from sim.engine.runner import run_monte_carlo
from sim.errors import ScenarioError, SimulationError
from sim.format import bibliography, cache, loader
from sim.format.digest import canonical_json, scenario_sha256
from sim.model.compiler import compile_model
from sim.model.loading import load_text
from tests.conftest import BRANCH_LEAVES_RANGE, CAMP_TAJI, SCENARIOS


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A cache folder of this test alone."""
    where = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV, str(where))
    bibliography._name_set.cache_clear()
    yield where
    bibliography._name_set.cache_clear()


def entries(folder: Path, kind: str = "scenario-yaml") -> list[Path]:
    return sorted((folder / kind).glob("*.json"))


def fields_set(model) -> object:
    """Which fields were given, all the way down (what `model_dump(exclude_unset=True)` sees)."""
    return model.model_dump(exclude_unset=True, by_alias=True)


def test_the_tests_never_write_in_the_users_cache_folder():
    assert os.environ[cache.ENV].startswith(tempfile.gettempdir())


def test_a_hit_gives_the_same_scenario_and_source_map(folder, monkeypatch):
    text = CAMP_TAJI.read_text(encoding="utf-8")
    first = loader.parse_text(text, str(CAMP_TAJI))
    assert len(entries(folder)) == 1
    monkeypatch.setattr(loader, "read_yaml", lambda *a: pytest.fail("parsed again"))
    again = loader.parse_text(text, str(CAMP_TAJI))
    assert again == first
    assert canonical_json(again) == canonical_json(first)
    assert fields_set(again) == fields_set(first)
    assert again._source == first._source  # file, lines, every position, the loaded content
    assert again._source.values and again._source.keys
    assert scenario_sha256(again) == scenario_sha256(first)


def test_the_file_name_comes_from_the_load_not_the_cache(folder, monkeypatch):
    """The same text under another name (a copy of the file) is a hit, named as loaded."""
    model = compile_model(load_text(BRANCH_LEAVES_RANGE, "a.yaml"))
    monkeypatch.setattr(loader, "read_yaml", lambda *a: pytest.fail("parsed again"))
    copy = compile_model(load_text(BRANCH_LEAVES_RANGE, "b.yaml"))
    messages = []
    for m in (model, copy):
        with pytest.raises(SimulationError) as err:
            run_monte_carlo(m, 300, seed=1)
        messages.append(str(err.value))
    assert messages[0].startswith("a.yaml:") and messages[1].startswith("b.yaml:")
    assert messages[0].removeprefix("a.yaml") == messages[1].removeprefix("b.yaml")


def test_every_bundled_scenario_runs_alike_from_the_cache(folder, capsys, monkeypatch):
    """`run --json` of every bundled scenario: the same bytes with the cache off, on a miss
    (the entry written) and on a hit."""
    for path in sorted(SCENARIOS.glob("*.yaml")):
        argv = ["run", str(path), "--runs", "200", "--seed", "3", "--json", "--quiet"]
        printed = []
        for setting in ("off", str(folder), str(folder)):
            monkeypatch.setenv(cache.ENV, setting)
            assert main(argv) == 0, path.name
            printed.append(capsys.readouterr().out)
        assert printed[0] == printed[1] == printed[2], path.name
    assert len(entries(folder)) == len(list(SCENARIOS.glob("*.yaml")))


def test_errors_on_a_hit_keep_their_file_line_col(folder, monkeypatch):
    """A run-time error in an expression is placed by the source map: from the cache, at the
    same file:line:col as from the parse."""
    messages = []
    for _ in range(2):
        model = compile_model(load_text(BRANCH_LEAVES_RANGE, "inline.yaml"))
        with pytest.raises(SimulationError) as err:
            run_monte_carlo(model, 300, seed=1)
        messages.append(str(err.value))
        monkeypatch.setattr(loader, "read_yaml", lambda *a: pytest.fail("parsed again"))
    assert messages[0] == messages[1]
    assert messages[0].startswith("inline.yaml:") and "branch 'up'" in messages[0]
    line, col = messages[0].split(":")[1:3]
    assert int(line) > 1 and int(col) > 1


def test_a_problem_found_on_a_hit_is_located_as_on_a_miss(folder, monkeypatch):
    """A check that fails only on the second load (here the bibliography loses a name) reports
    the position the parse would give."""
    text = CAMP_TAJI.read_text(encoding="utf-8")
    loader.parse_text(text, "camp.yaml")
    monkeypatch.setattr(bibliography, "is_name", lambda source: False)
    with pytest.raises(ScenarioError) as hit:
        loader.parse_text(text, "camp.yaml")
    monkeypatch.setenv(cache.ENV, "off")
    with pytest.raises(ScenarioError) as miss:
        loader.parse_text(text, "camp.yaml")
    assert str(hit.value) == str(miss.value)
    assert str(hit.value).startswith("camp.yaml:") and "unknown source" in str(hit.value)


def test_an_edited_scenario_is_parsed_again(folder):
    text = CAMP_TAJI.read_text(encoding="utf-8")
    first = loader.parse_text(text, "camp.yaml")
    edited = text.replace(first.title, first.title + " (edited)", 1)
    assert edited != text
    again = loader.parse_text(edited, "camp.yaml")
    assert again.title == first.title + " (edited)"
    assert len(entries(folder)) == 2
    assert again._source.lines == edited.splitlines()


@pytest.mark.parametrize(
    "damage",
    [
        b"",  # empty (a writer that died)
        b"\x00\xff not json",
        b'{"format": 1, "key": "0000", "value": {}}',  # another key
        b"[1, 2, 3]",  # not an entry
        b"[" * 100_000,  # nested too deep for the JSON reader
    ],
)
def test_a_corrupted_or_foreign_entry_is_ignored_and_written_again(folder, damage):
    text = CAMP_TAJI.read_text(encoding="utf-8")
    first = loader.parse_text(text, "camp.yaml")
    (path,) = entries(folder)
    path.write_bytes(damage)
    again = loader.parse_text(text, "camp.yaml")
    assert again == first and again._source == first._source
    assert json.loads(path.read_bytes())["key"] == path.stem  # rewritten, whole


@pytest.mark.parametrize(
    "change",
    [
        lambda v: v.update(values=[[["x"], "one", 2]]),  # a position that is not numbers
        lambda v: v.update(values=[]),  # the document itself unplaced
        lambda v: v.update(keys={"a": 1}),
        lambda v: v.update(data=[1, 2]),  # not a mapping
        lambda v: v.pop("data"),
    ],
)
def test_an_entry_of_the_wrong_shape_is_ignored(folder, change):
    text = CAMP_TAJI.read_text(encoding="utf-8")
    first = loader.parse_text(text, "camp.yaml")
    (path,) = entries(folder)
    entry = json.loads(path.read_bytes())
    change(entry["value"])
    path.write_text(json.dumps(entry), encoding="utf-8")
    assert cache.cached_yaml(text, "camp.yaml") is None
    again = loader.parse_text(text, "camp.yaml")
    assert again == first and again._source == first._source


@pytest.mark.parametrize("setting", ["off", "OFF", "0", "none", "false", "disabled"])
def test_the_cache_is_off_under_escalation_cache_dir_off(tmp_path, monkeypatch, setting):
    monkeypatch.setenv(cache.ENV, setting)
    assert cache.cache_dir() is None
    calls = []
    read = loader.read_yaml
    monkeypatch.setattr(loader, "read_yaml", lambda *a: calls.append(1) or read(*a))
    monkeypatch.chdir(tmp_path)  # a relative folder named like the setting would appear here
    text = CAMP_TAJI.read_text(encoding="utf-8")
    loader.parse_text(text, "camp.yaml")
    loader.parse_text(text, "camp.yaml")
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_the_default_folder_is_the_users_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.setattr(cache.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "escalation-sim"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as XDG says
    assert cache.cache_dir() == Path.home() / ".cache" / "escalation-sim"


def test_a_folder_that_cannot_be_written_means_no_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.ENV, str(blocker))
    text = CAMP_TAJI.read_text(encoding="utf-8")
    assert loader.parse_text(text, "camp.yaml") == loader.parse_text(text, "camp.yaml")
    assert blocker.read_text() == "not a folder"


def test_the_limits_are_part_of_the_key(folder, monkeypatch):
    """A text kept under one limit is parsed (and refused) again under a tighter one."""
    text = CAMP_TAJI.read_text(encoding="utf-8")
    loader.parse_text(text, "camp.yaml")
    monkeypatch.setattr(loader, "MAX_NODES", 50)
    with pytest.raises(ScenarioError, match="more than 50 values"):
        loader.parse_text(text, "camp.yaml")


def test_changed_code_reads_no_entry_of_the_old_code(folder, monkeypatch):
    text = CAMP_TAJI.read_text(encoding="utf-8")
    loader.parse_text(text, "camp.yaml")
    assert cache.cached_yaml(text, "camp.yaml") is not None
    monkeypatch.setattr(cache, "source_digest", lambda *modules: "other code")
    assert cache.cached_yaml(text, "camp.yaml") is None


def test_only_a_text_that_makes_a_scenario_is_kept(folder):
    with pytest.raises(ScenarioError):
        loader.parse_text("schema: 1\nid: x\n", "broken.yaml")
    assert entries(folder) == []


def test_the_oldest_entries_are_removed_beyond_the_limit(folder, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 4)
    for i in range(10):
        cache.store("scenario-yaml", f"{i:064x}", {"i": i})
        os.utime(folder / "scenario-yaml" / f"{i:064x}.json", (1000 + i, 1000 + i))
    kept = entries(folder)
    assert 0 < len(kept) <= 4
    assert f"{9:064x}.json" in {p.name for p in kept}  # the newest stays
    assert [p.name for p in (folder / "scenario-yaml").iterdir() if p.name.startswith(".")] == []


def test_the_bibliography_names_come_from_the_cache_and_agree_with_lookup(folder, monkeypatch):
    names = set(bibliography.names())
    assert bibliography._name_set() == names
    assert len(entries(folder, "bibliography-names")) == 1
    bibliography._name_set.cache_clear()
    monkeypatch.setattr(bibliography, "names", lambda: pytest.fail("parsed again"))
    assert bibliography._name_set() == names
    for name in [*names, " " + sorted(names)[0] + " ", "no-such-key", "Smith 2020, a book"]:
        assert bibliography.is_name(name) == (bibliography.lookup(name) is not None), name


def test_a_corrupted_bibliography_entry_is_ignored(folder):
    names = bibliography._name_set()
    (path,) = entries(folder, "bibliography-names")
    entry = json.loads(path.read_bytes())
    entry["value"] = [1, 2]
    path.write_text(json.dumps(entry), encoding="utf-8")
    bibliography._name_set.cache_clear()
    assert bibliography._name_set() == names


def test_the_cache_folder_is_private(folder):
    loader.parse_text(CAMP_TAJI.read_text(encoding="utf-8"), "camp.yaml")
    for made in (folder, folder / "scenario-yaml"):
        assert made.stat().st_mode & 0o777 == 0o700, made
