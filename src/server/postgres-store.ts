// The control plane on PostgreSQL: any number of `warden serve` replicas on one database. Tables are
// the source of truth; a durable stream message is written in the transaction of the change it
// announces and `pg_notify` (delivered at commit) tells every replica to read it, so a lost
// notification is caught up by the next read and `Last-Event-ID` replays on any replica. Ingest,
// projections and the per-organization ledger are the same routines the SQLite store runs.
import { createHash, createPrivateKey, generateKeyPairSync } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import { ApprovalStatus, EventType, InvalidStateError, NotFoundError, StoreError } from "agent-warden";
import type { ApprovalDeliveryLog, LedgerEntry, WardenEvent } from "agent-warden";
import { deliveryLog } from "./deliveries.js";
import { haltScopeOf, toHaltRecord, type HaltRecord, type HaltRow } from "../halt/halt.js";
import { newId } from "../internal/ids.js";
import { loadOrCreateKey, type SigningKey } from "../ledger/keys.js";
import { pendingApproval, toApprovalRecord, toRunSummary, toStepRecord, toToolCallRecord, type ApprovalRecord, type ApprovalRow, type RunRow, type RunSummary, type StepRow, type ToolCallRecord, type ToolCallRow } from "../records.js";
import { AgentHaltedError, HttpError, PreconditionFailedError } from "./errors.js";
import { DEFAULT_MAX_PENDING_BATCHES } from "./ingest-thread.js";
import { etagMatches, policyEtag } from "./etag.js";
import { activeHaltFor, markIngested, type RejectedEvent } from "./ingest.js";
import { liveUpdates } from "./bulk-ingest.js";
import { ingestGroupPostgres } from "./postgres-ingest.js";
import type { BulkOutcome } from "./bulk-ingest.js";
import { generateApiKey, hashApiKey, looksLikeApiKey } from "./keys.js";
import { countersignCheckpoint, countersignedCheckpoint } from "./countersign.js";
import type { WitnessAnswer } from "../ledger/witness.js";
import type { WitnessCheck } from "../ledger/witnessed.js";
import type { WitnessedLog } from "../ledger/witnessing.js";
import { ledgerOrgs, orgWitnessedLog } from "./org-witnessing.js";
import { draftOf, OrgLedger, orgEvidence, orgLedgerSchema, policySetOrgDraft, toOrgLedgerEntry, verifyChain, type OrgLedgerRow } from "./org-ledger.js";
import type { EvidenceBundle } from "../ledger/evidence.js";
import { runAsync, toPostgres, type Query, type SqlOp, type SqlValue } from "./sql.js";
import { assertOrg, principalOf } from "./sqlite-store.js";
import { answerApproval, approvalEntries, escalateApprovals, escalationDue, ESCALATION_CANDIDATES, resolveApproval, type ServerApprovalRow, ruleForRequest, type ApprovalAnswer } from "./approval-rules.js";
import { agentLogHeadsSchema, deliveriesSchema, SERVER_V3_COLUMNS, SERVER_V4_COLUMNS } from "./schema.js";
import { DEFAULT_APPROVAL_TIMEOUT } from "./store.js";
import { appendStream } from "./stream-log.js";
import type {
  AgentRecord,
  ApiKeyRecord,
  ApprovalCreateInput,
  ApprovalFilter,
  Changes,
  ConsoleSessionTable,
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
  StreamSlotTable,
  ToolCallFilter,
} from "./store.js";

/**
 * Options of `PostgresControlPlaneStore`.
 * @example
 * import { PostgresControlPlaneStore, type PostgresControlPlaneOptions } from "agent-warden/server";
 * const options: PostgresControlPlaneOptions = { url: "postgres://warden@db/warden", poolSize: 20 };
 * const store = new PostgresControlPlaneStore(options);
 */
export interface PostgresControlPlaneOptions {
  /** `postgres://user:password@host:port/database`. */
  url: string;
  /** Connections per replica. Default 10. */
  poolSize?: number | undefined;
  /** Ed25519 private key (PEM) for ledger checkpoints; default: one generated on first start and kept in the database, so every replica signs with it. */
  ledgerSigningKey?: string | undefined;
  /** Sign an organization's ledger head every this many entries. Default 1000. */
  checkpointEvery?: number | undefined;
  /** …or after this long, whichever comes first. Default 10 s. */
  checkpointIntervalMs?: number | undefined;
  /** Receives background failures (a lost listener connection, a checkpoint not signed). */
  onError?: ((error: unknown) => void) | undefined;
}

const CHANNEL = "warden_stream";
/** Advisory lock key of migrations: one replica migrates, the others wait. */
const MIGRATION_LOCK = 7_305_982_114;
const EMPTY_POLICY_SET = { version: 1, default: "allow", policies: [] };
const EMPTY_POLICY_VERSION: PolicyVersion = { version: 0, etag: policyEtag(0, EMPTY_POLICY_SET), policies: EMPTY_POLICY_SET, source: undefined, author: undefined, comment: undefined, rolledBackFrom: undefined, createdAt: 0 };
const runColumns = "id, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error";
const keyColumns = "id, org, role, name, agent_id, groups, prefix, created_at, revoked_at, last_used_at";
const haltColumns = "id, target_kind, target, reason, actor, created_at, lifted_at";
const MAX_TREE_CHILDREN = 100;
const MAX_TREE_EVENTS = 2000;

