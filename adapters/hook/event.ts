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
}
