// `POST /v1/events` on PostgreSQL, with a fixed number of statements per batch instead of several per
// event (each statement is a round trip to the database). The rules are ingest.ts's: an event is
// admitted by the same `admit`, against the rows it names as the batch left them; the projections are
// its upserts, written for many rows at once (`unnest` of one array per column); the ledger entries go
// into the organization's chain in batch order. Event types other than an agent's telemetry (approval
// requests and outcomes, revocations, refusals) are rare: each goes through ingest.ts statement by
// statement, after what came before it in the batch is written.
//
// An upsert of one statement may not touch a row twice, and two events of a batch often name one row
// (a tool call's `tool.called` then `tool.completed`): the writes are put in layers, each event one
// layer after the last one that touched its row, so every row sees its events in batch order.
import { EventType } from "agent-warden";
import type { WardenEvent } from "agent-warden";
import { admit, AGENT_EVENT_TYPES, FINAL_TOOL_STATUS_LIST, ingestOne, ledgerDraft, streamEffects, type AdmissionLookup, type Effects, type RejectedEvent } from "./ingest.js";
import type { OrgLedger } from "./org-ledger.js";
import { runAsync, runSync, type SqlOp } from "./sql.js";
import type { RunRow } from "../records.js";
import type { Principal, StreamMessage } from "./store.js";

/** Agent telemetry, written in bulk: what an agent emits about its own work, but for approval requests (decided one by one). */
const BULK_TYPES: ReadonlySet<string> = new Set([...AGENT_EVENT_TYPES].filter((type) => type !== EventType.APPROVAL_REQUESTED));
const FINAL_TOOL_STATUSES: ReadonlySet<string> = new Set(FINAL_TOOL_STATUS_LIST);
/** Statuses nothing moves a call out of. */
const FINAL_REFUSALS = new Set(["blocked", "rejected"]);

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined);
const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));
/** A decision patch as mergeDecision applies it: undefined keys dropped. */
const patchOf = (patch: Record<string, unknown>): string => JSON.stringify(Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)));

/** `decision` merged with a patch (a shallow merge, the patch winning), as mergeDecision does. */
const mergeDecision = (current: string, patch: string) => `CASE WHEN ${patch} IS NULL THEN ${current} WHEN ${current} IS NULL THEN ${patch} ELSE (${current}::jsonb || ${patch}::jsonb)::text END`;

interface Template {
  /** `$1` is the organization; `$2`… one array per column. */
  sql: string;
  /** It returns the rows it changed (an upsert's `changed`), as they are now, for the stream's live updates. */
  changes?: "runs" | "toolCalls";
}

