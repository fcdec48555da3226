// Images: the account's images (live), and the "build from folder / zip" form: the folder is zipped in the
// browser (zip.js), the zip uploaded as a code artifact (POST /ember/artifacts), then CreateMicrovmImage, or
// UpdateMicrovmImage when the name exists (a new version), with what `ember image build` sends.

import {ApiError, connectorArn, images, regionOf, uploadArtifact} from "../api.js";
import {zipFolder, zipNames} from "../zip.js";
import {arnName, badge, card, errorLine, fill, fmtBytes, h, poll, showError, table, timeCell, toast} from "../util.js";

const POLL_MS = 2000;
const DEFAULT_BASE = "python-3.11";
const BUILD_ROLE_ARN = "arn:aws:iam::000000000000:role/ember-build";
/** Ember has no IAM: the role is only checked against the model's pattern and recorded (as the CLI sends). */
const HOOKS = ["ready", "validate", "run", "resume", "suspend", "terminate"];
const IMAGE_HOOKS = ["ready", "validate"];
const NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;
const ENV_LINE_RE = /^([^\s=]+)=(.*)$/;

/** The images page. */
export function render(el) {
  document.title = "Images · Ember";
  const filter = h("input", {type: "search", id: "image-filter", placeholder: "Filter by name", class: "filter"});
  const listBox = h("div", {id: "image-list"}, h("p", {class: "muted"}, "Loading…"));
  const listError = errorLine("");
  let latest = [];

  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const rows = latest.filter((im) => !q || im.name.toLowerCase().includes(q)).map((im) =>
      h("tr", {"data-image": im.name},
        h("td", {}, h("a", {href: `#/images/${encodeURIComponent(im.name)}`, class: "strong"}, im.name)),
        h("td", {}, badge(im.state)),
        h("td", {class: "num"}, im.latestActiveImageVersion || "–"),
        h("td", {class: "num"}, im.latestFailedImageVersion || "–"),
        h("td", {}, timeCell(im.createdAt))));
    fill(listBox, table([{label: "Name"}, {label: "State"}, {label: "Active version", cls: "num"},
      {label: "Failed version", cls: "num"}, {label: "Created"}], rows,
    q ? "No image matches the filter." : "No images yet: build one from a folder or a zip."));
  };
  filter.addEventListener("input", draw);

  const stop = poll(async () => {
    latest = await images.list();
    latest.sort((a, b) => a.name.localeCompare(b.name));
    showError(listError, "");
    draw();
  }, POLL_MS, (err) => showError(listError, `Could not list images: ${err.message}`));

  el.append(
    h("header", {class: "page-head"}, h("h1", {}, "Images"),
      h("p", {class: "muted"}, "An image version is a MicroVM built from a Dockerfile and snapshotted once its app is ",
        "ready; every MicroVM is a clone of that snapshot.")),
    h("div", {class: "split"},
      card("Your images", [h("div", {class: "toolbar"}, filter), listError, listBox]),
      buildForm()));
  return stop;
}

/** The "build from folder / zip" card. */
function buildForm() {
  const name = h("input", {id: "build-name", name: "name", required: true, placeholder: "code-interpreter",
    pattern: "[a-zA-Z0-9_\\-]{1,64}", class: "mono"});
  const folder = h("input", {id: "build-folder", type: "file", webkitdirectory: true, multiple: true});
  const zip = h("input", {id: "build-zip", type: "file", accept: ".zip,application/zip"});
  const sourceNote = h("div", {class: "muted small", id: "build-source"}, "No source chosen.");
  const base = h("select", {id: "build-base"}, h("option", {value: ""}, DEFAULT_BASE));
  const memory = h("input", {id: "build-memory", type: "number", min: 128, max: 32768, step: 128, value: 512});
  const port = h("input", {id: "build-hooks-port", type: "number", min: 1, max: 65535, value: 8080});
  const hookBoxes = HOOKS.map((hook) => h("input", {type: "checkbox", id: `hook-${hook}`, value: hook}));
  const env = h("textarea", {id: "build-env", rows: 2, class: "mono", placeholder: "KEY=value, one per line"});
  const egress = h("input", {type: "checkbox", id: "build-egress"});
  const description = h("input", {id: "build-description", placeholder: "optional"});
  const error = errorLine("");
  const progress = h("div", {class: "muted small", id: "build-progress"});
  const submit = h("button", {class: "btn btn-primary", type: "submit", id: "build-submit"}, "Build image");
  let source = null; // {kind: "folder"|"zip", files}

  images.managed().then((bases) => {
    const arns = bases.map((b) => b.imageArn);
    fill(base, arns.map((arn) => h("option", {value: arn, selected: arnName(arn) === DEFAULT_BASE}, arnName(arn))));
  }).catch(() => {});

  folder.addEventListener("change", () => {
    if (!folder.files.length) return;
    zip.value = "";
    source = {kind: "folder", files: [...folder.files]};
    const top = (folder.files[0].webkitRelativePath || "").split("/")[0];
    sourceNote.textContent = `Folder ${top || "(chosen)"}: ${folder.files.length} files`;
    if (!name.value && top) name.value = top.replace(/[^a-zA-Z0-9_-]/g, "-").slice(0, 64);
  });
  zip.addEventListener("change", () => {
    if (!zip.files.length) return;
    folder.value = "";
    source = {kind: "zip", files: [zip.files[0]]};
    sourceNote.textContent = `Zip ${zip.files[0].name}: ${fmtBytes(zip.files[0].size)}`;
    if (!name.value) name.value = zip.files[0].name.replace(/\.zip$/i, "").replace(/[^a-zA-Z0-9_-]/g, "-").slice(0, 64);
  });

  const form = h("form", {id: "build-form", class: "form", onsubmit: async (event) => {
    event.preventDefault();
    showError(error, "");
    submit.disabled = true;
    try {
      const target = await startBuild({
        name: name.value.trim(), source, baseArn: base.value, memory: Number(memory.value),
        hooksPort: Number(port.value), hooks: hookBoxes.filter((b) => b.checked).map((b) => b.value),
        env: env.value, egress: egress.checked, description: description.value.trim(),
        onProgress: (text) => { progress.textContent = text; },
      });
      toast(`Build of ${target.name} version ${target.version} started`);
      location.hash = `#/images/${encodeURIComponent(target.name)}/versions/${encodeURIComponent(target.version)}`;
    } catch (err) {
      showError(error, err.message);
      progress.textContent = "";
    } finally {
      submit.disabled = false;
    }
  }},
  h("label", {for: "build-name"}, "Image name"), name,
  h("div", {class: "field-row"},
    h("div", {class: "field"}, h("label", {for: "build-folder"}, "Folder"), folder),
    h("div", {class: "field"}, h("label", {for: "build-zip"}, "or zip file"), zip)),
  sourceNote,
  h("div", {class: "field-row"},
    h("div", {class: "field"}, h("label", {for: "build-base"}, "Base image"), base),
    h("div", {class: "field"}, h("label", {for: "build-memory"}, "Memory (MiB)"), memory)),
  h("fieldset", {class: "hooks"}, h("legend", {}, "Hooks the app serves"),
    h("div", {class: "checks"}, HOOKS.map((hook, i) => h("label", {class: "check"}, hookBoxes[i], hook))),
    h("div", {class: "field-inline"}, h("label", {for: "build-hooks-port"}, "on port"), port)),
  h("label", {for: "build-env"}, "Environment variables"), env,
  h("label", {for: "build-description"}, "Description"), description,
  h("label", {class: "check"}, egress, "Internet egress for the MicroVMs (INTERNET_EGRESS)"),
  error, progress,
  h("div", {class: "form-actions"}, submit));

  return card("Build from a folder or a zip", [
    h("p", {class: "muted small"}, "The folder or zip needs a ", h("code", {}, "Dockerfile"), " at its root. ",
      "Building an existing name adds a version."),
    form]);
}

