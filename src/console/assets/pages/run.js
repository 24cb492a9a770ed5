// One run as a tree: steps and tool calls (decision, matched policies, input and output as
// recorded, approval), the audit trail, and delegated sub-agent runs nested under their parent.
import { get, withQuery } from "../api.js";
import { badge, duration, facts, h, json, morph, replace, shortId, table, tableRow, time } from "../dom.js";
import * as live from "../live.js";
import { runsHash } from "./runs.js";

/**
 * @param {HTMLElement} main
 * @param {{ args: string[] }} route
 * @param {import("../app.js").Context} context
 */
export async function runPage(main, { args }, context) {
  const runId = args[0];
  const container = h("div");
  let runIds = new Set([runId]);

  async function load() {
    const tree = await get(withQuery(`/v1/runs/${encodeURIComponent(runId)}`, { depth: 5 }));
    runIds = new Set();
    collectIds(tree, runIds);
    // Updated in place, never rebuilt: what the reader opened, selected, focused or scrolled to stays.
    const rendered = renderRun(tree, 0);
    if (!container.firstChild) {
      container.append(rendered);
      return;
    }
    // What the reader looks at stays where it is on screen, even when something above it grows.
    const anchor = firstVisible(container);
    const top = anchor?.getBoundingClientRect().top;
    morph(container.firstChild, rendered);
    if (anchor?.isConnected && top !== undefined) {
      const moved = anchor.getBoundingClientRect().top - top;
      if (moved !== 0) window.scrollBy(0, moved);
    }
  }

  replace(
    main,
    h("nav", { "aria-label": "Breadcrumb", class: "muted" }, h("a", { href: "#/runs" }, "Runs"), " › ", h("span", { class: "mono" }, runId)),
    container,
  );
  await load();

  let timer;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void load().catch(() => {}), 250);
  };
  const unsubscribe = [
    live.on("run.updated", (run) => {
      if (runIds.has(run.runId) || (run.parentRunId && runIds.has(run.parentRunId))) refresh();
    }),
    live.on("tool_call.updated", (call) => runIds.has(call.runId) && refresh()),
    live.on("approval.resolved", (approval) => runIds.has(approval.runId) && refresh()),
    live.on("approval.requested", (approval) => runIds.has(approval.runId) && refresh()),
    live.on("reset", refresh),
  ];
  void context;
  return () => {
    clearTimeout(timer);
    for (const u of unsubscribe) u();
  };
}

/** The first element with an identity whose top is on screen: the reader's place. @param {HTMLElement} root */
function firstVisible(root) {
  for (const element of root.querySelectorAll("[id], [data-key]")) {
    const top = element.getBoundingClientRect().top;
    if (top >= 0 && top < window.innerHeight) return element;
  }
  return undefined;
}

function collectIds(run, ids) {
  ids.add(run.runId);
  for (const child of run.children ?? []) collectIds(child, ids);
}