/** Versioned migrations, applied in order under the advisory lock. */
const MIGRATIONS: string[] = [
  `
CREATE TABLE agents (org TEXT NOT NULL, id TEXT NOT NULL, grp TEXT, created_at BIGINT NOT NULL, PRIMARY KEY (org, id));
CREATE TABLE runs (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, agent_id TEXT NOT NULL, trace_id TEXT NOT NULL, parent_run_id TEXT, status TEXT NOT NULL, metadata TEXT,
  reason TEXT, agent_context TEXT, token_id TEXT, started_at BIGINT NOT NULL, ended_at BIGINT, error TEXT, rid BIGSERIAL
);
CREATE INDEX runs_by_org ON runs (org, started_at DESC, rid DESC);
CREATE INDEX runs_by_parent ON runs (org, parent_run_id);
CREATE TABLE steps (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, run_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, metadata TEXT,
  started_at BIGINT NOT NULL, ended_at BIGINT, rid BIGSERIAL
);
CREATE INDEX steps_by_run ON steps (org, run_id, started_at);
CREATE TABLE tool_calls (
  id TEXT PRIMARY KEY, external_id TEXT, run_id TEXT NOT NULL, step_id TEXT, org TEXT NOT NULL, agent_id TEXT NOT NULL, kind TEXT NOT NULL,
  tool_name TEXT NOT NULL, action_type TEXT NOT NULL, status TEXT NOT NULL, input TEXT, output TEXT, error TEXT, blocked_reason TEXT,
  decision TEXT, agent_context TEXT, reason TEXT, usage TEXT, started_at BIGINT NOT NULL, ended_at BIGINT, duration_ms DOUBLE PRECISION, rid BIGSERIAL
);
CREATE INDEX tool_calls_by_org ON tool_calls (org, started_at DESC, rid DESC);
CREATE INDEX tool_calls_by_run ON tool_calls (org, run_id, started_at);
CREATE TABLE approvals (
  id TEXT NOT NULL, org TEXT NOT NULL, tool_call_id TEXT NOT NULL, run_id TEXT NOT NULL, agent_id TEXT NOT NULL, tool_name TEXT NOT NULL,
  status TEXT NOT NULL, payload TEXT, agent_context TEXT, policy_id TEXT, reason TEXT, reviewer TEXT, decision_reason TEXT,
  created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, decided_at BIGINT, rid BIGSERIAL, PRIMARY KEY (org, id)
);
CREATE INDEX approvals_by_status ON approvals (org, status, created_at);
CREATE INDEX approvals_by_expiry ON approvals (status, expires_at);
CREATE TABLE halts (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, target_kind TEXT NOT NULL, target TEXT, reason TEXT NOT NULL, actor TEXT,
  created_at BIGINT NOT NULL, lifted_at BIGINT, lifted_by TEXT, lift_reason TEXT, rid BIGSERIAL
);
CREATE INDEX halts_by_org ON halts (org, created_at);
CREATE TABLE revoked_tokens (org TEXT NOT NULL, id TEXT NOT NULL, reason TEXT, revoked_at BIGINT NOT NULL, PRIMARY KEY (org, id));
CREATE INDEX revoked_tokens_by_time ON revoked_tokens (org, revoked_at, id);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, role TEXT NOT NULL, name TEXT, agent_id TEXT, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
  created_at BIGINT NOT NULL, revoked_at BIGINT, last_used_at BIGINT, rid BIGSERIAL
);
CREATE INDEX api_keys_by_org ON api_keys (org, created_at);
CREATE TABLE policy_versions (
  org TEXT NOT NULL, version BIGINT NOT NULL, document TEXT NOT NULL, source TEXT, etag TEXT NOT NULL, author TEXT, comment TEXT,
  rolled_back_from BIGINT, created_at BIGINT NOT NULL, PRIMARY KEY (org, version)
);
CREATE TABLE stream_events (org TEXT NOT NULL, seq BIGINT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, ts BIGINT NOT NULL, PRIMARY KEY (org, seq));
CREATE INDEX stream_events_by_ts ON stream_events (ts);
CREATE TABLE stream_heads (org TEXT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE ingested_events (org TEXT NOT NULL, id TEXT NOT NULL, received_at BIGINT NOT NULL, PRIMARY KEY (org, id));
CREATE TABLE signing_keys (name TEXT PRIMARY KEY, pem TEXT NOT NULL, created_at BIGINT NOT NULL);
${orgLedgerSchema({ int: "BIGINT", text: "TEXT" })}
`,
  `
CREATE TABLE console_sessions (
  digest TEXT PRIMARY KEY, key_id TEXT NOT NULL, org TEXT NOT NULL, role TEXT NOT NULL, name TEXT, csrf_token TEXT NOT NULL,
  created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
`,
  `
CREATE TABLE stream_slots (
  replica TEXT NOT NULL, org TEXT NOT NULL, key_id TEXT NOT NULL, open INTEGER NOT NULL, expires_at BIGINT NOT NULL,
  PRIMARY KEY (replica, org, key_id)
);
CREATE INDEX stream_slots_by_org ON stream_slots (org, expires_at);
`,
  `${Object.entries(SERVER_V3_COLUMNS)
    .flatMap(([table, columns]) => columns.map((column) => `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${column.replace(/ INTEGER$/, " BIGINT")};`))
    .join("\n")}
${deliveriesSchema({ int: "BIGINT", text: "TEXT" })}`,
  `${Object.entries(SERVER_V4_COLUMNS)
    .flatMap(([table, columns]) => columns.map((column) => `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${column};`))
    .join("\n")}
${agentLogHeadsSchema({ int: "BIGINT", text: "TEXT" })}`,
];

type Executor = (op: SqlOp) => Promise<unknown>;

/** A batch waiting for an ingest transaction. */
interface IngestWaiter {
  principal: Principal;
  events: readonly WardenEvent[];
  resolve: (result: IngestResult & { rejected: RejectedEvent[]; changes: Changes }) => void;
  reject: (error: unknown) => void;
}
/** Ingest transactions at once: one prepares its statements while another's run, with little waiting on the ledger's head. */
const INGEST_WRITERS = 2;
/** Events of waiting batches written in one transaction at most (a batch alone may be larger). */
const GROUP_EVENTS = 4000;

/** Names of prepared statements by their text; past the bound, statements go unnamed (parsed each time). */
const preparedNames = new Map<string, string>();
const MAX_PREPARED = 500;

/**
 * A name for a statement's text, the same on every connection (the driver prepares a name once per
 * connection): for the bulk statements of ingest (arrays of rows), whose parsing and planning is worth
 * keeping; the others stay unnamed, so none reads `*` through a plan made before a migration.
 */
function preparedName(text: string): string | undefined {
  if (!text.includes("unnest(") && !text.includes("string_to_array(")) return undefined;
  let name = preparedNames.get(text);
  if (name === undefined && preparedNames.size < MAX_PREPARED) preparedNames.set(text, (name = `warden_${createHash("sha256").update(text).digest("base64url").slice(0, 24)}`));
  return name;
}

