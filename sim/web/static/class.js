// The instructor's page: open a class game, show its join code and QR code, follow every team live.
"use strict";

(function () {
  const { el, api, pct } = esc;
  const main = esc.$("#main");
  const code = (esc.params().get("code") || "").toUpperCase();
  const token = code && esc.tokens.get("class", code);
  let source = null;

  async function openForm() {
    const scenarios = await api("/api/scenarios");
    const pick = el("select", { id: "class-scenario" }, scenarios.map((s) => el("option", { value: s.id, text: s.title })));
    const preset = esc.params().get("scenario");
    if (preset) pick.value = preset;
    const seed = el("input", { type: "number", id: "class-seed", min: "0", placeholder: "random" });
    const timer = el("input", { type: "number", id: "class-timer", min: "5", max: "3600", placeholder: "none" });
    const errors = el("div", { id: "class-errors" });
    const open = el("button", { id: "class-open", text: "Open the class" });
    open.addEventListener("click", async () => {
      esc.showError(errors, null);
      try {
        const body = { scenario: pick.value };
        if (seed.value !== "") body.seed = Number(seed.value);
        if (timer.value !== "") body.timer = Number(timer.value);
        const made = await api("/api/classes", { body });
        esc.tokens.set("class", made.code, made.token);
        location.href = `/class?code=${made.code}#token=${encodeURIComponent(made.token)}`;
      } catch (error) {
        esc.showError(errors, error);
      }
    });
    main.replaceChildren(el("h1", { text: "A class game" }),
      el("p", { text: "Every team plays its own crisis of the same scenario, with the same dice (the seed), as one actor; " +
        "the other actors follow their policies. You follow every team here, live, and end with a debrief." }),
      el("div", { class: "card" },
        el("div", { class: "row" }, el("label", { for: "class-scenario", text: "Scenario" }), pick),
        el("div", { class: "row" }, el("label", { for: "class-seed", text: "Seed" }), seed,
          el("label", { for: "class-timer", text: "Turn timer (s)" }), timer),
        el("div", { class: "row" }, open), errors));
  }

  function teamsTable(board) {
    const table = el("table", { class: "data teams", id: "teams" },
      el("tr", {}, ["team", "actor", "status", "move", "step", "rung", "peak", "outcome", "latest"].map((h) => el("th", { text: h }))));
    for (const t of board.teams) {
      const outcome = t.result ? `${t.result.outcome_label} (payoff ${t.result.payoff.toFixed(2)})` : "";
      table.append(el("tr", { "data-team": t.team, "data-status": t.status },
        el("td", {}, el("button", { class: "secondary", "data-story": t.id, text: t.team, title: "read this team's story",
          onclick: () => story(t) })), el("td", { text: t.actor_label }),
        el("td", { class: "status-" + t.status, text: t.status }),
        el("td", { text: t.turn === null || t.turn === undefined ? "" : String(t.turn + 1) }),
        el("td", { text: t.step ?? "" }),
        el("td", { text: t.rung === null || t.rung === undefined ? "" : `${t.rung} ${board.ladder[t.rung]}` }),
        el("td", { text: t.peak ?? "" }), el("td", { text: outcome }),
        el("td", { class: "recent", text: t.recent.slice(-3).join("\n") })));
    }
    return table;
  }

  async function story(team) {
    const where = esc.$("#story");
    try {
      const game = await api(`/api/classes/${code}/teams/${encodeURIComponent(team.id)}`, { token });
      const text = el("pre", { class: "transcript", id: "story-text", text: game.transcript || "" });
      where.replaceChildren(el("h2", { text: `Team ${team.team} (${team.actor_label}): its story as it sees it` }), text);
      text.scrollTop = text.scrollHeight;
    } catch (error) {
      esc.showError(where, error);
    }
  }

  function renderBoard(board) {
    const finished = board.teams.filter((t) => t.status !== "waiting").length;
    esc.$("#board-summary").textContent = `${board.teams.length} teams, ${finished} finished.`;
    esc.$("#board").replaceChildren(teamsTable(board));
    main.dataset.version = String(board.version);
    main.dataset.teams = String(board.teams.length);
    main.dataset.finished = String(finished);
  }

  function renderDebrief(d) {
    const box = el("div", { id: "debrief-tables" });
    for (const a of d.actors) {
      const names = Object.keys(a.doctrines);
      box.append(el("h3", { text: `${a.actor_label}: ${a.finished} finished team(s) beside ${d.runs.toLocaleString("en")} runs of each doctrine` }),
        el("table", { class: "data", "data-actor": a.actor },
          el("tr", {}, el("th", { text: "outcome" }), el("th", { text: "your class" }), names.map((n) => el("th", { text: n }))),
          d.outcomes.map((o) => el("tr", {}, el("td", { text: o.label }),
            el("td", { "data-count": String(a.class[o.id].count) }, `${a.class[o.id].count}`,
              el("small", { text: a.class[o.id].p === null ? "" : ` (${pct(a.class[o.id].p)})` })),
            names.map((n) => {
              const x = a.doctrines[n][o.id];
              return el("td", {}, pct(x.p), el("br"), el("small", { text: `${pct(x.ci95[0])}–${pct(x.ci95[1])}` }));
            })))));
    }
    box.append(el("p", { class: "muted", text: "The scenario's own policy on the command line:" }), el("pre", { class: "command", text: d.command }));
    esc.$("#debrief").replaceChildren(box);
    main.dataset.debrief = "yes";
  }

  async function dashboard() {
    const info = await api("/api/classes/" + encodeURIComponent(code));
    const joinUrl = info.join_url;
    const debrief = el("button", { id: "debrief-go", text: "Debrief: the class beside the doctrines" });
    debrief.addEventListener("click", async () => {
      esc.$("#debrief").replaceChildren(el("p", { class: "muted", text: "simulating the doctrines…" }));
      try { renderDebrief(await api(`/api/classes/${code}/debrief`, { token })); } catch (error) { esc.showError(esc.$("#debrief"), error); }
    });
    main.replaceChildren(
      el("h1", { text: `Class game: ${info.title}` }),
      el("div", { class: "row" },
        el("div", {}, el("div", { class: "muted", text: "Join code" }), el("div", { class: "code-big", id: "join-code", text: code }),
          el("div", { text: "Teams open " }, el("a", { href: joinUrl, id: "join-url", text: joinUrl })),
          info.timer ? el("div", { class: "timer", text: `Turn timer: ${info.timer} s (a team that runs out passes)` }) : null),
        el("div", { class: "qr" }, el("img", { src: `/api/classes/${code}/qr.svg`, alt: "QR code of the join address" }))),
      el("h2", { text: "Teams" }), el("p", { id: "board-summary", class: "muted", text: "waiting for teams…" }),
      el("div", { id: "board" }), el("div", { id: "story" }),
      el("h2", { text: "Debrief" }), debrief, el("div", { id: "debrief" }));
    source = new EventSource(`/api/classes/${code}/events?token=${encodeURIComponent(token)}`);
    source.addEventListener("dashboard", (event) => renderBoard(JSON.parse(event.data)));
    window.addEventListener("pagehide", () => source && source.close());
  }

  if (!code) openForm().catch((error) => esc.showError(main, error));
  else if (!token) main.replaceChildren(el("h1", { text: `Class ${code}` }),
    el("p", { text: "This browser does not hold the instructor's token of this class. Teams join at " }, el("a", { href: `/team?code=${code}`, text: `/team?code=${code}` })));
  else dashboard().catch((error) => esc.showError(main, error));
})();
