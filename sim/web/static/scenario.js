// A scenario's page: sliders, outcome bars with 95% intervals, rung occupancy, peak rungs, doctrines,
// exact answer.
"use strict";

(function () {
  const { el, api, pct } = esc;
  const main = esc.$("#main");
  const query = esc.params();
  const id = query.get("id");
  const DEBOUNCE = 120;
  let scenario = null;
  const state = { set: {}, seed: 1, runs: 10000 };
  let controller = null;
  let timer = null;
  let generation = 0;

  function commandLine() {
    const parts = ["escalation", "run", scenario.file, "--runs", String(state.runs), "--seed", String(state.seed)];
    for (const [name, value] of Object.entries(state.set)) parts.push("--set", `${name}=${esc.num(value)}`);
    return parts.map(esc.quote).join(" ");
  }

  function syncUrl() {
    const q = new URLSearchParams({ id });
    if (state.seed !== 1) q.set("seed", state.seed);
    if (state.runs !== 10000) q.set("runs", state.runs);
    for (const [name, value] of Object.entries(state.set)) q.set("set." + name, esc.num(value));
    history.replaceState(null, "", "/scenario?" + q.toString());
    esc.$("#command").textContent = commandLine();
  }

  function bars(rows) {
    // rows: [{key, label, p, lo, hi}]
    const box = el("div", { class: "bars" });
    for (const r of rows) {
      const fill = el("div", { class: "fill" });
      fill.style.width = (100 * r.p).toFixed(2) + "%";
      const track = el("div", { class: "track" }, fill);
      if (r.lo !== undefined && r.hi > r.lo) {
        const ci = el("div", { class: "ci", title: `95% interval ${pct(r.lo)} to ${pct(r.hi)}` });
        ci.style.left = (100 * r.lo).toFixed(2) + "%";
        ci.style.width = Math.max(0.3, 100 * (r.hi - r.lo)).toFixed(2) + "%";
        track.append(ci);
      }
      const interval = r.lo === undefined ? "" : ` ${pct(r.lo)}–${pct(r.hi)}`;
      box.append(el("div", { text: r.label }), track,
        el("div", { class: "value", "data-key": r.key, "data-p": String(r.p) }, pct(r.p), el("small", { text: interval })));
    }
    return box;
  }

  function renderRun(result) {
    const outcomes = scenario.outcomes.map((o) => {
      const x = result.outcomes[o.id];
      return { key: o.id, label: o.label, p: x.p, lo: x.ci95[0], hi: x.ci95[1] };
    });
    esc.$("#outcomes").replaceChildren(bars(outcomes));
    const peaks = scenario.ladder.map((label, rung) => ({
      key: "rung-" + rung, label: `${rung} ${label}`, p: result.peak_rung.distribution[String(rung)] || 0,
    }));
    esc.$("#peaks").replaceChildren(bars(peaks.reverse()));
    const st = result.steps;
    esc.$("#steps").textContent =
      `Length of a crisis: mean ${st.mean.toFixed(2)} ${scenario.step_label}s, median ${st.p50}, ` +
      `90% between ${st.p05} and ${st.p95}. Mean peak rung ${result.peak_rung.mean.toFixed(2)}.`;
    const payoffs = el("table", { class: "data" },
      el("tr", {}, el("th", { text: "actor" }), el("th", { text: "mean payoff" }), el("th", { text: "95% interval" })),
      scenario.actors.map((a) => {
        const x = result.payoffs[a.id];
        return el("tr", {}, el("td", { text: a.label }), el("td", { text: x.mean.toFixed(3) }),
          el("td", { text: `${x.ci95[0].toFixed(3)} to ${x.ci95[1].toFixed(3)}` }));
      }));
    esc.$("#payoffs").replaceChildren(payoffs);
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    node.append(...children);
    return node;
  }

  // The rung of each rung still fought over: greys, light for low rungs, dark for high ones
  // (as the rung_occupancy chart of `escalation run`).
  function grey(rung, n) {
    const level = Math.round(200 - 120 * (rung / Math.max(n - 1, 1)));
    return `rgb(${level},${level},${level})`;
  }

  // Stacked bars, one per step: the share already ended (by outcome, coloured), then the share at
  // each rung still going (greys). `occ` is the `occupancy` of /api/explore.
  function renderOccupancy(occ) {
    const W = 720, H = 220, left = 40, bottom = 22, top = 6;
    const n = occ.steps.length;
    const slot = (W - left) / n;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "occupancy", role: "img",
      "aria-label": `Share of runs at each rung and ended, ${scenario.step_label} by ${scenario.step_label}`,
      "data-shares": JSON.stringify(occ.shares), "data-ended": JSON.stringify(occ.ended) });
    const y = (share) => top + (H - top - bottom) * (1 - share);
    for (const tick of [0, 0.5, 1]) {
      chart.append(svg("line", { x1: left - 4, x2: W, y1: y(tick), y2: y(tick), stroke: "#d6dbe1" }),
        svg("text", { x: left - 6, y: y(tick) + 4, "text-anchor": "end", "font-size": "11" }, `${100 * tick}%`));
    }
    const layers = [
      ...scenario.outcomes.map((o) => ({ key: "ended:" + o.id, label: "ended: " + o.label, colour: occ.colours[o.id], at: (s) => occ.ended_by_outcome[o.id][s] })),
      ...occ.rungs.map((label, r) => ({ key: "rung:" + r, label: `rung ${r}: ${label}`, colour: grey(r, occ.rungs.length), at: (s) => occ.shares[s][r] })),
    ];
    const shown = new Set();
    const every = Math.ceil(n / 14);
    occ.steps.forEach((step, s) => {
      let base = 0;
      const x = left + s * slot + slot * 0.08;
      for (const layer of layers) {
        const share = layer.at(s);
        if (share <= 1e-12) continue;
        shown.add(layer);
        chart.append(svg("rect", { x, width: slot * 0.84, y: y(base + share), height: y(base) - y(base + share),
          fill: layer.colour, "data-step": String(step), "data-layer": layer.key },
        svg("title", {}, `${scenario.step_label} ${step}, ${layer.label}: ${pct(share)}`)));
        base += share;
      }
      if (s % every === 0) chart.append(svg("text", { x: x + slot * 0.42, y: H - 6, "text-anchor": "middle", "font-size": "11" }, String(step)));
    });
    const legend = el("ul", { class: "legend" }, layers.filter((l) => shown.has(l)).map((l) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = l.colour;
      return el("li", {}, swatch, l.label);
    }));
    esc.$("#occupancy").replaceChildren(chart, legend,
      el("p", { class: "muted", text: `${scenario.step_label.charAt(0).toUpperCase() + scenario.step_label.slice(1)} (0 = start); share of runs at the end of each ${scenario.step_label}.` }));
  }

  function renderExact(result, error) {
    const box = esc.$("#exact");
    if (error) {
      box.replaceChildren(el("p", { class: "muted", text: "No exact answer: " + error.message.split("\n")[0] }));
      return;
    }
    const rows = scenario.outcomes.map((o) => ({ key: o.id, label: o.label, p: result.outcomes[o.id].p }));
    box.replaceChildren(el("p", { class: "muted", text: "Every reachable state enumerated (no sampling error):" }), bars(rows));
  }

  function renderDoctrines(actor, result) {
    const names = Object.keys(result.columns);
    const table = el("table", { class: "data", "data-actor": actor.id },
      el("tr", {}, el("th", { text: "outcome" }), names.map((n) => el("th", { text: n }))),
      scenario.outcomes.map((o) => el("tr", {}, el("td", { text: o.label }), names.map((n) => {
        const x = result.columns[n].outcomes[o.id];
        return el("td", { "data-p": String(x.p) }, pct(x.p), el("br"), el("small", { text: `${pct(x.ci95[0])}–${pct(x.ci95[1])}` }));
      }))),
      el("tr", { class: "payoff" }, el("td", { text: `payoff: ${actor.label}` }), names.map((n) => {
        const x = result.columns[n].payoffs[actor.id];
        return el("td", {}, x.mean.toFixed(2), el("br"), el("small", { text: `${x.ci95[0].toFixed(2)} to ${x.ci95[1].toFixed(2)}` }));
      })));
    const best = result.recommendation;
    const advice = best && best.best ? el("p", { class: "recommendation", "data-best": best.best, text:
      `Best for the expected payoff of ${actor.label}: ${best.best} (${best.expected_payoff.toFixed(2)})` +
      (best.runner_up ? `, ahead of ${best.runner_up} by ${best.difference.toFixed(2)} ` +
        `(${best.difference_ci95[0].toFixed(2)} to ${best.difference_ci95[1].toFixed(2)})` : "") + "." }) : null;
    return el("div", {}, el("h3", { text: `${actor.label}: its doctrines side by side` }), table, advice);
  }

  async function update() {
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    const mine = ++generation;
    main.dataset.ready = "no";
    const status = esc.$("#status");
    status.textContent = "computing…";
    const body = { scenario: id, runs: state.runs, seed: state.seed, set: state.set };
    const started = performance.now();
    try {
      const both = await api("/api/explore", { body, signal });
      const result = both.run;
      renderRun(result);
      renderOccupancy(both.occupancy);
      main.dataset.numbers = String(mine);
      status.textContent = `${result.runs.toLocaleString("en")} runs, seed ${result.seed}, ` +
        `${((performance.now() - started) / 1000).toFixed(2)} s`;
      esc.showError(esc.$("#run-errors"), null);
      const exact = api("/api/exact", { body: { scenario: id, set: state.set, probe: true }, signal })
        .then((r) => (r.exact === null ? renderExact(null, new Error(r.error)) : renderExact(r, null)),
          (e) => { if (e.name !== "AbortError") renderExact(null, e); });
      const doctrines = scenario.actors.filter((a) => a.alternatives.length).map((actor) =>
        api("/api/compare", { body: { ...body, runs: Math.min(state.runs, 50000), actor: actor.id, mode: "policies" }, signal }).then((r) => r && [actor, r]));
      const compared = await Promise.all(doctrines);
      await exact;
      if (mine !== generation) return;
      esc.$("#doctrines").replaceChildren(...(compared.length ? compared.map(([a, r]) => renderDoctrines(a, r))
        : [el("p", { class: "muted", text: "This scenario names no alternative doctrines." })]));
      main.dataset.ready = String(mine);
    } catch (error) {
      if (error.name === "AbortError" || mine !== generation) return; // superseded by a newer request
      status.textContent = "";
      esc.showError(esc.$("#run-errors"), error);
      main.dataset.ready = "error";
    }
  }

  function schedule() {
    syncUrl();
    clearTimeout(timer);
    timer = setTimeout(update, DEBOUNCE);
  }

  function slider(p) {
    const span = (p.max - p.min) || 1;
    const step = span / 100;
    const input = el("input", { type: "range", min: p.min, max: p.max, step: String(step), value: p.value, id: "param-" + p.name, name: p.name });
    const shown = el("span", { class: "value", text: esc.num(p.value) });
    const initial = query.get("set." + p.name);
    if (initial !== null && !Number.isNaN(Number(initial))) {
      input.value = initial;
      shown.textContent = esc.num(initial);
      state.set[p.name] = Number(initial);
    }
    input.addEventListener("input", () => {
      const value = Number(input.value);
      shown.textContent = esc.num(value);
      if (value === p.value) delete state.set[p.name]; else state.set[p.name] = value;
      schedule();
    });
    return el("div", { class: "slider" },
      el("label", { for: input.id }, el("span", { text: p.label }), shown), input,
      el("div", { class: "doc", text: `${p.doc} (${esc.num(p.min)} to ${esc.num(p.max)}; file: ${esc.num(p.value)})` }));
  }

  async function play(actor) {
    try {
      const game = await api("/api/games", { body: { scenario: id, actor: actor.id, set: state.set } });
      esc.tokens.set("game", game.id, game.token);
      location.href = `/play?id=${encodeURIComponent(game.id)}#token=${encodeURIComponent(game.token)}`;
    } catch (error) {
      esc.showError(esc.$("#run-errors"), error);
    }
  }

  async function render() {
    scenario = await api("/api/scenarios/" + encodeURIComponent(id));
    document.title = scenario.title + " · escalation-sim";
    state.seed = Number(query.get("seed") || 1);
    state.runs = Number(query.get("runs") || 10000);
    const seed = el("input", { type: "number", id: "seed", min: "0", value: String(state.seed) });
    const runs = el("input", { type: "number", id: "runs", min: "1", max: "200000", step: "1000", value: String(state.runs) });
    seed.addEventListener("change", () => { state.seed = Math.max(0, Math.floor(Number(seed.value) || 0)); schedule(); });
    runs.addEventListener("change", () => { state.runs = Math.max(1, Math.floor(Number(runs.value) || 10000)); schedule(); });
    const copy = el("button", { class: "secondary", id: "copy", text: "Copy" });
    copy.addEventListener("click", async () => {
      const text = esc.$("#command").textContent;
      try { await navigator.clipboard.writeText(text); copy.textContent = "Copied"; } catch (e) {
        const range = document.createRange(); range.selectNodeContents(esc.$("#command"));
        getSelection().removeAllRanges(); getSelection().addRange(range);
      }
    });
    const playable = scenario.actors.filter((a) => a.playable);
    main.replaceChildren(
      el("h1", { text: scenario.title }),
      el("p", { class: "muted", text: scenario.uploaded ? `uploaded as ${scenario.file}` : `bundled: ${scenario.file}.yaml (escalation run ${scenario.file})` }),
      el("p", { text: scenario.summary }),
      el("div", { class: "grid" },
        el("aside", {},
          el("div", { class: "card" },
            el("h2", { text: "Parameters" }),
            scenario.parameters.map(slider),
            el("div", { class: "row" }, el("label", { for: "runs", text: "runs" }), runs, el("label", { for: "seed", text: "seed" }), seed)),
          el("h2", { text: "The same numbers on the command line" }),
          el("pre", { class: "command", id: "command" }), copy,
          el("h2", { text: "Play it" }),
          el("div", { class: "row" }, playable.map((a) => el("button", { text: `Play as ${a.label}`, "data-actor": a.id, onclick: () => play(a) }))),
          el("p", {}, el("a", { id: "open-class", href: "/class?scenario=" + encodeURIComponent(id), text: "Open a class game on this scenario" }))),
        el("section", {},
          el("div", { class: "row" }, el("h2", { text: "How it ends" }), el("span", { class: "muted", id: "status" })),
          el("div", { id: "run-errors" }),
          el("div", { id: "outcomes" }),
          el("h2", { text: `Where the runs are, ${scenario.step_label} by ${scenario.step_label}` }),
          el("div", { id: "occupancy" }),
          el("h2", { text: "Highest rung reached" }),
          el("div", { id: "peaks" }),
          el("p", { id: "steps", class: "muted" }),
          el("h2", { text: "Payoffs" }), el("div", { id: "payoffs" }),
          el("h2", { text: "Exact answer" }), el("div", { id: "exact" }),
          el("h2", { text: "Doctrines compared" }), el("div", { id: "doctrines" }))),
      el("h2", { text: "Teaching notes" }),
      el("div", { class: "notes" }, esc.prose(scenario.teaching_notes)),
      el("h2", { text: "Sources" }),
      el("ol", {}, scenario.sources.map((s) => el("li", { text: s }))),
    );
    syncUrl();
    await update();
  }

  render().catch((error) => esc.showError(main, error));
})();
