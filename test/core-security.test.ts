// Attacks on the core's guarantees (issues 10 and 11): a sub-agent escaping its spawner's token, a
// halted agent minting or speaking as another, a halt missing child runs or leaving no evidence, a
// caller abandoning an approval, a cap read in the wrong currency, a huge or unrecordable value,
// and a run cut by kill -9. Each failed to get through before its fix.
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { HaltedError, isHalt, Warden, type PolicySetInput, type WardenOptions } from "agent-warden";
import { startAgent, tempDir } from "./fixtures/proc.js";

const allowAll: PolicySetInput = { version: 1, default: "allow", policies: [] };
const clients: Warden[] = [];
const temps: Array<{ cleanup: () => void }> = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const temp of temps.splice(0)) temp.cleanup();
});

function storePath(): string {
  const temp = tempDir("warden-security-");
  temps.push(temp);
  return join(temp.dir, "warden.db");
}

function open(options: Partial<WardenOptions> = {}): Warden {
  const client = new Warden({ agentId: "agent", store: ":memory:", policies: allowAll, onError: () => {}, ...options });
  clients.push(client);
  return client;
}


describe("a sub-agent never holds more than its spawner", () => {
  it("a run acting as another agent on a client built with a token is still bound by that token", async () => {
    const store = storePath();
    const issuer = open({ store, agentId: "issuer" });
    const token = issuer.tokens.mint({ agentId: "agent", scopes: ["search:*"], ttl: "1h" });
    const warden = open({ store, token });
    let refunded = false;
    const error = await warden.run({}, (run) => run.tool("payments.refund", { amount: 100 }, () => (refunded = true)), { agentId: "helper" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "tool_blocked" });
    expect(refunded).toBe(false);
    // Nested deeper, and through beginToolCall with another agent id: the same.
    await warden.run({}, async () => {
      const nested = await warden.run({}, (run) => run.tool("payments.refund", {}, () => (refunded = true)), { agentId: "helper-2" }).catch((e: unknown) => e);
      expect(nested).toMatchObject({ code: "tool_blocked" });
    });
    expect(warden.beginToolCall({ tool: "payments.refund", agentId: "other" }).decision).toMatchObject({ action: "block", cause: "token" });
    expect(refunded).toBe(false);
    // What the token grants still runs in a sub-agent's run.
    await expect(warden.run({}, (run) => run.tool("search.web", {}, () => "found"), { agentId: "helper" })).resolves.toBe("found");
  });

  it("a child run under a run acting under a delegated token inherits that token", async () => {
    const warden = open({ agentId: "planner" });
    const token = warden.tokens.mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h" });
    const task = warden.beginDelegatedTask(token);
    let booked = false;
    const error = await task
      .run({}, () => warden.run({}, (run) => run.tool("hotels.book", {}, () => (booked = true)), { agentId: "hotel-helper" }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "tool_blocked" });
    expect(booked).toBe(false);
  });
});

describe("a halt stops every way the halted party can act", () => {
  it("a halted agent cannot mint or attenuate, nor mint for a halted agent", () => {
    const warden = open({ agentId: "issuer" });
    const token = warden.tokens.mint({ agentId: "worker", scopes: ["search:*"], ttl: "1h" });
    warden.halt({ reason: "compromised", agentId: "worker" });
    expect(() => warden.tokens.mint({ agentId: "worker", scopes: ["search:*"], ttl: "1h" })).toThrow(HaltedError);
    expect(() => warden.tokens.attenuate(token, { audience: "worker", scopes: ["search:web"] })).toThrow(HaltedError);
    warden.halt({ reason: "the issuer too", agentId: "issuer" });
    expect(() => warden.tokens.mint({ agentId: "someone-else", scopes: ["search:*"], ttl: "1h" })).toThrow(HaltedError);
    warden.resume({ agentId: "issuer" });
    expect(typeof warden.tokens.mint({ agentId: "someone-else", scopes: ["search:*"], ttl: "1h" })).toBe("string");
  });

  it("the halted client does not escape its halt by acting as another agent id", async () => {
    const warden = open({ agentId: "billing-agent" });
    warden.halt({ reason: "runaway refunds", agentId: "billing-agent" });
    let ran = false;
    await expect(warden.run({}, () => (ran = true), { agentId: "other" })).rejects.toBeInstanceOf(HaltedError);
    const { runId } = (() => {
      try {
        return warden.beginRun({}, { agentId: "other" });
      } catch (error) {
        return { runId: String((error as Error).name) };
      }
    })();
    expect(runId).toBe("HaltedError");
    expect(() => warden.beginToolCall({ tool: "payments.refund", agentId: "other" })).toThrow(HaltedError);
    expect(warden.check({ tool: "payments.refund", agentId: "other" })).toMatchObject({ action: "block", halted: true });
    expect(ran).toBe(false);
  });

  it("halt({ runId }) reaches the run's sub-agent child runs: in flight, new calls and new child runs", async () => {
    const warden = open();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let childRunId = "";
    let later: unknown;
    let grandchild: unknown;
    const parent = warden.run({}, (run) =>
      warden.run(
        {},
        async (child) => {
          childRunId = child.runId;
          const inFlight = child.tool("long_job", {}, ({ signal }) => {
            started();
            return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
          });
          const error = await inFlight.catch((e: unknown) => e);
          later = await child.tool("read", {}, () => "ran").catch((e: unknown) => e);
          grandchild = await warden.run({}, () => "ran", { agentId: "grandchild" }).catch((e: unknown) => e);
          throw error;
        },
        { agentId: "helper" },
      ).then(() => run.runId),
    );
    await running;
    const parentRunId = warden.listRuns({ agentId: "agent" })[0]!.runId;
    warden.halt({ reason: "this run loops", runId: parentRunId });
    expect(isHalt(await parent.catch((e: unknown) => e))).toBe(true);
    expect(isHalt(later)).toBe(true);
    expect(isHalt(grandchild)).toBe(true);
    const child = warden.runRecord(childRunId);
    expect(child.toolCalls.map((c) => c.status)).toEqual(["failed", "blocked"]);
    expect(child.status).toBe("failed");
  });

  it("a refusal by a halt when no run is open is in the ledger: a new run, a bare beginToolCall", () => {
    const warden = open();
    warden.halt({ reason: "incident" });
    expect(() => warden.beginRun({ task: "x" })).toThrow(HaltedError);
    expect(() => warden.beginToolCall({ tool: "deploy", args: { env: "prod" } })).toThrow(HaltedError);
    warden.flush();
    const entries = warden.ledger.entries();
    expect(entries.filter((e) => e.type === "run.failed")).toMatchObject([{ data: { refused: true, error: { code: "halted" } } }]);
    expect(entries.filter((e) => e.type === "tool.blocked")).toMatchObject([{ data: { toolName: "deploy", halted: true, refused: true } }]);
    expect(warden.ledger.verify()).toMatchObject({ ok: true });
  });
});

