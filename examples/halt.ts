// A halt from another process stops a long-running agent mid-tool-call.
// Run: npx tsx examples/halt.ts
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HaltedError, Warden } from "agent-warden";

const dir = mkdtempSync(join(tmpdir(), "warden-halt-"));
const store = join(dir, "warden.db");
const warden = new Warden({ agentId: "batch-agent", store });

// An operator, in another process, pulls the emergency brake after one second.
setTimeout(() => {
  console.log("operator: warden halt --agent batch-agent --reason \"bad batch\"");
  spawn(process.execPath, ["--import", "tsx", "src/cli/bin.ts", "--store", store, "halt", "--agent", "batch-agent", "--reason", "bad batch"], { stdio: "inherit" });
}, 1000);

const started = Date.now();
try {
  await warden.run({ task: "re-price 10,000 products" }, async (run) => {
    await run.tool("reprice_products", { count: 10_000 }, async ({ signal }) => {
      for (let i = 0; i < 10_000; i++) {
        signal.throwIfAborted(); // the tool honours the signal; Warden would settle the call even if it did not
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (i % 100 === 0) process.stdout.write(".");
      }
    });
  });
} catch (error) {
  if (!(error instanceof HaltedError)) throw error;
  console.log(`\nagent stopped mid-tool-call after ${Date.now() - started} ms: ${error.message}`);
}

try {
  await warden.run({ task: "anything else" }, () => undefined);
} catch (error) {
  console.log(`new run refused: ${(error as Error).message}`);
}
warden.close();
rmSync(dir, { recursive: true, force: true });