const toKeyRecord = (row: { id: string; org: string; role: Role; name: string | null; agent_id: string | null; groups: string | null; prefix: string; created_at: number; revoked_at: number | null; last_used_at: number | null }): ApiKeyRecord => ({
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

function page<T>(items: T[], total: number, query: PageQuery): Page<T> {
  return { items, total, limit: query.limit, offset: query.offset, nextOffset: query.offset + items.length < total ? query.offset + items.length : null };
}

/** Host, port and database of a URL, never its password: for error messages. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    return `PostgreSQL at ${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`;
  } catch {
    return "PostgreSQL (the URL does not parse)";
  }
}

/**
 * The control plane on PostgreSQL, for several replicas behind a load balancer. Migrations run on
 * start under an advisory lock; halts, approval decisions, policy versions and revocations made on
 * any replica reach the stream clients of every replica.
 * @example
 * import { createWardenServer, PostgresControlPlaneStore } from "agent-warden/server";
 * const store = new PostgresControlPlaneStore({ url: process.env.WARDEN_DATABASE_URL! });
 * const server = createWardenServer({ store });
 * await server.listen(4000, "0.0.0.0");
 */
export class PostgresControlPlaneStore implements ControlPlaneStore {
  readonly kind = "postgres";
  readonly #options: PostgresControlPlaneOptions;
  readonly #onError: (error: unknown) => void;
  #pool: Pool | undefined;
  #listener: PoolClient | undefined;
  readonly #ready: Promise<void>;
  #ledgerKey: SigningKey | undefined;
  #orgLedger: OrgLedger | undefined;
  readonly #tokenKeys = new Map<string, SigningKey>();
  /** Per organization, the newest stream sequence this replica has announced. */
  readonly #announced = new Map<string, number>();
  readonly #dirty = new Set<string>();
  readonly #listeners = new Set<(changes: Changes[]) => void>();
  readonly #lastUsed = new Map<string, number>();
  #closed = false;
  #pumping: Promise<void> | undefined;
  readonly #ingestQueue: IngestWaiter[] = [];
  #ingestWriters = 0;
  readonly #ingestIdle: Array<() => void> = [];

  constructor(options: PostgresControlPlaneOptions) {
    this.#options = options;
    const report = options.onError ?? (() => {});
    // Background work a shutdown cuts short (a last-used stamp, a stream read) fails on the ended pool: not news.
    this.#onError = (error) => {
      if (!this.#closed) report(error);
    };
    this.#ready = this.#start();
    // Callers see the failure on their first call; an unobserved start failure is not a crash.
    this.#ready.catch(() => {});
  }

  /** Resolves once the database is reachable and migrated; rejects with a message that names host and port, never the password. */
  ready(): Promise<void> {
    return this.#ready;
  }

  async #start(): Promise<void> {
    let pg: typeof import("pg");
    try {
      pg = (await import("pg")).default as unknown as typeof import("pg");
    } catch (cause) {
      throw new StoreError("the PostgreSQL store needs the `pg` package: npm install pg", { cause });
    }
    const int8 = (value: string) => Number(value);
    const pool = new pg.Pool({
      connectionString: this.#options.url,
      max: this.#options.poolSize ?? 10,
      types: { getTypeParser: ((oid: number, format?: "text" | "binary") => (oid === 20 ? int8 : pg.types.getTypeParser(oid, format))) as never },
    });
    pool.on("error", (error) => this.#onError(error));
    this.#pool = pool;
    try {
      await this.#migrate(pool);
      this.#ledgerKey = await this.#signingKey(pool);
      this.#orgLedger = new OrgLedger(this.#ledgerKey, { every: this.#options.checkpointEvery ?? 1000, intervalMs: this.#options.checkpointIntervalMs ?? 10_000 }, this.#onError);
      for (const row of (await pool.query<{ org: string; seq: number }>("SELECT org, seq FROM stream_heads")).rows) this.#announced.set(row.org, row.seq);
      await this.#listen();
    } catch (cause) {
      await pool.end().catch(() => {});
      throw new StoreError(`cannot use ${describeDatabase(this.#options.url)}: ${(cause as Error).message}`, { cause });
    }
  }

  async #migrate(pool: Pool): Promise<void> {
    const client = await pool.connect();
    try {
      // One replica migrates; the others wait here, then find nothing to do.
      await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
      await client.query("CREATE TABLE IF NOT EXISTS warden_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
      const done = new Set((await client.query<{ version: number }>("SELECT version FROM warden_migrations")).rows.map((row) => Number(row.version)));
      for (const [index, sql] of MIGRATIONS.entries()) {
        const version = index + 1;
        if (done.has(version)) continue;
        await client.query("BEGIN");
        try {
          await client.query(sql);
          await client.query("INSERT INTO warden_migrations (version, applied_at) VALUES ($1, $2)", [version, Date.now()]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw error;
        }
      }
      const newest = Math.max(0, ...done);
      if (newest > MIGRATIONS.length) throw new StoreError(`the database has schema ${newest}; this version of Warden reads up to ${MIGRATIONS.length}`);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => {});
      client.release();
    }
  }

  /** The ledger key: configured, or the one the first replica generated and stored. */
  async #signingKey(pool: Pool): Promise<SigningKey> {
    if (this.#options.ledgerSigningKey !== undefined) return loadOrCreateKey(undefined, this.#options.ledgerSigningKey);
    return loadOrCreateKey(undefined, await this.#storedKey(pool, "ledger"));
  }

  async #storedKey(pool: Pool, name: string): Promise<string> {
    const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    await pool.query("INSERT INTO signing_keys (name, pem, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING", [name, pem, Date.now()]);
    const stored = (await pool.query<{ pem: string }>("SELECT pem FROM signing_keys WHERE name = $1", [name])).rows[0]!.pem;
    createPrivateKey(stored);
    return stored;
  }

  /** A dedicated connection LISTENs; on loss it reconnects and catches up from the tables. */
  async #listen(): Promise<void> {
    const client = await this.#pool!.connect();
    this.#listener = client;
    client.on("notification", (message) => {
      if (message.channel !== CHANNEL || message.payload === undefined) return;
      this.#dirty.add(message.payload);
      this.#pump();
    });
    let lost = false;
    const lose = () => {
      if (lost) return false;
      lost = true;
      client.release(true);
      if (this.#listener === client) this.#listener = undefined;
      return true;
    };
    client.on("error", (error) => {
      this.#onError(error);
      if (lose()) this.#relisten(0);
    });
    try {
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      lose();
      throw error;
    }
  }

  /** Listens again after the connection was lost, retrying until the database answers (it may be restarting), then catches up. */
  #relisten(attempt: number): void {
    if (this.#closed) return;
    setTimeout(() => {
      if (this.#closed) return;
      this.#listen()
        .then(() => this.#catchUp())
        .catch((error: unknown) => {
          if (attempt === 0) this.#onError(error);
          this.#relisten(attempt + 1);
        });
    }, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))).unref();
  }

  /** Marks every organization whose stream moved past what this replica announced. */
  async #catchUp(): Promise<void> {
    for (const row of (await this.#query<{ org: string; seq: number }>("SELECT org, seq FROM stream_heads")).rows) {
      if (row.seq > (this.#announced.get(row.org) ?? 0)) this.#dirty.add(row.org);
    }
    this.#pump();
  }

  /** Reads the new durable messages of notified organizations and hands them to the stream. */
  #pump(): void {
    if (this.#pumping !== undefined || this.#closed) return;
    this.#pumping = (async () => {
      while (this.#dirty.size > 0 && !this.#closed) {
        const orgs = [...this.#dirty];
        this.#dirty.clear();
        const changes: Changes[] = [];
        for (const org of orgs) {
          const after = this.#announced.get(org) ?? 0;
          const messages = await this.streamAfter(org, after, 1000);
          if (messages.length === 0) continue;
          this.#announced.set(org, Math.max(after, messages.at(-1)!.seq!));
          if (messages.length === 1000) this.#dirty.add(org);
          changes.push({ org, messages });
        }
        if (changes.length > 0) for (const listener of this.#listeners) listener(changes);
      }
    })()
      .catch(this.#onError)
      .finally(() => {
        this.#pumping = undefined;
        if (this.#dirty.size > 0) this.#pump();
      });
  }

  /** Calls `listener` with durable messages written by any replica (this one's included; the stream drops what a client has). */
  onExternalChanges(listener: (changes: Changes[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ── plumbing ──────────────────────────────────────────────────────────────────────────────

  async #query<T extends object>(sql: string, params: SqlValue[] = []): Promise<{ rows: T[]; rowCount: number }> {
    await this.#ready;
    const result = await this.#pool!.query<T>(toPostgres(sql), params);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }

  async #all<T extends object>(sql: string, ...params: SqlValue[]): Promise<T[]> {
    return (await this.#query<T>(sql, params)).rows;
  }

  async #get<T extends object>(sql: string, ...params: SqlValue[]): Promise<T | undefined> {
    return (await this.#query<T>(sql, params)).rows[0];
  }

  /**
   * Runs `fn` in one transaction on one connection, retried when PostgreSQL reports a serialization
   * conflict or deadlock. With `prepared`, the bulk statements are parsed once per connection and
   * look rows up by their indexes.
   */
  async #transaction<T>(fn: (exec: Executor) => Promise<T>, options: { prepared?: boolean } = {}): Promise<T> {
    await this.#ready;
    for (let attempt = 0; ; attempt++) {
      const client = await this.#pool!.connect();
      // A connection lost between two statements emits `error` on the client (not on a query): it is
      // noted here, and the next statement fails with it (an unheard `error` would end the process).
      let broken = false;
      const lost = () => (broken = true);
      client.on("error", lost);
      const exec: Executor = async (op) => {
        const text = toPostgres(op.sql);
        const result = await client.query(options.prepared ? { name: preparedName(text), text, values: op.params } : { text, values: op.params });
        return op.kind === "run" ? (result.rowCount ?? 0) : op.kind === "get" ? result.rows[0] : result.rows;
      };
      try {
        // The bulk statements look rows up by key, a few hundred at once: to the planner such a list can
        // look like much of a table (its statistics lag behind its growth), and the rows are then read by a
        // scan of all of it; with scans ruled out while there is an index to use, the cost stays that of
        // the rows named at any table size. Each call is planned for its values: a plan made once for
        // any values, on a connection's first ingest, would be the plan for empty tables forever.
        await client.query(options.prepared ? "BEGIN; SET LOCAL enable_seqscan = off" : "BEGIN");
        const value = await fn(exec);
        await client.query("COMMIT");
        client.off("error", lost);
        client.release();
        return value;
      } catch (error) {
        const rolledBack = await client.query("ROLLBACK").then(
          () => true,
          () => false,
        );
        client.off("error", lost);
        // A connection that could not roll back is closed, not returned to the pool.
        client.release(broken || !rolledBack ? true : undefined);
        const code = (error as { code?: string }).code;
        if ((code === "40001" || code === "40P01" || code === "23505") && attempt < 5) continue;
        throw error;
      }
    }
  }

  /** Appends a durable stream message and notifies every replica at commit. */
  async #stream(exec: Executor, org: string, type: StreamMessageType, data: unknown, ts: number): Promise<StreamMessage> {
    const message = await runAsync(appendStream(org, type, data, ts), exec);
    await exec({ kind: "run", sql: "SELECT pg_notify(?, ?)", params: [CHANNEL, org] });
    return message;
  }

  async #ledger(exec: Executor, org: string, type: string, ids: { agentId?: string | undefined; runId?: string | undefined; toolCallId?: string | undefined }, data: Record<string, unknown>, actor: string | null, id?: string): Promise<void> {
    await runAsync(this.#orgLedger!.append(org, draftOf(type, ids, data, actor, id ?? newId("evt"))), exec);
  }

  #run<T>(exec: Executor, query: Query<T>): Promise<T> {
    return runAsync(query, exec);
  }

  // ── console sessions ──────────────────────────────────────────────────────────────────────

  /** Console sessions in the database: they survive a restart and a switch of replica. */
  /** Approval channel deliveries: they survive a restart, and due retries are claimed by one replica. */
  readonly deliveries: ApprovalDeliveryLog = deliveryLog((query) => this.#transaction((exec) => this.#run(exec, query)));

  readonly consoleSessions: ConsoleSessionTable = {
    put: async (session, now) => {
      await this.#query("DELETE FROM console_sessions WHERE expires_at <= ?", [now]);
      await this.#query(
        "INSERT INTO console_sessions (digest, key_id, org, role, name, csrf_token, created_at, last_seen_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?)",
        [session.digest, session.keyId, session.org, session.role, session.name ?? null, session.csrfToken, session.createdAt, session.lastSeenAt, session.expiresAt],
      );
    },
    get: async (digest) => {
      const row = await this.#get<{ digest: string; key_id: string; org: string; role: Role; name: string | null; csrf_token: string; created_at: number; last_seen_at: number; expires_at: number }>("SELECT * FROM console_sessions WHERE digest = ?", digest);
      return row && { digest: row.digest, keyId: row.key_id, org: row.org, role: row.role, name: row.name ?? undefined, csrfToken: row.csrf_token, createdAt: row.created_at, lastSeenAt: row.last_seen_at, expiresAt: row.expires_at };
    },
    touch: async (digest, lastSeenAt) => {
      await this.#query("UPDATE console_sessions SET last_seen_at = ? WHERE digest = ?", [lastSeenAt, digest]);
    },
    delete: async (digest) => {
      await this.#query("DELETE FROM console_sessions WHERE digest = ?", [digest]);
    },
  };

  // ── stream slots ──────────────────────────────────────────────────────────────────────────

  /** Open streams counted across replicas: the organization's row set is locked while one is taken. */
  readonly streamSlots: StreamSlotTable = {
    acquire: (replica, org, keyId, limits) =>
      this.#transaction(async (exec) => {
        const now = Date.now();
        await exec({ kind: "get", sql: "SELECT pg_advisory_xact_lock(hashtext(?))", params: [`stream_slots:${org}`] });
        const counts = (await exec({ kind: "get", sql: "SELECT COALESCE(SUM(open), 0) AS org_open, COALESCE(SUM(open) FILTER (WHERE key_id = ?), 0) AS key_open FROM stream_slots WHERE org = ? AND expires_at > ?", params: [keyId, org, now] })) as { org_open: number; key_open: number };
        if (Number(counts.key_open) >= limits.perKey) return "key" as const;
        if (Number(counts.org_open) >= limits.streams) return "org" as const;
        await exec({
          kind: "run",
          sql: "INSERT INTO stream_slots (replica, org, key_id, open, expires_at) VALUES (?,?,?,1,?) ON CONFLICT (replica, org, key_id) DO UPDATE SET open = stream_slots.open + 1, expires_at = excluded.expires_at",
          params: [replica, org, keyId, now + limits.ttl],
        });
        return "ok" as const;
      }),
    release: async (replica, org, keyId) => {
      await this.#query("UPDATE stream_slots SET open = GREATEST(open - 1, 0) WHERE replica = ? AND org = ? AND key_id = ?", [replica, org, keyId]);
    },
    renew: async (replica, ttl) => {
      const now = Date.now();
      await this.#query("UPDATE stream_slots SET expires_at = ? WHERE replica = ?", [now + ttl, replica]);
      await this.#query("DELETE FROM stream_slots WHERE expires_at <= ? OR (open = 0 AND replica = ?)", [now, replica]);
    },
  };

  async principalOfKey(keyId: string): Promise<Principal | undefined> {
    const row = await this.#get<Parameters<typeof toKeyRecord>[0]>(`SELECT ${keyColumns} FROM api_keys WHERE id = ? AND revoked_at IS NULL`, keyId);
    return row && principalOf(row);
  }

  // ── keys ──────────────────────────────────────────────────────────────────────────────────

  async createKey(input: { org: string; role: Role; name?: string | undefined; agentId?: string | undefined; groups?: readonly string[] | undefined; actor?: string | undefined }): Promise<{ key: string; record: ApiKeyRecord }> {
    assertOrg(input.org);
    const key = generateApiKey();
    const now = Date.now();
    const groups = input.groups !== undefined && input.groups.length > 0 ? JSON.stringify([...new Set(input.groups)]) : null;
    const row = { id: newId("key"), org: input.org, role: input.role, name: input.name ?? null, agent_id: input.agentId ?? null, groups, prefix: key.slice(0, 12), created_at: now, revoked_at: null, last_used_at: null };
    await this.#transaction(async (exec) => {
      await exec({ kind: "run", sql: "INSERT INTO api_keys (id, org, role, name, agent_id, groups, hash, prefix, created_at) VALUES (?,?,?,?,?,?,?,?,?)", params: [row.id, row.org, row.role, row.name, row.agent_id, groups, hashApiKey(key), row.prefix, now] });
      await this.#ledger(exec, input.org, "key.created", {}, { keyId: row.id, role: row.role, name: row.name ?? undefined, agentId: row.agent_id ?? undefined, ...(groups !== null && { groups: JSON.parse(groups) }) }, input.actor ?? null);
    });
    return { key, record: toKeyRecord(row) };
  }

  async listKeys(org: string): Promise<ApiKeyRecord[]> {
    return (await this.#all<Parameters<typeof toKeyRecord>[0]>(`SELECT ${keyColumns} FROM api_keys WHERE org = ? ORDER BY created_at, rid`, org)).map(toKeyRecord);
  }

  async revokeKey(org: string, keyId: string, actor?: string): Promise<ApiKeyRecord> {
    return this.#transaction(async (exec) => {
      const row = (await exec({ kind: "get", sql: `SELECT ${keyColumns} FROM api_keys WHERE id = ? AND org = ? FOR UPDATE`, params: [keyId, org] })) as Parameters<typeof toKeyRecord>[0] | undefined;
      if (row === undefined) throw new NotFoundError("key", keyId);
      if (row.revoked_at !== null) return toKeyRecord(row);
      const now = Date.now();
      await exec({ kind: "run", sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND org = ?", params: [now, keyId, org] });
      await this.#ledger(exec, org, "key.revoked", {}, { keyId }, actor ?? null);
      return toKeyRecord({ ...row, revoked_at: now });
    });
  }

  async authenticate(secret: string): Promise<Principal | undefined> {
    if (!looksLikeApiKey(secret)) return undefined;
    const row = await this.#get<Parameters<typeof toKeyRecord>[0]>(`SELECT ${keyColumns} FROM api_keys WHERE hash = ? AND revoked_at IS NULL`, hashApiKey(secret));
    if (row === undefined) return undefined;
    const now = Date.now();
    if (now - (this.#lastUsed.get(row.id) ?? 0) > 60_000) {
      this.#lastUsed.set(row.id, now);
      void this.#query("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [now, row.id]).catch(this.#onError);
    }
    return principalOf(row);
  }

  async hasActiveKey(org: string, role: Role): Promise<boolean> {
    return (await this.#get("SELECT 1 AS found FROM api_keys WHERE org = ? AND role = ? AND revoked_at IS NULL", org, role)) !== undefined;
  }

  // ── events, agents, runs, tool calls ──────────────────────────────────────────────────────

  /**
   * Writes a batch once a transaction is free for it: at most `INGEST_WRITERS` write at once, and the
   * batches of one organization that waited meanwhile go together in the next one (bulk-ingest.ts's
   * `ingestBulkGroup`: one read of what they name, one statement per table), each answered once it has
   * committed.
   */
  ingest(principal: Principal, events: readonly WardenEvent[]): Promise<IngestResult & { rejected: RejectedEvent[]; changes: Changes }> {
    if (this.#ingestQueue.length >= DEFAULT_MAX_PENDING_BATCHES) {
      // Back-pressure, as on SQLite's writer thread: the client sends again shortly, and ids keep it single.
      return Promise.reject(new HttpError(503, "unavailable", `the control plane is ${this.#ingestQueue.length} batches behind on writing events; send again shortly`, { headers: { "Retry-After": "1" } }));
    }
    return new Promise((resolve, reject) => {
      this.#ingestQueue.push({ principal, events, resolve, reject });
      this.#drainIngest();
    });
  }

  #drainIngest(): void {
    const queue = this.#ingestQueue;
    while (this.#ingestWriters < INGEST_WRITERS && queue.length > 0) {
      // The first waiting batch's organization, and the batches of that organization behind it, up to the bound.
      const org = queue[0]!.principal.org;
      const group: IngestWaiter[] = [];
      let size = 0;
      for (let i = 0; i < queue.length; ) {
        const waiter = queue[i]!;
        if (waiter.principal.org !== org) {
          i++;
          continue;
        }
        if (group.length > 0 && size + waiter.events.length > GROUP_EVENTS) break;
        size += waiter.events.length;
        group.push(waiter);
        queue.splice(i, 1);
      }
      this.#ingestWriters++;
      void this.#writeGroup(group).finally(() => {
        this.#ingestWriters--;
        this.#drainIngest();
        if (this.#ingestWriters === 0 && queue.length === 0) for (const idle of this.#ingestIdle.splice(0)) idle();
      });
    }
  }

  async #writeGroup(group: IngestWaiter[]): Promise<void> {
    const org = group[0]!.principal.org;
    let outcomes: BulkOutcome[];
    try {
      outcomes = await this.#transaction(
        async (exec) => {
          const batches = group.map(({ principal, events }) => ({ principal, events: events.map((event, index) => ({ index, event })) }));
          const result = await ingestGroupPostgres(this.#orgLedger!, batches, Date.now(), exec);
          if (result.some((outcome) => outcome.messages.length > 0)) await exec({ kind: "run", sql: "SELECT pg_notify(?, ?)", params: [CHANNEL, org] });
          return result;
        },
        { prepared: true },
      );
    } catch (error) {
      // One bad batch fails alone: a group that failed is written again batch by batch.
      if (group.length === 1) return group[0]!.reject(error);
      for (const waiter of group) await this.#writeGroup([waiter]);
      return;
    }
    for (const [i, waiter] of group.entries()) {
      const outcome = outcomes[i]!;
      waiter.resolve({ accepted: outcome.accepted, duplicates: outcome.duplicates, rejected: outcome.rejected, changes: { org, messages: [...outcome.messages, ...liveUpdates(outcome.live)] } });
    }
  }

  async registerAgent(org: string, agentId: string, group: string | undefined): Promise<AgentRecord> {
    const row = (await this.#get<{ id: string; grp: string | null; created_at: number }>(
      "INSERT INTO agents (org, id, grp, created_at) VALUES (?,?,?,?) ON CONFLICT (org, id) DO UPDATE SET grp = excluded.grp RETURNING id, grp, created_at",
      org,
      agentId,
      group ?? null,
      Date.now(),
    ))!;
    return { agentId: row.id, group: row.grp ?? undefined, createdAt: row.created_at };
  }

  async listAgents(org: string): Promise<AgentRecord[]> {
    return (await this.#all<{ id: string; grp: string | null; created_at: number }>("SELECT id, grp, created_at FROM agents WHERE org = ? ORDER BY id LIMIT 10000", org)).map((r) => ({ agentId: r.id, group: r.grp ?? undefined, createdAt: r.created_at }));
  }

  async listRuns(org: string, filter: RunFilter, query: PageQuery): Promise<Page<RunSummary>> {
    const where = "org = ?1 AND (?2::text IS NULL OR agent_id = ?2) AND (?3::text IS NULL OR status = ?3) AND (?4::text IS NULL OR trace_id = ?4) AND (?5::text IS NULL OR parent_run_id = ?5)";
    const params = [org, filter.agentId ?? null, filter.status ?? null, filter.traceId ?? null, filter.parentRunId ?? null];
    const total = (await this.#get<{ n: number }>(`SELECT COUNT(*)::bigint AS n FROM runs WHERE ${where}`, ...params))!.n;
    const rows = await this.#all<RunRow>(`SELECT ${runColumns} FROM runs WHERE ${where} ORDER BY started_at DESC, rid DESC LIMIT ?6 OFFSET ?7`, ...params, query.limit, query.offset);
    return page(rows.map(toRunSummary), total, query);
  }

  async getRun(org: string, runId: string, depth: number): Promise<RunTree | undefined> {
    const row = await this.#get<RunRow>(`SELECT ${runColumns} FROM runs WHERE id = ? AND org = ?`, runId, org);
    if (row === undefined) return undefined;
    const approvals = new Map((await this.#all<ApprovalRow>("SELECT * FROM approvals WHERE run_id = ? AND org = ? ORDER BY created_at", runId, org)).map((a) => [a.tool_call_id, toApprovalRecord(a)]));
    const childIds = (await this.#all<{ id: string }>("SELECT id FROM runs WHERE parent_run_id = ? AND org = ? ORDER BY started_at LIMIT ?", runId, org, MAX_TREE_CHILDREN)).map((r) => r.id);
    const children: RunTree[] = [];
    if (depth > 0) {
      for (const id of childIds) {
        const child = await this.getRun(org, id, depth - 1);
        if (child) children.push(child);
      }
    }
    return {
      ...toRunSummary(row),
      steps: (await this.#all<StepRow>("SELECT * FROM steps WHERE run_id = ? AND org = ? ORDER BY started_at, rid", runId, org)).map(toStepRecord),
      toolCalls: (await this.#all<ToolCallRow>("SELECT * FROM tool_calls WHERE run_id = ? AND org = ? ORDER BY started_at, rid", runId, org)).map((tc) => toToolCallRecord(tc, approvals.get(tc.id))),
      events: (await this.#all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND run_id = ? ORDER BY seq LIMIT ?", org, runId, MAX_TREE_EVENTS)).map((entry) => {
        const { id, type, ts, agentId, runId: r, stepId, toolCallId, actor, data } = toOrgLedgerEntry(entry);
        return { id, type: type as EventType, ts, org, agentId, runId: r, stepId, toolCallId, actor, data: data as Record<string, unknown> };
      }),
      childRunIds: childIds,
      children,
    };
  }

  async listToolCalls(org: string, filter: ToolCallFilter, query: PageQuery): Promise<Page<ToolCallRecord>> {
    const where =
      "org = ?1 AND (?2::text IS NULL OR agent_id = ?2) AND (?3::text IS NULL OR status = ?3) AND (?4::text IS NULL OR run_id = ?4) AND (?5::text IS NULL OR tool_name = ?5) AND (?6::text IS NULL OR run_id IN (SELECT id FROM runs WHERE org = ?1 AND trace_id = ?6))";
    const params = [org, filter.agentId ?? null, filter.status ?? null, filter.runId ?? null, filter.toolName ?? null, filter.traceId ?? null];
    const total = (await this.#get<{ n: number }>(`SELECT COUNT(*)::bigint AS n FROM tool_calls WHERE ${where}`, ...params))!.n;
    const rows = await this.#all<ToolCallRow>(`SELECT * FROM tool_calls WHERE ${where} ORDER BY started_at DESC, rid DESC LIMIT ?7 OFFSET ?8`, ...params, query.limit, query.offset);
    const approvals = await this.#approvalsFor(org, rows.map((r) => r.id));
    return page(rows.map((r) => toToolCallRecord(r, approvals.get(r.id))), total, query);
  }

  async getToolCall(org: string, toolCallId: string): Promise<ToolCallRecord | undefined> {
    const row = await this.#get<ToolCallRow>("SELECT * FROM tool_calls WHERE id = ? AND org = ?", toolCallId, org);
    return row && toToolCallRecord(row, (await this.#approvalsFor(org, [row.id])).get(row.id));
  }

  // ── policies ──────────────────────────────────────────────────────────────────────────────

  async currentPolicy(org: string): Promise<PolicyVersion> {
    const row = await this.#get<PolicyRow>("SELECT * FROM policy_versions WHERE org = ? ORDER BY version DESC LIMIT 1", org);
    return row ? toPolicyVersion(row) : EMPTY_POLICY_VERSION;
  }

  async getPolicyVersion(org: string, version: number): Promise<PolicyVersion | undefined> {
    if (version === 0) return EMPTY_POLICY_VERSION;
    const row = await this.#get<PolicyRow>("SELECT * FROM policy_versions WHERE org = ? AND version = ?", org, version);
    return row && toPolicyVersion(row);
  }

  async listPolicyVersions(org: string, query: PageQuery): Promise<Page<PolicyVersionSummary>> {
    const total = (await this.#get<{ n: number }>("SELECT COUNT(*)::bigint AS n FROM policy_versions WHERE org = ?", org))!.n;
    const rows = await this.#all<PolicyRow>("SELECT * FROM policy_versions WHERE org = ? ORDER BY version DESC LIMIT ? OFFSET ?", org, query.limit, query.offset);
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
    return this.#transaction(async (exec) => {
      // Versions of one organization are handed out one at a time, across replicas.
      await exec({ kind: "run", sql: "SELECT pg_advisory_xact_lock(hashtext(?))", params: [`policy:${org}`] });
      const latest = ((await exec({ kind: "get", sql: "SELECT version, etag FROM policy_versions WHERE org = ? ORDER BY version DESC LIMIT 1", params: [org] })) as { version: number; etag: string } | undefined) ?? EMPTY_POLICY_VERSION;
      if (input.ifMatch !== undefined && !etagMatches(input.ifMatch, latest.etag)) throw new PreconditionFailedError(`the policy set changed since ${input.ifMatch}; the current version is ${latest.version}`, latest.etag);
      const now = Date.now();
      const version: PolicyVersion = { version: latest.version + 1, etag: policyEtag(latest.version + 1, input.policies), policies: input.policies, source: input.source, author: input.author, comment: input.comment, rolledBackFrom: input.rolledBackFrom, createdAt: now };
      await exec({
        kind: "run",
        sql: "INSERT INTO policy_versions (org, version, document, source, etag, author, comment, rolled_back_from, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
        params: [org, version.version, JSON.stringify(input.policies), input.source ?? null, version.etag, input.author ?? null, input.comment ?? null, input.rolledBackFrom ?? null, now],
      });
      await this.#ledger(exec, org, "policy.updated", {}, { version: version.version, etag: version.etag, comment: input.comment, rolledBackFrom: input.rolledBackFrom }, input.author ?? null);
      await runAsync(this.#orgLedger!.append(org, policySetOrgDraft(input.policies, input.author ?? null, newId("evt"), now)), exec);
      return { version, changes: { org, messages: [await this.#stream(exec, org, "policy.updated", version, now)] } };
    });
  }

  // ── approvals ─────────────────────────────────────────────────────────────────────────────

  async createApproval(principal: Principal, input: ApprovalCreateInput): Promise<{ record: ApprovalRecord; created: boolean; changes: Changes }> {
    const org = principal.org;
    return this.#transaction(async (exec) => {
      if (input.approvalId !== undefined) {
        const existing = (await exec({ kind: "get", sql: "SELECT * FROM approvals WHERE id = ? AND org = ?", params: [input.approvalId, org] })) as ApprovalRow | undefined;
        if (existing !== undefined) {
          if (existing.tool_call_id !== input.toolCallId) throw new InvalidStateError(`approval id "${input.approvalId}" is already in use`);
          await this.#run(exec, markIngested(org, input.eventId));
          return { record: toApprovalRecord(existing), created: false, changes: { org, messages: [] } };
        }
      }
      const halt = await this.#run(exec, activeHaltFor(org, input.agentId, input.runId));
      if (halt !== undefined) throw new AgentHaltedError(`agent "${input.agentId}" is halted (${halt}); it may not ask for approvals`);
      const now = Date.now();
      const rule = await this.#run(exec, ruleForRequest(org, input.policyId, input.rule));
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
      await exec({
        kind: "run",
        sql: "INSERT INTO approvals (id, org, tool_call_id, run_id, agent_id, tool_name, status, payload, agent_context, policy_id, reason, created_at, expires_at, rule, requested_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        params: [record.approvalId, org, record.toolCallId, record.runId, record.agentId, record.toolName, record.status, JSON.stringify(record.payload), record.agentContext ? JSON.stringify(record.agentContext) : null, record.policyId ?? null, record.reason ?? null, now, record.expiresAt, rule === undefined ? null : JSON.stringify(rule), principal.keyId],
      });
      if (await this.#run(exec, markIngested(org, input.eventId))) {
        await this.#ledger(
          exec,
          org,
          EventType.APPROVAL_REQUESTED,
          { agentId: record.agentId, runId: record.runId, toolCallId: record.toolCallId },
          { approvalId: record.approvalId, toolName: record.toolName, policyId: record.policyId, reason: record.reason, payload: record.payload, agentContext: record.agentContext, expiresAt: record.expiresAt, ...(rule !== undefined && { rule }) },
          principal.name ?? null,
          input.eventId,
        );
      }
      return { record, created: true, changes: { org, messages: [await this.#stream(exec, org, "approval.requested", record, now)] } };
    });
  }

  async getApproval(org: string, approvalId: string): Promise<ApprovalRecord | undefined> {
    const row = await this.#get<ApprovalRow>("SELECT * FROM approvals WHERE id = ? AND org = ?", approvalId, org);
    return row && toApprovalRecord(row);
  }

  async listApprovals(org: string, filter: ApprovalFilter, query: PageQuery): Promise<Page<ApprovalRecord>> {
    const where = "org = ?1 AND (?2::text IS NULL OR status = ?2) AND (?3::text IS NULL OR run_id = ?3) AND (?4::text IS NULL OR agent_id = ?4)";
    const params = [org, filter.status ?? null, filter.runId ?? null, filter.agentId ?? null];
    const total = (await this.#get<{ n: number }>(`SELECT COUNT(*)::bigint AS n FROM approvals WHERE ${where}`, ...params))!.n;
    const rows = await this.#all<ApprovalRow>(`SELECT * FROM approvals WHERE ${where} ORDER BY created_at DESC, rid DESC LIMIT ?5 OFFSET ?6`, ...params, query.limit, query.offset);
    return page(rows.map(toApprovalRecord), total, query);
  }

  async decideApproval(org: string, approvalId: string, status: "approved" | "rejected", answer: ApprovalAnswer): Promise<{ record: ApprovalRecord; changes: Changes }> {
    // The row is locked: answers arriving at several replicas at once are counted one after another.
    const result = await this.#transaction(async (exec) => {
      const answered = await this.#run(exec, answerApproval(this.#orgLedger!, org, approvalId, status, answer, Date.now(), true));
      // Every replica's stream hears the decision at commit, not at its next catch-up.
      if (answered.kind === "decided") await exec({ kind: "run", sql: "SELECT pg_notify(?, ?)", params: [CHANNEL, org] });
      return answered;
    });
    // A refusal is committed (recorded) before it is thrown.
    if (result.kind === "refused") throw result.refused;
    return { record: result.record, changes: { org, messages: result.kind === "decided" ? [result.message] : [] } };
  }

  async approvalEntries(org: string, approval: { approvalId: string; runId: string; toolCallId: string }): Promise<WardenEvent[]> {
    await this.#ready;
    return runAsync(approvalEntries(org, approval.runId, approval.toolCallId, approval.approvalId), async (op) => {
      const result = await this.#query(op.sql, op.params);
      return op.kind === "run" ? result.rowCount : op.kind === "get" ? result.rows[0] : result.rows;
    });
  }

  async escalateApprovals(now: number): Promise<number> {
    const due = (await this.#all<ServerApprovalRow & { org: string }>(ESCALATION_CANDIDATES)).filter((row) => escalationDue(row, now));
    if (due.length === 0) return 0;
    return this.#transaction(async (exec) => this.#run(exec, escalateApprovals(this.#orgLedger!, due, now)));
  }

  async expireApprovals(now: number): Promise<Changes[]> {
    const due = await this.#all<ApprovalRow & { org: string }>("SELECT * FROM approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT 500", now);
    if (due.length === 0) return [];
    const grouped = new Map<string, StreamMessage[]>();
    await this.#transaction(async (exec) => {
      for (const row of due) {
        // Another replica may expire it first: only the one whose update lands records it.
        const claimed = await exec({ kind: "run", sql: "UPDATE approvals SET status = 'expired' WHERE id = ? AND org = ? AND status = 'pending'", params: [row.id, row.org] });
        if (claimed === 0) continue;
        const { message } = await this.#resolve(exec, row.org, row, ApprovalStatus.EXPIRED, "warden", "approval timed out", now);
        grouped.set(row.org, [...(grouped.get(row.org) ?? []), message]);
      }
    });
    return [...grouped].map(([org, messages]) => ({ org, messages }));
  }

  async #resolve(exec: Executor, org: string, row: ApprovalRow, status: Exclude<ApprovalStatus, "pending">, reviewer: string | undefined, reason: string | undefined, now: number): Promise<{ record: ApprovalRecord; message: StreamMessage }> {
    const resolved = await this.#run(exec, resolveApproval(this.#orgLedger!, org, row, status, reviewer, reason, now));
    await exec({ kind: "run", sql: "SELECT pg_notify(?, ?)", params: [CHANNEL, org] });
    return resolved;
  }

  // ── halts ─────────────────────────────────────────────────────────────────────────────────

  async listHalts(org: string, options: { includeLifted: boolean }): Promise<HaltRecord[]> {
    const rows = await this.#all<HaltRow>(`SELECT ${haltColumns} FROM halts WHERE org = ? AND (lifted_at IS NULL OR ?::boolean) ORDER BY created_at DESC, rid DESC LIMIT 1000`, org, options.includeLifted ? "true" : "false");
    return rows.reverse().map(toHaltRecord);
  }

  async halt(org: string, input: HaltInput): Promise<{ record: HaltRecord; created: boolean; changes: Changes }> {
    const [scope, target] = haltScopeOf(input);
    return this.#transaction(async (exec) => {
      if (input.haltId !== undefined) {
        const existing = (await exec({ kind: "get", sql: `SELECT org, ${haltColumns} FROM halts WHERE id = ?`, params: [input.haltId] })) as (HaltRow & { org: string }) | undefined;
        if (existing !== undefined) {
          if (existing.org !== org) throw new InvalidStateError(`halt id "${input.haltId}" is already in use`);
          await this.#run(exec, markIngested(org, input.eventId));
          return { record: toHaltRecord(existing), created: false, changes: { org, messages: [] } };
        }
      }
      const now = Date.now();
      const record: HaltRecord = { haltId: input.haltId ?? newId("halt"), scope, target, reason: input.reason, actor: input.actor, createdAt: now, liftedAt: undefined };
      await exec({ kind: "run", sql: "INSERT INTO halts (id, org, target_kind, target, reason, actor, created_at) VALUES (?,?,?,?,?,?,?)", params: [record.haltId, org, scope, target ?? null, record.reason, record.actor ?? null, now] });
      if (await this.#run(exec, markIngested(org, input.eventId))) {
        await this.#ledger(exec, org, EventType.AGENT_HALTED, { agentId: input.agentId, runId: input.runId }, { haltId: record.haltId, scope, target, reason: record.reason }, record.actor ?? null, input.eventId);
      }
      const messages = [await this.#stream(exec, org, "halt.created", record, now)];
      const covered = (await exec({
        kind: "all",
        sql: `SELECT * FROM approvals WHERE org = ?1 AND status = 'pending' AND (?2 = 'organization' OR (?2 = 'agent' AND agent_id = ?3) OR (?2 = 'run' AND run_id = ?3)
           OR (?2 = 'group' AND agent_id IN (SELECT id FROM agents WHERE org = ?1 AND grp = ?3))) FOR UPDATE`,
        params: [org, scope, target ?? null],
      })) as ApprovalRow[];
      for (const row of covered) messages.push((await this.#resolve(exec, org, row, ApprovalStatus.CANCELLED, "warden", `halted: ${record.reason}`, now)).message);
      return { record, created: true, changes: { org, messages } };
    });
  }

  async resume(org: string, input: ResumeInput): Promise<{ lifted: HaltRecord[]; changes: Changes }> {
    const [scope, target] = haltScopeOf(input);
    return this.#transaction(async (exec) => {
      const now = Date.now();
      const lifted = ((await exec({
        kind: "all",
        sql: `UPDATE halts SET lifted_at = ?, lifted_by = ?, lift_reason = ? WHERE org = ? AND target_kind = ? AND target IS NOT DISTINCT FROM ? AND lifted_at IS NULL RETURNING ${haltColumns}`,
        params: [now, input.actor ?? null, input.reason ?? null, org, scope, target ?? null],
      })) as HaltRow[]).map(toHaltRecord);
      if (lifted.length === 0) {
        await this.#run(exec, markIngested(org, input.eventId));
        return { lifted: [], changes: { org, messages: [] } };
      }
      if (await this.#run(exec, markIngested(org, input.eventId))) {
        await this.#ledger(exec, org, EventType.AGENT_RESUMED, { agentId: input.agentId, runId: input.runId }, { haltIds: lifted.map((h) => h.haltId), scope, target, reason: input.reason }, input.actor ?? null, input.eventId);
      }
      const messages: StreamMessage[] = [];
      for (const halt of lifted) messages.push(await this.#stream(exec, org, "halt.lifted", halt, now));
      return { lifted, changes: { org, messages } };
    });
  }

  async groupOf(org: string, agentId: string): Promise<string | undefined> {
    return (await this.#get<{ grp: string | null }>("SELECT grp FROM agents WHERE org = ? AND id = ?", org, agentId))?.grp ?? undefined;
  }

  /** Catches up what notifications may have missed (a dropped listener connection): the tables are the truth. */
  async pollExternalChanges(): Promise<Changes[]> {
    await this.#catchUp();
    return [];
  }

  // ── tokens ────────────────────────────────────────────────────────────────────────────────

  async tokenKey(org: string): Promise<SigningKey> {
    let key = this.#tokenKeys.get(org);
    if (key === undefined) {
      await this.#ready;
      key = loadOrCreateKey(undefined, await this.#storedKey(this.#pool!, `organization:${org}`));
      this.#tokenKeys.set(org, key);
    }
    return key;
  }

  async revokeToken(org: string, tokenId: string, input: { reason?: string | undefined; actor?: string | undefined }): Promise<Changes> {
    return this.#transaction(async (exec) => {
      const now = Date.now();
      const changed = await exec({ kind: "run", sql: "INSERT INTO revoked_tokens (org, id, reason, revoked_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING", params: [org, tokenId, input.reason ?? null, now] });
      if (!changed) return { org, messages: [] };
      await this.#ledger(exec, org, "token.revoked", {}, { tokenId, reason: input.reason }, input.actor ?? null);
      return { org, messages: [await this.#stream(exec, org, "token.revoked", { tokenId, reason: input.reason }, now)] };
    });
  }

  async revokedTokenIds(org: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    await this.#ready;
    const rows = (await this.#pool!.query<{ id: string }>("SELECT id FROM revoked_tokens WHERE org = $1 AND id = ANY($2::text[])", [org, [...ids]])).rows;
    return new Set(rows.map((r) => r.id));
  }

  async listRevokedTokens(org: string, query: { since: number; afterTokenId?: string | undefined; limit: number }): Promise<RevokedTokenRecord[]> {
    const rows = await this.#all<{ id: string; reason: string | null; revoked_at: number }>(
      "SELECT id, reason, revoked_at FROM revoked_tokens WHERE org = ?1 AND (revoked_at > ?2 OR (revoked_at = ?2 AND (?3::text IS NULL OR id > ?3))) ORDER BY revoked_at, id LIMIT ?4",
      org,
      query.since,
      query.afterTokenId ?? null,
      query.limit,
    );
    return rows.map((row) => ({ tokenId: row.id, reason: row.reason ?? undefined, revokedAt: row.revoked_at }));
  }

  // ── ledger ────────────────────────────────────────────────────────────────────────────────

  async verifyLedger(org: string, options: { witnesses?: readonly WitnessCheck[] | undefined } = {}): Promise<LedgerReport> {
    await this.#ready;
    return this.#read(verifyChain(org, this.#ledgerKey!.publicKey, this.#ledgerKey!.keyId, options));
  }

  /** Runs a shared read-only routine statement by statement on the pool. */
  async #read<T>(query: Query<T>): Promise<T> {
    await this.#ready;
    return runAsync(query, async (op) => {
      const result = await this.#pool!.query(toPostgres(op.sql), op.params);
      return op.kind === "get" ? result.rows[0] : op.kind === "all" ? result.rows : result.rowCount;
    });
  }

  async ledgerOrgs(): Promise<string[]> {
    return this.#read(ledgerOrgs());
  }

  async checkpointLedger(org: string): Promise<void> {
    await this.#transaction((exec) => this.#run(exec, this.#orgLedger!.checkpointNow(org)));
  }

  orgWitnessedLog(org: string): WitnessedLog {
    return orgWitnessedLog(org, (query) => this.#read(query), (query) => this.#transaction((exec) => this.#run(exec, query)));
  }

  async ledgerPublicKey(): Promise<SigningKey["publicKey"]> {
    await this.#ready;
    return this.#ledgerKey!.publicKey;
  }

  async countersign(org: string, agentId: string | undefined, logKey: string, body: string): Promise<WitnessAnswer> {
    return this.#transaction((exec) => this.#run(exec, countersignCheckpoint(org, agentId, logKey, body, this.#ledgerKey!)));
  }

  async countersigned(org: string, origin: string): Promise<string | undefined> {
    return this.#transaction((exec) => this.#run(exec, countersignedCheckpoint(org, origin)));
  }

  async evidence(org: string, id: string, options: { witnesses?: readonly string[] | undefined } = {}): Promise<EvidenceBundle> {
    await this.#ready;
    return this.#read(orgEvidence(org, id, this.#ledgerKey!, options));
  }

  async *exportLedger(org: string, options: { afterSeq: number; limit: number }): AsyncIterable<LedgerEntry> {
    let after = options.afterSeq;
    let left = options.limit;
    while (left > 0) {
      const rows = await this.#all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?", org, after, Math.min(left, 1000));
      if (rows.length === 0) return;
      for (const row of rows) yield toOrgLedgerEntry(row);
      after = rows[rows.length - 1]!.seq;
      left -= rows.length;
    }
  }

  // ── stream ────────────────────────────────────────────────────────────────────────────────

  async streamAfter(org: string, seq: number, limit: number): Promise<StreamMessage[]> {
    return (await this.#all<{ seq: number; type: StreamMessageType; data: string; ts: number }>("SELECT seq, type, data, ts FROM stream_events WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?", org, seq, limit)).map((r) => ({ seq: r.seq, type: r.type, data: JSON.parse(r.data), ts: r.ts }));
  }

  async streamBounds(org: string): Promise<{ oldest: number; latest: number }> {
    const row = await this.#get<{ oldest: number | null; latest: number | null }>("SELECT MIN(seq) AS oldest, MAX(seq) AS latest FROM stream_events WHERE org = ?", org);
    return { oldest: row?.oldest ?? 0, latest: row?.latest ?? 0 };
  }

  async pruneStream(olderThan: number): Promise<void> {
    await this.#query("DELETE FROM stream_events WHERE ts < ? AND seq < (SELECT MAX(seq) FROM stream_events AS newest WHERE newest.org = stream_events.org)", [olderThan]);
  }

  async ping(): Promise<void> {
    await this.#query("SELECT 1");
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#ready.catch(() => {});
    // Batches handed over are written (or fail) before the connections go.
    if (this.#ingestWriters > 0 || this.#ingestQueue.length > 0) await new Promise<void>((resolve) => this.#ingestIdle.push(resolve));
    await this.#pumping?.catch(() => {});
    this.#listener?.release(true);
    await this.#pool?.end().catch(() => {});
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  async #approvalsFor(org: string, toolCallIds: string[]): Promise<Map<string, ApprovalRecord>> {
    if (toolCallIds.length === 0) return new Map();
    const rows = (await this.#pool!.query<ApprovalRow>("SELECT * FROM approvals WHERE org = $1 AND tool_call_id = ANY($2::text[]) ORDER BY created_at", [org, toolCallIds])).rows;
    return new Map(rows.map((row) => [row.tool_call_id, toApprovalRecord(row)]));
  }
}

