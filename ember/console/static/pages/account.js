// Account: who is signed in (account id, access key id; never the secret), the session, and usage counted from
// the list operations (the API has no usage or quota operation; limits are server settings and RunMicrovm
// answers ServiceQuotaExceededException when one would be passed).

import {currentSession, images, microvms, signOut} from "../api.js";
import {arnName, badge, card, errorLine, facts, fill, fmtTime, h, poll, showError, table, toEpoch} from "../util.js";
import {STATES} from "./microvms.js";

const POLL_MS = 5000;
const DEFAULT_MEMORY_MIB = 512;

/** The account page. */
export function render(el) {
  document.title = "Account · Ember";
  const s = currentSession();
  const usage = h("div", {id: "usage"}, h("p", {class: "muted"}, "Counting…"));
  const quotas = h("div", {id: "quotas"});
  const error = errorLine("");
  const memoryOf = new Map(); // "image/version" → MiB

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
      card("Quotas", quotas)),
    card("Usage", usage));

  fill(quotas, quotaView(s.quotas));

  const stop = poll(async () => {
    const [vms, imgs] = await Promise.all([microvms.list(), images.list()]);
    const versionLists = await Promise.all(imgs.map((im) => images.versions(im.name).catch(() => [])));
    for (const [i, versions] of versionLists.entries()) {
      for (const v of versions) {
        const mib = v.resources && v.resources[0] ? v.resources[0].minimumMemoryInMiB : DEFAULT_MEMORY_MIB;
        memoryOf.set(`${imgs[i].name}/${v.imageVersion}`, mib);
      }
    }
    const byState = Object.fromEntries(STATES.map((st) => [st, 0]));
    let memory = 0;
    for (const vm of vms) {
      byState[vm.state]++;
      if (vm.state !== "TERMINATED") {
        memory += memoryOf.get(`${arnName(vm.imageArn)}/${vm.imageVersion}`) || DEFAULT_MEMORY_MIB;
      }
    }
    const live = vms.length - byState.TERMINATED;
    const versions = versionLists.reduce((n, list) => n + list.length, 0);
    const building = versionLists.flat().filter((v) => v.state === "PENDING" || v.state === "IN_PROGRESS").length;
    showError(error, "");
    fill(usage,
      h("div", {class: "stats"},
        stat("MicroVMs not terminated", live, "count-live"),
        stat("Memory they hold", memory >= 1024 ? `${(memory / 1024).toFixed(1)} GiB` : `${memory} MiB`, "memory"),
        stat("Images", imgs.length, "count-images"),
        stat("Image versions", versions, "count-versions"),
        stat("Builds in progress", building, "count-building")),
      table([{label: "State"}, {label: "MicroVMs", cls: "num"}],
        STATES.map((st) => h("tr", {}, h("td", {}, badge(st)), h("td", {class: "num"}, String(byState[st]))))),
      h("p", {class: "muted small"}, "SUSPENDED MicroVMs hold their memory and count against capacity until ",
        "they are terminated."));
  }, POLL_MS, (err) => showError(error, err.message));
  return stop;
}

function stat(label, value, id) {
  return h("div", {class: "stat"}, h("div", {class: "stat-value", id: `stat-${id}`}, String(value)),
    h("div", {class: "stat-label"}, label));
}

function quotaView(quotas) {
  if (quotas && typeof quotas === "object") {
    return table([{label: "Quota"}, {label: "Limit", cls: "num"}],
      Object.entries(quotas).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {class: "num"}, String(v)))));
  }
  return [
    h("p", {}, "Limits are settings of the server, not exposed by the API:"),
    h("ul", {class: "plain"},
      h("li", {}, "MicroVMs not terminated and the memory they hold: RunMicrovm answers ",
        h("code", {}, "ServiceQuotaExceededException"), " (402) beyond them."),
      h("li", {}, "RunMicrovm calls per second: ", h("code", {}, "ThrottlingException"), " (429) with ",
        h("code", {}, "Retry-After"), " beyond it."),
      h("li", {}, "Per VM: 128–32768 MiB of memory, up to 8 hours (suspended time counts), tokens of 1–60 minutes.")),
  ];
}
