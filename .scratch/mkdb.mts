import { Warden } from "agent-warden";
import { makeRules, wardenPolicySet } from "/work/wt-durable/bench/peers.js";
import { rmSync } from "node:fs";
const path = process.argv[2]!;
rmSync(path, { force: true }); rmSync(path + "-wal", { force: true });
const warden = new Warden({ agentId: "bench", store: path, policies: wardenPolicySet(makeRules(1000, 0.4)) as never, onError: () => {} });
const tool = (input: { id: number }) => ({ ok: true, id: input.id });
await warden.run({ bench: true }, async (r) => {
  for (let i = 0; i < 20000; i++) {
    const args = { id: i, customer: `c_${i % 977}` };
    await r.tool(`read_order_${i % 500}`, args, () => tool(args));
  }
});
warden.close();