const TEMPLATES = {
  runStarted: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at)
      SELECT u.id, $1, u.agent_id, u.trace_id, u.parent_run_id, 'running', u.metadata, u.reason, u.agent_context, u.token_id, u.started_at
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[]) AS u(id, agent_id, trace_id, parent_run_id, metadata, reason, agent_context, token_id, started_at)
      ON CONFLICT (id) DO UPDATE SET trace_id = excluded.trace_id, parent_run_id = excluded.parent_run_id,
        metadata = excluded.metadata, reason = excluded.reason, agent_context = excluded.agent_context, token_id = excluded.token_id, started_at = excluded.started_at
      WHERE runs.org = excluded.org AND runs.agent_id = excluded.agent_id
      RETURNING row_to_json(runs.*) AS row`,
    changes: "runs",
  },
  runFinished: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, status, started_at, ended_at, error)
      SELECT u.id, $1, u.agent_id, u.id, u.status, u.ts, u.ts, u.error
      FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) AS u(id, agent_id, status, ts, error)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, error = excluded.error WHERE runs.org = excluded.org AND runs.agent_id = excluded.agent_id
      RETURNING row_to_json(runs.*) AS row`,
    changes: "runs",
  },
  stepStarted: {
    sql: `INSERT INTO steps (id, run_id, name, status, metadata, started_at, ended_at, org)
      SELECT u.id, u.run_id, u.name, 'running', u.metadata, u.ts, NULL, $1
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS u(id, run_id, name, metadata, ts)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, metadata = excluded.metadata, started_at = excluded.started_at
      WHERE steps.run_id = excluded.run_id AND steps.org = excluded.org`,
  },
  stepCompleted: {
    sql: `INSERT INTO steps (id, run_id, name, status, metadata, started_at, ended_at, org)
      SELECT u.id, u.run_id, 'step', u.status, NULL, u.ts, u.ts, $1
      FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS u(id, run_id, status, ts)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at
      WHERE steps.run_id = excluded.run_id AND steps.org = excluded.org`,
  },
  toolCalled: {
    sql: `INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at, decision)
      SELECT u.id, u.run_id, u.step_id, $1, u.agent_id, u.kind, u.tool_name, u.action_type, u.status, u.input, u.agent_context, u.reason, u.started_at, u.patch
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[])
        AS u(id, run_id, step_id, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at, patch)
      ON CONFLICT (id) DO UPDATE SET step_id = excluded.step_id, kind = excluded.kind,
        tool_name = excluded.tool_name, action_type = excluded.action_type, input = excluded.input, agent_context = excluded.agent_context,
        reason = excluded.reason, started_at = excluded.started_at,
        status = CASE WHEN tool_calls.status IN ('completed','failed','blocked','rejected') THEN tool_calls.status ELSE excluded.status END,
        decision = ${mergeDecision("tool_calls.decision", "excluded.decision")}
      WHERE tool_calls.org = excluded.org AND tool_calls.agent_id = excluded.agent_id AND tool_calls.status NOT IN ('blocked','rejected')
      RETURNING json_build_object('id', tool_calls.id, 'run_id', tool_calls.run_id, 'agent_id', tool_calls.agent_id, 'tool_name', tool_calls.tool_name, 'status', tool_calls.status) AS row`,
    changes: "toolCalls",
  },
  policyMatched: {
    sql: `UPDATE tool_calls SET decision = ${mergeDecision("tool_calls.decision", "u.patch")}
      FROM unnest($2::text[], $3::text[]) AS u(id, patch) WHERE tool_calls.id = u.id AND tool_calls.org = $1`,
  },
  toolFinished: {
    sql: `INSERT INTO tool_calls (id, run_id, org, agent_id, kind, tool_name, action_type, status, output, error, blocked_reason, usage, started_at, ended_at, duration_ms, decision)
      SELECT u.id, u.run_id, $1, u.agent_id, u.kind, u.tool_name, 'unknown', u.status, u.output, u.error, u.blocked_reason, u.usage, u.started_at, u.ended_at, u.duration_ms, u.patch
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::float8[], $15::text[])
        AS u(id, run_id, agent_id, kind, tool_name, status, output, error, blocked_reason, usage, started_at, ended_at, duration_ms, patch)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, output = COALESCE(excluded.output, tool_calls.output), error = COALESCE(excluded.error, tool_calls.error),
        blocked_reason = COALESCE(excluded.blocked_reason, tool_calls.blocked_reason), usage = COALESCE(excluded.usage, tool_calls.usage),
        ended_at = COALESCE(excluded.ended_at, tool_calls.ended_at), duration_ms = COALESCE(excluded.duration_ms, tool_calls.duration_ms),
        decision = ${mergeDecision("tool_calls.decision", "excluded.decision")}
      WHERE tool_calls.org = excluded.org AND tool_calls.agent_id = excluded.agent_id AND tool_calls.status NOT IN ('blocked','rejected')
      RETURNING json_build_object('id', tool_calls.id, 'run_id', tool_calls.run_id, 'agent_id', tool_calls.agent_id, 'tool_name', tool_calls.tool_name, 'status', tool_calls.status) AS row`,
    changes: "toolCalls",
  },
} satisfies Record<string, Template>;

type TemplateName = keyof typeof TEMPLATES;
type Cell = string | number | null;
interface Write {
  template: TemplateName;
  /** The row it writes, as `table:id`. */
  row: string;
  cells: Cell[];
}

/** The run and tool call rows a batch names, by id in any organization, as the batch leaves them. */
interface Rows {
  runs: Map<string, { org: string; agent_id: string }>;
  toolCalls: Map<string, { org: string; agent_id: string; run_id: string; status: string }>;
}

/** The runs and tool calls the batch changed, as it left them (for the stream's live updates). */
export interface LiveRows {
  runs: Map<string, RunRow>;
  toolCalls: Map<string, { id: string; run_id: string; agent_id: string; tool_name: string; status: string }>;
}

/** Runs a statement on the transaction's connection and gives its rows. */
export type PostgresExec = (op: SqlOp) => Promise<unknown>;

/**
 * Writes a batch of schema-valid events in one transaction (the caller's), with the outcome of
 * ingest.ts's `ingestBatch`: duplicates skipped (by id, also against a replica writing the same batch
 * at once), refused events listed, the rest projected and chained in batch order.
 */
