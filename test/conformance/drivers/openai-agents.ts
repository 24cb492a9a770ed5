// Shared by the OpenAI Agents surfaces: ScriptedModels ask for the scenario's tool once, then answer.
import { Agent, run, setTraceProcessors, setTracingDisabled, Usage } from "@openai/agents";
import { assistantMessage, functionCall, modelResponse, ScriptedModel } from "@openai/agents-core/testing";
import { isHalt, WardenError } from "agent-warden";
import { governAgent, tool } from "agent-warden/openai-agents";
import { classify, type Call, type Driven } from "../harness.js";

export type AgentsMode = "run" | "streamed run" | "handoff" | "agent as tool";

const CALL_ID = "call_1";

/** What the worker's model was handed as the tool's result. */
function seenByModel(model: ScriptedModel): string | undefined {
  for (const request of model.calls) {
    const input = request.request.input;
    if (!Array.isArray(input)) continue;
    for (const item of input as Array<Record<string, any>>) {
      if (item.type === "function_call_result" && item.callId === CALL_ID) return typeof item.output === "string" ? item.output : (item.output?.text ?? JSON.stringify(item.output));
    }
  }
  return undefined;
}

/** The Warden error behind the SDK's wrappers (a tool call error around a guardrail tripwire). */
function wardenErrorIn(error: unknown, depth = 0): WardenError | undefined {
  if (depth > 6 || error === null || typeof error !== "object") return undefined;
  if (WardenError.isInstance(error)) return error;
  const value = error as { error?: unknown; cause?: unknown; result?: { output?: { outputInfo?: { error?: unknown } } } };
  return wardenErrorIn(value.result?.output?.outputInfo?.error, depth + 1) ?? wardenErrorIn(value.error, depth + 1) ?? wardenErrorIn(value.cause, depth + 1);
}

/** One call of the scenario's tool through the OpenAI Agents SDK, the way `mode` names (approval: "wait"). */
export async function driveAgents(call: Call, mode: AgentsMode): Promise<Driven> {
  // No exporter may reach the network.
  setTraceProcessors([]);
  setTracingDisabled(true);
  const { inputTokens, outputTokens } = call.modelUsage;
  const usage = () => new Usage({ requests: 1, inputTokens, outputTokens, totalTokens: inputTokens + outputTokens });
  const target = tool({
    name: call.tool,
    description: `the ${call.tool} tool`,
    parameters: { type: "object", properties: {}, required: [], additionalProperties: true },
    strict: false,
    execute: (_args: unknown, _context: unknown, details?: { signal?: AbortSignal }) => call.body(details?.signal),
  });
  const workerModel = new ScriptedModel([modelResponse({ output: [functionCall(target.name, call.args, { callId: CALL_ID })], usage: usage() }), modelResponse({ output: [assistantMessage("done")], usage: usage() })]);
  const worker = new Agent({ name: "worker", model: workerModel, tools: [target] });
  let entry: Agent<any, any> = worker;
  if (mode === "handoff") {
    entry = new Agent({ name: "triage", model: new ScriptedModel([modelResponse({ output: [functionCall("transfer_to_worker", {}, { callId: "call_handoff" })], usage: usage() })]), handoffs: [worker] });
  } else if (mode === "agent as tool") {
    const leadModel = new ScriptedModel([modelResponse({ output: [functionCall("ask_worker", { input: "handle order 1042" }, { callId: "call_ask" })], usage: usage() }), modelResponse({ output: [assistantMessage("done")], usage: usage() })]);
    entry = new Agent({ name: "lead", model: leadModel, tools: [worker.asTool({ toolName: "ask_worker", toolDescription: "Asks the worker" })] });
  }
  governAgent(entry, call.warden, { approval: "wait" });
  try {
    if (mode === "streamed run") {
      const streamed = await run(entry, "handle order 1042", { stream: true, signal: call.signal });
      for await (const _event of streamed) {
        // drain
      }
      await streamed.completed;
      if (streamed.error) throw streamed.error;
      if (streamed.cancelled) return { outcome: "aborted", received: "the stream ends cancelled" };
    } else {
      await run(entry, "handle order 1042", { signal: call.signal });
    }
  } catch (error) {
    const warden = wardenErrorIn(error);
    if (warden !== undefined) return isHalt(warden) ? { outcome: "halted", received: `run rejects (${warden.name})` } : classify(warden, call.signal);
    if (call.signal.aborted) return { outcome: "aborted", received: `run rejects (${(error as Error).name})` };
    return classify(error, call.signal);
  }
  const seen = seenByModel(workerModel);
  if (seen === undefined) return { outcome: "refused", received: "the model got no tool result" };
  if (seen.includes('"order"')) return { outcome: "result", received: "function_call_result: the tool's output" };
  if (/error occurred/i.test(seen)) return { outcome: "failed", received: "function_call_result: the SDK's tool error text" };
  return { outcome: "refused", received: `function_call_result: ${seen.slice(0, 50)}` };
}
