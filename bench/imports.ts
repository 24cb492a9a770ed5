// Import time and first call, each in a fresh Node process, from the built package (`npx tsup` first):
// what an agent pays at start-up. Cases take turns, so each sees the same disk cache and load.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
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
  const rounds = quick ? 3 : 5;
  const times = new Map(present.map((c) => [c.name, { load: [] as number[], first: [] as number[], modules: 0 }]));
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < present.length; j++) {
      const c = present[(r + j) % present.length]!;
      const script = [
        "const t0 = performance.now();",
        `const m = await import(${JSON.stringify(c.specifier)});`,
        "const t1 = performance.now();",
        c.first,
        "const t2 = performance.now();",
        "process.stdout.write(JSON.stringify({ load: t1 - t0, first: t2 - t1 }));",
      ].join("\n");
      const out = execFileSync(process.execPath, ["--no-warnings", "--input-type=module", "-e", script], { cwd: root, encoding: "utf8" });
      const { load, first } = JSON.parse(out) as { load: number; first: number };
      const t = times.get(c.name)!;
      t.load.push(load);
      t.first.push(first);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const max = (values: number[]) => Math.max(...values);
  const rows: BenchRow[] = [];
  for (const c of present) {
    const t = times.get(c.name)!;
    rows.push({ group: GROUP, name: `${c.name}`, samples: rounds, medianUs: median(t.load) * 1000, p99Us: max(t.load) * 1000, note: "import only; p99 column = slowest" });
    rows.push({ group: GROUP, name: `${c.name}: first call`, samples: rounds, medianUs: median(t.first) * 1000, p99Us: max(t.first) * 1000, note: c.first.length > 70 ? `${c.first.slice(0, 67)}…` : c.first });
  }
  return rows;
}
