import { afterEach, describe, expect, it } from "vitest";
import { PolicyEngine, ToolBlockedError, Warden, parsePolicySet, type Condition, type PolicyInput, type PolicySetInput, type WardenEvent, type WardenOptions } from "agent-warden";

const clients: Warden[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function warden(policies: PolicySetInput, options: Partial<WardenOptions> = {}): Warden {
  const client = new Warden({ agentId: "billing-agent", store: ":memory:", policies, ...options });
  clients.push(client);
  return client;
}

/** A client whose only policy blocks `probe` calls meeting `condition` on `field`. */
function onePolicy(field: string, condition: Condition): Warden {
  return warden({ policies: [{ id: "p", when: { tool: "probe", [field]: condition }, action: "block" }] });
}

const sample = {
  amount: 28000,
  text: "28000",
  currency: "EUR",
  tags: ["urgent", "refund"],
  note: "customer asked twice",
  flag: false,
  none: null,
  order: { id: 1042, customer: { tier: "gold", country: "DE" }, items: [{ sku: "A-1", qty: 2 }, { sku: "B-7", qty: 1 }] },
};

// [field path under args./metadata., condition, expected match]
const operatorCases: Array<[string, Condition, boolean]> = [
  ["currency", "EUR", true],
  ["currency", "USD", false],
  ["amount", 28000, true],
  ["currency", { eq: "EUR" }, true],
  ["currency", { eq: "eur" }, false],
  ["amount", { eq: "28000" }, false],
  ["none", { eq: null }, true],
  ["missing", { eq: null }, false],
  ["flag", { eq: false }, true],
  ["currency", { ne: "USD" }, true],
  ["currency", { ne: "EUR" }, false],
  ["currency", { in: ["USD", "EUR"] }, true],
  ["currency", { in: ["USD", "GBP"] }, false],
  ["amount", { in: [28000, 1] }, true],
  ["currency", { not_in: ["USD", "GBP"] }, true],
  ["currency", { not_in: ["EUR"] }, false],
  ["note", { contains: "asked" }, true],
  ["note", { contains: "refund" }, false],
  ["tags", { contains: "urgent" }, true],
  ["tags", { contains: "urg" }, false],
  ["amount", { contains: 28 }, false],
  ["note", { matches: "^customer\\s+asked" }, true],
  ["note", { matches: "^asked" }, false],
  ["amount", { matches: "^28\\d{3}$" }, true],
  ["order", { matches: ".*" }, false],
  ["currency", { exists: true }, true],
  ["missing", { exists: true }, false],
  ["missing", { exists: false }, true],
  ["none", { exists: false }, true],
  ["flag", { exists: true }, true],
  ["amount", { gt: 27999 }, true],
  ["amount", { gt: 28000 }, false],
  ["text", { gt: 27999 }, true],
  ["currency", { gt: 0 }, false],
  ["missing", { gt: -1 }, false],
  ["amount", { gte: 28000 }, true],
  ["amount", { gte: 28001 }, false],
  ["amount", { lt: 28001 }, true],
  ["amount", { lt: 28000 }, false],
  ["missing", { lt: 1 }, false],
  ["amount", { lte: 28000 }, true],
  ["amount", { lte: 27999 }, false],
  ["amount", { gt: 10000, lte: 50000 }, true],
  ["amount", { gt: 10000, lt: 20000 }, false],
  ["order.id", 1042, true],
  ["order.customer.tier", { in: ["gold", "platinum"] }, true],
  ["order.customer.country", { ne: "DE" }, false],
  ["order.items.0.sku", "A-1", true],
  ["order.items.1.qty", { gte: 2 }, false],
  ["order.customer.missing.deeper", { exists: false }, true],
  ["currency.length", { exists: true }, false],
];

describe("condition operators", () => {
  it.each(operatorCases)("args.%s %j → %s", (path, condition, expected) => {
    const client = onePolicy(`args.${path}`, condition);
    expect(client.check({ tool: "probe", args: sample }).action).toBe(expected ? "block" : "allow");
    // the same condition on other arguments does not leak
    expect(client.check({ tool: "other", args: sample }).action).toBe("allow");
  });

  it.each(operatorCases)("metadata.%s %j → %s", (path, condition, expected) => {
    const client = onePolicy(`metadata.${path}`, condition);
    expect(client.check({ tool: "probe", args: {}, metadata: sample }).action).toBe(expected ? "block" : "allow");
  });

  it("reads args.<path> from the arguments and metadata.<path> from the metadata, never the other", () => {
    const byArgs = onePolicy("args.currency", "EUR");
    expect(byArgs.check({ tool: "probe", args: {}, metadata: { currency: "EUR" } }).action).toBe("allow");
    const byMetadata = onePolicy("metadata.currency", "EUR");
    expect(byMetadata.check({ tool: "probe", args: { currency: "EUR" } }).action).toBe("allow");
    expect(byMetadata.check({ tool: "probe", args: { currency: "EUR" }, metadata: { currency: "EUR" } }).action).toBe("block");
  });

  it("treats a missing value as unequal to anything and outside any list", () => {
    expect(onePolicy("args.currency", { ne: "EUR" }).check({ tool: "probe", args: {} }).action).toBe("block");
    expect(onePolicy("args.currency", { not_in: ["EUR"] }).check({ tool: "probe", args: {} }).action).toBe("block");
    expect(onePolicy("args.currency", { in: ["EUR"] }).check({ tool: "probe", args: {} }).action).toBe("allow");
    expect(onePolicy("args.currency", { contains: "E" }).check({ tool: "probe", args: {} }).action).toBe("allow");
  });

  it("AND-s every condition of a policy", () => {
    const client = warden({ policies: [{ id: "p", when: { tool: "probe", "args.currency": "EUR", "args.amount": { gt: 100 }, "metadata.channel": "chat" }, action: "block" }] });
    expect(client.check({ tool: "probe", args: { currency: "EUR", amount: 101 }, metadata: { channel: "chat" } }).action).toBe("block");
    expect(client.check({ tool: "probe", args: { currency: "EUR", amount: 101 }, metadata: { channel: "mail" } }).action).toBe("allow");
    expect(client.check({ tool: "probe", args: { currency: "USD", amount: 101 }, metadata: { channel: "chat" } }).action).toBe("allow");
    expect(client.check({ tool: "probe", args: { currency: "EUR", amount: 100 }, metadata: { channel: "chat" } }).action).toBe("allow");
  });

  it("evaluates conditions against the arguments the call was made with, whatever their shape", () => {
    const client = onePolicy("args.amount", { gt: 0 });
    for (const args of [undefined, null, 42, "text", [1, 2], { amount: { nested: 1 } }]) expect(client.check({ tool: "probe", args }).action).toBe("allow");
  });
});

describe("tool, action, agent and environment conditions", () => {
  const globs = warden({
    policies: [
      { id: "payments", when: { tool: "payments.*" }, action: "require_approval" },
      { id: "writes", when: { tool: "write_*" }, action: "warn" },
      { id: "listed", when: { tool: ["rm", "drop_table"] }, action: "block" },
      { id: "one-char", when: { tool: "tmp?" }, action: "block" },
    ],
  });

  it.each([
    ["payments.refund", "require_approval", "payments"],
    ["payments.refund.partial", "require_approval", "payments"],
    ["payments", "allow", undefined],
    ["paymentsXrefund", "allow", undefined],
    ["write_file", "warn", "writes"],
    ["write_", "warn", "writes"],
    ["overwrite_file", "allow", undefined],
    ["rm", "block", "listed"],
    ["drop_table", "block", "listed"],
    ["rmdir", "allow", undefined],
    ["tmp1", "block", "one-char"],
    ["tmp12", "allow", undefined],
  ])("%s → %s", (tool, action, policyId) => {
    const decision = globs.check({ tool });
    expect(decision.action).toBe(action);
    expect(decision.policyId).toBe(policyId);
  });

  it("matches an action given as actionHint, and one inferred from the tool name", () => {
    const client = warden({ policies: [{ id: "no-secret-access", when: { action: "secret_access" }, action: "block" }, { id: "deploys", when: { action: ["deploy", "db_migrate"] }, action: "warn" }] });
    expect(client.check({ tool: "get_secret" })).toMatchObject({ action: "block", actionType: "secret_access", policyId: "no-secret-access" });
    expect(client.check({ tool: "vault.read" }).action).toBe("block");
    expect(client.check({ tool: "fetch_thing" })).toMatchObject({ action: "allow", actionType: "unknown" });
    expect(client.check({ tool: "fetch_thing", actionHint: "secret_access" })).toMatchObject({ action: "block", actionType: "secret_access" });
    expect(client.check({ tool: "get_secret", actionHint: "api_write" })).toMatchObject({ action: "allow", actionType: "api_write" });
    expect(client.check({ tool: "deploy_service" })).toMatchObject({ action: "warn", actionType: "deploy" });
    expect(client.check({ tool: "run_migrations" })).toMatchObject({ action: "warn", actionType: "db_migrate" });
  });

  it("classifies a tool name the same however many other names came before it", () => {
    const client = warden({ policies: [{ id: "no-secret-access", when: { action: "secret_access" }, action: "block" }] });
    // More never-seen names than the classification cache holds, twice over, with known names between them.
    for (let i = 0; i < 25_000; i++) {
      expect(client.check({ tool: `fetch_${i}` }).actionType).toBe("unknown");
      if (i % 997 === 0) expect(client.check({ tool: "get_secret" })).toMatchObject({ action: "block", actionType: "secret_access" });
      if (i % 1_499 === 0) expect(client.check({ tool: `vault_${i}` })).toMatchObject({ action: "block", actionType: "secret_access" });
    }
    expect(client.check({ tool: "fetch_3" }).actionType).toBe("unknown");
  });

  it("records the action type on the tool call", async () => {
    const client = warden({ policies: [{ id: "no-secret-access", when: { action: "secret_access" }, action: "block" }] });
    const runId = await client.startRun();
    await client.trackToolCall(runId, "get_secret", { name: "db" });
    await client.trackToolCall(runId, "lookup", { name: "db" }, { actionHint: "secret_access" });
    const run = await client.getRun(runId);
    expect(run.toolCalls.map((t) => [t.actionType, t.status])).toEqual([
      ["secret_access", "blocked"],
      ["secret_access", "blocked"],
    ]);
  });

  it("matches the agent (glob) of the call", async () => {
    const client = warden({ policies: [{ id: "interns", when: { agent: "intern-*", tool: "refund" }, action: "block" }] });
    expect(client.check({ tool: "refund" }).action).toBe("allow");
    expect(client.check({ tool: "refund", agentId: "intern-7" }).action).toBe("block");
    await client.run({}, async (run) => {
      await expect(run.tool("refund", {}, () => "done")).resolves.toBe("done");
    });
    await client.run(
      {},
      async (run) => {
        await expect(run.tool("refund", {}, () => "done")).rejects.toBeInstanceOf(ToolBlockedError);
      },
      { agentId: "intern-3" },
    );
  });

  it("matches the environment of the client or of the call", () => {
    const set: PolicySetInput = { policies: [{ id: "prod-only", when: { environment: ["production", "prod-*"], tool: "deploy" }, action: "require_approval" }] };
    expect(warden(set).check({ tool: "deploy" }).action).toBe("allow");
    expect(warden(set, { environment: "production" }).check({ tool: "deploy" }).action).toBe("require_approval");
    expect(warden(set, { environment: "prod-eu" }).check({ tool: "deploy" }).action).toBe("require_approval");
    expect(warden(set, { environment: "staging" }).check({ tool: "deploy" }).action).toBe("allow");
    expect(warden(set, { environment: "staging" }).check({ tool: "deploy", environment: "production" }).action).toBe("require_approval");
  });
});

describe("strictest wins", () => {
  const ladder: PolicyInput[] = [
    { id: "w", when: { tool: "t" }, action: "warn", reason: "warned" },
    { id: "b", when: { tool: "t", "args.x": 1 }, action: "block", reason: "blocked" },
    { id: "a", when: { tool: "t" }, action: "allow" },
    { id: "r", when: { tool: "t", "args.y": { exists: true } }, action: "require_approval", reason: "approve" },
    { id: "b2", when: { tool: "t*" }, action: "block", reason: "second block" },
    { id: "other", when: { tool: "u" }, action: "block" },
  ];

  it("lists every match in order and reports the deciding one", () => {
    const client = warden({ policies: ladder.slice(0, 4) });
    let d = client.check({ tool: "t", args: { x: 1, y: 1 } });
    expect(d).toMatchObject({ action: "block", policyId: "b", reason: "blocked" });
    expect(d.matches.map((m) => m.policyId)).toEqual(["w", "b", "a", "r"]);
    d = client.check({ tool: "t", args: { y: 1 } });
    expect(d).toMatchObject({ action: "require_approval", policyId: "r", reason: "approve" });
    expect(d.matches.map((m) => m.policyId)).toEqual(["w", "a", "r"]);
    d = client.check({ tool: "t", args: {} });
    expect(d).toMatchObject({ action: "warn", policyId: "w", reason: "warned" });
    expect(d.matches.map((m) => [m.policyId, m.action, m.mode, m.kind])).toEqual([
      ["w", "warn", "enforce", "policy"],
      ["a", "allow", "enforce", "policy"],
    ]);
  });

  it("keeps the first of equally strict matches as the decider", () => {
    const client = warden({ policies: ladder });
    const d = client.check({ tool: "t", args: { x: 1 } });
    expect(d).toMatchObject({ action: "block", policyId: "b" });
    expect(d.matches.map((m) => m.policyId)).toEqual(["w", "b", "a", "b2"]);
  });

  it("applies the default action when nothing matches: allow or block", () => {
    const allow = warden({ default: "allow", policies: ladder });
    expect(allow.check({ tool: "v" })).toMatchObject({ action: "allow", policyId: undefined, matches: [] });
    const block = warden({ default: "block", policies: ladder });
    const d = block.check({ tool: "v" });
    expect(d).toMatchObject({ action: "block", policyId: undefined, matches: [] });
    expect(d.reason).toContain("default");
    // an enforced allow overrides a deny-by-default
    expect(warden({ default: "block", policies: [{ id: "reads", when: { tool: "read_*" }, action: "allow" }] }).check({ tool: "read_file" })).toMatchObject({ action: "allow", policyId: "reads" });
  });

  it("uses the default when only shadow policies match", () => {
    const client = warden({ default: "warn", policies: [{ id: "s", when: { tool: "t" }, action: "block", mode: "shadow" }] });
    const d = client.check({ tool: "t" });
    expect(d.action).toBe("warn");
    expect(d.policyId).toBeUndefined();
    expect(d.matches).toEqual([expect.objectContaining({ policyId: "s", action: "block", mode: "shadow" })]);
  });

  it("carries the approval timeout of the deciding policy", () => {
    const client = warden({ policies: [{ id: "r", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "15m" } }, { id: "r2", when: { tool: "rollback" }, action: "require_approval" }] }, { approvalTimeout: "2m" });
    expect(client.check({ tool: "deploy" })).toMatchObject({ action: "require_approval", timeoutMs: 15 * 60_000 });
    expect(client.check({ tool: "rollback" })).toMatchObject({ action: "require_approval", timeoutMs: 2 * 60_000 });
  });
});

