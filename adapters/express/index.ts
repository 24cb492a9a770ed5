export { requireAgentPermission } from "./require-permission.js";
export type { RequireAgentPermissionOptions, WardenVerifier, PublicKeyVerifier, AgentPrincipal, RequestAmount } from "./require-permission.js";
export { AgentAuthError } from "./errors.js";
export type { AgentAuthErrorCode, AgentAuthProblem } from "./errors.js";
