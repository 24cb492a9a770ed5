// The operator commands against a control plane: `--url` and `--api-key` send halt, resume, status,
// approvals, approve/reject, runs and ledger verify to `warden serve` instead of the local store.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { HaltedError, Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import { main } from "../src/cli/main.js";

let server: WardenServer;
let url: string;
let admin: string;
let reviewer: string;
let agentKey: string;
let agent: Warden;

/** Runs the CLI in this process and returns its exit code and what it printed. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
  const error = vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => void err.push(parts.join(" ")));
  try {
    const code = await main(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

beforeAll(async () => {
  server = createWardenServer({ db: ":memory:", console: false, onError: () => {} });
  admin = (await server.store.createKey({ org: "acme", role: "admin", name: "ops" })).key;
  reviewer = (await server.store.createKey({ org: "acme", role: "reviewer", name: "alice" })).key;
  agentKey = (await server.store.createKey({ org: "acme", role: "agent", name: "deployer" })).key;
  url = (await server.listen(0)).url;
  const put = await fetch(`${url}/v1/policies`, {
    method: "PUT",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ policies: { version: 1, default: "allow", policies: [{ id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval" }] } }),
  });
  expect(put.status).toBe(201);
  agent = new Warden({ agentId: "deployer", url, apiKey: agentKey, store: ":memory:" });
  expect(await agent.ready()).toBe(true);
});

afterAll(async () => {
  await agent?.shutdown();
  await server?.close();
});

describe("warden --url … (a control plane)", () => {
  it("lists a pending approval and approves it; the waiting agent goes on", async () => {
    const deployed = agent.run({ task: "ship" }, (run) => run.tool("deploy", { service: "api" }, () => "deployed"));
    let pending: Array<{ approvalId: string; toolName: string; agentId: string }> = [];
    for (let i = 0; i < 100 && pending.length === 0; i++) {
      pending = JSON.parse((await cli("--url", url, "--api-key", reviewer, "--json", "approvals")).out);
      if (pending.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(pending).toMatchObject([{ toolName: "deploy", agentId: "deployer" }]);
    const approved = await cli("--url", url, "--api-key", reviewer, "approve", pending[0]!.approvalId, "--reason", "change window");
    expect(approved).toMatchObject({ code: 0, out: `${pending[0]!.approvalId} approved by alice` });
    await expect(deployed).resolves.toBe("deployed");
  });

  it("halts the agent from the CLI and resumes it; status shows the halt", async () => {
    const halted = await cli("--url", url, "--api-key", admin, "halt", "--agent", "deployer", "--reason", "incident 7");
    expect(halted.code).toBe(0);
    expect(halted.out).toMatch(/^HALTED agent deployer: incident 7/);
    await vi.waitFor(() => expect(agent.signal.aborted).toBe(true), { timeout: 5000 });
    await expect(agent.run({}, (run) => run.tool("read_logs", {}, () => "logs"))).rejects.toBeInstanceOf(HaltedError);
    expect((await cli("--url", url, "--api-key", reviewer, "status")).out).toMatch(/HALTED agent deployer: incident 7/);

    expect((await cli("--url", url, "--api-key", admin, "resume", "--agent", "deployer")).out).toBe("resumed agent deployer");
    await vi.waitFor(() => expect(agent.signal.aborted).toBe(false), { timeout: 5000 });
    await expect(agent.run({}, (run) => run.tool("read_logs", {}, () => "logs"))).resolves.toBe("logs");
  });

  it("lists runs and verifies the control plane's ledger", async () => {
    await agent.flush();
    const runs = JSON.parse((await cli("--url", url, "--api-key", reviewer, "--json", "runs", "--agent", "deployer")).out) as Array<{ agentId: string }>;
    // The deploy run, the run after the resume, and the run the halt refused (recorded as failed: the evidence of the halt's effect).
    expect(runs.length).toBe(3);
    expect(runs.every((r) => r.agentId === "deployer")).toBe(true);
    expect(await cli("--url", url, "--api-key", reviewer, "ledger", "verify")).toMatchObject({ code: 0, out: expect.stringMatching(/^ledger OK/) });
  });

  it("refuses what the key's role may not do, and a --url without a key", async () => {
    const denied = await cli("--url", url, "--api-key", reviewer, "halt", "--reason", "not mine to pull");
    expect(denied.code).toBe(2);
    expect(denied.err).toMatch(/403/);
    expect((await cli("--url", url, "status")).code).toBe(2);
  });
});
