// `POST /v1/events` on PostgreSQL: bulk-ingest.ts's batch, each statement a round trip to the
// database, so rows go many at once (`unnest` of one array per column).
//
// An upsert of one statement may not touch a row twice, and two events of a batch often name one row
// (a tool call's `tool.called` then `tool.completed`): the writes are put in layers, each event one
// layer after the last one that touched its row, so every row sees its events in batch order.
import type { WardenEvent } from "agent-warden";
import { ingestBulk, ingestBulkGroup, LIVE_ROWS, type BulkOutcome, type BulkWriter, type Cell, type KnownCall, type KnownRun, type LiveRows, type TemplateName, type Write } from "./bulk-ingest.js";
import type { Effects } from "./ingest.js";
import type { OrgLedger } from "./org-ledger.js";
import { runAsync, type Query, type SqlOp, type SqlValue } from "./sql.js";
import type { Principal } from "./store.js";
import type { RunRow } from "../records.js";

/** `decision` merged with a patch (a shallow merge, the patch winning), as mergeDecision does. */
const mergeDecision = (current: string, patch: string) => `CASE WHEN ${patch} IS NULL THEN ${current} WHEN ${current} IS NULL THEN ${patch} ELSE (${current}::jsonb || ${patch}::jsonb)::text END`;

interface Template {
  /** `$1` is the organization; `$2`… one array per column. */
  sql: string;
  /**
   * It returns the ids of the rows it changed (an upsert's `changed`), and the rows as they are now for
   * the stream's live updates (a whole row inserted returns none: its cells are the row).
   */
  changes?: "runs" | "toolCalls";
}

const TEMPLATES = {
  runWhole: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error)
      SELECT u.id, $1, u.agent_id, u.trace_id, u.parent_run_id, u.status, u.metadata, u.reason, u.agent_context, u.token_id, u.started_at, u.ended_at, u.error
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[])
        AS u(id, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error)
      ON CONFLICT DO NOTHING
      RETURNING runs.id, NULL::json AS row`,
    changes: "runs",
  },
  toolCallWhole: {
    sql: `INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at, decision, output, error, blocked_reason, usage, ended_at, duration_ms)
      SELECT u.id, u.run_id, u.step_id, $1, u.agent_id, u.kind, u.tool_name, u.action_type, u.status, u.input, u.agent_context, u.reason, u.started_at, u.decision, u.output, u.error, u.blocked_reason, u.usage, u.ended_at, u.duration_ms
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::bigint[], $20::float8[])
        AS u(id, run_id, step_id, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at, decision, output, error, blocked_reason, usage, ended_at, duration_ms)
      ON CONFLICT DO NOTHING
      RETURNING tool_calls.id, NULL::json AS row`,
    changes: "toolCalls",
  },
  runStarted: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at)
      SELECT u.id, $1, u.agent_id, u.trace_id, u.parent_run_id, 'running', u.metadata, u.reason, u.agent_context, u.token_id, u.started_at
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[]) AS u(id, agent_id, trace_id, parent_run_id, metadata, reason, agent_context, token_id, started_at)
      ON CONFLICT (id) DO UPDATE SET trace_id = excluded.trace_id, parent_run_id = excluded.parent_run_id,
        metadata = excluded.metadata, reason = excluded.reason, agent_context = excluded.agent_context, token_id = excluded.token_id, started_at = excluded.started_at
      WHERE runs.org = excluded.org AND runs.agent_id = excluded.agent_id
      RETURNING runs.id, row_to_json(runs.*) AS row`,
    changes: "runs",
  },
  runFinished: {
    sql: `INSERT INTO runs (id, org, agent_id, trace_id, status, started_at, ended_at, error)
      SELECT u.id, $1, u.agent_id, u.id, u.status, u.ts, u.ts, u.error
      FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) AS u(id, agent_id, status, ts, error)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, error = excluded.error WHERE runs.org = excluded.org AND runs.agent_id = excluded.agent_id
      RETURNING runs.id, row_to_json(runs.*) AS row`,
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
      RETURNING tool_calls.id, json_build_object('id', tool_calls.id, 'run_id', tool_calls.run_id, 'agent_id', tool_calls.agent_id, 'tool_name', tool_calls.tool_name, 'status', tool_calls.status) AS row`,
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
      RETURNING tool_calls.id, json_build_object('id', tool_calls.id, 'run_id', tool_calls.run_id, 'agent_id', tool_calls.agent_id, 'tool_name', tool_calls.tool_name, 'status', tool_calls.status) AS row`,
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
  return runAsync(ingestBulk(ledger, principal, events, now, POSTGRES_WRITER), (op) => exec(packArrays(op)));
}

/** Batches of one organization written together (bulk-ingest.ts's `ingestBulkGroup`), each with its own outcome. */
export function ingestGroupPostgres(ledger: OrgLedger, batches: ReadonlyArray<{ principal: Principal; events: ReadonlyArray<{ index: number; event: WardenEvent }> }>, now: number, exec: PostgresExec): Promise<BulkOutcome[]> {
  return runAsync(ingestBulkGroup(ledger, batches, now, POSTGRES_WRITER), (op) => exec(packArrays(op)));
}

/** Separators of `packArrays`' text: control characters, which no JSON text holds raw (JSON escapes them). */
const SEPARATOR = "\u001f";
const NULL_MARK = "\u001e";
const ARRAY_PARAMETER = /([$?])(\d+)::(text|bigint|float8)\[\]/g;

