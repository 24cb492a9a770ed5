// The approvals inbox: what the agent wants to do and why, the policy that asked, and a decision
// with a reason. The waiting agent hears the decision over the stream at once.
import { ApiError, get, post, withQuery } from "../api.js";
import { announce, badge, facts, h, json, relative, replace, time, toast } from "../dom.js";
import { clearProblems, formError, setFieldError, showProblems } from "../forms.js";
import * as live from "../live.js";

const STATUSES = ["pending", "approved", "rejected", "expired", "cancelled"];

/**
 * @param {HTMLElement} main
 * @param {{ params: URLSearchParams }} route
 * @param {import("../app.js").Context} context
 */
export async function approvalsPage(main, { params }, context) {
  const status = STATUSES.includes(params.get("status") ?? "") ? /** @type {string} */ (params.get("status")) : "pending";
  const page = await get(withQuery("/v1/approvals", { status, limit: 100 }));
  const list = h("div", { class: "approvals", id: "approvals-list" });
  const cards = new Map();
  const empty = h("p", { class: "muted", id: "approvals-empty" }, status === "pending" ? "No pending requests. New ones appear here as agents ask." : `No ${status} requests.`);
  const count = h("p", { id: "approvals-count" });
  const updateCount = () => {
    empty.hidden = cards.size > 0;
    // A card decided here stays on screen with its outcome, but is no longer one of the `status` requests.
    const shown = [...cards.values()].filter((card) => card.dataset.status === status).length;
    count.textContent = `${shown} ${status} request${shown === 1 ? "" : "s"}${page.total > cards.size && status !== "pending" ? ` (newest ${cards.size} of ${page.total})` : ""}`;
  };
  const decided = (card) => {
    cards.set(card.dataset.approvalId, card);
    updateCount();
  };
  for (const approval of page.items) {
    const card = approvalCard(approval, context, decided);
    cards.set(approval.approvalId, card);
    list.append(card);
  }
  updateCount();

  const tabs = h(
    "nav",
    { "aria-label": "Approval status", class: "actions" },
    STATUSES.map((s) => h("a", { class: "button", href: s === "pending" ? "#/approvals" : `#/approvals?status=${s}`, "aria-current": s === status ? "page" : undefined }, badge(s))),
  );
  replace(main, h("h1", null, "Approvals"), tabs, count, list, empty);

  const unsubscribe = [
    live.on("approval.requested", (approval) => {
      if (status !== "pending" || cards.has(approval.approvalId)) return;
      const card = approvalCard(approval, context, decided);
      cards.set(approval.approvalId, card);
      list.prepend(card);
      updateCount();
      announce(`New approval request: ${approval.toolName} by ${approval.agentId}`);
    }),
    live.on("approval.resolved", (approval) => {
      const card = cards.has(approval.approvalId) ? document.getElementById(`approval-${approval.approvalId}`) : null;
      if (card) {
        const resolved = approvalCard(approval, context, decided);
        card.replaceWith(resolved);
        cards.set(approval.approvalId, resolved);
      } else if (approval.status === status) {
        const resolved = approvalCard(approval, context, decided);
        cards.set(approval.approvalId, resolved);
        list.prepend(resolved);
      }
      updateCount();
    }),
    live.on("reset", () => context.navigate(location.hash)),
  ];
  return () => unsubscribe.forEach((u) => u());
}

