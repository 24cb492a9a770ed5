// `POST /v1/events` on SQLite: bulk-ingest.ts's batch. SQLite runs in this process, where a prepared
// statement per row is cheaper than any multi-row form (JSON arrays are parsed again for every
// column), so what the batch saves is statements: per event one claim, one upsert (the decision merged
// in it, the changed row returned for the stream) and one ledger row; the reads of admission, the
// ledger head and the agents once per batch.
import type { WardenEvent } from "agent-warden";
import { ingestBulk, LIVE_ROWS, type BulkOutcome, type BulkWriter, type KnownCall, type KnownRun, type TemplateName, type Write } from "./bulk-ingest.js";
import { markIngested } from "./ingest.js";
import type { OrgLedger } from "./org-ledger.js";
import { all, run, type Query } from "./sql.js";
import type { RunRow } from "../records.js";
import type { Principal } from "./store.js";

/**
 * Writes a batch of schema-valid events inside the caller's transaction, with the outcome of
 * ingest.ts's `ingestBatch`.
 */
export function ingestBatchSqlite(ledger: OrgLedger, principal: Principal, events: ReadonlyArray<{ index: number; event: WardenEvent }>, now: number): Query<BulkOutcome> {
  return ingestBulk(ledger, principal, events, now, SQLITE_WRITER);
}

/** Ids per lookup: a fixed statement, the last chunk padded with its own last id (IN is a set). */
const CHUNK = 50;
const IN_LIST = `(${Array.from({ length: CHUNK }, () => "?").join(",")})`;

function* lookUp<T>(sql: string, prefix: readonly string[], ids: readonly string[]): Query<T[]> {
  const found: T[] = [];
  for (let start = 0; start < ids.length; start += CHUNK) {
    const chunk = ids.slice(start, start + CHUNK);
    while (chunk.length < CHUNK) chunk.push(chunk[chunk.length - 1]!);
    found.push(...(yield* all<T>(sql, ...prefix, ...chunk)));
  }
  return found;
}

/** `decision` merged with a patch (a shallow merge, the patch winning), as ingest.ts's mergeDecision does: a decision that is no JSON object is replaced. */
const mergeDecision = (current: string, patch: string) =>
  `CASE WHEN ${patch} IS NULL THEN ${current} WHEN ${current} IS NULL OR NOT json_valid(${current}) OR json_type(${current}) <> 'object' THEN ${patch} ELSE json_patch(${current}, ${patch}) END`;
const RUN_COLUMNS = "id, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error";
const CALL_COLUMNS = "id, run_id, agent_id, tool_name, status";
/** A tool call as the stream's live updates show it. */
type CallRow = { id: string; run_id: string; agent_id: string; tool_name: string; status: string };

