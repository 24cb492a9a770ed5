// An OpenAI Agents run paused for approval is saved (`state.toString()`) and resumed elsewhere: the call's
// arguments in the saved state are what runs, so an approval given for one set must not run another.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, RunState, setTracingDisabled, tool, Usage } from "@openai/agents";
import { assistantMessage, functionCall, modelResponse, ScriptedModel } from "@openai/agents-core/testing";
import { Warden, type PolicySetInput } from "agent-warden";
import { governAgent, governedRun } from "agent-warden/openai-agents";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";

const policies: PolicySetInput = { version: 1, default: "allow", policies: [{ id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "10m" } }] };
const open: Warden[] = [];
const dirs: string[] = [];
beforeAll(() => setTracingDisabled(true));
afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const usage = () => new Usage({ requests: 1, inputTokens: 1, outputTokens: 1, totalTokens: 2 });

function deployTool(executed: unknown[]) {
  return tool({ name: "deploy", description: "Deploys", parameters: z.object({ version: z.string() }), execute: async (args) => (executed.push(args), `deployed ${args.version}`) });
}

describe("OpenAI Agents RunState resumed with changed arguments", () => {
  it.each([
    ["the same arguments run once", "1.4.2", [{ version: "1.4.2" }], undefined],
    ["changed arguments are refused, never run, and recorded", "6.6.6", [], "args_changed"],
  ] as const)("%s", async (_name, resumedVersion, expected, refused) => {
    const dir = mkdtempSync(join(tmpdir(), "warden-oa-binding-"));
    dirs.push(dir);
    const store = join(dir, "warden.db");
    const first = new Warden({ agentId: "deployer", store, policies, onError: () => {} });
    const model1 = new ScriptedModel([modelResponse({ output: [functionCall("deploy", { version: "1.4.2" }, { callId: "call_deploy" })], usage: usage() })]);
    const paused = await governedRun(governAgent(new Agent({ name: "deployer", model: model1, tools: [deployTool([])] }), first), "ship 1.4.2", first);
    expect(paused.interruptions).toHaveLength(1);
    const saved = paused.state.toString();
    first.close();

    const reviewer = new Warden({ agentId: "console", store, onError: () => {} });
    open.push(reviewer);
    const [request] = reviewer.approvals.list({ status: "pending" });
    reviewer.approvals.approve(request!.approvalId, { reviewer: "alice" });

    const second = new Warden({ agentId: "deployer", store, policies, onError: () => {} });
    open.push(second);
    const executed: unknown[] = [];
    const agent = governAgent(new Agent({ name: "deployer", model: new ScriptedModel([modelResponse({ output: [assistantMessage("done")], usage: usage() })]), tools: [deployTool(executed)] }), second);
    const state = await RunState.fromString(agent, saved.replaceAll("1.4.2", resumedVersion));
    await governedRun(agent, state, second);

    expect(executed).toEqual(expected);
    const refusals = second.ledger.entries().filter((entry) => entry.type === "risk.detected").map((entry) => (entry.data as { refused?: string }).refused);
    expect(refusals).toEqual(refused === undefined ? [] : [refused]);
  });
});
