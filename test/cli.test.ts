// The `warden` CLI, run as its own process against a store an agent (this test) recorded into.
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ToolBlockedError, Warden, type ApprovalRecord, type LedgerVerification, type RunRecord, type RunSummary } from "agent-warden";
import { CliSession, runCli, tempDir } from "./fixtures/proc.js";

const POLICY_YAML = `version: 1
default: allow
policies:
  - id: approve-prod-deploy
    description: Production deploys need a human
    when:
      tool: deploy
      args.environment: production
    action: require_approval
    severity: high
    approval: { timeout: 15m }
  - id: no-secret-access
    when: { action: secret_access }
    action: block
  - id: flag-writes
    when: { tool: "write_*" }
    action: warn
    mode: shadow
limits:
  - id: deploy-rate
    tool: deploy
    max: 3
    per: 1h
    scope: agent
`;

const BAD_POLICY_YAML = `version: 1
default: allow
policies:
  - id: fine
    when: { tool: read_* }
    action: allow
  - id: bad-one
    when: { tool: deploy }
    action: explode
`;

const temp = tempDir("warden-cli-");
const store = join(temp.dir, "warden.db");
const policyFile = join(temp.dir, "warden.yaml");
const badPolicyFile = join(temp.dir, "bad.yaml");
const ids = { main: "", failed: "", pending: "", pendingApproval: "", pending2Approval: "" };

let tampered = 0;

/** A copy of the store (and its keys) with entry 5's data changed behind the ledger's back. */
function tamperedCopy(): string {
  const dir = join(temp.dir, `tampered-${++tampered}`);
  cpSync(join(temp.dir, "keys"), join(dir, "keys"), { recursive: true });
  const file = join(dir, "warden.db");
  const source = new DatabaseSync(store);
  source.prepare("VACUUM INTO ?").run(file);
  source.close();
  const db = new DatabaseSync(file);
  db.exec(`UPDATE ledger SET data = '{"toolName":"deploy","status":"approved"}' WHERE seq = 5`);
  db.close();
  return file;
}

let session: CliSession;
/** `warden --store <store> ...args`, through one long-lived CLI process; `runCli` starts the binary itself. */
const cli = (...args: string[]) => session.run(store, args);

beforeAll(async () => {
  session = new CliSession();
  writeFileSync(policyFile, POLICY_YAML);
  writeFileSync(badPolicyFile, BAD_POLICY_YAML);
  const warden = new Warden({
    agentId: "billing-agent",
    store,
    policies: policyFile,
    onApprovalRequest: (request, decide) => {
      if ((request.payload as { auto?: boolean }).auto) decide.approve({ reviewer: "alice", reason: "change window" });
    },
  });
  try {
    await warden.run(
      { task: "refund order 1042" },
      async (run) => {
        ids.main = run.runId;
        await run.step("analysis", () => run.tool("read_order", { id: 1042 }, () => ({ total: 28000 })));
        await run.step("act", async () => {
          await run.tool("write_note", { text: "refund approved" }, () => "ok");
          await run.tool("deploy", { environment: "production", auto: true }, () => "deployed");
          await expect(run.tool("read_secret", { name: "db" }, () => "hunter2")).rejects.toBeInstanceOf(ToolBlockedError);
        });
      },
      { agentContext: { goal: "refund the customer" } },
    );
    await warden
      .run({ task: "flaky" }, async (run) => {
        ids.failed = run.runId;
        await run.tool("read_inventory", {}, () => {
          throw new Error("inventory service down");
        });
      })
      .catch(() => {});
    ids.pending = await warden.startRun(undefined, { task: "release" }, undefined, { goal: "ship release 2.0" });
    const first = await warden.trackToolCall(ids.pending, "deploy", { environment: "production", version: "2.0.0", password: "p4ss" }, { agentContext: { goal: "ship release 2.0" } });
    const second = await warden.trackToolCall(ids.pending, "deploy", { environment: "production", version: "2.0.1" });
    ids.pendingApproval = warden.approvals.list({ status: "pending" }).find((a) => a.toolCallId === first)!.approvalId;
    ids.pending2Approval = warden.approvals.list({ status: "pending" }).find((a) => a.toolCallId === second)!.approvalId;
  } finally {
    warden.close();
  }
});

