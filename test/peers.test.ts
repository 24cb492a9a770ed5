import { describe, expect, it } from "vitest";
import { Warden } from "agent-warden";
import { casbinDecider, cedarDecider, makeRules, referenceDecider, sampleCalls, wardenPolicySet, type Decider } from "../bench/peers.js";

describe("bench peers: equivalent rule sets", () => {
  it("makeRules is deterministic, exact names and the asked share of globs, with thresholds, agents and environments", () => {
    const rules = makeRules(100, 0.4);
    expect(makeRules(100, 0.4)).toEqual(rules);
    expect(rules.filter((r) => r.tool.includes("*"))).toHaveLength(40);
    expect(new Set(rules.map((r) => r.tool)).size).toBe(100);
    expect(rules.filter((r) => r.minAmount !== undefined)).toHaveLength(34);
    expect(rules.filter((r) => r.agent !== undefined)).toHaveLength(20);
    expect(rules.filter((r) => r.environment !== undefined)).toHaveLength(15);
    expect(makeRules(12).map((r) => r.tool)).toEqual(Array.from({ length: 12 }, (_, i) => `tool_${i}`));
  });

  it("wardenPolicySet renders tool, agent, environment and amount conditions", () => {
    const set = wardenPolicySet(makeRules(4));
    expect(set.version).toBe(1);
    expect(set.default).toBe("allow");
    expect(set.policies[0]!.when).toEqual({ tool: "tool_0", agent: "agent_0", environment: "production", "args.amount": { gt: 100 } });
    expect(set.policies[1]!.when).toEqual({ tool: "tool_1" });
    expect(set.policies[3]!.when).toEqual({ tool: "tool_3", "args.amount": { gt: 211 } });
  });

  it("sampleCalls is deterministic and mixes allowed and denied calls, glob-matched and never-seen names", () => {
    const rules = makeRules(100, 0.4);
    const calls = sampleCalls(rules, 1000, "mixed");
    expect(sampleCalls(rules, 1000, "mixed")).toEqual(calls);
    const reference = referenceDecider(rules);
    const denied = calls.filter((c) => reference.decide(c)).length;
    expect(denied).toBeGreaterThan(150);
    expect(denied).toBeLessThan(850);
    expect(calls.some((c) => c.tool.startsWith("svc_"))).toBe(true);
    const fresh = calls.filter((c) => c.tool.startsWith("fresh_")).map((c) => c.tool);
    expect(new Set(fresh).size).toBe(fresh.length);
    expect(sampleCalls(rules, 50, "never-seen").every((c) => c.tool.startsWith("fresh_"))).toBe(true);
  });

  for (const n of [10, 100]) {
    it(`warden, cedar and casbin agree with the reference at n=${n} on 1,000 calls`, async () => {
      const rules = makeRules(n, 0.4);
      const calls = sampleCalls(rules, 1000, "mixed");
      const reference = referenceDecider(rules);
      const warden = new Warden({ agentId: "bench", store: ":memory:", policies: wardenPolicySet(rules) as never });
      const wardenDecider: Decider = { name: "warden", decide: (c) => warden.check({ tool: c.tool, agentId: c.agent, environment: c.environment, args: { amount: c.amount } }).action !== "allow" };
      const peers: Decider[] = [wardenDecider, await cedarDecider(rules), await casbinDecider(rules)];
      for (const peer of peers) {
        const mismatches = calls.filter((c) => peer.decide(c) !== reference.decide(c));
        expect(mismatches, peer.name).toEqual([]);
      }
      warden.close();
    });
  }
});
