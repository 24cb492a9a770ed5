// Import time and first call, each in a fresh Node process, from the built package (`npx tsup` first):
// what an agent pays at start-up. Cases take turns, so each sees the same disk cache and load. Wall time
// is what an agent waits; the main thread's CPU time is steadier on a shared machine. Import and first
// call are also summed per process: work moved from one to the other (a schema built later, a garbage
// collection that lands in the constructor instead) shows there.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { quick, type BenchRow } from "./harness.js";

const GROUP = "import and first call (fresh process, built package)";
const root = fileURLToPath(new URL("..", import.meta.url));

interface ImportCase {
  name: string;
  specifier: string;
  /** Runs with the module as `m`; its time is the first call. */
  first: string;
}

const cases: ImportCase[] = [
  { name: 'import("zod")', specifier: "zod", first: "m.z.object({ tool: m.z.string() }).parse({ tool: 'x' });" },
  { name: 'import("agent-warden")', specifier: "agent-warden", first: "const w = new m.Warden({ agentId: 'a', store: ':memory:' }); w.check({ tool: 'read_order', args: { id: 1 } }); w.close();" },
  { name: 'import("@langfuse/langchain")', specifier: "@langfuse/langchain", first: "new m.CallbackHandler();" },
  { name: 'import("agent-warden/langchain")', specifier: "agent-warden/langchain", first: "const { Warden } = await import('agent-warden'); const w = new Warden({ agentId: 'a', store: ':memory:' }); new m.WardenCallbackHandler(w); w.close();" },
];

export async function run(): Promise<BenchRow[]> {
  if (!existsSync(new URL("../dist/index.js", import.meta.url))) return [{ group: GROUP, name: "skipped", note: "build first: npx tsup" }];
  const require = createRequire(import.meta.url);
  const present = cases.filter((c) => {
    try {
      require.resolve(c.specifier, { paths: [root] });
      return true;
    } catch {
      return c.specifier.startsWith("agent-warden");
    }
  });
  const rounds = quick ? 3 : 9;
  const times = new Map(present.map((c) => [c.name, { load: [] as number[], first: [] as number[], loadCpu: [] as number[], firstCpu: [] as number[], both: [] as number[], bothCpu: [] as number[] }]));
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < present.length; j++) {
      const c = present[(r + j) % present.length]!;
      const script = [
        // The main thread's CPU time (Node 23.9+), else the process's.
        "const cpu = () => { const u = process.threadCpuUsage?.() ?? process.cpuUsage(); return (u.user + u.system) / 1000; };",
        "const c0 = cpu(); const t0 = performance.now();",
        `const m = await import(${JSON.stringify(c.specifier)});`,
        "const t1 = performance.now(); const c1 = cpu();",
        c.first,
        "const t2 = performance.now(); const c2 = cpu();",
        "process.stdout.write(JSON.stringify({ load: t1 - t0, first: t2 - t1, loadCpu: c1 - c0, firstCpu: c2 - c1 }));",
      ].join("\n");
      const out = execFileSync(process.execPath, ["--no-warnings", "--input-type=module", "-e", script], { cwd: root, encoding: "utf8" });
      const { load, first, loadCpu, firstCpu } = JSON.parse(out) as { load: number; first: number; loadCpu: number; firstCpu: number };
      const t = times.get(c.name)!;
      t.load.push(load);
      t.first.push(first);
      t.loadCpu.push(loadCpu);
      t.firstCpu.push(firstCpu);
      t.both.push(load + first);
      t.bothCpu.push(loadCpu + firstCpu);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const max = (values: number[]) => Math.max(...values);
  const rows: BenchRow[] = [];
  for (const c of present) {
    const t = times.get(c.name)!;
    rows.push({ group: GROUP, name: `${c.name}`, samples: rounds, medianUs: median(t.load) * 1000, p99Us: max(t.load) * 1000, note: `import only; p99 column = slowest; main-thread CPU ${median(t.loadCpu).toFixed(1)} ms` });
    rows.push({ group: GROUP, name: `${c.name}: first call`, samples: rounds, medianUs: median(t.first) * 1000, p99Us: max(t.first) * 1000, note: `CPU ${median(t.firstCpu).toFixed(1)} ms; ${c.first.length > 60 ? `${c.first.slice(0, 57)}…` : c.first}` });
    // Against zod's CPU in the same round (the processes ran side by side): steadier than a ratio of medians under load.
    const zod = times.get(cases[0]!.name);
    const ratios = zod === undefined || c === cases[0] ? [] : t.bothCpu.map((cpu, round) => cpu / zod.bothCpu[round]!);
    const ratio = ratios.length > 0 ? `; ${median(ratios).toFixed(2)}× zod's (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : "";
    rows.push({ group: GROUP, name: `${c.name}: import + first call`, samples: rounds, medianUs: median(t.both) * 1000, p99Us: max(t.both) * 1000, note: `the same processes, summed; main-thread CPU ${median(t.bothCpu).toFixed(1)} ms${ratio}` });
  }
  for (const entry of ["index.js"]) {
    const file = fileURLToPath(new URL(`../dist/${entry}`, import.meta.url));
    if (!existsSync(file)) continue;
    const { bytes, files } = staticallyReached(file);
    rows.push({ group: GROUP, name: `dist/${entry}: code the import loads`, note: `${(bytes / 1024).toFixed(0)} KB in ${files} files (static imports of the package's own chunks)` });
  }
  return rows;
}

/** The package's own files an ESM entry reaches through static imports, and their size. */
export function staticallyReached(entry: string): { bytes: number; files: number } {
  const seen = new Map<string, number>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    const text = readFileSync(file, "utf8");
    seen.set(file, Buffer.byteLength(text));
    // Static `import … from "./x.js"`, `import "./x.js"`, `export … from "./x.js"` (minified or not); `import("./x.js")` is not followed.
    for (const match of text.matchAll(/\b(?:import|export)\s*(?:\{[^}]*\}|\*\s*as\s+[\w$]+|\*|[\w$]+(?:\s*,\s*\{[^}]*\})?)?\s*(?:from)?\s*["'](\.{1,2}\/[^"']+)["']/g)) pending.push(resolve(dirname(file), match[1]!));
  }
  let bytes = 0;
  for (const size of seen.values()) bytes += size;
  return { bytes, files: seen.size };
}
