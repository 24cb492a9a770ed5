import { dirname, join } from "node:path";
import type { SQLInputValue, StatementSync } from "node:sqlite";
import { ApprovalStatus, EventType } from "agent-warden";
import { InvalidInputError, InvalidStateError, NotFoundError } from "agent-warden";
import type { ApprovalDeliveryLog, WardenEvent } from "agent-warden";
import { deliveryLog } from "./deliveries.js";
import { haltScopeOf, toHaltRecord, type HaltRecord, type HaltRow } from "../halt/halt.js";
import { canonicalJson } from "../internal/canonical.js";
import { newId } from "../internal/ids.js";
import type { LedgerEntry } from "agent-warden";
import { loadOrCreateKey, type SigningKey } from "../ledger/keys.js";
import { pendingApproval, toApprovalRecord, toRunSummary, toStepRecord, toToolCallRecord, type ApprovalRecord, type ApprovalRow, type RunRow, type RunSummary, type StepRow, type ToolCallRecord, type ToolCallRow } from "../records.js";
import { Ledger } from "../ledger/ledger.js";
import { SqliteStore, type LedgerRow } from "../store/sqlite-store.js";
import { FOLDED_CALL_SQL, foldedToolCallsSql, ledgerCallMatch, TOOL_CALL_ROW_COLUMNS, TOOL_CALLS_OF_RUN_SQL } from "../store/schema.js";
import { answerApproval, approvalEntries, escalateApprovals, escalationDue, ESCALATION_CANDIDATES, resolveApproval, type ServerApprovalRow, ruleForRequest, type ApprovalAnswer } from "./approval-rules.js";
import { AgentHaltedError, PreconditionFailedError } from "./errors.js";
import { etagMatches, policyEtag } from "./etag.js";
import { liveUpdates } from "./bulk-ingest.js";
import { activeHaltFor, approvalRecord, markIngested, type RejectedEvent } from "./ingest.js";
import { IngestThread } from "./ingest-thread.js";
import { ingestBatchSqlite } from "./sqlite-ingest.js";
import { draftOf, OrgLedger, orgEvidence, policySetOrgDraft, toOrgLedgerEntry, verifyChain, type OrgLedgerRow } from "./org-ledger.js";
import type { EvidenceBundle } from "../ledger/evidence.js";
import { runSync, type Query, type SqlOp } from "./sql.js";
import { countersignCheckpoint, countersignedCheckpoint } from "./countersign.js";
import type { WitnessAnswer } from "../ledger/witness.js";
import type { WitnessCheck } from "../ledger/witnessed.js";
import type { WitnessedLog } from "../ledger/witnessing.js";
import { ledgerOrgs, orgWitnessedLog } from "./org-witnessing.js";
import { appendStream } from "./stream-log.js";
import { generateApiKey, hashApiKey, looksLikeApiKey } from "./keys.js";
import { agentLogHeadsSchema, deliveriesSchema, SERVER_SCHEMA_SQL, SERVER_SCHEMA_V2_SQL, SERVER_SCHEMA_V5_SQL, SERVER_SCHEMA_VERSION, SERVER_V3_COLUMNS, SERVER_V4_COLUMNS } from "./schema.js";
import { DEFAULT_APPROVAL_TIMEOUT } from "./store.js";
import type {
  AgentRecord,
  ApiKeyRecord,
  ApprovalCreateInput,
  ApprovalFilter,
  Changes,
  ControlPlaneStore,
  HaltInput,
  IngestResult,
  LedgerReport,
  Page,
  PageQuery,
  PolicyVersion,
  PolicyVersionSummary,
  Principal,
  ResumeInput,
  RevokedTokenRecord,
  Role,
  RunFilter,
  RunTree,
  StreamMessage,
  StreamMessageType,
  ToolCallFilter,
} from "./store.js";

/**
 * Where `SqliteControlPlaneStore` keeps its data, and how often the ledger is checkpointed.
 * @example
 * import { SqliteControlPlaneStore, type SqliteControlPlaneOptions } from "agent-warden/server";
 * const options: SqliteControlPlaneOptions = { path: "./warden.db", checkpointEvery: 500 };
 * const store = new SqliteControlPlaneStore(options);
 */
export interface SqliteControlPlaneOptions {
  /** The database file (the same format as the embedded store), or `:memory:`. */
  path: string;
  /** Ed25519 private key (PEM) for ledger checkpoints; default: `<db dir>/keys/ledger.pem`. */
  ledgerSigningKey?: string | undefined;
  /** Sign a ledger checkpoint every this many entries. Default 1000. */
  checkpointEvery?: number | undefined;
  /** …or after this long, whichever comes first. Default 10 s. */
  checkpointIntervalMs?: number | undefined;
  /** Receives background failures (a write the database refused, a checkpoint that could not be signed). Default: ignored. */
  onError?: ((error: unknown) => void) | undefined;
  /**
   * Write ingested events on a thread of their own, with its own connection to the file, so parsing
   * and validating requests overlaps the commits (`createWardenServer` turns it on). A file only.
   * Default false.
   */
  ingestThread?: boolean | undefined;
  /** With `ingestThread`: batches waiting for the writer before `POST /v1/events` answers 503. Default 64. */
  maxPendingBatches?: number | undefined;
}

/** The policy set of an organization that never stored one: allow and record everything, as the embedded client does. */
const EMPTY_POLICY_SET = { version: 1, default: "allow", policies: [] };
const EMPTY_POLICY_VERSION: PolicyVersion = { version: 0, etag: policyEtag(0, EMPTY_POLICY_SET), policies: EMPTY_POLICY_SET, source: undefined, author: undefined, comment: undefined, rolledBackFrom: undefined, createdAt: 0 };
const runColumns = "id, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error";
const keyColumns = "id, org, role, name, agent_id, groups, prefix, created_at, revoked_at, last_used_at";
const haltColumns = "id, target_kind, target, reason, actor, created_at, lifted_at";
const MAX_TREE_CHILDREN = 100;
const MAX_TREE_EVENTS = 2000;
const REMEMBERED_RESOLUTIONS = 10_000;

/** The three statements this store runs, on its own connection. */
interface Sql {
  run(sql: string, ...params: SQLInputValue[]): number;
  get<T>(sql: string, ...params: SQLInputValue[]): T | undefined;
  all<T>(sql: string, ...params: SQLInputValue[]): T[];
}

