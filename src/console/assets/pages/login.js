// Sign-in: a reviewer or admin API key is exchanged for a session cookie (HttpOnly, SameSite=Strict).
import { ApiError, request } from "../api.js";
import { h, replace } from "../dom.js";
import { clearProblems, formError, setFieldError, showProblems } from "../forms.js";

/**
 * @param {HTMLElement} main
 * @param {{ message?: string, onSignedIn: (session: any) => void }} options
 */
export function loginPage(main, { message, onSignedIn }) {
  document.title = "Sign in · Warden console";
  const input = h("input", { type: "password", id: "api-key", name: "apiKey", autocomplete: "off", spellcheck: "false", "aria-describedby": "api-key-hint", required: true });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      { novalidate: true, "aria-labelledby": "login-title" },
      formError(),
      h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), input, h("p", { class: "hint", id: "api-key-hint" }, "A reviewer or admin key (wdn_…). Agent keys cannot sign in.")),
      h("div", { class: "actions" }, button),
    )
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    const apiKey = /** @type {HTMLInputElement} */ (input).value.trim();
    if (!apiKey) {
      setFieldError(input, "enter an API key");
      input.focus();
      return;
    }
    button.setAttribute("disabled", "");
    try {
      const { data } = await request("POST", "/console/session", { body: { apiKey } });
      /** @type {HTMLInputElement} */ (input).value = "";
      onSignedIn(data);
    } catch (error) {
      if (error instanceof ApiError) showProblems(form, error.problems, error.message);
      else showProblems(form, [], String(error));
    } finally {
      button.removeAttribute("disabled");
    }
  });
  replace(
    main,
    h(
      "section",
      { class: "panel login" },
      h("h1", { id: "login-title", tabindex: "-1" }, h("span", { "aria-hidden": "true" }, "⬢"), " Sign in to Warden"),
      message ? h("p", { class: "notice", role: "status" }, message) : null,
      form,
    ),
  );
  input.focus();
}
