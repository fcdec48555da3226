// One MicroVM: state and facts (polled every second), the state timeline, actions, the endpoint with "mint
// token", a request tester that calls the endpoint from the browser (CORS answered by the gateway), the live
// app log, and a web shell when the VM runs with SHELL_INGRESS.

import {microvms} from "../api.js";
import {logView} from "../logview.js";
import {terminal} from "../terminal.js";
import {
  arnName, badge, card, copy, drawIfChanged, errorLine, facts, fill, fmtClock, fmtDuration, fmtTime, h, poll,
  showError, toast, toneOf,
} from "../util.js";
import {actionButtons, STATES} from "./microvms.js";

const POLL_MS = 1000;
const TOKEN_MINUTES = 15;
const TOKEN_RENEW_S = 60; // mint a new token when the one held expires within this
const SCHEME_KEY = "ember.console.gatewayScheme";
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/** The MicroVM detail page. */
export function render(el, {id}) {
  document.title = `${id.slice(0, 16)}… · MicroVMs · Ember`;
  const stateEl = h("span", {id: "microvm-state"});
  const actionsEl = h("span", {id: "microvm-actions"});
  const overview = h("div", {id: "microvm-overview"}, h("p", {class: "muted"}, "Loading…"));
  const timelineEl = h("div", {id: "timeline"});
  const error = errorLine("");
  const timeline = loadTimeline(id);
  const endpointBox = h("div", {id: "endpoint-box"});
  const testerBox = h("div", {id: "tester-box"});
  const logsBox = h("div", {id: "logs-box"});
  const shellBox = h("div", {id: "shell-box"});
  const stops = [];
  let vm = null;
  let started = false;

  el.append(
    h("header", {class: "page-head"},
      h("div", {class: "crumbs"}, h("a", {href: "#/microvms"}, "MicroVMs"), " / "),
      h("div", {class: "head-row"}, h("h1", {class: "mono"}, id), stateEl, h("span", {class: "spacer"}), actionsEl)),
    error,
    h("div", {class: "split even"}, card("Overview", overview), card("State timeline", timelineEl)),
    h("div", {class: "split even"}, card("Endpoint", [endpointBox, testerBox]), card("Live logs", logsBox)),
    shellBox);

  const stop = poll(async () => {
    vm = await microvms.get(id);
    showError(error, "");
    record(timeline, vm);
    drawIfChanged(stateEl, vm.state, () => badge(vm.state));
    drawIfChanged(actionsEl, vm.state, () => actionButtons(vm));
    drawIfChanged(overview, vm, () => overviewFacts(vm));
    drawTimeline(timelineEl, timeline, vm);
    if (!started) {
      started = true;
      startOnce(vm);
    }
  }, POLL_MS, (err) => showError(error, err.status === 404 ? `No MicroVM ${id} in this account.` : err.message));
  stops.push(stop);

  function startOnce(first) {
    const tester = requestTester(first);
    fill(endpointBox, tester.endpointEl);
    fill(testerBox, tester.el);
    const logs = logView(microvms.logPath(id), {
      id: "microvm-log",
      emptyText: "No app output yet.",
      isDone: async () => (await microvms.get(id)).state === "TERMINATED",
    });
    stops.push(logs.stop);
    fill(logsBox, logs.el);
    if ((first.ingressNetworkConnectors || []).some((arn) => String(arn).endsWith("SHELL_INGRESS"))) {
      const shell = shellPanel(first);
      stops.push(shell.stop);
      fill(shellBox, card("Shell", shell.el));
    }
  }

  return () => { for (const s of stops) s(); };
}

