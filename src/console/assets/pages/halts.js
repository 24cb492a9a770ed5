// The kill switch: halt the organization, an agent or a group (confirmed, with a reason), resume,
// and the history of halts.
import { ApiError, get, post } from "../api.js";
import { badge, confirmDialog, describeScope, h, replace, table, tableRow, time, toast } from "../dom.js";
import { clearProblems, formError, setFieldError, showProblems } from "../forms.js";
import * as live from "../live.js";

const TARGET_FIELD = { organization: undefined, agent: "agentId", group: "group", run: "runId" };

/**
 * @param {HTMLElement} main
 * @param {unknown} _route
 * @param {import("../app.js").Context} context
 */
export async function haltsPage(main, _route, context) {
  const current = h("section", { class: "panel", id: "halts-current", "aria-labelledby": "halts-current-title" });
  const history = h("section", { class: "panel", id: "halts-history", "aria-labelledby": "halts-history-title" });
  const agents = await get("/v1/agents").catch(() => ({ agents: [] }));

  async function load() {
    const [active, all] = await Promise.all([get("/v1/halts"), get("/v1/halts?include=all")]);
    replace(current, h("h2", { id: "halts-current-title" }, "In force now"), activeList(active.halts, context, load));
    const headers = ["State", "Scope", "Reason", "By", "Since", "Lifted"];
    replace(
      history,
      h("h2", { id: "halts-history-title" }, "History"),
      all.halts.length === 0
        ? h("p", { class: "muted" }, "No halts yet.")
        : table(
            "Every halt, newest first",
            headers,
            [...all.halts].sort((a, b) => b.createdAt - a.createdAt).map((halt) => tableRow(headers, [badge(halt.liftedAt ? "lifted" : "active"), describeScope(halt), halt.reason, halt.actor ?? "—", time(halt.createdAt), halt.liftedAt ? time(halt.liftedAt) : "—"])),
            { hideCaption: true },
          ),
    );
  }

  replace(main, h("h1", null, "Halts"), current, haltForm(context, agents.agents, load), history);
  await load();
  const unsubscribe = [live.on("halt.created", () => void load()), live.on("halt.lifted", () => void load()), live.on("reset", () => void load())];
  return () => unsubscribe.forEach((u) => u());
}

function activeList(halts, context, reload) {
  if (halts.length === 0) return h("p", { class: "form-ok", id: "halt-state" }, "No halts in force: agents run under their policies.");
  return h(
    "ul",
    { class: "approvals", id: "halt-state" },
    halts.map((halt) =>
      h(
        "li",
        { class: "card", dataset: { haltId: halt.haltId, scope: halt.scope } },
        h("h3", null, badge("halted"), " ", describeScope(halt)),
        h("p", null, "“", halt.reason, "” — by ", halt.actor ?? "unknown", ", since ", time(halt.createdAt)),
        context.isAdmin ? h("button", { type: "button", onclick: () => void resume(halt, reload) }, h("span", { "aria-hidden": "true" }, "↺ "), `Resume ${describeScope(halt).toLowerCase()}…`) : h("p", { class: "hint" }, "Resuming needs an admin key."),
      ),
    ),
  );
}

async function resume(halt, reload) {
  const reason = h("textarea", { id: "resume-reason", name: "reason", rows: "2", maxlength: "4000" });
  const confirmed = await confirmDialog({
    title: `Resume ${describeScope(halt).toLowerCase()}?`,
    body: [h("p", null, "New runs and tool calls it covers will be allowed again, under the current policies."), h("div", { class: "field" }, h("label", { for: "resume-reason" }, "Reason (optional)"), reason)],
    confirm: "Resume",
  });
  if (!confirmed) return;
  const field = TARGET_FIELD[halt.scope];
  try {
    await post("/v1/halts/resume", { ...(field && { [field]: halt.target }), ...(/** @type {HTMLTextAreaElement} */ (reason).value.trim() && { reason: /** @type {HTMLTextAreaElement} */ (reason).value.trim() }) });
    toast(`Resumed: ${describeScope(halt)}`);
  } catch (error) {
    toast(`Could not resume: ${error instanceof Error ? error.message : error}`);
  }
  await reload();
}

