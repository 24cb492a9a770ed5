// Three `warden serve --database` processes (the real CLI) on one PostgreSQL database, shared by every
// case: a halt posted to replica 2 stops agents connected to replicas 1 and 3, aborting their calls in
// flight; a policy version put on replica 2 is used by agents on 1 and 3; a call waiting for approval
// through replica 1 is released by a decision on replica 3; the database restarted under load
// (replicas reconnect and LISTEN again, spools drain, nothing lost); and `kill -9` of a replica in the
// middle of a 10,000-event ingest from several agents (they fail over, every event lands once).
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warden } from "agent-warden";
import { PostgresControlPlaneStore } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";
import { childEnv, REPO, tempDir } from "./fixtures/proc.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Replica {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  output: () => string;
}

/** `warden --org acme serve --port 0 --database <url>`; resolves once it prints where it listens. */
function serve(database: string): Promise<Replica> {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "src/cli/bin.ts"), "--org", "acme", "serve", "--port", "0", "--database", database], { cwd: REPO, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      const listening = /warden control plane on (http:\/\/\S+) /.exec(output);
      if (listening) resolve({ child, url: listening[1]!, exited, output: () => output });
    });
    void exited.then((code) => reject(new Error(`warden serve exited with ${code}:\n${output}`)));
  });
}