function overviewFacts(vm) {
  const idle = vm.idlePolicy;
  const endsAt = vm.startedAt + vm.maximumDurationInSeconds;
  return facts([
    ["State", h("span", {}, badge(vm.state))],
    vm.stateReason ? ["Reason", h("span", {class: "reason"}, vm.stateReason)] : null,
    ["Image", h("a", {href: `#/images/${encodeURIComponent(arnName(vm.imageArn))}/versions/${vm.imageVersion}`},
      `${arnName(vm.imageArn)} version ${vm.imageVersion}`)],
    ["Endpoint", h("span", {class: "mono small break", id: "endpoint"}, vm.endpoint)],
    ["Started", fmtTime(vm.startedAt)],
    vm.terminatedAt ? ["Terminated", fmtTime(vm.terminatedAt)] : ["Ends at the latest", fmtTime(endsAt)],
    ["Maximum duration", fmtDuration(vm.maximumDurationInSeconds)],
    ["Idle policy", idle ? `suspend after ${fmtDuration(idle.maxIdleDurationSeconds)} idle; ` +
      `${idle.suspendedDurationSeconds ? `terminate after ${fmtDuration(idle.suspendedDurationSeconds)} suspended`
        : "stay suspended"}; auto-resume ${idle.autoResumeEnabled ? "on" : "off"}` : "never suspended for idleness"],
    ["Ingress", (vm.ingressNetworkConnectors || []).map((a) => arnName(a)).join(", ") || "default"],
    ["Egress", (vm.egressNetworkConnectors || []).map((a) => arnName(a)).join(", ") || "none"],
  ]);
}

// --- state timeline -----------------------------------------------------------------------------------------------
// GetMicrovm returns no history of transitions, so the timeline holds what this browser observed (kept in
// sessionStorage per MicroVM), anchored on the server's startedAt and terminatedAt.

function loadTimeline(id) {
  const key = `ember.console.timeline.${id}`;
  let events = [];
  try {
    events = JSON.parse(sessionStorage.getItem(key) || "[]");
  } catch {
    events = [];
  }
  return {key, events};
}

function record(timeline, vm) {
  const events = timeline.events;
  const last = events[events.length - 1];
  if (last && last.state === vm.state) return;
  const at = vm.state === "TERMINATED" && vm.terminatedAt ? vm.terminatedAt : Date.now() / 1000;
  events.push({state: vm.state, at, first: !last});
  try {
    sessionStorage.setItem(timeline.key, JSON.stringify(events.slice(-200)));
  } catch { /* storage full or off: the timeline lives in memory only */ }
}

function drawTimeline(el, timeline, vm) {
  const now = vm.terminatedAt || Date.now() / 1000;
  const events = timeline.events;
  const start = vm.startedAt;
  const span = Math.max(now - start, 1);
  const width = 600;
  const segments = [];
  // Before the first observation the state is unknown; shown as a hatched grey segment.
  const firstAt = events.length ? Math.max(events[0].at, start) : now;
  if (firstAt > start) segments.push({state: null, from: start, to: firstAt});
  events.forEach((e, i) => {
    const to = i + 1 < events.length ? events[i + 1].at : now;
    segments.push({state: e.state, from: Math.max(e.at, start), to: Math.max(to, start)});
  });
  const x = (t) => ((t - start) / span) * width;
  const bar = h("svg", {class: "timeline-bar", viewBox: `0 0 ${width} 18`, preserveAspectRatio: "none",
    role: "img", "aria-label": "States over time"},
  segments.map((s) => h("rect", {x: x(s.from).toFixed(2), y: 0, width: Math.max(x(s.to) - x(s.from), 0.5).toFixed(2),
    height: 18, class: s.state ? `fill-${toneOf(s.state)}` : "fill-unknown"},
  h("title", {}, `${s.state || "not observed"}: ${fmtDuration(s.to - s.from)}`))));
  const rows = [h("li", {}, h("span", {class: "tl-time"}, fmtClock(start)), h("span", {class: "tl-dot tone-green"}),
    "Started (RunMicrovm accepted)")];
  for (const [i, e] of events.entries()) {
    const prev = events[i - 1];
    rows.push(h("li", {"data-tl-state": e.state}, h("span", {class: "tl-time"}, fmtClock(e.at)),
      h("span", {class: `tl-dot tone-${toneOf(e.state)}`}), badge(e.state),
      h("span", {class: "muted small"}, e.first ? " first seen here" : ` after ${fmtDuration(e.at - prev.at)} ` +
        `${prev.state}`)));
  }
  const legend = h("div", {class: "legend"}, STATES.filter((s) => events.some((e) => e.state === s)).map((s) =>
    h("span", {class: "legend-item"}, h("span", {class: `swatch fill-${toneOf(s)}`}), s)));
  fill(el, bar, h("div", {class: "timeline-scale muted small"}, h("span", {}, fmtClock(start)),
    h("span", {}, vm.terminatedAt ? fmtClock(now) : "now")), legend,
  h("ol", {class: "timeline-list"}, rows),
  h("p", {class: "muted small"}, "States as this browser saw them (polled every second); the API keeps no history."));
}

