// Errors shown at the field they concern, whether found here or by the server (which checks every
// form again: its `problems` carry a path such as `reason` or `policies.large-refunds.action`).
import { h } from "./dom.js";

/** @param {HTMLFormElement} form */
export function clearProblems(form) {
  for (const element of form.querySelectorAll("[data-error-for]")) element.remove();
  for (const element of form.querySelectorAll("[aria-invalid]")) {
    element.removeAttribute("aria-invalid");
    const describedBy = (element.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => id && !id.endsWith("-error"));
    if (describedBy.length) element.setAttribute("aria-describedby", describedBy.join(" "));
    else element.removeAttribute("aria-describedby");
  }
  const summary = form.querySelector(".form-error");
  if (summary) summary.textContent = "";
}

/**
 * Marks `field` invalid and shows `message` right after it, tied by aria-describedby.
 * @param {HTMLElement} field
 * @param {string} message
 */
export function setFieldError(field, message) {
  const id = `${field.id || field.getAttribute("name") || "field"}-error`;
  let note = document.getElementById(id);
  if (!note) {
    note = h("p", { class: "field-error", id, "data-error-for": field.id || "" });
    const anchor = field.closest(".field") ?? field;
    if (anchor === field) field.after(note);
    else anchor.append(note);
  }
  note.append(note.textContent ? `; ${message}` : message);
  field.setAttribute("aria-invalid", "true");
  const describedBy = new Set((field.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean));
  describedBy.add(id);
  field.setAttribute("aria-describedby", [...describedBy].join(" "));
}

/**
 * Shows each problem at its field (by the first segment of its path, or `fieldFor`); the rest in
 * the form's summary. Focuses the first invalid field.
 * @param {HTMLFormElement} form
 * @param {{ path: string, message: string }[]} problems
 * @param {string} [fallback] message when there is no problem list
 * @param {(problem: { path: string }) => string | undefined} [fieldFor]
 */
export function showProblems(form, problems, fallback, fieldFor) {
  /** @type {HTMLElement | undefined} */
  let first;
  const general = [];
  for (const problem of problems) {
    const name = fieldFor?.(problem) ?? problem.path.split(".")[0];
    const field = name ? fieldNamed(form, name) : undefined;
    if (field) {
      setFieldError(field, problem.message);
      first ??= field;
    } else general.push(problem.path && problem.path !== "body" ? `${problem.path}: ${problem.message}` : problem.message);
  }
  if (problems.length === 0 && fallback) general.push(fallback);
  const summary = form.querySelector(".form-error");
  if (summary && general.length) summary.textContent = general.join(" · ");
  (first ?? /** @type {HTMLElement | null} */ (summary))?.focus?.();
}

/** @param {HTMLFormElement} form @param {string} name */
function fieldNamed(form, name) {
  const item = form.elements.namedItem(name);
  if (item instanceof RadioNodeList) return /** @type {HTMLElement | null} */ (form.querySelector(`fieldset[data-name="${name}"]`)) ?? undefined;
  return item instanceof HTMLElement ? item : undefined;
}

/** The form-level error region every form has (role=alert). */
export const formError = () => h("div", { class: "form-error", role: "alert", tabindex: "-1" });
