import type { SQLInputValue } from "node:sqlite";
import { RunStatus, ToolCallStatus } from "../enums.js";
import type { ApprovalRow, RunRow, StepRow, ToolCallRow } from "../records.js";
import { expandLedgerEntry } from "../ledger/fold.js";
import { FOLDED_CALL_SQL, ledgerRunMatch, TOOL_CALLS_OF_RUN_SQL } from "./schema.js";
import type { QueuedWrite, SqliteStore } from "./sqlite-store.js";

/**
 * A row inserted but perhaps not committed yet. `patch` changes named columns in the queued insert
 * while it waits (so a short run or call commits once), and reports false once it has committed.
 */
export class PendingRow<Columns extends string> {
  readonly #write: QueuedWrite;
  readonly #index: ReadonlyMap<Columns, number>;
  /** Columns whose values the ledger holds: the row keeps them empty. */
  readonly inLedger: ReadonlySet<Columns> | undefined;

  constructor(write: QueuedWrite, index: ReadonlyMap<Columns, number>, inLedger?: ReadonlySet<Columns>) {
    this.#write = write;
    this.#index = index;
    this.inLedger = inLedger;
  }

  /** Sets the columns in the queued insert, but those in `skip`; false when it has committed already (update the row instead). */
  patch(values: Partial<Record<Columns, SQLInputValue>>, skip?: ReadonlySet<Columns>): boolean {
    if (this.#write.done) return false;
    const params = this.#write.params;
    // for…in, not Object.entries: a call's end patches its row on the hot path, and builds no pairs here.
    for (const column in values) {
      if (skip?.has(column)) continue;
      params[this.#index.get(column)!] = values[column]!;
    }
    return true;
  }
}

const RUN_COLUMNS = ["org", "id", "agent_id", "trace_id", "parent_run_id", "status", "metadata", "reason", "agent_context", "token_id", "owner", "started_at", "ended_at", "error"] as const;
const TOOL_CALL_COLUMNS = ["id", "external_id", "run_id", "step_id", "org", "agent_id", "kind", "tool_name", "action_type", "status", "input", "output", "error", "blocked_reason", "decision", "agent_context", "reason", "usage", "started_at", "ended_at", "duration_ms"] as const;
export type RunColumn = (typeof RUN_COLUMNS)[number];
export type ToolCallColumn = (typeof TOOL_CALL_COLUMNS)[number];
type Values<C extends string> = Partial<Record<C, SQLInputValue>>;

const indexOf = <C extends string>(columns: readonly C[]) => new Map(columns.map((c, i) => [c, i]));
const RUN_INDEX = indexOf(RUN_COLUMNS);
const TOOL_CALL_INDEX = indexOf(TOOL_CALL_COLUMNS);
const insertSql = (table: string, columns: readonly string[]) => `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(",")})`;
const RUN_INSERT = insertSql("runs", RUN_COLUMNS);
const TOOL_CALL_INSERT = insertSql("tool_calls", TOOL_CALL_COLUMNS);
const RUN_SELECT = "id, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error";
/**
 * What a tool call's ledger entries hold already: its output and error (in the event that ended it). A
 * tool call's row (kind `tool`) keeps them empty and reads them back from there. The input stays in the
 * row: the ledger holds it in canonical form (keys sorted), and the run tree shows it as the agent gave it.
 */
const TOOL_CALL_IN_LEDGER: ReadonlySet<ToolCallColumn> = new Set(["output", "error"]);
const CALL_ENDS_OF_RUN = `SELECT type, tool_call_id, data FROM ledger WHERE ${ledgerRunMatch("")} AND tool_call_id IS NOT NULL AND type IN ('tool.call', 'tool.completed', 'tool.blocked') ORDER BY seq`;
/** The decision most calls get, as a row stores it (`storedDecision`): the folded entry's `"decision":"allow"` says all of it. */
const PLAIN_ALLOW = JSON.stringify("allow");

/**
 * The runs, steps, tool calls and agents of one organization in the embedded store, behind named
 * operations: the client's collaborators never write SQL. Writes are queued (group commit); reads flush.
 */
export class RunStore {
  readonly #store: SqliteStore;
  readonly #org: string;

  constructor(store: SqliteStore, org: string) {
    this.#store = store;
    this.#org = org;
  }

  /** While the store's writer is behind, what a governed call awaits before it runs (see `SqliteStore.backpressure`). */
  backpressure(): Promise<void> | undefined {
    return this.#store.backpressure();
  }

  // ── agents ──

  /** Registers the client's own agent (and its group). */
  saveAgent(agentId: string, group: string | undefined): void {
    this.#store.write("INSERT INTO agents (org, id, grp, created_at) VALUES (?,?,?,?) ON CONFLICT(org, id) DO UPDATE SET grp = excluded.grp", [this.#org, agentId, group ?? null, Date.now()]);
  }

  /** Registers an agent a run acts as, keeping its group if known. */
  noteAgent(agentId: string): void {
    this.#store.write("INSERT OR IGNORE INTO agents (org, id, created_at) VALUES (?,?,?)", [this.#org, agentId, Date.now()]);
  }

  /** The agent's group, without flushing (another process may have registered it). */
  groupOf(agentId: string): string | undefined {
    return this.#store.peek<{ grp: string | null }>("SELECT grp FROM agents WHERE org = ? AND id = ?", this.#org, agentId)?.grp ?? undefined;
  }

  // ── runs ──

  insertRun(values: Omit<Record<RunColumn, SQLInputValue>, "org" | "ended_at" | "error">): PendingRow<RunColumn> {
    return new PendingRow(this.#store.write(RUN_INSERT, RUN_COLUMNS.map((c) => (c === "org" ? this.#org : ((values as Values<RunColumn>)[c] ?? null)))), RUN_INDEX);
  }

  /** Ends a run: in its queued insert if it has not committed, else by an update. */
  endRun(pending: PendingRow<RunColumn> | undefined, runId: string, status: RunStatus, error: string | null, endedAt = Date.now()): void {
    if (pending?.patch({ status, ended_at: endedAt, error })) return;
    this.#store.write("UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ? AND org = ?", [status, endedAt, error, runId, this.#org]);
  }

  run(runId: string): RunRow | undefined {
    return this.#store.get<RunRow>(`SELECT ${RUN_SELECT} FROM runs WHERE id = ? AND org = ?`, runId, this.#org);
  }

  /** The run's state as a process taking it over needs it. */
  runHead(runId: string): { status: string; agent_id: string; trace_id: string; token_id: string | null } | undefined {
    return this.#store.get("SELECT status, agent_id, trace_id, token_id FROM runs WHERE id = ? AND org = ?", runId, this.#org);
  }

  runStatus(runId: string): string | undefined {
    return this.#store.get<{ status: string }>("SELECT status FROM runs WHERE id = ? AND org = ?", runId, this.#org)?.status;
  }

  traceOf(runId: string): string | undefined {
    return this.#store.get<{ trace_id: string }>("SELECT trace_id FROM runs WHERE id = ? AND org = ?", runId, this.#org)?.trace_id;
  }

  childRunIds(runId: string): string[] {
    return this.#store.all<{ id: string }>("SELECT id FROM runs WHERE parent_run_id = ? AND org = ? ORDER BY started_at, rowid", runId, this.#org).map((r) => r.id);
  }

  /** Every run below this one in its tree (children, their children, …), from the store. */
  descendantRunIds(runId: string): string[] {
    return this.#store
      .all<{ id: string }>(
        "WITH RECURSIVE tree(id) AS (SELECT id FROM runs WHERE parent_run_id = ?1 AND org = ?2 UNION SELECT r.id FROM runs r JOIN tree t ON r.parent_run_id = t.id WHERE r.org = ?2) SELECT id FROM tree",
        runId,
        this.#org,
      )
      .map((r) => r.id);
  }

  listRuns(filter: { agentId?: string | undefined; status?: string | undefined; traceId?: string | undefined; limit?: number | undefined; offset?: number | undefined }): RunRow[] {
    return this.#store.all<RunRow>(
      `SELECT ${RUN_SELECT} FROM runs WHERE org = ?1 AND (?2 IS NULL OR agent_id = ?2) AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR trace_id = ?4) ORDER BY started_at DESC, rowid DESC LIMIT ?5 OFFSET ?6`,
      this.#org,
      filter.agentId ?? null,
      filter.status ?? null,
      filter.traceId ?? null,
      filter.limit ?? 50,
      filter.offset ?? 0,
    );
  }

  /** The owners of runs still marked running, with those runs: for finding runs whose process is gone. */
  runningOwners(): Map<string, Array<{ id: string; agent_id: string }>> {
    const owners = new Map<string, Array<{ id: string; agent_id: string }>>();
    for (const row of this.#store.all<{ id: string; agent_id: string; owner: string }>("SELECT id, agent_id, owner FROM runs WHERE org = ? AND status = ? AND owner IS NOT NULL", this.#org, RunStatus.RUNNING)) {
      const list = owners.get(row.owner) ?? [];
      list.push({ id: row.id, agent_id: row.agent_id });
      owners.set(row.owner, list);
    }
    return owners;
  }

  /**
   * Detaches the runs this process leaves running on purpose (a coding-agent hook's session run, a run
   * paused across requests): they stay `running` for another process to take over, and only the runs
   * of a process that died without closing (kill -9) are judged abandoned.
   */
  releaseRuns(owner: string): void {
    if (this.#store.isMemory) return;
    this.#store.flush();
    this.#store.db.prepare("UPDATE runs SET owner = NULL WHERE org = ? AND owner = ? AND status = ?").run(this.#org, owner, RunStatus.RUNNING);
  }

  /** Fails a run left running by a process that is gone, unless it finished meanwhile; true when it did. */
  abandonRun(runId: string, error: string): boolean {
    return this.#store.transaction(() => {
      const row = this.#store.peek<{ status: string }>("SELECT status FROM runs WHERE id = ? AND org = ?", runId, this.#org);
      if (row?.status !== RunStatus.RUNNING) return false;
      const now = Date.now();
      this.#store.db.prepare("UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ? AND org = ?").run(RunStatus.FAILED, now, error, runId, this.#org);
      this.#store.db.prepare("UPDATE tool_calls SET status = ?, error = ?, ended_at = ? WHERE run_id = ? AND org = ? AND status IN (?, ?)").run(ToolCallStatus.FAILED, error, now, runId, this.#org, ToolCallStatus.PENDING, ToolCallStatus.AWAITING_APPROVAL);
      return true;
    });
  }

  // ── steps ──

  insertStep(stepId: string, runId: string, name: string, metadata: string | null): void {
    this.#store.write("INSERT INTO steps (id, org, run_id, name, status, metadata, started_at) VALUES (?,?,?,?,?,?,?)", [stepId, this.#org, runId, name, RunStatus.RUNNING, metadata, Date.now()]);
  }

  step(stepId: string): { status: string; run_id: string } | undefined {
    return this.#store.get("SELECT status, run_id FROM steps WHERE id = ? AND org = ?", stepId, this.#org);
  }

  endStep(stepId: string, status: RunStatus): void {
    this.#store.write("UPDATE steps SET status = ?, ended_at = ? WHERE id = ? AND org = ?", [status, Date.now(), stepId, this.#org]);
  }

  stepsOf(runId: string): StepRow[] {
    return this.#store.all<StepRow>("SELECT * FROM steps WHERE run_id = ? AND org = ? ORDER BY started_at, rowid", runId, this.#org);
  }

  // ── tool calls (and LLM calls, kind 'llm') ──

  insertToolCall(values: Omit<Values<ToolCallColumn>, "org">): PendingRow<ToolCallColumn> {
    const inLedger = values.kind === "tool" ? TOOL_CALL_IN_LEDGER : undefined;
    const params = TOOL_CALL_COLUMNS.map((c) => (c === "org" ? this.#org : inLedger?.has(c) ? null : ((values as Values<ToolCallColumn>)[c] ?? null)));
    // A call allowed with nothing matched, without a framework id: if it ends before its row commits, its
    // folded entry holds all the row would (`foldedToolCallsSql`), and the row is not written.
    const foldsWith = values.kind === "tool" && values.decision === PLAIN_ALLOW && values.status === ToolCallStatus.PENDING && (values.external_id ?? null) === null && (values.blocked_reason ?? null) === null && (values.usage ?? null) === null ? (values.id as string) : undefined;
    return new PendingRow(this.#store.write(TOOL_CALL_INSERT, params, foldsWith), TOOL_CALL_INDEX, inLedger);
  }

  /** Sets a call's final columns: in its queued insert if it has not committed, else by an update. */
  updateToolCall(pending: PendingRow<ToolCallColumn> | undefined, toolCallId: string, given: Values<ToolCallColumn>): void {
    const inLedger = pending?.inLedger;
    if (pending?.patch(given, inLedger)) return;
    const values = inLedger === undefined ? given : (Object.fromEntries(Object.entries(given).filter(([column]) => !inLedger.has(column as ToolCallColumn))) as Values<ToolCallColumn>);
    const columns = Object.keys(values) as ToolCallColumn[];
    if (columns.length === 0) return;
    // blocked_reason keeps what the decision recorded unless a new one is given.
    const set = columns.map((c) => (c === "blocked_reason" ? "blocked_reason = COALESCE(?, blocked_reason)" : `${c} = ?`)).join(", ");
    this.#store.write(`UPDATE tool_calls SET ${set} WHERE id = ? AND org = ?`, [...columns.map((c) => values[c] ?? null), toolCallId, this.#org]);
  }

  toolCallStatus(toolCallId: string): string | undefined {
    return (this.#store.get<{ status: string }>("SELECT status FROM tool_calls WHERE id = ? AND org = ?", toolCallId, this.#org) ?? this.#foldedCall(toolCallId))?.status;
  }

  /** The newest tool call (not LLM call) with this Warden id or framework id. */
  findToolCall(id: string): ToolCallRow | undefined {
    const row = this.#store.get<ToolCallRow>("SELECT * FROM tool_calls WHERE (id = ?1 OR external_id = ?1) AND org = ?2 AND kind = 'tool' ORDER BY started_at DESC, rowid DESC LIMIT 1", id, this.#org);
    // A call with a framework id always has a row: only a Warden id can name a call recorded by its entry alone.
    return row === undefined ? this.#foldedCall(id) : this.#withLedgerValues([row], row.run_id)[0];
  }

  toolCallsOf(runId: string): ToolCallRow[] {
    return this.#withLedgerValues(this.#store.all<ToolCallRow>(TOOL_CALLS_OF_RUN_SQL, runId, this.#org), runId);
  }

  /** A call whose folded ledger entry is its only record, as its row. */
  #foldedCall(toolCallId: string): ToolCallRow | undefined {
    return this.#store.get<ToolCallRow>(FOLDED_CALL_SQL, toolCallId, this.#org);
  }

  /** Tool calls' rows with the output and error their ledger entries hold (as JSON text, like the columns). */
  #withLedgerValues(rows: ToolCallRow[], runId: string): ToolCallRow[] {
    if (!rows.some((row) => row.kind === "tool" && row.ended_at !== null && (row.output === null || row.error === null))) return rows;
    const ends = new Map<string, { output?: unknown; error?: unknown }>();
    for (const entry of this.#store.all<{ type: string; tool_call_id: string; data: string }>(CALL_ENDS_OF_RUN, runId)) {
      for (const event of expandLedgerEntry({ id: "", ts: 0, type: entry.type, data: JSON.parse(entry.data) as unknown })) {
        if (event.type !== "tool.called") ends.set(entry.tool_call_id, (event.data ?? {}) as { output?: unknown; error?: unknown });
      }
    }
    const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));
    return rows.map((row) => {
      const end = row.kind === "tool" ? ends.get(row.id) : undefined;
      return end === undefined ? row : { ...row, output: row.output ?? json(end.output), error: row.error ?? json(end.error) };
    });
  }

  approvalsOf(runId: string): ApprovalRow[] {
    return this.#store.all<ApprovalRow>("SELECT * FROM approvals WHERE run_id = ? AND org = ? ORDER BY created_at", runId, this.#org);
  }
}
