// Halt propagation: from a halt committed to the store to the last of 20 agent processes refusing work.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Warden } from "agent-warden";
import { percentiles, type BenchRow } from "./harness.js";

const AGENTS = 20;
const ROUNDS = 15;

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-halt-bench-"));
  const store = join(dir, "warden.db");
  const operator = new Warden({ agentId: "operator", store });
  const children: ChildProcess[] = [];
  const arrivals: Array<(at: number) => void> = [];
  try {
    let ready = 0;
    await new Promise<void>((resolve, reject) => {
      for (let i = 0; i < AGENTS; i++) {
        const child = spawn(process.execPath, ["--import", "tsx", new URL("./fixtures/halt-agent.ts", import.meta.url).pathname, store, `agent-${i}`], { stdio: ["ignore", "pipe", "inherit"] });
        children.push(child);
        child.on("error", reject);
        createInterface({ input: child.stdout! }).on("line", (line) => {
          if (line === "ready") {
            if (++ready === AGENTS) resolve();
            return;
          }
          arrivals.shift()?.((JSON.parse(line) as { at: number }).at);
        });
      }
    });
    const each: number[] = [];
    const last: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const seen = new Array<Promise<number>>(AGENTS).fill(undefined as never).map(() => new Promise<number>((resolve) => arrivals.push(resolve)));
      const t0 = Date.now();
      operator.halt({ reason: `bench round ${round}`, group: "bench" });
      const times = (await Promise.all(seen)).map((at) => at - t0);
      each.push(...times);
      last.push(Math.max(...times));
      operator.resume({ group: "bench" });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const perAgent = percentiles(each);
    const slowest = percentiles(last);
    return [
      { group: "halt propagation", name: `each of ${AGENTS} agent processes (shared store)`, medianUs: perAgent.median * 1000, p99Us: perAgent.p99 * 1000, note: `${ROUNDS} halts; poll every 25 ms` },
      { group: "halt propagation", name: `last of ${AGENTS} agent processes`, medianUs: slowest.median * 1000, p99Us: slowest.p99 * 1000, note: "target p99 ≤ 100 ms" },
    ];
  } finally {
    for (const child of children) child.kill();
    operator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
