// The list of scenarios (bundled and uploaded), and the upload form.
"use strict";

(function () {
  const { el, api } = esc;
  const main = esc.$("#main");

  async function render() {
    const scenarios = await api("/api/scenarios");
    const list = el("ul", { class: "scenarios", id: "scenario-list" });
    for (const s of scenarios) {
      list.append(
        el("li", { "data-id": s.id },
          el("a", { href: "/scenario?id=" + encodeURIComponent(s.id), text: s.title }),
          el("div", { class: "id", text: s.uploaded ? `${s.id} (uploaded: ${s.file})` : `${s.file}.yaml` }),
          el("div", { class: "muted", text: `${s.parameters.length} parameters` })));
    }
    const errors = el("div", { id: "upload-errors" });
    const name = el("input", { type: "file", id: "upload-file", accept: ".yaml,.yml,text/yaml" });
    const text = el("textarea", { id: "upload-text", placeholder: "…or paste a scenario's YAML here" });
    name.addEventListener("change", async () => {
      if (name.files.length) text.value = await name.files[0].text();
    });
    const send = el("button", { id: "upload-send", text: "Check and add" });
    send.addEventListener("click", async () => {
      esc.showError(errors, null);
      try {
        const fileName = name.files.length ? name.files[0].name : "upload.yaml";
        const done = await api("/api/scenarios", { body: { name: fileName, text: text.value } });
        location.href = "/scenario?id=" + encodeURIComponent(done.id);
      } catch (error) {
        esc.showError(errors, error);
      }
    });
    main.replaceChildren(
      el("h1", { text: "Scenarios" }),
      el("p", { class: "muted", text: "Pick a scenario to explore its parameters, compare its doctrines and play it. " +
        "Everything runs on this machine: the numbers are those of the escalation command line." }),
      list,
      el("h2", { text: "Your own scenario" }),
      el("p", { class: "muted", text: "A scenario file is checked exactly as escalation validate checks it; each problem is shown as file:line:col." }),
      el("div", { class: "card" }, el("div", { class: "row" }, name), text, el("div", { class: "row" }, send), errors),
    );
  }

  render().catch((error) => esc.showError(main, error));
})();
