// One student's game: the actor's view as `escalation play` prints it, and a button per option.
"use strict";

(function () {
  const { el, api } = esc;
  const main = esc.$("#main");
  const id = esc.params().get("id");
  const token = id && esc.tokens.get("game", id);
  let game = null;
  let ticking = null;

  function ladder() {
    const list = el("ol", { class: "ladder", id: "ladder" });
    game.ladder.forEach((label, rung) => {
      const classes = [rung === game.rung ? "now" : "", rung === game.peak ? "peak" : ""].join(" ").trim();
      list.append(el("li", { class: classes || null, text: `${rung} ${label}` + (rung === game.rung ? "  ◀ now" : "") }));
    });
    return list;
  }

  function options() {
    const box = el("div", { class: "options", id: "options", "data-turn": String(game.turn) });
    for (const o of game.options) {
      const button = el("button", { "data-option": String(o.n), disabled: !o.available,
        title: o.available ? null : "needs " + o.needs, text: `${o.n}. ${o.label}` });
      button.addEventListener("click", () => move(o.n));
      box.append(el("div", { class: "option" }, button,
        el("details", {}, el("summary", { text: o.available ? "what it does" : "not available now: needs " + o.needs }),
          el("pre", { text: o.explain }))));
    }
    return box;
  }

  function countdown() {
    clearInterval(ticking);
    const where = esc.$("#timer");
    if (!where || !game.deadline) return;
    const tick = () => {
      const left = Math.max(0, Math.round(game.deadline - Date.now() / 1000));
      where.textContent = `${left} s left to move`;
      if (left <= 0) { clearInterval(ticking); setTimeout(refresh, 1500); }
    };
    tick();
    ticking = setInterval(tick, 500);
  }

  function render() {
    const transcript = el("pre", { class: "transcript", id: "transcript", text: game.transcript || "" });
    const heading = el("h1", { text: `${game.title}: you play ${game.actor_label}` });
    const sub = el("p", { class: "muted", text: (game.team ? `Team ${game.team}, class ${game.class_code}. ` : "") +
      `Seed ${game.seed}. In a terminal: ${game.command}` });
    const side = [];
    main.dataset.status = game.status;
    if (game.status === "waiting") {
      side.push(el("h2", { text: `Your move (move ${game.turn + 1})` }), el("p", { class: "timer", id: "timer" }), options(),
        el("h2", { text: "Ladder" }), ladder());
    } else if (game.status === "finished") {
      const r = game.result;
      side.push(el("div", { class: "banner", id: "result", "data-outcome": r.outcome },
        `The crisis ended: ${r.outcome_label}, after ${r.steps} steps, peak rung ${r.peak}. Your payoff ${r.payoff.toFixed(2)}.`),
        el("p", { text: "The debrief (at the end of the story) compares your line of play with the scenario's own policy." }),
        el("a", { href: "/", text: "Back to the scenarios" }));
    } else if (game.status === "debriefing") {
      const r = game.result;
      side.push(el("div", { class: "banner", text: `The crisis ended: ${r.outcome_label}. Preparing your debrief…` }));
      setTimeout(refresh, 300);
    } else {
      side.push(el("div", { class: "banner", id: "result", text: game.error || "This game has stopped." }));
    }
    main.replaceChildren(heading, sub, el("div", { class: "grid" }, el("aside", {}, side), el("section", {}, transcript)));
    transcript.scrollTop = transcript.scrollHeight;
    if (game.status === "finished") {
      // the debrief is at the end: keep the story's last part in view
      transcript.scrollTop = transcript.scrollHeight;
    }
    countdown();
  }

  async function move(n) {
    for (const b of main.querySelectorAll("button[data-option]")) b.disabled = true;
    try {
      game = await api(`/api/games/${encodeURIComponent(id)}/move`, { body: { turn: game.turn, option: n }, token });
    } catch (error) {
      if (error.status === 409) return refresh();
      esc.showError(main, error);
      return;
    }
    render();
  }

  async function refresh() {
    try {
      game = await api(`/api/games/${encodeURIComponent(id)}`, { token });
      render();
    } catch (error) {
      esc.showError(main, error);
    }
  }

  if (!id || !token) {
    main.replaceChildren(el("h1", { text: "Play" }),
      el("p", { text: "Start a game from a scenario's page, or join a class with its code." }),
      el("a", { href: "/", text: "The scenarios" }));
  } else {
    refresh();
  }
})();