function haltForm(context, agents, reload) {
  const section = h("section", { class: "panel", "aria-labelledby": "halt-form-title" }, h("h2", { id: "halt-form-title" }, "Halt"));
  if (!context.isAdmin) {
    section.append(h("p", { class: "hint" }, "Halting needs an admin key. You can see the current state above."));
    return section;
  }
  const radio = (value, label, checked = false) => h("label", null, h("input", { type: "radio", name: "scope", value, checked }), label);
  const agentInput = h("input", { type: "text", id: "halt-agent", name: "agentId", list: "halt-agent-ids", autocomplete: "off" });
  const groupInput = h("input", { type: "text", id: "halt-group", name: "group", autocomplete: "off" });
  const reason = h("textarea", { id: "halt-reason", name: "reason", rows: "2", maxlength: "4000", required: true, "aria-describedby": "halt-reason-hint" });
  const agentField = h("div", { class: "field", hidden: true }, h("label", { for: "halt-agent" }, "Agent"), agentInput, h("datalist", { id: "halt-agent-ids" }, agents.map((a) => h("option", { value: a.agentId }))));
  const groupField = h("div", { class: "field", hidden: true }, h("label", { for: "halt-group" }, "Group"), groupInput);
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      { novalidate: true, id: "halt-form" },
      formError(),
      h("fieldset", { "data-name": "scope" }, h("legend", null, "What to halt"), radio("organization", "Whole organization", true), radio("agent", "One agent"), radio("group", "A group of agents")),
      agentField,
      groupField,
      h("div", { class: "field" }, h("label", { for: "halt-reason" }, "Reason (required)"), reason, h("p", { class: "hint", id: "halt-reason-hint" }, "Shown to everyone and recorded in the ledger.")),
      h("p", { class: "hint" }, "A halt refuses new runs and tool calls, aborts calls in flight, cancels pending approvals and invalidates delegation tokens issued before it."),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, h("span", { "aria-hidden": "true" }, "■ "), "Halt…")),
    )
  );
  const scope = () => /** @type {HTMLInputElement | null} */ (form.querySelector('input[name="scope"]:checked'))?.value ?? "organization";
  form.addEventListener("change", () => {
    agentField.hidden = scope() !== "agent";
    groupField.hidden = scope() !== "group";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    const kind = scope();
    const body = { reason: /** @type {HTMLTextAreaElement} */ (reason).value.trim() };
    let invalid = false;
    if (kind === "agent") {
      body.agentId = /** @type {HTMLInputElement} */ (agentInput).value.trim();
      if (!body.agentId) invalid = (setFieldError(agentInput, "name the agent to halt"), true);
    }
    if (kind === "group") {
      body.group = /** @type {HTMLInputElement} */ (groupInput).value.trim();
      if (!body.group) invalid = (setFieldError(groupInput, "name the group to halt"), true);
    }
    if (!body.reason) invalid = (setFieldError(reason, "a halt needs a reason"), true);
    if (invalid) {
      /** @type {HTMLElement | null} */ (form.querySelector('[aria-invalid="true"]'))?.focus();
      return;
    }
    const what = kind === "organization" ? "the whole organization" : kind === "agent" ? `agent ${body.agentId}` : `group ${body.group}`;
    const confirmed = await confirmDialog({
      title: `Halt ${what}?`,
      body: [
        h("p", null, `Every new run and tool call of ${what} will be refused and calls in flight aborted, until someone resumes it.`),
        h("p", null, "Reason: “", body.reason, "”"),
      ],
      confirm: `Halt ${what}`,
      danger: true,
    });
    if (!confirmed) return;
    try {
      await post("/v1/halts", body);
      toast(`Halted ${what}`);
      // Only the reason is cleared: the scope and target stay as chosen, so the next halt does not
      // silently widen to the whole organization.
      /** @type {HTMLTextAreaElement} */ (reason).value = "";
      await reload();
    } catch (error) {
      if (error instanceof ApiError) showProblems(form, error.problems, error.message);
      else showProblems(form, [], String(error));
    }
  });
  section.append(form);
  return section;
}