export async function ingestBatchPostgres(ledger: OrgLedger, principal: Principal, events: ReadonlyArray<{ index: number; event: WardenEvent }>, now: number, exec: PostgresExec): Promise<{ accepted: number; duplicates: number; rejected: RejectedEvent[]; effects: Effects; live: LiveRows; messages: StreamMessage[] }> {
  const org = principal.org;
  const rows = async <T>(sql: string, params: unknown[]): Promise<T[]> => (await exec({ kind: "all", sql, params: params as Cell[] })) as T[];
  const effects: Effects = { durable: [], runs: new Set(), toolCalls: new Set() };
  const live: LiveRows = { runs: new Map(), toolCalls: new Map() };
  const rejected: RejectedEvent[] = [];
  let accepted = 0;
  let duplicates = 0;

  const bulk = events.filter((e) => BULK_TYPES.has(e.event.type));
  const runIds = [...new Set(bulk.flatMap((e) => (e.event.runId === null ? [] : [e.event.runId])))];
  const callIds = [...new Set(bulk.flatMap((e) => (e.event.toolCallId === null ? [] : [e.event.toolCallId])))];
  // What the batch's ids, runs and tool calls are already, in one round trip.
  const [known] = await rows<{ seen: string[] | null; runs: Array<{ id: string; org: string; agent_id: string }> | null; calls: Array<{ id: string; org: string; agent_id: string; run_id: string; status: string }> | null }>(
    `SELECT (SELECT json_agg(id) FROM ingested_events WHERE org = $1 AND id = ANY($2::text[])) AS seen,
       (SELECT json_agg(json_build_object('id', id, 'org', org, 'agent_id', agent_id)) FROM runs WHERE id = ANY($3::text[])) AS runs,
       (SELECT json_agg(json_build_object('id', id, 'org', org, 'agent_id', agent_id, 'run_id', run_id, 'status', status)) FROM tool_calls WHERE id = ANY($4::text[])) AS calls`,
    [org, events.map((e) => e.event.id), runIds, callIds],
  );
  const seen = new Set(known?.seen ?? []);
  const state: Rows = {
    runs: new Map((known?.runs ?? []).map((r) => [r.id, r])),
    toolCalls: new Map((known?.calls ?? []).map((r) => [r.id, r])),
  };
  // Steps of a run another organization holds are not written (projectEvent's rule); no write of this batch changes that.
  const foreignRuns = new Set([...state.runs].filter(([, run]) => run.org !== org).map(([id]) => id));
  const lookup: AdmissionLookup = {
    *run(_org, runId) {
      const row = state.runs.get(runId);
      return row !== undefined && row.org === org ? row : undefined;
    },
    *toolCall(_org, toolCallId) {
      const row = state.toolCalls.get(toolCallId);
      return row !== undefined && row.org === org ? row : undefined;
    },
  };

  let pending: WardenEvent[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    // The claim decides, as in ingestOne: an id a replica writing the same events committed meanwhile is a duplicate here.
    const claimed = new Set(
      (await rows<{ id: string }>("INSERT INTO ingested_events (org, id, received_at) SELECT $1, u.id, $3 FROM unnest($2::text[]) AS u(id) ORDER BY u.id ON CONFLICT DO NOTHING RETURNING id", [org, batch.map((e) => e.id), now])).map((r) => r.id),
    );
    const written = batch.filter((event) => claimed.has(event.id));
    duplicates += batch.length - written.length;
    accepted += written.length;
    await project(org, written, foreignRuns, effects, live, rows);
    await runAsync(ledger.appendMany(org, written.map(ledgerDraft)), exec);
  };

  for (const { index, event: sent } of events) {
    if (seen.has(sent.id)) {
      duplicates++;
      continue;
    }
    if (!BULK_TYPES.has(sent.type)) {
      // What came before it is written first: it reads the tables.
      await flush();
      const outcome = await runAsync(ingestOne(ledger, principal, sent, effects, now), exec);
      if (outcome.kind === "accepted") accepted++;
      else if (outcome.kind === "duplicate") duplicates++;
      else rejected.push({ index, id: sent.id, code: outcome.code, reason: outcome.reason });
      if (outcome.kind !== "rejected") seen.add(sent.id);
      continue;
    }
    const verdict = runSync(admit(principal, sent, lookup), () => {
      throw new Error("bulk admission reads no table");
    });
    if (verdict.kind === "refuse") {
      rejected.push({ index, id: sent.id, code: verdict.code, reason: verdict.reason });
      continue;
    }
    if (verdict.kind === "echo") throw new Error("agent telemetry is never an echo");
    seen.add(sent.id);
    pending.push(verdict.event);
    advance(org, verdict.event, state);
  }
  await flush();
  return { accepted, duplicates, rejected, effects, live, messages: await runAsync(streamEffects(org, effects, now), exec) };
}

