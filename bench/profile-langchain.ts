// Profiling driver, not part of `npm run bench`: N LangChain tool calls or createAgent turns in one mode,
// with a CPU profile of the timed loop only when PROFILE names a file; prints wall and CPU time per call.
//   PROFILE=/tmp/p.cpuprofile npx tsx bench/profile-langchain.ts handler|middleware|langfuse|plain|agent|agent-langfuse|agent-warden|agent-warden-handler
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AIMessage, HumanMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { CallbackHandler as LangfuseCallbackHandler } from "@langfuse/langchain";
import { createAgent } from "langchain";
import { z } from "zod";
import { Warden } from "agent-warden";
import { WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";

const mode = process.argv[2] ?? "handler";
const agentMode = mode.startsWith("agent");
const N = Number(process.env.N ?? (agentMode ? 500 : 20_000));
const WARMUP = agentMode ? 50 : 2000;
const dir = mkdtempSync(join(tmpdir(), "warden-prof-"));
const warden = new Warden({ agentId: "prof", store: join(dir, "w.db"), policies: { version: 1, default: "allow", policies: [{ id: "no-drop", when: { tool: "drop_table" }, action: "block" }] } });
const lookup = tool(async ({ id }) => `order ${id}: shipped`, { name: "lookup_order", description: "Look up an order", schema: z.object({ id: z.number() }) });
const handler = new WardenCallbackHandler(warden);
const langfuse = new LangfuseCallbackHandler();
const wrap = wardenMiddleware(warden).wrapToolCall!;
const model = fakeModel();
for (let i = 0; i < N + WARMUP; i++) model.respondWithTools([{ name: "lookup_order", args: { id: i } }]).respond(new AIMessage("shipped"));
const agent = createAgent({ model, tools: [lookup], middleware: mode.startsWith("agent-warden") ? [wardenMiddleware(warden)] : [] });
const input = { messages: [new HumanMessage("where is my order?")] };

const once = async (i: number): Promise<unknown> => {
  switch (mode) {
    case "plain": return lookup.invoke({ id: i });
    case "handler": return lookup.invoke({ id: i }, { callbacks: [handler] });
    case "langfuse": return lookup.invoke({ id: i }, { callbacks: [langfuse] });
    case "middleware": {
      const execute = async (request: { toolCall: { name: string; args: Record<string, unknown>; id?: string } }) => lookup.invoke({ ...request.toolCall, id: request.toolCall.id!, type: "tool_call" });
      return wrap({ toolCall: { name: "lookup_order", args: { id: i }, id: `call_${i}`, type: "tool_call" }, tool: lookup, state: { messages: [] }, runtime: {} } as never, execute as never);
    }
    case "agent":
    case "agent-warden": return agent.invoke(input);
    case "agent-langfuse": return agent.invoke(input, { callbacks: [langfuse] });
    case "agent-warden-handler": return agent.invoke(input, { callbacks: [handler] });
    default: throw new Error(`unknown mode ${mode}`);
  }
};

const loop = async () => {
  for (let i = 0; i < WARMUP; i++) await once(i);
  const session = new Session();
  session.connect();
  const profile = process.env.PROFILE;
  if (profile) {
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
  }
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await once(WARMUP + i);
  const cpu = process.cpuUsage(c0);
  console.log(mode, (((performance.now() - t0) / N) * 1000).toFixed(1), "µs/call mean,", ((cpu.user + cpu.system) / N).toFixed(1), "µs CPU/call");
  if (profile) writeFileSync(profile, JSON.stringify((await session.post("Profiler.stop")).profile));
};
if (agentMode) await loop();
else await warden.run({ prof: mode }, () => loop());
warden.close();
rmSync(dir, { recursive: true, force: true });