afterAll(async () => {
  await session?.close();
  temp.cleanup();
});

describe("warden runs / run", () => {
  it("`runs` lists runs newest first; --status filters; --json parses", async () => {
    const [text, failed, json] = await Promise.all([cli("runs"), cli("runs", "--status", "failed"), cli("--json", "runs")]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^${ids.pending}\\s+billing-agent\\s+running\\s`));
    expect(text.stdout).toMatch(new RegExp(`${ids.main}\\s+billing-agent\\s+completed`));
    expect(text.stdout).toMatch(new RegExp(`${ids.failed}\\s+billing-agent\\s+failed`));
    expect(failed.stdout.trim().split("\n")).toHaveLength(1);
    expect(failed.stdout).toContain(ids.failed);
    const runs = JSON.parse(json.stdout) as RunSummary[];
    expect(runs.map((r) => r.runId)).toEqual([ids.pending, ids.failed, ids.main]);
  });

  it("`run <id>` prints the tree: run ▸ steps ▸ tool calls with decision, matched policy and status", async () => {
    const result = await cli("run", ids.main);
    expect(result.code, result.stderr).toBe(0);
    const tree = result.stdout;
    expect(tree).toContain(`Run ${ids.main}  agent=billing-agent  COMPLETED`);
    expect(tree).toContain("├── Step: analysis  completed");
    expect(tree).toContain("│   └── read_order(id=1042)  ALLOWED  completed");
    expect(tree).toContain("└── Step: act  completed");
    expect(tree).toContain('write_note(text="refund approved")  ALLOWED  completed');
    expect(tree).toContain("Shadow: flag-writes would warn");
    expect(tree).toContain('deploy(environment="production", auto=true)  REQUIRES APPROVAL  completed');
    expect(tree).toContain("Policy: approve-prod-deploy");
    expect(tree).toContain("Approval: approved by alice (change window)");
    expect(tree).toContain('read_secret(name="db")  BLOCKED  blocked');
    expect(tree).toContain("Policy: no-secret-access");
    // Steps come in order, each call under its step.
    const order = ["Step: analysis", "read_order", "Step: act", "write_note", "deploy(", "read_secret"].map((s) => tree.indexOf(s));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it("`run <id>` shows a pending approval and a failed call", async () => {
    const [pending, failed] = await Promise.all([cli("run", ids.pending), cli("run", ids.failed)]);
    expect(pending.stdout).toContain("REQUIRES APPROVAL  awaiting_approval");
    expect(pending.stdout).toContain("Waiting for reviewer...");
    expect(failed.stdout).toContain(`Run ${ids.failed}  agent=billing-agent  FAILED`);
    expect(failed.stdout).toContain("read_inventory()  ALLOWED  failed");
  });

  it("`--json run <id>` parses into the run record", async () => {
    const run = JSON.parse((await cli("--json", "run", ids.main)).stdout) as RunRecord;
    expect(run).toMatchObject({ runId: ids.main, status: "completed", agentContext: { goal: "refund the customer" } });
    expect(run.steps.map((s) => s.name)).toEqual(["analysis", "act"]);
    expect(run.toolCalls.map((c) => [c.toolName, c.decision?.action, c.status])).toEqual([
      ["read_order", "allow", "completed"],
      ["write_note", "allow", "completed"],
      ["deploy", "require_approval", "completed"],
      ["read_secret", "block", "blocked"],
    ]);
  });

  it("an unknown run id exits 2 with a clear message (the binary)", async () => {
    const result = await runCli(store, ["run", "run_nope"]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe('[warden] run "run_nope" not found');
    expect(result.stdout).toBe("");
  });
});

describe("warden approvals / approve / reject", () => {
  it("`approvals` lists pending requests with the redacted payload, policy and goal", async () => {
    const result = await cli("approvals");
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    const line = lines.find((l) => l.startsWith(ids.pendingApproval))!;
    expect(line).toContain('billing-agent → deploy({"environment":"production","version":"2.0.0","password":"[REDACTED]"})');
    expect(line).toContain("policy=approve-prod-deploy");
    expect(line).toContain('goal="ship release 2.0"');
    expect(result.stdout).not.toContain("p4ss");
  });

  it("unknown ids exit 2 with a clear message", async () => {
    const [approve, reject] = await Promise.all([cli("approve", "apr_nope"), cli("reject", "apr_nope")]);
    for (const result of [approve, reject]) {
      expect(result.code).toBe(2);
      expect(result.stderr.trim()).toBe('[warden] approval "apr_nope" not found');
    }
  });

  it("`approve` and `reject` decide, once", async () => {
    const approved = await cli("approve", ids.pendingApproval, "--reviewer", "dana", "--reason", "looks good");
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout.trim()).toBe(`${ids.pendingApproval} approved by dana`);
    const rejected = await cli("--json", "reject", ids.pending2Approval, "--reason", "one is enough");
    expect(rejected.code, rejected.stderr).toBe(0);
    expect(JSON.parse(rejected.stdout)).toMatchObject({ approvalId: ids.pending2Approval, status: "rejected", reviewer: "tester", decisionReason: "one is enough" });

    const [again, pending, all] = await Promise.all([cli("reject", ids.pendingApproval), cli("approvals"), cli("--json", "approvals", "--status", "all")]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("is already approved");
    expect(pending.stdout.trim()).toBe("no pending approvals");
    const statuses = Object.fromEntries((JSON.parse(all.stdout) as ApprovalRecord[]).map((a) => [a.approvalId, a.status]));
    expect(statuses).toMatchObject({ [ids.pendingApproval]: "approved", [ids.pending2Approval]: "rejected" });
    expect(Object.values(statuses)).toHaveLength(3);
  });
});

describe("warden ledger", () => {
  it("`ledger verify` exits 0 on an intact ledger; --json parses", async () => {
    const [text, json] = await Promise.all([cli("ledger", "verify"), cli("--json", "ledger", "verify")]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ledger OK: \d+ entries, \d+ signed checkpoints, head [0-9a-f]{16}…/);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, entries: expect.any(Number) });
  });

  it("`ledger verify` exits 1 on a tampered ledger and names the entry (the binary)", async () => {
    const file = tamperedCopy();
    const [text, json] = await Promise.all([runCli(file, ["ledger", "verify"]), runCli(file, ["--json", "ledger", "verify"])]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^ledger BROKEN at entry 5: content does not match its hash \(modified\) \(4 entries verified before it\)/);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout) as LedgerVerification).toMatchObject({ ok: false, firstBadSeq: 5 });
  });

  it("a failed verify does not leak its exit code into the next command run in the same process", async () => {
    const file = tamperedCopy();
    expect((await session.run(file, ["ledger", "verify"])).code).toBe(1);
    const next = await cli("ledger", "verify");
    expect(next.stdout).toMatch(/^ledger OK/);
    expect(next.code).toBe(0);
  });

  it("`ledger export --out` writes one JSON line per entry; without --out it writes to stdout", async () => {
    const out = join(temp.dir, "ledger.jsonl");
    const [exported, stdout, verify] = await Promise.all([cli("ledger", "export", "--out", out), cli("ledger", "export"), cli("--json", "ledger", "verify")]);
    const entries = (JSON.parse(verify.stdout) as { entries: number }).entries;
    expect(exported.code).toBe(0);
    expect(exported.stderr.trim()).toBe(`wrote ${entries} entries to ${out}`);
    const lines = readFileSync(out, "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(entries);
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(Array.from({ length: entries }, (_, i) => i + 1));
    expect(stdout.stdout.trimEnd().split("\n")).toEqual(lines);
  });
});

describe("warden policy check", () => {
  it("a valid file exits 0 with a summary; --json parses", async () => {
    const [text, json] = await Promise.all([cli("policy", "check", policyFile), cli("--json", "policy", "check", policyFile)]);
    expect(text.code).toBe(0);
    expect(text.stdout.trim()).toBe(`${policyFile}: OK (3 policies, 1 limits, 0 budgets, default allow)`);
    expect(JSON.parse(json.stdout)).toEqual({ ok: true, policies: 3, limits: 1, budgets: 0 });
  });

  it("an invalid file exits 2 naming the file, the line, the policy and the field (the binary)", async () => {
    const result = await runCli(store, ["policy", "check", badPolicyFile]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${badPolicyFile}:9`);
    expect(result.stderr).toContain('policy "bad-one"');
    expect(result.stderr).toContain('field "action"');
    expect(result.stdout).toBe("");
  });

  it("a missing file exits 2", async () => {
    const result = await cli("policy", "check", join(temp.dir, "missing.yaml"));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("missing.yaml");
    expect(result.stderr).toContain("ENOENT");
  });

  it("--call prints the decision for a sample call", async () => {
    const [deploy, secret, read, json] = await Promise.all([
      cli("policy", "check", policyFile, "--call", '{"tool":"deploy","args":{"environment":"production"}}'),
      cli("policy", "check", policyFile, "--call", '{"tool":"vault.read"}'),
      cli("policy", "check", policyFile, "--call", '{"tool":"write_file","args":{}}'),
      cli("--json", "policy", "check", policyFile, "--call", '{"tool":"deploy","args":{"environment":"staging"}}'),
    ]);
    expect(deploy.stdout.trim().split("\n")).toEqual(["decision: require_approval (policy approve-prod-deploy: Production deploys need a human)", "  matched approve-prod-deploy: require_approval"]);
    expect(secret.stdout).toMatch(/^decision: block \(policy no-secret-access/);
    expect(read.stdout.trim().split("\n")).toEqual(["decision: allow (default)", "  matched flag-writes: warn [shadow]"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ action: "allow", matches: [] });
  });

  it("a bad --call exits 2 with a clear message", async () => {
    const [notJson, noTool] = await Promise.all([cli("policy", "check", policyFile, "--call", "{nope"), cli("policy", "check", policyFile, "--call", '{"args":{}}')]);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr.trim()).toBe("warden: --call is not valid JSON");
    expect(noTool.code).toBe(2);
    expect(noTool.stderr.trim()).toBe('warden: --call needs a "tool" string');
  });
});

