"""Episode logs (DESIGN.md section 8.2, sim/format/episode_log.py): the bundled logs validate
against their scenarios, and every bad cell is refused at its file:line:col."""

from __future__ import annotations

import re

import pytest

from sim.errors import ScenarioError
from sim.format import episode_log
from sim.format.episode_log import (
    HEADER,
    PASS,
    logged_scenario,
    parse_episode_log,
    read_episode_log,
)
from sim.format.library import resolve_scenario_path
from sim.format.loader import parse_text
from tests.conftest import ROOT, scenario_text

LOGS = sorted((ROOT / "data" / "logs").glob("*.csv"))
ARTICLE_CASES = [
    "camp_taji_2020",
    "kh_december_2019",
    "maximum_pressure_2019",
    "direct_response_2020",
]

TINY = scenario_text(
    """
    horizon: 3
    ladder: [low, high]
    actors: {a: {label: A}, b: {label: B}}
    turn_order: [b, a]
    options:
      a:
        - {id: go, outcomes: [{id: hit, p: 0.5}, {id: miss}]}
        - {id: stay}
      b: [{id: push}, {id: wait}]
    policies: {a: {kind: fixed, option: go}, b: {kind: fixed, option: wait}}
    """
)
GOOD = """\
# scenario: test
# a comment
episode,step,actor,option,branch
1,1,b,push,
1,1,a,go,hit
1,2,b,,
1,2,a,stay,
2,1,b,pass,
2,1,a,"go",miss
"""


@pytest.fixture(scope="module")
def tiny():
    return parse_text(TINY, "tiny.yaml")


def scenario_of(log_path):
    name = logged_scenario(log_path.read_text(encoding="utf-8"))
    assert name, f"{log_path.name} has no '# scenario:' line"
    path = resolve_scenario_path(name)
    return parse_text(path.read_text(encoding="utf-8"), str(path))


def problems(text: str, scenario, file: str = "log.csv") -> list[str]:
    with pytest.raises(ScenarioError) as err:
        parse_episode_log(text, scenario, file)
    return [str(p) for p in err.value.problems]


def only(text: str, scenario) -> str:
    (found,) = problems(text, scenario)
    return found


def col_of(text: str, line: int, needle: str) -> int:
    """The 1-based column of `needle` on a 1-based line of `text`."""
    return text.splitlines()[line - 1].index(needle) + 1


# ------------------------------------------------------------------ the bundled logs


def test_the_article_scenarios_have_logs():
    stems = {p.stem for p in LOGS}
    assert set(ARTICLE_CASES) <= stems


@pytest.mark.parametrize("log_path", LOGS, ids=lambda p: p.stem)
def test_every_bundled_log_validates_against_its_scenario(log_path):
    scenario = scenario_of(log_path)
    assert log_path.stem == scenario.id.replace("-", "_")  # data/logs/<scenario file stem>.csv
    log = read_episode_log(log_path, scenario)
    assert log.scenario == scenario.id
    assert [e.number for e in log.episodes] == [1]  # the history: one episode
    (episode,) = log.episodes
    assert 1 <= episode.steps <= scenario.horizon
    assert episode.moves[0].step == 1 and episode.moves[0].turn == 0
    assert any(m.option is not None for m in episode.moves)


