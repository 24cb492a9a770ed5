// Shared timing helpers. Every call is timed on its own (no means of batches), and cases that are
// compared run interleaved: one call of each per round, the order rotated every round, so drift in
// machine load lands on every case alike.
import { performance } from "node:perf_hooks";

export interface BenchRow {
  group: string;
  name: string;
  /** Timed calls behind the percentiles. */
  samples?: number | undefined;
  medianUs?: number | undefined;
  p99Us?: number | undefined;
  p999Us?: number | undefined;
  opsPerSec?: number | undefined;
  note?: string | undefined;
}

export interface Timing {
  samples: number;
  medianUs: number;
  p99Us: number;
  p999Us: number;
  opsPerSec: number;
}

/** Whether `--quick` was passed: fewer samples, same cases. */
export const quick = process.argv.includes("--quick");

/** Scales a sample count down under `--quick`. */
export function scaled(count: number, floor = 200): number {
  return quick ? Math.max(floor, Math.round(count / 5)) : count;
}

/** Times `samples × batch` calls of `fn`, each one on its own (`batch` only scales the count). */
export function measureSync(fn: () => unknown, options: { samples?: number; batch?: number; warmup?: number } = {}): Timing {
  const count = scaled((options.samples ?? 2000) * (options.batch ?? 1));
  for (let i = 0; i < (options.warmup ?? 2000); i++) fn();
  const times = new Float64Array(count);
  const start = performance.now();
  for (let s = 0; s < count; s++) {
    const t0 = performance.now();
    fn();
    times[s] = (performance.now() - t0) * 1000;
  }
  return summarize(times, count / ((performance.now() - start) / 1000));
}

/** As `measureSync`, awaiting each call. */
export async function measureAsync(fn: () => Promise<unknown>, options: { samples?: number; batch?: number; warmup?: number } = {}): Promise<Timing> {
  const count = scaled((options.samples ?? 1000) * (options.batch ?? 1));
  for (let i = 0; i < (options.warmup ?? 500); i++) await fn();
  const times = new Float64Array(count);
  const start = performance.now();
  for (let s = 0; s < count; s++) {
    const t0 = performance.now();
    await fn();
    times[s] = (performance.now() - t0) * 1000;
  }
  return summarize(times, count / ((performance.now() - start) / 1000));
}

export interface Case<C> {
  name: string;
  /** One call on `input`; every case is given the same inputs in the same order. */
  step: (input: C) => unknown;
  /** Takes part in every `every`-th round only (a slow case), on those rounds' inputs; default 1. */
  every?: number;
}

/**
 * Runs `rounds` rounds; in round r each case makes one call on `inputs(r)`, starting from case r mod k.
 * Returns each case's per-call times (µs) and its throughput over the time spent in its own calls.
 */
export function interleaveSync<C>(cases: readonly Case<C>[], rounds: number, inputs: (round: number) => C, warmup = 0): Map<string, Timing> {
  for (let r = 0; r < warmup; r++) {
    const input = inputs(-1 - r);
    for (const c of cases) if (r % (c.every ?? 1) === 0) c.step(input);
  }
  const times = cases.map((c) => new Float64Array(Math.ceil(rounds / (c.every ?? 1))));
  const k = cases.length;
  for (let r = 0; r < rounds; r++) {
    const input = inputs(r);
    for (let j = 0; j < k; j++) {
      const index = (r + j) % k;
      const c = cases[index]!;
      const every = c.every ?? 1;
      if (r % every !== 0) continue;
      const t0 = performance.now();
      c.step(input);
      times[index]![r / every] = (performance.now() - t0) * 1000;
    }
  }
  return new Map(cases.map((c, i) => [c.name, summarize(times[i]!)]));
}

/** As `interleaveSync`, awaiting each call. */
export async function interleaveAsync<C>(cases: readonly { name: string; step: (input: C) => Promise<unknown> }[], rounds: number, inputs: (round: number) => C, warmup = 0): Promise<Map<string, Timing>> {
  for (let r = 0; r < warmup; r++) {
    const input = inputs(-1 - r);
    for (const c of cases) await c.step(input);
  }
  const times = cases.map(() => new Float64Array(rounds));
  const k = cases.length;
  for (let r = 0; r < rounds; r++) {
    const input = inputs(r);
    for (let j = 0; j < k; j++) {
      const index = (r + j) % k;
      const t0 = performance.now();
      await cases[index]!.step(input);
      times[index]![r] = (performance.now() - t0) * 1000;
    }
  }
  return new Map(cases.map((c, i) => [c.name, summarize(times[i]!)]));
}

/** The cost of reading the clock twice, which every per-call time includes. */
export function timerFloorUs(): number {
  const times = new Float64Array(20_000);
  for (let i = 0; i < times.length; i++) {
    const t0 = performance.now();
    times[i] = (performance.now() - t0) * 1000;
  }
  return summarize(times).medianUs;
}

export function percentiles(values: number[]): { median: number; p99: number; p999: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { median: at(0.5), p99: at(0.99), p999: at(0.999) };
}

/** Percentiles of per-call times; throughput defaults to one over the mean call time. */
export function summarize(times: Float64Array, opsPerSec?: number): Timing {
  const sorted = Float64Array.from(times).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  let total = 0;
  for (const t of sorted) total += t;
  return { samples: sorted.length, medianUs: at(0.5), p99Us: at(0.99), p999Us: at(0.999), opsPerSec: opsPerSec ?? (sorted.length * 1e6) / total };
}

/** A row from a timing: p99.9 only when there are enough samples for it to mean something. */
export function timingRow(group: string, name: string, timing: Timing, note?: string): BenchRow {
  return { group, name, samples: timing.samples, medianUs: timing.medianUs, p99Us: timing.p99Us, p999Us: timing.samples >= 2000 ? timing.p999Us : undefined, opsPerSec: timing.opsPerSec, note };
}

/** One table per group, in the order groups first appear. */
export function printTable(rows: BenchRow[]): void {
  const groups = [...new Set(rows.map((r) => r.group))];
  for (const group of groups) {
    console.log(`\n### ${group}\n`);
    printGroup(rows.filter((r) => r.group === group));
  }
}

function printGroup(rows: BenchRow[]): void {
  const header = ["case", "calls", "p50 µs", "p99 µs", "p99.9 µs", "ops/s", "note"];
  const fmt = (n: number | undefined, digits = 3) => (n === undefined ? "" : n >= 100 ? n.toFixed(0) : n.toPrecision(digits));
  const body = rows.map((r) => [r.name, r.samples === undefined ? "" : r.samples.toLocaleString("en-US"), fmt(r.medianUs), fmt(r.p99Us), fmt(r.p999Us), r.opsPerSec === undefined ? "" : Math.round(r.opsPerSec).toLocaleString("en-US"), r.note ?? ""]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of body) console.log(line(row));
}
