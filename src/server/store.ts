import type { ApprovalStatus, AgentContext, RunStatus, ToolCallStatus } from "agent-warden";
import type { WardenEvent } from "agent-warden";
import type { HaltRecord } from "../halt/halt.js";
import type { LedgerEntry } from "agent-warden";
import type { SigningKey } from "../ledger/keys.js";
import type { WitnessAnswer } from "../ledger/witness.js";
import type { WitnessCheck, WitnessedHeads } from "../ledger/witnessed.js";
import type { WitnessedLog } from "../ledger/witnessing.js";
import type { EvidenceBundle } from "../ledger/evidence.js";
import type { ApprovalRecord, RunRecord, RunSummary, ToolCallRecord } from "../records.js";
import type { RejectedEvent } from "./ingest.js";
import type { ApprovalAnswer } from "./approval-rules.js";
import type { ApprovalDeliveryLog, ApprovalRule } from "agent-warden";

/**
 * What an API key may do. `admin` ⊇ `reviewer` for reads and decisions; `agent` reports and asks.
 * @example
 * import type { Role } from "agent-warden/server";
 * const role: Role = "reviewer";
 */
export type Role = "agent" | "reviewer" | "admin";
export const ROLES = ["agent", "reviewer", "admin"] as const satisfies readonly Role[];

/**  How long an approval request waits when neither the request nor its policy says. */
export const DEFAULT_APPROVAL_TIMEOUT = 15 * 60_000;

/**
 * An API key as listed: never its secret.
 * @example
 * import type { ApiKeyRecord } from "agent-warden/server";
 * const active = (keys: ApiKeyRecord[]) => keys.filter((key) => key.revokedAt === undefined);
 */
export interface ApiKeyRecord {
  keyId: string;
  org: string;
  role: Role;
  name: string | undefined;
  /** When set, the key may only report for this agent. */
  agentId: string | undefined;
  /** The groups its holder belongs to, for `group:<name>` in a policy's `approval.from` (listed when there are any). */
  groups?: string[] | undefined;
  /** The first characters of the key, to tell keys apart. */
  prefix: string;
  createdAt: number;
  revokedAt: number | undefined;
  lastUsedAt: number | undefined;
}

/**
 * The caller of a request: the key it presented, its organization and role.
 * @example
 * import type { Principal } from "agent-warden/server";
 * const who = (principal: Principal) => `${principal.name ?? principal.keyId} (${principal.role} of ${principal.org})`;
 */
export interface Principal {
  keyId: string;
  org: string;
  role: Role;
  name: string | undefined;
  agentId: string | undefined;
  /** The key's groups, for `group:<name>` in a policy's `approval.from`. */
  groups?: string[] | undefined;
}

/**
 * Which page of a list to read.
 * @example
 * import type { PageQuery } from "agent-warden/server";
 * const second: PageQuery = { limit: 50, offset: 50 };
 */
export interface PageQuery {
  limit: number;
  offset: number;
}

/**
 * One page of a list, newest first. `nextOffset` is null on the last page.
 * @example
 * import type { Page, PageQuery } from "agent-warden/server";
 * const next = (page: Page<unknown>): PageQuery | undefined => (page.nextOffset === null ? undefined : { limit: page.limit, offset: page.nextOffset });
 */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
  nextOffset: number | null;
}

/**
 * What `GET /v1/runs` filters by; every field is optional and they are AND-ed.
 * @example
 * import type { RunFilter } from "agent-warden/server";
 * const failedBilling: RunFilter = { agentId: "billing-agent", status: "failed" };
 */
export interface RunFilter {
  agentId?: string | undefined;
  status?: RunStatus | undefined;
  traceId?: string | undefined;
  parentRunId?: string | undefined;
}

/**
 * What `GET /v1/tool-calls` filters by; every field is optional and they are AND-ed.
 * @example
 * import type { ToolCallFilter } from "agent-warden/server";
 * const blockedDeploys: ToolCallFilter = { toolName: "deploy", status: "blocked" };
 */
export interface ToolCallFilter {
  agentId?: string | undefined;
  status?: ToolCallStatus | undefined;
  runId?: string | undefined;
  traceId?: string | undefined;
  toolName?: string | undefined;
}

