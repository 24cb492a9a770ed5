// `npm run bench`: every benchmark, peers side by side, one table. `npm run bench -- policy core` runs a subset.
import { existsSync } from "node:fs";
import { printTable, type BenchRow } from "./harness.js";

const suites = ["imports", "policy", "core", "ledger-verify", "tokens", "halt", "adapter-langchain", "adapter-ai", "adapter-openai-agents", "adapter-mcp", "adapter-mcp-multi", "mcp-gateway", "adapter-express", "adapter-fetch", "otel", "server", "ingest", "cluster", "evidence"];
const wanted = process.argv.slice(2);
const rows: BenchRow[] = [];
for (const suite of suites) {
  if (wanted.length > 0 && !wanted.includes(suite)) continue;
  if (!existsSync(new URL(`./${suite}.ts`, import.meta.url))) continue;
  const started = performance.now();
  try {
    const module = (await import(`./${suite}.js`)) as { run: () => Promise<BenchRow[]> };
    rows.push(...(await module.run()));
    console.error(`  ${suite}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    console.error(`  ${suite}: failed: ${(error as Error).stack ?? error}`);
    process.exitCode = 1;
  }
}
console.log(`\nagent-warden benchmarks — Node ${process.version}, ${process.platform}/${process.arch}\n`);
printTable(rows);
process.exit();
