// `warden hook …`: coding-agent hooks (Claude Code's format; others that send the same JSON work too).
// `pre-tool-use` reads the event on stdin, decides by policy, records the call, and answers with the
// exit code: 0 lets the tool run, 2 blocks it and the agent reads the reason on stderr. Every failure
// (bad input, unreadable policy or store) exits 2: enforcement fails closed.
import type { Command } from "commander";
import { WardenError } from "../errors.js";
import { parseDuration } from "../internal/duration.js";
import { Warden } from "../warden.js";

const ALLOW = 0;
const BLOCK = 2;

interface GlobalOptions {
  store: string;
  org: string;
}

interface HookOptions {
  policies?: string;
  agent: string;
  approvalTimeout: string;
}

/** The fields of a hook event Warden reads. */
interface HookEvent {
  session_id?: unknown;
  transcript_path?: unknown;
  cwd?: unknown;
  hook_event_name?: unknown;
  tool_name?: unknown;
  tool_input?: unknown;
  tool_use_id?: unknown;
}

/**
 * Adds `warden hook pre-tool-use`, `warden hook post-tool-use` and `warden hook session-end` to the CLI.
 * @example
 * // .claude/settings.json
 * { "hooks": { "PreToolUse": [{ "matcher": "*", "hooks": [{ "type": "command", "command": "npx warden hook pre-tool-use --policies ./warden.yaml" }] }] } }
 */
export function registerHookCommand(program: Command): void {
  const hook = program.command("hook").description("coding-agent hooks: decide on each tool call by policy before it runs");

  hook
    .command("pre-tool-use")
    .description("read a PreToolUse event on stdin; exit 0 to allow the tool, 2 to block it (the reason on stderr)")
    .option("--policies <file>", "policy file (YAML or JSON)")
    .option("--agent <id>", "the agent the calls are recorded for", "coding-agent")
    .option(
      "--approval-timeout <duration>",
      "the longest a call waits for a reviewer; then the request is cancelled and the call blocked. Keep it below the hook's own timeout (60s unless the settings say otherwise)",
      "50s",
    )
    .action(async (opts: HookOptions) => {
      process.exitCode = await preToolUse(program.opts<GlobalOptions>(), opts).catch((error: unknown) => {
        // A halt can refuse the call before any decision (opening the session's run).
        if (WardenError.isInstance(error) && error.code === "halted") console.error(error.message);
        else console.error(`[warden] blocked: the hook failed (${error instanceof Error ? error.message : String(error)})`);
        return BLOCK;
      });
    });

  hook
    .command("post-tool-use")
    .description("read a PostToolUse event on stdin and record the tool's output (redacted) on the call pre-tool-use recorded")
    .option("--agent <id>", "the agent the calls are recorded for", "coding-agent")
    .action(async (opts: { agent: string }) => {
      // Telemetry: never fails the agent's tool, whatever goes wrong here.
      try {
        const event = (await readEvent()) as { tool_use_id?: unknown; tool_response?: unknown };
        if (typeof event.tool_use_id !== "string" || event.tool_use_id === "") return;
        const warden = new Warden({ agentId: opts.agent, store: program.opts<GlobalOptions>().store, organization: program.opts<GlobalOptions>().org });
        try {
          warden.resumeToolCall(event.tool_use_id).complete(event.tool_response);
        } finally {
          warden.close();
        }
      } catch (error) {
        console.error(`[warden] post-tool-use not recorded: ${error instanceof Error ? error.message : String(error)}`);
      }
    });

  hook
    .command("session-end")
    .description("read a SessionEnd event on stdin and complete the session's run")
    .option("--agent <id>", "the agent the calls are recorded for", "coding-agent")
    .action(async (opts: { agent: string }) => {
      const event = await readEvent();
      if (typeof event.session_id !== "string" || event.session_id === "") return;
      const warden = new Warden({ agentId: opts.agent, store: program.opts<GlobalOptions>().store, organization: program.opts<GlobalOptions>().org });
      try {
        const runId = sessionRunId(event.session_id);
        const run = await warden.getRun(runId).catch(() => undefined);
        if (run?.status === "running") await warden.completeRun(runId, { reason: typeof (event as { reason?: unknown }).reason === "string" ? (event as { reason: string }).reason : undefined });
      } finally {
        warden.close();
      }
    });
}

async function preToolUse(globals: GlobalOptions, opts: HookOptions): Promise<number> {
  const waitMs = parseDuration(opts.approvalTimeout);
  const event = await readEvent();
  if (typeof event.tool_name !== "string" || event.tool_name === "") throw new Error('the event on stdin has no "tool_name"');
  const warden = new Warden({
    agentId: opts.agent,
    store: globals.store,
    organization: globals.org,
    approvalTimeout: waitMs,
    ...(opts.policies && { policies: opts.policies }),
  });
  try {
    const sessionId = typeof event.session_id === "string" && event.session_id !== "" ? event.session_id : undefined;
    const handle = warden.beginToolCall({
      tool: event.tool_name,
      args: event.tool_input ?? {},
      runId: sessionId === undefined ? undefined : await sessionRun(warden, sessionId, event),
      externalId: typeof event.tool_use_id === "string" ? event.tool_use_id : undefined,
      agentContext: sessionId === undefined ? undefined : { conversationId: sessionId },
      // Bounds the wait for a reviewer: on expiry the request is cancelled and the call blocked.
      signal: AbortSignal.timeout(waitMs),
    });
    const decision = handle.decision;
    switch (decision.action) {
      case "allow":
        return ALLOW;
      case "warn":
        console.error(`[warden] warning: ${decision.reason}`);
        return ALLOW;
      case "block":
        console.error(handle.error?.message ?? decision.reason);
        return BLOCK;
      case "require_approval": {
        const approvalId = handle.approval?.approvalId ?? "";
        console.error(`[warden] tool "${event.tool_name}" awaits approval ${approvalId}: warden approve ${approvalId}`);
        try {
          await handle.waitForApproval();
          return ALLOW;
        } catch (error) {
          const timedOut = error instanceof Error && error.name === "TimeoutError";
          console.error(timedOut ? `[warden] tool "${event.tool_name}" blocked: no reviewer decided on approval ${approvalId} within ${opts.approvalTimeout}` : error instanceof Error ? error.message : String(error));
          return BLOCK;
        }
      }
    }
  } finally {
    warden.close();
  }
}

/** The run that holds one coding session's tool calls, opened by its first call. */
async function sessionRun(warden: Warden, sessionId: string, event: HookEvent): Promise<string | undefined> {
  const runId = sessionRunId(sessionId);
  try {
    const run = await warden.getRun(runId);
    // A session resumed after its run ended: each call gets a run of its own.
    return run.status === "running" ? runId : undefined;
  } catch (error) {
    if (!(WardenError.isInstance(error) && error.code === "not_found")) throw error;
  }
  const metadata = { sessionId, ...(typeof event.cwd === "string" && { cwd: event.cwd }), ...(typeof event.transcript_path === "string" && { transcriptPath: event.transcript_path }) };
  return warden.startRun(runId, metadata, "coding-agent session", { conversationId: sessionId });
}

function sessionRunId(sessionId: string): string {
  return `session:${sessionId}`;
}

async function readEvent(): Promise<HookEvent> {
  let text = "";
  process.stdin.setEncoding("utf8");
  for await (const chunk of process.stdin) text += chunk as string;
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch {
    throw new Error("stdin is not a JSON hook event");
  }
  if (event === null || typeof event !== "object" || Array.isArray(event)) throw new Error("stdin is not a JSON hook event");
  return event as HookEvent;
}
