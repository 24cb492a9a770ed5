import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Warden, type PolicySetInput } from "agent-warden";
import { CliSession, TS_NODE } from "../fixtures/proc.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(REPO, "src/cli/bin.ts");

const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-force-push", reason: "force pushes rewrite shared history", when: { tool: "Bash", "args.command": { matches: "git push.*--force" } }, action: "block" },
    { id: "no-env-files", when: { tool: "Read", "args.file_path": { matches: "\\.env$" } }, action: "block" },
    { id: "approve-deploys", when: { tool: "Bash", "args.command": { matches: "^npm run deploy" } }, action: "require_approval", approval: { timeout: "10m" } },
    { id: "flag-writes", when: { tool: "Write" }, action: "warn" },
  ],
};

let dir: string;
let store: string;
let policyFile: string;
const open: Warden[] = [];
let session: CliSession;

beforeAll(() => {
  session = new CliSession();
});

afterAll(() => session.close());

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "warden-hook-"));
  store = join(dir, "warden.db");
  policyFile = join(dir, "warden.json");
  writeFileSync(policyFile, JSON.stringify(policies));
});

afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The test's own view of the shared store (another process, as a reviewer or an admin would have). */
function admin(): Warden {
  const warden = new Warden({ agentId: "admin", store });
  open.push(warden);
  return warden;
}

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Pipes one hook event into `warden hook <event>`, run by the CLI's `main()` in the process the tests
 * share (test/fixtures/cli-runner.ts): the command, stdin, stdout, stderr and exit code the binary has,
 * apart from this process. `live` sees its stderr while it runs (a reviewer reads the notice before answering).
 */
function hook(event: unknown, args: string[] = [], subcommand = "pre-tool-use", live?: { stderr: string }): Promise<Outcome> {
  const onStderr = live && ((stderr: string) => (live.stderr = stderr));
  return session.run(store, ["hook", subcommand, ...args], { stdin: typeof event === "string" ? event : JSON.stringify(event), ...(onStderr && { onStderr }) });
}

/** The same through the `warden` binary started for this one event, as a coding agent runs it: the process answers and ends. */
function hookProcess(event: unknown, args: string[] = [], subcommand = "pre-tool-use", live?: { stderr: string }): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("WARDEN_") && key !== "NODE_OPTIONS") env[key] = value;
    const child = spawn(process.execPath, [...TS_NODE, BIN, "--store", store, "hook", subcommand, ...args], { cwd: REPO, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      if (live) live.stderr = stderr;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(typeof event === "string" ? event : JSON.stringify(event));
  });
}

const event = (toolName: string, toolInput: Record<string, unknown>, id: string, session = "sess-1") => ({
  session_id: session,
  transcript_path: "/home/dev/.claude/projects/app/sess-1.jsonl",
  cwd: "/home/dev/app",
  permission_mode: "default",
  hook_event_name: "PreToolUse",
  tool_name: toolName,
  tool_input: toolInput,
  tool_use_id: id,
});

