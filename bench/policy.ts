// Decision speed on equivalent agent tool rules: Warden vs Cedar (wasm, pre-parsed) vs Casbin vs a Map floor.
import { Warden } from "agent-warden";
import { measureSync, type BenchRow } from "./harness.js";
import { casbinDecider, cedarDecider, makeRules, mapFloorDecider, sampleCalls, wardenPolicySet, type Decider } from "./peers.js";

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const n of [10, 1000]) {
    const rules = makeRules(n);
    const calls = sampleCalls(rules, 4096);
    const warden = new Warden({ agentId: "bench", store: ":memory:", policies: wardenPolicySet(rules) as never });
    const wardenDecider: Decider = {
      name: "warden check()",
      decide: (tool, amount) => warden.check({ tool, args: { amount } }).action !== "allow",
    };
    const deciders = [wardenDecider, mapFloorDecider(rules), await cedarDecider(rules), await casbinDecider(rules)];
    for (const decider of deciders) {
      let i = 0;
      const step = () => {
        const call = calls[i++ & 4095]!;
        return decider.decide(call.tool, call.amount);
      };
      // Slow peers get fewer samples so the whole run stays short.
      const probe = measureSync(step, { samples: 50, batch: 1, warmup: 20 });
      const fast = probe.medianUs < 20;
      const timing = measureSync(step, fast ? { samples: 5000, batch: 10, warmup: 20_000 } : { samples: Math.max(50, Math.round(300_000 / probe.medianUs / 2)), batch: 1, warmup: 20 });
      rows.push({ group: `decision, ${n} policies`, name: decider.name, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec, note: fast ? "per call, batches of 10" : "per call" });
    }
    warden.close();
  }
  return rows;
}