// --- endpoint, token, request tester -----------------------------------------------------------------------------

function requestTester(vm) {
  let scheme = localStorage.getItem(SCHEME_KEY) || "https";
  let token = null; // {value, port, expiresAt}
  const schemeSel = h("select", {id: "gateway-scheme", title: "Gateway scheme (http when the server runs --no-tls)"},
    ["https", "http"].map((s) => h("option", {value: s, selected: s === scheme}, s)));
  const port = h("input", {type: "number", id: "token-port", min: 1, max: 65535, value: 8080, class: "narrow"});
  const minutes = h("input", {type: "number", id: "token-minutes", min: 1, max: 60, value: TOKEN_MINUTES,
    class: "narrow"});
  const tokenOut = h("div", {id: "token-out", class: "token-out hidden"});
  const urlOut = h("code", {id: "endpoint-url", class: "break grow"});
  const tokenError = errorLine("");
  const drawUrl = () => { urlOut.textContent = `${scheme}://${vm.endpoint}`; };
  schemeSel.addEventListener("change", () => {
    scheme = schemeSel.value;
    localStorage.setItem(SCHEME_KEY, scheme);
    drawUrl();
  });
  drawUrl();

  const mint = async () => {
    const p = Number(port.value) || 8080;
    const m = Math.min(Math.max(Number(minutes.value) || TOKEN_MINUTES, 1), 60);
    const answer = await microvms.token(vm.microvmId, p, m);
    token = {value: answer.authToken["X-aws-proxy-auth"], port: p, expiresAt: Date.now() / 1000 + m * 60};
    fill(tokenOut,
      h("div", {class: "token-head"}, h("span", {class: "muted small"},
        `X-aws-proxy-auth · port ${p} · expires ${fmtClock(token.expiresAt).slice(0, 8)}`),
      h("button", {type: "button", class: "btn btn-small btn-ghost", onclick: () => copy(token.value)}, "Copy")),
      h("code", {class: "token mono", id: "token-value"}, token.value));
    tokenOut.classList.remove("hidden");
    return token;
  };
  const mintButton = h("button", {type: "button", class: "btn", id: "mint-token", onclick: async () => {
    showError(tokenError, "");
    try {
      await mint();
      toast("Token minted");
    } catch (err) {
      showError(tokenError, err.message);
    }
  }}, "Mint token");

  const endpointEl = h("div", {class: "endpoint"},
    h("div", {class: "field-inline"}, schemeSel, urlOut),
    h("div", {class: "field-inline"}, h("label", {for: "token-port"}, "Port"), port,
      h("label", {for: "token-minutes"}, "Minutes"), minutes, mintButton),
    tokenError, tokenOut);

  // The tester.
  const method = h("select", {id: "tester-method"}, METHODS.map((m) => h("option", {value: m}, m)));
  const path = h("input", {id: "tester-path", value: "/state", class: "mono grow", spellcheck: "false"});
  const body = h("textarea", {id: "tester-body", rows: 3, class: "mono", placeholder: "{\"code\": \"print(6 * 7)\"}"});
  const send = h("button", {type: "submit", class: "btn btn-primary", id: "tester-send"}, "Send");
  const result = h("div", {id: "tester-result", class: "tester-result hidden"});
  method.addEventListener("change", () => {
    if (method.value === "POST" && path.value === "/state") path.value = "/execute";
  });

  const form = h("form", {class: "form tester", id: "tester-form", onsubmit: async (event) => {
    event.preventDefault();
    send.disabled = true;
    const target = path.value.startsWith("/") ? path.value : `/${path.value}`;
    fill(result, h("span", {class: "muted small"}, `Sending ${method.value} ${target}…`));
    result.classList.remove("hidden");
    const t0 = performance.now();
    try {
      const p = Number(port.value) || 8080;
      if (!token || token.port !== p || token.expiresAt - Date.now() / 1000 < TOKEN_RENEW_S) await mint();
      const headers = {"X-aws-proxy-auth": token.value, "X-aws-proxy-port": String(p)};
      const hasBody = !["GET", "HEAD"].includes(method.value) && body.value;
      if (hasBody) headers["Content-Type"] = "application/json";
      const response = await fetch(`${scheme}://${vm.endpoint}${target}`, {
        method: method.value, headers, body: hasBody ? body.value : undefined, mode: "cors", credentials: "omit",
        cache: "no-store",
      });
      const text = await response.text();
      const ms = performance.now() - t0;
      showResult(result, response, text, ms, method.value, target);
    } catch (err) {
      fill(result, h("div", {class: "error-line"}, `Request failed: ${err.message}. `,
        scheme === "https" ? "The browser must trust Ember's CA (`ember ca` prints it) for the gateway's " +
          "certificate, and reach the gateway's address." : "Is the gateway served over plain HTTP (--no-tls)?"));
      result.classList.remove("hidden");
    } finally {
      send.disabled = false;
    }
  }},
  h("div", {class: "field-inline"}, method, path, send),
  h("label", {for: "tester-body"}, "Body"), body, result);

  return {endpointEl, el: h("div", {class: "tester-wrap"}, h("h3", {}, "Request tester"), form)};
}

