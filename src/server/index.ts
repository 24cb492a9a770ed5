// agent-warden/server: the control plane (`warden serve`) as a library. It reaches the core through the
// package name, as the adapters do, so one process holds one copy of the core whichever entries it loads.
export { createWardenServer, ensureAdminKey } from "./app.js";
export type { WardenServer, WardenServerOptions } from "./app.js";
export { SqliteControlPlaneStore } from "./sqlite-store.js";
export type { SqliteControlPlaneOptions } from "./sqlite-store.js";
export { PostgresControlPlaneStore } from "./postgres-store.js";
export type { PostgresControlPlaneOptions } from "./postgres-store.js";
export type {
  ControlPlaneStore,
  Role,
  Principal,
  ApiKeyRecord,
  Page,
  PageQuery,
  RunTree,
  RunFilter,
  ToolCallFilter,
  ApprovalFilter,
  AgentRecord,
  PolicyVersion,
  PolicyVersionSummary,
  StreamMessage,
  StreamMessageType,
  Changes,
  LedgerReport,
  RevokedTokenRecord,
  ConsoleSessionTable,
  StreamSlotTable,
  StoredConsoleSession,
} from "./store.js";
export type { RejectedEvent } from "./ingest.js";
export { HttpError } from "./errors.js";
export type { ApprovalHistoryItem } from "./routes/approvals.js";
export type { ApprovalAnswer } from "./approval-rules.js";
export type { ApiErrorCode, Problem } from "./errors.js";
