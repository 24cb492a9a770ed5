// Profiling driver, not part of `npm run bench`: the governed call of bench/core.ts (`run.tool`, file store,
// 1,000 rules with 40% globs, varied names and arguments), reporting the main thread's CPU per call apart
// from the writer thread's, the event-loop delay, and the longest GC pauses. PROFILE names a file for a
// CPU profile of the timed loop; STALLS=1 prints what ran just before each loop stall over 10 ms.
// "old space reached per call" is what scavenges promote (plus anything allocated there directly): when it
// grows, look for objects kept past a scavenge, or for allocation sites V8 moved to old space
// (`node --trace-deopt … | grep "tenuring changed"` names the functions that hold them).
//   N=100000 npx tsx bench/profile-core.ts
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";
import { getHeapSpaceStatistics } from "node:v8";
import type { Warden as WardenClass } from "agent-warden";
import { makeRules, wardenPolicySet } from "./peers.js";

const N = Number(process.env.N ?? 100_000);
/** Warm-up calls: enough for the writer thread's start and V8's first growth of the young generation to happen before timing. */
const WARM = Number(process.env.WARM ?? 60_000);
// DIST=1: the built package (what users run; its writer thread loads plain JavaScript), else the source
// through tsx; ENTRY=<path> another build or source tree's entry (a before/after comparison).
const { Warden } = (await import(process.env.ENTRY ?? (process.env.DIST ? "../dist/index.js" : "agent-warden"))) as { Warden: typeof WardenClass };
const dir = mkdtempSync(join(tmpdir(), "warden-prof-"));
const warden = new Warden({ agentId: "bench", store: join(dir, "w.db"), policies: wardenPolicySet(makeRules(1000, 0.4)) as never });
const tool = (input: { id: number }) => ({ ok: true, id: input.id });
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

const gcs: Array<{ kind: number; ms: number; start: number }> = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcs.push({ kind: (entry as { detail?: { kind?: number } }).detail?.kind ?? 0, ms: entry.duration, start: entry.startTime });
});

// As bench/core.ts: the timed loop's names, a turn of the loop between calls (the writer thread starts here).
const warm = monitorEventLoopDelay({ resolution: 1 });
warm.enable();
await warden.run({ warmup: true }, async (r) => {
  for (let i = 0; i < WARM; i++) {
    const args = { id: i, customer: `c_${i % 977}` };
    await r.tool(`read_order_${i % 500}`, args, () => tool(args));
    await yieldToLoop();
  }
});
warden.flush();
warm.disable();