/**
 * A statement's array parameters (`$n::text[]`, `::bigint[]`, `::float8[]`) sent as one text each, the
 * values joined by a separator and split again by `string_to_array`: the driver quotes and escapes
 * every element of an array parameter, and the server unescapes it, for several times the work of a
 * join and a split. An array with a value that holds a separator (or one empty text, which splits to
 * no element) goes as an array.
 */
export function packArrays(op: SqlOp): SqlOp {
  const params = op.params.slice();
  const sql = op.sql.replace(ARRAY_PARAMETER, (match, sigil: string, n: string, type: string) => {
    const packed = pack(op.params[Number(n) - 1]);
    if (packed === undefined) return match;
    params[Number(n) - 1] = packed;
    return `string_to_array(${sigil}${n}::text, E'\\x1f', E'\\x1e')${type === "text" ? "" : `::${type}[]`}`;
  });
  return { kind: op.kind, sql, params };
}

function pack(values: unknown): string | undefined {
  if (!Array.isArray(values) || (values.length === 1 && values[0] === "")) return undefined;
  let text = "";
  for (let i = 0; i < values.length; i++) {
    const value: unknown = values[i];
    if (i > 0) text += SEPARATOR;
    if (value === null || value === undefined) text += NULL_MARK;
    else if (typeof value === "number") text += String(value);
    else if (typeof value === "string" && !value.includes(SEPARATOR) && !value.includes(NULL_MARK)) text += value;
    else return undefined;
  }
  return text;
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
    // Ids come back only when some were taken already (rare): otherwise the answer is one row, not one per event.
    const [answer] = yield* rows<{ ids: string[] | null }>(
      `WITH claimed AS (INSERT INTO ingested_events (org, id, received_at) SELECT $1, u.id, $3 FROM unnest($2::text[]) AS u(id) ORDER BY u.id ON CONFLICT DO NOTHING RETURNING id)
       SELECT CASE WHEN (SELECT count(*) FROM claimed) = $4::int THEN NULL ELSE (SELECT coalesce(json_agg(id), '[]') FROM claimed) END AS ids`,
      [org, ids, now, ids.length],
    );
    return new Set(answer?.ids ?? ids);
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
    const statements: Array<{ name: TemplateName | "agents"; template: Template; columns: Cell[][] }> = [];
    if (index === 0 && agents.size > 0) statements.push({ name: "agents", template: AGENTS, columns: [[...agents.keys()], [...agents.values()]] });
    const byTemplate = new Map<TemplateName, Cell[][]>();
    for (const write of layer) {
      const list = byTemplate.get(write.template) ?? [];
      list.push(write.cells);
      byTemplate.set(write.template, list);
    }
    for (const [name, list] of byTemplate) statements.push({ name, template: TEMPLATES[name], columns: list[0]!.map((_, column) => list.map((cells) => cells[column] ?? null)) });
    const params: unknown[] = [org];
    const parts: string[] = [];
    const returning: string[] = [];
    for (const [n, { name, template, columns }] of statements.entries()) {
      const offset = params.length - 1;
      parts.push(`w${n} AS (${template.sql.replace(/\$(\d+)/g, (match, k: string) => (k === "1" ? match : `$${Number(k) + offset}`))})`);
      params.push(...columns);
      if (template.changes !== undefined) returning.push(`SELECT '${name}' AS template, id, row FROM w${n}`);
    }
    const changed = yield* rows<{ template: TemplateName; id: string; row: unknown }>(`WITH ${parts.join(",\n")}\n${returning.length > 0 ? returning.join(" UNION ALL ") : "SELECT NULL AS template, NULL AS id, NULL::json AS row WHERE false"}`, params);
    const whole = new Map<string, Cell[]>();
    for (const write of layer) if (write.parts !== undefined) whole.set(write.row, write.cells);
    for (const { template, id, row } of changed) {
      const kind = (TEMPLATES[template] as Template).changes!;
      const key = `${kind === "runs" ? "run" : "tool_call"}:${id}`;
      returned.add(key);
      effects[kind].add(id);
      const shown = live[kind] as Map<string, unknown>;
      if (!shown.has(id) && shown.size >= LIVE_ROWS) continue;
      // A later layer's row is newer; a whole row inserted is its cells.
      shown.set(id, row ?? wholeRow(template, whole.get(key)!));
    }
  }
  // A folded write is its row's only one: no row returned means the row was there already.
  return writes.filter((write) => write.parts !== undefined && !returned.has(write.row));
}

type CallRow = LiveRows["toolCalls"] extends Map<string, infer T> ? T : never;

/** The row a whole-row insert (bulk-ingest.ts's `join`) wrote, from its cells, as the stream's live updates show it. */
function wholeRow(template: TemplateName, c: readonly Cell[]): RunRow | CallRow {
  if (template === "runWhole") {
    return { id: c[0] as string, agent_id: c[1] as string, trace_id: c[2] as string, parent_run_id: c[3] as string | null, status: c[4] as string, metadata: c[5] as string | null, reason: c[6] as string | null, agent_context: c[7] as string | null, token_id: c[8] as string | null, started_at: c[9] as number, ended_at: c[10] as number | null, error: c[11] as string | null };
  }
  return { id: c[0] as string, run_id: c[1] as string, agent_id: c[3] as string, tool_name: c[5] as string, status: c[7] as string };
}

const AGENTS: Template = { sql: "INSERT INTO agents (org, id, created_at) SELECT $1, u.id, u.created_at FROM unnest($2::text[], $3::bigint[]) AS u(id, created_at) ON CONFLICT (org, id) DO NOTHING" };
