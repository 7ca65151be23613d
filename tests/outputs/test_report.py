"""`escalation report`: one self-contained HTML page that parses, embeds every chart, escapes the
scenario's text, is written atomically, and renders in a real browser without console errors."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sim.cli.main import main
from sim.model.loading import load_scenario, load_text
from sim.outputs.charts import RUN_CHARTS
from sim.outputs.report import compare_section, make_report, markdown_html, write_atomic
from sim.solvers.prepare import prepare_model
from tests.conftest import CAMP_TAJI, SCENARIOS

CHROMIUM = Path("/usr/bin/chromium")
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class Page(HTMLParser):
    """A strict-enough parse: every element closed in order; images, links, ids and text kept."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[dict[str, str]] = []
        self.urls: list[str] = []
        self.ids: list[str] = []
        self.metas: list[dict[str, str]] = []
        self.chunks: list[str] = []
        self.tags: list[str] = []
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed elements: {self.stack}"

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag == "img":
            self.images.append(a)
        if tag == "meta":
            self.metas.append(a)
        if "id" in a:
            self.ids.append(a["id"])
        for key in ("src", "href", "action", "data", "poster", "srcset"):
            if key in a and not (tag == "a" and key == "href"):  # resources, not links
                self.urls.append(a[key])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


@pytest.fixture(scope="module")
def camp_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "camp.html"
    assert main(["report", str(CAMP_TAJI), "--runs", "3000", "--seed", "4", "--out", str(out)]) == 0
    return out


def test_the_page_parses_and_embeds_every_chart(camp_report):
    text = camp_report.read_text(encoding="utf-8")
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>")
    alts = [img["alt"] for img in page.images]
    for name in RUN_CHARTS:
        assert name in alts, f"{name} is missing"
    for img in page.images:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
        assert int(img["width"]) > 0 and int(img["height"]) > 0


def test_the_page_holds_the_whole_scenario(camp_report):
    page = Page(camp_report.read_text(encoding="utf-8"))
    scenario = load_scenario(CAMP_TAJI)
    text = page.text
    assert scenario.title in text and scenario.summary.split()[0] in text
    for oid in scenario.outcome_ids:
        assert scenario.outcome_label(oid) in text and oid in text
    for source in scenario.sources:
        assert source in text
    for name, parameter in scenario.parameters.items():
        assert name in text and " ".join(parameter.doc.split()) in text
    for rung in scenario.ladder:
        assert rung in text
    for actor, options in scenario.options.items():
        assert scenario.actors[actor].label in text
        for option in options:
            assert (option.label or option.id) in text
    assert "Teaching notes" in text and "What to try" in text
    assert f"escalation report {CAMP_TAJI} --runs 3000 --seed 4" in text
    assert "3,000 runs" in text and "seed 4" in text
    for anchor in (
        "sources",
        "notes",
        "outcomes",
        "charts",
        "ladder",
        "actors",
        "parameters",
        "state",
        "reproduce",
    ):
        assert anchor in page.ids


def test_the_page_needs_no_network(camp_report):
    page = Page(camp_report.read_text(encoding="utf-8"))
    for url in page.urls:
        assert url.startswith(("data:", "#")), url
    assert "script" not in page.tags
    csp = [m["content"] for m in page.metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]


def test_the_page_has_a_print_stylesheet(camp_report):
    text = camp_report.read_text(encoding="utf-8")
    assert "@media print" in text and "break-inside: avoid" in text
    assert camp_report.stat().st_size < 1_500_000


def test_the_comparison_section_appears_for_actors_with_alternatives(camp_report):
    page = Page(camp_report.read_text(encoding="utf-8"))
    scenario = load_scenario(CAMP_TAJI)
    assert scenario.alternatives, "camp_taji_2020 has alternative doctrines"
    assert "compare" in page.ids and "Doctrines compared" in page.text
    for name in scenario.alternatives["us"]:
        assert name in page.text
    assert sum(1 for img in page.images if img["alt"].startswith("compare_")) >= 2


def test_the_comparison_hook_returns_none_without_sim_compare(monkeypatch):
    model = prepare_model(load_scenario(CAMP_TAJI))
    monkeypatch.setitem(sys.modules, "sim.analysis.compare", None)  # import fails
    assert compare_section(model.scenario, model, 100, 1) is None


def test_the_comparison_hook_returns_none_without_alternatives():
    model = small_model()
    assert compare_section(model.scenario, model, 100, 1) is None