/**
 * What `GET /v1/approvals` filters by; every field is optional and they are AND-ed.
 * @example
 * import type { ApprovalFilter } from "agent-warden/server";
 * const inbox: ApprovalFilter = { status: "pending" };
 */
export interface ApprovalFilter {
  status?: ApprovalStatus | undefined;
  runId?: string | undefined;
  agentId?: string | undefined;
}

/**
 * A run with its whole tree: steps, tool calls, events, and child runs (sub-agents) nested.
 * @example
 * import type { RunTree } from "agent-warden/server";
 * const toolCalls = (run: RunTree): number => run.toolCalls.length + run.children.reduce((n, child) => n + toolCalls(child), 0);
 */
export interface RunTree extends RunRecord {
  children: RunTree[];
}

/**
 * An agent the control plane knows, and the group a halt can name it by.
 * @example
 * import type { AgentRecord } from "agent-warden/server";
 * const inGroup = (agents: AgentRecord[], group: string) => agents.filter((agent) => agent.group === group);
 */
export interface AgentRecord {
  agentId: string;
  group: string | undefined;
  createdAt: number;
}

/**
 * One version of an organization's policy set. Versions only grow; a rollback is a new version.
 * @example
 * import type { PolicyVersion } from "agent-warden/server";
 * const label = (version: PolicyVersion) => `v${version.version}${version.rolledBackFrom === undefined ? "" : ` (restores v${version.rolledBackFrom})`}`;
 */
export interface PolicyVersion {
  version: number;
  /** Strong ETag of this version, quoted. */
  etag: string;
  /** The policy set as submitted (JSON form). */
  policies: unknown;
  /** The YAML or JSON text it was submitted as, if it was text. */
  source: string | undefined;
  author: string | undefined;
  comment: string | undefined;
  /** Set on a rollback: the version whose content this one restores. */
  rolledBackFrom: number | undefined;
  createdAt: number;
}
/**
 * A policy version as `GET /v1/policies/versions` lists it: without its content.
 * @example
 * import type { PolicyVersionSummary } from "agent-warden/server";
 * const authors = (versions: PolicyVersionSummary[]) => new Set(versions.map((version) => version.author));
 */
export type PolicyVersionSummary = Omit<PolicyVersion, "policies" | "source">;

export interface ApprovalCreateInput {
  /** Lets a client name the request it already created locally; idempotent within the organization. */
  approvalId?: string | undefined;
  /** The client's `approval.requested` event id: the ledger entry takes it, so a later ingest of that event is a duplicate. */
  eventId?: string | undefined;
  toolCallId: string;
  runId: string;
  agentId: string;
  toolName: string;
  payload?: unknown;
  agentContext?: AgentContext | undefined;
  policyId?: string | undefined;
  reason?: string | undefined;
  timeoutMs?: number | undefined;
  expiresAt?: number | undefined;
  /** The rule the agent's own policy gave; the control plane's policy set, when it names the policy, takes precedence. */
  rule?: ApprovalRule | undefined;
}

export interface HaltInput {
  agentId?: string | undefined;
  group?: string | undefined;
  runId?: string | undefined;
  reason: string;
  actor?: string | undefined;
  /** Lets a client name a halt it already applied locally; idempotent within the organization. */
  haltId?: string | undefined;
  eventId?: string | undefined;
}

export interface ResumeInput {
  agentId?: string | undefined;
  group?: string | undefined;
  runId?: string | undefined;
  reason?: string | undefined;
  actor?: string | undefined;
  eventId?: string | undefined;
}

/**
 * A message on `GET /v1/stream`. Durable messages (approvals, halts, policies) carry a `seq`, the
 * SSE event id, and are replayed after `Last-Event-ID`; live ones (run and tool call updates) do not.
 * @example
 * import type { StreamMessage } from "agent-warden/server";
 * const replayable = (message: StreamMessage) => message.seq !== undefined;
 */
