// `warden policy push` against a real control plane on a loopback port, and the messages a newcomer
// meets on the way: a mistake at its line, an unreachable --url, a busy port. The CLI runs in this
// process through its `main()`, as bin.ts calls it.
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ToolBlockedError, Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import { main } from "../src/cli/main.js";

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
  const error = vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => void err.push(parts.join(" ")));
  try {
    const code = await main(args);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

const FIRST = `version: 1
default: allow
policies:
  - id: no-secret-access
    description: Agents never read secrets
    when: { action: secret_access }
    action: block
  - id: flag-writes
    when: { tool: "write_*" }
    action: warn
`;

let dir: string;
let server: WardenServer;
let url: string;
let admin: string;
let agentKey: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "warden-push-"));
  server = createWardenServer({ db: join(dir, "server.db"), console: false, onError: () => {} });
  admin = (await server.store.createKey({ org: "acme", role: "admin" })).key;
  agentKey = (await server.store.createKey({ org: "acme", role: "agent" })).key;
  url = (await server.listen(0)).url;
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("warden policy push", () => {
  it("publishes a YAML file as version 1, shows what it adds, and a remote agent of the organization is blocked by it", async () => {
    const file = join(dir, "warden.yaml");
    writeFileSync(file, FIRST);
    const pushed = await cli(["policy", "push", file, "--url", url, "--api-key", admin]);
    expect(pushed.stderr).toBe("");
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toBe(['published version 1 (was 0):', '  + policy "no-secret-access" (block)', '  + policy "flag-writes" (warn)', "connected agents apply it within a moment"].join("\n"));

    const agent = new Warden({ agentId: "billing-agent", store: join(dir, "agent.db"), url, apiKey: agentKey, onError: () => {}, logger: { warn: () => {} } });
    try {
      expect(await agent.ready()).toBe(true);
      let ran = false;
      const refused = await agent.run({ task: "read the vault" }, (run) => run.tool("read_secret", { name: "STRIPE_KEY" }, () => (ran = true))).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ToolBlockedError);
      expect((refused as ToolBlockedError).message).toBe('[warden] tool "read_secret" blocked by policy "no-secret-access": Agents never read secrets');
      expect(ran).toBe(false);
    } finally {
      await agent.shutdown();
    }
  });

  it("says when nothing changes, and shows a changed action and a removed policy with the next version (JSON accepted)", async () => {
    const same = await cli(["policy", "push", join(dir, "warden.yaml"), "--url", url, "--api-key", admin]);
    expect(same).toMatchObject({ code: 0, stdout: `no changes: version 1 already holds ${join(dir, "warden.yaml")}` });

    const file = join(dir, "warden.json");
    writeFileSync(file, JSON.stringify({ version: 1, default: "allow", policies: [{ id: "flag-writes", when: { tool: "write_*" }, action: "block" }] }));
    const dry = await cli(["policy", "push", file, "--dry-run", "--url", url, "--api-key", admin]);
    expect(dry.stdout).toBe(['changes against version 1 (dry run, nothing published):', '  ~ policy "flag-writes": action warn → block', '  - policy "no-secret-access"'].join("\n"));
    const pushed = await cli(["--json", "policy", "push", file, "--url", url, "--api-key", admin, "--comment", "writes need a ticket"]);
    expect(JSON.parse(pushed.stdout)).toEqual({ version: 2, previous: 1, changed: true, published: true, diff: ['~ policy "flag-writes": action warn → block', '- policy "no-secret-access"'] });
    expect((await server.store.currentPolicy("acme")).comment).toBe("writes need a ticket");
  });

  it("reports a typo'd field at its own line and a missing action as missing, and publishes nothing", async () => {
    const file = join(dir, "typo.yaml");
    writeFileSync(file, ["version: 1", "policies:", "  - id: no-deploys", "    when: { tool: deploy }", "    acton: block", "  - id: reads", "    when: { tool: read_* }", ""].join("\n"));
    const result = await cli(["policy", "push", file, "--url", url, "--api-key", admin]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}:5, policy "no-deploys", field "acton": unknown field "acton" (did you mean "action"?)`);
    expect(result.stderr).toContain(`${file}:3, policy "no-deploys", field "action": missing: every policy needs an action (allow, warn, block or require_approval)`);
    expect(result.stderr).toContain(`${file}:6, policy "reads", field "action": missing`);
    expect((await server.store.currentPolicy("acme")).version).toBe(2);
  });

  it("an unreachable --url names the URL and what to check, in one line", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await cli(["policy", "push", join(dir, "warden.yaml"), "--url", `http://127.0.0.1:${port}`, "--api-key", admin]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`[warden] cannot reach the control plane at http://127.0.0.1:${port} (connection refused): check that \`warden serve\` runs there and that --url (or WARDEN_URL) names its address and port`);
  });

  it("warden serve on a busy port says so in one line, without a stack", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const result = await cli(["serve", "--port", String(port), "--db", join(dir, "busy.db")]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`warden: port ${port} on 127.0.0.1 is already in use (another warden serve?): stop what listens there, or pick another with --port`);
    } finally {
      busy.close();
    }
  });
});