/** @param {(card: HTMLElement) => void} [onDecided] told of the card that replaces this one once decided here */
function approvalCard(approval, context, onDecided) {
  const id = approval.approvalId;
  const agentContext = approval.agentContext ?? {};
  const titleId = `approval-${id}-title`;
  const card = h(
    "article",
    { class: "card", id: `approval-${id}`, "aria-labelledby": titleId, dataset: { approvalId: id, status: approval.status } },
    h("h2", { id: titleId }, h("span", { class: "tool-name" }, approval.toolName), h("span", { class: "muted" }, "by"), approval.agentId, badge(approval.status, "Status:")),
    facts([
      ["Goal", agentContext.goal ? h("p", { class: "quote" }, agentContext.goal) : h("span", { class: "muted", dataset: { fromRun: "goal" } }, "— not given")],
      ["Reasoning", agentContext.reasoning ? h("p", { class: "quote" }, agentContext.reasoning) : h("span", { class: "muted", dataset: { fromRun: "reasoning" } }, "— not given")],
      ["Prompt summary", agentContext.promptSummary],
      ["Policy", approval.policyId ? h("span", { class: "mono" }, approval.policyId) : h("span", { class: "muted" }, "—")],
      ["Why it asks", approval.reason],
      ["Who may answer", approval.rule ? whoMayAnswer(approval.rule) : undefined],
      ["Approved so far", approval.status === "pending" && approval.approvedBy?.length ? h("span", { dataset: { field: "approved-by" } }, `${approval.approvedBy.join(", ")} (${approval.approvedBy.length} of ${approval.rule?.approvers ?? 1})`) : undefined],
      ["Run", h("a", { href: `#/runs/${encodeURIComponent(approval.runId)}`, class: "mono" }, approval.runId)],
      ["Requested", h("span", null, time(approval.createdAt), " (", relative(approval.createdAt), ")")],
      ["Expires", approval.status === "pending" ? h("span", null, time(approval.expiresAt), " (", relative(approval.expiresAt), ")") : undefined],
      ["Reviewer", approval.reviewer],
      ["Decision reason", approval.decisionReason],
      ["Decided", approval.decidedAt ? time(approval.decidedAt) : undefined],
    ]),
    h("h3", null, "Payload (as recorded, redacted)"),
    json(approval.payload),
    historyPanel(approval),
  );
  if (approval.status === "pending") card.append(decisionForm(approval, context, onDecided));
  if (!agentContext.goal || !agentContext.reasoning) void contextFromRun(approval.runId, card);
  return card;
}

/** The request gave no goal or reasoning of its own: show the run's, marked as such. */
async function contextFromRun(runId, card) {
  let run;
  try {
    run = await get(withQuery(`/v1/runs/${encodeURIComponent(runId)}`, { depth: 0 }));
  } catch {
    return;
  }
  for (const slot of card.querySelectorAll("[data-from-run]")) {
    const text = run.agentContext?.[slot.getAttribute("data-from-run")];
    if (text) slot.replaceWith(h("p", { class: "quote" }, text, h("span", { class: "muted" }, " (from the run)")));
  }
}

function decisionForm(approval, context, onDecided) {
  const id = approval.approvalId;
  const reason = h("textarea", { id: `reason-${id}`, name: "reason", rows: "2", maxlength: "4000", required: true, "aria-describedby": `reason-${id}-hint` });
  const approve = h("button", { type: "submit", class: "approve", value: "approve" }, h("span", { "aria-hidden": "true" }, "✓ "), "Approve");
  const reject = h("button", { type: "submit", class: "danger", value: "reject" }, h("span", { "aria-hidden": "true" }, "✗ "), "Reject");
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      { novalidate: true, "aria-label": `Decide on ${approval.toolName} by ${approval.agentId}` },
      formError(),
      h("div", { class: "field" }, h("label", { for: `reason-${id}` }, "Reason for your decision"), reason, h("p", { class: "hint", id: `reason-${id}-hint` }, `Recorded in the audit trail with your name (${context.session.name ?? context.session.keyId}).`)),
      h("div", { class: "actions" }, approve, reject),
    )
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const verb = /** @type {HTMLButtonElement | null} */ (/** @type {SubmitEvent} */ (event).submitter)?.value === "reject" ? "reject" : "approve";
    clearProblems(form);
    const text = /** @type {HTMLTextAreaElement} */ (reason).value.trim();
    if (!text) {
      setFieldError(reason, "give a reason for the decision");
      reason.focus();
      return;
    }
    for (const button of [approve, reject]) button.setAttribute("disabled", "");
    try {
      const record = await post(`/v1/approvals/${encodeURIComponent(id)}/${verb}`, { reason: text });
      toast(`${verb === "approve" ? "Approved" : "Rejected"}: ${record.toolName} by ${record.agentId}`);
      const card = document.getElementById(`approval-${id}`);
      const replacement = approvalCard(record, context, onDecided);
      card?.replaceWith(replacement);
      onDecided?.(replacement);
    } catch (error) {
      if (error instanceof ApiError) showProblems(form, error.problems, error.status === 409 ? `Already decided: ${error.message}` : error.message);
      else showProblems(form, [], String(error));
    } finally {
      for (const button of [approve, reject]) button.removeAttribute("disabled");
    }
  });
  return form;
}