interface KeyRow {
  id: string;
  org: string;
  role: Role;
  name: string | null;
  agent_id: string | null;
  groups: string | null;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

interface PolicyRow {
  version: number;
  document: string;
  source: string | null;
  etag: string;
  author: string | null;
  comment: string | null;
  rolled_back_from: number | null;
  created_at: number;
}


const toKeyRecord = (row: KeyRow): ApiKeyRecord => ({
  keyId: row.id,
  org: row.org,
  role: row.role,
  name: row.name ?? undefined,
  agentId: row.agent_id ?? undefined,
  ...(row.groups != null && { groups: JSON.parse(row.groups) as string[] }),
  prefix: row.prefix,
  createdAt: row.created_at,
  revokedAt: row.revoked_at ?? undefined,
  lastUsedAt: row.last_used_at ?? undefined,
});


const toPolicyVersion = (row: PolicyRow): PolicyVersion => ({
  version: row.version,
  etag: row.etag,
  policies: JSON.parse(row.document),
  source: row.source ?? undefined,
  author: row.author ?? undefined,
  comment: row.comment ?? undefined,
  rolledBackFrom: row.rolled_back_from ?? undefined,
  createdAt: row.created_at,
});

/** The caller a key row authenticates as. */
export function principalOf(row: { id: string; org: string; role: Role; name: string | null; agent_id: string | null; groups: string | null }): Principal {
  return { keyId: row.id, org: row.org, role: row.role, name: row.name ?? undefined, agentId: row.agent_id ?? undefined, ...(row.groups != null && { groups: JSON.parse(row.groups) as string[] }) };
}

function page<T>(items: T[], total: number, query: PageQuery): Page<T> {
  return { items, total, limit: query.limit, offset: query.offset, nextOffset: query.offset + items.length < total ? query.offset + items.length : null };
}

type OrgMessage = { org: string; message: StreamMessage };

/** Groups messages by organization, each group in the order given. */
function byOrganization(messages: readonly OrgMessage[]): Changes[] {
  const grouped = new Map<string, StreamMessage[]>();
  for (const { org, message } of messages) {
    const list = grouped.get(org);
    if (list === undefined) grouped.set(org, [message]);
    else list.push(message);
  }
  return [...grouped].map(([org, list]) => ({ org, messages: list }));
}


/**
 * The control plane on SQLite: the embedded store's file and tables (so the CLI can read the same
 * database), plus keys, policy versions and the stream log. Writes that belong together commit in
 * one transaction.
 * @example
 * import { createWardenServer, SqliteControlPlaneStore } from "agent-warden/server";
 * const store = new SqliteControlPlaneStore({ path: "./warden.db" });
 * const { key } = await store.createKey({ org: "acme", role: "reviewer", name: "alice" });
 * const server = createWardenServer({ store });
 */
export class SqliteControlPlaneStore implements ControlPlaneStore {
  readonly kind = "sqlite";
  /** @internal The embedded store underneath (tests count its rows). */
  readonly store: SqliteStore;
  readonly #statements = new Map<string, StatementSync>();
  readonly #sql: Sql;
  readonly #orgLedger: OrgLedger;
  readonly #keyDir: string | undefined;
  readonly #ledgerKey: SigningKey;
  readonly #tokenKeys = new Map<string, SigningKey>();
  /** What the stream has announced: per organization, each halt's lifted time (null while active). */
  readonly #knownHalts = new Map<string, Map<string, number | null>>();
  readonly #haltVersions = new Map<string, string>();
  readonly #announcedResolutions = new Set<string>();
  #decidedWatermark = 0;
  /** Approval channel deliveries: they survive a restart, and due retries are claimed by one process. */
  readonly deliveries: ApprovalDeliveryLog = deliveryLog(async (query) => this.#transaction(() => this.#run(query)));
  readonly #lastUsed = new Map<string, number>();
  readonly #ingestThread: IngestThread | undefined;

  constructor(options: SqliteControlPlaneOptions) {
    this.#keyDir = options.path === ":memory:" ? undefined : join(dirname(options.path), "keys");
    this.#ledgerKey = loadOrCreateKey(this.#keyDir && join(this.#keyDir, "ledger.pem"), options.ledgerSigningKey);
    this.store = new SqliteStore({
      path: options.path,
      signer: this.#ledgerKey,
      checkpointEvery: options.checkpointEvery ?? 1000,
      checkpointIntervalMs: options.checkpointIntervalMs ?? 10_000,
      // Writes commit inside the transactions of this class; never mid-way.
      maxBatch: Number.MAX_SAFE_INTEGER,
      onError: options.onError ?? (() => {}),
    });
    this.#sql = {
      run: (sql, ...params) => Number(this.#prepare(sql).run(...params).changes),
      get: <T>(sql: string, ...params: SQLInputValue[]) => this.#prepare(sql).get(...params) as T | undefined,
      all: <T>(sql: string, ...params: SQLInputValue[]) => this.#prepare(sql).all(...params) as T[],
    };
    this.#orgLedger = new OrgLedger(this.#ledgerKey, { every: options.checkpointEvery ?? 1000, intervalMs: options.checkpointIntervalMs ?? 10_000 }, options.onError ?? (() => {}));
    this.#migrate();
    this.#rememberExternalState();
    if (options.ingestThread === true && this.store.path !== ":memory:") {
      const data = { path: this.store.path, ledgerSigningKey: options.ledgerSigningKey, checkpointEvery: options.checkpointEvery, checkpointIntervalMs: options.checkpointIntervalMs };
      this.#ingestThread = new IngestThread(data, { maxPending: options.maxPendingBatches, onError: options.onError ?? (() => {}) });
    }
  }

  // ── keys ──────────────────────────────────────────────────────────────────────────────────

  async createKey(input: { org: string; role: Role; name?: string | undefined; agentId?: string | undefined; groups?: readonly string[] | undefined; actor?: string | undefined }): Promise<{ key: string; record: ApiKeyRecord }> {
    // The organization names its token key's file: no path separators, nothing odd.
    assertOrg(input.org);
    const key = generateApiKey();
    const now = Date.now();
    const groups = input.groups !== undefined && input.groups.length > 0 ? JSON.stringify([...new Set(input.groups)]) : null;
    const row: KeyRow = { id: newId("key"), org: input.org, role: input.role, name: input.name ?? null, agent_id: input.agentId ?? null, groups, prefix: key.slice(0, 12), created_at: now, revoked_at: null, last_used_at: null };
    this.#transaction(() => {
      this.#sql.run("INSERT INTO api_keys (id, org, role, name, agent_id, groups, hash, prefix, created_at) VALUES (?,?,?,?,?,?,?,?,?)", row.id, row.org, row.role, row.name, row.agent_id, row.groups, hashApiKey(key), row.prefix, now);
      this.#ledger(input.org, "key.created", {}, { keyId: row.id, role: row.role, name: row.name ?? undefined, agentId: row.agent_id ?? undefined, ...(groups !== null && { groups: JSON.parse(groups) }) }, input.actor ?? null);
    });
    return { key, record: toKeyRecord(row) };
  }

