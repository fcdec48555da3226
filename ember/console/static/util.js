// Small helpers shared by every page: building DOM nodes, formatting times and sizes, state badges, polling.
// No framework: a page is a function that fills an element and returns a cleanup function.

/** Create an element: h("a", {href: "#/x", class: "link", onclick: fn}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const svg = SVG_TAGS.has(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (!svg && (key === "value" || key === "checked" || key === "selected" || key === "disabled")) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

const SVG_TAGS = new Set(["svg", "g", "path", "rect", "line", "text", "polyline", "title", "circle"]);

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace everything inside ``el`` with ``children``. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// --- formatting ---------------------------------------------------------------------------------------------------

/** A point in time as epoch seconds: the API writes numbers, Ember's console routes ISO 8601 strings. */
export function toEpoch(value) {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value === "number") return value;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms / 1000;
}

/** Epoch seconds → "2025-01-02 13:04:05" in local time. */
export function fmtTime(epoch) {
  if (epoch === undefined || epoch === null) return "–";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Epoch seconds → "13:04:05.123". */
export function fmtClock(epoch) {
  const d = new Date(epoch * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Seconds → "4m 10s", "2h 5m", "850 ms". */
export function fmtDuration(seconds) {
  if (seconds === undefined || seconds === null || Number.isNaN(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const s = Math.round(seconds);
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  return `${m}m ${s % 60}s`;
}

/** Epoch seconds → "3m ago" (or "in 3m"). */
export function ago(epoch) {
  if (epoch === undefined || epoch === null) return "–";
  const delta = Date.now() / 1000 - epoch;
  if (Math.abs(delta) < 5) return "just now";
  return delta > 0 ? `${fmtDuration(delta).replace(/\s\d+s$/, "")} ago` : `in ${fmtDuration(-delta)}`;
}

/** A time cell: the time of day for today's times, else the date and time (the full time as tooltip). */
export function timeCell(epoch) {
  if (epoch === undefined || epoch === null) return "–";
  const full = fmtTime(epoch);
  const today = fmtTime(Date.now() / 1000).slice(0, 10);
  return h("span", {title: full, class: "nowrap"}, full.startsWith(today) ? full.slice(11) : full.slice(0, 16));
}

/** Bytes → "1.5 MiB". */
export function fmtBytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

/** The last part of an ARN ("arn:…:microvm-image:ci" → "ci"). */
export function arnName(arn) {
  return arn ? String(arn).split(":").pop() : "";
}

// --- state badges -------------------------------------------------------------------------------------------------

const STATE_TONES = {
  RUNNING: "green", SUCCESSFUL: "green", CREATED: "green", UPDATED: "green", ACTIVE: "green", AVAILABLE: "green",
  PENDING: "amber", IN_PROGRESS: "amber", CREATING: "amber", UPDATING: "amber",
  SUSPENDING: "blue", SUSPENDED: "indigo", RESUMING: "teal",
  TERMINATING: "grey", TERMINATED: "grey", INACTIVE: "grey", DELETED: "grey", DELETING: "grey", DEPRECATED: "grey",
  FAILED: "red", CREATE_FAILED: "red", UPDATE_FAILED: "red", DELETE_FAILED: "red",
};

/** A colored badge for a state or status name. */
export function badge(state) {
  const tone = STATE_TONES[state] || "grey";
  const busy = ["PENDING", "IN_PROGRESS", "CREATING", "UPDATING", "SUSPENDING", "RESUMING", "TERMINATING"].includes(state);
  return h("span", {class: ["badge", `tone-${tone}`, busy && "busy"], "data-state": state}, state || "–");
}

/** Color class of a state (for charts and legends). */
export function toneOf(state) {
  return STATE_TONES[state] || "grey";
}

// --- behaviour ----------------------------------------------------------------------------------------------------

/**
 * Call ``fn`` now and every ``intervalMs`` until the returned stop function is called; a call in flight is never
 * overlapped, and an error is passed to ``onError`` (the loop goes on).
 */
export function poll(fn, intervalMs, onError) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
    } catch (err) {
      if (onError) onError(err);
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

const TOAST_MS = 2500;
const MAX_TOASTS = 3;

/** A small notice that fades out (bottom right). */
export function toast(message, tone = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", {id: "toasts", class: "toasts", role: "status", "aria-live": "polite"});
    document.body.append(box);
  }
  const note = h("div", {class: ["toast", `toast-${tone}`]}, message);
  box.append(note);
  while (box.children.length > MAX_TOASTS) box.firstChild.remove();
  setTimeout(() => note.classList.add("fade"), TOAST_MS);
  setTimeout(() => note.remove(), TOAST_MS + 500);
}

/** An error line for a form or panel ("" hides it). */
export function errorLine(message) {
  return h("div", {class: ["error-line", !message && "hidden"], role: "alert"}, message || "");
}

/** Set the text of an error line made by ``errorLine``. */
export function showError(el, message) {
  el.textContent = message || "";
  el.classList.toggle("hidden", !message);
}

/** Copy text to the clipboard, with a toast. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied");
  } catch {
    toast("Copy failed: select the text and copy it", "error");
  }
}

/** A definition list from [label, value] pairs (values may be nodes). */
export function facts(pairs) {
  return h("dl", {class: "facts"}, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")]));
}

/** A card with a title bar (and optional buttons on the right). */
export function card(title, body, actions) {
  return h("section", {class: "card"},
    h("header", {class: "card-head"}, h("h2", {}, title), actions ? h("div", {class: "card-actions"}, actions) : null),
    h("div", {class: "card-body"}, body));
}

/** A table: columns [{label, cls}] and rows of cells; ``empty`` is shown when there are none. */
export function table(columns, rows, empty = "Nothing here yet.") {
  return h("table", {class: "grid"},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {class: c.cls}, c.label)))),
    h("tbody", {}, rows.length ? rows : h("tr", {class: "empty"}, h("td", {colspan: columns.length}, empty))));
}

/** Parse the query part of a route hash ("#/microvms?image=ci" → {image: "ci"}). */
export function routeQuery() {
  const hash = location.hash || "";
  const q = hash.indexOf("?");
  return q === -1 ? {} : Object.fromEntries(new URLSearchParams(hash.slice(q + 1)));
}

const drawn = new WeakMap();

/**
 * Fill ``el`` with ``build()`` only when ``key`` (any JSON-able value) changed since the last call: live pages
 * redraw every poll, and an unchanged table keeps its text selection, focus and scroll position.
 */
export function drawIfChanged(el, key, build) {
  const text = JSON.stringify(key);
  if (drawn.get(el) === text) return false;
  drawn.set(el, text);
  const children = build();
  fill(el, ...(Array.isArray(children) ? children : [children]));
  return true;
}