@pytest.mark.parametrize("log_path", LOGS, ids=lambda p: p.stem)
def test_every_bundled_log_says_how_it_was_coded(log_path):
    comments = [line for line in log_path.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(comments)
    assert comments[0].startswith("# scenario: ")
    for heading in ("Clock:", "Mapping", "Judgement steps:"):
        assert heading in text, f"{log_path.name}: no '{heading}' in the header"


@pytest.mark.parametrize("log_path", LOGS, ids=lambda p: p.stem)
def test_a_log_for_another_scenario_is_refused(log_path):
    others = [p for p in LOGS if p != log_path]
    other = scenario_of(others[0])
    with pytest.raises(ScenarioError) as err:
        read_episode_log(log_path, other)
    (found,) = err.value.problems
    name = logged_scenario(log_path.read_text())
    assert (found.file, found.line, found.col) == (str(log_path), 1, len("# scenario: ") + 1)
    assert f"codes scenario '{name}', not '{other.id}'" in found.message


def test_maximum_pressure_ends_at_the_red_line():
    path = ROOT / "data" / "logs" / "maximum_pressure_2019.csv"
    log = read_episode_log(path, scenario_of(path))
    last = log.episodes[0].moves[-1]
    assert (last.step, last.option, last.branch) == (32, "militia_rockets", "american_killed")


# ------------------------------------------------------------------ what a log holds


def test_a_good_log_reads_into_episodes_of_moves(tiny):
    log = parse_episode_log(GOOD, tiny, "good.csv")
    assert log.scenario == "test" and log.actors == ("a", "b")
    assert [e.number for e in log.episodes] == [1, 2]
    first, second = log.episodes
    assert first.steps == 2 and second.steps == 1 and log.moves == 6
    push, go, unseen, stay = first.moves
    # actor: index into the scenario's actors; turn: index into turn_order (b moves first)
    assert (push.actor, push.turn, push.option, push.branch) == (1, 0, "push", None)
    assert (go.actor, go.turn, go.option, go.branch) == (0, 1, "go", "hit")
    assert (unseen.option, unseen.branch, unseen.line) == (None, None, 6)
    assert stay.option == "stay"
    assert second.moves[0].option == PASS and second.moves[1].branch == "miss"


def test_no_scenario_line_and_the_file_stem_form_are_accepted(tiny):
    body = GOOD.split("\n", 2)[2]
    assert parse_episode_log(body, tiny).scenario is None
    assert parse_episode_log("# scenario: test\n" + body, tiny).scenario == "test"
    bundled = parse_text((ROOT / "scenarios" / "camp_taji_2020.yaml").read_text(), "c.yaml")
    text = (ROOT / "data" / "logs" / "camp_taji_2020.csv").read_text()
    assert parse_episode_log(text.replace("camp-taji-2020", "camp_taji_2020", 1), bundled)


def test_crlf_blank_lines_and_a_byte_order_mark(tiny, tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n\r\n").encode())
    assert read_episode_log(path, tiny).moves == 6


def test_an_episode_may_end_before_the_horizon_on_any_actor(tiny):
    text = "episode,step,actor,option,branch\n1,1,b,push,\n"
    assert parse_episode_log(text, tiny).episodes[0].steps == 1


# ------------------------------------------------------------------ bad cells, located


def test_a_misspelt_option_is_located_with_a_suggestion(tiny):
    text = GOOD.replace("1,2,a,stay,", "1,2,a,stya,")
    assert only(text, tiny) == (
        f"log.csv:7:{col_of(text, 7, 'stya')}: 'stya' is not an option of a (did you mean "
        "'stay'?); a may play go, stay, pass, or leave the cell empty (not observed)"
    )


def test_another_actors_option_is_named_as_such(tiny):
    text = GOOD.replace("1,1,b,push,", "1,1,b,go,")
    found = only(text, tiny)
    assert found.startswith("log.csv:4:7: 'go' is not an option of b: 'go' is an option of a")


def test_a_misspelt_branch(tiny):
    text = GOOD.replace("1,1,a,go,hit", "1,1,a,go,hti")
    found = only(text, tiny)
    assert found.startswith("log.csv:5:10: 'hti' is not a branch of a's option 'go'")
    assert "(did you mean 'hit'?)" in found and "its branches are hit, miss" in found


def test_a_branch_needs_an_option_with_branches(tiny):
    assert only(GOOD.replace("1,2,a,stay,", "1,2,a,stay,hit"), tiny).startswith(
        "log.csv:7:12: option 'stay' of a has no outcome branches"
    )
    assert only(GOOD.replace("1,2,b,,", "1,2,b,,hit"), tiny).startswith(
        "log.csv:6:8: branch 'hit' for no option"
    )
    assert only(GOOD.replace("2,1,b,pass,", "2,1,b,pass,hit"), tiny).startswith(
        "log.csv:8:12: branch 'hit' for 'pass'"
    )


def test_an_unknown_actor(tiny):
    text = GOOD.replace("1,1,a,go,hit", "1,1,aa,go,hit")
    assert (
        only(text, tiny)
        == "log.csv:5:5: unknown actor 'aa' (did you mean 'a'?); the turn order is b, a"
    )


def test_rows_out_of_play_order(tiny):
    # a actor where b moves: the actor cell
    found = only(GOOD.replace("1,2,b,,", "1,2,a,,"), tiny)
    assert found.startswith("log.csv:6:5: actor 'a' is out of play order: the next move in play")
    assert "step 2, actor 'b'" in found
    # a missing row: reported once, at the row that follows the gap
    found = only(GOOD.replace("1,2,b,,\n", ""), tiny)
    assert found.startswith("log.csv:6:5: actor 'a' is out of play order")
    # an episode starting at step 2: the step cell
    found = only(GOOD.replace("2,1,b,pass,", "2,2,b,pass,"), tiny)
    assert found.startswith("log.csv:8:3: step 2 is out of play order: the episode's first move is")


def test_a_step_past_the_horizon(tiny):
    text = GOOD + "2,2,b,,\n2,2,a,,\n2,3,b,,\n2,3,a,,\n2,4,b,,\n"
    assert only(text, tiny) == (
        "log.csv:14:3: step 4 is outside 1..3 (the scenario's horizon is 3 steps)"
    )


def test_episodes_are_numbered_in_order(tiny):
    found = only(GOOD.replace("1,1,b,push,", "3,1,b,push,"), tiny)
    assert found.startswith("log.csv:4:1: the first episode is numbered 3")
    found = only(GOOD + "1,1,b,,\n", tiny)
    assert found.startswith("log.csv:10:1: episode 1 follows episode 2")
    found = only(GOOD.replace("1,1,b,push,", "x,1,b,push,"), tiny)
    assert found == "log.csv:4:1: episode 'x' is not a whole number from 1 up"
    found = only(GOOD.replace("1,1,a,go,hit", "1,0,a,go,hit"), tiny)
    assert found == "log.csv:5:3: step '0' is not a whole number from 1 up"


def test_the_header(tiny):
    text = GOOD.replace("episode,step", "epsiode,step")
    assert only(text, tiny) == (
        "log.csv:3:1: header cell 1 is 'epsiode', expected 'episode' (did you mean 'episode'?): "
        f"the header is '{','.join(HEADER)}'"
    )
    text = GOOD.replace("option,branch", "option,branch,extra")
    assert only(text, tiny).startswith("log.csv:3:34: the header has 6 cells")
    assert only("# scenario: test\n", tiny).startswith("log.csv:1:1: no header line")
    assert only("episode,step,actor,option,branch\n", tiny).startswith(
        "log.csv:1:1: the log has no moves"
    )


def test_cells_are_located_through_quotes_and_blanks(tiny):
    text = GOOD.replace("1,1,a,go,hit", '1,"1",  a ,"g,o",hit')
    found = only(text, tiny)
    col = col_of(text, 5, '"g,o"')
    assert found.startswith(f"log.csv:5:{col}: 'g,o' is not an option of a")


def test_wrong_cell_counts_and_bad_csv(tiny):
    text = GOOD.replace("1,1,b,push,", "1,1,b,push,,")
    assert only(text, tiny).startswith("log.csv:4:13: expected 5 cells")
    text = GOOD.replace("1,1,b,push,", "1,1,b,push")
    assert only(text, tiny).startswith("log.csv:4:11: expected 5 cells")
    text = GOOD.replace("1,1,b,push,", '1,1,b,"push')
    assert only(text, tiny).startswith("log.csv:4:1: not a valid CSV line")


def test_comments_only_begin_the_file(tiny):
    found = only(GOOD + "# late\n", tiny)
    assert found.startswith("log.csv:10:1: a comment line after the header")
    found = only("# scenario: test\n# scenario: test\n" + GOOD.split("\n", 1)[1], tiny)
    assert found == "log.csv:2:1: a second '# scenario:' line (one per log)"
    found = only(GOOD.replace("# scenario: test", "# scenario:"), tiny)
    assert found == "log.csv:1:12: '# scenario:' names no scenario"


def test_the_wrong_scenario_is_refused(tiny):
    assert only(GOOD.replace("scenario: test", "scenario: kh-december-2019"), tiny) == (
        "log.csv:1:13: this log codes scenario 'kh-december-2019', not 'test': check it against "
        "the scenario it names"
    )


def test_several_problems_are_reported_together(tiny):
    text = GOOD.replace("1,1,b,push,", "1,1,b,psuh,").replace("1,1,a,go,hit", "1,1,a,go,hti")
    found = problems(text, tiny)
    assert [re.match(r"log.csv:(\d+):(\d+)", f).groups() for f in found] == [
        ("4", "7"),
        ("5", "10"),
    ]


# ------------------------------------------------------------------ limits


def test_a_file_over_10_mib_is_refused_unread(tiny, tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.truncate(episode_log.MAX_LOG_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ScenarioError) as err:
        read_episode_log(path, tiny)
    (found,) = err.value.problems
    assert (found.line, found.col) == (
        1,
        1,
    ) and "at most 10,485,760 bytes (10 MiB)" in found.message


def test_more_than_the_row_limit_is_refused(tiny, monkeypatch):
    monkeypatch.setattr(episode_log, "MAX_LOG_ROWS", 3)
    found = only(GOOD, tiny)
    assert found.startswith(
        "log.csv:7:1: more than 3 moves: an episode log may hold at most 3 rows"
    )


def test_a_missing_file_and_a_folder(tiny, tmp_path):
    with pytest.raises(ScenarioError, match="cannot read the episode log"):
        read_episode_log(tmp_path / "none.csv", tiny)
    with pytest.raises(ScenarioError, match="must be a regular file"):
        read_episode_log(tmp_path, tiny)


def test_a_byte_that_is_not_utf8_is_located(tiny, tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(GOOD.replace("1,2,a,stay,", "1,2,a,st\xffy,").encode("latin-1"))
    with pytest.raises(ScenarioError) as err:
        read_episode_log(path, tiny)
    (found,) = err.value.problems
    assert (found.line, found.col) == (7, 9) and "not UTF-8" in found.message