export interface StreamMessage {
  seq: number | undefined;
  type: StreamMessageType;
  data: unknown;
  ts: number;
}
/**
 * The event names `GET /v1/stream` sends (besides `hello` and `reset`).
 * @example
 * import type { StreamMessageType } from "agent-warden/server";
 * const haltTypes: StreamMessageType[] = ["halt.created", "halt.lifted"];
 */
export type StreamMessageType = "approval.requested" | "approval.resolved" | "halt.created" | "halt.lifted" | "token.revoked" | "policy.updated" | "run.updated" | "tool_call.updated";

/**
 * What changed, so the caller can push it to stream subscribers. Durable messages are already stored.
 * @example
 * import type { Changes } from "agent-warden/server";
 * const nothing = (org: string): Changes => ({ org, messages: [] });
 */
export interface Changes {
  org: string;
  messages: StreamMessage[];
}

export interface IngestResult {
  accepted: number;
  duplicates: number;
}

/**
 * The ledger, as one organization sees it: each organization has its own hash chain, numbered from 1,
 * so its report (entries, signed checkpoints, head, or the first bad entry) says nothing of others.
 * @example
 * import type { LedgerReport } from "agent-warden/server";
 * const summary = (report: LedgerReport) => (report.ok ? `verified (${report.entries} entries)` : report.firstBadSeq === undefined ? report.problem : `first bad entry: ${report.firstBadSeq}`);
 */
export type LedgerReport =
  | {
      ok: true;
      entries: number;
      checkpoints: number;
      head: { seq: number; hash: string } | null;
      /** With witnesses to check: what each one's cosigned heads say (a rewritten or cut history is `ok: false`). */
      witnesses?: WitnessedHeads[];
      /** With witnesses: the entries every witness holds a cosigned head of (`upTo`), and whether that is all of them. */
      witnessed?: { upTo: number; head: boolean };
    }
  | { ok: false; entries: number; firstBadSeq?: number; problem: string; witnesses?: WitnessedHeads[] };

/**
 * A token (or block) id the organization revoked, as `GET /v1/tokens/revoked` lists it.
 * @example
 * import type { RevokedTokenRecord } from "agent-warden/server";
 * const newest = (items: RevokedTokenRecord[]) => Math.max(0, ...items.map((item) => item.revokedAt));
 */
export interface RevokedTokenRecord {
  tokenId: string;
  reason: string | undefined;
  revokedAt: number;
}

/**
 * A console session as a database keeps it: the hash of its cookie token, never the token or the API key.
 * @example
 * import type { StoredConsoleSession } from "agent-warden/server";
 * const live = (session: StoredConsoleSession, now: number) => now < session.expiresAt;
 */
export interface StoredConsoleSession {
  digest: string;
  keyId: string;
  org: string;
  role: Role;
  name: string | undefined;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

/**
 * Where a store keeps console sessions, so they survive a restart and a switch of replica.
 * @example
 * import type { ConsoleSessionTable } from "agent-warden/server";
 * const signOut = (table: ConsoleSessionTable, digest: string) => table.delete(digest);
 */
export interface ConsoleSessionTable {
  /** Stores a new session (and forgets expired ones). */
  put(session: StoredConsoleSession, now: number): Promise<void>;
  get(digest: string): Promise<StoredConsoleSession | undefined>;
  touch(digest: string, lastSeenAt: number): Promise<void>;
  delete(digest: string): Promise<void>;
}

/**
 * Open streams counted in the database, so the per-organization and per-key limits hold across every
 * replica. Each replica's slots carry an expiry it renews: a replica killed without releasing them
 * stops counting once they expire.
 * @example
 * import type { StreamSlotTable } from "agent-warden/server";
 * const open = (table: StreamSlotTable) => table.acquire("replica-1", "acme", "key_1", { streams: 1000, perKey: 20, ttl: 30_000 });
 */
export interface StreamSlotTable {
  /** Takes one slot unless the organization (`"org"`) or the key (`"key"`) holds its most already. */
  acquire(replica: string, org: string, keyId: string, limits: { streams: number; perKey: number; ttl: number }): Promise<"ok" | "org" | "key">;
  release(replica: string, org: string, keyId: string): Promise<void>;
  /** Extends this replica's slots by `ttl` and forgets expired ones (of replicas that died). */
  renew(replica: string, ttl: number): Promise<void>;
}

/**
 * Everything the control plane keeps, behind one interface so another database can follow SQLite.
 * Every method that reads or writes organization data takes the organization and filters by it.
 * Durable stream messages are written in the same transaction as the change they announce.
 * @example
 * import { createWardenServer, type ControlPlaneStore } from "agent-warden/server";
 * declare const postgres: ControlPlaneStore; // your implementation
 * const server = createWardenServer({ store: postgres });
 */
export interface ControlPlaneStore {
  readonly kind: string;

