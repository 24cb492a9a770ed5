import type { ApprovalStatus, AgentContext, RunStatus, ToolCallStatus } from "../enums.js";
import type { WardenEvent } from "../events.js";
import type { HaltRecord } from "../halt/halt.js";
import type { LedgerEntry } from "../ledger/chain.js";
import type { SigningKey } from "../ledger/keys.js";
import type { ApprovalRecord, RunRecord, RunSummary, ToolCallRecord } from "../records.js";

/** What an API key may do. `admin` ⊇ `reviewer` for reads and decisions; `agent` reports and asks. */
export type Role = "agent" | "reviewer" | "admin";
export const ROLES = ["agent", "reviewer", "admin"] as const satisfies readonly Role[];

/** An API key as listed: never its secret. */
export interface ApiKeyRecord {
  keyId: string;
  org: string;
  role: Role;
  name: string | undefined;
  /** When set, the key may only report for this agent. */
  agentId: string | undefined;
  /** The first characters of the key, to tell keys apart. */
  prefix: string;
  createdAt: number;
  revokedAt: number | undefined;
  lastUsedAt: number | undefined;
}

/** The caller of a request: the key it presented, its organization and role. */
export interface Principal {
  keyId: string;
  org: string;
  role: Role;
  name: string | undefined;
  agentId: string | undefined;
}

export interface PageQuery {
  limit: number;
  offset: number;
}

/** One page of a list, newest first. `nextOffset` is null on the last page. */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
  nextOffset: number | null;
}

export interface RunFilter {
  agentId?: string | undefined;
  status?: RunStatus | undefined;
  traceId?: string | undefined;
  parentRunId?: string | undefined;
}

export interface ToolCallFilter {
  agentId?: string | undefined;
  status?: ToolCallStatus | undefined;
  runId?: string | undefined;
  traceId?: string | undefined;
  toolName?: string | undefined;
}

export interface ApprovalFilter {
  status?: ApprovalStatus | undefined;
  runId?: string | undefined;
  agentId?: string | undefined;
}

/** A run with its whole tree: steps, tool calls, events, and child runs (sub-agents) nested. */
export interface RunTree extends RunRecord {
  children: RunTree[];
}

export interface AgentRecord {
  agentId: string;
  group: string | undefined;
  createdAt: number;
}

/** One version of an organization's policy set. Versions only grow; a rollback is a new version. */
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
 */
export interface StreamMessage {
  seq: number | undefined;
  type: StreamMessageType;
  data: unknown;
  ts: number;
}
export type StreamMessageType = "approval.requested" | "approval.resolved" | "halt.created" | "halt.lifted" | "policy.updated" | "run.updated" | "tool_call.updated";

/** What changed, so the caller can push it to stream subscribers. Durable messages are already stored. */
export interface Changes {
  org: string;
  messages: StreamMessage[];
}

export interface IngestResult {
  accepted: number;
  duplicates: number;
}

/** The ledger, as one organization sees it: the whole chain's integrity, its own entries' count and head. */
export type LedgerReport =
  | { ok: true; entries: number; checkpoints: number; head: { seq: number; hash: string } | null; chainEntries: number }
  | { ok: false; entries: number; firstBadSeq: number; problem: string };

/**
 * Everything the control plane keeps, behind one interface so another database can follow SQLite.
 * Every method that reads or writes organization data takes the organization and filters by it.
 * Durable stream messages are written in the same transaction as the change they announce.
 */
export interface ControlPlaneStore {
  readonly kind: string;

  // keys
  createKey(input: { org: string; role: Role; name?: string | undefined; agentId?: string | undefined; actor?: string | undefined }): Promise<{ key: string; record: ApiKeyRecord }>;
  listKeys(org: string): Promise<ApiKeyRecord[]>;
  revokeKey(org: string, keyId: string, actor?: string): Promise<ApiKeyRecord>;
  authenticate(secret: string): Promise<Principal | undefined>;
  hasActiveKey(org: string, role: Role): Promise<boolean>;

  // agents, runs, tool calls
  ingest(principal: Principal, events: readonly WardenEvent[]): Promise<IngestResult & { changes: Changes }>;
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
  decideApproval(org: string, approvalId: string, status: "approved" | "rejected", input: { reviewer?: string | undefined; reason?: string | undefined }): Promise<{ record: ApprovalRecord; changes: Changes }>;
  /** Expires overdue requests of every organization. */
  expireApprovals(now: number): Promise<Changes[]>;

  // halts
  listHalts(org: string, options: { includeLifted: boolean }): Promise<HaltRecord[]>;
  halt(org: string, input: HaltInput): Promise<{ record: HaltRecord; created: boolean; changes: Changes }>;
  resume(org: string, input: ResumeInput): Promise<{ lifted: HaltRecord[]; changes: Changes }>;
  groupOf(org: string, agentId: string): Promise<string | undefined>;
  /** Halts and approval decisions made by other processes on the same database (the CLI), as stream messages. */
  pollExternalChanges(): Promise<Changes[]>;

  // tokens
  tokenKey(org: string): Promise<SigningKey>;
  revokeToken(org: string, tokenId: string, input: { reason?: string | undefined; actor?: string | undefined }): Promise<void>;
  revokedTokenIds(org: string, ids: readonly string[]): Promise<Set<string>>;

  // ledger
  verifyLedger(org: string): Promise<LedgerReport>;
  exportLedger(org: string, options: { afterSeq: number; limit: number }): AsyncIterable<LedgerEntry>;

  // stream
  streamAfter(org: string, seq: number, limit: number): Promise<StreamMessage[]>;
  streamBounds(org: string): Promise<{ oldest: number; latest: number }>;
  pruneStream(olderThan: number): Promise<void>;

  ping(): Promise<void>;
  close(): Promise<void>;
}
