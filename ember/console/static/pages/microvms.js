// MicroVMs: the live table (polled every 2 s) with state counts and filters, the row actions, and the run form.

import {connectorArn, images, microvms, regionOf} from "../api.js";
import {
  arnName, badge, card, drawIfChanged, errorLine, fill, h, poll, routeQuery, showError, table, timeCell, toast,
} from "../util.js";

const POLL_MS = 2000;
export const STATES = ["PENDING", "RUNNING", "SUSPENDING", "SUSPENDED", "TERMINATING", "TERMINATED"];
const LIVE = "live";
const ALL = "all";

/** The MicroVMs page; ``?image=&version=`` in the hash preselects the run form. */
export function render(el) {
  document.title = "MicroVMs · Ember";
  const query = routeQuery();
  const stateFilter = h("select", {id: "state-filter"},
    h("option", {value: LIVE}, "Not terminated"), h("option", {value: ALL}, "All states"),
    STATES.map((s) => h("option", {value: s}, s)));
  const imageFilter = h("select", {id: "image-filter"}, h("option", {value: ""}, "All images"));
  const search = h("input", {type: "search", id: "microvm-search", placeholder: "Filter by id", class: "filter mono"});
  const counts = h("div", {class: "counts", id: "state-counts"});
  const listBox = h("div", {id: "microvm-list"}, h("p", {class: "muted"}, "Loading…"));
  const error = errorLine("");
  let latest = [];

  const draw = () => {
    const state = stateFilter.value;
    const img = imageFilter.value;
    const q = search.value.trim().toLowerCase();
    const shown = latest.filter((vm) =>
      (state === ALL || (state === LIVE ? vm.state !== "TERMINATED" : vm.state === state)) &&
      (!img || arnName(vm.imageArn) === img) && (!q || vm.microvmId.includes(q)));
    shown.sort((a, b) => b.startedAt - a.startedAt);
    drawIfChanged(listBox, {shown}, () => table(
      [{label: "MicroVM"}, {label: "State"}, {label: "Image"}, {label: "Version", cls: "num"}, {label: "Started"},
        {label: "", cls: "actions"}],
      shown.map((vm) => h("tr", {"data-microvm": vm.microvmId, "data-state": vm.state},
        h("td", {class: "id-cell"}, h("a", {href: `#/microvms/${vm.microvmId}`, class: "mono", title: vm.microvmId},
          vm.microvmId)),
        h("td", {}, badge(vm.state)),
        h("td", {}, h("a", {href: `#/images/${encodeURIComponent(arnName(vm.imageArn))}`}, arnName(vm.imageArn))),
        h("td", {class: "num"}, vm.imageVersion),
        h("td", {}, timeCell(vm.startedAt)),
        h("td", {class: "actions"}, actionButtons(vm, {small: true})))),
      latest.length ? "No MicroVM matches the filters." : "No MicroVMs yet: run one with the form."));
    const byState = Object.fromEntries(STATES.map((s) => [s, 0]));
    for (const vm of latest) byState[vm.state] = (byState[vm.state] || 0) + 1;
    drawIfChanged(counts, {byState, state}, () => STATES.map((s) =>
      h("button", {type: "button", class: ["count", stateFilter.value === s && "active"], "data-count": s,
        onclick: () => { stateFilter.value = stateFilter.value === s ? LIVE : s; draw(); }},
      badge(s), h("span", {class: "count-n"}, String(byState[s])))));
  };
  for (const input of [stateFilter, imageFilter]) input.addEventListener("change", draw);
  search.addEventListener("input", draw);

  const stop = poll(async () => {
    latest = await microvms.list();
    showError(error, "");
    const names = [...new Set(latest.map((vm) => arnName(vm.imageArn)))].sort();
    drawIfChanged(imageFilter, names, () => [h("option", {value: ""}, "All images"),
      names.map((n) => h("option", {value: n, selected: n === imageFilter.value}, n))]);
    draw();
  }, POLL_MS, (err) => showError(error, `Could not list MicroVMs: ${err.message}`));

  el.append(
    h("header", {class: "page-head"}, h("h1", {}, "MicroVMs"),
      h("p", {class: "muted"}, "Each MicroVM is a clone of an image snapshot with its own endpoint. Idle ones are ",
        "suspended to disk and resumed by the next request.")),
    counts,
    h("div", {class: "split"},
      card("MicroVMs", [h("div", {class: "toolbar"}, stateFilter, imageFilter, search), error, listBox]),
      runForm(query)));
  return stop;
}

/** Suspend / Resume / Terminate buttons for the VM's state. */
export function actionButtons(vm, {small = false, onDone} = {}) {
  const act = (label, verb, fn, tone) => h("button", {type: "button", class: ["btn", small && "btn-small", tone],
    "data-action": verb, onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        await fn(vm.microvmId);
        toast(`${label}: ${vm.microvmId.slice(0, 12)}…`);
        if (onDone) onDone();
      } catch (err) {
        toast(`${label} failed: ${err.message}`, "error");
        button.disabled = false;
      }
    }}, label);
  const buttons = [];
  if (vm.state === "RUNNING") buttons.push(act("Suspend", "suspend", microvms.suspend));
  if (vm.state === "SUSPENDED") buttons.push(act("Resume", "resume", microvms.resume));
  if (vm.state !== "TERMINATED" && vm.state !== "TERMINATING") {
    buttons.push(act("Terminate", "terminate", microvms.terminate, "btn-danger"));
  }
  return h("span", {class: "btn-group"}, buttons);
}