describe("warden token", () => {
  const tokenStore = join(temp.dir, "tokens", "warden.db");
  const tcli = (...args: string[]) => session.run(tokenStore, args);

  it("mint, attenuate, inspect, verify, revoke, jwk", async () => {
    const minted = await tcli("token", "mint", "--agent", "travel-agent", "--scopes", "flights:*,hotels:search", "--ttl", "1h", "--max-amount", "50000EUR", "--depth", "3");
    expect(minted.code, minted.stderr).toBe(0);
    const root = minted.stdout.trim();
    expect(root).toMatch(/^\S+$/);

    const child = (await tcli("token", "attenuate", root, "--audience", "travel-agent/booking-agent", "--scopes", "flights:book", "--max-amount", "20000EUR", "--ttl", "10m")).stdout.trim();
    const sealed = (await tcli("token", "attenuate", child, "--scopes", "flights:book", "--seal")).stdout.trim();

    const [verifyRoot, verifyChild, verifyJson, wrongAudience, widened, inspected, sealedAgain, jwk] = await Promise.all([
      tcli("token", "verify", root, "--audience", "travel-agent"),
      tcli("token", "verify", child, "--audience", "travel-agent/booking-agent"),
      tcli("--json", "token", "verify", sealed, "--audience", "travel-agent/booking-agent"),
      tcli("token", "verify", child, "--audience", "someone-else"),
      tcli("token", "attenuate", child, "--scopes", "payments:*"),
      tcli("token", "inspect", child),
      tcli("token", "attenuate", sealed, "--scopes", "flights:book"),
      tcli("token", "jwk"),
    ]);
    expect(verifyRoot.code, verifyRoot.stderr).toBe(0);
    expect(verifyRoot.stdout).toMatch(/^valid: agent=travel-agent scopes=flights:\*,hotels:search max=50000EUR depth=3 expires=/);
    expect(verifyChild.code, verifyChild.stderr).toBe(0);
    expect(verifyChild.stdout).toMatch(/^valid: agent=travel-agent\/booking-agent scopes=flights:book max=20000EUR depth=2 /);
    const verified = JSON.parse(verifyJson.stdout) as { authority: { agentId: string; scopes: string[] }; sealed: boolean };
    expect(verified).toMatchObject({ authority: { agentId: "travel-agent/booking-agent", scopes: ["flights:book"] }, sealed: true });
    expect(wrongAudience.code).toBe(1);
    expect(wrongAudience.stderr).toContain("wrong_audience");
    expect(widened.code).toBe(1);
    expect(widened.stderr).toContain("widened");
    expect(sealedAgain.code).toBe(1);
    expect(sealedAgain.stderr).toContain("sealed");
    const inspection = JSON.parse(inspected.stdout) as { id: string; sealed: boolean; chain: unknown[] };
    expect(inspection.sealed).toBe(false);
    expect(inspection.chain).toHaveLength(2);
    const key = JSON.parse(jwk.stdout) as Record<string, string>;
    expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", x: expect.any(String), kid: expect.any(String) });
    expect(key.d).toBeUndefined();

    const revoked = await tcli("token", "revoke", inspection.id, "--reason", "leaked");
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe(`revoked ${inspection.id}`);
    // An id minted by an earlier version may start with "-": `--` ends the options.
    const dashed = await tcli("token", "revoke", "--reason", "leaked", "--", "-dqHIItfT8H5wkOBMsTqnQ");
    expect(dashed.code, dashed.stderr).toBe(0);
    expect(dashed.stdout.trim()).toBe("revoked -dqHIItfT8H5wkOBMsTqnQ");
    const [afterRoot, afterChild] = await Promise.all([tcli("token", "verify", root), tcli("token", "verify", child)]);
    for (const result of [afterRoot, afterChild]) {
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("revoked");
    }
  });

  it("a halt invalidates tokens issued before it", async () => {
    const token = (await tcli("token", "mint", "--agent", "ops-agent", "--scopes", "deploy:*")).stdout.trim();
    expect((await tcli("token", "verify", token)).code).toBe(0);
    expect((await tcli("halt", "--agent", "ops-agent", "--reason", "compromised")).code).toBe(0);
    await tcli("resume", "--agent", "ops-agent");
    const after = await tcli("token", "verify", token);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain("halted");
  });

  it("bad input exits 2", async () => {
    const [money, missing, garbage] = await Promise.all([
      tcli("token", "mint", "--agent", "a", "--scopes", "x:*", "--max-amount", "12.50EUR"),
      tcli("token", "mint", "--scopes", "x:*"),
      tcli("token", "inspect", "not-a-token"),
    ]);
    expect(money.code).toBe(2);
    expect(money.stderr).toContain('invalid amount "12.50EUR"');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--agent");
    expect([1, 2]).toContain(garbage.code);
    expect(garbage.stderr).toContain("malformed");
  });
});

describe("usage", () => {
  it("an unknown command exits 2; --help exits 0 (the binary)", async () => {
    const [unknown, help] = await Promise.all([runCli(store, ["frobnicate"]), runCli(store, ["--help"])]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("ledger");
  });
});
