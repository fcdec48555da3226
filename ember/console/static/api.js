// The console's only way to the server: the public API (the REST paths boto3 uses), authenticated by the
// console session cookie plus the session's CSRF token in X-Ember-Csrf on every call.

import {sha256Hex} from "./sha256.js";

const API = "/2025-09-09";
const CSRF_HEADER = "X-Ember-Csrf";
const MAX_PAGES = 40; // pages fetched at most when listing everything (40 × 50 items)

let session = null;
let onSignedOut = () => {};

/** An error answer of the API: ``code`` is the x-amzn-ErrorType (ResourceNotFoundException, …). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `${status} ${code || "error"}`);
    this.status = status;
    this.code = code || "";
  }
}

/** The signed-in session ({accountId, accessKeyId, csrfToken, expiresAt}) or null. */
export function currentSession() {
  return session;
}

/** Called with no arguments when a call finds the session gone (expired, signed out elsewhere). */
export function setSignedOutHandler(fn) {
  onSignedOut = fn;
}

async function errorFrom(response) {
  let code = response.headers.get("x-amzn-ErrorType") || "";
  code = code.split(":")[0];
  let message = "";
  try {
    const body = await response.json();
    message = body.message || body.Message || "";
    code = code || body.code || body.__type || "";
  } catch {
    message = response.statusText;
  }
  return new ApiError(response.status, code, message || `${response.status} ${response.statusText}`);
}

/** Sign in with a key pair; resolves to the session or throws ApiError (403 wrong pair, 429 throttled). */
export async function signIn(accessKeyId, secretAccessKey) {
  const response = await fetch("/console/session", {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({accessKeyId, secretAccessKey}),
  });
  if (!response.ok) throw await errorFrom(response);
  session = await response.json();
  return session;
}

/** The current session from the cookie, or null when not signed in. */
export async function loadSession() {
  const response = await fetch("/console/session", {credentials: "same-origin", headers: csrfHeaders()});
  session = response.ok ? await response.json() : null;
  return session;
}

/** End the session (the cookie is cleared by the server). */
export async function signOut() {
  if (session) {
    await fetch("/console/session", {method: "DELETE", credentials: "same-origin", headers: csrfHeaders()})
      .catch(() => {});
  }
  session = null;
}

