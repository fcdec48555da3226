// Account: who is signed in (account id, access key id; never the secret), the session, the account's quotas
// with how much of each is used, and its usage: all from GET /ember/account (the server's quota settings and its
// own counts for this account, the same counts its ServiceQuotaExceededException refusals use).

import {account, currentSession, signOut} from "../api.js";
import {badge, card, drawIfChanged, errorLine, facts, fmtBytes, fmtTime, h, poll, showError, table, toEpoch}
  from "../util.js";
import {STATES} from "./microvms.js";

const POLL_MS = 5000;
const WARN_RATIO = 0.7;
const FULL_RATIO = 0.9;
// Quotas by the names the API's refusals use; a name not listed here is still shown, under its own name.
const QUOTAS = {
  microvms: {label: "MicroVMs not terminated", fmt: String},
  allocatedMemoryMiB: {label: "Allocated memory", fmt: fmtMiB},
  images: {label: "Images", fmt: String},
  runMicrovmCallsPerSecond: {label: "RunMicrovm calls per second", fmt: String},
  runMicrovmBurst: {label: "RunMicrovm burst", fmt: String},
  uploadedArtifacts: {label: "Uploaded zips kept", fmt: String},
  uploadedArtifactBytes: {label: "Uploaded code", fmt: fmtBytes},
  concurrentUploads: {label: "Uploads at once", fmt: String},
};

/** The account page. */
export function render(el) {
  document.title = "Account · Ember";
  const s = currentSession();
  const usage = h("div", {id: "usage"}, h("p", {class: "muted"}, "Counting…"));
  const byState = h("div", {id: "by-state"}, h("p", {class: "muted"}, "Counting…"));
  const quotas = h("div", {id: "quotas"}, h("p", {class: "muted"}, "Reading the quotas…"));
  const error = errorLine("");

  el.append(
    h("header", {class: "page-head"}, h("h1", {}, "Account")),
    error,
    h("div", {class: "split even"},
      card("Credentials", [
        facts([
          ["Account ID", h("span", {class: "mono", id: "account-id"}, s.accountId)],
          ["Access key ID", h("span", {class: "mono", id: "access-key-id"}, s.accessKeyId)],
          ["Secret access key", h("span", {class: "muted"}, "never shown by the console")],
          ["Session ends", fmtTime(toEpoch(s.expiresAt))],
        ]),
        h("p", {class: "muted small"}, "Every call the console makes is one of the public API's, scoped to this ",
          "account. On the server, ", h("code", {}, "ember credentials"), " prints the root key pair."),
        h("button", {type: "button", class: "btn", onclick: async () => {
          await signOut();
          location.hash = "#/login";
        }}, "Sign out"),
      ]),
      card("MicroVMs by state", byState)),
    card("Quotas", quotas),
    card("Usage", usage));

  const stop = poll(async () => {
    const doc = await account();
    showError(error, "");
    drawIfChanged(quotas, [doc.quotas, doc.usage], () => quotaView(doc.quotas || {}, doc.usage || {}));
    drawIfChanged(usage, doc.usage, () => usageView(doc.usage || {}));
    drawIfChanged(byState, doc.usage, () => stateView(doc.usage || {}));
  }, POLL_MS, (err) => showError(error, `Could not read the account: ${err.message}`));
  return stop;
}

function fmtMiB(mib) {
  return mib >= 1024 ? `${(mib / 1024).toFixed(mib % 1024 ? 1 : 0)} GiB` : `${mib} MiB`;
}

/** A horizontal bar of used / limit (SVG: the CSP allows no inline style), coloured as it fills up. */
function usageBar(used, limit) {
  const ratio = limit > 0 ? Math.min(1, used / limit) : 1;
  const tone = ratio >= FULL_RATIO ? "red" : ratio >= WARN_RATIO ? "amber" : "green";
  return h("svg", {class: "quota-bar", viewBox: "0 0 100 8", preserveAspectRatio: "none", role: "img",
    "aria-label": `${Math.round(ratio * 100)}% used`},
  h("rect", {class: "quota-track", x: 0, y: 0, width: 100, height: 8, rx: 2}),
  h("rect", {class: `fill-${tone}`, x: 0, y: 0, width: (ratio * 100).toFixed(2), height: 8, rx: 2}));
}

function quotaView(quotas, usage) {
  const rows = Object.entries(quotas).map(([name, q]) => {
    const known = QUOTAS[name] || {label: name, fmt: String};
    const used = usage[name];
    const hasUsage = typeof used === "number";
    return h("tr", {"data-quota": name},
      h("td", {}, h("div", {class: "strong"}, known.label), h("div", {class: "muted small"}, q.description)),
      h("td", {class: "num nowrap", "data-used": hasUsage ? used : null},
        hasUsage ? `${known.fmt(used)} / ${known.fmt(q.value)}` : known.fmt(q.value)),
      h("td", {class: "quota-usage"}, hasUsage
        ? h("div", {class: "quota-meter"}, usageBar(used, q.value),
          h("span", {class: "muted small num"}, `${q.value > 0 ? Math.round((used / q.value) * 100) : 100}%`))
        : h("span", {class: "muted small"}, "a rate: nothing is held")),
      h("td", {class: "small"}, h("code", {}, q.error), h("div", {class: "muted mono"}, q.quotaCode)));
  });
  return [
    table([{label: "Quota"}, {label: "Used / limit", cls: "num"}, {label: "Usage"}, {label: "Beyond it"}], rows,
      "This server reports no quotas."),
    h("p", {class: "muted small"}, "Limits are settings of the server. A call that would pass one is refused with ",
      "the error shown, carrying the quota code."),
  ];
}

function usageView(usage) {
  const storage = usage.storageBytes || {};
  return [
    h("div", {class: "stats"},
      stat("MicroVMs not terminated", usage.microvms ?? 0, "count-live"),
      stat("Memory they hold", fmtMiB(usage.allocatedMemoryMiB ?? 0), "memory"),
      stat("Images", usage.images ?? 0, "count-images"),
      stat("Image versions", usage.imageVersions ?? 0, "count-versions"),
      stat("Builds in progress", usage.buildsInProgress ?? 0, "count-building"),
      stat("Image snapshots", fmtBytes(storage.imageSnapshots ?? 0), "snapshot-bytes"),
      stat("Uploaded code", fmtBytes(storage.uploadedArtifacts ?? 0), "upload-bytes")),
    h("p", {class: "muted small"}, "Counted by the server for this account only. Storage is what is cheaply known: ",
      "image snapshots as their builds recorded them and uploaded zips; suspended MicroVMs' snapshots are not ",
      "included."),
  ];
}

function stateView(usage) {
  const byState = usage.microvmsByState || {};
  return [
    table([{label: "State"}, {label: "MicroVMs", cls: "num"}],
      STATES.map((st) => h("tr", {"data-state-count": st}, h("td", {}, badge(st)),
        h("td", {class: "num"}, String(byState[st] || 0))))),
    h("p", {class: "muted small"}, "SUSPENDED MicroVMs hold their memory and count against the quotas until ",
      "they are terminated."),
  ];
}

function stat(label, value, id) {
  return h("div", {class: "stat"}, h("div", {class: "stat-value", id: `stat-${id}`}, String(value)),
    h("div", {class: "stat-label"}, label));
}