SMALL = """schema: 1
id: small-test
title: "<script>alert('title')</script> & co"
summary: "Summary with <b>tags</b> & ampersands"
sources: ["<img src=x onerror=alert(1)>"]
teaching_notes: |
  # A heading

  Some **bold**, some `code <b>` and a [link](javascript:alert(1)).

  - first item
  - second item, <script>alert('notes')</script>

  ![remote picture](https://example.com/tracker.png)
horizon: 3
ladder: ["calm <low>", high]
parameters:
  k: {value: 0.5, min: 0, max: 1, doc: "The <k> knob"}
actors:
  us: {label: "U<S>"}
turn_order: [us]
options:
  us:
    - {id: go, label: "Go <now>", rung: 1, payoffs: {us: "k"}}
    - {id: stay, label: Stay}
policies:
  us: {kind: sequence, options: [stay, go]}
outcomes:
  up: {when: rung >= 1, label: "Up & away"}
"""


def small_model():
    return prepare_model(load_text(SMALL, "inline.yaml"))


def test_scenario_text_is_escaped_and_notes_rendered_safely(tmp_path):
    model = small_model()
    text = make_report(model, 500, 1, "inline.yaml")
    page = Page(text)
    assert "<script" not in text and 'href="javascript' not in text
    assert "<img" not in text.split('id="notes"')[1].split("</section>")[0]  # no remote images
    assert "onerror=alert" not in text.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt; &amp; co" in text
    assert "Up & away" in page.text and "calm <low>" in page.text and "The <k> knob" in page.text
    assert "<strong>bold</strong>" in text and "<code>code &lt;b&gt;</code>" in text
    assert "<li>first item</li>" in text and "<h3>A heading</h3>" in text
    assert all(url.startswith(("data:", "#")) for url in page.urls)


def test_markdown_keeps_to_paragraphs_lists_bold_and_code():
    html = markdown_html("Para **b** `c`\n\n1. one\n2. two\n\n<div>raw</div>")
    assert "<p>Para <strong>b</strong> <code>c</code></p>" in html
    assert "<ol>" in html and "<li>one</li>" in html
    assert "<div>" not in html and "&lt;div&gt;raw&lt;/div&gt;" in html