/** What an admitted event's projection does to the rows admission reads, so the next event of the batch is admitted against them. */
function advance(org: string, event: WardenEvent, state: Rows): void {
  const agentId = event.agentId ?? "unknown";
  const type = event.type as string;
  if (event.runId !== null && (type === EventType.RUN_STARTED || type === EventType.RUN_COMPLETED || type === EventType.RUN_FAILED)) {
    if (!state.runs.has(event.runId)) state.runs.set(event.runId, { org, agent_id: agentId });
    return;
  }
  if (event.runId === null || event.toolCallId === null) return;
  const called = type === EventType.TOOL_CALLED;
  if (!called && type !== EventType.TOOL_COMPLETED && type !== EventType.TOOL_BLOCKED) return;
  const status = called ? calledStatus(event) : finishedStatus(event);
  const row = state.toolCalls.get(event.toolCallId);
  if (row === undefined) state.toolCalls.set(event.toolCallId, { org, agent_id: agentId, run_id: event.runId, status });
  else if (row.org === org && row.agent_id === agentId && !FINAL_REFUSALS.has(row.status)) row.status = called && FINAL_TOOL_STATUSES.has(row.status) ? row.status : status;
}

function calledStatus(event: WardenEvent): string {
  const action = str(event.data.decision);
  return action === "block" ? "blocked" : action === "require_approval" ? "awaiting_approval" : "pending";
}

function finishedStatus(event: WardenEvent): string {
  return str(event.data.status) ?? (event.type === EventType.TOOL_BLOCKED ? "blocked" : "completed");
}

/**
 * The row writes of admitted events (projectEvent's, one per event), in layers: a layer is one
 * statement, each template's rows an `unnest` in a data-modifying WITH (no row twice in a layer).
 */
async function project(org: string, events: readonly WardenEvent[], foreignRuns: ReadonlySet<string>, effects: Effects, live: LiveRows, rows: <T>(sql: string, params: unknown[]) => Promise<T[]>): Promise<void> {
  const agents = new Map<string, number>();
  const writes: Write[] = [];
  for (const event of events) {
    const write = writeOf(event, foreignRuns);
    if (write === undefined) continue;
    if (event.type === EventType.RUN_STARTED && !agents.has(event.agentId ?? "unknown")) agents.set(event.agentId ?? "unknown", event.ts);
    writes.push(write);
  }
  const layers: Write[][] = [];
  const lastLayer = new Map<string, number>();
  for (const write of writes) {
    const layer = (lastLayer.get(write.row) ?? -1) + 1;
    lastLayer.set(write.row, layer);
    (layers[layer] ??= []).push(write);
  }
  for (const [index, layer] of layers.entries()) {
    const statements: Array<{ template: Template; columns: Cell[][] }> = [];
    if (index === 0 && agents.size > 0) statements.push({ template: AGENTS, columns: [[...agents.keys()], [...agents.values()]] });
    const byTemplate = new Map<TemplateName, Cell[][]>();
    for (const write of layer) {
      const list = byTemplate.get(write.template) ?? [];
      list.push(write.cells);
      byTemplate.set(write.template, list);
    }
    for (const [name, list] of byTemplate) statements.push({ template: TEMPLATES[name], columns: list[0]!.map((_, column) => list.map((cells) => cells[column] ?? null)) });
    const params: unknown[] = [org];
    const parts: string[] = [];
    const returning: string[] = [];
    for (const [n, { template, columns }] of statements.entries()) {
      const offset = params.length - 1;
      parts.push(`w${n} AS (${template.sql.replace(/\$(\d+)/g, (match, k: string) => (k === "1" ? match : `$${Number(k) + offset}`))})`);
      params.push(...columns);
      if (template.changes !== undefined) returning.push(`SELECT '${template.changes}' AS kind, row FROM w${n}`);
    }
    const changed = await rows<{ kind: "runs" | "toolCalls"; row: { id: string } }>(`WITH ${parts.join(",\n")}\n${returning.length > 0 ? returning.join(" UNION ALL ") : "SELECT NULL AS kind, NULL::json AS row WHERE false"}`, params);
    for (const { kind, row } of changed) {
      effects[kind].add(row.id);
      // A later layer's row is newer.
      (live[kind] as Map<string, unknown>).set(row.id, row);
    }
  }
}