/** projectEvent's statements, `?1` the organization and `?2`… the write's cells (bulk-ingest.ts's `writeOf`). */
const TEMPLATES: Record<TemplateName, { sql: string; changes?: "runs" | "toolCalls" }> = {
  runWhole: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error)
      VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT DO NOTHING`,
    changes: "runs",
  },
  toolCallWhole: {
    sql: `INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at, decision, output, error, blocked_reason, usage, ended_at, duration_ms)
      VALUES (?2, ?3, ?4, ?1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) ON CONFLICT DO NOTHING`,
    changes: "toolCalls",
  },
  runStarted: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at)
      VALUES (?2, ?1, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10)
      ON CONFLICT (id) DO UPDATE SET trace_id = excluded.trace_id, parent_run_id = excluded.parent_run_id,
        metadata = excluded.metadata, reason = excluded.reason, agent_context = excluded.agent_context, token_id = excluded.token_id, started_at = excluded.started_at
      WHERE runs.org = excluded.org AND runs.agent_id = excluded.agent_id`,
    changes: "runs",
  },
  runFinished: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, status, started_at, ended_at, error) VALUES (?2, ?1, ?3, ?2, ?4, ?5, ?5, ?6)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, error = excluded.error WHERE runs.org = excluded.org AND runs.agent_id = excluded.agent_id`,
    changes: "runs",
  },
  stepStarted: {
    sql: `INSERT INTO steps (id, run_id, name, status, metadata, started_at, ended_at, org) VALUES (?2, ?3, ?4, 'running', ?5, ?6, NULL, ?1)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, metadata = excluded.metadata, started_at = excluded.started_at
      WHERE steps.run_id = excluded.run_id AND steps.org = excluded.org`,
  },
  stepCompleted: {
    sql: `INSERT INTO steps (id, run_id, name, status, metadata, started_at, ended_at, org) VALUES (?2, ?3, 'step', ?4, NULL, ?5, ?5, ?1)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at
      WHERE steps.run_id = excluded.run_id AND steps.org = excluded.org`,
  },
  toolCalled: {
    sql: `INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at, decision)
      VALUES (?2, ?3, ?4, ?1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
      ON CONFLICT (id) DO UPDATE SET step_id = excluded.step_id, kind = excluded.kind,
        tool_name = excluded.tool_name, action_type = excluded.action_type, input = excluded.input, agent_context = excluded.agent_context,
        reason = excluded.reason, started_at = excluded.started_at,
        status = CASE WHEN tool_calls.status IN ('completed','failed','blocked','rejected') THEN tool_calls.status ELSE excluded.status END,
        decision = ${mergeDecision("tool_calls.decision", "excluded.decision")}
      WHERE tool_calls.org = excluded.org AND tool_calls.agent_id = excluded.agent_id AND tool_calls.status NOT IN ('blocked','rejected')`,
    changes: "toolCalls",
  },
  policyMatched: {
    sql: `UPDATE tool_calls SET decision = ${mergeDecision("decision", "?3")} WHERE id = ?2 AND org = ?1`,
  },
  toolFinished: {
    sql: `INSERT INTO tool_calls (id, run_id, org, agent_id, kind, tool_name, action_type, status, output, error, blocked_reason, usage, started_at, ended_at, duration_ms, decision)
      VALUES (?2, ?3, ?1, ?4, ?5, ?6, 'unknown', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, output = COALESCE(excluded.output, tool_calls.output), error = COALESCE(excluded.error, tool_calls.error),
        blocked_reason = COALESCE(excluded.blocked_reason, tool_calls.blocked_reason), usage = COALESCE(excluded.usage, tool_calls.usage),
        ended_at = COALESCE(excluded.ended_at, tool_calls.ended_at), duration_ms = COALESCE(excluded.duration_ms, tool_calls.duration_ms),
        decision = ${mergeDecision("tool_calls.decision", "excluded.decision")}
      WHERE tool_calls.org = excluded.org AND tool_calls.agent_id = excluded.agent_id AND tool_calls.status NOT IN ('blocked','rejected')`,
    changes: "toolCalls",
  },
};

const SQLITE_WRITER: BulkWriter = {
  *known(org, ids, runIds, callIds) {
    const seen = yield* lookUp<{ id: string }>(`SELECT id FROM ingested_events WHERE org = ? AND id IN ${IN_LIST}`, [org], ids);
    const runs = yield* lookUp<KnownRun>(`SELECT id, org, agent_id FROM runs WHERE id IN ${IN_LIST}`, [], runIds);
    const calls = yield* lookUp<KnownCall>(`SELECT id, org, agent_id, run_id, status FROM tool_calls WHERE id IN ${IN_LIST}`, [], callIds);
    return { seen: seen.map((row) => row.id), runs, calls };
  },
  *claim(org, ids, now) {
    const claimed = new Set<string>();
    for (const id of ids) if (yield* markIngested(org, id, now)) claimed.add(id);
    return claimed;
  },
  *project(org, writes, agents, effects, live) {
    for (const [agentId, ts] of agents) yield* run("INSERT INTO agents (org, id, created_at) VALUES (?,?,?) ON CONFLICT (org, id) DO NOTHING", org, agentId, ts);
    const taken: Write[] = [];
    // The rows the stream shows: a whole row inserted is its cells; the others are read once after the
    // writes (a RETURNING clause costs SQLite more than the read).
    const shown = { runs: new Set<string>(), toolCalls: new Set<string>() };
    const whole = { runs: new Map<string, RunRow>(), toolCalls: new Map<string, CallRow>() };
    for (const write of writes) {
      const template = TEMPLATES[write.template];
      const changed = yield* run(template.sql, org, ...write.cells);
      if (template.changes === undefined) continue;
      if (changed === 0) {
        if (write.parts !== undefined) taken.push(write);
        continue;
      }
      const id = write.cells[0] as string;
      effects[template.changes].add(id);
      if (!live[template.changes].has(id) && live[template.changes].size + shown[template.changes].size >= LIVE_ROWS) continue;
      shown[template.changes].add(id);
      const c = write.cells;
      if (write.template === "runWhole") {
        whole.runs.set(id, { id, agent_id: c[1] as string, trace_id: c[2] as string, parent_run_id: c[3] as string | null, status: c[4] as string, metadata: c[5] as string | null, reason: c[6] as string | null, agent_context: c[7] as string | null, token_id: c[8] as string | null, started_at: c[9] as number, ended_at: c[10] as number | null, error: c[11] as string | null });
      } else if (write.template === "toolCallWhole") {
        whole.toolCalls.set(id, { id, run_id: c[1] as string, agent_id: c[3] as string, tool_name: c[5] as string, status: c[7] as string });
      }
    }
    const runs = new Map((yield* lookUp<RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE id IN ${IN_LIST}`, [], [...shown.runs].filter((id) => !whole.runs.has(id)))).map((row) => [row.id, row]));
    for (const id of shown.runs) live.runs.set(id, whole.runs.get(id) ?? runs.get(id)!);
    const calls = new Map((yield* lookUp<CallRow>(`SELECT ${CALL_COLUMNS} FROM tool_calls WHERE id IN ${IN_LIST}`, [], [...shown.toolCalls].filter((id) => !whole.toolCalls.has(id)))).map((row) => [row.id, row]));
    for (const id of shown.toolCalls) live.toolCalls.set(id, whole.toolCalls.get(id) ?? calls.get(id)!);
    return taken;
  },
  *chain(ledger, org, drafts) {
    yield* ledger.appendMany(org, drafts, true);
  },
};