/** @param {any} run @param {number} depth */
function renderRun(run, depth) {
  const Heading = depth === 0 ? "h1" : "h3";
  const context = run.agentContext ?? {};
  const section = h(
    "section",
    { class: depth === 0 ? "run" : "subrun", id: `run-${run.runId}`, "aria-label": depth === 0 ? undefined : `Delegated run ${run.runId}` },
    h(Heading, null, depth === 0 ? "Run " : h("span", null, h("span", { "aria-hidden": "true" }, "↳ "), "Delegated run "), h("span", { class: "mono" }, run.runId), badge(run.status, "Status:")),
    facts([
      ["Agent", h("a", { href: runsHash({ agentId: run.agentId }) }, run.agentId)],
      ["Trace", h("a", { href: runsHash({ traceId: run.traceId }) }, h("span", { class: "mono" }, run.traceId))],
      ["Parent run", run.parentRunId ? h("a", { href: `#/runs/${encodeURIComponent(run.parentRunId)}`, class: "mono" }, run.parentRunId) : undefined],
      ["Started", time(run.startedAt)],
      ["Ended", run.endedAt ? time(run.endedAt) : undefined],
      ["Duration", run.endedAt ? duration(run.endedAt - run.startedAt) : undefined],
      ["Goal", context.goal],
      ["Reasoning", context.reasoning],
      ["Prompt summary", context.promptSummary],
      ["Reason", run.reason],
      ["Token", run.tokenId ? h("span", { class: "mono" }, run.tokenId) : undefined],
      ["Metadata", run.metadata !== undefined && run.metadata !== null ? json(run.metadata) : undefined],
      ["Error", run.error !== undefined && run.error !== null ? json(run.error) : undefined],
    ]),
  );

  const Sub = depth === 0 ? "h2" : "h4";
  section.append(h(Sub, null, `Steps and tool calls (${run.toolCalls.length})`), renderTree(run));

  const children = run.children ?? [];
  if (children.length > 0 || (run.childRunIds ?? []).length > 0) {
    section.append(h(Sub, null, `Delegated runs (${(run.childRunIds ?? children).length})`));
    for (const child of children) section.append(renderRun(child, depth + 1));
    const missing = (run.childRunIds ?? []).filter((id) => !children.some((c) => c.runId === id));
    if (missing.length) section.append(h("ul", null, missing.map((id) => h("li", null, h("a", { href: `#/runs/${encodeURIComponent(id)}`, class: "mono" }, id)))));
  }

  const trail = h(
    "details",
    { id: `audit-${run.runId}`, class: "call", open: depth === 0 ? true : undefined },
    h("summary", null, h("strong", null, `Audit trail (${run.events.length} entries)`)),
    h("div", { class: "body" }, auditTable(run.events)),
  );
  section.append(h(Sub, { class: "visually-hidden" }, "Audit trail"), trail);
  return section;
}

function renderTree(run) {
  const calls = [...run.toolCalls].sort((a, b) => a.startedAt - b.startedAt);
  if (run.steps.length === 0 && calls.length === 0) return h("p", { class: "muted" }, "No steps or tool calls recorded.");
  const byStep = new Map();
  const loose = [];
  for (const call of calls) {
    if (call.stepId && run.steps.some((s) => s.stepId === call.stepId)) {
      if (!byStep.has(call.stepId)) byStep.set(call.stepId, []);
      byStep.get(call.stepId).push(call);
    } else loose.push(call);
  }
  const items = [
    ...run.steps.map((step) => ({ at: step.startedAt, node: stepNode(step, byStep.get(step.stepId) ?? []) })),
    ...loose.map((call) => ({ at: call.startedAt, node: h("li", { "data-key": `li-${call.toolCallId}` }, callNode(call)) })),
  ].sort((a, b) => a.at - b.at);
  return h("ol", { class: "tree", "aria-label": `Tree of run ${run.runId}` }, items.map((i) => i.node));
}

function stepNode(step, calls) {
  return h(
    "li",
    { "data-key": `step-${step.stepId}` },
    h("div", { class: "step-title" }, h("span", { "aria-hidden": "true" }, "▸"), "Step ", h("span", null, step.name), badge(step.status, "Step status:"), h("span", { class: "muted" }, time(step.startedAt), step.endedAt ? ` · ${duration(step.endedAt - step.startedAt)}` : "")),
    calls.length ? h("ol", null, calls.map((call) => h("li", { "data-key": `li-${call.toolCallId}` }, callNode(call)))) : h("p", { class: "muted" }, "No tool calls in this step."),
  );
}

