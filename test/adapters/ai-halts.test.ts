// Halts through the AI SDK adapter: a refusal caused by a halt stops the loop, a plain refusal does not.
import { generateKeyPairSync } from "node:crypto";
import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { isHalt, Warden, type WardenOptions } from "agent-warden";
import { governTools, wardenCallOptions } from "agent-warden/ai";

const open: Warden[] = [];
afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
});

function client(options: Partial<WardenOptions>): Warden {
  const warden = new Warden({ agentId: "ai-agent", store: ":memory:", policies: { version: 1, default: "allow", policies: [] }, ...options } as WardenOptions);
  open.push(warden);
  return warden;
}

const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 5, text: 5, reasoning: undefined } };
const callTool = (toolCallId: string, toolName: string) => ({ content: [{ type: "tool-call" as const, toolCallId, toolName, input: "{}" }], finishReason: { unified: "tool-calls" as const, raw: undefined }, usage, warnings: [] });
const say = (text: string) => ({ content: [{ type: "text" as const, text }], finishReason: { unified: "stop" as const, raw: undefined }, usage, warnings: [] });

/** A sub-agent client acting under a token its delegating agent ("planner") issued; then the planner is halted. */
function subAgentOfHaltedPlanner(): Warden {
  const signingKey = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }) as string;
  const planner = client({ agentId: "planner", tokens: { signingKey } });
  const token = planner.tokens.attenuate(planner.tokens.mint({ agentId: "planner", scopes: ["*"], ttl: "1h" }), { audience: "planner/travel-agent" });
  const subAgent = client({ agentId: "planner/travel-agent", token, tokens: { signingKey } });
  subAgent.halt({ reason: "planner compromised", agentId: "planner" });
  return subAgent;
}

describe("a halt of the delegating agent", () => {
  it.each([
    ["governTools with wardenCallOptions", true],
    ["governTools alone", false],
  ])("stops the loop under %s: the tool never runs and the call rejects with the halt", async (_label, callOptions) => {
    const warden = subAgentOfHaltedPlanner();
    const ran: string[] = [];
    const search = tool({ inputSchema: z.object({}), execute: async () => (ran.push("search"), "found") });
    const model = new MockLanguageModelV4({ doGenerate: [callTool("call-1", "search"), callTool("call-2", "search"), say("carried on")] });

    const call = generateText({ model, tools: governTools({ search }, warden), prompt: "book it", stopWhen: stepCountIs(5), ...(callOptions ? wardenCallOptions(warden) : {}) });

    const error = await call.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(ran).toEqual([]);
    if (callOptions) {
      expect(isHalt(error)).toBe(true);
      expect(model.doGenerateCalls).toHaveLength(1);
    } else {
      // Without the call-level signal the loop cannot be stopped from a tool; every call is refused as a halt.
      expect(error).toBeUndefined();
    }
  });
});
