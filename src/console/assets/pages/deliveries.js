// Approval channels: every delivery of a request or an outcome to a webhook or Slack, with its
// attempts and the last failure, so a channel that is down is seen (the request itself still waits).
import { get, withQuery } from "../api.js";
import { badge, h, replace, table, tableRow, time } from "../dom.js";
import * as live from "../live.js";

const STATES = { delivered: "approved", failed: "rejected", retrying: "pending", pending: "pending" };

/** @param {HTMLElement} main @param {{ params: URLSearchParams }} route */
export async function deliveriesPage(main, { params }) {
  let closed = false;
  const list = h("section", { class: "panel", id: "deliveries", "aria-live": "polite" });
  const headers = ["State", "Channel", "Target", "Event", "Approval", "Attempts", "Last error", "Updated"];

  async function load() {
    if (closed) return;
    const query = { approvalId: params?.get("approvalId") ?? undefined, status: params?.get("status") ?? undefined, limit: 200 };
    const { items } = await get(withQuery("/v1/approval-channels/deliveries", query));
    replace(
      list,
      items.length === 0
        ? h("p", { class: "muted" }, "No deliveries yet (or no channels configured on this control plane).")
        : table(
            "Deliveries, newest first",
            headers,
            items.map((d) =>
              tableRow(
                headers,
                [
                  h("span", { dataset: { delivery: d.status } }, badge(STATES[d.status] ?? "pending"), " ", d.status),
                  d.channel,
                  d.target,
                  d.event,
                  h("a", { href: `#/deliveries?approvalId=${encodeURIComponent(d.approvalId)}`, class: "mono" }, d.approvalId),
                  String(d.attempts),
                  d.lastError ? `${d.lastStatus ? `HTTP ${d.lastStatus}: ` : ""}${d.lastError}` : "—",
                  time(d.updatedAt),
                ],
                { dataset: { target: d.target, status: d.status } },
              ),
            ),
            { hideCaption: true },
          ),
    );
  }

  replace(
    main,
    h("h1", null, "Channels"),
    h("p", null, "Requests and outcomes sent to webhooks and Slack. A failed delivery never decides anything: the request waits for a reviewer here, in the CLI or through the API, or for its timeout."),
    list,
  );
  await load();
  const unsubscribe = [live.on("approval.requested", () => setTimeout(() => void load(), 500)), live.on("approval.resolved", () => setTimeout(() => void load(), 500)), live.on("reset", () => void load())];
  return () => {
    closed = true;
    unsubscribe.forEach((off) => off());
  };
}