describe("token caps convert with the policy file's currencies", () => {
  it("200 USD against a 250 EUR cap is allowed when warden.yaml gives the rate, 300 USD is not", () => {
    const warden = open({ agentId: "planner", policies: { ...allowAll, currencies: { USD: { EUR: "0.9" } } } });
    const token = warden.tokens.mint({ agentId: "payer", scopes: ["payments:*"], ttl: "1h", maxAmount: { amount: 25000, currency: "EUR" } });
    const task = warden.beginDelegatedTask(token);
    expect(task.authorize("payments:refund", { amount: 20000, currency: "USD" }).action).toBe("allow"); // 18000 EUR
    expect(task.authorize("payments:refund", { amount: 30000, currency: "USD" })).toMatchObject({ action: "block", cause: "token" }); // 27000 EUR
  });
});

describe("recorded values are bounded and never leave a call pending", () => {
  it("a 4 MB tool result is recorded cut to the cap, with a marker giving its size", async () => {
    const store = storePath();
    const warden = open({ store, maxRecordedBytes: 64 * 1024 });
    const big = "x".repeat(4 * 1024 * 1024);
    const runId = await warden.run({}, async (run) => {
      expect(await run.tool("export", {}, () => big)).toBe(big);
      return run.runId;
    });
    warden.flush();
    const call = warden.runRecord(runId).toolCalls[0]!;
    expect(call.status).toBe("completed");
    expect(JSON.stringify(call.output).length).toBeLessThan(70 * 1024);
    expect(call.output).toMatchObject({ "[truncated]": expect.stringContaining(`${4 * 1024 * 1024 + 2} bytes`) });
    const db = new DatabaseSync(store, { readOnly: true });
    try {
      const sizes = db.prepare("SELECT MAX(LENGTH(output)) AS row, (SELECT MAX(LENGTH(data)) FROM ledger) AS entry FROM tool_calls").get() as { row: number; entry: number };
      // The call's row keeps no copy of the output: its ledger entry holds it (cut the same way).
      expect(sizes.row ?? 0).toBeLessThan(70 * 1024);
      expect(sizes.entry).toBeLessThan(140 * 1024);
    } finally {
      db.close();
    }
  });

  it("a BigInt in arguments or results finishes the call, and a refused BigInt call counts no rate-limit slot", async () => {
    const warden = open({ policies: { ...allowAll, limits: [{ id: "one", tool: "count", max: 1, per: "1h" }] } });
    const runId = await warden.run({}, async (run) => {
      await expect(run.tool("count", { n: 10n }, () => ({ total: 20n }))).resolves.toEqual({ total: 20n });
      return run.runId;
    });
    const record = warden.runRecord(runId);
    expect(record.toolCalls.map((c) => c.status)).toEqual(["completed"]);
    expect(record.status).toBe("completed");
    // The slot was taken by the call that ran, once: the next one is refused by the limit.
    expect(warden.beginToolCall({ tool: "count", args: {} }).decision).toMatchObject({ action: "block", cause: "limit" });
    expect(warden.ledger.verify()).toMatchObject({ ok: true });
  });
});

describe("runs cut by kill -9", () => {
  it("are marked failed (abandoned) when the next client starts on the store", async () => {
    const store = storePath();
    new Warden({ agentId: "setup", store }).close();
    const agent = startAgent({ mode: "worker", store, agentId: "worker" });
    try {
      const started = await agent.expect("tool-started");
      agent.kill();
      await agent.exited;
      const next = open({ store, agentId: "next" });
      const run = next.runRecord(started.runId as string);
      expect(run.status).toBe("failed");
      expect(run.error).toMatchObject({ message: "abandoned" });
      expect(run.toolCalls.map((c) => c.status)).toEqual(["failed"]);
      expect(next.ledger.entries({ runId: started.runId as string }).at(-1)).toMatchObject({ type: "run.failed", data: { abandoned: true } });
      // A run of a live process is left alone.
      const live = next.beginRun();
      open({ store, agentId: "third" });
      expect(next.runRecord(live.runId).status).toBe("running");
    } finally {
      agent.kill();
    }
  }, 60_000);
});