  async listKeys(org: string): Promise<ApiKeyRecord[]> {
    return this.#all<KeyRow>(`SELECT ${keyColumns} FROM api_keys WHERE org = ? ORDER BY created_at, rowid`, org).map(toKeyRecord);
  }

  async revokeKey(org: string, keyId: string, actor?: string): Promise<ApiKeyRecord> {
    return this.#transaction(() => {
      const row = this.#sql.get<KeyRow>(`SELECT ${keyColumns} FROM api_keys WHERE id = ? AND org = ?`, keyId, org);
      if (row === undefined) throw new NotFoundError("key", keyId);
      if (row.revoked_at !== null) return toKeyRecord(row);
      const now = Date.now();
      this.#sql.run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND org = ?", now, keyId, org);
      this.#ledger(org, "key.revoked", {}, { keyId }, actor ?? null);
      return toKeyRecord({ ...row, revoked_at: now });
    });
  }

  async authenticate(secret: string): Promise<Principal | undefined> {
    if (!looksLikeApiKey(secret)) return undefined;
    const row = this.#peek<KeyRow>(`SELECT ${keyColumns} FROM api_keys WHERE hash = ? AND revoked_at IS NULL`, hashApiKey(secret));
    if (row === undefined) return undefined;
    const now = Date.now();
    if (now - (this.#lastUsed.get(row.id) ?? 0) > 60_000) {
      this.#lastUsed.set(row.id, now);
      this.store.write("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [now, row.id]);
    }
    return principalOf(row);
  }

  async hasActiveKey(org: string, role: Role): Promise<boolean> {
    return this.#peek("SELECT 1 AS found FROM api_keys WHERE org = ? AND role = ? AND revoked_at IS NULL", org, role) !== undefined;
  }

  // ── events, agents, runs, tool calls ──────────────────────────────────────────────────────

  async ingest(principal: Principal, events: readonly WardenEvent[], body?: Uint8Array): Promise<IngestResult & { rejected: RejectedEvent[]; changes: Changes }> {
    const org = principal.org;
    if (this.#ingestThread?.usable) {
      // This connection's queued writes first: the writer's transaction waits for nothing of ours.
      this.store.flush();
      const answer = await this.#ingestThread.ingest(principal, body ?? events);
      for (const message of answer.changes.messages) if (message.type === "approval.resolved") this.#announced(org, (message.data as ApprovalRecord).approvalId);
      return answer;
    }
    return (await this.ingestBatches([{ principal, events }]))[0]!;
  }

  /**
   * Several batches, each with `ingest`'s outcome, written in order in one transaction on this
   * connection: the ingest thread's group commit of the batches that waited for it.
   */
  async ingestBatches(batches: ReadonlyArray<{ principal: Principal; events: readonly WardenEvent[] }>): Promise<Array<IngestResult & { rejected: RejectedEvent[]; changes: Changes }>> {
    const now = Date.now();
    const results = this.#transaction(() => batches.map(({ principal, events }) => this.#run(ingestBatchSqlite(this.#orgLedger, principal, events.map((event, index) => ({ index, event })), now))));
    return results.map((result, i) => {
      const org = batches[i]!.principal.org;
      for (const message of result.messages) if (message.type === "approval.resolved") this.#announced(org, (message.data as ApprovalRecord).approvalId);
      return { accepted: result.accepted, duplicates: result.duplicates, rejected: result.rejected, changes: { org, messages: [...result.messages, ...liveUpdates(result.live)] } };
    });
  }

  /** Starts the ingest writer thread (`ingestThread`) now rather than on the first batch; settles once it is ready. */
  startIngestThread(): Promise<void> {
    return this.#ingestThread?.start() ?? Promise.resolve();
  }

  async registerAgent(org: string, agentId: string, group: string | undefined): Promise<AgentRecord> {
    const now = Date.now();
    this.#transaction(() => this.#sql.run("INSERT INTO agents (org, id, grp, created_at) VALUES (?,?,?,?) ON CONFLICT(org, id) DO UPDATE SET grp = excluded.grp", org, agentId, group ?? null, now));
    const row = this.#peek<{ id: string; grp: string | null; created_at: number }>("SELECT id, grp, created_at FROM agents WHERE org = ? AND id = ?", org, agentId)!;
    return { agentId: row.id, group: row.grp ?? undefined, createdAt: row.created_at };
  }

  async listAgents(org: string): Promise<AgentRecord[]> {
    return this.#all<{ id: string; grp: string | null; created_at: number }>("SELECT id, grp, created_at FROM agents WHERE org = ? ORDER BY id LIMIT 10000", org).map((r) => ({ agentId: r.id, group: r.grp ?? undefined, createdAt: r.created_at }));
  }

  async listRuns(org: string, filter: RunFilter, query: PageQuery): Promise<Page<RunSummary>> {
    const where = "org = ?1 AND (?2 IS NULL OR agent_id = ?2) AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR trace_id = ?4) AND (?5 IS NULL OR parent_run_id = ?5)";
    const params = [org, filter.agentId ?? null, filter.status ?? null, filter.traceId ?? null, filter.parentRunId ?? null];
    const total = this.#peek<{ n: number }>(`SELECT COUNT(*) AS n FROM runs WHERE ${where}`, ...params)!.n;
    const rows = this.#all<RunRow>(`SELECT ${runColumns} FROM runs WHERE ${where} ORDER BY started_at DESC, rowid DESC LIMIT ?6 OFFSET ?7`, ...params, query.limit, query.offset);
    return page(rows.map(toRunSummary), total, query);
  }

  async getRun(org: string, runId: string, depth: number): Promise<RunTree | undefined> {
    const row = this.#peek<RunRow>(`SELECT ${runColumns} FROM runs WHERE id = ? AND org = ?`, runId, org);
    if (row === undefined) return undefined;
    const approvals = new Map(this.#all<ApprovalRow>("SELECT * FROM approvals WHERE run_id = ? AND org = ? ORDER BY created_at", runId, org).map((a) => [a.tool_call_id, toApprovalRecord(a)]));
    const childIds = this.#all<{ id: string }>("SELECT id FROM runs WHERE parent_run_id = ? AND org = ? ORDER BY started_at LIMIT ?", runId, org, MAX_TREE_CHILDREN).map((r) => r.id);
    const children: RunTree[] = [];
    if (depth > 0) {
      for (const id of childIds) {
        const child = await this.getRun(org, id, depth - 1);
        if (child) children.push(child);
      }
    }
    return {
      ...toRunSummary(row),
      steps: this.#all<StepRow>("SELECT * FROM steps WHERE run_id = ? AND org = ? ORDER BY started_at, rowid", runId, org).map(toStepRecord),
      toolCalls: this.#all<ToolCallRow>(TOOL_CALLS_OF_RUN_SQL, runId, org).map((tc) => toToolCallRecord(tc, approvals.get(tc.id))),
      events: this.#all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND run_id = ? ORDER BY seq LIMIT ?", org, runId, MAX_TREE_EVENTS).map((entry) => {
        const { id, type, ts, agentId, runId: r, stepId, toolCallId, actor, data } = toOrgLedgerEntry(entry);
        return { id, type: type as EventType, ts, org, agentId, runId: r, stepId, toolCallId, actor, data: data as Record<string, unknown> };
      }),
      childRunIds: childIds,
      children,
    };
  }

  async listToolCalls(org: string, filter: ToolCallFilter, query: PageQuery): Promise<Page<ToolCallRecord>> {
    const where =
      "org = ?1 AND (?2 IS NULL OR agent_id = ?2) AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR run_id = ?4) AND (?5 IS NULL OR tool_name = ?5) AND (?6 IS NULL OR run_id IN (SELECT id FROM runs WHERE org = ?1 AND trace_id = ?6))";
    const params = [org, filter.agentId ?? null, filter.status ?? null, filter.runId ?? null, filter.toolName ?? null, filter.traceId ?? null];
    // Calls an embedded client recorded in this file by their folded ledger entry alone are listed with the rows
    // (the control plane's own calls always have rows, and its ledger is `org_ledger`: the union is only paid for such a file).
    const calls = this.#peek("SELECT 1 AS found FROM ledger WHERE type = 'tool.call' LIMIT 1") === undefined ? "tool_calls" : `(SELECT ${TOOL_CALL_ROW_COLUMNS}, rowid AS seq FROM tool_calls UNION ALL ${foldedToolCallsSql("true")})`;
    const order = calls === "tool_calls" ? "rowid" : "seq";
    const total = this.#peek<{ n: number }>(`SELECT COUNT(*) AS n FROM ${calls} WHERE ${where}`, ...params)!.n;
    const rows = this.#all<ToolCallRow>(`SELECT ${TOOL_CALL_ROW_COLUMNS} FROM ${calls} WHERE ${where} ORDER BY started_at DESC, ${order} DESC LIMIT ?7 OFFSET ?8`, ...params, query.limit, query.offset);
    const approvals = this.#approvalsFor(org, rows.map((r) => r.id));
    return page(rows.map((r) => toToolCallRecord(r, approvals.get(r.id))), total, query);
  }

  async getToolCall(org: string, toolCallId: string): Promise<ToolCallRecord | undefined> {
    const row = this.#peek<ToolCallRow>("SELECT * FROM tool_calls WHERE id = ? AND org = ?", toolCallId, org) ?? this.#peek<ToolCallRow>(FOLDED_CALL_SQL, toolCallId, org);
    return row && toToolCallRecord(row, this.#approvalsFor(org, [row.id]).get(row.id));
  }

  // ── policies ──────────────────────────────────────────────────────────────────────────────

  async currentPolicy(org: string): Promise<PolicyVersion> {
    const row = this.#peek<PolicyRow>("SELECT * FROM policy_versions WHERE org = ? ORDER BY version DESC LIMIT 1", org);
    return row ? toPolicyVersion(row) : EMPTY_POLICY_VERSION;
  }

  async getPolicyVersion(org: string, version: number): Promise<PolicyVersion | undefined> {
    // Version 0 is the set every organization starts with; rolling back to it is allowed.
    if (version === 0) return EMPTY_POLICY_VERSION;
    const row = this.#peek<PolicyRow>("SELECT * FROM policy_versions WHERE org = ? AND version = ?", org, version);
    return row && toPolicyVersion(row);
  }

  async listPolicyVersions(org: string, query: PageQuery): Promise<Page<PolicyVersionSummary>> {
    const total = this.#peek<{ n: number }>("SELECT COUNT(*) AS n FROM policy_versions WHERE org = ?", org)!.n;
    const rows = this.#all<PolicyRow>("SELECT * FROM policy_versions WHERE org = ? ORDER BY version DESC LIMIT ? OFFSET ?", org, query.limit, query.offset);
    return page(
      rows.map((row) => {
        const { policies: _policies, source: _source, ...summary } = toPolicyVersion(row);
        return summary;
      }),
      total,
      query,
    );
  }

  async putPolicy(
    org: string,
    input: { policies: unknown; source?: string | undefined; author?: string | undefined; comment?: string | undefined; ifMatch?: string | undefined; rolledBackFrom?: number | undefined },
  ): Promise<{ version: PolicyVersion; changes: Changes }> {
    const current = await this.currentPolicy(org);
    return this.#transaction(() => {
      const latest = this.#sql.get<{ version: number; etag: string }>("SELECT version, etag FROM policy_versions WHERE org = ? ORDER BY version DESC LIMIT 1", org) ?? current;
      if (input.ifMatch !== undefined && !etagMatches(input.ifMatch, latest.etag)) throw new PreconditionFailedError(`the policy set changed since ${input.ifMatch}; the current version is ${latest.version}`, latest.etag);
      const now = Date.now();
      const version: PolicyVersion = {
        version: latest.version + 1,
        etag: policyEtag(latest.version + 1, input.policies),
        policies: input.policies,
        source: input.source,
        author: input.author,
        comment: input.comment,
        rolledBackFrom: input.rolledBackFrom,
        createdAt: now,
      };
      this.#sql.run(
        "INSERT INTO policy_versions (org, version, document, source, etag, author, comment, rolled_back_from, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
        org,
        version.version,
        JSON.stringify(input.policies),
        input.source ?? null,
        version.etag,
        input.author ?? null,
        input.comment ?? null,
        input.rolledBackFrom ?? null,
        now,
      );
      this.#ledger(org, "policy.updated", {}, { version: version.version, etag: version.etag, comment: input.comment, rolledBackFrom: input.rolledBackFrom }, input.author ?? null);
      this.#run(this.#orgLedger.append(org, policySetOrgDraft(input.policies, input.author ?? null, newId("evt"), now)));
      return { version, changes: { org, messages: [this.#stream(org, "policy.updated", version, now)] } };
    });
  }

  // ── approvals ─────────────────────────────────────────────────────────────────────────────

  async createApproval(principal: Principal, input: ApprovalCreateInput): Promise<{ record: ApprovalRecord; created: boolean; changes: Changes }> {
    const org = principal.org;
    return this.#transaction(() => {
      if (input.approvalId !== undefined) {
        // Ids are the organization's own: another organization's request with the same id is not seen here.
        const existing = this.#sql.get<ApprovalRow>("SELECT * FROM approvals WHERE id = ? AND org = ?", input.approvalId, org);
        if (existing !== undefined) {
          if (existing.tool_call_id !== input.toolCallId) throw new InvalidStateError(`approval id "${input.approvalId}" is already in use`);
          this.#markIngested(org, input.eventId);
          return { record: toApprovalRecord(existing), created: false, changes: { org, messages: [] } };
        }
      }
      const halt = this.#run(activeHaltFor(org, input.agentId, input.runId));
      if (halt !== undefined) throw new AgentHaltedError(`agent "${input.agentId}" is halted (${halt}); it may not ask for approvals`);
      const now = Date.now();
      const rule = this.#run(ruleForRequest(org, input.policyId, input.rule));
      const pending = pendingApproval({
        approvalId: input.approvalId ?? newId("apr"),
        toolCallId: input.toolCallId,
        runId: input.runId,
        agentId: input.agentId,
        toolName: input.toolName,
        payload: input.payload ?? null,
        agentContext: input.agentContext,
        policyId: input.policyId,
        reason: input.reason,
        createdAt: now,
        expiresAt: input.expiresAt ?? now + (input.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT),
      });
      const record: ApprovalRecord = rule === undefined ? pending : { ...pending, rule };
      this.#sql.run(
        "INSERT INTO approvals (id, org, tool_call_id, run_id, agent_id, tool_name, status, payload, agent_context, policy_id, reason, created_at, expires_at, rule, requested_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        record.approvalId,
        org,
        record.toolCallId,
        record.runId,
        record.agentId,
        record.toolName,
        record.status,
        JSON.stringify(record.payload),
        record.agentContext ? JSON.stringify(record.agentContext) : null,
        record.policyId ?? null,
        record.reason ?? null,
        now,
        record.expiresAt,
        rule === undefined ? null : JSON.stringify(rule),
        principal.keyId,
      );
      const fresh = this.#markIngested(org, input.eventId);
      if (fresh) {
        this.#ledger(
          org,
          EventType.APPROVAL_REQUESTED,
          { agentId: record.agentId, runId: record.runId, toolCallId: record.toolCallId },
          { approvalId: record.approvalId, toolName: record.toolName, policyId: record.policyId, reason: record.reason, payload: record.payload, agentContext: record.agentContext, expiresAt: record.expiresAt, ...(rule !== undefined && { rule }) },
          principal.name ?? null,
          input.eventId,
        );
      }
      return { record, created: true, changes: { org, messages: [this.#stream(org, "approval.requested", record, now)] } };
    });
  }

  async getApproval(org: string, approvalId: string): Promise<ApprovalRecord | undefined> {
    this.store.flush();
    return this.#run(approvalRecord(org, approvalId));
  }

  async listApprovals(org: string, filter: ApprovalFilter, query: PageQuery): Promise<Page<ApprovalRecord>> {
    const where = "org = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR run_id = ?3) AND (?4 IS NULL OR agent_id = ?4)";
    const params = [org, filter.status ?? null, filter.runId ?? null, filter.agentId ?? null];
    const total = this.#peek<{ n: number }>(`SELECT COUNT(*) AS n FROM approvals WHERE ${where}`, ...params)!.n;
    const rows = this.#all<ApprovalRow>(`SELECT * FROM approvals WHERE ${where} ORDER BY created_at DESC, rowid DESC LIMIT ?5 OFFSET ?6`, ...params, query.limit, query.offset);
    return page(rows.map(toApprovalRecord), total, query);
  }

  async decideApproval(org: string, approvalId: string, status: "approved" | "rejected", answer: ApprovalAnswer): Promise<{ record: ApprovalRecord; changes: Changes }> {
    const result = this.#transaction(() => this.#run(answerApproval(this.#orgLedger, org, approvalId, status, answer, Date.now(), false)));
    // A refusal is committed (recorded) before it is thrown.
    if (result.kind === "refused") throw result.refused;
    if (result.kind === "voted") return { record: result.record, changes: { org, messages: [] } };
    this.#announced(org, approvalId);
    return { record: result.record, changes: { org, messages: [result.message] } };
  }

  async approvalEntries(org: string, approval: { approvalId: string; runId: string; toolCallId: string }): Promise<WardenEvent[]> {
    this.store.flush();
    return this.#run(approvalEntries(org, approval.runId, approval.toolCallId, approval.approvalId));
  }

  async escalateApprovals(now: number): Promise<number> {
    // Read first, write only when something is due: a sweep with nothing to do takes no write lock.
    const due = this.#all<ServerApprovalRow & { org: string }>(ESCALATION_CANDIDATES).filter((row) => escalationDue(row, now));
    if (due.length === 0) return 0;
    return this.#transaction(() => this.#run(escalateApprovals(this.#orgLedger, due, now)));
  }

  async expireApprovals(now: number): Promise<Changes[]> {
    const due = this.#all<ApprovalRow & { org: string }>("SELECT * FROM approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT 500", now);
    if (due.length === 0) return [];
    const expired: OrgMessage[] = [];
    this.#transaction(() => {
      for (const row of due) {
        const current = this.#sql.get<{ status: string }>("SELECT status FROM approvals WHERE id = ? AND org = ?", row.id, row.org);
        if (current?.status !== ApprovalStatus.PENDING) continue;
        const { message } = this.#resolve(row.org, row, ApprovalStatus.EXPIRED, "warden", "approval timed out", now);
        expired.push({ org: row.org, message });
      }
    });
    return byOrganization(expired);
  }

  // ── halts ─────────────────────────────────────────────────────────────────────────────────

  async listHalts(org: string, options: { includeLifted: boolean }): Promise<HaltRecord[]> {
    const rows = this.#all<HaltRow>(
      `SELECT ${haltColumns} FROM halts WHERE org = ? AND (lifted_at IS NULL OR ? = 1) ORDER BY created_at DESC, rowid DESC LIMIT 1000`,
      org,
      options.includeLifted ? 1 : 0,
    );
    return rows.reverse().map(toHaltRecord);
  }

  async halt(org: string, input: HaltInput): Promise<{ record: HaltRecord; created: boolean; changes: Changes }> {
    const [scope, target] = haltScopeOf(input);
    return this.#transaction(() => {
      if (input.haltId !== undefined) {
        const existing = this.#sql.get<HaltRow & { org: string }>(`SELECT org, ${haltColumns} FROM halts WHERE id = ?`, input.haltId);
        if (existing !== undefined) {
          if (existing.org !== org) throw new InvalidStateError(`halt id "${input.haltId}" is already in use`);
          this.#markIngested(org, input.eventId);
          return { record: toHaltRecord(existing), created: false, changes: { org, messages: [] } };
        }
      }
      const now = Date.now();
      const record: HaltRecord = { haltId: input.haltId ?? newId("halt"), scope, target, reason: input.reason, actor: input.actor, createdAt: now, liftedAt: undefined };
      this.#sql.run("INSERT INTO halts (id, org, target_kind, target, reason, actor, created_at) VALUES (?,?,?,?,?,?,?)", record.haltId, org, scope, target ?? null, record.reason, record.actor ?? null, now);
      this.#bumpHaltVersion(org);
      if (this.#markIngested(org, input.eventId)) {
        this.#ledger(org, EventType.AGENT_HALTED, { agentId: input.agentId, runId: input.runId }, { haltId: record.haltId, scope, target, reason: record.reason }, record.actor ?? null, input.eventId);
      }
      this.#known(org).set(record.haltId, null);
      const messages = [this.#stream(org, "halt.created", record, now)];
      // A halt cancels the pending approvals it covers.
      const covered = this.#sql.all<ApprovalRow>(
        `SELECT * FROM approvals WHERE org = ?1 AND status = 'pending' AND (?2 = 'organization' OR (?2 = 'agent' AND agent_id = ?3) OR (?2 = 'run' AND run_id = ?3)
           OR (?2 = 'group' AND agent_id IN (SELECT id FROM agents WHERE org = ?1 AND grp = ?3)))`,
        org,
        scope,
        target ?? null,
      );
      for (const row of covered) messages.push(this.#resolve(org, row, ApprovalStatus.CANCELLED, "warden", `halted: ${record.reason}`, now).message);
      return { record, created: true, changes: { org, messages } };
    });
  }

  async resume(org: string, input: ResumeInput): Promise<{ lifted: HaltRecord[]; changes: Changes }> {
    const [scope, target] = haltScopeOf(input);
    return this.#transaction(() => {
      const ids = this.#sql.all<{ id: string }>("SELECT id FROM halts WHERE org = ? AND target_kind = ? AND target IS ? AND lifted_at IS NULL ORDER BY created_at", org, scope, target ?? null).map((r) => r.id);
      if (ids.length === 0) {
        this.#markIngested(org, input.eventId);
        return { lifted: [], changes: { org, messages: [] } };
      }
      const now = Date.now();
      this.#sql.run("UPDATE halts SET lifted_at = ?, lifted_by = ?, lift_reason = ? WHERE org = ? AND target_kind = ? AND target IS ? AND lifted_at IS NULL", now, input.actor ?? null, input.reason ?? null, org, scope, target ?? null);
      this.#bumpHaltVersion(org);
      const lifted = ids.map((id) => toHaltRecord(this.#sql.get<HaltRow>(`SELECT ${haltColumns} FROM halts WHERE id = ?`, id)!));
      if (this.#markIngested(org, input.eventId)) {
        this.#ledger(org, EventType.AGENT_RESUMED, { agentId: input.agentId, runId: input.runId }, { haltIds: ids, scope, target, reason: input.reason }, input.actor ?? null, input.eventId);
      }
      const known = this.#known(org);
      const messages = lifted.map((halt) => {
        known.set(halt.haltId, halt.liftedAt ?? now);
        return this.#stream(org, "halt.lifted", halt, now);
      });
      return { lifted, changes: { org, messages } };
    });
  }

  async groupOf(org: string, agentId: string): Promise<string | undefined> {
    return this.#peek<{ grp: string | null }>("SELECT grp FROM agents WHERE org = ? AND id = ?", org, agentId)?.grp ?? undefined;
  }

  async pollExternalChanges(): Promise<Changes[]> {
    const changed = this.#all<{ key: string; value: string }>("SELECT key, value FROM meta WHERE key LIKE 'halt\\_version:%' ESCAPE '\\'").filter((row) => this.#haltVersions.get(row.key) !== row.value);
    const recent = this.#all<ApprovalRow & { org: string }>("SELECT * FROM approvals WHERE decided_at >= ? ORDER BY decided_at LIMIT 1000", this.#decidedWatermark);
    this.#decidedWatermark = Math.max(this.#decidedWatermark, ...recent.map((row) => row.decided_at ?? 0));
    const decided = recent.filter((row) => !this.#announcedResolutions.has(`${row.org}/${row.id}`));
    if (changed.length === 0 && decided.length === 0) return [];
    const announced: OrgMessage[] = [];
    const push = (org: string, message: StreamMessage) => announced.push({ org, message });
    this.#transaction(() => {
      const now = Date.now();
      for (const { key, value } of changed) {
        const org = key.slice("halt_version:".length);
        this.#haltVersions.set(key, value);
        const known = this.#known(org);
        for (const row of this.#sql.all<HaltRow>(`SELECT ${haltColumns} FROM halts WHERE org = ?`, org)) {
          const before = known.get(row.id);
          if (before === undefined && row.lifted_at === null) push(org, this.#stream(org, "halt.created", toHaltRecord(row), now));
          else if ((before === null || before === undefined) && row.lifted_at !== null && known.has(row.id)) push(org, this.#stream(org, "halt.lifted", toHaltRecord(row), now));
          known.set(row.id, row.lifted_at);
        }
      }
      for (const row of decided) {
        this.#announced(row.org, row.id);
        push(row.org, this.#stream(row.org, "approval.resolved", toApprovalRecord(row), now));
      }
    });
    return byOrganization(announced);
  }

  // ── tokens ────────────────────────────────────────────────────────────────────────────────

  async tokenKey(org: string): Promise<SigningKey> {
    let key = this.#tokenKeys.get(org);
    if (key === undefined) {
      // The default organization shares the embedded client's key file, so both verify the same tokens.
      const file = org === "default" ? "organization.pem" : `organization-${org}.pem`;
      key = loadOrCreateKey(this.#keyDir && join(this.#keyDir, file));
      this.#tokenKeys.set(org, key);
    }
    return key;
  }

  async revokeToken(org: string, tokenId: string, input: { reason?: string | undefined; actor?: string | undefined }): Promise<Changes> {
    return this.#transaction(() => {
      const now = Date.now();
      const changed = this.#sql.run("INSERT OR IGNORE INTO revoked_tokens (org, id, reason, revoked_at) VALUES (?,?,?,?)", org, tokenId, input.reason ?? null, now);
      if (!changed) return { org, messages: [] };
      this.#ledger(org, "token.revoked", {}, { tokenId, reason: input.reason }, input.actor ?? null);
      return { org, messages: [this.#stream(org, "token.revoked", { tokenId, reason: input.reason }, now)] };
    });
  }

  async revokedTokenIds(org: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = this.#all<{ id: string }>(`SELECT id FROM revoked_tokens WHERE org = ? AND id IN (${ids.map(() => "?").join(",")})`, org, ...ids);
    return new Set(rows.map((r) => r.id));
  }

  async listRevokedTokens(org: string, query: { since: number; afterTokenId?: string | undefined; limit: number }): Promise<RevokedTokenRecord[]> {
    const rows = this.#all<{ id: string; reason: string | null; revoked_at: number }>(
      "SELECT id, reason, revoked_at FROM revoked_tokens WHERE org = ?1 AND (revoked_at > ?2 OR (revoked_at = ?2 AND (?3 IS NULL OR id > ?3))) ORDER BY revoked_at, id LIMIT ?4",
      org,
      query.since,
      query.afterTokenId ?? null,
      query.limit,
    );
    return rows.map((row) => ({ tokenId: row.id, reason: row.reason ?? undefined, revokedAt: row.revoked_at }));
  }

  // ── ledger ────────────────────────────────────────────────────────────────────────────────

  async verifyLedger(org: string, options: { witnesses?: readonly WitnessCheck[] | undefined } = {}): Promise<LedgerReport> {
    this.store.flush();
    return this.#run(verifyChain(org, this.#ledgerKey.publicKey, this.#ledgerKey.keyId, options));
  }

  async ledgerOrgs(): Promise<string[]> {
    this.store.flush();
    return this.#run(ledgerOrgs());
  }

  async checkpointLedger(org: string): Promise<void> {
    this.#transaction(() => this.#run(this.#orgLedger.checkpointNow(org)));
  }

  orgWitnessedLog(org: string): WitnessedLog {
    return orgWitnessedLog(
      org,
      async (query) => {
        this.store.flush();
        return this.#run(query);
      },
      async (query) => this.#transaction(() => this.#run(query)),
    );
  }

  async ledgerPublicKey(): Promise<SigningKey["publicKey"]> {
    return this.#ledgerKey.publicKey;
  }

  async evidence(org: string, id: string, options: { witnesses?: readonly string[] | undefined } = {}): Promise<EvidenceBundle> {
    this.store.flush();
    return this.#run(orgEvidence(org, id, this.#ledgerKey, options));
  }

  async countersign(org: string, agentId: string | undefined, logKey: string, body: string): Promise<WitnessAnswer> {
    return this.#transaction(() => this.#run(countersignCheckpoint(org, agentId, logKey, body, this.#ledgerKey)));
  }

  async countersigned(org: string, origin: string): Promise<string | undefined> {
    return this.#transaction(() => this.#run(countersignedCheckpoint(org, origin)));
  }

  async *exportLedger(org: string, options: { afterSeq: number; limit: number }): AsyncIterable<LedgerEntry> {
    let after = options.afterSeq;
    let left = options.limit;
    while (left > 0) {
      const rows = this.#all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?", org, after, Math.min(left, 1000));
      if (rows.length === 0) return;
      for (const row of rows) yield toOrgLedgerEntry(row);
      after = rows[rows.length - 1]!.seq;
      left -= rows.length;
    }
  }

  // ── stream ────────────────────────────────────────────────────────────────────────────────

  async streamAfter(org: string, seq: number, limit: number): Promise<StreamMessage[]> {
    return this.#all<{ seq: number; type: StreamMessageType; data: string; ts: number }>("SELECT seq, type, data, ts FROM stream_events WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?", org, seq, limit).map((r) => ({
      seq: r.seq,
      type: r.type,
      data: JSON.parse(r.data),
      ts: r.ts,
    }));
  }

  async streamBounds(org: string): Promise<{ oldest: number; latest: number }> {
    const row = this.#peek<{ oldest: number | null; latest: number | null }>("SELECT MIN(seq) AS oldest, MAX(seq) AS latest FROM stream_events WHERE org = ?", org);
    return { oldest: row?.oldest ?? 0, latest: row?.latest ?? 0 };
  }

  async pruneStream(olderThan: number): Promise<void> {
    // The newest message of each organization stays, so its sequence never restarts.
    this.#transaction(() => this.#sql.run("DELETE FROM stream_events WHERE ts < ? AND seq < (SELECT MAX(seq) FROM stream_events AS newest WHERE newest.org = stream_events.org)", olderThan));
  }

  async ping(): Promise<void> {
    this.#peek("SELECT 1 AS ok");
  }

  async close(): Promise<void> {
    await this.#ingestThread?.close();
    this.store.close();
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  /**
   * Brings the control plane's tables to `SERVER_SCHEMA_VERSION`. Version 2 moves the shared ledger
   * chain into one chain per organization: entries are copied in order and re-chained, each
   * organization's chain opening with a `ledger.migrated` entry that says whether the shared chain
   * verified before the move (a chain that did not is moved, never vouched for).
   */
  #migrate(): void {
    const db = this.store.db;
    this.store.flush();
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(SERVER_SCHEMA_SQL);
      const version = Number(this.#sql.get<{ value: string }>("SELECT value FROM meta WHERE key = 'server_schema'")?.value ?? 1);
      if (version > SERVER_SCHEMA_VERSION) throw new InvalidStateError(`control plane database has schema ${version}; this version of Warden reads up to ${SERVER_SCHEMA_VERSION}`);
      if (version < 2) db.exec(SERVER_SCHEMA_V2_SQL);
      if (version < 3) {
        this.#addColumns(SERVER_V3_COLUMNS);
        db.exec(deliveriesSchema({ int: "INTEGER", text: "TEXT" }));
      }
      if (version < 4) {
        this.#addColumns(SERVER_V4_COLUMNS);
        db.exec(agentLogHeadsSchema({ int: "INTEGER", text: "TEXT" }));
      }
      // A file made before version 5 has the table with a rowid (the schema above made it then).
      if (version < 5 && !/WITHOUT\s+ROWID/i.test(this.#sql.get<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ingested_events'")?.sql ?? "")) db.exec(SERVER_SCHEMA_V5_SQL);
      // Once every table has its current shape: the move signs checkpoints.
      if (version < 2) this.#moveSharedChain();
      this.#sql.run("INSERT INTO meta (key, value) VALUES ('server_schema', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", String(SERVER_SCHEMA_VERSION));
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }

  /** Adds the columns an older file lacks. */
  #addColumns(tables: Readonly<Record<string, readonly string[]>>): void {
    for (const [table, columns] of Object.entries(tables)) {
      const present = new Set(this.#sql.all<{ name: string }>(`PRAGMA table_info(${table})`).map((column) => column.name));
      for (const column of columns) if (!present.has(column.split(" ")[0]!)) this.store.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column}`);
    }
  }

  #moveSharedChain(): void {
    const count = this.#sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM ledger")!.n;
    if (count === 0) return;
    const shared = new Ledger(this.store, this.#ledgerKey.publicKey).verify();
    const orgs = this.#sql.all<{ org: string }>("SELECT DISTINCT org FROM ledger ORDER BY org").map((row) => row.org);
    for (const org of orgs) {
      this.#ledger(org, "ledger.migrated", {}, { from: "shared chain", verified: shared.ok }, "warden");
    }
    for (const row of this.store.db.prepare("SELECT * FROM ledger ORDER BY seq").iterate() as IterableIterator<LedgerRow>) {
      this.#run(this.#orgLedger.append(row.org, { id: row.id, ts: row.ts, type: row.type, agentId: row.agent_id, runId: row.run_id, stepId: row.step_id, toolCallId: row.tool_call_id, actor: row.actor, dataJson: canonicalJson(JSON.parse(row.data)) }));
    }
    // A call the embedded client recorded by its folded entry alone (store schema 8) gets the row it would have
    // had (output and error stay in the entry, as an embedded row keeps them): the control plane's calls all have rows.
    // The table is written again in the order the calls started (ties: the order the entries record), so rows
    // read in rowid order come out as they did.
    if (this.#sql.get(`SELECT 1 AS found FROM (${foldedToolCallsSql("true")}) LIMIT 1`) !== undefined) {
      this.store.db.exec(`CREATE TEMP TABLE calls_in_order AS SELECT ${TOOL_CALL_ROW_COLUMNS} FROM (
  SELECT ${TOOL_CALL_ROW_COLUMNS}, (SELECT min(e.seq) FROM ledger e WHERE ${ledgerCallMatch("e.", "t.id")}) AS seq, rowid AS n FROM tool_calls t
  UNION ALL SELECT ${TOOL_CALL_ROW_COLUMNS.replace("output, error", "NULL, NULL")}, seq, 0 AS n FROM (${foldedToolCallsSql("true")})
) ORDER BY started_at, seq IS NULL, seq, n;
DELETE FROM tool_calls;
INSERT INTO tool_calls (${TOOL_CALL_ROW_COLUMNS}) SELECT ${TOOL_CALL_ROW_COLUMNS} FROM temp.calls_in_order ORDER BY rowid;
DROP TABLE temp.calls_in_order;`);
    }
    // The moved entries now live in their organizations' chains; the shared table is the embedded client's again.
    this.#sql.run("DELETE FROM ledger");
    this.#sql.run("DELETE FROM checkpoints");
    if (shared.ok) for (const org of orgs) this.#run(this.#orgLedger.checkpointNow(org));
  }

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.store.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** A read after this instance's queued writes commit. */
  #all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    this.store.flush();
    return this.#prepare(sql).all(...params) as T[];
  }

  #peek<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    this.store.flush();
    return this.#prepare(sql).get(...params) as T | undefined;
  }

  #transaction<T>(fn: () => T): T {
    return this.store.transaction(fn);
  }

  /** Runs a routine shared with the other stores on this connection. */
  #run<T>(query: Query<T>): T {
    return runSync(query, (op: SqlOp) => (op.kind === "run" ? this.#sql.run(op.sql, ...op.params) : op.kind === "get" ? this.#sql.get(op.sql, ...op.params) : this.#sql.all(op.sql, ...op.params)));
  }

  /** Appends a server-made entry to the organization's chain; it commits with the surrounding transaction. */
  #ledger(org: string, type: string, ids: { agentId?: string | undefined; runId?: string | undefined; toolCallId?: string | undefined }, data: Record<string, unknown>, actor: string | null, id?: string): void {
    this.#run(this.#orgLedger.append(org, draftOf(type, ids, data, actor, id ?? newId("evt"))));
  }

  /** Records a client's event id as seen. False when it was seen before (its ledger entry exists). */
  #markIngested(org: string, eventId: string | undefined, now = Date.now()): boolean {
    return this.#run(markIngested(org, eventId, now));
  }

  #stream(org: string, type: StreamMessageType, data: unknown, ts: number): StreamMessage {
    return this.#run(appendStream(org, type, data, ts));
  }

  #resolve(org: string, row: ApprovalRow, status: Exclude<ApprovalStatus, "pending">, reviewer: string | undefined, reason: string | undefined, now: number): { record: ApprovalRecord; message: StreamMessage } {
    const resolved = this.#run(resolveApproval(this.#orgLedger, org, row, status, reviewer, reason, now));
    this.#announced(org, row.id);
    return resolved;
  }

  #announced(org: string, approvalId: string): void {
    this.#announcedResolutions.add(`${org}/${approvalId}`);
    if (this.#announcedResolutions.size > REMEMBERED_RESOLUTIONS) {
      for (const id of this.#announcedResolutions) {
        this.#announcedResolutions.delete(id);
        if (this.#announcedResolutions.size <= REMEMBERED_RESOLUTIONS / 2) break;
      }
    }
  }

  #bumpHaltVersion(org: string): void {
    const key = `halt_version:${org}`;
    this.#sql.run("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1", key);
    this.#haltVersions.set(key, this.#sql.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", key)!.value);
  }

  #known(org: string): Map<string, number | null> {
    let known = this.#knownHalts.get(org);
    if (known === undefined) this.#knownHalts.set(org, (known = new Map()));
    return known;
  }

  /** What other processes had already done before this server started is not news. */
  #rememberExternalState(): void {
    for (const row of this.#all<{ key: string; value: string }>("SELECT key, value FROM meta WHERE key LIKE 'halt\\_version:%' ESCAPE '\\'")) this.#haltVersions.set(row.key, row.value);
    for (const row of this.#all<{ id: string; org: string; lifted_at: number | null }>("SELECT id, org, lifted_at FROM halts")) this.#known(row.org).set(row.id, row.lifted_at);
    this.#decidedWatermark = this.#peek<{ latest: number | null }>("SELECT MAX(decided_at) AS latest FROM approvals")?.latest ?? 0;
    for (const row of this.#all<{ id: string; org: string }>("SELECT id, org FROM approvals WHERE decided_at >= ?", this.#decidedWatermark)) this.#announcedResolutions.add(`${row.org}/${row.id}`);
  }

  #approvalsFor(org: string, toolCallIds: string[]): Map<string, ApprovalRecord> {
    if (toolCallIds.length === 0) return new Map();
    const rows = this.#all<ApprovalRow>(`SELECT * FROM approvals WHERE org = ? AND tool_call_id IN (${toolCallIds.map(() => "?").join(",")}) ORDER BY created_at`, org, ...toolCallIds);
    return new Map(rows.map((row) => [row.tool_call_id, toApprovalRecord(row)]));
  }
}


/** Orgs name files and appear in URLs: a conservative alphabet. */
const ORG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function assertOrg(org: string): void {
  if (!ORG_PATTERN.test(org)) throw new InvalidInputError(`invalid organization "${org}" (letters, digits, dot, dash, underscore; at most 64)`);
}
