import type { Warden } from "agent-warden";
import type { HookAnswer, HookEvent } from "./event.js";
import { sessionRunId } from "./session.js";

/**
 * Records a tool's output (redacted) on the call `preToolUse` recorded. Telemetry: it never blocks, and
 * what it cannot record it says on stderr.
 * @example
 * import { postToolUse } from "agent-warden/hook";
 * const answer = postToolUse(warden, event);
 */
export function postToolUse(warden: Warden, event: HookEvent): HookAnswer {
  try {
    if (event.tool_use_id === undefined || event.tool_use_id === "") return { exitCode: 0 };
    warden.resumeToolCall(event.tool_use_id).complete(event.tool_response);
    return { exitCode: 0 };
  } catch (error) {
    return { exitCode: 0, message: `[warden] post-tool-use not recorded: ${(error instanceof Error ? error.message : String(error)).replace(/^\[warden\] /, "")}` };
  }
}

/**
 * Completes the session's run when the coding session ends.
 * @example
 * import { sessionEnd } from "agent-warden/hook";
 * await sessionEnd(warden, event);
 */
export async function sessionEnd(warden: Warden, event: HookEvent): Promise<HookAnswer> {
  if (event.session_id === undefined || event.session_id === "") return { exitCode: 0 };
  const runId = sessionRunId(event.session_id);
  const run = await warden.getRun(runId).catch(() => undefined);
  if (run?.status === "running") await warden.completeRun(runId, { reason: event.reason });
  return { exitCode: 0 };
}
