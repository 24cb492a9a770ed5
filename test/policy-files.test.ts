import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { PolicyError, Warden, loadPolicyFile, parsePolicySet, parsePolicyText } from "agent-warden";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const designExample = fixture("warden.yaml");

const clients: Warden[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function open(policies: string): Warden {
  const client = new Warden({ agentId: "billing-agent", store: ":memory:", policies });
  clients.push(client);
  return client;
}

function policyError(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return error as PolicyError;
  }
  throw new Error("expected a PolicyError");
}

describe("the DESIGN.md example policy file", () => {
  it("loads with every policy, limit and default", () => {
    const set = loadPolicyFile(designExample);
    expect(set.version).toBe(1);
    expect(set.default).toBe("allow");
    expect(set.policies.map((p) => [p.id, p.action, p.mode])).toEqual([
      ["approve-prod-deploy", "require_approval", "enforce"],
      ["no-secret-access", "block", "enforce"],
      ["large-refunds", "require_approval", "enforce"],
      ["flag-writes", "warn", "shadow"],
    ]);
    expect(set.policies[0]).toMatchObject({ description: "Production deploys need a human", severity: "high", approval: { timeout: 15 * 60_000 }, when: { tool: "deploy", "args.environment": "production" } });
    expect(set.policies[2]!.when).toEqual({ tool: "payments.*", "args.amount": { gt: 50000 } });
    expect(set.limits).toEqual([{ id: "deploy-rate", tool: "deploy", max: 3, per: 3_600_000, scope: "agent", exceed: "block" }]);
  });

  it("decides as the comments in it say", () => {
    const client = open(designExample);
    expect(client.check({ tool: "deploy", args: { environment: "production" } })).toMatchObject({ action: "require_approval", policyId: "approve-prod-deploy", timeoutMs: 15 * 60_000, severity: "high" });
    expect(client.check({ tool: "deploy", args: { environment: "staging" } }).action).toBe("allow");
    expect(client.check({ tool: "get_secret", args: { name: "db" } })).toMatchObject({ action: "block", policyId: "no-secret-access" });
    expect(client.check({ tool: "payments.refund", args: { amount: 50001 } })).toMatchObject({ action: "require_approval", policyId: "large-refunds" });
    expect(client.check({ tool: "payments.refund", args: { amount: 50000 } }).action).toBe("allow");
    const write = client.check({ tool: "write_file", args: { path: "a" } });
    expect(write.action).toBe("allow");
    expect(write.matches).toEqual([expect.objectContaining({ policyId: "flag-writes", mode: "shadow", action: "warn" })]);
  });

  it("parses the same from text as from the file", () => {
    const text = `version: 1\ndefault: block\npolicies:\n  - id: reads\n    when: { tool: "read_*" }\n    action: allow\n`;
    expect(parsePolicyText(text)).toEqual(parsePolicySet({ version: 1, default: "block", policies: [{ id: "reads", when: { tool: "read_*" }, action: "allow" }] }));
  });
});

describe("a JSON policy file", () => {
  it("loads and decides, with its limits, budgets and exchange rates", async () => {
    const client = open(fixture("policies/valid.json"));
    expect(client.policies.default).toBe("block");
    expect(client.check({ tool: "delete_everything" }).action).toBe("block");
    expect(client.check({ tool: "read_file" })).toMatchObject({ action: "allow", policyId: "reads" });
    expect(client.check({ tool: "payments.refund", args: { amount: 60000, currency: "EUR" } })).toMatchObject({ action: "require_approval", policyId: "big-refunds", timeoutMs: 30 * 60_000 });
    expect(client.check({ tool: "payments.refund", args: { amount: 60000, currency: "GBP" } }).action).toBe("block");
    await client.run({}, async (run) => {
      await run.tool("payments.refund", { amount: 50000, currency: "EUR" }, () => "ok");
      await run.tool("payments.refund", { amount: 50000, currency: "USD" }, () => "ok"); // 45000 EUR, 95000 in all
      await expect(run.tool("payments.refund", { amount: 6000, currency: "USD" }, () => "ok")).rejects.toMatchObject({ code: "tool_blocked", policyId: "refund-budget" });
    });
  });
});

