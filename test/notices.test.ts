// What a newcomer hears: a call waiting for a reviewer says so once (with the command that answers
// it), and a client that governs nothing says that too, through the logger or on stderr.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ToolBlockedError, Warden, type PolicySetInput, type WardenLogger } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";

const refundPolicy: PolicySetInput = { version: 1, policies: [{ id: "large-refunds", when: { tool: "refund", "args.amount": { gt: 50000 } }, action: "require_approval" }] };

function recordingLogger(): WardenLogger & { lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  return { lines, info: (message) => lines.push(["info", message]), warn: (message) => lines.push(["warn", message]) };
}

async function until<T>(read: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const value = read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("timed out");
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "warden-notices-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("a call waiting for approval", () => {
  it("says once what waits, the approval id and the command that answers it; approving lets it run", async () => {
    const logger = recordingLogger();
    const store = join(dir, "agent.db");
    const warden = new Warden({ agentId: "billing-agent", policies: refundPolicy, store, logger });
    let refunded = false;
    const done = warden.run({ task: "refund order 1042" }, (run) => run.tool("refund", { amount: 80000, currency: "EUR" }, () => (refunded = true)));
    const [level, message] = await until(() => logger.lines.find(([, text]) => text.includes("waiting for approval")));
    const approvalId = warden.approvals.list({ status: "pending" })[0]!.approvalId;
    expect(level).toBe("info");
    expect(message).toContain(`tool "refund" is waiting for approval ${approvalId} (policy "large-refunds")`);
    expect(message).toContain(`warden approve ${approvalId} --store ${store}`);
    warden.approvals.approve(approvalId, { reviewer: "alice" });
    await done;
    expect(refunded).toBe(true);
    expect(logger.lines.filter(([, text]) => text.includes(approvalId))).toHaveLength(1);
    warden.close();
  });

  it("says nothing when onApprovalRequest routes the request", async () => {
    const logger = recordingLogger();
    const warden = new Warden({ agentId: "billing-agent", policies: refundPolicy, store: ":memory:", logger, onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "bot" }) });
    await warden.run({}, (run) => run.tool("refund", { amount: 80000 }, () => "ok"));
    expect(logger.lines).toEqual([]);
    warden.close();
  });

  it("goes to stderr with the default logger, and names an in-memory store's only way out", async () => {
    const writes: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => (writes.push(String(chunk)), true));
    try {
      const warden = new Warden({ agentId: "billing-agent", policies: refundPolicy, store: ":memory:" });
      const done = warden.run({}, (run) => run.tool("refund", { amount: 90000 }, () => "ok"));
      const line = await until(() => writes.find((text) => text.includes("waiting for approval")));
      const approvalId = warden.approvals.list({ status: "pending" })[0]!.approvalId;
      expect(line).toBe(`[warden] tool "refund" is waiting for approval ${approvalId} (policy "large-refunds"): the store is in memory, so decide it in this process with warden.approvals.approve("${approvalId}") or an onApprovalRequest handler\n`);
      warden.approvals.approve(approvalId);
      await done;
      warden.close();
    } finally {
      spy.mockRestore();
    }
  });
});

describe("no policy", () => {
  it("new Warden({ agentId }) with no policies warns once per client's logger; an explicit set does not", () => {
    const logger = recordingLogger();
    const bare = new Warden({ agentId: "a", store: ":memory:", logger });
    const explicit = new Warden({ agentId: "b", store: ":memory:", logger, policies: { version: 1, default: "allow", policies: [] } });
    expect(logger.lines).toEqual([["warn", expect.stringContaining("no policies loaded: every tool call is recorded and allowed")]]);
    bare.close();
    explicit.close();
  });

  describe("remote mode, an organization with no policy version yet", () => {
    let server: WardenServer;
    afterEach(async () => {
      await server.close();
    });

    it("warns that everything is allowed by default and says how to publish a policy", async () => {
      server = createWardenServer({ db: join(dir, "server.db"), console: false, onError: () => {} });
      const agentKey = (await server.store.createKey({ org: "acme", role: "agent" })).key;
      const { url } = await server.listen(0);
      const logger = recordingLogger();
      const warden = new Warden({ agentId: "billing-agent", store: join(dir, "agent.db"), url, apiKey: agentKey, logger, onError: () => {} });
      expect(await warden.ready()).toBe(true);
      const warnings = logger.lines.filter(([level]) => level === "warn").map(([, text]) => text);
      expect(warnings).toEqual([`the control plane at ${url} has no policy for this organization yet: every tool call is allowed by default. Publish one with \`warden policy push warden.yaml --url ${url} --api-key <admin key>\``]);
      await warden.shutdown();
    });
  });
});

describe("messages say what happened once", () => {
  it("a block without a description names the policy once and says what it did", async () => {
    const warden = new Warden({ agentId: "ops-agent", store: ":memory:", policies: { policies: [{ id: "no-wipes", when: { tool: "wipe_*" }, action: "block" }] } });
    const error = await warden.run({}, (run) => run.tool("wipe_disk", {}, () => "never")).catch((caught: Error) => caught);
    expect((error as Error).message).toBe('[warden] tool "wipe_disk" blocked by policy "no-wipes": the call matches its conditions');
    warden.close();
  });

  it("a halted call reads `halted (agent …): reason`, once", async () => {
    const warden = new Warden({ agentId: "ops-agent", store: ":memory:", policies: { policies: [] } });
    const error = await warden
      .run({}, async (run) => {
        warden.halt({ agentId: "ops-agent", reason: "runaway loop" });
        return run.tool("deploy", {}, () => "never");
      })
      .catch((caught: Error) => caught);
    expect((error as Error).message).toBe("[warden] halted (agent ops-agent): runaway loop");
    warden.close();
  });

  it("a reported Warden error becomes one warning with one prefix", () => {
    const warnings: string[] = [];
    const spy = vi.spyOn(process, "emitWarning").mockImplementation(((warning: string | Error) => void warnings.push(String(warning))) as typeof process.emitWarning);
    try {
      const warden = new Warden({ agentId: "a", store: ":memory:", policies: { policies: [] } });
      warden.reportError(new ToolBlockedError({ toolName: "t", reason: "r" }), "ai");
      warden.reportError(new ToolBlockedError({ toolName: "t", reason: "r" }), "ai");
      expect(warnings).toEqual(['[warden] ai: tool "t" blocked: r']);
      warden.close();
    } finally {
      spy.mockRestore();
    }
  });
});