function callNode(call) {
  const decision = call.decision;
  const matches = decision?.matches ?? [];
  const shadow = matches.filter((m) => m.mode === "shadow").length;
  const summary = h(
    "summary",
    null,
    badge(call.status, "Status:"),
    h("span", { class: "tool-name" }, call.kind === "llm" ? `LLM ${call.toolName}` : call.toolName),
    decision?.action ? h("span", null, h("span", { class: "muted" }, "decision "), badge(decision.action, "Decision:")) : null,
    matches.length ? h("span", { class: "muted" }, `${matches.length} polic${matches.length === 1 ? "y" : "ies"} matched${shadow ? ` (${shadow} shadow)` : ""}`) : null,
    call.approval ? h("span", null, h("span", { class: "muted" }, "approval "), badge(call.approval.status, "Approval:")) : null,
    h("span", { class: "muted" }, call.durationMs !== undefined ? duration(call.durationMs) : ""),
  );
  const body = h("div", { class: "body" });
  body.append(
    facts([
      ["Tool call", h("span", { class: "mono" }, call.toolCallId)],
      ["Action type", call.actionType],
      ["Started", time(call.startedAt)],
      ["Ended", call.endedAt ? time(call.endedAt) : undefined],
      ["Decision", decision?.action ? badge(decision.action) : undefined],
      ["Reason", decision?.reason ?? call.reason],
      ["Decided by", decision?.policyId ? h("span", { class: "mono" }, decision.policyId) : undefined],
      ["Severity", decision?.severity],
      ["Halted", decision?.halted ? "yes — refused by a halt" : undefined],
      ["Checks complete", decision && decision.complete === false ? "no — a fail-closed rule decided" : undefined],
      ["Blocked because", call.blockedReason],
      ["Goal", call.agentContext?.goal],
      ["Reasoning", call.agentContext?.reasoning],
      ["Usage", call.usage ? `${call.usage.inputTokens ?? "?"} in / ${call.usage.outputTokens ?? "?"} out tokens` : undefined],
    ]),
  );
  if (matches.length) {
    const headers = ["Policy", "Action", "Mode", "Kind", "Reason"];
    body.append(
      table(
        "Matched policies",
        headers,
        matches.map((m) => tableRow(headers, [h("span", { class: "mono" }, m.policyId), badge(m.action), badge(m.mode === "shadow" ? "shadow" : "enforce"), m.kind, m.reason])),
      ),
    );
  }
  body.append(h("h5", null, "Input (as recorded, redacted)"), json(call.input));
  if (call.output !== undefined) body.append(h("h5", null, "Output (as recorded, redacted)"), json(call.output));
  if (call.error !== undefined && call.error !== null) body.append(h("h5", null, "Error"), json(call.error));
  if (call.approval) {
    const a = call.approval;
    body.append(
      h("h5", null, "Approval"),
      facts([
        ["Status", badge(a.status)],
        ["Requested", time(a.createdAt)],
        ["Policy", a.policyId],
        ["Why asked", a.reason],
        ["Reviewer", a.reviewer],
        ["Decision reason", a.decisionReason],
        ["Decided", a.decidedAt ? time(a.decidedAt) : undefined],
        ["Expires", a.status === "pending" ? time(a.expiresAt) : undefined],
      ]),
    );
    // Element.append would print a null as the text "null": only a pending approval gets the link.
    if (a.status === "pending") body.append(h("p", null, h("a", { href: "#/approvals" }, "Decide in the approvals inbox")));
  }
  return h("details", { class: "call", id: `call-${call.toolCallId}`, dataset: { toolCallId: call.toolCallId, status: call.status } }, summary, body);
}

function auditTable(events) {
  if (events.length === 0) return h("p", { class: "muted" }, "No audit entries.");
  const headers = ["Time", "Event", "Actor", "Subject", "Detail"];
  // The ledger keeps arrival order: an approval request the server records as it is asked reaches it
  // before the agent's batched run.started. The trail reads in the order things happened (ties: arrival).
  const ordered = events.map((event, index) => ({ event, index })).sort((a, b) => a.event.ts - b.event.ts || a.index - b.index).map(({ event }) => event);
  return table(
    "Audit trail",
    headers,
    ordered.map((event) =>
      tableRow(headers, [
        time(event.ts),
        h("code", null, event.type),
        event.actor ?? event.agentId ?? h("span", { class: "muted" }, "—"),
        event.toolCallId ? shortId(event.toolCallId) : event.stepId ? shortId(event.stepId) : h("span", { class: "muted" }, "run"),
        summarize(event),
      ], { "data-key": `event-${event.id}` }),
    ),
    { hideCaption: true },
  );
}

function summarize(event) {
  const d = event.data ?? {};
  const parts = [];
  if (d.toolName) parts.push(String(d.toolName));
  if (d.name) parts.push(String(d.name));
  if (d.decision) parts.push(`decision ${d.decision}`);
  if (d.policyId) parts.push(`policy ${d.policyId}`);
  if (d.status) parts.push(String(d.status));
  if (d.reviewer) parts.push(`by ${d.reviewer}`);
  if (d.reason) parts.push(`“${d.reason}”`);
  if (typeof d.durationMs === "number") parts.push(duration(d.durationMs));
  return parts.length ? parts.join(" · ") : h("span", { class: "muted" }, "—");
}
