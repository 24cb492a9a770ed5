import { hash, randomBytes } from "node:crypto";
const b = randomBytes(65);
const N = 20000;
const variants: Record<string, () => unknown> = {
  buffer: () => hash("sha256", b, "buffer"),
  hexfrom: () => Buffer.from(hash("sha256", b, "hex"), "hex"),
  hexonly: () => hash("sha256", b, "hex"),
};
const best: Record<string, number> = {};
for (let r = 0; r < 15; r++) for (const [k, f] of Object.entries(variants)) {
  const t0 = performance.now(); for (let i = 0; i < N; i++) f(); const us = (performance.now() - t0) * 1000 / N;
  best[k] = Math.min(best[k] ?? Infinity, us);
}
console.log(best);
