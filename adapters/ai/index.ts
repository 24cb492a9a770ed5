export { governTools } from "./govern-tools.js";
export type { GovernToolsOptions } from "./govern-tools.js";
export { wardenCallOptions } from "./call-options.js";
export type { WardenCallOptions, WardenCallOptionsInit, ToolApprovalQuery, ModelCallStart, ModelCallEnd, StepEnd, ToolExecutionEnd } from "./call-options.js";
export { approvalResponses } from "./approval-responses.js";
export type { ApprovalResponses, PendingApproval } from "./approval-responses.js";
export { governed } from "./governed.js";
