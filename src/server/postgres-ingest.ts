// `POST /v1/events` on PostgreSQL: bulk-ingest.ts's batch, each statement a round trip to the
// database, so rows go many at once (`unnest` of one array per column).
//
// An upsert of one statement may not touch a row twice, and two events of a batch often name one row
// (a tool call's `tool.called` then `tool.completed`): the writes are put in layers, each event one
// layer after the last one that touched its row, so every row sees its events in batch order.
import type { WardenEvent } from "agent-warden";
import { ingestBulk, type BulkOutcome, type BulkWriter, type Cell, type KnownCall, type KnownRun, type LiveRows, type TemplateName, type Write } from "./bulk-ingest.js";
import type { Effects } from "./ingest.js";
import type { OrgLedger } from "./org-ledger.js";
import { runAsync, type Query, type SqlOp, type SqlValue } from "./sql.js";
import type { Principal } from "./store.js";

/** `decision` merged with a patch (a shallow merge, the patch winning), as mergeDecision does. */
const mergeDecision = (current: string, patch: string) => `CASE WHEN ${patch} IS NULL THEN ${current} WHEN ${current} IS NULL THEN ${patch} ELSE (${current}::jsonb || ${patch}::jsonb)::text END`;

interface Template {
  /** `$1` is the organization; `$2`… one array per column. */
  sql: string;
  /** It returns the rows it changed (an upsert's `changed`), as they are now, for the stream's live updates. */
  changes?: "runs" | "toolCalls";
}

const TEMPLATES = {
  runWhole: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error)
      SELECT u.id, $1, u.agent_id, u.trace_id, u.parent_run_id, u.status, u.metadata, u.reason, u.agent_context, u.token_id, u.started_at, u.ended_at, u.error
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[])
        AS u(id, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error)
      ON CONFLICT DO NOTHING
      RETURNING row_to_json(runs.*) AS row`,
    changes: "runs",
  },
  toolCallWhole: {
    sql: `INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at, decision, output, error, blocked_reason, usage, ended_at, duration_ms)
      SELECT u.id, u.run_id, u.step_id, $1, u.agent_id, u.kind, u.tool_name, u.action_type, u.status, u.input, u.agent_context, u.reason, u.started_at, u.decision, u.output, u.error, u.blocked_reason, u.usage, u.ended_at, u.duration_ms
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::bigint[], $20::float8[])
        AS u(id, run_id, step_id, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at, decision, output, error, blocked_reason, usage, ended_at, duration_ms)
      ON CONFLICT DO NOTHING
      RETURNING json_build_object('id', tool_calls.id, 'run_id', tool_calls.run_id, 'agent_id', tool_calls.agent_id, 'tool_name', tool_calls.tool_name, 'status', tool_calls.status) AS row`,
    changes: "toolCalls",
  },
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
} satisfies Record<TemplateName, Template>;

/** Runs a statement on the transaction's connection and gives its rows. */
export type PostgresExec = (op: SqlOp) => Promise<unknown>;

/**
 * Writes a batch of schema-valid events in one transaction (the caller's), with the outcome of
 * ingest.ts's `ingestBatch` (bulk-ingest.ts's `ingestBulk`, with arrays for rows).
 */
export function ingestBatchPostgres(ledger: OrgLedger, principal: Principal, events: ReadonlyArray<{ index: number; event: WardenEvent }>, now: number, exec: PostgresExec): Promise<BulkOutcome> {
  return runAsync(ingestBulk(ledger, principal, events, now, POSTGRES_WRITER), exec);
}

function* rows<T>(sql: string, params: unknown[]): Query<T[]> {
  return (yield { kind: "all", sql, params: params as SqlValue[] }) as T[];
}

const POSTGRES_WRITER: BulkWriter = {
  *known(org, ids, runIds, callIds) {
    // What the batch's ids, runs and tool calls are already, in one round trip.
    const [known] = yield* rows<{ seen: string[] | null; runs: KnownRun[] | null; calls: KnownCall[] | null }>(
      `SELECT (SELECT json_agg(id) FROM ingested_events WHERE org = $1 AND id = ANY($2::text[])) AS seen,
         (SELECT json_agg(json_build_object('id', id, 'org', org, 'agent_id', agent_id)) FROM runs WHERE id = ANY($3::text[])) AS runs,
         (SELECT json_agg(json_build_object('id', id, 'org', org, 'agent_id', agent_id, 'run_id', run_id, 'status', status)) FROM tool_calls WHERE id = ANY($4::text[])) AS calls`,
      [org, ids, runIds, callIds],
    );
    return { seen: known?.seen ?? [], runs: known?.runs ?? [], calls: known?.calls ?? [] };
  },
  *claim(org, ids, now) {
    const claimed = yield* rows<{ id: string }>("INSERT INTO ingested_events (org, id, received_at) SELECT $1, u.id, $3 FROM unnest($2::text[]) AS u(id) ORDER BY u.id ON CONFLICT DO NOTHING RETURNING id", [org, ids, now]);
    return new Set(claimed.map((r) => r.id));
  },
  project,
  *chain(ledger, org, drafts) {
    yield* ledger.appendMany(org, drafts);
  },
};

/**
 * The row writes of admitted events (projectEvent's, one per event), in layers: a layer is one
 * statement, each template's rows an `unnest` in a data-modifying WITH (no row twice in a layer).
 */
function* project(org: string, writes: readonly Write[], agents: ReadonlyMap<string, number>, effects: Effects, live: LiveRows): Query<Write[]> {
  const returned = new Set<string>();
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
    const changed = yield* rows<{ kind: "runs" | "toolCalls"; row: { id: string } }>(`WITH ${parts.join(",\n")}\n${returning.length > 0 ? returning.join(" UNION ALL ") : "SELECT NULL AS kind, NULL::json AS row WHERE false"}`, params);
    for (const { kind, row } of changed) {
      returned.add(`${kind === "runs" ? "run" : "tool_call"}:${row.id}`);
      effects[kind].add(row.id);
      // A later layer's row is newer.
      (live[kind] as Map<string, unknown>).set(row.id, row);
    }
  }
  // A folded write is its row's only one: no row returned means the row was there already.
  return writes.filter((write) => write.parts !== undefined && !returned.has(write.row));
}

const AGENTS: Template = { sql: "INSERT INTO agents (org, id, created_at) SELECT $1, u.id, u.created_at FROM unnest($2::text[], $3::bigint[]) AS u(id, created_at) ON CONFLICT (org, id) DO NOTHING" };