async function api(url: string, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url + path, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { "content-type": "application/json" }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

/** How many times each event id is in the organization's ledger, read from `url`. */
async function ledgerCounts(url: string, admin: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/v1/ledger/export?limit=1000000`, { headers: { authorization: `Bearer ${admin}` } });
  const counts = new Map<string, number>();
  for (const line of (await response.text()).split("\n").filter(Boolean)) {
    const id = (JSON.parse(line) as { id: string }).id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

const missingOrTwice = (made: string[], counts: Map<string, number>) => made.filter((id) => counts.get(id) !== 1).map((id) => `${id}: ${counts.get(id) ?? 0}`);

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describe.skipIf(POSTGRES_SKIP !== undefined)(`three warden serve processes on one PostgreSQL database${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, () => {
  const { dir, cleanup } = tempDir("warden-replicas-");
  let cluster: PostgresCluster;
  let replicas: Replica[] = [];
  const R = (n: 1 | 2 | 3) => replicas[n - 1]!.url;
  const keys = { admin: "", reviewer: "", agent: "" };
  const agents: Warden[] = [];

  /** An agent in remote mode on the given replicas, recording every event id it makes. */
  function agent(name: string, urls: string[], options: { group?: string; spool?: boolean } = {}) {
    const warden = new Warden({
      agentId: name,
      group: options.group,
      url: urls,
      apiKey: keys.agent,
      store: ":memory:",
      remote: { cacheDir: join(dir, `cache-${name}`), flushInterval: 20, maxBatch: 200, pollInterval: 200 },
      halt: { staleAfter: 60_000 },
      onError: () => {},
    });
    agents.push(warden);
    const made: string[] = [];
    warden.on("*", (event) => made.push(event.id));
    return { warden, made };
  }

  beforeAll(async () => {
    // Its own cluster: a case restarts the server under the replicas.
    cluster = await startPostgres({ private: true });
    const database = cluster.createDatabase("warden_replicas");
    const store = new PostgresControlPlaneStore({ url: database });
    keys.admin = (await store.createKey({ org: "acme", role: "admin", name: "ops" })).key;
    keys.reviewer = (await store.createKey({ org: "acme", role: "reviewer", name: "alice" })).key;
    keys.agent = (await store.createKey({ org: "acme", role: "agent", name: "fleet" })).key;
    await store.close();
    // Three replicas starting at once: one migrates (the database is new to them), the others wait.
    replicas = await Promise.all([serve(database), serve(database), serve(database)]);
  }, 120_000);

  afterAll(async () => {
    for (const warden of agents) await warden.shutdown().catch(() => {});
    for (const replica of replicas) replica.child.kill("SIGTERM");
    await Promise.all(replicas.map((replica) => replica.exited));
    cluster?.stop();
    cleanup();
  }, 60_000);

  it("every replica is ready and answers the same: a key made in the database works on each", async () => {
    for (const n of [1, 2, 3] as const) {
      expect(await (await fetch(`${R(n)}/readyz`)).json()).toEqual({ status: "ready", store: "postgres" });
      expect((await api(R(n), keys.agent, "GET", "/v1/me")).body).toMatchObject({ org: "acme", role: "agent", name: "fleet" });
    }
  });

  it("a halt posted to replica 2 stops the agents on replicas 1 and 3: their calls in flight are aborted, the next refused", async () => {
    const one = agent("halt-one", [R(1)], { group: "fleet" });
    const three = agent("halt-three", [R(3)], { group: "fleet" });
    expect(await Promise.all([one.warden.ready(), three.warden.ready()])).toEqual([true, true]);
    await until(() => one.warden.remote!.status.streamConnected && three.warden.remote!.status.streamConnected, "both streams are open");
    const inFlight = [one, three].map(({ warden }) => {
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const outcome = warden
        .run({ task: "long job" }, (run) =>
          run.tool("long_job", {}, async ({ signal }) => {
            started();
            while (!signal.aborted) await sleep(5);
            throw signal.reason;
          }),
        )
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      return { running, outcome };
    });
    await Promise.all(inFlight.map((call) => call.running));

    const posted = await api(R(2), keys.admin, "POST", "/v1/halts", { group: "fleet", reason: "incident on replica 2" });
    expect(posted.status).toBe(201);
    for (const call of inFlight) expect(await call.outcome).toMatchObject({ name: "HaltedError", code: "halted" });
    for (const { warden } of [one, three]) {
      expect(warden.signal.aborted).toBe(true);
      await expect(warden.run({ task: "after" }, (run) => run.tool("read_order", {}, () => "read"))).rejects.toMatchObject({ name: "HaltedError" });
    }
    expect((await api(R(2), keys.admin, "POST", "/v1/halts/resume", { group: "fleet" })).status).toBe(200);
    await until(() => !one.warden.signal.aborted && !three.warden.signal.aborted, "both agents are resumed");
  }, 60_000);

  it("a policy version put on replica 2 is used by agents on replicas 1 and 3; a call waiting for approval through replica 1 is released on replica 3", async () => {
    const one = agent("policy-one", [R(1)]);
    const three = agent("policy-three", [R(3)]);
    expect(await Promise.all([one.warden.ready(), three.warden.ready()])).toEqual([true, true]);
    await until(() => one.warden.remote!.status.streamConnected && three.warden.remote!.status.streamConnected, "both streams are open");
    const put = await api(R(2), keys.admin, "PUT", "/v1/policies", {
      policies: {
        version: 1,
        default: "allow",
        policies: [
          { id: "no-drops", when: { tool: "drop_table" }, action: "block" },
          { id: "approve-refunds", when: { tool: "refund" }, action: "require_approval" },
        ],
      },
    });
    expect(put.status).toBe(201);
    const version = put.body.version as number;
    await until(() => one.warden.remote!.status.policyVersion === version && three.warden.remote!.status.policyVersion === version, `both agents hold policy version ${version}`);
    for (const { warden } of [one, three]) {
      await expect(warden.run({ task: "drop" }, (run) => run.tool("drop_table", { table: "orders" }, () => "dropped"))).rejects.toMatchObject({ name: "ToolBlockedError" });
    }

    const refund = one.warden.run({ task: "refund 42" }, (run) => run.tool("refund", { amount: 42 }, () => "refunded 42"));
    let pending: Array<{ approvalId: string; agentId: string }> = [];
    await until(async () => {
      pending = (await api(R(3), keys.reviewer, "GET", "/v1/approvals?status=pending&agentId=policy-one")).body.items;
      return pending.length === 1;
    }, "the request is pending on replica 3");
    expect((await api(R(3), keys.reviewer, "POST", `/v1/approvals/${pending[0]!.approvalId}/approve`, { reason: "fine" })).status).toBe(200);
    expect(await refund).toBe("refunded 42");
    expect((await api(R(1), keys.reviewer, "GET", `/v1/approvals/${pending[0]!.approvalId}`)).body).toMatchObject({ status: "approved", reviewer: "alice" });
    // Back to no rules for the cases after this one.
    expect((await api(R(2), keys.admin, "PUT", "/v1/policies", { policies: { version: 1, default: "allow", policies: [] } })).status).toBe(201);
  }, 60_000);

  it("the database restarted under load: replicas reconnect and LISTEN again, the agents' spools drain, nothing is lost", async () => {
    const workers = [agent("restart-one", [R(1), R(2), R(3)]), agent("restart-three", [R(3), R(1), R(2)])];
    expect(await Promise.all(workers.map((w) => w.warden.ready()))).toEqual([true, true]);
    let working = true;
    const loops = workers.map(async ({ warden }) => {
      for (let i = 0; working; i++) {
        await warden.run({ task: `loop ${i}` }, (run) => run.tool("read_order", { i }, () => ({ order: i })));
        await sleep(2);
      }
    });
    const watcher = agent("restart-watcher", [R(3)], { group: "watchers" });
    expect(await watcher.warden.ready()).toBe(true);
    await until(() => watcher.warden.remote!.status.streamConnected, "the watcher's stream is open");
    await sleep(300);

    cluster.restart();
    for (const n of [1, 2, 3] as const) await until(async () => (await fetch(`${R(n)}/readyz`)).status === 200, `replica ${n} is ready again`);
    await sleep(300);
    // A halt posted on replica 1 reaches the watcher on replica 3: replica 3 listens again.
    let posted = 0;
    await until(async () => (posted = (await api(R(1), keys.admin, "POST", "/v1/halts", { group: "watchers", reason: "after the restart" })).status) === 201, "the halt is stored");
    expect(posted).toBe(201);
    await until(() => watcher.warden.signal.aborted, "the watcher is halted");
    await api(R(1), keys.admin, "POST", "/v1/halts/resume", { group: "watchers" });

    working = false;
    await Promise.all(loops);
    for (const { warden } of workers) {
      await until(async () => {
        await warden.flush();
        const status = warden.remote!.status;
        return status.queued === 0 && status.spooledBytes === 0 && !status.offline;
      }, "the spool drains");
      await warden.shutdown();
    }
    const counts = await ledgerCounts(R(2), keys.admin);
    for (const { warden, made } of workers) {
      expect(made.length).toBeGreaterThan(0);
      expect(warden.remote!.deadLetters().map((letter) => `${letter.code}: ${letter.reason}`)).toEqual([]);
      expect(missingOrTwice(made, counts)).toEqual([]);
    }
  }, 90_000);

  it("kill -9 of replica 1 in the middle of a 10,000-event ingest from four agents: they fail over, and every event is stored exactly once", async () => {
    const workers = Array.from({ length: 4 }, (_, i) => agent(`kill-${i}`, i % 2 === 0 ? [R(1), R(2), R(3)] : [R(1), R(3), R(2)]));
    expect(await Promise.all(workers.map((w) => w.warden.ready()))).toEqual([true, true, true, true]);
    const RUNS = 625;
    const bursts = workers.map(async ({ warden }) => {
      for (let i = 0; i < RUNS; i++) {
        await warden.run({ task: `refund ${i}` }, (run) => run.tool("read_order", { i }, () => ({ order: i })));
        if (i % 20 === 0) await sleep(1);
      }
    });
    await until(() => workers.reduce((n, w) => n + w.warden.remote!.status.sent, 0) >= 3000, "3,000 events are sent", 60_000);
    replicas[0]!.child.kill("SIGKILL");
    expect(await replicas[0]!.exited).toBeNull();
    await Promise.all(bursts);
    for (const { warden } of workers) {
      await until(async () => {
        await warden.flush();
        return warden.remote!.status.queued === 0 && warden.remote!.status.spooledBytes === 0;
      }, "everything is sent", 60_000);
      await warden.shutdown();
    }
    const counts = await ledgerCounts(R(3), keys.admin);
    const made = workers.flatMap((w) => w.made);
    expect(made.length).toBeGreaterThanOrEqual(10_000);
    expect(missingOrTwice(made, counts)).toEqual([]);
    for (const { warden } of workers) expect(warden.remote!.status).toMatchObject({ deadLettered: 0, dropped: 0 });
    expect((await api(R(2), keys.admin, "GET", "/v1/runs?limit=1")).body.total).toBeGreaterThanOrEqual(4 * RUNS);
    expect((await api(R(2), keys.admin, "GET", "/v1/ledger/verify")).body).toMatchObject({ ok: true });
  }, 120_000);
});
