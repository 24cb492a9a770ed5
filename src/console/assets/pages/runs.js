// Runs: filtered by agent, status and trace, paged on the server, updated live from the stream.
import { get, withQuery } from "../api.js";
import { announce, badge, duration, h, replace, shortId, tableRow, time } from "../dom.js";
import * as live from "../live.js";

const PAGE_SIZE = 50;
const HEADERS = ["Status", "Run", "Agent", "Trace", "Parent", "Started", "Duration"];
const STATUSES = ["running", "completed", "failed"];

/** @param {{ agentId?: string, status?: string, traceId?: string, offset?: number }} query */
export function runsHash(query) {
  return `#${withQuery("/runs", { agent: query.agentId, status: query.status, trace: query.traceId, offset: query.offset || undefined })}`;
}

/**
 * @param {HTMLElement} main
 * @param {{ params: URLSearchParams }} route
 * @param {import("../app.js").Context} context
 */
export async function runsPage(main, { params }, context) {
  const filter = { agentId: params.get("agent") ?? "", status: params.get("status") ?? "", traceId: params.get("trace") ?? "" };
  const offset = Math.max(0, Math.floor(Number(params.get("offset") ?? 0)) || 0);

  const [page, agents] = await Promise.all([
    get(withQuery("/v1/runs", { agentId: filter.agentId, status: filter.status, traceId: filter.traceId, limit: PAGE_SIZE, offset })),
    get("/v1/agents").catch(() => ({ agents: [] })),
  ]);
  let total = page.total;

  // ── filters ──
  const agentInput = h("input", { type: "text", id: "filter-agent", name: "agent", list: "agent-ids", value: filter.agentId, autocomplete: "off" });
  const statusSelect = h("select", { id: "filter-status", name: "status" }, h("option", { value: "" }, "Any status"), STATUSES.map((s) => h("option", { value: s }, s[0].toUpperCase() + s.slice(1))));
  /** @type {HTMLSelectElement} */ (statusSelect).value = filter.status;
  const traceInput = h("input", { type: "text", id: "filter-trace", name: "trace", value: filter.traceId, autocomplete: "off" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs" },
    h("div", { class: "field" }, h("label", { for: "filter-agent" }, "Agent"), agentInput, h("datalist", { id: "agent-ids" }, agents.agents.map((a) => h("option", { value: a.agentId })))),
    h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
    h("div", { class: "field" }, h("label", { for: "filter-trace" }, "Trace"), traceInput),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Apply"), h("a", { class: "button", href: "#/runs" }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    context.navigate(runsHash({ agentId: /** @type {HTMLInputElement} */ (agentInput).value.trim(), status: /** @type {HTMLSelectElement} */ (statusSelect).value, traceId: /** @type {HTMLInputElement} */ (traceInput).value.trim() }));
  });

  // ── table ──
  const tbody = h("tbody", { id: "runs-body" });
  const rows = new Map();
  for (const run of page.items) {
    const row = runRow(run);
    rows.set(run.runId, row);
    tbody.append(row);
  }
  const emptyNote = h("p", { class: "muted", id: "runs-empty", hidden: page.items.length > 0 }, filter.agentId || filter.status || filter.traceId ? "No runs match these filters." : "No runs yet. They appear here as agents start them.");
  const summary = h("p", { id: "runs-summary", "aria-live": "off" });
  const updateSummary = () => replace(summary, total === 0 ? "No runs" : `Runs ${offset + 1}–${Math.min(offset + rows.size, total)} of ${total.toLocaleString("en")}`);
  updateSummary();

  const pager = h(
    "nav",
    { class: "pager", "aria-label": "Pages of runs" },
    summary,
    offset > 0 ? h("a", { class: "button", href: runsHash({ ...filter, offset: Math.max(0, offset - PAGE_SIZE) }), rel: "prev" }, "← Newer") : null,
    page.nextOffset !== null ? h("a", { class: "button", href: runsHash({ ...filter, offset: page.nextOffset }), rel: "next" }, "Older →") : null,
  );

  replace(
    main,
    h("h1", null, "Runs"),
    form,
    pager,
    h(
      "div",
      { class: "table-wrap" },
      h("table", { class: "responsive", id: "runs-table" }, h("caption", { class: "visually-hidden" }, "Runs, newest first"), h("thead", null, h("tr", null, HEADERS.map((label) => h("th", { scope: "col" }, label)))), tbody),
    ),
    emptyNote,
    rows.size > 20 ? pagerCopy(pager) : null,
  );

  // ── live ──
  const matches = (run) => (!filter.agentId || run.agentId === filter.agentId) && (!filter.status || run.status === filter.status) && (!filter.traceId || run.traceId === filter.traceId);
  let pendingAnnouncements = [];
  let announceTimer;
  const unsubscribe = [
    live.on("run.updated", (run) => {
      const existing = rows.get(run.runId);
      if (existing) {
        if (!matches(run) && filter.status) {
          existing.remove();
          rows.delete(run.runId);
          total = Math.max(0, total - 1);
        } else {
          const fresh = runRow(run);
          existing.replaceWith(fresh);
          rows.set(run.runId, fresh);
          pendingAnnouncements.push(`Run ${run.runId} ${run.status}`);
        }
      } else if (offset === 0 && matches(run)) {
        const row = runRow(run);
        row.classList.add("fresh");
        setTimeout(() => row.classList.remove("fresh"), 8000);
        tbody.prepend(row);
        rows.set(run.runId, row);
        total += 1;
        while (rows.size > PAGE_SIZE) {
          const last = /** @type {HTMLElement} */ (tbody.lastElementChild);
          rows.delete(last.dataset.runId);
          last.remove();
        }
        pendingAnnouncements.push(`New run by ${run.agentId}`);
      } else return;
      emptyNote.hidden = rows.size > 0;
      updateSummary();
      clearTimeout(announceTimer);
      announceTimer = setTimeout(() => {
        announce(pendingAnnouncements.length > 3 ? `${pendingAnnouncements.length} run updates` : pendingAnnouncements.join(". "));
        pendingAnnouncements = [];
      }, 1000);
    }),
    live.on("reset", () => context.navigate(location.hash)),
  ];
  return () => {
    clearTimeout(announceTimer);
    for (const u of unsubscribe) u();
  };
}

/** The pager again below a long table (links only, so a copy works). */
function pagerCopy(pager) {
  const copy = /** @type {HTMLElement} */ (pager.cloneNode(true));
  copy.setAttribute("aria-label", "Pages of runs, below the table");
  copy.querySelector("#runs-summary")?.removeAttribute("id");
  return copy;
}

function runRow(run) {
  return tableRow(
    HEADERS,
    [
      badge(run.status),
      h("a", { href: `#/runs/${encodeURIComponent(run.runId)}`, class: "mono", title: run.runId }, run.runId),
      h("a", { href: runsHash({ agentId: run.agentId }), title: `Runs of ${run.agentId}` }, run.agentId),
      h("a", { href: runsHash({ traceId: run.traceId }), title: `Runs of trace ${run.traceId}` }, shortId(run.traceId)),
      run.parentRunId ? h("a", { href: `#/runs/${encodeURIComponent(run.parentRunId)}`, title: `Parent run ${run.parentRunId}` }, shortId(run.parentRunId)) : h("span", { class: "muted" }, "—"),
      time(run.startedAt),
      run.endedAt ? duration(run.endedAt - run.startedAt) : run.status === "running" ? "running…" : "—",
    ],
    { dataset: { runId: run.runId, status: run.status } },
  );
}