  // keys
  createKey(input: { org: string; role: Role; name?: string | undefined; agentId?: string | undefined; groups?: readonly string[] | undefined; actor?: string | undefined }): Promise<{ key: string; record: ApiKeyRecord }>;
  listKeys(org: string): Promise<ApiKeyRecord[]>;
  revokeKey(org: string, keyId: string, actor?: string): Promise<ApiKeyRecord>;
  authenticate(secret: string): Promise<Principal | undefined>;
  hasActiveKey(org: string, role: Role): Promise<boolean>;

  // agents, runs, tool calls
  /**
   * Writes the events this key may report, skips duplicates, and lists the rejected ones by their index in `events`.
   * `body`, when given, is the UTF-8 JSON text `{"events":[…]}` the events were parsed from, exactly these events
   * (a store that writes on another thread hands it over instead of copying the objects).
   */
  ingest(principal: Principal, events: readonly WardenEvent[], body?: Uint8Array): Promise<IngestResult & { rejected: RejectedEvent[]; changes: Changes }>;
  registerAgent(org: string, agentId: string, group: string | undefined): Promise<AgentRecord>;
  listAgents(org: string): Promise<AgentRecord[]>;
  listRuns(org: string, filter: RunFilter, page: PageQuery): Promise<Page<RunSummary>>;
  getRun(org: string, runId: string, depth: number): Promise<RunTree | undefined>;
  listToolCalls(org: string, filter: ToolCallFilter, page: PageQuery): Promise<Page<ToolCallRecord>>;
  getToolCall(org: string, toolCallId: string): Promise<ToolCallRecord | undefined>;

  // policies
  currentPolicy(org: string): Promise<PolicyVersion>;
  getPolicyVersion(org: string, version: number): Promise<PolicyVersion | undefined>;
  listPolicyVersions(org: string, page: PageQuery): Promise<Page<PolicyVersionSummary>>;
  /** Stores a validated policy set as the next version. `ifMatch`: the ETag the caller edited; a mismatch is `InvalidStateError`. */
  putPolicy(org: string, input: { policies: unknown; source?: string | undefined; author?: string | undefined; comment?: string | undefined; ifMatch?: string | undefined; rolledBackFrom?: number | undefined }): Promise<{ version: PolicyVersion; changes: Changes }>;

  // approvals
  createApproval(principal: Principal, input: ApprovalCreateInput): Promise<{ record: ApprovalRecord; created: boolean; changes: Changes }>;
  getApproval(org: string, approvalId: string): Promise<ApprovalRecord | undefined>;
  listApprovals(org: string, filter: ApprovalFilter, page: PageQuery): Promise<Page<ApprovalRecord>>;
  /**
   * Answers a pending request, checked against its rule (who may answer, how many must approve; the
   * key that asked never answers). An approval short of the count is recorded and the request stays
   * pending. A refused reviewer is recorded in the ledger, then `ReviewerNotAllowedError` is thrown.
   */
  decideApproval(org: string, approvalId: string, status: "approved" | "rejected", answer: ApprovalAnswer): Promise<{ record: ApprovalRecord; changes: Changes }>;
  /** The ledger entries about one approval (requested, votes, escalation, refusals, decision), oldest first. */
  approvalEntries(org: string, approval: { approvalId: string; runId: string; toolCallId: string }): Promise<WardenEvent[]>;
  /** Optional: records the escalations that are due (`approval.escalate.after` passed unanswered), once each. */
  escalateApprovals?(now: number): Promise<number>;
  /** Expires overdue requests of every organization. */
  expireApprovals(now: number): Promise<Changes[]>;

