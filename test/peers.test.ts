import { describe, expect, it } from "vitest";
import { casbinDecider, cedarDecider, makeRules, mapFloorDecider, sampleCalls, wardenPolicySet, type Decider } from "../bench/peers.js";

describe("bench peers: equivalent rule sets", () => {
  it("makeRules is deterministic, one rule per distinct tool, every third with a threshold", () => {
    const rules = makeRules(12);
    expect(makeRules(12)).toEqual(rules);
    expect(new Set(rules.map((r) => r.tool)).size).toBe(12);
    expect(rules.map((r) => r.tool)).toEqual(Array.from({ length: 12 }, (_, i) => `tool_${i}`));
    expect(rules.filter((r) => r.minAmount !== undefined)).toHaveLength(4);
  });

  it("wardenPolicySet renders tool and amount conditions", () => {
    const set = wardenPolicySet(makeRules(4));
    expect(set.version).toBe(1);
    expect(set.default).toBe("allow");
    expect(set.policies[0]!.when).toEqual({ tool: "tool_0", "args.amount": { gt: 100 } });
    expect(set.policies[1]!.when).toEqual({ tool: "tool_1" });
    expect(set.policies[3]!.when).toEqual({ tool: "tool_3", "args.amount": { gt: 211 } });
  });

  it("sampleCalls is deterministic and mixes allowed and denied calls, including unruled tools", () => {
    const rules = makeRules(10);
    const calls = sampleCalls(rules, 500);
    expect(sampleCalls(rules, 500)).toEqual(calls);
    const floor = mapFloorDecider(rules);
    const denied = calls.filter((c) => floor.decide(c.tool, c.amount)).length;
    expect(denied).toBeGreaterThan(100);
    expect(denied).toBeLessThan(400);
    expect(calls.some((c) => !c.tool.startsWith("tool_"))).toBe(true);
    // a thresholded tool is seen both below and above its threshold
    const t0 = calls.filter((c) => c.tool === "tool_0");
    expect(t0.some((c) => floor.decide(c.tool, c.amount))).toBe(true);
    expect(t0.some((c) => !floor.decide(c.tool, c.amount))).toBe(true);
  });

  for (const n of [10, 100]) {
    it(`cedar and casbin agree with the Map floor at n=${n} on 500 calls`, async () => {
      const rules = makeRules(n);
      const calls = sampleCalls(rules, 500);
      const floor = mapFloorDecider(rules);
      const peers: Decider[] = [await cedarDecider(rules), await casbinDecider(rules)];
      for (const peer of peers) {
        const mismatches = calls.filter((c) => peer.decide(c.tool, c.amount) !== floor.decide(c.tool, c.amount));
        expect(mismatches, peer.name).toEqual([]);
      }
    });
  }
});
