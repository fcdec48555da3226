// Metrics: MicroVMs by state over time and launch / resume / suspend latencies, from the server's own
// measurements (GET /ember/metrics), redrawn every few seconds.

import {metrics} from "../api.js";
import {latencyDots, stackedArea} from "../chart.js";
import {card, errorLine, fill, fmtClock, fmtDuration, h, poll, showError, table, toEpoch, toneOf} from "../util.js";
import {STATES} from "./microvms.js";

const POLL_MS = 5000;
const WINDOWS = [[900, "15 minutes"], [3600, "1 hour"], [6 * 3600, "6 hours"], [24 * 3600, "24 hours"]];
const DEFAULT_WINDOW_S = 900;
const LATENCIES = [
  ["launchSeconds", "Launch", "RunMicrovm to RUNNING (restore + run hook)", "launches"],
  ["resumeSeconds", "Resume", "ResumeMicrovm or a held request to RUNNING", "resumes"],
  ["suspendSeconds", "Suspend", "SuspendMicrovm or idle to SUSPENDED", "suspends"],
];

/** The metrics page. */
export function render(el) {
  document.title = "Metrics · Ember";
  const windowSel = h("select", {id: "metrics-window"},
    WINDOWS.map(([s, label]) => h("option", {value: s, selected: s === DEFAULT_WINDOW_S}, label)));
  const withTerminated = h("input", {type: "checkbox", id: "metrics-terminated"});
  const chartBox = h("div", {id: "states-chart", class: "chart-box"});
  const legend = h("div", {class: "legend", id: "states-legend"});
  const latencyBox = h("div", {id: "latency"});
  const recentBox = h("div", {id: "recent", class: "split even"});
  const error = errorLine("");
  let last = null;

  const draw = () => {
    if (!last) return;
    const seen = new Set((last.states || []).flatMap((p) => Object.keys(p.counts || {})));
    const all = [...STATES.slice(0, 4), ...(seen.has("RESUMING") ? ["RESUMING"] : []), ...STATES.slice(4)];
    const keys = all.filter((s) => withTerminated.checked || s !== "TERMINATED");
    const to = Date.now() / 1000;
    const from = to - last.windowSeconds;
    fill(chartBox, stackedArea(last.states || [], keys, {from, to}));
    const now = (last.states || []).length ? last.states[last.states.length - 1].counts : {};
    fill(legend, keys.map((k) => h("span", {class: "legend-item"}, h("span", {class: `swatch fill-${toneOf(k)}`}),
      k, h("span", {class: "muted"}, ` ${now[k] || 0}`))));
    fill(latencyBox, table(
      [{label: "Operation"}, {label: "Measured", cls: "num"}, {label: "p50", cls: "num"}, {label: "p90", cls: "num"},
        {label: "max", cls: "num"}, {label: "What is measured"}],
      LATENCIES.map(([key, label, what]) => {
        const m = last[key] || {};
        return h("tr", {"data-latency": key}, h("td", {class: "strong"}, label),
          h("td", {class: "num"}, String(m.count || 0)), h("td", {class: "num"}, fmtDuration(m.p50)),
          h("td", {class: "num"}, fmtDuration(m.p90)), h("td", {class: "num"}, fmtDuration(m.max)),
          h("td", {class: "muted small"}, what));
      })));
    fill(recentBox, LATENCIES.slice(0, 2).map(([key, , , plural]) => {
      const recent = ((last[key] || {}).recent || []).slice().sort((a, b) => b.at - a.at);
      return h("div", {class: "recent"}, h("h3", {}, `Recent ${plural}`),
        latencyDots(recent, {from, to}),
        table([{label: "MicroVM"}, {label: "Took", cls: "num"}, {label: "At"}],
          recent.slice(0, 8).map((r) => h("tr", {},
            h("td", {}, h("a", {href: `#/microvms/${r.microvmId}`, class: "mono small"}, r.microvmId.slice(0, 16) + "…")),
            h("td", {class: "num"}, fmtDuration(r.seconds)), h("td", {}, fmtClock(r.at).slice(0, 8)))),
          `No ${plural} in this window.`));
    }));
  };

  let stop = null;
  const start = () => {
    if (stop) stop();
    stop = poll(async () => {
      last = normalise(await metrics(Number(windowSel.value)));
      showError(error, "");
      draw();
    }, POLL_MS, (err) => showError(error, `Could not read metrics: ${err.message}`));
  };
  windowSel.addEventListener("change", start);
  withTerminated.addEventListener("change", draw);

  el.append(
    h("header", {class: "page-head"}, h("h1", {}, "Metrics"),
      h("p", {class: "muted"}, "Computed by the server from the state changes it recorded for this account's MicroVMs.")),
    error,
    card("MicroVMs by state", [chartBox, legend],
      [h("label", {class: "check"}, withTerminated, "TERMINATED"), windowSel]),
    card("Latency", [latencyBox, recentBox]));
  start();
  return () => stop && stop();
}

/** Times as epoch seconds (the route writes ISO 8601 strings). */
function normalise(answer) {
  const states = (answer.states || []).map((p) => ({time: toEpoch(p.time), counts: p.counts || {}}));
  const out = {...answer, states};
  for (const [key] of LATENCIES) {
    if (answer[key]) out[key] = {...answer[key], recent: (answer[key].recent || []).map((r) => ({...r, at: toEpoch(r.at)}))};
  }
  return out;
}