/** Zip (if needed), check, upload, create or update; resolves to {name, version}. */
async function startBuild({name, source, baseArn, memory, hooksPort, hooks, env, egress, description, onProgress}) {
  if (!NAME_RE.test(name)) throw new Error("Image name: 1 to 64 of a-z A-Z 0-9 - _");
  if (!source) throw new Error("Choose a folder or a zip file with a Dockerfile at its root.");
  let blob;
  if (source.kind === "folder") {
    onProgress("Zipping the folder…");
    const zipped = await zipFolder(source.files);
    if (!zipped.names.includes("Dockerfile")) {
      throw new Error("The folder has no Dockerfile at its root.");
    }
    blob = zipped.blob;
  } else {
    blob = source.files[0];
    let names;
    try {
      names = zipNames(await blob.arrayBuffer());
    } catch (err) {
      throw new Error(`${source.files[0].name}: ${err.message}`);
    }
    if (!names.includes("Dockerfile")) {
      throw new Error(`${source.files[0].name} has no Dockerfile at its root (found: ${names.slice(0, 5).join(", ")}` +
        `${names.length > 5 ? ", …" : ""}).`);
    }
  }
  const environmentVariables = {};
  for (const raw of env.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const m = line.match(ENV_LINE_RE);
    if (!m) throw new Error(`Environment variables: "${line}" is not KEY=value`);
    environmentVariables[m[1]] = m[2];
  }
  onProgress(`Uploading ${fmtBytes(blob.size)}…`);
  const uri = await uploadArtifact(blob);
  const region = regionOf(baseArn);
  const body = {
    baseImageArn: baseArn || `arn:aws:lambda:${region}:aws:microvm-image:${DEFAULT_BASE}`,
    buildRoleArn: BUILD_ROLE_ARN,
    codeArtifact: {uri},
    resources: [{minimumMemoryInMiB: memory}],
    hooks: hooksConfig(hooks, hooksPort),
  };
  if (Object.keys(environmentVariables).length) body.environmentVariables = environmentVariables;
  if (egress) body.egressNetworkConnectors = [connectorArn(region, "INTERNET_EGRESS")];
  if (description) body.description = description;

  let exists = true;
  try {
    await images.get(name);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    exists = false;
  }
  onProgress(exists ? "Adding a version…" : "Creating the image…");
  const answer = exists ? await images.update(name, body) : await images.create({name, ...body});
  return {name, version: answer.imageVersion};
}

/** The ``hooks`` member from hook names, as the SDK's hooks_config builds it. */
function hooksConfig(names, port) {
  const config = {port: port || 8080};
  const image = Object.fromEntries(names.filter((n) => IMAGE_HOOKS.includes(n)).map((n) => [n, "ENABLED"]));
  const microvm = Object.fromEntries(names.filter((n) => !IMAGE_HOOKS.includes(n)).map((n) => [n, "ENABLED"]));
  if (Object.keys(image).length) config.microvmImageHooks = image;
  if (Object.keys(microvm).length) config.microvmHooks = microvm;
  return config;
}