describe("invalid policy files", () => {
  it.each([
    ["unknown-operator.yaml", "big-refunds", "when.args.amount", 9, /greater/],
    ["bad-action.yaml", "no-rm", "action", 5, /allow.*warn.*block.*require_approval/],
    ["bad-regex.yaml", "prod-hosts", "when.args.url.matches", 6, /regular expression/],
    ["duplicate-ids.yaml", "no-rm", "id", 9, /duplicate id/],
    ["bad-when-key.yaml", "deploys", "when.arguments.environment", 6, /unknown condition "arguments\.environment"/],
    ["bad-duration.yaml", "deploys", "approval.timeout", 7, /invalid duration "soon"/],
    ["bad-limit.json", "deploy-rate", "max", 4, /too small/i],
  ])("%s names the file, policy %s, field %s and line %i", (name, policyId, field, line, message) => {
    const path = fixture(`policies/${name}`);
    const error = policyError(() => loadPolicyFile(path));
    expect(error.code).toBe("policy_invalid");
    expect(error.file).toBe(path);
    expect(error.policyId).toBe(policyId);
    expect(error.field).toBe(field);
    expect(error.line).toBe(line);
    expect(error.issues[0]).toMatchObject({ policyId, field, line });
    expect(error.message).toContain(`${path}:${line}`);
    expect(error.message).toContain(`policy "${policyId}"`);
    expect(error.message).toContain(`field "${field}"`);
    expect(error.message).toMatch(message);
  });

  it.each([
    ["syntax-error.yaml", 5],
    ["syntax-error.json", 4],
  ])("%s is a syntax error with its line", (name, line) => {
    const path = fixture(`policies/${name}`);
    const error = policyError(() => loadPolicyFile(path));
    expect(error.file).toBe(path);
    expect(error.line).toBe(line);
    expect(error.message).toContain(`${path}:${line}`);
  });

  it("a missing file is a PolicyError naming it", () => {
    const path = fixture("policies/does-not-exist.yaml");
    const error = policyError(() => loadPolicyFile(path));
    expect(error.file).toBe(path);
    expect(error.message).toContain(path);
    expect(error.message).toContain("ENOENT");
  });

  it("the client refuses an invalid file at construction, with the same error", () => {
    const path = fixture("policies/bad-action.yaml");
    const error = policyError(() => open(path));
    expect(error).toMatchObject({ file: path, policyId: "no-rm", field: "action" });
  });

  it("a policy set built in code is validated the same way, naming the policy and field", () => {
    const error = policyError(() => parsePolicySet({ policies: [{ id: "ok", action: "allow" }, { id: "bad", when: { "args.n": { gt: "five" } }, action: "block" }] }));
    expect(error.file).toBeUndefined();
    expect(error).toMatchObject({ policyId: "bad", field: "when.args.n.gt" });
    expect(error.message).toContain("expected number");
    const unnamed = policyError(() => parsePolicySet({ policies: [{ when: { tool: "x" }, action: "block" }] }));
    expect(unnamed).toMatchObject({ policyId: "policies[0]", field: "id" });
  });
});

describe("warden.setPolicies(path)", () => {
  it("loads a file, and keeps the current set when the file is invalid", () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-policies-"));
    dirs.push(dir);
    const path = join(dir, "warden.yaml");
    writeFileSync(path, "version: 1\npolicies:\n  - id: no-deploys\n    when: { tool: deploy }\n    action: block\n");
    const client = new Warden({ agentId: "billing-agent", store: ":memory:" });
    clients.push(client);
    expect(client.check({ tool: "deploy" }).action).toBe("allow");

    client.setPolicies(path);
    expect(client.check({ tool: "deploy" })).toMatchObject({ action: "block", policyId: "no-deploys" });

    copyFileSync(designExample, path);
    client.setPolicies(path);
    expect(client.check({ tool: "deploy", args: { environment: "production" } }).action).toBe("require_approval");
    expect(client.check({ tool: "deploy", args: {} }).action).toBe("allow");

    writeFileSync(path, "version: 1\npolicies:\n  - id: broken\n    action: sometimes\n");
    const error = policyError(() => client.setPolicies(path));
    expect(error).toMatchObject({ file: path, policyId: "broken", field: "action", line: 4 });
    expect(client.policies.policies.map((p) => p.id)).toContain("approve-prod-deploy");
  });
});
