import { postToolUse, preToolUse } from "agent-warden/hook";
import type { Surface } from "../harness.js";

let calls = 0;

/**
 * The coding-agent hook (`warden hook pre-tool-use` / `post-tool-use`): exit 2 blocks the tool and the
 * agent reads stderr; a halt also exits 2, and every later call of the session is refused too.
 */
export const surface: Surface = {
  name: "hook: pre/post-tool-use",
  async drive(call) {
    const event = { session_id: "session-1", tool_name: call.tool, tool_input: call.args, tool_use_id: `toolu_${++calls}` };
    const answer = await preToolUse(call.warden, event, { approvalTimeoutMs: 10_000 });
    if (answer.exitCode === 2) {
      const halted = /halted/i.test(answer.message ?? "");
      return { outcome: halted ? "halted" : "refused", received: `exit 2: ${answer.message?.slice(0, 60)}` };
    }
    // The coding agent runs the tool itself, then reports its output.
    let response: unknown;
    try {
      response = await call.body(call.warden.signal);
    } catch (error) {
      response = { error: error instanceof Error ? error.message : String(error) };
      postToolUse(call.warden, { ...event, tool_response: response });
      return { outcome: "failed", received: "exit 0; the tool's error reported after" };
    }
    const after = postToolUse(call.warden, { ...event, tool_response: response });
    if (after.message && /halted/i.test(after.message)) return { outcome: "halted", received: `post-tool-use: ${after.message.slice(0, 60)}` };
    return { outcome: "result", received: "exit 0" };
  },
  cannot: (scenario) => {
    if (scenario === "llm-token-budget") return "sees no model calls";
    if (scenario === "approval-aborted") return "the coding agent cannot cancel a hook; its wait is bounded by --approval-timeout (approval-expired)";
    if (scenario === "halt-during-ignores-signal") return "the coding agent runs the tool itself, outside the hook";
    if (scenario === "halt-during") return "the coding agent runs the tool itself, outside the hook";
    if (scenario === "tool-throws") return "the coding agent reports a failed tool's output like any other";
    return undefined;
  },
};