describe("shadow mode and disabled policies", () => {
  it("records a shadow match without enforcing it", async () => {
    const client = warden({ policies: [{ id: "flag-writes", when: { tool: "write_*" }, action: "block", mode: "shadow" }] });
    const result = await client.run({}, (run) => run.tool("write_file", { path: "a" }, () => "written"));
    expect(result).toBe("written");
    const [summary] = client.listRuns();
    const run = await client.getRun(summary!.runId);
    const tc = run.toolCalls[0]!;
    expect(tc.status).toBe("completed");
    expect(tc.decision!.action).toBe("allow");
    expect(tc.decision!.policyId).toBeUndefined();
    expect(tc.decision!.matches).toEqual([expect.objectContaining({ policyId: "flag-writes", mode: "shadow", action: "block" })]);
    const matched = run.events.find((e) => e.type === "policy.matched")!;
    expect(matched.data).toMatchObject({ decision: "allow", matches: [expect.objectContaining({ policyId: "flag-writes", mode: "shadow" })] });
    expect(run.events.some((e) => e.type === "tool.blocked")).toBe(false);
  });

  it("ignores a policy with enabled: false", () => {
    const client = warden({ policies: [{ id: "off", when: { tool: "rm" }, action: "block", enabled: false }, { id: "on", when: { tool: "rm" }, action: "warn" }] });
    const d = client.check({ tool: "rm" });
    expect(d).toMatchObject({ action: "warn", policyId: "on" });
    expect(d.matches.map((m) => m.policyId)).toEqual(["on"]);
  });
});

