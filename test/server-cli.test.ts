// `warden serve` and `warden keys`, run as a person would.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, CliSession, REPO, tempDir, TS_NODE } from "./fixtures/proc.js";

const BIN = join(REPO, "src/cli/bin.ts");

/** Starts `warden serve`, returns what it prints on starting (up to how to publish a policy, which this test never does), and a stop function. */
function serve(db: string): Promise<{ lines: string[]; url: string; stop: () => Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TS_NODE, BIN, "--org", "acme", "serve", "--port", "0", "--db", db], { cwd: REPO, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`warden serve did not start\n${out}\n${err}`));
    }, 20_000);
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const url = /on (http:\/\/\S+) /.exec(out)?.[1];
      // The admin key (on a first start) comes between the listening line and the last line, how to give agents keys.
      if (url && /--name billing-bot\n/.test(out)) {
        clearTimeout(timer);
        resolve({ lines: out.trim().split("\n"), url, stop: () => new Promise((done) => { child.on("close", done); child.kill("SIGTERM"); }) });
      }
    });
  });
}

describe("warden serve and warden keys", () => {
  const { dir, cleanup } = tempDir("warden-serve-");
  const db = join(dir, "warden.db");
  // `warden keys …`, a process apart from the server, running each command as the binary would.
  let session: CliSession;
  const runCli = (store: string, args: string[]) => session.run(store, args);
  beforeAll(() => {
    session = new CliSession();
  });
  afterAll(async () => {
    await session.close();
    cleanup();
  });

  it("prints an admin key on the first start only, and the key works", async () => {
    const first = await serve(db);
    const key = first.lines.map((l) => l.trim()).find((l) => l.startsWith("wdn_"));
    expect(key).toMatch(/^wdn_[A-Za-z0-9_-]{43}$/);
    const me = await fetch(`${first.url}/v1/me`, { headers: { authorization: `Bearer ${key}` } });
    expect(await me.json()).toMatchObject({ org: "acme", role: "admin" });
    // An organization with no policy yet: serve says its agents allow everything and how to publish one, for the same organization.
    expect(first.lines).toContain('no policy published for organization "acme" yet: its agents allow every call. Publish one with');
    expect(first.lines).toContain(`  warden policy push warden.yaml --url ${first.url} --api-key <admin key>`);
    expect(first.lines).toContain(`  warden keys create --role agent --org acme --db ${db} --name billing-bot`);
    expect(await first.stop()).toBe(0);
    const second = await serve(db);
    expect(second.lines.some((l) => l.includes("wdn_"))).toBe(false);
    await second.stop();
  }, 60_000);

  it("keys create | list | revoke work on the database directly", async () => {
    const created = await runCli(join(dir, "unused.db"), ["--org", "acme", "--json", "keys", "create", "--role", "agent", "--name", "bot", "--agent", "agent-1", "--db", db]);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { key: string; keyId: string; role: string; agentId: string };
    expect(key).toMatchObject({ role: "agent", agentId: "agent-1" });
    const listed = await runCli(join(dir, "unused.db"), ["--org", "acme", "keys", "list", "--db", db]);
    expect(listed.stdout).toContain(key.keyId);
    expect(listed.stdout).not.toContain(key.key);
    const running = await serve(db);
    expect((await fetch(`${running.url}/v1/policies/current`, { headers: { authorization: `Bearer ${key.key}` } })).status).toBe(200);
    expect((await runCli(join(dir, "unused.db"), ["--org", "acme", "keys", "revoke", key.keyId, "--db", db])).code).toBe(0);
    expect((await fetch(`${running.url}/v1/policies/current`, { headers: { authorization: `Bearer ${key.key}` } })).status).toBe(401);
    await running.stop();
    expect((await runCli(join(dir, "unused.db"), ["keys", "create", "--role", "root", "--db", db])).code).toBe(2);
    expect((await runCli(join(dir, "unused.db"), ["--org", "globex", "keys", "revoke", key.keyId, "--db", db])).code).toBe(2);
  }, 60_000);
});
