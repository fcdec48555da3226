// The console's entry point: session check, the layout (left navigation), hash routing to the pages.
// Each page is a module whose render(el, params) fills ``el`` and returns a cleanup function (stop polls and
// streams) that runs when the user navigates away.

import {currentSession, loadSession, setSignedOutHandler, signOut} from "./api.js";
import * as account from "./pages/account.js";
import * as image from "./pages/image.js";
import * as images from "./pages/images.js";
import * as login from "./pages/login.js";
import * as metrics from "./pages/metrics.js";
import * as microvm from "./pages/microvm.js";
import * as microvms from "./pages/microvms.js";
import {fill, h} from "./util.js";

const ROUTES = [
  {pattern: /^\/images\/([^/]+)\/versions\/([^/]+)$/, page: image, nav: "images", params: ["image", "version"]},
  {pattern: /^\/images\/([^/]+)$/, page: image, nav: "images", params: ["image"]},
  {pattern: /^\/images$/, page: images, nav: "images"},
  {pattern: /^\/microvms\/([^/]+)$/, page: microvm, nav: "microvms", params: ["id"]},
  {pattern: /^\/microvms$/, page: microvms, nav: "microvms"},
  {pattern: /^\/account$/, page: account, nav: "account"},
  {pattern: /^\/metrics$/, page: metrics, nav: "metrics"},
];
const DEFAULT_ROUTE = "#/microvms";
const NAV = [
  ["microvms", "MicroVMs", "#/microvms"],
  ["images", "Images", "#/images"],
  ["metrics", "Metrics", "#/metrics"],
  ["account", "Account", "#/account"],
];

const root = document.getElementById("app");
let cleanup = null;
let pendingRoute = null;

function stopPage() {
  if (cleanup) {
    try { cleanup(); } catch (err) { console.error(err); }
  }
  cleanup = null;
}

function layout(active) {
  const s = currentSession();
  const main = h("main", {id: "page", class: "page"});
  const nav = h("nav", {class: "sidebar", "aria-label": "Console"},
    h("a", {class: "brand", href: DEFAULT_ROUTE}, h("span", {class: "brand-mark"}, "◆"), "Ember"),
    h("ul", {class: "nav"}, NAV.map(([key, label, href]) =>
      h("li", {}, h("a", {href, class: ["nav-link", key === active && "active"], "data-nav": key}, label)))),
    h("div", {class: "who"},
      h("div", {class: "who-label"}, "Account"),
      h("div", {class: "mono", id: "who-account"}, s.accountId),
      h("div", {class: "who-label"}, "Access key"),
      h("div", {class: "mono"}, s.accessKeyId),
      h("button", {class: "btn btn-ghost btn-small", id: "sign-out", type: "button", onclick: async () => {
        await signOut();
        location.hash = "#/login";
      }}, "Sign out")));
  fill(root, h("div", {class: "layout"}, nav, main));
  return main;
}

function route() {
  stopPage();
  const hash = location.hash || DEFAULT_ROUTE;
  const path = hash.replace(/^#/, "").split("?")[0];
  if (!currentSession()) {
    if (path !== "/login") pendingRoute = hash;
    fill(root);
    cleanup = login.render(root, {onSignedIn: () => {
      const target = pendingRoute && !pendingRoute.startsWith("#/login") ? pendingRoute : DEFAULT_ROUTE;
      pendingRoute = null;
      if (location.hash === target) route(); else location.hash = target;
    }});
    document.title = "Sign in · Ember";
    return;
  }
  if (path === "/login" || path === "/" || path === "") {
    location.hash = DEFAULT_ROUTE;
    return;
  }
  for (const r of ROUTES) {
    const m = path.match(r.pattern);
    if (!m) continue;
    const params = Object.fromEntries((r.params || []).map((name, i) => [name, decodeURIComponent(m[i + 1])]));
    const main = layout(r.nav);
    cleanup = r.page.render(main, params);
    return;
  }
  const main = layout(null);
  fill(main, h("div", {class: "card empty-page"}, h("h1", {}, "Not found"),
    h("p", {}, "No page at ", h("code", {}, hash), ". ", h("a", {href: DEFAULT_ROUTE}, "Go to MicroVMs"))));
}

setSignedOutHandler(() => {
  pendingRoute = location.hash;
  route();
});

async function start() {
  try {
    await loadSession();
  } catch (err) {
    console.error(err);
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
