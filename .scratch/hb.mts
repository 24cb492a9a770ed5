import { hash, createHash, randomBytes } from "node:crypto";
const b = randomBytes(65);
const N = 20000;
for (let r = 0; r < 2; r++) {
  let t0 = performance.now(); for (let i = 0; i < N; i++) hash("sha256", b, "buffer"); console.log("hash buffer", ((performance.now() - t0) * 1000 / N).toFixed(2), "µs");
  t0 = performance.now(); for (let i = 0; i < N; i++) hash("sha256", b, "hex"); console.log("hash hex", ((performance.now() - t0) * 1000 / N).toFixed(2), "µs");
  t0 = performance.now(); for (let i = 0; i < N; i++) createHash("sha256").update(b).digest(); console.log("createHash", ((performance.now() - t0) * 1000 / N).toFixed(2), "µs");
  t0 = performance.now(); for (let i = 0; i < N; i++) Buffer.concat([b.subarray(0, 1), b.subarray(1, 33), b.subarray(33)]); console.log("concat", ((performance.now() - t0) * 1000 / N).toFixed(2), "µs");
}
