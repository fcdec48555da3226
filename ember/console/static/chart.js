// SVG charts drawn here (no library): a stacked area chart of counts over time, and a dot strip of latencies.
// Colors come from CSS classes (fill-green, …) so the page's stylesheet owns them.

import {fmtClock, fmtDuration, h, toneOf} from "./util.js";

const W = 1000;
const H = 250;
const PAD = {left: 40, right: 14, top: 10, bottom: 26};

/** Round a maximum up to a "nice" axis top (1, 2, 5 × 10^n). */
function niceMax(value) {
  if (value <= 1) return 1;
  const pow = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (m * pow >= value) return m * pow;
  return 10 * pow;
}

/**
 * A stacked area chart of ``points`` ([{time, counts: {STATE: n}}], time in epoch seconds) over ``keys`` (bottom
 * first), from ``from`` to ``to``.
 */
export function stackedArea(points, keys, {from, to}) {
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const sorted = [...points].sort((a, b) => a.time - b.time);
  const totals = sorted.map((p) => keys.reduce((n, k) => n + (p.counts[k] || 0), 0));
  const top = niceMax(Math.max(1, ...totals));
  const x = (t) => PAD.left + ((t - from) / Math.max(to - from, 1)) * innerW;
  const y = (v) => PAD.top + innerH - (v / top) * innerH;
  const children = [];

  // Grid and y axis.
  const ticks = top <= 5 ? top : 4;
  for (let i = 0; i <= ticks; i++) {
    const v = (top / ticks) * i;
    children.push(h("line", {x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid-line"}),
      h("text", {x: PAD.left - 6, y: y(v) + 4, class: "axis-label", "text-anchor": "end"},
        Number.isInteger(v) ? String(v) : v.toFixed(1)));
  }
  // X axis labels.
  for (let i = 0; i <= 4; i++) {
    const t = from + ((to - from) / 4) * i;
    children.push(h("text", {x: x(t), y: H - 8, class: "axis-label",
      "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle"}, fmtClock(t).slice(0, 5)));
  }

  // Areas as steps: a sample's counts are drawn over the interval that ends at it (the state seen at that
  // instant), so the newest sample shows at the right edge.
  if (sorted.length) {
    const base = sorted.map(() => 0);
    const startOf = (i) => Math.max(from, i ? sorted[i - 1].time : sorted[0].time - (sorted[1] ?
      sorted[1].time - sorted[0].time : 0));
    for (const key of keys) {
      const upper = sorted.map((p, i) => base[i] + (p.counts[key] || 0));
      if (upper.some((v, i) => v !== base[i])) {
        const pts = [];
        sorted.forEach((p, i) => pts.push([x(startOf(i)), y(upper[i])], [x(p.time), y(upper[i])]));
        const back = [];
        for (let i = sorted.length - 1; i >= 0; i--) {
          back.push([x(sorted[i].time), y(base[i])], [x(startOf(i)), y(base[i])]);
        }
        const d = [...pts, ...back].map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`)
          .join("") + "Z";
        children.push(h("path", {d, class: `area fill-${toneOf(key)}`, "data-series": key},
          h("title", {}, key)));
      }
      upper.forEach((v, i) => { base[i] = v; });
    }
  } else {
    children.push(h("text", {x: W / 2, y: H / 2, class: "axis-label", "text-anchor": "middle"}, "No samples yet"));
  }
  children.push(h("line", {x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: "axis-line"}));
  return h("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "MicroVMs by state"},
    children);
}

/** A strip of dots, one per measurement ([{seconds, at, microvmId}]), on a time axis; y is the latency. */
export function latencyDots(recent, {from, to}) {
  const w = 560;
  const hgt = 96;
  const pad = {left: 60, right: 10, top: 10, bottom: 8};
  const top = Math.max(0.5, ...recent.map((r) => r.seconds)) * 1.1;
  const x = (t) => pad.left + ((t - from) / Math.max(to - from, 1)) * (w - pad.left - pad.right);
  const y = (v) => pad.top + (hgt - pad.top - pad.bottom) * (1 - v / top);
  return h("svg", {viewBox: `0 0 ${w} ${hgt}`, class: "chart dots", role: "img", "aria-label": "Recent latencies"},
    h("line", {x1: pad.left, x2: w - pad.right, y1: y(0), y2: y(0), class: "axis-line"}),
    h("text", {x: pad.left - 4, y: y(top / 1.1) + 4, class: "axis-label", "text-anchor": "end"},
      fmtDuration(top / 1.1)),
    h("text", {x: pad.left - 4, y: y(0), class: "axis-label", "text-anchor": "end"}, "0"),
    recent.filter((r) => r.at >= from).map((r) => h("circle", {cx: x(r.at).toFixed(1), cy: y(r.seconds).toFixed(1),
      r: 3.5, class: "dot"}, h("title", {}, `${r.microvmId}: ${fmtDuration(r.seconds)} at ${fmtClock(r.at)}`))));
}