def test_default_path_and_atomic_write(tmp_path, monkeypatch, capsys):
    (tmp_path / "small.yaml").write_text(SMALL)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "small.yaml", "--runs", "500", "--set", "k=0.7"]) == 0
    # under --set the report goes to a folder named after the overrides, never over the default
    path = tmp_path / "reports" / "small-test" / "set-k=0.7" / "report.html"
    assert path.exists()
    want = Path("reports/small-test/set-k=0.7/report.html")
    assert f"Report written to {want}" in capsys.readouterr().out
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary files left
    text = path.read_text(encoding="utf-8")
    assert "escalation report small.yaml --runs 500 --seed 1 --set k=0.7" in text
    assert "(default 0.5)" in text


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = write_atomic(tmp_path / "r.html", "old")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(CAMP_TAJI), "--set", "nonsense=1", "--out", str(out)]) == 2
    assert main(["report", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 2
    assert main(["report", str(CAMP_TAJI), "--out", str(tmp_path)]) == 2
    assert not out.exists() and "Traceback" not in capsys.readouterr().err


def test_same_inputs_give_the_same_bytes():
    model = small_model()
    assert make_report(model, 300, 2, "x.yaml") == make_report(model, 300, 2, "x.yaml")


def test_the_run_charts_drawn_beside_the_comparison_make_the_same_page(monkeypatch, forks):
    """Where it can fork, a copy draws the run charts while the doctrines are compared: the
    page of one process, byte for byte; without the fork (another thread) the same page."""
    import sim.outputs.charts as charts

    model = prepare_model(load_scenario(SCENARIOS / "chicken.yaml"))
    assert any(model.scenario.alternatives.values())
    monkeypatch.setattr(charts, "can_fork", lambda: True)
    with charts.using_chart_options(charts.ChartOptions(dpi=30)):
        forked = make_report(model, 500, 3, "chicken.yaml")
        assert len(forks) == 1  # the copy that drew the run charts
        monkeypatch.setattr(charts, "can_fork", lambda: False)
        alone = make_report(model, 500, 3, "chicken.yaml")
    assert forked == alone


TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_scenario_has_a_report(path, tmp_path, monkeypatch):
    """Every page section for every bundled scenario; the charts are stubbed here to keep the
    suite fast (real charts: the camp_taji report above, `run` in test_cli.py)."""
    drawn = []

    def charts(draw, *args):
        drawn.append(draw.__name__)
        return {
            name: TINY_PNG
            for name in (
                RUN_CHARTS if draw.__name__ == "write_run_charts" else ["compare_outcomes.png"]
            )
        }

    monkeypatch.setattr("sim.outputs.report.render_charts", charts)
    monkeypatch.setattr("sim.outputs.charts.can_fork", lambda: False)  # every draw seen here
    out = tmp_path / "r.html"
    assert main(["report", str(path), "--runs", "300", "--out", str(out)]) == 0
    page = Page(out.read_text(encoding="utf-8"))
    scenario = load_scenario(path)
    assert len(page.images) == len(RUN_CHARTS) + len(scenario.alternatives)
    assert drawn[0] == "write_run_charts"
    for oid in scenario.outcome_ids:
        assert scenario.outcome_label(oid) in page.text


# --- a real browser ----------------------------------------------------------------------------


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fds 3 and 4)."""

    def __init__(self, profile: Path):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def fds() -> None:  # in the child: the pipe ends become fds 3 (commands) and 4 (replies)
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        args = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            pass_fds=(3, 4),
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        return self.next_id

    def receive(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0, "the browser did not answer in time"
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if ready:
                chunk = os.read(self.from_browser, 1 << 20)
                assert chunk, "the browser closed the pipe"
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict:
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(deadline)
            if message.get("id") == wanted:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        for message in self.events:
            if message.get("method") == event:
                return message
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(deadline)
            self.events.append(message)
            if message.get("method") == event:
                return message

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self.to_browser)
            os.close(self.from_browser)


IMAGES = """(async () => {
  const images = Array.from(document.images);
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  return images.map(i => ({alt: i.alt, complete: i.complete, natural: i.naturalWidth,
                           naturalHeight: i.naturalHeight,
                           width: i.getBoundingClientRect().width,
                           height: i.getBoundingClientRect().height}));
})()"""


def _console_errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params["exceptionDetails"])[:300])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            errors.append(json.dumps(params["args"])[:300])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")
        elif method == "Network.loadingFailed":
            errors.append(f"loading failed: {params.get('errorText')}")
    return errors


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is absent (Debian package "
    "'chromium'; .ci/run installs it so CI always runs this test)",
)
def test_the_page_renders_in_headless_chromium_without_console_errors(camp_report, tmp_path):
    page = tmp_path / "page.html"
    shutil.copy(camp_report, page)
    browser = DevTools(tmp_path / "profile")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": page.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")

        def evaluate(expression: str):
            result = browser.call(
                "Runtime.evaluate",
                {"expression": expression, "awaitPromise": True, "returnByValue": True},
                session=session,
            )
            assert "exceptionDetails" not in result, result
            return result["result"]["value"]

        images = evaluate(IMAGES)
        assert evaluate("document.title").startswith("Camp Taji rocket attack")
        browser.call("Emulation.setEmulatedMedia", {"media": "print"}, session=session)
        printed = evaluate(IMAGES)
        toc = evaluate("getComputedStyle(document.querySelector('nav.toc')).display")
        pdf = base64.b64decode(
            browser.call("Page.printToPDF", {}, session=session, timeout=60)["data"]
        )
        time.sleep(0.2)  # let late console messages arrive
        browser.call("Runtime.evaluate", {"expression": "1"}, session=session)
        requests = [
            e["params"]["request"]["url"]
            for e in browser.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        errors = _console_errors(browser.events)
    finally:
        browser.close()
    assert not errors, errors
    assert len(images) >= len(RUN_CHARTS)
    for shown in (images, printed):
        for img in shown:
            assert img["complete"] and img["natural"] > 0 and img["naturalHeight"] > 0, img
            assert img["width"] > 0 and img["height"] > 0, img
    assert toc == "none"  # the contents box is left out of print
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    assert all(url.startswith(("file:", "data:")) for url in requests), requests


def test_policies_are_described_in_words():
    from types import SimpleNamespace

    from sim.outputs.report import describe_policy

    scenario = load_scenario(CAMP_TAJI)
    assert "rationality us_rationality = 1.5" in describe_policy(
        scenario, "us", parameters={"us_rationality": 1.5}
    )
    assert "rationality iran_rationality" in describe_policy(scenario, "iran")
    tit_for_tat = load_scenario(SCENARIOS / "tit_for_tat.yaml")
    assert describe_policy(tit_for_tat, "us").startswith("a table of responses to ")
    fixed = SimpleNamespace(kind="fixed", option="sanctions")
    assert describe_policy(scenario, "us", fixed).startswith("always 'sanctions'")
    plan = SimpleNamespace(kind="sequence", options=["a", "b"])
    assert describe_policy(scenario, "us", plan) == "the plan a → b, the last move repeating"
    ahead = SimpleNamespace(kind="strategic", rationality=2, lookahead=3)
    assert "looking 3 steps ahead, rationality 2" in describe_policy(scenario, "us", ahead)
