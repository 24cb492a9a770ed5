#!/usr/bin/env node
// Replays a newcomer's first hour on a clean folder, with only what the README says: the packed
// tarball installed with npm, the quick start with its approval answered from the CLI, one framework
// snippet (outbound HTTP through agent-warden/fetch), the coding-agent hook recipe, and
// `warden serve` + `warden policy push` + a remote agent blocked by the pushed policy.
// Needs the npm registry for the package's dependencies. Exit 0 when every step behaves as documented.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = join(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "warden-newcomer-"));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const npx = process.platform === "win32" ? "npx.cmd" : "npx";
const started = Date.now();
const step = (text) => console.log(`\n▸ ${text} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
const fail = (text) => {
  console.error(`✗ ${text}`);
  process.exitCode = 1;
  throw new Error(text);
};
const run = (command, args, options = {}) => execFileSync(command, args, { cwd: work, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], ...options });

/** Runs a command to its end, answering { code, stdout, stderr }; `onStderr` sees stderr as it comes. */
function spawnRun(command, args, { input, onStderr, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: work, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk) => {
      stderr += chunk;
      onStderr?.(stderr, child);
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/**
 * Whether dist/ was built after every input of the build changed (CI builds right before the tests).
 * Then `npm pack` packs it as it is, skipping a second, identical `prepare` build; otherwise prepare builds it.
 */
function distIsFresh() {
  const files = (dir) => readdirSync(join(repo, dir), { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
  if (!existsSync(join(repo, "dist", "index.js")) || !existsSync(join(repo, "dist", "cli.js"))) return false;
  const built = Math.min(...files("dist").map((file) => statSync(file).mtimeMs));
  const inputs = [...files("src"), ...files("adapters"), ...["package.json", "tsup.config.ts", "tsconfig.json"].map((file) => join(repo, file))];
  return inputs.every((file) => statSync(file).mtimeMs < built);
}

const POLICIES = `version: 1
default: allow
policies:
  - id: no-secret-access
    when: { action: secret_access }
    action: block
  - id: large-refunds
    when:
      tool: "payments.*"
      args.amount: { gt: 50000 }
    action: require_approval
  - id: no-force-push
    description: Force pushes rewrite shared history
    when: { tool: Bash, args.command: { contains: "push --force" } }
    action: block
  - id: egress
    when: { tool: "http.post", args.path: /admin }
    action: block
`;

try {
  const fresh = distIsFresh();
  step(fresh ? "npm pack (dist/ is newer than every source: packed as built)" : "npm pack (the prepare script builds dist/)");
  const packed = run(npm, ["pack", "--pack-destination", work, "--silent", ...(fresh ? ["--ignore-scripts"] : [])], { cwd: repo }).trim().split("\n").pop();
  const tarball = join(work, packed);

  step(`npm install ${packed} ofetch (a clean project, "type": "module")`);
  writeFileSync(join(work, "package.json"), JSON.stringify({ name: "newcomer", private: true, type: "module" }, null, 2));
  run(npm, ["install", "--no-audit", "--no-fund", tarball, "ofetch"], { stdio: "inherit" });
  writeFileSync(join(work, "warden.yaml"), POLICIES);

  step("quick start: the refund waits, says so, and is approved from the CLI");
  writeFileSync(
    join(work, "quickstart.mjs"),
    `import { Warden } from "agent-warden";
const warden = new Warden({ agentId: "billing-agent", policies: "./warden.yaml" });
await warden.run({ task: "refund order 1042" }, async (run) => {
  const order = await run.tool("read_order", { id: 1042 }, () => ({ id: 1042, total: 68000 }));
  await run.tool("payments.refund", { amount: order.total, currency: "EUR" }, () => "refunded");
});
console.log("refund done");
warden.close();
`,
  );
  let approved = false;
  const quick = await spawnRun(process.execPath, ["quickstart.mjs"], {
    onStderr: (stderr) => {
      const id = /waiting for approval (apr_[\w-]+)/.exec(stderr)?.[1];
      if (id === undefined || approved) return;
      approved = true;
      const answer = run(npx, ["--no-install", "warden", "approve", id, "--reason", "smoke test"]);
      console.log(`  ${stderr.trim()}\n  npx warden approve ${id} → ${answer.trim()}`);
    },
  });
  if (quick.code !== 0 || !quick.stdout.includes("refund done")) fail(`the quick start did not finish after its approval:\n${quick.stderr}`);
  if (!approved) fail("the quick start never said that it waits for approval");

  step("framework snippet: agent-warden/fetch blocks a POST to /admin before it is sent");
  let reached = 0;
  const api = createServer((request, response) => {
    reached++;
    response.setHeader("content-type", "application/json").end(JSON.stringify({ ok: true, path: request.url }));
  });
  await new Promise((resolve) => api.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${api.address().port}`;
  writeFileSync(
    join(work, "fetch.mjs"),
    `import { Warden, ToolBlockedError } from "agent-warden";
import { createGovernedFetch } from "agent-warden/fetch";
const warden = new Warden({ agentId: "http-agent", policies: "./warden.yaml", store: ":memory:" });
const http = createGovernedFetch(warden, { defaults: { baseURL: ${JSON.stringify(base)} } });
console.log(JSON.stringify(await http("/orders", { method: "POST", body: { id: 1 } })));
try { await http("/admin", { method: "POST", body: { drop: true } }); console.log("NOT BLOCKED"); }
catch (error) { console.log(error instanceof ToolBlockedError ? "blocked: " + error.message : "other: " + error); }
warden.close();
`,
  );
  const fetched = await spawnRun(process.execPath, ["fetch.mjs"]);
  api.close();
  if (!fetched.stdout.includes('"path":"/orders"') || !fetched.stdout.includes('blocked: [warden] tool "http.post" blocked by policy "egress"') || reached !== 1) fail(`the fetch snippet did not behave as documented:\n${fetched.stdout}\n${fetched.stderr}`);

  step("hook recipe: npx --no-install warden hook pre-tool-use blocks a force push (exit 2) and lets a read run (exit 0)");
  const event = (command, id) => JSON.stringify({ session_id: "smoke", hook_event_name: "PreToolUse", tool_name: "Bash", tool_input: { command }, tool_use_id: id });
  const blocked = await spawnRun(npx, ["--no-install", "warden", "hook", "pre-tool-use", "--policies", "./warden.yaml"], { input: event("git push --force origin main", "toolu_1") });
  const allowed = await spawnRun(npx, ["--no-install", "warden", "hook", "pre-tool-use", "--policies", "./warden.yaml"], { input: event("git status", "toolu_2") });
  if (blocked.code !== 2 || !blocked.stderr.includes("no-force-push") || allowed.code !== 0) fail(`the hook did not answer as documented: ${blocked.code} ${blocked.stderr} / ${allowed.code} ${allowed.stderr}`);

  step("warden serve, warden policy push, a remote agent blocked by the pushed policy");
  const db = join(work, "control.db");
  // The server itself, not npx in front of it: stopping npx would leave the server holding this script's pipes.
  const cli = join(work, "node_modules", "agent-warden", "dist", "cli.js");
  const serve = spawn(process.execPath, [cli, "--org", "acme", "serve", "--port", "0", "--db", db], { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
  try {
    let out = "";
    const { url, admin } = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`warden serve did not start:\n${out}`)), 30_000);
      serve.stdout.setEncoding("utf8").on("data", (chunk) => {
        out += chunk;
        const url = /on (http:\/\/\S+) /.exec(out)?.[1];
        const admin = /^\s+(wdn_\S+)$/m.exec(out)?.[1];
        if (url && admin && out.includes("warden policy push")) {
          clearTimeout(timer);
          resolve({ url, admin });
        }
      });
    });
    const pushed = run(npx, ["--no-install", "warden", "policy", "push", "warden.yaml", "--url", url, "--api-key", admin]);
    console.log(`  ${pushed.trim().replaceAll("\n", "\n  ")}`);
    if (!pushed.startsWith("published version 1 (was 0)")) fail(`policy push said: ${pushed}`);
    const agentKey = JSON.parse(run(npx, ["--no-install", "warden", "--org", "acme", "--json", "keys", "create", "--role", "agent", "--db", db, "--name", "billing-bot"])).key;
    writeFileSync(
      join(work, "remote.mjs"),
      `import { Warden, ToolBlockedError } from "agent-warden";
const warden = new Warden({ agentId: "billing-agent", url: process.env.WARDEN_URL, apiKey: process.env.WARDEN_API_KEY });
if (!(await warden.ready())) throw new Error("control plane unreachable");
try { await warden.run({ task: "read the vault" }, (run) => run.tool("read_secret", { name: "STRIPE_KEY" }, () => "leaked")); console.log("NOT BLOCKED"); }
catch (error) { console.log(error instanceof ToolBlockedError ? "blocked: " + error.message : "other: " + error); }
await warden.shutdown();
`,
    );
    const remote = await spawnRun(process.execPath, ["remote.mjs"], { env: { WARDEN_URL: url, WARDEN_API_KEY: agentKey } });
    if (!remote.stdout.includes('blocked: [warden] tool "read_secret" blocked by policy "no-secret-access"')) fail(`the remote agent was not blocked:\n${remote.stdout}\n${remote.stderr}`);
  } finally {
    serve.kill("SIGTERM");
    serve.stdout.destroy();
    serve.stderr.destroy();
  }
  console.log(`\n✓ the newcomer's path works (${((Date.now() - started) / 1000).toFixed(1)} s) in ${work}`);
} catch (error) {
  if (!process.exitCode) console.error(error);
  process.exitCode = 1;
} finally {
  if (process.exitCode === 0 || process.exitCode === undefined) rmSync(work, { recursive: true, force: true });
}
