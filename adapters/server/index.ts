// agent-warden/server: the control plane (`warden serve`) as a library.
export { createWardenServer, ensureAdminKey } from "../../src/server/app.js";
export type { WardenServer, WardenServerOptions } from "../../src/server/app.js";
export { SqliteControlPlaneStore } from "../../src/server/sqlite-store.js";
export type { SqliteControlPlaneOptions } from "../../src/server/sqlite-store.js";
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
} from "../../src/server/store.js";
export { HttpError } from "../../src/server/errors.js";
export type { ApiErrorCode, Problem } from "../../src/server/errors.js";
