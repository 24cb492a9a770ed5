import { WardenError, type Warden } from "agent-warden";
import { jsonAnswer, type HookAnswer, type HookEvent } from "./event.js";
import { sessionRun } from "./session.js";

export const ALLOW = 0;
export const BLOCK = 2;

/** Options of `preToolUse`. */
export interface PreToolUseOptions {
  /** The longest a call waits for a reviewer: then its request is cancelled and the tool blocked. */
  approvalTimeoutMs: number;
  /** Shown when a call starts waiting (the CLI prints it on stderr). */
  onWaiting?: ((message: string) => void) | undefined;
  /**
   * Who answers a call that needs approval: `"wait"` (default) waits for a Warden reviewer; `"ask"`
   * hands it to Claude Code's own permission prompt (recorded as approved by that prompt), unless the
   * policy names its reviewers (`approval.from` or `approvers`), which keeps waiting for them.
   */
  approval?: "wait" | "ask" | undefined;
  /** Answer with Claude Code's JSON on stdout (default), or with exit codes and stderr alone. */
  json?: boolean | undefined;
}

/** Who is recorded as approving a call handed to the coding agent's own permission prompt. */
export const PERMISSION_PROMPT = "claude-code:permission-prompt";

/**
 * Decides on a coding agent's tool call before it runs and records it: exit 0 lets the tool run, exit 2
 * blocks it with the reason on stderr. A halt, a block, a rejection, an expired wait and every failure block.
 * @example
 * import { preToolUse } from "agent-warden/hook";
 * const answer = await preToolUse(warden, event, { approvalTimeoutMs: 50_000 });
 * if (answer.message) console.error(answer.message);
 * process.exitCode = answer.exitCode;
 */
export async function preToolUse(warden: Warden, event: HookEvent, options: PreToolUseOptions): Promise<HookAnswer> {
  let answer: HookAnswer;
  try {
    answer = await decide(warden, event, options);
  } catch (error) {
    // Fail closed: a halt that refuses the session's run, an unreadable store, anything at all blocks.
    const message = error instanceof Error ? error.message : String(error);
    answer = { exitCode: BLOCK, message: WardenError.isInstance(error) && error.code === "halted" ? message : `[warden] blocked: the hook failed (${message.replace(/^\[warden\] /, "")})` };
  }
  if (options.json === false) return { exitCode: answer.exitCode, message: answer.message };
  // Every refusal is a `deny` too (and still exits 2, so an agent that ignores the JSON blocks as well).
  if (answer.output === undefined && answer.exitCode === BLOCK) return jsonAnswer("deny", answer.message ?? "[warden] blocked", answer.message);
  return answer;
}

async function decide(warden: Warden, event: HookEvent, options: PreToolUseOptions): Promise<HookAnswer> {
  if (event.tool_name === undefined || event.tool_name === "") return { exitCode: BLOCK, message: '[warden] blocked: the event on stdin has no "tool_name"' };
  const sessionId = event.session_id === "" ? undefined : event.session_id;
  const handle = warden.beginToolCall({
    tool: event.tool_name,
    args: event.tool_input ?? {},
    runId: sessionId === undefined ? undefined : await sessionRun(warden, sessionId, event),
    externalId: event.tool_use_id,
    agentContext: sessionId === undefined ? undefined : { conversationId: sessionId },
    // Bounds the wait for a reviewer: on expiry the request is cancelled and the call blocked.
    signal: AbortSignal.timeout(options.approvalTimeoutMs),
  });
  if (handle.decision.action === "require_approval" && options.approval === "ask" && handle.approval !== undefined && handle.approval.rule === undefined) {
    // Handed to Claude Code's own prompt: the person at the prompt is the reviewer, and the ledger says so.
    const reason = `[warden] ${handle.decision.reason} (policy "${handle.decision.policyId ?? "default"}" asks for approval)`;
    warden.approvals.approve(handle.approval.approvalId, { reviewer: PERMISSION_PROMPT, reason: "handed to Claude Code's permission prompt (--approval ask)" });
    const admitted = await handle.admit();
    if (!admitted.ok) return jsonAnswer("deny", admitted.error.message);
    return jsonAnswer("ask", reason);
  }
  if (handle.decision.action === "require_approval") {
    const approvalId = handle.approval?.approvalId ?? "";
    options.onWaiting?.(`[warden] tool "${event.tool_name}" awaits approval ${approvalId}: warden approve ${approvalId}`);
  }
  const admitted = await handle.admit().catch((error: unknown) => ({ ok: false as const, halted: false, error }));
  if (admitted.ok) {
    // A Warden reviewer approved: Claude Code need not ask again. A policy's plain allow leaves its own permission rules in charge.
    if (handle.decision.action === "require_approval") return jsonAnswer("allow", `[warden] ${admitted.reason}`);
    return { exitCode: ALLOW, message: handle.decision.action === "warn" ? `[warden] warning: ${handle.decision.reason}` : undefined };
  }
  const error = admitted.error;
  // The hook's own bound on the wait aborts it: the refusal carries the TimeoutError as its cause.
  const reason = WardenError.isInstance(error) ? error.cause : error;
  const timedOut = (reason instanceof Error && reason.name === "TimeoutError") || (error instanceof Error && error.name === "TimeoutError");
  const message = timedOut
    ? `[warden] tool "${event.tool_name}" blocked: no reviewer decided within ${Math.round(options.approvalTimeoutMs / 1000)}s`
    : error instanceof Error
      ? error.message
      : String(error);
  return { exitCode: BLOCK, message };
}
