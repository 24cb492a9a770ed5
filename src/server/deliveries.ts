// The delivery log of approval channels in the control plane's database (both stores run these
// routines): every delivery and its attempts survive a restart, and due retries are claimed with a
// lease so one process makes each attempt, whichever replica it is.
import type { ApprovalDelivery, ApprovalDeliveryLog, ApprovalDeliveryMessage, DeliveryFilter } from "agent-warden";
import { all, get, run, type Query, type SqlValue } from "./sql.js";

interface DeliveryRow {
  id: string;
  org: string;
  approval_id: string;
  agent_id: string;
  channel: string;
  target: string;
  event: string;
  status: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  next_attempt_at: number | null;
  delivered_at: number | null;
  message: string;
}

function toDelivery(row: DeliveryRow): ApprovalDelivery {
  return {
    deliveryId: row.id,
    channel: row.channel as ApprovalDelivery["channel"],
    target: row.target,
    event: row.event as ApprovalDelivery["event"],
    org: row.org,
    approvalId: row.approval_id,
    agentId: row.agent_id,
    status: row.status as ApprovalDelivery["status"],
    attempts: Number(row.attempts),
    ...(row.last_status != null && { lastStatus: Number(row.last_status) }),
    ...(row.last_error != null && { lastError: row.last_error }),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    ...(row.next_attempt_at != null && (row.status === "retrying" || row.status === "pending") && { nextAttemptAt: Number(row.next_attempt_at) }),
    ...(row.delivered_at != null && { deliveredAt: Number(row.delivered_at) }),
  };
}

/** Longest error text kept per delivery. */
const MAX_ERROR = 1000;

export function* addDelivery(delivery: ApprovalDelivery, message: ApprovalDeliveryMessage, leaseUntil: number): Query<boolean> {
  const changed = yield* run(
    `INSERT INTO approval_deliveries (id, org, approval_id, agent_id, channel, target, event, status, attempts, created_at, updated_at, next_attempt_at, lease_until, message)
     VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING`,
    delivery.deliveryId,
    delivery.org,
    delivery.approvalId,
    delivery.agentId,
    delivery.channel,
    delivery.target,
    delivery.event,
    delivery.status,
    delivery.attempts,
    delivery.createdAt,
    delivery.updatedAt,
    delivery.createdAt,
    leaseUntil,
    JSON.stringify(message),
  );
  return changed > 0;
}

export function* updateDelivery(delivery: ApprovalDelivery, message: ApprovalDeliveryMessage | undefined): Query<void> {
  yield* run(
    "UPDATE approval_deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, updated_at = ?, next_attempt_at = ?, delivered_at = ?, lease_until = NULL, message = COALESCE(?, message) WHERE id = ?",
    delivery.status,
    delivery.attempts,
    delivery.lastStatus ?? null,
    delivery.lastError === undefined ? null : delivery.lastError.slice(0, MAX_ERROR),
    delivery.updatedAt,
    delivery.nextAttemptAt ?? null,
    delivery.deliveredAt ?? null,
    message === undefined ? null : JSON.stringify(message),
    delivery.deliveryId,
  );
}

/** Leases due deliveries; the lease is checked again on the row itself, so two processes never claim the same one. */
export function* claimDueDeliveries(now: number, leaseUntil: number, limit: number, org: string | undefined): Query<Array<{ delivery: ApprovalDelivery; message: ApprovalDeliveryMessage }>> {
  const rows = yield* all<DeliveryRow>(
    `UPDATE approval_deliveries SET lease_until = ?
     WHERE id IN (SELECT id FROM approval_deliveries WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)${org === undefined ? "" : " AND org = ?"} ORDER BY next_attempt_at LIMIT ?)
       AND (lease_until IS NULL OR lease_until < ?)
     RETURNING *`,
    ...(org === undefined ? [leaseUntil, now, now, limit, now] : [leaseUntil, now, now, org, limit, now]),
  );
  return rows.map((row) => ({ delivery: toDelivery(row), message: JSON.parse(row.message) as ApprovalDeliveryMessage }));
}

export function* orgsWithDueDeliveries(now: number): Query<string[]> {
  return (yield* all<{ org: string }>("SELECT DISTINCT org FROM approval_deliveries WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ?", now)).map((row) => row.org);
}

export function* listDeliveries(filter: DeliveryFilter): Query<ApprovalDelivery[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  for (const [column, value] of [
    ["org", filter.org],
    ["approval_id", filter.approvalId],
    ["agent_id", filter.agentId],
    ["status", filter.status],
  ] as const) {
    if (value === undefined) continue;
    where.push(`${column} = ?`);
    params.push(value);
  }
  const rows = yield* all<DeliveryRow>(`SELECT * FROM approval_deliveries${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`, ...params, Math.min(filter.limit ?? 100, 1000));
  return rows.map(toDelivery);
}

export function* slackPostOf(org: string, approvalId: string): Query<{ channel: string; ts: string } | undefined> {
  const row = yield* get<{ message: string }>("SELECT message FROM approval_deliveries WHERE org = ? AND approval_id = ? AND channel = 'slack' AND event = 'approval.requested' AND status = 'delivered'", org, approvalId);
  if (row === undefined) return undefined;
  const message = JSON.parse(row.message) as ApprovalDeliveryMessage;
  return message.kind === "slack" ? message.posted : undefined;
}

/** The log on a store that runs shared routines in its own transactions. */
export function deliveryLog(transact: <T>(query: Query<T>) => Promise<T>): ApprovalDeliveryLog {
  return {
    add: (delivery, message, leaseUntil) => transact(addDelivery(delivery, message, leaseUntil)),
    update: (delivery, message) => transact(updateDelivery(delivery, message)),
    claimDue: (now, leaseUntil, limit, org) => transact(claimDueDeliveries(now, leaseUntil, limit, org)),
    dueOrgs: (now) => transact(orgsWithDueDeliveries(now)),
    list: (filter) => transact(listDeliveries(filter)),
    slackPost: (org, approvalId) => transact(slackPostOf(org, approvalId)),
  };
}
