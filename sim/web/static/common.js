// Shared helpers of the escalation-sim pages: JSON requests, elements, formatting.
"use strict";

const esc = {};

// A JSON request; rejects with an Error whose message is the server's `error`.
esc.api = async function (path, { body, token, signal, method } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, {
    method: method || (body === undefined ? "GET" : "POST"),
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    if (e.name === "AbortError" || (signal && signal.aborted)) throw e; // cancelled mid-body
    throw new Error("the server answered " + response.status);
  }
  if (!response.ok) {
    const error = new Error(data && data.error ? data.error : "error " + response.status);
    error.status = response.status;
    error.problems = data && data.problems;
    throw error;
  }
  return data;
};

// An element with attributes (`class`, `text`, `on*` handlers, others as attributes) and children.
esc.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

esc.$ = (selector) => document.querySelector(selector);
esc.params = () => new URLSearchParams(location.search);

// 0.1234 -> "12.3%" (as the command line's tables print it).
esc.pct = function (p) {
  if (p === null || p === undefined) return "-";
  return (100 * p).toFixed(1) + "%";
};

// A float as the shortest text that reads back the same (what --set takes).
esc.num = function (x) {
  return String(Number(x));
};

esc.quote = function (word) {
  return /^[A-Za-z0-9_./=:-]+$/.test(word) ? word : "'" + word.replace(/'/g, "'\\''") + "'";
};

// Paragraphs and "- " lists of a scenario's Markdown text, as plain text (never HTML).
esc.prose = function (text) {
  const out = [];
  for (const block of (text || "").split(/\n\s*\n/)) {
    let para = [];
    let list = null;
    const flush = () => {
      if (para.length) out.push(esc.el("p", { text: para.join(" ").replace(/\*\*/g, "") }));
      para = [];
    };
    for (const line of block.split("\n")) {
      if (/^\s*[-*] /.test(line)) {
        flush();
        if (!list) { list = esc.el("ul"); out.push(list); }
        list.append(esc.el("li", { text: line.replace(/^\s*[-*] /, "").trim() }));
      } else if (list && /^\s+\S/.test(line)) {
        list.lastChild.append(" " + line.trim());
      } else if (line.trim()) {
        list = null;
        para.push(line.trim());
      }
    }
    flush();
  }
  return out;
};

// Show an error (with file:line:col problems, one a line) in `where`.
esc.showError = function (where, error) {
  where.replaceChildren();
  if (!error) return;
  const lines = error.problems && error.problems.length ? error.problems : [error.message];
  where.append(esc.el("pre", { class: "errors", role: "alert", text: lines.join("\n") }));
};

// Tokens kept in this browser, by game or class.
esc.tokens = {
  get(kind, id) {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
    if (fromHash) {
      localStorage.setItem(`escalation:${kind}:${id}`, fromHash);
      return fromHash;
    }
    return localStorage.getItem(`escalation:${kind}:${id}`);
  },
  set(kind, id, token) {
    localStorage.setItem(`escalation:${kind}:${id}`, token);
  },
};
