// A team joins a class game with its code: a name, an actor, then its own game.
"use strict";

(function () {
  const { el, api } = esc;
  const main = esc.$("#main");
  const code = (esc.params().get("code") || "").trim().toUpperCase();

  function askCode() {
    const input = el("input", { type: "text", id: "join-code", placeholder: "ABC123", maxlength: "12" });
    const go = el("button", { id: "join-go", text: "Go" });
    go.addEventListener("click", () => { location.href = "/team?code=" + encodeURIComponent(input.value.trim()); });
    main.replaceChildren(el("h1", { text: "Join a class" }),
      el("p", { text: "Type the code on the instructor's screen." }), el("div", { class: "row" }, input, go));
  }

  async function render() {
    const errors = el("div", { id: "join-errors" });
    let info;
    try {
      info = await api("/api/classes/" + encodeURIComponent(code));
    } catch (error) {
      askCode();
      main.append(errors);
      esc.showError(errors, error);
      return;
    }
    const team = el("input", { type: "text", id: "team-name", maxlength: "40", placeholder: "Team name" });
    const actor = el("select", { id: "team-actor" },
      el("option", { value: "", text: "any (the actor fewest teams play)" }),
      info.actors.map((a) => el("option", { value: a.id, text: a.label })));
    const join = el("button", { id: "team-join", text: "Join" });
    join.addEventListener("click", async () => {
      esc.showError(errors, null);
      try {
        const game = await api(`/api/classes/${code}/join`, { body: { team: team.value, actor: actor.value || null } });
        esc.tokens.set("game", game.id, game.token);
        location.href = `/play?id=${encodeURIComponent(game.id)}#token=${encodeURIComponent(game.token)}`;
      } catch (error) {
        esc.showError(errors, error);
      }
    });
    main.replaceChildren(
      el("h1", { text: `Class ${info.code}: ${info.title}` }),
      el("p", { text: info.summary }),
      info.timer ? el("p", { class: "timer", text: `Each move has a ${info.timer} s timer: when it runs out, your actor passes.` }) : null,
      el("div", { class: "card" }, el("div", { class: "row" }, el("label", { text: "Team" }), team,
        el("label", { text: "plays" }), actor, join), errors));
  }

  if (code) render(); else askCode();
})();
