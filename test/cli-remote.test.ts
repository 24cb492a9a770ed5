// The operator commands against a control plane: `--url` and `--api-key` send halt, resume, status,
// approvals, approve/reject, runs and ledger verify to `warden serve` instead of the local store.
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { HaltedError, Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import { main } from "../src/cli/main.js";
import { tempDir } from "./fixtures/proc.js";

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

/** A loopback server that answers every request with `status`, counting them. */
async function answering(status: number): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const fake = createServer((_request, response) => {
    hits++;
    response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "x", message: `answered ${status}` } }));
  });
  await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, hits: () => hits, close: () => new Promise((resolve) => fake.close(() => resolve())) };
}

describe("warden --url with several replicas", () => {
  const scratch = tempDir("warden-cli-replicas-");
  afterAll(() => scratch.cleanup());

  it("goes past a replica that is down or answers 503, for operator commands, ledger verify and policy push; WARDEN_URL takes the same list", async () => {
    const down = await answering(200);
    await down.close();
    const unavailable = await answering(503);
    try {
      const replicas = `${down.url}, ${unavailable.url},${url}`;
      expect(await cli("--url", replicas, "--api-key", admin, "halt", "--agent", "someone", "--reason", "through the third")).toMatchObject({ code: 0 });
      expect(unavailable.hits()).toBe(1);
      expect((await cli("--url", replicas, "--api-key", admin, "status")).out).toMatch(/HALTED agent someone: through the third/);
      expect(await cli("--url", replicas, "--api-key", admin, "resume", "--agent", "someone")).toMatchObject({ code: 0, out: "resumed agent someone" });
      expect(await cli("--url", replicas, "--api-key", reviewer, "ledger", "verify")).toMatchObject({ code: 0, out: expect.stringMatching(/^ledger OK/) });
      const policy = join(scratch.dir, "warden.yaml");
      writeFileSync(policy, "version: 1\ndefault: allow\npolicies:\n  - id: approve-deploy\n    when: { tool: deploy }\n    action: require_approval\n  - id: no-drop\n    when: { tool: drop_table }\n    action: block\n");
      expect(await cli("--url", replicas, "--api-key", admin, "policy", "push", policy)).toMatchObject({ code: 0 });

      vi.stubEnv("WARDEN_URL", `${unavailable.url},${url}`);
      try {
        expect(await cli("--api-key", admin, "--json", "runs")).toMatchObject({ code: 0 });
      } finally {
        vi.unstubAllEnvs();
      }
      expect(unavailable.hits()).toBeGreaterThan(1);
    } finally {
      await unavailable.close();
    }
  });

  it("a 4xx is an answer, not a reason to try the next replica; a list with something other than an http URL is a usage error", async () => {
    const missing = await answering(404);
    try {
      const refused = await cli("--url", `${missing.url},${url}`, "--api-key", admin, "halt", "--agent", "someone", "--reason", "never sent on");
      expect(refused.code).toBe(2);
      expect(refused.err).toMatch(/404/);
      expect((await cli("--url", url, "--api-key", admin, "status")).out).not.toMatch(/never sent on/);
    } finally {
      await missing.close();
    }
    const bad = await cli("--url", `${url},ftp://x`, "--api-key", admin, "status");
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/"ftp:\/\/x" is not http or https/);
    expect((await cli("--url", " , ", "--api-key", admin, "status")).err).toMatch(/names no control plane/);
  });
});

