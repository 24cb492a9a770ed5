import { MerkleFrontier } from "../src/ledger/merkle.ts";
import { randomBytes } from "node:crypto";
const hs = Array.from({ length: 10000 }, () => randomBytes(32));
let best = Infinity;
for (let round = 0; round < 20; round++) {
  const f = new MerkleFrontier(); const t0 = performance.now();
  for (const h of hs) f.push(h);
  best = Math.min(best, performance.now() - t0);
}
console.log("10k push best", best.toFixed(1), "ms");