describe("rate limits", () => {
  const limited = (scope: "agent" | "run" | "global", extra: Partial<WardenOptions> = {}, exceed?: "block" | "warn" | "require_approval") =>
    warden({ limits: [{ id: "deploy-rate", tool: "deploy", max: 2, per: "1h", scope, ...(exceed && { exceed }) }] }, extra);

  it("counts calls per tool per window for the agent, across runs; refused calls do not count", async () => {
    const client = limited("agent");
    const runA = await client.startRun();
    expect(client.beginToolCall({ runId: runA, tool: "deploy" }).decision.action).toBe("allow");
    expect(client.beginToolCall({ runId: runA, tool: "read_file" }).decision.action).toBe("allow");
    const runB = await client.startRun();
    expect(client.beginToolCall({ runId: runB, tool: "deploy" }).decision.action).toBe("allow");
    for (let i = 0; i < 3; i++) {
      const third = client.beginToolCall({ runId: runB, tool: "deploy" }).decision;
      expect(third).toMatchObject({ action: "block", policyId: "deploy-rate" });
      expect(third.matches).toEqual([expect.objectContaining({ policyId: "deploy-rate", kind: "limit", action: "block" })]);
      expect(third.reason).toContain("2 calls per 1h");
    }
    // check() is pure: it does not count
    const fresh = limited("agent");
    for (let i = 0; i < 5; i++) expect(fresh.check({ tool: "deploy" }).action).toBe("allow");
    // another agent has its own window
    await client.run(
      {},
      async (run) => {
        await run.tool("deploy", {}, () => 1);
        await run.tool("deploy", {}, () => 2);
        await expect(run.tool("deploy", {}, () => 3)).rejects.toMatchObject({ code: "tool_blocked", policyId: "deploy-rate" });
      },
      { agentId: "other-agent" },
    );
  });

  it("scope run: each run has its own window", async () => {
    const client = limited("run");
    for (let r = 0; r < 2; r++) {
      await client.run({}, async (run) => {
        await run.tool("deploy", {}, () => 1);
        await run.tool("deploy", {}, () => 2);
        await expect(run.tool("deploy", {}, () => 3)).rejects.toBeInstanceOf(ToolBlockedError);
      });
    }
  });

  it("scope global: all agents share one window", async () => {
    const client = limited("global");
    await client.run({}, (run) => run.tool("deploy", {}, () => 1), { agentId: "a" });
    await client.run({}, (run) => run.tool("deploy", {}, () => 1), { agentId: "b" });
    await expect(client.run({}, (run) => run.tool("deploy", {}, () => 1), { agentId: "c" })).rejects.toBeInstanceOf(ToolBlockedError);
  });

  it("exceed: warn lets the call through with a warning", async () => {
    const client = limited("agent", {}, "warn");
    const runId = await client.startRun();
    const actions = [0, 1, 2, 3].map(() => client.beginToolCall({ runId, tool: "deploy" }).decision.action);
    expect(actions).toEqual(["allow", "allow", "warn", "warn"]);
  });

  it("counts calls that went ahead after approval", async () => {
    const client = warden(
      {
        policies: [{ id: "approve-prod-deploy", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval" }],
        limits: [{ id: "deploy-rate", tool: "deploy", max: 2, per: "1h", scope: "agent" }],
      },
      { onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "alice" }) },
    );
    let deployed = 0;
    await client.run({}, async (run) => {
      await run.tool("deploy", { environment: "production" }, () => deployed++);
      await run.tool("deploy", { environment: "production" }, () => deployed++);
      await expect(run.tool("deploy", { environment: "production" }, () => deployed++)).rejects.toMatchObject({ policyId: "deploy-rate" });
    });
    expect(deployed).toBe(2);
  });
});

