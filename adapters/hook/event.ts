import { z } from "zod";

/**
 * A coding agent's hook event (Claude Code's format; agents that send the same JSON work too), as far as
 * Warden reads it. Unknown fields pass through untouched.
 * @example
 * import { HookEventSchema } from "agent-warden/hook";
 * const event = HookEventSchema.parse(JSON.parse(stdinText));
 */
export const HookEventSchema = z.looseObject({
  session_id: z.string().optional(),
  transcript_path: z.string().optional(),
  cwd: z.string().optional(),
  hook_event_name: z.string().optional(),
  tool_name: z.string().optional(),
  tool_input: z.unknown().optional(),
  tool_use_id: z.string().optional(),
  tool_response: z.unknown().optional(),
  reason: z.string().optional(),
});
export type HookEvent = z.infer<typeof HookEventSchema>;

/**
 * What the hook answers: the exit code (0 lets the tool run, 2 blocks it) and the line for stderr,
 * which the coding agent shows the model when the tool is blocked.
 */
export interface HookAnswer {
  exitCode: 0 | 2;
  message?: string | undefined;
  /** Claude Code's JSON answer, printed on stdout: `allow` (a Warden reviewer approved), `deny`, or `ask` (handed to its own prompt). */
  output?: PreToolUseOutput | undefined;
}

/**
 * Claude Code's PreToolUse JSON output. `allow` skips its permission prompt, `deny` refuses the call
 * with the reason shown to the model, `ask` shows its own prompt with the reason. A policy's plain
 * `allow` prints nothing, so Claude Code's own permission rules still apply.
 * @example
 * import type { PreToolUseOutput } from "agent-warden/hook";
 * const deny: PreToolUseOutput = { hookSpecificOutput: { hookEventName: "PreToolUse", permissionDecision: "deny", permissionDecisionReason: "blocked by policy" } };
 */
export interface PreToolUseOutput {
  hookSpecificOutput: { hookEventName: "PreToolUse"; permissionDecision: "allow" | "deny" | "ask"; permissionDecisionReason: string };
}

/** The JSON answer for a decision, with the exit code that enforces it even where the JSON is not read (a refusal exits 2). */
export function jsonAnswer(permissionDecision: "allow" | "deny" | "ask", reason: string, message?: string): HookAnswer {
  return { exitCode: permissionDecision === "deny" ? 2 : 0, message: message ?? (permissionDecision === "deny" ? reason : undefined), output: { hookSpecificOutput: { hookEventName: "PreToolUse", permissionDecision, permissionDecisionReason: reason } } };
}
