// Profiling driver (not part of `npm run bench`): 20k tool.invoke with WardenCallbackHandler, or through wrapToolCall.
// node --cpu-prof --import tsx bench/profile-langchain.ts [handler|middleware|langfuse]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { Warden } from "agent-warden";
import { WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";

const mode = process.argv[2] ?? "handler";
const dir = mkdtempSync(join(tmpdir(), "warden-prof-"));
const warden = new Warden({ agentId: "prof", store: join(dir, "w.db"), policies: { version: 1, default: "allow", policies: [{ id: "no-drop", when: { tool: "drop_table" }, action: "block" }] } });
const lookup = tool(async ({ id }) => `order ${id}: shipped`, { name: "lookup_order", description: "Look up an order", schema: z.object({ id: z.number() }) });
const handler = new WardenCallbackHandler(warden);
const wrap = wardenMiddleware(warden).wrapToolCall!;
let langfuse: unknown;
if (mode === "langfuse") {
  const { CallbackHandler } = await import("@langfuse/langchain");
  langfuse = new CallbackHandler();
}
const N = Number(process.env.N ?? 20000);
await warden.run({ prof: mode }, async () => {
  const runId = warden.currentRun()!.runId;
  const execute = async (request: { toolCall: { name: string; args: Record<string, unknown>; id?: string } }) => lookup.invoke({ ...request.toolCall, id: request.toolCall.id!, type: "tool_call" });
  const session = new Session();
  session.connect();
  const profile = process.env.PROFILE;
  for (let i = 0; i < 2000; i++) await lookup.invoke({ id: i }, { callbacks: mode === "handler" ? [handler] : [] });
  if (profile) {
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
  }
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    if (mode === "handler") await lookup.invoke({ id: i }, { callbacks: [handler] });
    else if (mode === "langfuse") await lookup.invoke({ id: i }, { callbacks: [langfuse as never] });
    else if (mode === "plain") await lookup.invoke({ id: i });
    else await wrap({ toolCall: { name: "lookup_order", args: { id: i }, id: `call_${i}`, type: "tool_call" }, tool: lookup, state: { messages: [], _wardenRunId: runId, _wardenRunOwned: false }, runtime: {} } as never, execute as never);
  }
  console.log(mode, ((performance.now() - t0) / N * 1000).toFixed(1), "µs/call mean");
  if (profile) writeFileSync(profile, JSON.stringify((await session.post("Profiler.stop")).profile));
});
warden.close();
rmSync(dir, { recursive: true, force: true });