describe("budgets", () => {
  const spendSet = (currencies?: Record<string, Record<string, string>>): PolicySetInput => ({
    budgets: [{ id: "run-spend", tool: "payments.*", spend: { max: { amount: 10000, currency: "EUR" } } }],
    ...(currencies && { currencies }),
  });

  it("caps spend per run, converting currencies, and starts again in a new run", async () => {
    const client = warden(spendSet({ USD: { EUR: "0.9" } }));
    const paid: number[] = [];
    await client.run({}, async (run) => {
      await run.tool("payments.refund", { amount: 5000, currency: "EUR" }, () => paid.push(5000));
      await run.tool("payments.refund", { amount: 5000, currency: "USD" }, () => paid.push(4500)); // 4500 EUR: 9500 total
      const error = await run.tool("payments.refund", { amount: 600, currency: "EUR" }, () => paid.push(600)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ToolBlockedError);
      expect(error).toMatchObject({ policyId: "run-spend" });
      expect((error as ToolBlockedError).reason).toContain("10100 exceeds 10000 EUR");
      // what still fits is allowed: the refused call was not charged
      await run.tool("payments.refund", { amount: 500, currency: "EUR" }, () => paid.push(500));
      // other tools are not counted
      await run.tool("shop.buy", { amount: 999999, currency: "EUR" }, () => paid.push(0));
    });
    expect(paid).toEqual([5000, 4500, 500, 0]);
    await client.run({}, (run) => run.tool("payments.refund", { amount: 10000, currency: "EUR" }, () => paid.push(10000)));
    expect(paid.at(-1)).toBe(10000);
  });

  it("exceed: warn lets an over-budget call through and still charges it", async () => {
    const client = warden({ budgets: [{ id: "soft", spend: { max: { amount: 1000, currency: "EUR" } }, exceed: "warn" }] });
    const runId = await client.startRun();
    const decide = (amount: number) => client.beginToolCall({ runId, tool: "pay", args: { amount, currency: "EUR" } }).decision.action;
    expect(decide(900)).toBe("allow");
    expect(decide(500)).toBe("warn"); // 1400
    expect(decide(1)).toBe("warn"); // 1401: the warned call was counted
  });

  it("takes exchange rates from the client's options too, and refuses an amount it cannot convert", async () => {
    const client = warden(spendSet(), { currencies: { USD: { EUR: "0.9" } } });
    await client.run({}, async (run) => {
      await run.tool("payments.refund", { amount: 11000, currency: "USD" }, () => "ok"); // 9900 EUR
      await expect(run.tool("payments.refund", { amount: 1, currency: "GBP" }, () => "ok")).rejects.toMatchObject({ reason: expect.stringContaining("no exchange rate from GBP to EUR") });
      await expect(run.tool("payments.refund", { amount: 12.5, currency: "EUR" }, () => "ok")).rejects.toMatchObject({ reason: expect.stringContaining("integer") });
      await expect(run.tool("payments.refund", { amount: 112, currency: "USD" }, () => "ok")).rejects.toBeInstanceOf(ToolBlockedError); // 101 EUR: 10001
      await run.tool("payments.refund", { amount: 111, currency: "USD" }, () => "ok"); // 100 EUR: 10000
    });
  });

  it("reserves LLM tokens before a call and reconciles them with the usage after", async () => {
    const client = warden({ budgets: [{ id: "llm-tokens", tokens: 1000 }] });
    const runId = await client.startRun();
    const first = client.beginLlmCall({ runId, model: "gpt-test", estimatedTokens: 600 });
    // 600 reserved: 500 more would exceed 1000
    expect(() => client.beginLlmCall({ runId, model: "gpt-test", estimatedTokens: 500 })).toThrow(ToolBlockedError);
    first.complete({ inputTokens: 150, outputTokens: 50 });
    // reconciled to 200 used: 800 more fit
    const second = client.beginLlmCall({ runId, model: "gpt-test", estimatedTokens: 800 });
    second.complete({ totalTokens: 790 });
    const error = (() => {
      try {
        client.beginLlmCall({ runId, model: "gpt-test", estimatedTokens: 11 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: "tool_blocked", policyId: "llm-tokens" });
    client.beginLlmCall({ runId, model: "gpt-test", estimatedTokens: 10 }).complete({ totalTokens: 10 });
    // another run has its own budget
    const other = await client.startRun();
    client.beginLlmCall({ runId: other, model: "gpt-test", estimatedTokens: 1000 }).complete({ totalTokens: 1000 });

    const run = await client.getRun(runId);
    const llm = run.toolCalls.filter((t) => t.kind === "llm");
    expect(llm.map((t) => t.status)).toEqual(["completed", "blocked", "completed", "blocked", "completed"]);
    expect(llm.filter((t) => t.status === "completed").map((t) => t.usage?.totalTokens)).toEqual([200, 790, 10]);
    expect(llm.filter((t) => t.status === "blocked")).toHaveLength(2);
    expect(llm[0]!.usage).toMatchObject({ model: "gpt-test", inputTokens: 150, outputTokens: 50, totalTokens: 200 });
  });

  it("a refused token reservation reserves nothing in any budget", async () => {
    const client = warden({ budgets: [{ id: "wide", tokens: 1000 }, { id: "narrow", tokens: 500 }] });
    const runId = await client.startRun();
    expect(() => client.beginLlmCall({ runId, estimatedTokens: 600 })).toThrow(ToolBlockedError);
    // nothing was used, so 450 fits both budgets
    expect(() => client.beginLlmCall({ runId, estimatedTokens: 450 }).complete({ totalTokens: 450 })).not.toThrow();
  });
});

describe("risk.detected", () => {
  it("is emitted for a warn decision and for a matched policy with a severity", async () => {
    const client = warden({
      policies: [
        { id: "flag-writes", when: { tool: "write_*" }, action: "warn" },
        { id: "audit-reads", when: { tool: "read_secrets_index" }, action: "allow", severity: "low" },
        { id: "no-rm", when: { tool: "rm" }, action: "block", severity: "critical" },
      ],
    });
    const risks: WardenEvent[] = [];
    client.on("risk.detected", (e) => risks.push(e));
    await client.run({}, async (run) => {
      await run.tool("write_file", {}, () => 1);
      await run.tool("read_secrets_index", {}, () => 1);
      await run.tool("read_file", {}, () => 1);
      await run.tool("rm", {}, () => 1).catch(() => undefined);
    });
    expect(risks.map((e) => [e.data.toolName, e.data.severity])).toEqual([
      ["write_file", "medium"],
      ["read_secrets_index", "low"],
      ["rm", "critical"],
    ]);
    expect(risks[0]!.data).toMatchObject({ decision: "warn", policies: [expect.objectContaining({ policyId: "flag-writes" })] });
  });
});

describe("setPolicies", () => {
  it("swaps the set the next decision uses", async () => {
    const client = warden({ policies: [{ id: "no-rm", when: { tool: "rm" }, action: "block" }] });
    expect(client.check({ tool: "rm" }).action).toBe("block");
    client.setPolicies({ default: "block", policies: [{ id: "rm-ok", when: { tool: "rm" }, action: "allow" }] });
    expect(client.check({ tool: "rm" })).toMatchObject({ action: "allow", policyId: "rm-ok" });
    expect(client.check({ tool: "ls" }).action).toBe("block");
    expect(client.policies.policies.map((p) => p.id)).toEqual(["rm-ok"]);
    // an invalid set is refused and the current one stays
    expect(() => client.setPolicies({ policies: [{ id: "x", action: "explode" }] } as never)).toThrow(/explode|action/);
    expect(client.check({ tool: "rm" }).action).toBe("allow");
  });
});

describe("PolicyEngine", () => {
  it("evaluates without a client and reports the deciding match", () => {
    const engine = new PolicyEngine(parsePolicySet({ policies: [{ id: "a", when: { tool: "x" }, action: "warn" }, { id: "b", when: { "args.n": { gt: 1 } }, action: "block" }] }));
    const result = engine.evaluate({ tool: "x", action: "unknown", agent: "a", args: { n: 2 } });
    expect(result.action).toBe("block");
    expect(result.decidedBy?.policyId).toBe("b");
    expect(result.matches.map((m) => m.policyId)).toEqual(["a", "b"]);
    expect(engine.evaluate({ tool: "y", action: "unknown", agent: "a", args: {} })).toMatchObject({ action: "allow", decidedBy: undefined, matches: [] });
  });
});
