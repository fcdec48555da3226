// A live log panel over one of the NDJSON log routes (a build's or a MicroVM's): follows the stream, resumes
// after the last line seen when the connection drops, keeps at most MAX_LINES, and scrolls with new lines unless
// the reader scrolled up.

import {streamLines} from "./api.js";
import {fmtClock, h} from "./util.js";

const MAX_LINES = 5000;
const RETRY_MS = 2000;

/**
 * A log view over ``path``. ``isDone()`` says whether the owner has finished (no more lines will come), so an
 * ended stream is not reopened. Returns {el, stop}.
 */
export function logView(path, {isDone = () => false, emptyText = "No lines yet.", id} = {}) {
  const empty = h("div", {class: "log-empty"}, emptyText);
  const body = h("div", {class: "log-lines", id, role: "log", "aria-live": "off"}, empty);
  const status = h("span", {class: "log-status muted small"}, "connecting…");
  const el = h("div", {class: "log"}, h("div", {class: "log-bar"}, status), body);
  const controller = new AbortController();
  let since = 0;
  let count = 0;
  let stopped = false;

  const add = (item) => {
    since = item.seq;
    const atBottom = body.scrollHeight - body.scrollTop - body.clientHeight < 40;
    body.append(h("div", {class: ["log-line", item.stream === "stderr" && "stderr"], "data-seq": item.seq},
      h("span", {class: "log-time"}, fmtClock(item.at)), h("span", {class: "log-text"}, item.line)));
    count++;
    if (count > MAX_LINES) body.querySelector(".log-line").remove();
    empty.remove();
    if (atBottom) body.scrollTop = body.scrollHeight;
  };

  const run = async () => {
    while (!stopped) {
      status.textContent = "live";
      status.classList.add("live");
      try {
        await streamLines(path, {since, follow: true, signal: controller.signal, onLine: add});
      } catch (err) {
        if (stopped) return;
        status.textContent = `disconnected: ${err.message}`;
      }
      status.classList.remove("live");
      if (stopped) return;
      let done = false;
      try {
        done = await isDone();
      } catch (err) {
        done = err.status === 404; // the owner is gone: nothing more will come
      }
      if (done) {
        status.textContent = count ? `ended · ${count} lines` : "ended";
        if (!count) empty.textContent = "No output.";
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  };
  run();
  return {el, stop: () => { stopped = true; controller.abort(); }};
}
