// Decision speed on equivalent rule sets: Warden vs Cedar (wasm, pre-parsed) vs Casbin vs a linear-scan
// reference, at 10 / 100 / 1,000 / 10,000 rules with 40% of them globs. Every engine answers the same
// calls in the same order, one call each per round with the order rotated every round, each call timed
// on its own. Tool names, agents, environments and amounts vary on every call; "never-seen" names are
// unique to their call, so no engine can have cached anything about them.
import { Warden } from "agent-warden";
import { interleaveSync, percentiles, quick, timingRow, type BenchRow, type Case } from "./harness.js";
import { casbinDecider, cedarDecider, makeRules, referenceDecider, sampleCalls, wardenPolicySet, type CallSpec, type Decider } from "./peers.js";

const SIZES = [10, 100, 1000, 10_000];
const GLOB_SHARE = 0.4;
/** Time budget per workload and size; slow engines get fewer rounds, all engines the same rounds. */
const BUDGET_MS = quick ? 400 : 2000;
const MAX_CALLS = quick ? 20_000 : 100_000;

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const mix of ["mixed", "never-seen"] as const) {
    for (const n of SIZES) {
      const rules = makeRules(n, GLOB_SHARE);
      const warden = new Warden({ agentId: "bench", store: ":memory:", policies: wardenPolicySet(rules) as never });
      const wardenDecider: Decider = {
        name: "warden check()",
        decide: (c) => warden.check({ tool: c.tool, agentId: c.agent, environment: c.environment, args: { amount: c.amount } }).action !== "allow",
      };
      const deciders = [wardenDecider, await cedarDecider(rules), await casbinDecider(rules), referenceDecider(rules)];
      // Every engine must give the same answers before its speed is worth reporting; a second pass over
      // the same calls tells each engine's cost, which sizes its share of the run. The median call of that
      // pass, not the mean: one pause (a collection, the machine's load) must not cut an engine's share.
      const checked = sampleCalls(rules, n >= 10_000 ? 16 : n >= 1000 ? 60 : 300, mix, 1);
      const expected = checked.map((c) => deciders[3]!.decide(c));
      const costUs = deciders.map((d) => {
        checked.forEach((c, i) => {
          if (d.decide(c) !== expected[i]) throw new Error(`${d.name} disagrees on ${JSON.stringify(c)} at ${n} rules`);
        });
        const times = checked.map((c) => {
          const t0 = performance.now();
          d.decide(c);
          return (performance.now() - t0) * 1000;
        });
        return percentiles(times).median;
      });
      // Each engine gets about the same time; a slow one takes part in every k-th round only.
      // A probe of a few cold calls overstates a fast engine's cost: under 1 ms, it gets a floor of calls
      // large enough to warm up and to show its p99.9.
      const callsFor = costUs.map((us) => Math.max(us < 1000 ? MAX_CALLS / 5 : 40, Math.min(MAX_CALLS, Math.round((BUDGET_MS * 1000) / us))));
      const rounds = Math.max(...callsFor);
      const cases: Case<CallSpec>[] = deciders.map((d, i) => ({ name: d.name, step: (c) => d.decide(c), every: Math.max(1, Math.floor(rounds / callsFor[i]!)) }));
      // Warm-up and timed calls come from other seeds: "never-seen" names stay never seen.
      const warm = sampleCalls(rules, Math.min(5000, rounds), mix, 7);
      const timed = sampleCalls(rules, rounds, mix, 2);
      const results = interleaveSync(cases, rounds, (r) => (r < 0 ? warm[-1 - r]! : timed[r]!), warm.length);
      const group = mix === "mixed" ? "decision, varied calls (40% glob rules)" : "decision, never-seen tool names (40% glob rules)";
      for (const d of deciders) rows.push(timingRow(group, `${d.name}, ${n.toLocaleString("en-US")} rules`, results.get(d.name)!, d === wardenDecider ? "public API: classification, halts, limits included" : undefined));
      warden.close();
    }
  }
  return rows;
}
