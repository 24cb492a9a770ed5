import { WardenError, type Warden } from "agent-warden";
import type { HookEvent } from "./event.js";

/** The run that holds one coding session's tool calls, opened by its first call. */
export async function sessionRun(warden: Warden, sessionId: string, event: HookEvent): Promise<string | undefined> {
  const runId = sessionRunId(sessionId);
  try {
    const run = await warden.getRun(runId);
    // A session resumed after its run ended: each call gets a run of its own.
    return run.status === "running" ? runId : undefined;
  } catch (error) {
    if (!(WardenError.isInstance(error) && error.code === "not_found")) throw error;
  }
  const metadata = { sessionId, ...(event.cwd !== undefined && { cwd: event.cwd }), ...(event.transcript_path !== undefined && { transcriptPath: event.transcript_path }) };
  return warden.startRun(runId, metadata, "coding-agent session", { conversationId: sessionId });
}

export function sessionRunId(sessionId: string): string {
  return `session:${sessionId}`;
}