function showResult(el, response, text, ms, method, target) {
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch { /* not JSON: shown as is */ }
  const ok = response.status < 400;
  fill(el,
    h("div", {class: "result-head"},
      h("span", {class: ["badge", ok ? "tone-green" : "tone-red"], id: "tester-status"}, String(response.status)),
      h("span", {class: "mono small"}, `${method} ${target}`),
      h("span", {class: "muted small"}, `${ms.toFixed(0)} ms`),
      h("span", {class: "muted small mono"}, response.headers.get("x-amzn-requestid") || "")),
    h("pre", {class: "result-body mono", id: "tester-response"}, pretty || "(empty body)"));
  el.classList.remove("hidden");
}

// --- web shell ----------------------------------------------------------------------------------------------------

function shellPanel(vm) {
  const scheme = () => (localStorage.getItem(SCHEME_KEY) || "https") === "https" ? "wss" : "ws";
  const status = h("span", {class: "muted small", id: "shell-status"}, "closed");
  const box = h("div", {class: "shell-area"});
  let socket = null;
  const open = h("button", {type: "button", class: "btn btn-primary", id: "shell-open", onclick: async () => {
    if (socket) return;
    status.textContent = "connecting…";
    try {
      const answer = await microvms.shellToken(vm.microvmId, TOKEN_MINUTES);
      const tok = answer.authToken["X-aws-proxy-auth"];
      const term = terminal((data) => {
        if (socket && socket.readyState === WebSocket.OPEN) socket.send(new TextEncoder().encode(data));
      });
      fill(box, term.el);
      socket = new WebSocket(`${scheme()}://${vm.endpoint}/.ember/shell`,
        ["lambda-microvms", `lambda-microvms.authentication.${tok}`]);
      socket.binaryType = "arraybuffer";
      socket.onopen = () => {
        status.textContent = "connected";
        socket.send(JSON.stringify({resize: [100, 24]}));
        term.focus();
      };
      socket.onmessage = (event) => term.write(typeof event.data === "string" ? event.data :
        new Uint8Array(event.data));
      socket.onclose = (event) => {
        status.textContent = `closed${event.reason ? ` (${event.reason})` : ""}`;
        socket = null;
        open.disabled = false;
      };
      open.disabled = true;
    } catch (err) {
      status.textContent = `failed: ${err.message}`;
    }
  }}, "Open shell");
  const close = h("button", {type: "button", class: "btn", onclick: () => socket && socket.close()}, "Close");
  return {
    el: [h("div", {class: "field-inline"}, open, close, status), box,
      h("p", {class: "muted small"}, "A login shell in the MicroVM (bash or sh) over the gateway's shell WebSocket. ",
        "Click the screen, then type.")],
    stop: () => { if (socket) socket.close(); },
  };
}
