export { createWardenServer, ensureAdminKey } from "./app.js";
export type { WardenServer, WardenServerOptions } from "./app.js";
export { SqliteControlPlaneStore } from "./sqlite-store.js";
export type { SqliteControlPlaneOptions } from "./sqlite-store.js";
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
} from "./store.js";
export { HttpError } from "./errors.js";
export type { ApiErrorCode, Problem } from "./errors.js";