async function waitFor<T>(probe: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("warden hook pre-tool-use", () => {
  it("exits 0 for an allowed call and 2 with the reason on stderr for a blocked one, recording both in the session's run (the binary)", async () => {
    const allowed = await hookProcess(event("Bash", { command: "npm test" }, "toolu_1"), ["--policies", policyFile]);
    expect(allowed).toEqual({ code: 0, stdout: "", stderr: "" });
    const blocked = await hookProcess(event("Bash", { command: "git push origin main --force" }, "toolu_2"), ["--policies", policyFile]);
    expect(blocked.code).toBe(2);
    expect(JSON.parse(blocked.stdout)).toEqual({ hookSpecificOutput: { hookEventName: "PreToolUse", permissionDecision: "deny", permissionDecisionReason: expect.stringContaining("force pushes rewrite shared history") } });
    expect(blocked.stderr).toContain('tool "Bash" blocked by policy "no-force-push": force pushes rewrite shared history');

    const run = await admin().getRun("session:sess-1");
    expect(run).toMatchObject({ agentId: "coding-agent", status: "running", metadata: { sessionId: "sess-1", cwd: "/home/dev/app" } });
    expect(run.toolCalls.map((c) => [c.toolName, c.externalId, c.status, c.decision?.action])).toEqual([
      ["Bash", "toolu_1", "pending", "allow"],
      ["Bash", "toolu_2", "blocked", "block"],
    ]);
    expect(run.toolCalls[1]!.input).toEqual({ command: "git push origin main --force" });
    expect(run.toolCalls[0]!.agentContext).toEqual({ conversationId: "sess-1" });
  });

  it("allows a warned call, telling why on stderr", async () => {
    const warned = await hook(event("Write", { file_path: "notes.md", content: "hi" }, "toolu_3"), ["--policies", policyFile, "--agent", "claude"]);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain("warning");
    const run = await admin().getRun("session:sess-1");
    expect(run.agentId).toBe("claude");
    expect(run.toolCalls[0]!.decision?.action).toBe("warn");
  });

  it("waits for a reviewer in another process, then exits 0 (the binary)", async () => {
    const reviewer = admin();
    const live = { stderr: "" };
    const pending = hookProcess(event("Bash", { command: "npm run deploy -- --prod" }, "toolu_4"), ["--policies", policyFile], "pre-tool-use", live);
    const approval = await waitFor(() => reviewer.approvals.list({ status: "pending" })[0], "the approval request");
    // The reviewer answers once told: a decision that lands before the hook starts waiting needs no notice.
    await waitFor(() => (live.stderr.includes(approval.approvalId) ? true : undefined), "the waiting notice");
    expect(approval).toMatchObject({ toolName: "Bash", policyId: "approve-deploys", payload: { command: "npm run deploy -- --prod" } });
    reviewer.approvals.approve(approval.approvalId, { reviewer: "lead", reason: "release day" });
    const outcome = await pending;
    expect(outcome.code).toBe(0);
    expect(outcome.stderr).toContain(`is waiting for approval ${approval.approvalId}`);
    expect(outcome.stderr).toContain(`warden approve ${approval.approvalId}`);
    expect(outcome.stderr.split(approval.approvalId).length - 1).toBe(2);
  });

  it("blocks with exit 2 when the reviewer rejects, or when nobody decides within --approval-timeout", async () => {
    const reviewer = admin();
    const rejected = hook(event("Bash", { command: "npm run deploy" }, "toolu_5"), ["--policies", policyFile]);
    const approval = await waitFor(() => reviewer.approvals.list({ status: "pending" })[0], "the approval request");
    reviewer.approvals.reject(approval.approvalId, { reviewer: "lead", reason: "not on a Friday" });
    const outcome = await rejected;
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain("not on a Friday");

    // The binary ends once nobody decided in time: nothing it started keeps it alive.
    const unanswered = await hookProcess(event("Bash", { command: "npm run deploy" }, "toolu_6"), ["--policies", policyFile, "--approval-timeout", "300ms"]);
    expect(unanswered.code).toBe(2);
    expect(unanswered.stderr).toContain("no reviewer decided");
    const statuses = reviewer.approvals.list().map((a) => a.status);
    expect(statuses.sort()).toEqual(["cancelled", "rejected"]);
  });

  it("blocks every call once the agent is halted", async () => {
    admin().halt({ reason: "prompt injection suspected", agentId: "coding-agent" });
    const outcome = await hook(event("Read", { file_path: "README.md" }, "toolu_7"), ["--policies", policyFile]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain("prompt injection suspected");
  });

  it("fails closed: input it cannot read, or a policy file it cannot load, blocks the call", async () => {
    const garbage = await hook("not json", ["--policies", policyFile]);
    expect(garbage.code).toBe(2);
    expect(garbage.stderr).toContain("not a JSON hook event");
    const nameless = await hook({ session_id: "s", tool_input: {} }, ["--policies", policyFile]);
    expect(nameless.code).toBe(2);
    const missingPolicies = await hook(event("Read", { file_path: "a" }, "toolu_8"), ["--policies", join(dir, "missing.yaml")]);
    expect(missingPolicies.code).toBe(2);
    expect(missingPolicies.stderr).toContain("missing.yaml");
  });

  it("records calls without a session in runs of their own; session-end completes a session's run", async () => {
    expect((await hook({ tool_name: "Read", tool_input: { file_path: ".env" } }, ["--policies", policyFile])).code).toBe(2);
    expect((await hook(event("Read", { file_path: "a.ts" }, "toolu_9", "sess-2"), ["--policies", policyFile])).code).toBe(0);
    expect((await hook({ session_id: "sess-2", hook_event_name: "SessionEnd", reason: "exit" }, [], "session-end")).code).toBe(0);
    const warden = admin();
    expect((await warden.getRun("session:sess-2")).status).toBe("completed");
    const lone = warden.listRuns().find((r) => !r.runId.startsWith("session:"));
    expect((await warden.getRun(lone!.runId)).toolCalls.map((c) => [c.toolName, c.status])).toEqual([["Read", "blocked"]]);
  });
  it("post-tool-use records the tool's output (redacted) on the call pre-tool-use recorded", async () => {
    expect((await hook(event("Bash", { command: "ls" }, "toolu_20", "sess-3"), ["--policies", policyFile])).code).toBe(0);
    const post = { ...event("Bash", { command: "ls" }, "toolu_20", "sess-3"), hook_event_name: "PostToolUse", tool_response: { stdout: "a.ts", password: "hunter2" } };
    expect((await hook(post, [], "post-tool-use")).code).toBe(0);
    const call = (await admin().getRun("session:sess-3")).toolCalls.find((c) => c.externalId === "toolu_20");
    expect(call).toMatchObject({ status: "completed", output: { stdout: "a.ts", password: "[REDACTED]" } });
    // An event for a call nobody recorded is reported, and the agent's tool is never failed for it.
    const stray = await hook({ ...post, tool_use_id: "toolu_unknown" }, [], "post-tool-use");
    expect(stray.code).toBe(0);
    expect(stray.stderr).toContain("not recorded");
  });
});

describe("warden hook pre-tool-use answers with Claude Code's JSON", () => {
  const decision = (outcome: Outcome) => (JSON.parse(outcome.stdout) as { hookSpecificOutput: { hookEventName: string; permissionDecision: string; permissionDecisionReason: string } }).hookSpecificOutput;

  it("allow once a Warden reviewer approved (no prompt again); a policy's plain allow prints nothing", async () => {
    const plain = await hook(event("Bash", { command: "npm test" }, "toolu_j1"), ["--policies", policyFile]);
    expect(plain).toEqual({ code: 0, stdout: "", stderr: "" });

    const reviewer = admin();
    const pending = hook(event("Bash", { command: "npm run deploy" }, "toolu_j2"), ["--policies", policyFile]);
    const approval = await waitFor(() => reviewer.approvals.list({ status: "pending" })[0], "the approval request");
    reviewer.approvals.approve(approval.approvalId, { reviewer: "lead" });
    const approved = await pending;
    expect(approved.code).toBe(0);
    expect(decision(approved)).toEqual({ hookEventName: "PreToolUse", permissionDecision: "allow", permissionDecisionReason: "[warden] approved by lead" });
  });

  it("deny for a block, with exit 2 as well, so an agent that ignores the JSON still blocks", async () => {
    const denied = await hook(event("Read", { file_path: "/app/.env" }, "toolu_j3"), ["--policies", policyFile]);
    expect(denied.code).toBe(2);
    expect(decision(denied)).toMatchObject({ hookEventName: "PreToolUse", permissionDecision: "deny", permissionDecisionReason: expect.stringContaining("no-env-files") });
  });

  it("--approval ask hands the call to Claude Code's own prompt, recorded as such", async () => {
    const asked = await hook(event("Bash", { command: "npm run deploy -- --prod" }, "toolu_j4"), ["--policies", policyFile, "--approval", "ask"]);
    expect(asked.code).toBe(0);
    expect(decision(asked)).toEqual({ hookEventName: "PreToolUse", permissionDecision: "ask", permissionDecisionReason: expect.stringContaining('policy "approve-deploys" asks for approval') });
    const [approval] = admin().approvals.list();
    expect(approval).toMatchObject({ status: "approved", reviewer: "claude-code:permission-prompt", decisionReason: expect.stringContaining("--approval ask") });
  });

  it("--approval ask keeps waiting for Warden reviewers when the policy names them", async () => {
    writeFileSync(policyFile, JSON.stringify({ ...policies, policies: [{ id: "leads-approve", when: { tool: "Bash" }, action: "require_approval", approval: { from: ["lead@example.com"] } }] }));
    const outcome = await hook(event("Bash", { command: "npm run deploy" }, "toolu_j5"), ["--policies", policyFile, "--approval", "ask", "--approval-timeout", "300ms"]);
    expect(outcome.code).toBe(2);
    expect(decision(outcome)).toMatchObject({ permissionDecision: "deny", permissionDecisionReason: expect.stringContaining("no reviewer decided") });
  });

  it("deny for a halt and for bad input", async () => {
    const garbage = await hook("not json", ["--policies", policyFile]);
    expect(garbage.code).toBe(2);
    expect(decision(garbage)).toMatchObject({ permissionDecision: "deny", permissionDecisionReason: expect.stringContaining("not a JSON hook event") });
    const badMode = await hook(event("Read", { file_path: "a" }, "toolu_j6"), ["--policies", policyFile, "--approval", "maybe"]);
    expect(badMode.code).toBe(2);
    expect(decision(badMode).permissionDecision).toBe("deny");

    admin().halt({ reason: "incident 42", agentId: "coding-agent" });
    const halted = await hook(event("Read", { file_path: "README.md" }, "toolu_j7"), ["--policies", policyFile]);
    expect(halted.code).toBe(2);
    expect(decision(halted)).toMatchObject({ permissionDecision: "deny", permissionDecisionReason: expect.stringContaining("incident 42") });
  });

  it("--no-json answers with exit codes and stderr alone", async () => {
    const denied = await hook(event("Read", { file_path: "/app/.env" }, "toolu_j8"), ["--policies", policyFile, "--no-json"]);
    expect(denied.code).toBe(2);
    expect(denied.stdout).toBe("");
    expect(denied.stderr).toContain("no-env-files");
  });
});