function csrfHeaders(extra) {
  return {...(session ? {[CSRF_HEADER]: session.csrfToken} : {}), ...(extra || {})};
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** One API call: JSON in, JSON out (null for empty answers); throws ApiError. */
export async function call(method, path, {query, body, signal, raw, contentType, headers: extra} = {}) {
  const headers = csrfHeaders(extra);
  let payload;
  if (raw !== undefined) {
    payload = raw;
    headers["Content-Type"] = contentType || "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url(path, query), {method, headers, body: payload, credentials: "same-origin", signal});
  if (!response.ok) {
    const err = await errorFrom(response);
    if (response.status === 403 && session && !(await stillSignedIn())) {
      session = null;
      onSignedOut();
    }
    throw err;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

async function stillSignedIn() {
  const response = await fetch("/console/session", {credentials: "same-origin", headers: csrfHeaders()})
    .catch(() => null);
  return Boolean(response && response.ok);
}

/** Every item of a paginated List* operation (follows nextToken). */
export async function listAll(path, query = {}) {
  const items = [];
  let nextToken;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await call("GET", path, {query: {...query, maxResults: 50, nextToken}});
    items.push(...(page.items || []));
    nextToken = page.nextToken;
    if (!nextToken) break;
  }
  return items;
}

/**
 * Read an NDJSON log route; each parsed line goes to ``onLine``. With ``follow`` the server keeps the response
 * open until the build ends or the MicroVM terminates. Resolves when the stream ends; abort with ``signal``.
 */
export async function streamLines(path, {since = 0, follow = true, signal, onLine}) {
  const response = await fetch(url(path, {since, follow: follow ? "true" : undefined}), {
    headers: csrfHeaders(), credentials: "same-origin", signal,
  });
  if (!response.ok) throw await errorFrom(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, {stream: true});
    let nl;
    while ((nl = buffered.indexOf("\n")) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) onLine(JSON.parse(line));
    }
  }
}

const enc = encodeURIComponent;

// --- images -------------------------------------------------------------------------------------------------------
export const images = {
  list: (nameFilter) => listAll(`${API}/microvm-images`, {nameFilter}),
  get: (id) => call("GET", `${API}/microvm-images/${enc(id)}`),
  create: (body) => call("POST", `${API}/microvm-images`, {body}),
  update: (id, body) => call("PUT", `${API}/microvm-images/${enc(id)}`, {body}),
  remove: (id) => call("DELETE", `${API}/microvm-images/${enc(id)}`),
  versions: (id) => listAll(`${API}/microvm-images/${enc(id)}/versions`),
  version: (id, v) => call("GET", `${API}/microvm-images/${enc(id)}/versions/${enc(v)}`),
  setStatus: (id, v, status) => call("PATCH", `${API}/microvm-images/${enc(id)}/versions/${enc(v)}`,
    {body: {status}}),
  builds: (id, v) => listAll(`${API}/microvm-images/${enc(id)}/versions/${enc(v)}/builds`),
  build: (id, v, b) => call("GET", `${API}/microvm-images/${enc(id)}/versions/${enc(v)}/builds/${enc(b)}`),
  buildLogPath: (id, v, b) => `${API}/microvm-images/${enc(id)}/versions/${enc(v)}/builds/${enc(b)}/logs`,
  managed: () => listAll(`${API}/managed-microvm-images`),
};

// --- MicroVMs -----------------------------------------------------------------------------------------------------
export const microvms = {
  list: (query = {}) => listAll(`${API}/microvms`, query),
  get: (id) => call("GET", `${API}/microvms/${enc(id)}`),
  run: (body) => call("POST", `${API}/microvms`, {body}),
  suspend: (id) => call("POST", `${API}/microvms/${enc(id)}/suspend`),
  resume: (id) => call("POST", `${API}/microvms/${enc(id)}/resume`),
  terminate: (id) => call("DELETE", `${API}/microvms/${enc(id)}`),
  token: (id, port, minutes) => call("POST", `${API}/microvms/${enc(id)}/auth-token`,
    {body: {expirationInMinutes: minutes, allowedPorts: [{port}]}}),
  shellToken: (id, minutes) => call("POST", `${API}/microvms/${enc(id)}/shell-auth-token`,
    {body: {expirationInMinutes: minutes}}),
  logPath: (id) => `${API}/microvms/${enc(id)}/logs`,
};

// --- Ember's own routes -------------------------------------------------------------------------------------------
/** The server's own measurements over the last ``windowSeconds``. */
export const metrics = (windowSeconds) => call("GET", "/ember/metrics", {query: {windowSeconds}});

/** The caller's account: {accountId, accessKeyId, quotas: {name: {value, unit, quotaCode, …}}, usage}. */
export const account = () => call("GET", "/ember/account");

/** Upload a zip (Blob) as a code artifact; resolves to the URI for codeArtifact.uri. */
export async function uploadArtifact(blob) {
  const digest = await sha256Hex(blob);
  const answer = await call("POST", "/ember/artifacts", {raw: blob, contentType: "application/zip",
    headers: {"X-Ember-Content-SHA256": digest}});
  return answer.uri;
}

/** The region the server signs for, read from an ARN it returned ("us-east-1" until one is seen). */
export function regionOf(arn) {
  const parts = String(arn || "").split(":");
  return parts.length > 3 && parts[3] ? parts[3] : "us-east-1";
}

/** A managed network connector's ARN (ALL_INGRESS, SHELL_INGRESS, INTERNET_EGRESS, …). */
export function connectorArn(region, name) {
  return `arn:aws:lambda:${region}:aws:network-connector:aws-network-connector:${name}`;
}
