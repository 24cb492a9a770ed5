// LangGraph resumes an interrupted tool call from its checkpoint: the call's arguments in the
// checkpointed state are what runs, so an approval given for one set must not run another.
import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { Command, MemorySaver } from "@langchain/langgraph";
import { createAgent } from "langchain";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { Warden, type PolicySetInput } from "agent-warden";
import { approvalInterrupts, wardenMiddleware } from "agent-warden/langchain";

const policies: PolicySetInput = { version: 1, default: "allow", policies: [{ id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "10m" } }] };
const open: Warden[] = [];
afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
});

describe("LangGraph interrupt resumed with changed arguments", () => {
  it.each([
    ["the approved arguments run once", "1.4.2", [{ version: "1.4.2" }], []],
    ["changed arguments are refused, never run, and recorded", "6.6.6", [], ["args_changed"]],
  ] as const)("%s", async (_name, resumedVersion, expected, refusals) => {
    const warden = new Warden({ agentId: "lc-agent", store: ":memory:", policies, onError: () => {} });
    open.push(warden);
    const executed: unknown[] = [];
    const deploy = tool(
      async (input: { version: string }) => {
        executed.push(input);
        return `deployed ${input.version}`;
      },
      { name: "deploy", description: "deploys", schema: z.object({ version: z.string() }) },
    );
    const model = fakeModel().respondWithTools([{ name: "deploy", args: { version: "1.4.2" }, id: "call_deploy" }]).respond(new AIMessage("finished"));
    const agent = createAgent({ model, tools: [deploy], middleware: [wardenMiddleware(warden, { approval: "interrupt" })], checkpointer: new MemorySaver() });
    const config = { configurable: { thread_id: `thread-${resumedVersion}` } };

    const paused = await agent.invoke({ messages: [new HumanMessage("ship 1.4.2")] }, config);
    const [request] = approvalInterrupts(paused);
    warden.approvals.approve(request!.approvalId!, { reviewer: "alice" });

    // The checkpointed tool call, edited in place (same message id) before the resume.
    const state = await agent.graph.getState(config);
    const messages = (state.values as { messages: BaseMessage[] }).messages;
    const call = messages.findLast((m): m is AIMessage => AIMessage.isInstance(m) && (m.tool_calls?.length ?? 0) > 0)!;
    const edited = new AIMessage({ id: call.id, content: call.content, tool_calls: [{ ...call.tool_calls![0]!, args: { version: resumedVersion } }] } as ConstructorParameters<typeof AIMessage>[0]);
    await agent.graph.updateState(config, { messages: [edited] });
    const done = await agent.invoke(new Command({ resume: { approvalId: request!.approvalId } }), config);

    expect(executed).toEqual(expected);
    const refused = warden.ledger.entries().filter((entry) => entry.type === "risk.detected").map((entry) => (entry.data as { refused?: string }).refused);
    expect(refused).toEqual(refusals);
    // A refusal reaches the model as the tool's error; the run carries on.
    expect(done.messages.at(-1)!.content).toBe("finished");
  });
});
