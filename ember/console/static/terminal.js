// A small terminal for the web shell: enough of VT100 for a login shell (text, CR/LF, backspace, tabs, erase in
// line/display, cursor left/right/home), everything else (colors, titles, modes) skipped. Keys are turned into
// the bytes a terminal sends. Not a full emulator: full-screen programs (vi, top) will look wrong.

import {h} from "./util.js";

const MAX_ROWS = 2000;
const KEYS = {
  Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b", ArrowUp: "\x1b[A", ArrowDown: "\x1b[B",
  ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D", Home: "\x1b[H", End: "\x1b[F", Delete: "\x1b[3~",
};

/** A terminal element; ``onInput(text)`` receives what the user typed. Returns {el, write(bytes), focus()}. */
export function terminal(onInput) {
  const screen = h("pre", {class: "term", tabindex: 0, id: "shell-screen", "aria-label": "Shell"});
  const decoder = new TextDecoder();
  const lines = [""];
  let row = 0;
  let col = 0;
  let pending = ""; // an escape sequence split across writes
  let scheduled = false;

  const put = (ch) => {
    const line = lines[row];
    lines[row] = line.length < col ? line.padEnd(col) + ch : line.slice(0, col) + ch + line.slice(col + 1);
    col++;
  };
  const newline = () => {
    row++;
    if (row >= lines.length) lines.push("");
    if (lines.length > MAX_ROWS) { lines.shift(); row--; }
  };
  const csi = (params, final) => {
    const n = Number(params.split(";")[0]) || 1;
    if (final === "K") {
      const mode = Number(params) || 0;
      if (mode === 0) lines[row] = lines[row].slice(0, col);
      else if (mode === 2) lines[row] = "";
    } else if (final === "J") {
      if (params === "2" || params === "3") { lines.length = 0; lines.push(""); row = 0; col = 0; }
      else lines.splice(row + 1);
    } else if (final === "C") {
      col += n;
    } else if (final === "D") {
      col = Math.max(0, col - n);
    } else if (final === "G") {
      col = Math.max(0, n - 1);
    } else if (final === "H" && !params) {
      col = 0;
    } else if (final === "P") {
      lines[row] = lines[row].slice(0, col) + lines[row].slice(col + n);
    } else if (final === "@") {
      lines[row] = lines[row].slice(0, col) + " ".repeat(n) + lines[row].slice(col);
    }
  };

  const feed = (text) => {
    text = pending + text;
    pending = "";
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (ch === "\x1b") {
        const rest = text.slice(i);
        let m = rest.match(/^\x1b\[([?>=]?)([0-9;]*)([@-~])/);
        if (m) { if (!m[1]) csi(m[2], m[3]); i += m[0].length - 1; continue; }
        m = rest.match(/^\x1b\][^\x07\x1b]*(\x07|\x1b\\)/);
        if (m) { i += m[0].length - 1; continue; }
        m = rest.match(/^\x1b[()][0-9A-Za-z]|^\x1b[=>78cDEM]/);
        if (m) { i += m[0].length - 1; continue; }
        if (rest.length < 32) { pending = rest; break; } // incomplete: wait for the rest
        continue;
      }
      if (ch === "\r") col = 0;
      else if (ch === "\n") newline();
      else if (ch === "\b") col = Math.max(0, col - 1);
      else if (ch === "\t") col = (Math.floor(col / 8) + 1) * 8;
      else if (ch === "\x07") continue;
      else if (ch >= " ") put(ch);
    }
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(() => {
        scheduled = false;
        screen.textContent = lines.join("\n");
        screen.scrollTop = screen.scrollHeight;
      });
    }
  };

  screen.addEventListener("keydown", (event) => {
    if (event.metaKey) return;
    let data = null;
    if (event.ctrlKey && event.key.length === 1 && /[a-z@\[\]\\^_]/i.test(event.key)) {
      data = String.fromCharCode(event.key.toUpperCase().charCodeAt(0) & 0x1f);
    } else if (KEYS[event.key]) {
      data = KEYS[event.key];
    } else if (event.key.length === 1 && !event.ctrlKey && !event.altKey) {
      data = event.key;
    }
    if (data !== null) {
      event.preventDefault();
      onInput(data);
    }
  });
  screen.addEventListener("paste", (event) => {
    event.preventDefault();
    onInput(event.clipboardData.getData("text").replace(/\r?\n/g, "\r"));
  });

  return {
    el: screen,
    write: (bytes) => feed(typeof bytes === "string" ? bytes : decoder.decode(bytes, {stream: true})),
    focus: () => screen.focus(),
    text: () => lines.join("\n"),
  };
}
