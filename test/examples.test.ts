// Every example a user copies from runs, offline, and says what it shows.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TS_NODE } from "./fixtures/proc.js";

const REPO = fileURLToPath(new URL("..", import.meta.url));

function run(file: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("WARDEN_") && key !== "NODE_OPTIONS"));
    const child = spawn(process.execPath, [...TS_NODE, file], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

// What each example must print: the behaviour it exists to show.
const examples: Array<[string, RegExp[]]> = [
  ["examples/demo.ts", [/tool\.blocked read_secret/, /approval\.approved deploy/, /ledger verified/]],
  ["examples/quickstart.ts", [/refunded 68000/, /blocked: Agents never read secrets/, /ledger: verified/]],
  ["examples/delegation.ts", [/hotel-agent was refused: .*does not grant "hotels:book"/, /widening refused/, /Sub-agent Run .* agent=travel-orchestrator\/flight-agent/]],
  ["examples/halt.ts", [/agent stopped mid-tool-call/, /new run refused: .*halted/]],
  ["examples/langchain-agent.ts", [/drop_database\s+blocked/, /deploy\s+completed\s+require_approval → approved/]],
  ["examples/ai-sdk-agent.ts", [/drop_database\s+blocked/, /deploy\s+completed\s+require_approval → approved/]],
  ["examples/openai-agents.ts", [/require_approval → completed \(approved by alice\)/, /ledger: intact/]],
  ["examples/mcp-server.ts", [/delete_repo.*→ isError: .*blocked by policy/, /deploy.*→ deployed to production/, /MCP error -32050: .*halted/]],
  ["examples/mcp-gateway.ts", [/write_file \/etc\/hosts → refused/, /the upstream server executed: read_file \/docs\/readme\.md; write_file \/docs\/notes\.md$/m]],
  ["examples/express-api.ts", [/→ 200 .*"refunded":2800/, /→ 403 .*insufficient_scope.*exceeds the token's cap/, /→ 403 .*agent_halted/]],
  ["examples/governed-fetch.ts", [/ToolBlockedError/, /the API received: GET \/v1\/customers\/7, POST \/v1\/login, GET \/v1\/export$/m, /"password":"\[REDACTED\]"/]],
  ["examples/otel.ts", [/password":"\[REDACTED\]"/, /^  execute_tool customers\.delete_all .*error\.type=blocked/m, /^    execute_tool kb\.search/m, /one trace: true/, /decisions: .*block=1/]],
  ["examples/remote.ts", [/after the update, a large refund: require_approval/, /halted: .*runaway refunds/, /set aside: run.started \(runId: Too big/, /ledger verified/]],
];

describe("examples", () => {
  it.each(examples)("%s runs and shows what it is for", async (file, expected) => {
    const { code, out } = await run(file);
    expect(code, out).toBe(0);
    for (const pattern of expected) expect(out).toMatch(pattern);
  }, 60_000);
});