/** `2 of: group:payments-leads, alice@example.com (then group:cfo after 10 min)`. */
function whoMayAnswer(rule) {
  const count = rule.approvers && rule.approvers > 1 ? `${rule.approvers} of: ` : "";
  const from = rule.from ? rule.from.join(", ") : "any reviewer but the agent";
  const escalation = rule.escalate ? ` (then also ${rule.escalate.to.join(", ")} after ${Math.round(rule.escalate.afterMs / 60_000)} min)` : "";
  return `${count}${from}${escalation}`;
}

const VIA = { api: "through the API", console: "in the console", slack: "in Slack", link: "through a one-time link", warden: "by Warden" };

/** The request's history, read when opened: who was asked, deliveries, answers (and refusals). */
function historyPanel(approval) {
  const list = h("ol", { class: "history", id: `history-${approval.approvalId}`, "aria-live": "polite" }, h("li", { class: "muted" }, "Loading…"));
  const panel = h("details", { class: "call history-panel", dataset: { history: approval.approvalId } }, h("summary", null, h("strong", null, "History")), h("div", { class: "body" }, list));
  panel.addEventListener("toggle", async () => {
    if (!(/** @type {HTMLDetailsElement} */ (panel).open)) return;
    try {
      const { timeline } = await get(`/v1/approvals/${encodeURIComponent(approval.approvalId)}/history`);
      replace(list, timeline.map((item) => h("li", { dataset: { kind: item.kind } }, time(item.at), " ", describe(item))));
    } catch (error) {
      replace(list, h("li", { class: "form-error", role: "alert" }, `Could not load the history: ${error instanceof Error ? error.message : error}`));
    }
  });
  return panel;
}

function describe(item) {
  switch (item.kind) {
    case "requested":
      return `Requested by ${item.agentId}${item.policyId ? ` under policy ${item.policyId}` : ""}`;
    case "asked":
      return `Asked of ${item.from ? item.from.join(", ") : "any reviewer but the agent"}${item.approvers > 1 ? ` (${item.approvers} must approve)` : ""}`;
    case "escalated":
      return `Escalated to ${item.to.join(", ")}`;
    case "delivery":
      return `${item.event === "approval.requested" ? "Request" : "Outcome"} sent to ${item.channel} ${item.target}: ${item.status}${item.deliveredAt ? ` at ${new Date(item.deliveredAt).toLocaleTimeString()}` : ""}, ${item.attempts} attempt${item.attempts === 1 ? "" : "s"}${item.lastError ? ` (${item.lastError})` : ""}`;
    case "vote":
      return `Approved by ${item.reviewer} ${VIA[item.via] ?? `via ${item.via}`}${item.reason ? `: “${item.reason}”` : ""}`;
    case "refused":
      return `Refused: ${item.reviewer ?? "an anonymous reviewer"} ${VIA[item.via] ?? `via ${item.via}`} may not answer (${item.reason.replace(/^.*?: /, "")})`;
    case "decided":
      return `${item.status.charAt(0).toUpperCase()}${item.status.slice(1)}${item.reviewer && item.reviewer !== "warden" ? ` by ${item.reviewer}` : ""} ${VIA[item.via] ?? `via ${item.via}`}${item.reason ? `: “${item.reason}”` : ""}`;
    default:
      return item.kind;
  }
}
