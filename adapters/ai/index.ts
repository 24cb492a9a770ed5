import type { ToolSet } from "ai";
import type { Warden } from "agent-warden";
import { wardenCallOptions, type WardenCallOptions, type WardenCallOptionsInit } from "./call-options.js";
import { governTools, type GovernToolsOptions } from "./govern-tools.js";

export { governTools } from "./govern-tools.js";
export type { GovernToolsOptions } from "./govern-tools.js";
export { wardenCallOptions } from "./call-options.js";
export type { WardenCallOptions, WardenCallOptionsInit, ToolApprovalQuery, ModelCallEnd, StepEnd, ToolExecutionEnd } from "./call-options.js";
export { approvalResponses } from "./approval-responses.js";
export type { ApprovalResponses, PendingApproval } from "./approval-responses.js";

/**
 * Both halves in one spread: the governed `tools` and the call-level options. Create one per call.
 * @example
 * import { governed } from "agent-warden/ai";
 * const result = await generateText({ model, prompt, stopWhen: stepCountIs(5), ...governed(warden, { tools }) });
 */
export function governed<TOOLS extends ToolSet>(warden: Warden, init: { tools: TOOLS } & WardenCallOptionsInit): { tools: TOOLS } & WardenCallOptions {
  const { tools, ...options } = init;
  const toolOptions: GovernToolsOptions = { runId: options.runId };
  return { tools: governTools(tools, warden, toolOptions), ...wardenCallOptions(warden, options) };
}
