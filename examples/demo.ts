// `npm run demo`: a scripted coding agent, governed end to end, offline.
// Shows an allowed read, a warned write, a blocked secret access and a production deploy that waits for a
// reviewer, then prints the run tree and verifies the ledger.
import { mkdirSync, rmSync } from "node:fs";
import { EventType, formatRunTree, ToolBlockedError, Warden } from "agent-warden";

const store = ".warden/demo.db";
rmSync(".warden/demo.db", { force: true });
rmSync(".warden/demo.db-wal", { force: true });
rmSync(".warden/demo.db-shm", { force: true });
mkdirSync(".warden", { recursive: true });

const warden = new Warden({ agentId: "coding-agent", policies: "examples/warden.yaml", store });

const color = (code: number) => (text: string) => (process.stdout.isTTY ? `\u001b[${code}m${text}\u001b[0m` : text);
const [dim, green, yellow, red, cyan] = [2, 32, 33, 31, 36].map(color) as [(t: string) => string, (t: string) => string, (t: string) => string, (t: string) => string, (t: string) => string];

warden.on("*", (event) => {
  const tool = typeof event.data.toolName === "string" ? ` ${event.data.toolName}` : "";
  const paint = event.type === EventType.TOOL_BLOCKED ? red : event.type === EventType.RISK_DETECTED ? yellow : event.type.startsWith("approval") ? cyan : dim;
  console.log(paint(`  · ${event.type}${tool}${event.data.reason ? ` — ${String(event.data.reason)}` : ""}`));
});

// The reviewer: another party using the same approvals API a person uses (`warden approve <id>` or the console).
const reviewer = setInterval(() => {
  for (const request of warden.approvals.list({ status: "pending" })) {
    console.log(cyan(`  reviewer sees: ${request.toolName}(${JSON.stringify(request.payload)}) — goal: "${request.agentContext?.goal}" — policy ${request.policyId}`));
    warden.approvals.approve(request.approvalId, { reviewer: "alice@example.com", reason: "inside the change window" });
  }
}, 200);

// What a model would ask for, one tool call at a time.
const files = new Map([["src/auth/session.ts", "export const ttl = 60;"]]);
const goal = "Fix the session expiry bug and ship it";

const runId = await warden.run(
  { task: "fix session expiry" },
  async (run) => {
    await run.step("analysis", async () => {
      console.log(green("agent: reading the session module"));
      await run.tool("read_file", { path: "src/auth/session.ts" }, () => files.get("src/auth/session.ts"));
    });
    await run.step("fix", async () => {
      console.log(yellow("agent: writing the fix (policy flag-writes warns)"));
      await run.tool("write_file", { path: "src/auth/session.ts", content: "export const ttl = 3600;" }, () => files.set("src/auth/session.ts", "export const ttl = 3600;").size);
      console.log(red("agent: trying to read the production database password (policy no-secret-access blocks)"));
      try {
        await run.tool("read_secret", { name: "prod/db-password" }, () => "hunter2");
      } catch (error) {
        if (!(error instanceof ToolBlockedError)) throw error;
        console.log(red(`agent: refused — ${error.reason}; carrying on without it`));
      }
    });
    await run.step("ship", async () => {
      console.log(cyan("agent: deploying to production (policy approve-prod-deploy waits for a human)"));
      const result = await run.tool("deploy", { environment: "production", service: "auth-api", token: "ghp_0123456789abcdefghijABCDEFGHIJ" }, () => ({ deployed: "auth-api@1.4.2" }), {
        agentContext: { goal, reasoning: "tests pass; the fix is one constant" },
      });
      console.log(green(`agent: ${result.deployed} is live`));
    });
    return run.runId;
  },
  { agentContext: { goal } },
);
clearInterval(reviewer);

console.log(`\n${await formatRunTree(await warden.getRun(runId))}\n`);
const ledger = warden.ledger.verify();
console.log(ledger.ok ? green(`ledger verified: ${ledger.entries} entries, hash chain intact, ${ledger.checkpoints} signed checkpoint(s)`) : red(`ledger BROKEN at entry ${ledger.firstBadSeq}`));
console.log(dim(`inspect it yourself: npm run warden -- --store ${store} run ${runId}`));
warden.close();
