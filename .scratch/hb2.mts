import { hash, randomBytes } from "node:crypto";
const b = randomBytes(65);
const N = 50000;
for (let r = 0; r < 3; r++) {
  let t0 = performance.now(); for (let i = 0; i < N; i++) hash("sha256", b, "buffer"); console.log("hash buffer", ((performance.now() - t0) * 1000 / N).toFixed(2), "µs");
  t0 = performance.now(); for (let i = 0; i < N; i++) Buffer.from(hash("sha256", b, "hex"), "hex"); console.log("hex+from", ((performance.now() - t0) * 1000 / N).toFixed(2), "µs");
  t0 = performance.now(); for (let i = 0; i < N; i++) Buffer.from(hash("sha256", b, "latin1"), "latin1"); console.log("latin1+from", ((performance.now() - t0) * 1000 / N).toFixed(2), "µs");
}
