// OpenAI Agents SDK: one whole run (ScriptedModel: one tool call, then the final answer) ungoverned,
// with governAgent (guardrail + needsApproval + recorded outcome), as a governedRun (plus a Warden run
// per SDK run), and with the WardenTraceProcessor recording agents and token usage as well.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, run as runAgent, setTraceProcessors, setTracingDisabled, tool, Usage } from "@openai/agents";
import { assistantMessage, functionCall, modelResponse, ScriptedModel } from "@openai/agents-core/testing";
import { z } from "zod";
import { Warden } from "agent-warden";
import { governAgent, governedRun, WardenTraceProcessor } from "agent-warden/openai-agents";
import { measureAsync, type BenchRow, type Timing } from "./harness.js";

const GROUP = "adapters";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-oa-"));
  const rows: BenchRow[] = [];
  const row = (name: string, timing: Timing, note?: string) => rows.push({ group: GROUP, name, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec, note });
  const warden = new Warden({ agentId: "bench-openai-agents", store: join(dir, "warden.db"), policies: { version: 1, default: "allow", policies: [{ id: "no-drop", when: { tool: "drop_table" }, action: "block" }] } });
  // No exporter: nothing leaves the process.
  setTraceProcessors([]);
  setTracingDisabled(true);
  try {
    const lookup = () => tool({ name: "lookup_order", description: "Look up an order", parameters: z.object({ id: z.number() }), execute: async ({ id }) => `order ${id}: shipped` });
    const bare = new Agent({ name: "support", tools: [lookup()] });
    const governed = governAgent(new Agent({ name: "support", tools: [lookup()] }), warden);
    let n = 0;
    /** A fresh two-step script per run: the call ids differ, as a real model's do. */
    const scripted = (agent: Agent) => {
      agent.model = new ScriptedModel([
        modelResponse({ output: [functionCall("lookup_order", { id: 7 }, { callId: `call_${n++}` })], usage: new Usage({ requests: 1, inputTokens: 12, outputTokens: 6, totalTokens: 18 }) }),
        modelResponse({ output: [assistantMessage("shipped")], usage: new Usage({ requests: 1, inputTokens: 20, outputTokens: 2, totalTokens: 22 }) }),
      ]);
      return agent;
    };
    const ask = "where is order 7?";
    const traceWith = (processor: WardenTraceProcessor | undefined) => {
      setTraceProcessors(processor ? [processor] : []);
      setTracingDisabled(processor === undefined);
    };
    const processor = new WardenTraceProcessor(warden);
    // The SDK's own run time drifts and stalls now and then on a busy machine: the cases take turns, round by round.
    const cases: Array<{ name: string; note: string; sample: () => Promise<unknown> }> = [
      { name: "openai-agents run, 2 turns, 1 tool call, ungoverned", note: "ScriptedModel, tracing off", sample: () => runAgent(scripted(bare), ask) },
      // Inside one Warden run (below), so each sample adds one governed call and not a run of its own.
      { name: "openai-agents run, 1 tool call + governAgent", note: "needsApproval check + guardrail + recorded call, file store", sample: () => runAgent(scripted(governed), ask) },
      { name: "openai-agents governedRun, 1 tool call + governAgent", note: "+ a Warden run per SDK run", sample: () => governedRun(scripted(governed), ask, warden) },
      { name: "openai-agents governedRun + WardenTraceProcessor", note: "+ an agent run, 2 LLM usage records, SDK tracing on", sample: () => governedRun(scripted(governed), ask, warden) },
    ];
    const timings: Timing[][] = cases.map(() => []);
    await warden.run({ bench: "openai-agents" }, async () => {
      for (let round = 0; round < 8; round++) {
        for (const [index, item] of cases.entries()) {
          traceWith(index === 3 ? processor : undefined);
          timings[index]!.push(await measureAsync(item.sample, { samples: 60, batch: 2, warmup: round === 0 ? 60 : 10 }));
        }
      }
    });
    const summaries = timings.map(combine);
    for (const [index, item] of cases.entries()) {
      const delta = index === 0 ? "" : `; +${(summaries[index]!.medianUs - summaries[0]!.medianUs).toFixed(0)} µs`;
      row(item.name, summaries[index]!, item.note + delta);
    }
  } finally {
    setTraceProcessors([]);
    setTracingDisabled(true);
    warden.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Median of the rounds' medians and of their p99s: robust to a round the machine stalled in. */
function combine(rounds: Timing[]): Timing {
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return {
    samples: rounds.reduce((sum, r) => sum + r.samples, 0),
    medianUs: median(rounds.map((r) => r.medianUs)),
    p99Us: median(rounds.map((r) => r.p99Us)),
    p999Us: median(rounds.map((r) => r.p999Us)),
    opsPerSec: median(rounds.map((r) => r.opsPerSec)),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
