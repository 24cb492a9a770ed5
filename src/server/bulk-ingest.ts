// `POST /v1/events` with a fixed number of reads per batch instead of several per event, for both
// stores. The rules are ingest.ts's: an event is admitted by the same `admit`, against the rows it
// names as the batch left them (read once for the whole batch, then advanced in memory); the
// projections are its upserts, each event's one write (`writeOf`) with the decision merged in the
// same statement; the ledger entries go into the organization's chain in batch order, the head row
// taken once. Event types other than an agent's telemetry (approval requests and outcomes,
// revocations, refusals) are rare: each goes through ingest.ts statement by statement, after what
// came before it in the batch is written. How the rows are read and written is the store's
// (`BulkWriter`): PostgreSQL sends arrays (postgres-ingest.ts), SQLite runs a prepared statement per
// row (sqlite-ingest.ts).
import { EventType } from "agent-warden";
import type { WardenEvent } from "agent-warden";
import { admit, AGENT_EVENT_TYPES, FINAL_TOOL_STATUS_LIST, ingestOne, ledgerDraft, streamEffects, type AdmissionLookup, type Effects, type RejectedEvent } from "./ingest.js";
import type { OrgLedger, OrgLedgerDraft } from "./org-ledger.js";
import { runSync, type Query } from "./sql.js";
import { toRunSummary, type RunRow } from "../records.js";
import type { Principal, StreamMessage } from "./store.js";

/** Agent telemetry, written in bulk: what an agent emits about its own work, but for approval requests (decided one by one). */
export const BULK_TYPES: ReadonlySet<string> = new Set([...AGENT_EVENT_TYPES].filter((type) => type !== EventType.APPROVAL_REQUESTED));
const FINAL_TOOL_STATUSES: ReadonlySet<string> = new Set(FINAL_TOOL_STATUS_LIST);
/** Statuses nothing moves a call out of. */
const FINAL_REFUSALS = new Set(["blocked", "rejected"]);

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined);
const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));
/** A decision patch as ingest.ts's mergeDecision applies it: undefined keys dropped. */
const patchOf = (patch: Record<string, unknown>): string => JSON.stringify(Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)));

/** The write of one event: which statement, and its cells (the organization is bound apart). */
export type TemplateName = "runStarted" | "runFinished" | "stepStarted" | "stepCompleted" | "toolCalled" | "policyMatched" | "toolFinished" | "runWhole" | "toolCallWhole";
export type Cell = string | number | null;
export interface Write {
  template: TemplateName;
  /** The row it writes, as `table:id`. */
  row: string;
  cells: Cell[];
  /**
   * A row new to the database that the batch starts and finishes (`runWhole`, `toolCallWhole`): one
   * insert of the row as the two writes leave it, which does nothing if the row exists by then (another
   * writer's); the writer then runs these two instead.
   */
  parts?: [Write, Write];
}

