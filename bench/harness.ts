// Shared timing helpers: batched samples so timer resolution does not dominate sub-microsecond work.
import { performance } from "node:perf_hooks";

export interface BenchRow {
  group: string;
  name: string;
  medianUs?: number | undefined;
  p99Us?: number | undefined;
  opsPerSec?: number | undefined;
  note?: string | undefined;
}

export interface Timing {
  medianUs: number;
  p99Us: number;
  opsPerSec: number;
}

/** Times `fn` in batches of `batch` calls; each sample is the mean of one batch. */
export function measureSync(fn: () => unknown, options: { samples?: number; batch?: number; warmup?: number } = {}): Timing {
  const samples = options.samples ?? 2000;
  const batch = options.batch ?? 20;
  for (let i = 0; i < (options.warmup ?? 2000); i++) fn();
  const times = new Float64Array(samples);
  const start = performance.now();
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    times[s] = ((performance.now() - t0) * 1000) / batch;
  }
  const totalMs = performance.now() - start;
  return summarize(times, (samples * batch) / (totalMs / 1000));
}

export async function measureAsync(fn: () => Promise<unknown>, options: { samples?: number; batch?: number; warmup?: number } = {}): Promise<Timing> {
  const samples = options.samples ?? 1000;
  const batch = options.batch ?? 10;
  for (let i = 0; i < (options.warmup ?? 500); i++) await fn();
  const times = new Float64Array(samples);
  const start = performance.now();
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) await fn();
    times[s] = ((performance.now() - t0) * 1000) / batch;
  }
  const totalMs = performance.now() - start;
  return summarize(times, (samples * batch) / (totalMs / 1000));
}

export function percentiles(values: number[]): { median: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { median: at(0.5), p99: at(0.99) };
}

function summarize(times: Float64Array, opsPerSec: number): Timing {
  const sorted = Array.from(times).sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { medianUs: at(0.5), p99Us: at(0.99), opsPerSec };
}

export function printTable(rows: BenchRow[]): void {
  const header = ["group", "case", "median µs", "p99 µs", "ops/s", "note"];
  const fmt = (n: number | undefined, digits = 3) => (n === undefined ? "" : n >= 100 ? n.toFixed(0) : n.toPrecision(digits));
  const body = rows.map((r) => [r.group, r.name, fmt(r.medianUs), fmt(r.p99Us), r.opsPerSec === undefined ? "" : Math.round(r.opsPerSec).toLocaleString("en-US"), r.note ?? ""]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of body) console.log(line(row));
}