const session = new Session();
session.connect();
if (process.env.PROFILE) {
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
}
if (process.env.HEAP) {
  await session.post("HeapProfiler.enable");
  // ALLOC=1: every sampled allocation, collected or not (where the allocation volume comes from).
  await session.post("HeapProfiler.startSampling", { samplingInterval: 4096, ...(process.env.ALLOC && { includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }) } as never);
}
gcObserver.observe({ entryTypes: ["gc"] });
const delay = monitorEventLoopDelay({ resolution: 1 });
const stalls: Array<{ at: number; ms: number; cpuMs: number }> = [];
// Between two 1 ms ticks: the wall time (what a loaded machine stretches) and the main thread's own CPU
// (what the loop's work took, whatever the load): a stall in CPU is work to remove, one in wall alone is the scheduler.
const cpuGaps: number[] = [];
let last = performance.now();
let lastCpu = process.threadCpuUsage();
const oldSpace = () => getHeapSpaceStatistics().find((space) => space.space_name === "old_space")?.space_used_size ?? 0;
let lastOld = oldSpace();
let oldReached = 0;
const watch = setInterval(() => {
  const now = performance.now();
  const cpu = process.threadCpuUsage();
  const cpuMs = (cpu.user + cpu.system - lastCpu.user - lastCpu.system) / 1000;
  cpuGaps.push(cpuMs);
  // Growth only: a full GC shrinks it, and what it freed had reached old space all the same.
  const old = oldSpace();
  if (old > lastOld) oldReached += old - lastOld;
  lastOld = old;
  if (now - last > 11) stalls.push({ at: now, ms: now - last, cpuMs });
  last = now;
  lastCpu = cpu;
}, 1);
/** CPU ticks (user + system) of each thread of this process by its name, from /proc (Linux; empty elsewhere). */
const threadTicks = (): Map<string, number> => {
  const byName = new Map<string, number>();
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      try {
        const name = readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        byName.set(`${name}:${tid}`, Number(fields[11]) + Number(fields[12]));
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return byName;
};
const ticks0 = threadTicks();
const main0 = process.threadCpuUsage();
const proc0 = process.cpuUsage();
const t0 = performance.now();
delay.enable();
await warden.run({ bench: true }, async (r) => {
  for (let i = 0; i < N; i++) {
    const args = { id: i, customer: `c_${i % 977}` };
    await r.tool(`read_order_${i % 500}`, args, () => tool(args));
    await yieldToLoop();
    // The sampled allocations still alive mid-run: what the loop retains.
    if (process.env.HEAP && i === N >> 1) {
      // PROMOTED=1 (with --expose-gc): after minor GCs only, what old space holds, live or dead, before the
      // full GC's live set; the difference is what was promoted and then died (what drives major GCs).
      if (process.env.PROMOTED) {
        const gc = (globalThis as unknown as { gc: (options: object) => void }).gc;
        gc({ type: "minor", execution: "sync" });
        gc({ type: "minor", execution: "sync" });
        const { profile } = await session.post("HeapProfiler.getSamplingProfile");
        writeFileSync(`${process.env.HEAP}.minor`, JSON.stringify(profile));
      }
      if (!process.env.ALLOC) await session.post("HeapProfiler.collectGarbage");
      const { profile } = await session.post("HeapProfiler.getSamplingProfile");
      writeFileSync(process.env.HEAP, JSON.stringify(profile));
      await session.post("HeapProfiler.stopSampling");
    }
  }
});
const mainLoop = process.threadCpuUsage(main0);
// Everything handed over committed (the main thread waits for it) before the threads' ticks are read.
warden.flush();
const ticks1 = threadTicks();
warden.close();
delay.disable();
const wall = performance.now() - t0;
const main = process.threadCpuUsage(main0);
const proc = process.cpuUsage(proc0);
clearInterval(watch);
gcObserver.disconnect();
if (process.env.PROFILE) {
  const { profile } = await session.post("Profiler.stop");
  writeFileSync(process.env.PROFILE, JSON.stringify(profile));
}
rmSync(dir, { recursive: true, force: true });

const us = (c: { user: number; system: number }) => ((c.user + c.system) / N).toFixed(1);
// Per kind of thread (10 ms ticks): the writer is the WorkerThread that used the most.
const byKind = new Map<string, number>();
for (const [key, t] of ticks1) {
  const delta = t - (ticks0.get(key) ?? 0);
  if (delta > 0) byKind.set(key, delta);
}
const threadLine = [...byKind].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([key, t]) => `${key.split(":")[0]} ${((t * 10_000) / N).toFixed(1)}`).join(", ");
const gcByKind = new Map<number, { n: number; ms: number; max: number }>();
for (const g of gcs) {
  const k = gcByKind.get(g.kind) ?? { n: 0, ms: 0, max: 0 };
  k.n++;
  k.ms += g.ms;
  k.max = Math.max(k.max, g.ms);
  gcByKind.set(g.kind, k);
}
console.log(`loop from ${t0.toFixed(0)} to ${(t0 + wall).toFixed(0)} ms after start (the clock of --trace-gc)`);
console.log(`warm-up (${WARM} calls, the writer thread's start): event-loop delay p99.9 ${(warm.percentile(99.9) / 1e6).toFixed(2)} ms, max ${(warm.max / 1e6).toFixed(1)} ms`);
console.log(`calls ${N}, wall ${(wall / 1000).toFixed(2)} s, ${Math.round(N / (wall / 1000))} calls/s`);
console.log(`CPU per call: main thread ${us(mainLoop)} µs in the loop (${us(main)} µs with close()), process ${us(proc)} µs (writer ≈ ${((proc.user + proc.system - main.user - main.system) / N).toFixed(1)} µs)`);
console.log(`CPU per call by thread (µs, /proc ticks, to the last commit): ${threadLine}`);
console.log(`event-loop delay: p50 ${(delay.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(2)} ms, p99.9 ${(delay.percentile(99.9) / 1e6).toFixed(2)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`);
console.log(`old space reached per call: ${Math.round(oldReached / N)} bytes (growth between 1 ms ticks)`);
for (const [kind, k] of gcByKind) console.log(`gc kind ${kind}: ${k.n} pauses, ${k.ms.toFixed(0)} ms total, max ${k.max.toFixed(1)} ms`);
cpuGaps.sort((a, b) => a - b);
const at = (q: number) => cpuGaps[Math.min(cpuGaps.length - 1, Math.floor(cpuGaps.length * q))]!.toFixed(2);
console.log(`main-thread CPU between 1 ms ticks: p99 ${at(0.99)} ms, p99.9 ${at(0.999)} ms, max ${cpuGaps.at(-1)!.toFixed(1)} ms, ${cpuGaps.filter((g) => g > 10).length} over 10 ms`);
// Where the ticks over 10 ms fall: the start (the writer thread's spawn and warm-up) or the steady state.
const phases: Array<[string, number, number]> = [["first 100 ms", 0, 0.1], ["0.1–1 s", 0.1, 1], ["after 1 s", 1, Infinity]];
const inPhase = (s: { at: number }, from: number, to: number) => (s.at - t0) / 1000 >= from && (s.at - t0) / 1000 < to;
const loopStalls = stalls.filter((s) => s.at >= t0);
console.log(`ticks over 10 ms (wall, main-thread CPU ≥ 10 ms): ${phases.map(([name, from, to]) => `${name} ${loopStalls.filter((s) => inPhase(s, from, to)).length} (${loopStalls.filter((s) => inPhase(s, from, to) && s.cpuMs >= 10).length})`).join(", ")}`);
if (process.env.STALLS && stalls.length > 0) console.log(`stalls > 11 ms (wall/cpu): ${stalls.map((s) => `${s.ms.toFixed(0)}/${s.cpuMs.toFixed(0)}@${((s.at - t0) / 1000).toFixed(2)}s`).join(" ")}`);
// The stalls in which the main thread itself worked 10 ms or more, and the GC pauses inside each.
for (const s of loopStalls.filter((s) => s.cpuMs >= 10)) {
  const inside = gcs.filter((g) => g.start >= s.at - s.ms - 1 && g.start <= s.at);
  console.log(`cpu stall ${s.cpuMs.toFixed(0)} ms (wall ${s.ms.toFixed(0)}) at ${((s.at - t0) / 1000).toFixed(2)} s: gc ${inside.map((g) => `kind ${g.kind} ${g.ms.toFixed(1)} ms`).join(", ") || "none"}`);
}
