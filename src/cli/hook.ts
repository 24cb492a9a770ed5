// `warden hook …`: coding-agent hooks (Claude Code's format; others that send the same JSON work too).
// The decisions live in agent-warden/hook; this file only reads stdin, prints and sets the exit code.
// Every failure (bad input, unreadable policy or store) exits 2: enforcement fails closed.
import type { Command } from "commander";
import { HookEventSchema, jsonAnswer, postToolUse, preToolUse, sessionEnd, type HookAnswer, type HookEvent } from "agent-warden/hook";
import { WardenError } from "../errors.js";
import { parseDuration } from "../internal/duration.js";
import { Warden } from "../warden.js";

const BLOCK = 2;

interface GlobalOptions {
  store: string;
  org: string;
}

/**
 * Adds `warden hook pre-tool-use`, `warden hook post-tool-use` and `warden hook session-end` to the CLI.
 * @example
 * // .claude/settings.json
 * { "hooks": { "PreToolUse": [{ "matcher": "*", "hooks": [{ "type": "command", "command": "npx --no-install warden hook pre-tool-use --policies ./warden.yaml" }] }] } }
 */
export function registerHookCommand(program: Command): void {
  const hook = program.command("hook").description("coding-agent hooks: decide on each tool call by policy before it runs");
  // Only pre-tool-use decides; the record-only hooks load an empty set on purpose (no "no policies" notice).
  const client = (agentId: string, extra: { policies?: string | undefined; approvalTimeout?: number; decides?: boolean } = {}) =>
    new Warden({
      agentId,
      store: program.opts<GlobalOptions>().store,
      organization: program.opts<GlobalOptions>().org,
      ...(extra.approvalTimeout !== undefined && { approvalTimeout: extra.approvalTimeout }),
      ...(extra.policies ? { policies: extra.policies } : !extra.decides && { policies: { version: 1, default: "allow", policies: [] } }),
    });

  hook
    .command("pre-tool-use")
    .description("read a PreToolUse event on stdin; answer with Claude Code's JSON on stdout (deny, ask, or allow once a Warden reviewer approved); a refusal also exits 2 with the reason on stderr")
    .option("--policies <file>", "policy file (YAML or JSON)")
    .option("--agent <id>", "the agent the calls are recorded for", "coding-agent")
    .option(
      "--approval-timeout <duration>",
      "the longest a call waits for a reviewer; then the request is cancelled and the call blocked. Keep it below the hook's own timeout (60s unless the settings say otherwise)",
      "50s",
    )
    .option("--approval <mode>", "who answers a call that needs approval: wait (a Warden reviewer) or ask (Claude Code's own permission prompt, unless the policy names its reviewers)", "wait")
    .option("--no-json", "answer with exit codes and stderr alone, not Claude Code's JSON on stdout")
    .action(async (opts: { policies?: string; agent: string; approvalTimeout: string; approval: string; json: boolean }) => {
      process.exitCode = await answer(async () => {
        if (opts.approval !== "wait" && opts.approval !== "ask") throw new Error(`--approval must be "wait" or "ask", not "${opts.approval}"`);
        const approvalTimeoutMs = parseDuration(opts.approvalTimeout);
        const event = await readEvent();
        const warden = client(opts.agent, { policies: opts.policies, approvalTimeout: approvalTimeoutMs, decides: true });
        try {
          // The core says on stderr that the call waits, with the command that answers it.
          return await preToolUse(warden, event, { approvalTimeoutMs, approval: opts.approval, json: opts.json });
        } finally {
          warden.close();
        }
      }, opts.json);
    });

  hook
    .command("post-tool-use")
    .description("read a PostToolUse event on stdin and record the tool's output (redacted) on the call pre-tool-use recorded")
    .option("--agent <id>", "the agent the calls are recorded for", "coding-agent")
    .action(async (opts: { agent: string }) => {
      // Telemetry: never fails the agent's tool, whatever goes wrong here.
      try {
        const event = await readEvent();
        const warden = client(opts.agent);
        try {
          report(postToolUse(warden, event));
        } finally {
          warden.close();
        }
      } catch (error) {
        console.error(`[warden] post-tool-use not recorded: ${unprefixed(error)}`);
      }
    });

  hook
    .command("session-end")
    .description("read a SessionEnd event on stdin and complete the session's run")
    .option("--agent <id>", "the agent the calls are recorded for", "coding-agent")
    .action(async (opts: { agent: string }) => {
      const event = await readEvent();
      const warden = client(opts.agent);
      try {
        report(await sessionEnd(warden, event));
      } finally {
        warden.close();
      }
    });
}

/** Prints the answer's message and returns its exit code; a failure blocks with its reason. */
async function answer(fn: () => Promise<HookAnswer>, json = false): Promise<number> {
  try {
    return report(await fn());
  } catch (error) {
    // A halt can refuse the call before any decision (opening the session's run); bad input blocks too.
    const message = WardenError.isInstance(error) && error.code === "halted" ? error.message : `[warden] blocked: the hook failed (${unprefixed(error)})`;
    return report(json ? jsonAnswer("deny", message) : { exitCode: BLOCK, message });
  }
}

function report(answer: HookAnswer): number {
  if (answer.output) process.stdout.write(`${JSON.stringify(answer.output)}\n`);
  if (answer.message) console.error(answer.message);
  return answer.exitCode;
}

async function readEvent(): Promise<HookEvent> {
  let text = "";
  process.stdin.setEncoding("utf8");
  for await (const chunk of process.stdin) text += chunk as string;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("stdin is not a JSON hook event");
  }
  const parsed = HookEventSchema.safeParse(json);
  if (!parsed.success) throw new Error(`stdin is not a JSON hook event (${parsed.error.issues[0]?.path.join(".") || "the event"}: ${parsed.error.issues[0]?.message})`);
  return parsed.data;
}

/** The message without Warden's prefix, for a line that already starts with it. */
const unprefixed = (error: unknown) => (error instanceof Error ? error.message : String(error)).replace(/^\[warden\] /, "");
