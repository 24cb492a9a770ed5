import type { ToolSet } from "ai";
import type { Warden } from "agent-warden";
import { wardenCallOptions, type WardenCallOptions, type WardenCallOptionsInit } from "./call-options.js";
import { governTools } from "./govern-tools.js";

/**
 * Both halves in one spread: the governed `tools` and the call-level options. Create one per call.
 * @example
 * import { governed } from "agent-warden/ai";
 * const result = await generateText({ model, prompt, stopWhen: stepCountIs(5), ...governed(warden, { tools }) });
 */
export function governed<TOOLS extends ToolSet>(warden: Warden, init: { tools: TOOLS } & WardenCallOptionsInit): { tools: TOOLS } & WardenCallOptions {
  const { tools, ...options } = init;
  return { tools: governTools(tools, warden, { runId: options.runId }), ...wardenCallOptions(warden, options) };
}
