// One image: its versions (live), the selected version's settings and builds, and the build's live log.

import {images} from "../api.js";
import {logView} from "../logview.js";
import {
  arnName, badge, card, drawIfChanged, errorLine, facts, fill, fmtBytes, fmtTime, h, poll, showError, table, timeCell,
  toast,
} from "../util.js";

const POLL_MS = 2000;
const DONE_BUILD = new Set(["SUCCESSFUL", "FAILED"]);

/** The image detail page; ``version`` (optional) selects a version, else the newest. */
export function render(el, {image, version}) {
  document.title = `${image} · Images · Ember`;
  const stops = [];
  const head = h("header", {class: "page-head"},
    h("div", {class: "crumbs"}, h("a", {href: "#/images"}, "Images"), " / "),
    h("h1", {}, image, " ", h("span", {id: "image-state"})));
  const summary = h("div", {id: "image-summary"});
  const versionsBox = h("div", {id: "versions"}, h("p", {class: "muted"}, "Loading…"));
  const versionBox = h("div", {id: "version-detail"});
  const logBox = h("div", {id: "build-log-box"});
  const error = errorLine("");
  let selected = version || null;
  let shownBuild = null;
  let build = null;
  let logStop = null;

  el.append(head, error,
    card("Image", summary),
    card("Versions", versionsBox),
    h("div", {class: "split even"}, card("Version", versionBox, h("span", {id: "version-actions"})),
      card("Build log", logBox)));

  const stop = poll(async () => {
    const [img, versions] = await Promise.all([images.get(image), images.versions(image)]);
    versions.sort((a, b) => Number(b.imageVersion) - Number(a.imageVersion) ||
      String(b.imageVersion).localeCompare(String(a.imageVersion)));
    if (!selected && versions.length) selected = versions[0].imageVersion;
    showError(error, "");
    drawIfChanged(head.querySelector("#image-state"), img.state, () => badge(img.state));
    drawIfChanged(summary, img, () => facts([
      ["ARN", h("span", {class: "mono"}, img.imageArn)],
      ["Latest active version", img.latestActiveImageVersion || "–"],
      ["Latest failed version", img.latestFailedImageVersion || "–"],
      ["Created", fmtTime(img.createdAt)],
      ["Updated", fmtTime(img.updatedAt)],
    ]));
    drawVersions(versions);
    const current = versions.find((v) => v.imageVersion === selected);
    if (current) await drawVersion(current);
  }, POLL_MS, (err) => showError(error, err.status === 404 ? `No image named ${image}.` : err.message));
  stops.push(stop);

  function drawVersions(versions) {
    drawIfChanged(versionsBox, {versions, selected}, () => versionsTable(versions));
  }

  function versionsTable(versions) {
    const rows = versions.map((v) => h("tr", {class: v.imageVersion === selected && "selected",
      "data-version": v.imageVersion},
    h("td", {class: "num"}, h("a", {href: `#/images/${encodeURIComponent(image)}/versions/${v.imageVersion}`},
      v.imageVersion)),
    h("td", {}, badge(v.state)),
    h("td", {}, badge(v.status)),
    h("td", {class: "num"}, memoryOf(v)),
    h("td", {class: "small"}, hookNames(v.hooks).join(", ") || "–"),
    h("td", {}, timeCell(v.createdAt)),
    h("td", {class: "reason"}, v.stateReason || "")));
    return table([{label: "Version", cls: "num"}, {label: "State"}, {label: "Status"},
      {label: "Memory", cls: "num"}, {label: "Hooks"}, {label: "Created"}, {label: "Reason"}], rows,
    "No versions.");
  }

  async function drawVersion(v) {
    const builds = await images.builds(image, v.imageVersion);
    const latestBuild = builds[builds.length - 1];
    if (latestBuild) build = await images.build(image, v.imageVersion, latestBuild.buildId);
    const actions = el.querySelector("#version-actions");
    if (actions) {
      const runLink = v.state === "SUCCESSFUL" && v.status === "ACTIVE" ?
        h("a", {class: "btn btn-primary btn-small", id: "run-from-version",
          href: `#/microvms?image=${encodeURIComponent(image)}&version=${encodeURIComponent(v.imageVersion)}`},
        "Run a MicroVM") : null;
      const toggle = v.state === "SUCCESSFUL" ? h("button", {class: "btn btn-small", type: "button", onclick: async () => {
        try {
          await images.setStatus(image, v.imageVersion, v.status === "ACTIVE" ? "INACTIVE" : "ACTIVE");
          toast(`Version ${v.imageVersion} is now ${v.status === "ACTIVE" ? "INACTIVE" : "ACTIVE"}`);
        } catch (err) {
          toast(err.message, "error");
        }
      }}, v.status === "ACTIVE" ? "Deactivate" : "Activate") : null;
      drawIfChanged(actions, [v.imageVersion, v.state, v.status], () => [toggle, runLink]);
    }
    drawIfChanged(versionBox, {v, builds, snap: build && build.snapshotBuild}, () => [
      facts([
        ["Version", h("span", {}, v.imageVersion, " ", badge(v.state), " ", badge(v.status))],
        ["Base image", arnName(v.baseImageArn)],
        ["Code artifact", h("span", {class: "mono small break"}, v.codeArtifact && v.codeArtifact.uri)],
        ["Memory", memoryOf(v)],
        ["Hooks", hookNames(v.hooks).length ? `${hookNames(v.hooks).join(", ")} on port ${v.hooks.port}` : "none"],
        ["Environment", envText(v.environmentVariables)],
        ["Egress", (v.egressNetworkConnectors || []).map(arnName).join(", ") || "none"],
        v.description ? ["Description", v.description] : null,
        v.stateReason ? ["Reason", h("span", {class: "reason"}, v.stateReason)] : null,
      ]),
      h("h3", {}, "Builds"),
      table([{label: "Build"}, {label: "State"}, {label: "Architecture"}, {label: "Created"}, {label: "Snapshot"}],
        builds.map((b) => h("tr", {"data-build": b.buildId},
          h("td", {class: "mono small"}, b.buildId.slice(0, 12)),
          h("td", {}, badge(b.buildState)),
          h("td", {class: "small"}, `${b.architecture} · ${b.chipset}`),
          h("td", {}, timeCell(b.createdAt)),
          h("td", {class: "small"}, snapshotText(build && build.buildId === b.buildId ? build : null)))),
        "No builds yet.")]);
    if (latestBuild && shownBuild !== `${v.imageVersion}/${latestBuild.buildId}`) {
      shownBuild = `${v.imageVersion}/${latestBuild.buildId}`;
      if (logStop) logStop();
      const view = logView(images.buildLogPath(image, v.imageVersion, latestBuild.buildId), {
        id: "build-log",
        emptyText: "Waiting for the build's first line…",
        isDone: async () => DONE_BUILD.has((await images.build(image, v.imageVersion, latestBuild.buildId))
          .buildState),
      });
      logStop = view.stop;
      fill(logBox, h("div", {class: "muted small"}, `Version ${v.imageVersion}, build `,
        h("span", {class: "mono"}, latestBuild.buildId.slice(0, 12))), view.el);
    }
  }

  return () => {
    for (const s of stops) s();
    if (logStop) logStop();
  };
}

function memoryOf(v) {
  const mib = v.resources && v.resources[0] ? v.resources[0].minimumMemoryInMiB : 512;
  return mib >= 1024 ? `${(mib / 1024).toFixed(mib % 1024 ? 1 : 0)} GiB` : `${mib} MiB`;
}

function hookNames(hooks) {
  if (!hooks) return [];
  const on = (group) => Object.entries(group || {}).filter(([k, v]) => v === "ENABLED" && !k.endsWith("Seconds"))
    .map(([k]) => k);
  return [...on(hooks.microvmImageHooks), ...on(hooks.microvmHooks)];
}

function envText(env) {
  const entries = Object.entries(env || {});
  if (!entries.length) return "none";
  return h("span", {class: "mono small"}, entries.map(([k, v]) => `${k}=${v}`).join("  "));
}

function snapshotText(build) {
  const s = build && build.snapshotBuild;
  if (!s) return "–";
  return `memory ${fmtBytes(s.memorySnapshotSizeInBytes)} · disk ${fmtBytes(s.diskSnapshotSizeInBytes)}`;
}
