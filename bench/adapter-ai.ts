// AI SDK: what one tool call costs ungoverned and through governTools (the wrapped `execute` alone),
// and a whole generateText call (scripted MockLanguageModelV4: one tool call, then text) ungoverned,
// with governTools, and with governTools plus the call-level options (toolApproval, usage records).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { z } from "zod";
import { Warden } from "agent-warden";
import { governTools, wardenCallOptions } from "agent-warden/ai";
import { measureAsync, type BenchRow, type Timing } from "./harness.js";

const GROUP = "adapters";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-ai-"));
  const rows: BenchRow[] = [];
  const row = (name: string, timing: Timing, note?: string) => rows.push({ group: GROUP, name, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec, note });
  const warden = new Warden({ agentId: "bench-ai", store: join(dir, "warden.db"), policies: { version: 1, default: "allow", policies: [{ id: "no-drop", when: { tool: "drop_table" }, action: "block" }] } });
  try {
    const lookup = tool({ description: "Look up an order", inputSchema: z.object({ id: z.number() }), execute: async ({ id }) => `order ${id}: shipped` });
    const tools = { lookup_order: lookup };
    const governed = governTools(tools, warden);
    const options = { samples: 1000, batch: 10, warmup: 500 };
    let n = 0;
    const execution = (): Parameters<NonNullable<typeof lookup.execute>>[1] => ({ toolCallId: `call_${n++}`, messages: [], context: {} });

    // Inside one run, so each sample is one governed call (check, record, ledger) and not a run of its own.
    await warden.run({ bench: "ai" }, async () => {
      row("ai tool execute, ungoverned", await measureAsync(async () => lookup.execute!({ id: n }, execution()), options), "tool.execute(input, options)");
      row("ai tool execute + governTools", await measureAsync(async () => governed.lookup_order.execute!({ id: n }, execution()), options), "check + record + ledger, file store");

      const turns = { samples: 300, batch: 2, warmup: 100 };
      const model = scriptedModel();
      const call = (extra: object = {}, set = tools) => generateText({ model, tools: set, prompt: "where is order 7?", stopWhen: stepCountIs(3), ...extra });
      const bare = await measureAsync(() => call(), turns);
      row("generateText, 2 steps, 1 tool call, ungoverned", bare, "MockLanguageModelV4");
      const wrapped = await measureAsync(() => call({}, governed), turns);
      row("generateText, 2 steps, 1 tool call + governTools", wrapped, `+${(wrapped.medianUs - bare.medianUs).toFixed(0)} µs`);
      const full = await measureAsync(() => call(wardenCallOptions(warden), governed), turns);
      row("generateText, 2 steps, 1 tool call + governTools + wardenCallOptions", full, `+ 2 LLM usage records; +${(full.medianUs - bare.medianUs).toFixed(0)} µs`);
    });
  } finally {
    warden.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Calls `lookup_order` when the last message is the user's, answers in text once the tool result is in. */
function scriptedModel(): MockLanguageModelV4 {
  const usage = { inputTokens: { total: 12, noCache: 12, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 6, text: 6, reasoning: undefined } };
  let id = 0;
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }) =>
      prompt.at(-1)?.role === "tool"
        ? { content: [{ type: "text", text: "shipped" }], finishReason: { unified: "stop", raw: undefined }, usage, warnings: [] }
        : { content: [{ type: "tool-call", toolCallId: `tc_${id++}`, toolName: "lookup_order", input: '{"id":7}' }], finishReason: { unified: "tool-calls", raw: undefined }, usage, warnings: [] },
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