/** The run form: image and version, idle policy, maximum duration, run hook payload, connectors. */
function runForm(query) {
  const image = h("select", {id: "run-image", required: true}, h("option", {value: ""}, "Loading images…"));
  const version = h("select", {id: "run-version"}, h("option", {value: ""}, "Latest active"));
  const idleOn = h("input", {type: "checkbox", id: "run-idle-on", checked: true});
  const idle = h("input", {type: "number", id: "run-idle", min: 60, value: 300});
  const suspendedFor = h("input", {type: "number", id: "run-suspended-for", min: 0, value: 3600});
  const autoResume = h("input", {type: "checkbox", id: "run-auto-resume", checked: true});
  const maxDuration = h("input", {type: "number", id: "run-max-duration", min: 1, max: 28800, placeholder: "28800"});
  const payload = h("textarea", {id: "run-payload", rows: 3, class: "mono", placeholder: "{\"tenant\": \"demo\"}"});
  const shell = h("input", {type: "checkbox", id: "run-shell"});
  const egress = h("input", {type: "checkbox", id: "run-egress"});
  const error = errorLine("");
  const submit = h("button", {class: "btn btn-primary", type: "submit", id: "run-submit"}, "Run MicroVM");
  const idleFields = h("div", {class: "field-row", id: "idle-fields"},
    h("div", {class: "field"}, h("label", {for: "run-idle"}, "Suspend after idle (s)"), idle),
    h("div", {class: "field"}, h("label", {for: "run-suspended-for"}, "Stay suspended (s, 0 = no limit)"),
      suspendedFor));
  idleOn.addEventListener("change", () => {
    idleFields.classList.toggle("disabled", !idleOn.checked);
    for (const input of [idle, suspendedFor, autoResume]) input.disabled = !idleOn.checked;
  });
  let known = [];

  const loadVersions = async () => {
    fill(version, h("option", {value: ""}, "Latest active"));
    if (!image.value) return;
    const versions = await images.versions(image.value).catch(() => []);
    const usable = versions.filter((v) => v.state === "SUCCESSFUL" && v.status === "ACTIVE")
      .sort((a, b) => Number(b.imageVersion) - Number(a.imageVersion));
    for (const v of usable) {
      version.append(h("option", {value: v.imageVersion, selected: v.imageVersion === query.version},
        `Version ${v.imageVersion}`));
    }
  };
  image.addEventListener("change", loadVersions);
  images.list().then((list) => {
    known = list;
    const runnable = list.filter((im) => im.latestActiveImageVersion);
    fill(image, runnable.length ? null : h("option", {value: ""}, "No image ready yet"),
      runnable.map((im) => h("option", {value: im.name, selected: im.name === query.image}, im.name)));
    return loadVersions();
  }).catch((err) => showError(error, `Could not list images: ${err.message}`));

  const form = h("form", {id: "run-form", class: "form", onsubmit: async (event) => {
    event.preventDefault();
    showError(error, "");
    if (!image.value) return showError(error, "Choose an image (build one on the Images page first).");
    const text = payload.value.trim();
    if (text) {
      try {
        JSON.parse(text);
      } catch (err) {
        return showError(error, `Payload is not valid JSON: ${err.message}`);
      }
    }
    const region = regionOf((known.find((im) => im.name === image.value) || {}).imageArn);
    const body = {imageIdentifier: image.value};
    if (version.value) body.imageVersion = version.value;
    if (idleOn.checked) {
      body.idlePolicy = {maxIdleDurationSeconds: Number(idle.value), suspendedDurationSeconds: Number(suspendedFor.value),
        autoResumeEnabled: autoResume.checked};
    }
    if (maxDuration.value) body.maximumDurationInSeconds = Number(maxDuration.value);
    if (text) body.runHookPayload = text;
    if (shell.checked) body.ingressNetworkConnectors = ["ALL_INGRESS", "SHELL_INGRESS"].map((n) => connectorArn(region, n));
    if (egress.checked) body.egressNetworkConnectors = [connectorArn(region, "INTERNET_EGRESS")];
    submit.disabled = true;
    try {
      const vm = await microvms.run(body);
      toast(`MicroVM ${vm.microvmId} is ${vm.state}`);
      location.hash = `#/microvms/${vm.microvmId}`;
    } catch (err) {
      showError(error, err.message);
    } finally {
      submit.disabled = false;
    }
  }},
  h("div", {class: "field-row"},
    h("div", {class: "field"}, h("label", {for: "run-image"}, "Image"), image),
    h("div", {class: "field"}, h("label", {for: "run-version"}, "Version"), version)),
  h("fieldset", {}, h("legend", {}, h("label", {class: "check"}, idleOn, "Idle policy")),
    idleFields,
    h("label", {class: "check"}, autoResume, "Resume on the next request (auto-resume)")),
  h("label", {for: "run-max-duration"}, "Maximum duration (s, suspended time counts)"), maxDuration,
  h("label", {for: "run-payload"}, "Run hook payload (JSON)"), payload,
  h("div", {class: "checks"},
    h("label", {class: "check"}, shell, "Web shell (SHELL_INGRESS)"),
    h("label", {class: "check"}, egress, "Internet egress")),
  error,
  h("div", {class: "form-actions"}, submit));
  return card("Run a MicroVM", form);
}