  // halts
  listHalts(org: string, options: { includeLifted: boolean }): Promise<HaltRecord[]>;
  halt(org: string, input: HaltInput): Promise<{ record: HaltRecord; created: boolean; changes: Changes }>;
  resume(org: string, input: ResumeInput): Promise<{ lifted: HaltRecord[]; changes: Changes }>;
  groupOf(org: string, agentId: string): Promise<string | undefined>;
  /** Halts and approval decisions made by other processes on the same database (the CLI), as stream messages. */
  pollExternalChanges(): Promise<Changes[]>;
  /** Optional: pushes durable messages written by other processes (replicas) as soon as the store hears of them. Returns an unsubscribe. */
  onExternalChanges?(listener: (changes: Changes[]) => void): () => void;

  // tokens
  tokenKey(org: string): Promise<SigningKey>;
  revokeToken(org: string, tokenId: string, input: { reason?: string | undefined; actor?: string | undefined }): Promise<Changes>;
  revokedTokenIds(org: string, ids: readonly string[]): Promise<Set<string>>;
  /**
   * Revocations at or after `since` (ms), oldest first, at most `limit`; `afterTokenId` skips those
   * at exactly `since` up to and including that id (the cursor of the previous page).
   */
  listRevokedTokens(org: string, query: { since: number; afterTokenId?: string | undefined; limit: number }): Promise<RevokedTokenRecord[]>;

  // ledger
  /** Re-hashes the organization's chain; with `witnesses`, checks it against their cosigned heads too. */
  verifyLedger(org: string, options?: { witnesses?: readonly WitnessCheck[] | undefined }): Promise<LedgerReport>;
  /**
   * An evidence bundle for one run or tool call of the organization (`NotFoundError` when it has no entry);
   * with `witnesses` (verifier keys), under the stored checkpoint they cosigned where there is one.
   */
  evidence(org: string, id: string, options?: { witnesses?: readonly string[] | undefined }): Promise<EvidenceBundle>;
  /** Organizations with a ledger (whose checkpoints the server's witnesses are asked to cosign). */
  ledgerOrgs?(): Promise<string[]>;
  /** Signs a checkpoint of the organization's head if entries were added since its last one. */
  checkpointLedger?(org: string): Promise<void>;
  /** The organization's log as its witnesses see it: signed checkpoints, consistency proofs, cosignatures kept. */
  orgWitnessedLog?(org: string): WitnessedLog;
  /** The key that signs the organizations' checkpoints and evidence: its public half. */
  ledgerPublicKey(): Promise<SigningKey["publicKey"]>;
  /** Countersigns an agent's local ledger checkpoint (tlog-witness body) if it extends the last one countersigned for that log. */
  countersign(org: string, agentId: string | undefined, logKey: string, body: string): Promise<WitnessAnswer>;
  /** The last agent checkpoint countersigned for a log of the organization, with the cosignature. */
  countersigned(org: string, origin: string): Promise<string | undefined>;
  exportLedger(org: string, options: { afterSeq: number; limit: number }): AsyncIterable<LedgerEntry>;

  // stream
  streamAfter(org: string, seq: number, limit: number): Promise<StreamMessage[]>;
  streamBounds(org: string): Promise<{ oldest: number; latest: number }>;
  pruneStream(olderThan: number): Promise<void>;

  ping(): Promise<void>;
  close(): Promise<void>;

  /** Optional: console sessions in the database (else in each server's memory). */
  readonly consoleSessions?: ConsoleSessionTable | undefined;
  /** Optional: open streams counted across replicas (else each server counts its own). */
  readonly streamSlots?: StreamSlotTable | undefined;
  /** Optional: approval channel deliveries in the database, so they survive a restart and retries resume (else in each server's memory). */
  readonly deliveries?: ApprovalDeliveryLog | undefined;
  /** Optional, with `consoleSessions`: the principal of an active key by its id (a session holds the id, not the key). */
  principalOfKey?(keyId: string): Promise<Principal | undefined>;
}
