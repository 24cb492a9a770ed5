import { generateKeyPairSync } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { PermissionDeniedError, TokenError, ToolBlockedError, Warden, type PolicySetInput, type WardenOptions } from "agent-warden";

const policies: PolicySetInput = {
  policies: [
    // Would ask for approval if policy were consulted; the token decides first.
    { id: "hotel-approval", when: { tool: "hotels.*" }, action: "require_approval" },
    { id: "big-bookings", when: { tool: ["flights.book", "flights:book"], "args.amount": { gt: 40000 } }, action: "require_approval" },
  ],
};

const clients: Warden[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function open(options: Partial<WardenOptions> = {}): Warden {
  const client = new Warden({ agentId: "planner", store: ":memory:", policies, currencies: { USD: { EUR: "0.9" } }, onApprovalRequest: (_r, decide) => decide.approve({ reviewer: "alice" }), ...options });
  clients.push(client);
  return client;
}

function mintTravel(warden: Warden, extra: { tools?: string[] } = {}): string {
  return warden.tokens.mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h", maxAmount: { amount: 50000, currency: "EUR" }, ...extra });
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

/** Waits until the clock has moved past `ms`, so what is made next is strictly later. */
async function after(ms: number): Promise<void> {
  while (Date.now() <= ms) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe("delegated tasks", () => {
  it("run as the token's agent and record the token", async () => {
    const warden = open();
    const token = mintTravel(warden);
    const task = warden.beginDelegatedTask(token);
    expect(task.agentId).toBe("travel-agent");
    expect(task.authority).toMatchObject({ agentId: "travel-agent", scopes: ["flights:*"], maxAmount: { amount: 50000, currency: "EUR" } });
    const runId = await task.run({ task: "book LIS→BER" }, async (run) => {
      await run.tool("flights.search", { from: "LIS", to: "BER" }, () => ["TP 540"]);
      expect(warden.hasPermission("flights:book")).toBe(true);
      expect(warden.hasPermission("hotels:book")).toBe(false);
      return run.runId;
    });
    const run = await warden.getRun(runId);
    expect(run).toMatchObject({ agentId: "travel-agent", tokenId: task.verified.id, status: "completed" });
    expect(run.toolCalls[0]).toMatchObject({ toolName: "flights.search", status: "completed" });
    // outside any delegated run, the client has no token
    expect(warden.hasPermission("flights:book")).toBe(false);
  });

  it("block a tool outside the token's scopes before policy is consulted", async () => {
    const warden = open();
    const task = warden.beginDelegatedTask(mintTravel(warden));
    let booked = false;
    const error = await caught(
      task.run({}, (run) =>
        run.tool("hotels.book", { amount: 100, currency: "EUR" }, () => {
          booked = true;
        }),
      ),
    );
    expect(booked).toBe(false);
    expect(error).toBeInstanceOf(ToolBlockedError);
    expect((error as ToolBlockedError).policyId).toBeUndefined();
    expect((error as ToolBlockedError).reason).toContain('does not grant "hotels:book"');
    const [summary] = warden.listRuns();
    const call = (await warden.getRun(summary!.runId)).toolCalls[0]!;
    expect(call).toMatchObject({ status: "blocked", decision: { action: "block", matches: [] } });
    // the same call without the token goes to policy
    expect(warden.check({ tool: "hotels.book" })).toMatchObject({ action: "require_approval", policyId: "hotel-approval" });
  });

  it("block a tool the token's tool list leaves out, even inside its scopes", async () => {
    const warden = open();
    const task = warden.beginDelegatedTask(mintTravel(warden, { tools: ["flights.search", "flights.status_*"] }));
    await task.run({}, async (run) => {
      await expect(run.tool("flights.search", {}, () => "ok")).resolves.toBe("ok");
      await expect(run.tool("flights.status_live", {}, () => "ok")).resolves.toBe("ok");
      const error = await caught(run.tool("flights.book", { amount: 100, currency: "EUR" }, () => "booked"));
      expect(error).toBeInstanceOf(ToolBlockedError);
      expect((error as ToolBlockedError).reason).toContain('does not allow tool "flights.book"');
    });
  });

  it("block an amount over the token's cap, after converting USD to EUR", async () => {
    const warden = open();
    const task = warden.beginDelegatedTask(mintTravel(warden));
    const booked: string[] = [];
    await task.run({}, async (run) => {
      const book = (amount: number, currency: string) => run.tool("flights.book", { amount, currency }, () => booked.push(`${amount} ${currency}`));
      await book(30000, "EUR");
      await book(50000, "EUR"); // at the cap; over the policy threshold, so approved first
      await expect(book(50001, "EUR")).rejects.toMatchObject({ code: "tool_blocked", reason: expect.stringContaining("exceeds the token's cap of 50000 EUR") });
      await book(55555, "USD"); // 50000 EUR
      await expect(book(56000, "USD")).rejects.toBeInstanceOf(ToolBlockedError); // 50400 EUR
      await expect(book(100, "GBP")).rejects.toMatchObject({ reason: expect.stringContaining("GBP") });
      await expect(book(12.5 as number, "EUR")).rejects.toMatchObject({ reason: expect.stringContaining("minor units") });
    });
    expect(booked).toEqual(["30000 EUR", "50000 EUR", "55555 USD"]);
  });

  it("attenuateForCall makes a narrower child token whose runs are children of the delegating run", async () => {
    const warden = open();
    const task = warden.beginDelegatedTask(mintTravel(warden));
    const ids = await task.run({ task: "trip" }, async (run) => {
      const childToken = task.attenuateForCall("seat-agent", ["flights:seat"], { ttl: "10m", maxAmount: { amount: 5000, currency: "EUR" } });
      const child = warden.beginDelegatedTask(childToken);
      expect(child.agentId).toBe("travel-agent/seat-agent");
      expect(child.authority).toMatchObject({ scopes: ["flights:seat"], maxAmount: { amount: 5000, currency: "EUR" } });
      expect(child.hasPermission("flights:seat")).toBe(true);
      expect(child.hasPermission("flights:book")).toBe(false);
      const childRunId = await child.run({ task: "pick a seat" }, async (seatRun) => {
        await seatRun.tool("flights.seat", { seat: "12A", amount: 2500, currency: "EUR" }, () => "12A");
        await expect(seatRun.tool("flights.book", { amount: 100, currency: "EUR" }, () => "no")).rejects.toBeInstanceOf(ToolBlockedError);
        await expect(seatRun.tool("flights.seat", { amount: 6000, currency: "EUR" }, () => "no")).rejects.toBeInstanceOf(ToolBlockedError);
        return seatRun.runId;
      });
      return { parent: run.runId, trace: run.traceId, child: childRunId };
    });
    const parent = await warden.getRun(ids.parent);
    const child = await warden.getRun(ids.child);
    expect(parent.childRunIds).toEqual([ids.child]);
    expect(child).toMatchObject({ parentRunId: ids.parent, traceId: ids.trace, agentId: "travel-agent/seat-agent" });
    expect(child.tokenId).toBeDefined();
    // a child token may not widen its parent
    expect(thrown(() => warden.tokens.attenuate(warden.tokens.mint({ agentId: "x", scopes: ["flights:seat"], ttl: "1h" }), { scopes: ["flights:*"] }))).toBeInstanceOf(TokenError);
  });

  it("hasPermission, authorize and ensureAuthorized answer from the token, then policy", () => {
    const warden = open();
    const task = warden.beginDelegatedTask(mintTravel(warden));
    expect(task.hasPermission("flights:book")).toBe(true);
    expect(task.hasPermission("flights:*")).toBe(true);
    expect(task.hasPermission("hotels:book")).toBe(false);

    expect(task.authorize("flights:book", { amount: 30000, currency: "EUR" }).action).toBe("allow");
    expect(task.authorize("flights:book", { amount: 45000, currency: "EUR" })).toMatchObject({ action: "require_approval", policyId: "big-bookings" });
    expect(task.authorize("flights:book", { amount: 60000, currency: "EUR" })).toMatchObject({ action: "block", matches: [] });
    expect(task.authorize("hotels:book")).toMatchObject({ action: "block" });

    expect(() => task.ensureAuthorized("flights:book", { amount: 30000, currency: "EUR" })).not.toThrow();
    for (const [permission, money] of [
      ["hotels:book", {}],
      ["flights:book", { amount: 60000, currency: "EUR" }],
      ["flights:book", { amount: 45000, currency: "EUR" }],
    ] as const) {
      const error = thrown(() => task.ensureAuthorized(permission, money));
      expect(error).toBeInstanceOf(PermissionDeniedError);
      expect(error).toMatchObject({ code: "permission_denied", permission });
    }
    // with no token at all
    expect(warden.authorize("flights:book")).toMatchObject({ action: "block", reason: "no delegation token" });
    expect(() => warden.ensureAuthorized("flights:book")).toThrow(PermissionDeniedError);
  });

  it("a revoked token blocks: new tasks, new runs and the calls of a run in progress", async () => {
    const warden = open();
    const token = mintTravel(warden);
    const task = warden.beginDelegatedTask(token);
    await task.run({}, async (run) => {
      await run.tool("flights.search", {}, () => "ok");
      warden.tokens.revoke(task.verified.id, { reason: "leaked", actor: "security" });
      const error = await caught(run.tool("flights.search", {}, () => "no"));
      expect(error).toBeInstanceOf(ToolBlockedError);
      expect((error as ToolBlockedError).reason).toContain("revoked");
    }).catch(() => undefined);
    await expect(task.run({}, () => "no")).rejects.toMatchObject({ code: "token_invalid", reason: "revoked" });
    expect(thrown(() => warden.beginDelegatedTask(token))).toMatchObject({ reason: "revoked" });
    expect(task.hasPermission("flights:book")).toBe(true); // from the token alone, offline
    expect(task.authorize("flights:book")).toMatchObject({ action: "block" });
    // a token derived from a revoked one is revoked too
    const derived = warden.tokens.attenuate(token, { scopes: ["flights:search"] });
    expect(thrown(() => warden.beginDelegatedTask(derived))).toMatchObject({ reason: "revoked" });
  });

  it("a halt invalidates the tokens issued before it, even after resume", async () => {
    const warden = open();
    const before = mintTravel(warden);
    const task = warden.beginDelegatedTask(before);
    const halt = warden.halt({ reason: "compromised", agentId: "travel-agent" });
    warden.resume({ agentId: "travel-agent" });

    await expect(task.run({}, () => "no")).rejects.toMatchObject({ code: "token_invalid", reason: "halted" });
    expect(thrown(() => warden.beginDelegatedTask(before))).toMatchObject({ reason: "halted" });

    await after(halt.createdAt);
    const fresh = mintTravel(warden);
    await expect(warden.beginDelegatedTask(fresh).run({}, (run) => run.tool("flights.search", {}, () => "ok"))).resolves.toBe("ok");
    // a halt of another agent leaves this agent's tokens alone
    const other = warden.halt({ reason: "other", agentId: "someone-else" });
    warden.resume({ agentId: "someone-else" });
    expect(other.createdAt).toBeGreaterThanOrEqual(halt.createdAt);
    await expect(warden.beginDelegatedTask(fresh).run({}, () => "still ok")).resolves.toBe("still ok");
  });

  it("the token client option makes every run of the client act under it", async () => {
    const foreign = open();
    const token = foreign.tokens.mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h", maxAmount: { amount: 50000, currency: "EUR" } });
    const signingKey = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    const org = open({ agentId: "issuer", tokens: { signingKey } });
    const orgToken = org.tokens.mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h" });
    const agent = open({ agentId: "travel-agent", token: orgToken, tokens: { signingKey } });

    expect(agent.hasPermission("flights:book")).toBe(true);
    expect(agent.hasPermission("hotels:book")).toBe(false);
    expect(agent.check({ tool: "hotels.book" })).toMatchObject({ action: "block", matches: [] });
    await agent.run({}, async (run) => {
      await expect(run.tool("flights.search", {}, () => "ok")).resolves.toBe("ok");
      await expect(run.tool("hotels.book", {}, () => "no")).rejects.toBeInstanceOf(ToolBlockedError);
    });
    const [summary] = agent.listRuns();
    expect(summary!.tokenId).toBe(org.tokens.verify(orgToken).id);

    // a token for another agent, or from another organization, is refused at construction
    expect(thrown(() => open({ agentId: "someone-else", token: orgToken, tokens: { signingKey } }))).toMatchObject({ code: "token_invalid", reason: "wrong_audience" });
    expect(thrown(() => open({ agentId: "travel-agent", token }))).toMatchObject({ code: "token_invalid" });
  });
});