const AGENTS: Template = { sql: "INSERT INTO agents (org, id, created_at) SELECT $1, u.id, u.created_at FROM unnest($2::text[], $3::bigint[]) AS u(id, created_at) ON CONFLICT (org, id) DO NOTHING" };

/** projectEvent's write for one event, as cells of its template; undefined when it writes nothing. */
function writeOf(event: WardenEvent, foreignRuns: ReadonlySet<string>): Write | undefined {
  const data = event.data;
  const agentId = event.agentId ?? "unknown";
  switch (event.type as string) {
    case EventType.RUN_STARTED:
      if (event.runId === null) return undefined;
      return {
        template: "runStarted",
        row: `run:${event.runId}`,
        cells: [event.runId, agentId, str(data.traceId) ?? event.runId, str(data.parentRunId) ?? null, json(data.metadata), str(data.reason) ?? null, json(data.agentContext), str(data.tokenId) ?? null, event.ts],
      };
    case EventType.RUN_COMPLETED:
    case EventType.RUN_FAILED: {
      if (event.runId === null) return undefined;
      const status = event.type === EventType.RUN_COMPLETED ? "completed" : "failed";
      return { template: "runFinished", row: `run:${event.runId}`, cells: [event.runId, agentId, status, event.ts, status === "failed" ? json(data.error) : null] };
    }
    case EventType.STEP_STARTED:
    case EventType.STEP_COMPLETED:
      if (event.runId === null || event.stepId === null || foreignRuns.has(event.runId)) return undefined;
      return event.type === EventType.STEP_STARTED
        ? { template: "stepStarted", row: `step:${event.stepId}`, cells: [event.stepId, event.runId, str(data.name) ?? "step", json(data.metadata), event.ts] }
        : { template: "stepCompleted", row: `step:${event.stepId}`, cells: [event.stepId, event.runId, str(data.status) ?? "completed", event.ts] };
    case EventType.TOOL_CALLED: {
      if (event.runId === null || event.toolCallId === null) return undefined;
      const llm = data.kind === "llm";
      const action = str(data.decision);
      return {
        template: "toolCalled",
        row: `tool_call:${event.toolCallId}`,
        cells: [
          event.toolCallId,
          event.runId,
          event.stepId,
          agentId,
          llm ? "llm" : "tool",
          (llm ? str(data.model) : str(data.toolName)) ?? "unknown",
          str(data.actionType) ?? "unknown",
          calledStatus(event),
          json(data.input),
          json(data.agentContext),
          str(data.reason) ?? null,
          event.ts,
          action === undefined ? null : patchOf({ action, actionType: str(data.actionType) }),
        ],
      };
    }
    case EventType.POLICY_MATCHED:
      if (event.toolCallId === null) return undefined;
      return { template: "policyMatched", row: `tool_call:${event.toolCallId}`, cells: [event.toolCallId, patchOf({ action: str(data.decision), policyId: str(data.policyId), matches: Array.isArray(data.matches) ? data.matches : undefined })] };
    case EventType.TOOL_COMPLETED:
    case EventType.TOOL_BLOCKED: {
      if (event.runId === null || event.toolCallId === null) return undefined;
      const llm = data.kind === "llm";
      const blocked = event.type === EventType.TOOL_BLOCKED;
      const status = finishedStatus(event);
      const durationMs = num(data.durationMs);
      return {
        template: "toolFinished",
        row: `tool_call:${event.toolCallId}`,
        cells: [
          event.toolCallId,
          event.runId,
          agentId,
          llm ? "llm" : "tool",
          (llm ? str(data.model) : str(data.toolName)) ?? "unknown",
          status,
          json(data.output),
          json(data.error),
          blocked ? (str(data.reason) ?? null) : null,
          json(data.usage),
          // Durations are fractional milliseconds; times are whole ones (PostgreSQL's BIGINT refuses fractions).
          Math.round(event.ts - (durationMs ?? 0)),
          status !== "blocked" ? event.ts : null,
          durationMs ?? null,
          blocked && status === "blocked" ? patchOf({ action: "block", reason: str(data.reason), policyId: str(data.policyId), halted: data.halted === true ? true : undefined }) : null,
        ],
      };
    }
    default:
      return undefined;
  }
}
