// Sign in with an access key pair. The pair is sent once to POST /console/session; the page keeps only the
// session the server answers (the secret is never stored in the browser).

import {signIn} from "../api.js";
import {errorLine, h, showError} from "../util.js";

/** The sign-in form; ``onSignedIn`` runs once the server accepted the key pair. */
export function render(el, {onSignedIn}) {
  const keyId = h("input", {id: "access-key-id", name: "accessKeyId", autocomplete: "username", required: true,
    spellcheck: "false", class: "mono", placeholder: "AKEM…"});
  const secret = h("input", {id: "secret-access-key", name: "secretAccessKey", type: "password", required: true,
    autocomplete: "current-password", class: "mono"});
  const error = errorLine("");
  const submit = h("button", {class: "btn btn-primary btn-wide", type: "submit", id: "sign-in"}, "Sign in");
  const form = h("form", {class: "login-form", onsubmit: async (event) => {
    event.preventDefault();
    showError(error, "");
    submit.disabled = true;
    submit.textContent = "Signing in…";
    try {
      await signIn(keyId.value.trim(), secret.value);
      secret.value = "";
      onSignedIn();
    } catch (err) {
      secret.value = "";
      if (err.status === 403) showError(error, "Wrong access key id or secret access key.");
      else if (err.status === 429) showError(error, `Too many sign-in attempts: ${err.message}`);
      else showError(error, `Sign-in failed: ${err.message}`);
      secret.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "Sign in";
    }
  }},
  h("label", {for: "access-key-id"}, "Access key ID"), keyId,
  h("label", {for: "secret-access-key"}, "Secret access key"), secret,
  error, submit);

  el.append(h("div", {class: "login-page"},
    h("div", {class: "login-card"},
      h("div", {class: "login-brand"}, h("span", {class: "brand-mark"}, "◆"), "Ember"),
      h("h1", {}, "Sign in to the console"),
      h("p", {class: "muted"}, "Use an access key pair of your account. On the server, ",
        h("code", {}, "ember credentials"), " prints the root pair."),
      form,
      h("p", {class: "muted small"}, "The key pair is checked once; the console then works with a session cookie.",
        " The secret is not kept in the browser."))));
  keyId.focus();
  return () => {};
}