/** A run row as admission reads it, in any organization. */
export interface KnownRun {
  id: string;
  org: string;
  agent_id: string;
}
/** A tool call row as admission reads it, in any organization. */
export interface KnownCall {
  id: string;
  org: string;
  agent_id: string;
  run_id: string;
  status: string;
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

/** How a store reads and writes a batch's rows. */
export interface BulkWriter {
  /** Which of `ids` the organization has seen, and the runs and tool calls with these ids in any organization. */
  known(org: string, ids: readonly string[], runIds: readonly string[], callIds: readonly string[]): Query<{ seen: string[]; runs: KnownRun[]; calls: KnownCall[] }>;
  /** Claims event ids (`ingested_events`); gives those this call claimed (the others were taken already). */
  claim(org: string, ids: readonly string[], now: number): Query<ReadonlySet<string>>;
  /**
   * The writes of admitted events, in batch order; the rows they changed go to `effects` and `live`.
   * Gives the folded writes (with `parts`) whose row existed already, not written.
   */
  project(org: string, writes: readonly Write[], agents: ReadonlyMap<string, number>, effects: Effects, live: LiveRows): Query<Write[]>;
  /** The entries of the written events, in batch order. */
  chain(ledger: OrgLedger, org: string, drafts: readonly OrgLedgerDraft[]): Query<void>;
}

export interface BulkOutcome {
  accepted: number;
  duplicates: number;
  rejected: RejectedEvent[];
  effects: Effects;
  live: LiveRows;
  messages: StreamMessage[];
}

/**
 * Writes a batch of schema-valid events (each with its index in the request) inside the caller's
 * transaction, with the outcome of ingest.ts's `ingestBatch`: duplicates skipped (by id, also against
 * another writer of the same batch at once), refused events listed, the rest projected and chained
 * in batch order.
 */
export function* ingestBulk(ledger: OrgLedger, principal: Principal, events: ReadonlyArray<{ index: number; event: WardenEvent }>, now: number, writer: BulkWriter): Query<BulkOutcome> {
  return (yield* ingestBulkGroup(ledger, [{ principal, events }], now, writer))[0]!;
}

/**
 * Writes batches of one organization, each as `ingestBulk` would one after the other, with the reads
 * and writes of all of them together: each event admitted against the rows as the events before it
 * (of its batch and of the batches before) left them. Each batch gets its own answer; the stream's
 * messages and live rows of the whole group come with the first.
 */
export function* ingestBulkGroup(ledger: OrgLedger, batches: ReadonlyArray<{ principal: Principal; events: ReadonlyArray<{ index: number; event: WardenEvent }> }>, now: number, writer: BulkWriter): Query<BulkOutcome[]> {
  const org = batches[0]!.principal.org;
  if (batches.some((batch) => batch.principal.org !== org)) throw new Error("a group of batches is one organization's");
  const effects: Effects = { durable: [], runs: new Set(), toolCalls: new Set() };
  const live: LiveRows = { runs: new Map(), toolCalls: new Map() };
  const outcomes: BulkOutcome[] = batches.map(() => ({ accepted: 0, duplicates: 0, rejected: [], effects, live, messages: [] }));

  const ids: string[] = [];
  const runIds = new Set<string>();
  const callIds = new Set<string>();
  for (const { events } of batches) {
    for (const { event } of events) {
      ids.push(event.id);
      if (!BULK_TYPES.has(event.type)) continue;
      if (event.runId !== null) runIds.add(event.runId);
      if (event.toolCallId !== null) callIds.add(event.toolCallId);
    }
  }
  const known = yield* writer.known(org, ids, [...runIds], [...callIds]);
  const seen = new Set(known.seen);
  // Rows in the database before a flush: a row not among them that the flush starts and finishes is written once.
  const existing = new Set<string>([...known.runs.map((r) => `run:${r.id}`), ...known.calls.map((r) => `tool_call:${r.id}`)]);
  const state: Rows = { runs: new Map(known.runs.map((r) => [r.id, r])), toolCalls: new Map(known.calls.map((r) => [r.id, r])) };
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

  let pending: Array<{ event: WardenEvent; outcome: BulkOutcome }> = [];
  function* flush(): Query<void> {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    // The claim decides, as in ingestOne: an id another writer of the same events committed meanwhile is a duplicate here.
    const claimed = yield* writer.claim(
      org,
      batch.map((e) => e.event.id),
      now,
    );
    const written: WardenEvent[] = [];
    for (const { event, outcome } of batch) {
      if (claimed.has(event.id)) {
        written.push(event);
        outcome.accepted++;
      } else outcome.duplicates++;
    }
    const agents = new Map<string, number>();
    const writes: Write[] = [];
    for (const event of written) {
      const write = writeOf(event, foreignRuns);
      if (write === undefined) continue;
      if (event.type === EventType.RUN_STARTED && !agents.has(event.agentId ?? "unknown")) agents.set(event.agentId ?? "unknown", event.ts);
      writes.push(write);
    }
    const folded = fold(writes, existing);
    for (const write of writes) existing.add(write.row);
    const taken = yield* writer.project(org, folded, agents, effects, live);
    // Rows another writer created meanwhile get the two writes, in order.
    if (taken.length > 0) yield* writer.project(org, taken.flatMap((write) => write.parts ?? [write]), new Map(), effects, live);
    yield* writer.chain(ledger, org, written.map(ledgerDraft));
  }

  for (const [b, { principal, events }] of batches.entries()) {
    const outcome = outcomes[b]!;
    for (const { index, event: sent } of events) {
      if (seen.has(sent.id)) {
        outcome.duplicates++;
        continue;
      }
      if (!BULK_TYPES.has(sent.type)) {
        // What came before it is written first: it reads the tables.
        yield* flush();
        const one = yield* ingestOne(ledger, principal, sent, effects, now);
        if (one.kind === "accepted") outcome.accepted++;
        else if (one.kind === "duplicate") outcome.duplicates++;
        else outcome.rejected.push({ index, id: sent.id, code: one.code, reason: one.reason });
        if (one.kind !== "rejected") seen.add(sent.id);
        continue;
      }
      const verdict = runSync(admit(principal, sent, lookup), () => {
        throw new Error("bulk admission reads no table");
      });
      if (verdict.kind === "refuse") {
        outcome.rejected.push({ index, id: sent.id, code: verdict.code, reason: verdict.reason });
        continue;
      }
      if (verdict.kind === "echo") throw new Error("agent telemetry is never an echo");
      seen.add(sent.id);
      pending.push({ event: verdict.event, outcome });
      advance(org, verdict.event, state);
    }
  }
  yield* flush();
  outcomes[0]!.messages = yield* streamEffects(org, effects, now);
  // The live rows and effects are the group's: the first answer carries them, the others none.
  for (const outcome of outcomes.slice(1)) {
    outcome.effects = { durable: [], runs: new Set(), toolCalls: new Set() };
    outcome.live = { runs: new Map(), toolCalls: new Map() };
  }
  return outcomes;
}

/**
 * A row the database does not hold yet whose only writes in `writes` are its start and its end
 * (`run.started` then `run.completed`/`run.failed`; `tool.called` then `tool.completed`, the call not
 * refused and the end merging no decision), as one write of the row those two leave, at the first
 * one's place. Every other write is kept as it is. Admission has checked both events against the same
 * agent, run and organization, so the upserts' conditions hold for the second.
 */
function fold(writes: readonly Write[], existing: ReadonlySet<string>): Write[] {
  const byRow = new Map<string, Write[]>();
  for (const write of writes) {
    if (existing.has(write.row)) continue;
    const list = byRow.get(write.row);
    if (list === undefined) byRow.set(write.row, [write]);
    else list.push(write);
  }
  const whole = new Map<Write, Write>();
  const dropped = new Set<Write>();
  for (const list of byRow.values()) {
    if (list.length !== 2) continue;
    const [first, second] = list as [Write, Write];
    const joined = join(first, second);
    if (joined === undefined) continue;
    whole.set(first, joined);
    dropped.add(second);
  }
  if (whole.size === 0) return writes as Write[];
  const out: Write[] = [];
  for (const write of writes) if (!dropped.has(write)) out.push(whole.get(write) ?? write);
  return out;
}

/** Cells of `cells` at `indexes` (-1: of `other`, at the index after it). */
const pick = (cells: readonly Cell[], indexes: readonly number[]): Cell[] => indexes.map((index) => cells[index] ?? null);

function join(first: Write, second: Write): Write | undefined {
  if (first.template === "runStarted" && second.template === "runFinished") {
    // runStarted: id, agent, trace, parent, metadata, reason, context, token, ts; runFinished: id, agent, status, ts, error.
    const [a, b] = [first.cells, second.cells];
    return { template: "runWhole", row: first.row, cells: [...pick(a, [0, 1, 2, 3]), b[2] ?? null, ...pick(a, [4, 5, 6, 7, 8]), ...pick(b, [3, 4])], parts: [first, second] };
  }
  if (first.template === "toolCalled" && second.template === "toolFinished") {
    // toolCalled: id, run, step, agent, kind, tool, action type, status, input, context, reason, started, decision.
    // toolFinished: id, run, agent, kind, tool, status, output, error, blocked reason, usage, started, ended, duration, decision patch.
    const [a, b] = [first.cells, second.cells];
    // A refused call keeps its row as the call left it; a finish that merges a decision goes as it is.
    if (FINAL_REFUSALS.has(a[7] as string) || b[13] !== null) return undefined;
    return { template: "toolCallWhole", row: first.row, cells: [...pick(a, [0, 1, 2, 3, 4, 5, 6]), b[5] ?? null, ...pick(a, [8, 9, 10, 11, 12]), ...pick(b, [6, 7, 8, 9, 11, 12])], parts: [first, second] };
  }
  return undefined;
}

/** Runs, and tool calls, a batch's live updates show at most. */
export const LIVE_ROWS = 200;

/** The stream's live updates of what a batch changed: at most 200 runs and 200 tool calls, as the batch left them. */
export function liveUpdates(live: LiveRows): StreamMessage[] {
  const now = Date.now();
  const messages: StreamMessage[] = [];
  for (const row of [...live.runs.values()].slice(0, LIVE_ROWS)) messages.push({ seq: undefined, type: "run.updated", data: toRunSummary(row), ts: now });
  for (const row of [...live.toolCalls.values()].slice(0, LIVE_ROWS)) messages.push({ seq: undefined, type: "tool_call.updated", data: { toolCallId: row.id, runId: row.run_id, agentId: row.agent_id, toolName: row.tool_name, status: row.status }, ts: now });
  return messages;
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
