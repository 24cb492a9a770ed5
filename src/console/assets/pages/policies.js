// Policies: the current set and its versions, an editor validated by the server before saving
// (problems shown at the line and field they point at), roll back, and shadow-mode matches.
import { ApiError, get, request, withQuery } from "../api.js";
import { badge, confirmDialog, h, replace, shortId, table, tableRow, time, toast } from "../dom.js";
import { clearProblems, formError, setFieldError } from "../forms.js";
import * as live from "../live.js";

/**
 * @param {HTMLElement} main
 * @param {unknown} _route
 * @param {import("../app.js").Context} context
 */
export async function policiesPage(main, _route, context) {
  let current = await get("/v1/policies/current");
  let dirty = false;
  let saving = false;

  const header = h("section", { class: "panel", id: "policy-current" });
  const editorSection = h("section", { class: "panel", "aria-labelledby": "policy-editor-title" });
  const shadowSection = h("section", { class: "panel", id: "policy-shadow", "aria-labelledby": "policy-shadow-title" });
  const versionsSection = h("section", { class: "panel", id: "policy-versions", "aria-labelledby": "policy-versions-title" });

  // ── editor ──
  const textarea = /** @type {HTMLTextAreaElement} */ (h("textarea", { id: "policy-source", name: "policies", spellcheck: "false", autocomplete: "off", wrap: "off", "aria-describedby": "policy-source-hint policy-problems", readonly: context.isAdmin ? undefined : true }));
  const gutter = h("pre", { class: "gutter", "aria-hidden": "true" });
  const editor = h("div", { class: "editor" }, gutter, textarea);
  const problems = h("ul", { class: "problems", id: "policy-problems", "aria-live": "polite" });
  const comment = h("input", { type: "text", id: "policy-comment", name: "comment", maxlength: "1000", autocomplete: "off" });
  const status = h("div", { id: "policy-status", role: "status" });
  const saveButton = h("button", { type: "submit", class: "primary", value: "save" }, "Save as new version");
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      { novalidate: true, id: "policy-form" },
      formError(),
      h(
        "div",
        { class: "field" },
        h("label", { for: "policy-source" }, "Policy set (YAML or JSON)"),
        h("p", { class: "hint", id: "policy-source-hint" }, context.isAdmin ? "Validated by the control plane before it is saved; problems are listed below with their line." : "Read-only: editing policies needs an admin key."),
        editor,
        problems,
      ),
      context.isAdmin ? h("div", { class: "field" }, h("label", { for: "policy-comment" }, "Comment (optional)"), comment) : null,
      status,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", value: "validate" }, "Validate"),
        context.isAdmin ? saveButton : null,
        context.isAdmin ? h("button", { type: "button", onclick: () => setText(sourceOf(current), false) }, "Discard changes") : null,
      ),
    )
  );

  let badLines = new Set();
  function renderGutter() {
    const count = textarea.value.split("\n").length;
    const lines = [];
    for (let i = 1; i <= count; i++) lines.push(badLines.has(i) ? h("span", { class: "bad" }, `▶${i}\n`) : `${i}\n`);
    replace(gutter, lines);
    gutter.scrollTop = textarea.scrollTop;
  }
  function setText(text, keepDirty) {
    textarea.value = text;
    dirty = keepDirty;
    clearAll();
    renderGutter();
  }
  function clearAll() {
    clearProblems(form);
    problems.replaceChildren();
    editor.removeAttribute("data-invalid");
    status.replaceChildren();
    badLines = new Set();
  }
  textarea.addEventListener("input", () => {
    dirty = true;
    renderGutter();
  });
  textarea.addEventListener("scroll", () => (gutter.scrollTop = textarea.scrollTop));

  function showPolicyProblems(list) {
    badLines = new Set(list.map((p) => p.line).filter((n) => typeof n === "number"));
    editor.setAttribute("data-invalid", "true");
    textarea.setAttribute("aria-invalid", "true");
    replace(
      problems,
      list.map((problem) =>
        h(
          "li",
          { dataset: { line: problem.line ?? "", field: problem.field ?? "", policyId: problem.policyId ?? "" } },
          typeof problem.line === "number" ? h("button", { type: "button", class: "link-button", onclick: () => goToLine(problem.line) }, `Line ${problem.line}`) : null,
          problem.policyId || problem.field ? h("span", { class: "where" }, [problem.policyId, problem.field].filter(Boolean).join(" › ")) : null,
          h("span", null, problem.message),
        ),
      ),
    );
    renderGutter();
  }

  function goToLine(line) {
    const lines = textarea.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    textarea.focus();
    textarea.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
    const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 20;
    textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  /** Server-side problems: policy ones at the editor, `comment` at its field, the rest in the summary. */
  function showServerProblems(error) {
    const policyProblems = error.problems.filter((p) => p.path === "policies" || p.path.startsWith("policies.") || p.line !== undefined);
    const others = error.problems.filter((p) => !policyProblems.includes(p));
    if (policyProblems.length) showPolicyProblems(policyProblems);
    for (const p of others) {
      if (p.path === "comment") setFieldError(comment, p.message);
    }
    const rest = others.filter((p) => p.path !== "comment");
    const summary = form.querySelector(".form-error");
    if (summary && (rest.length || (!policyProblems.length && !others.length))) summary.textContent = rest.length ? rest.map((p) => `${p.path}: ${p.message}`).join(" · ") : error.message;
    if (policyProblems.length) textarea.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const action = /** @type {HTMLButtonElement | null} */ (/** @type {SubmitEvent} */ (event).submitter)?.value ?? "validate";
    clearAll();
    const text = textarea.value;
    if (!text.trim()) {
      showPolicyProblems([{ path: "policies", message: "the policy set is empty" }]);
      textarea.focus();
      return;
    }
    if (action === "validate") {
      try {
        const { data } = await request("POST", "/v1/policies/validate", { body: { policies: text } });
        if (data.valid) {
          replace(status, h("p", { class: "form-ok" }, `Valid: default ${data.summary.default}, ${data.summary.policies} policies, ${data.summary.limits} limits, ${data.summary.budgets} budgets.`));
        } else {
          showPolicyProblems(data.problems);
          textarea.focus();
        }
      } catch (error) {
        if (error instanceof ApiError) showServerProblems(error);
      }
      return;
    }
    saveButton.setAttribute("disabled", "");
    saving = true;
    try {
      const commentText = /** @type {HTMLInputElement} */ (comment).value.trim();
      const { data } = await request("PUT", "/v1/policies", { body: { policies: text, ...(commentText && { comment: commentText }) }, headers: { "If-Match": current.etag } });
      current = data;
      /** @type {HTMLInputElement} */ (comment).value = "";
      setText(sourceOf(current), false);
      replace(status, h("p", { class: "form-ok" }, `Saved as version ${current.version}.`));
      toast(`Policies saved as version ${current.version}`);
      renderHeader();
      await renderVersions();
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        const summary = form.querySelector(".form-error");
        if (summary) summary.textContent = "Someone saved another version since you opened this one. Your text is kept; reload the page to see theirs, then save again.";
      } else if (error instanceof ApiError) showServerProblems(error);
    } finally {
      saving = false;
      saveButton.removeAttribute("disabled");
    }
  });

  // ── header, shadow mode, versions ──
  function renderHeader() {
    replace(
      header,
      h("h1", null, "Policies"),
      h(
        "p",
        { id: "policy-version" },
        h("strong", null, `Version ${current.version}`),
        current.version === 0 ? " (none saved yet: everything is allowed and recorded)" : [" · by ", current.author ?? "unknown", " · ", time(current.createdAt)],
        current.comment ? [" · “", current.comment, "”"] : null,
        current.rolledBackFrom !== undefined && current.rolledBackFrom !== null ? ` · restores version ${current.rolledBackFrom}` : null,
      ),
    );
  }

  async function renderShadow() {
    const set = current.policies ?? {};
    const shadowPolicies = (Array.isArray(set.policies) ? set.policies : []).filter((p) => p && p.mode === "shadow");
    let recent = [];
    try {
      const calls = await get(withQuery("/v1/tool-calls", { limit: 500 }));
      for (const call of calls.items) for (const match of call.decision?.matches ?? []) if (match.mode === "shadow") recent.push({ call, match });
    } catch {
      recent = [];
    }
    const headers = ["Time", "Policy", "Would have", "Tool", "Agent run"];
    replace(
      shadowSection,
      h("h2", { id: "policy-shadow-title" }, h("span", { "aria-hidden": "true" }, "◌ "), "Shadow mode"),
      h("p", { class: "hint" }, "Shadow policies are evaluated and recorded but not enforced: see what they would have done before enforcing them."),
      shadowPolicies.length
        ? h("ul", null, shadowPolicies.map((p) => h("li", null, h("span", { class: "mono" }, p.id), " — would ", badge(p.action), p.description ? ` — ${p.description}` : "")))
        : h("p", { class: "muted" }, "No policy is in shadow mode."),
      recent.length
        ? table(
            `Recent shadow matches: ${recent.length} among the latest 500 tool calls${recent.length > 25 ? " (newest 25 shown)" : ""}`,
            headers,
            recent.slice(0, 25).map(({ call, match }) => tableRow(headers, [time(call.startedAt), h("span", { class: "mono" }, match.policyId), badge(match.action), h("span", { class: "tool-name" }, call.toolName), h("a", { href: `#/runs/${encodeURIComponent(call.runId)}` }, shortId(call.runId))])),
          )
        : h("p", { class: "muted" }, "No shadow-mode matches among recent tool calls."),
    );
  }

  async function renderVersions() {
    const page = await get(withQuery("/v1/policies/versions", { limit: 50 }));
    const headers = ["Version", "Saved", "By", "Comment", ""];
    replace(
      versionsSection,
      h("h2", { id: "policy-versions-title" }, "Versions"),
      page.items.length === 0
        ? h("p", { class: "muted" }, "No versions saved yet.")
        : table(
            `Versions, newest first${page.total > page.items.length ? ` (latest ${page.items.length} of ${page.total})` : ""}`,
            headers,
            page.items.map((v) =>
              tableRow(
                headers,
                [
                  h("span", null, `v${v.version}`, v.version === current.version ? h("strong", null, " (current)") : null),
                  time(v.createdAt),
                  v.author ?? "—",
                  [v.comment ?? "", v.rolledBackFrom !== undefined && v.rolledBackFrom !== null ? ` (restores v${v.rolledBackFrom})` : ""].join("") || "—",
                  h(
                    "div",
                    { class: "actions" },
                    h("button", { type: "button", onclick: () => void viewVersion(v.version) }, `View v${v.version}`),
                    context.isAdmin && v.version !== current.version ? h("button", { type: "button", onclick: () => void rollback(v.version) }, `Roll back to v${v.version}…`) : null,
                  ),
                ],
                { dataset: { version: String(v.version) } },
              ),
            ),
            { hideCaption: false },
          ),
      h("div", { id: "policy-version-view" }),
    );
  }

  async function viewVersion(version) {
    const found = await get(`/v1/policies/versions/${version}`);
    const view = document.getElementById("policy-version-view");
    if (!view) return;
    replace(
      view,
      h("h3", { tabindex: "-1", id: "policy-version-view-title" }, `Version ${found.version}`),
      h("pre", { class: "json", tabindex: "0" }, sourceOf(found)),
      context.isAdmin ? h("button", { type: "button", onclick: () => setText(sourceOf(found), true) }, "Copy into the editor") : null,
    );
    document.getElementById("policy-version-view-title")?.focus();
  }

  async function rollback(version) {
    const confirmed = await confirmDialog({
      title: `Roll back to version ${version}?`,
      body: [h("p", null, `Version ${version}'s policies become the current set, saved as a new version. Connected agents switch to it at once.`)],
      confirm: `Roll back to v${version}`,
      danger: true,
    });
    if (!confirmed) return;
    try {
      const { data } = await request("POST", "/v1/policies/rollback", { body: { version }, headers: { "If-Match": current.etag } });
      current = data;
      setText(sourceOf(current), false);
      toast(`Rolled back: version ${current.version} restores version ${version}`);
      renderHeader();
      await Promise.all([renderVersions(), renderShadow()]);
    } catch (error) {
      toast(`Could not roll back: ${error instanceof Error ? error.message : error}`);
    }
  }

  replace(main, header, editorSection, shadowSection, versionsSection);
  replace(editorSection, h("h2", { id: "policy-editor-title" }, context.isAdmin ? "Edit" : "Current set"), form);
  renderHeader();
  setText(sourceOf(current), false);
  await Promise.all([renderVersions(), renderShadow()]);

  const unsubscribe = [
    live.on("policy.updated", async () => {
      if (saving) return;
      const latest = await get("/v1/policies/current").catch(() => undefined);
      if (!latest || latest.etag === current.etag) return;
      if (dirty) {
        replace(status, h("p", { class: "form-error" }, `Version ${latest.version} was saved elsewhere while you were editing. Your text is kept; saving will be refused until you reload.`));
        return;
      }
      current = latest;
      setText(sourceOf(current), false);
      renderHeader();
      await Promise.all([renderVersions(), renderShadow()]);
    }),
  ];
  return () => unsubscribe.forEach((u) => u());
}

/** The text to edit: the YAML or JSON it was saved as, else its JSON form. */
function sourceOf(version) {
  return typeof version.source === "string" ? version.source : `${JSON.stringify(version.policies, null, 2)}\n`;
}
