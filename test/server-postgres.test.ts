// The control plane on PostgreSQL, as a cluster: two replicas (two `createWardenServer` on one
// database, each with its own HTTP port and stream hub). A halt made on one reaches the stream
// clients of the other; an approval decided on one releases a request waiting through the other;
// policies and their ETags, the ledger and the roles are the same on both.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyEvidence } from "agent-warden";
import { createWardenServer, PostgresControlPlaneStore, type WardenServer } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";
import { childEnv, REPO } from "./fixtures/proc.js";
import { POLICIES } from "./fixtures/make-wire-contract.js";

const FAR = 4_102_444_800_000;

async function call(url: string, key: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url + path, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { "content-type": "application/json" }), ...headers }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const text = await response.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** Follows a replica's stream; `next(type)` resolves with the first message of that type not yet taken. */
function follow(url: string, key: string, lastEventId?: string) {
  const controller = new AbortController();
  const messages: Array<{ id: string | undefined; event: string; data: any }> = [];
  const waiters: Array<() => void> = [];
  const opened = fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${key}`, ...(lastEventId !== undefined && { "last-event-id": lastEventId }) }, signal: controller.signal }).then(async (response) => {
    expect(response.status).toBe(200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(block.split("\n").filter((line) => !line.startsWith(":") && line.includes(": ")).map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]));
          if (fields.event === undefined) continue;
          messages.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data ?? "null") });
          for (const wake of waiters.splice(0)) wake();
        }
      }
    })();
  });
  const taken = new Set<number>();
  return {
    opened,
    async next(event: string, where: (data: any) => boolean = () => true) {
      for (;;) {
        const index = messages.findIndex((m, i) => !taken.has(i) && m.event === event && where(m.data));
        if (index >= 0) {
          taken.add(index);
          return messages[index]!;
        }
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    close: () => controller.abort(),
  };
}

describe.skipIf(POSTGRES_SKIP !== undefined)(`the control plane on PostgreSQL, two replicas on one database${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, () => {
  let cluster: PostgresCluster;
  let database: string;
  const replicas: Array<{ server: WardenServer; url: string }> = [];
  const key = { admin: "", reviewer: "", agent: "" };
  const errors: unknown[] = [];

  beforeAll(async () => {
    cluster = await startPostgres();
    database = cluster.createDatabase("warden_cluster");
    // Both replicas start at once: one migrates under the advisory lock, the other waits.
    const servers = [0, 1].map(() => createWardenServer({ database, sweepInterval: 100, onError: (error) => errors.push(error) }));
    await Promise.all(servers.map((server) => (server.store as PostgresControlPlaneStore).ready()));
    for (const server of servers) replicas.push({ server, url: (await server.listen(0)).url });
    const store = replicas[0]!.server.store;
    key.admin = (await store.createKey({ org: "acme", role: "admin", name: "root" })).key;
    key.reviewer = (await store.createKey({ org: "acme", role: "reviewer", name: "alice" })).key;
    key.agent = (await store.createKey({ org: "acme", role: "agent", name: "bot-key", agentId: "acme-bot" })).key;
  }, 120_000);

  afterAll(async () => {
    for (const { server } of replicas) await server.close();
    cluster?.stop();
  });

  const [A, B] = [0, 1].map((i) => () => replicas[i]!.url);

  it("a key made on one replica works on the other; /healthz and /readyz answer for load balancers", async () => {
    expect((await call(B!(), key.agent, "GET", "/v1/me")).body).toMatchObject({ org: "acme", role: "agent", agentId: "acme-bot" });
    expect((await fetch(`${B!()}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${B!()}/readyz`)).json()).toEqual({ status: "ready", store: "postgres" });
  });

  it("a halt posted to replica A reaches a stream client of replica B", async () => {
    const stream = follow(B!(), key.agent);
    await stream.opened;
    await stream.next("hello");
    const posted = await call(A!(), key.admin, "POST", "/v1/halts", { agentId: "acme-bot", reason: "incident on A" });
    expect(posted.status).toBe(201);
    const heard = await stream.next("halt.created");
    expect(heard.data).toMatchObject({ haltId: posted.body.haltId, reason: "incident on A" });
    expect((await call(B!(), key.agent, "POST", "/v1/check", { tool: "read_order" })).body).toMatchObject({ action: "block", halted: true });
    // The lift, made on B, reaches the same client (and B's own table answers A too).
    await call(B!(), key.admin, "POST", "/v1/halts/resume", { agentId: "acme-bot" });
    await stream.next("halt.lifted");
    expect((await call(A!(), key.agent, "GET", "/v1/halts")).body.halts).toEqual([]);
    stream.close();
  });

  it("an approval decided on replica B releases the request an agent waits for through replica A", async () => {
    const stream = follow(A!(), key.agent);
    await stream.opened;
    await stream.next("hello");
    const asked = await call(A!(), key.agent, "POST", "/v1/approvals", { approvalId: "apr_cluster000001", toolCallId: "tc_cluster1", runId: "run_cluster1", agentId: "acme-bot", toolName: "refund", payload: { amount: 90 }, expiresAt: FAR });
    expect(asked.status).toBe(201);
    expect((await call(B!(), key.reviewer, "GET", "/v1/approvals?status=pending")).body.items.map((a: { approvalId: string }) => a.approvalId)).toContain("apr_cluster000001");
    expect((await call(B!(), key.reviewer, "POST", "/v1/approvals/apr_cluster000001/approve", { reason: "ok" })).status).toBe(200);
    const resolved = await stream.next("approval.resolved", (data) => data.approvalId === "apr_cluster000001");
    expect(resolved.data).toMatchObject({ status: "approved", reviewer: "alice" });
    // Deciding twice, on either replica, is a conflict: the row is the truth.
    expect((await call(A!(), key.reviewer, "POST", "/v1/approvals/apr_cluster000001/reject", {})).status).toBe(409);
    stream.close();
  });

  it("a policy version put on one replica is current on both, with the same ETag, and pushed to the other's streams", async () => {
    const stream = follow(B!(), key.agent);
    await stream.opened;
    await stream.next("hello");
    const put = await call(A!(), key.admin, "PUT", "/v1/policies", { policies: POLICIES, comment: "from A" });
    expect(put.status).toBe(201);
    const [onA, onB] = await Promise.all([call(A!(), key.agent, "GET", "/v1/policies/current"), call(B!(), key.agent, "GET", "/v1/policies/current")]);
    expect(onB.headers.get("etag")).toBe(put.headers.get("etag"));
    expect(onA.headers.get("etag")).toBe(onB.headers.get("etag"));
    expect((await stream.next("policy.updated")).data.etag).toBe(put.headers.get("etag"));
    expect((await call(B!(), key.agent, "GET", "/v1/policies/current", undefined, { "if-none-match": put.headers.get("etag")! })).status).toBe(304);
    stream.close();
  });

  it("Last-Event-ID replays on any replica what was written on another", async () => {
    const first = follow(A!(), key.reviewer, "0");
    await first.opened;
    const replayed = await first.next("policy.updated");
    first.close();
    await call(A!(), key.admin, "POST", "/v1/tokens/revoke", { tokenId: "tok_cluster1", reason: "leaked" });
    const resumed = follow(B!(), key.reviewer, replayed.id);
    await resumed.opened;
    expect((await resumed.next("token.revoked")).data).toEqual({ tokenId: "tok_cluster1", reason: "leaked" });
    resumed.close();
  });

  it("ingest, roles and refusals are the same on both replicas, and events are stored once", async () => {
    const events = [
      { id: "evt_pg1", type: "run.started", ts: Date.now(), agentId: "acme-bot", runId: "run_pg1", stepId: null, toolCallId: null, actor: null, data: { traceId: "trace_pg1" } },
      { id: "evt_pg2", type: "tool.called", ts: Date.now(), agentId: "acme-bot", runId: "run_pg1", stepId: null, toolCallId: "tc_pg1", actor: null, data: { toolName: "deploy", decision: "block" } },
      { id: "evt_pg3", type: "tool.blocked", ts: Date.now(), agentId: "acme-bot", runId: "run_pg1", stepId: null, toolCallId: "tc_pg1", actor: null, data: { toolName: "deploy", reason: "no" } },
    ];
    expect((await call(A!(), key.agent, "POST", "/v1/events", { events })).body).toEqual({ accepted: 3, duplicates: 0 });
    expect((await call(B!(), key.agent, "POST", "/v1/events", { events })).body).toEqual({ accepted: 0, duplicates: 3 });
    const forged = [
      { ...events[0]!, id: "evt_pg4", type: "tool.completed", toolCallId: "tc_pg1", data: { toolName: "deploy", status: "completed" } },
      { ...events[0]!, id: "evt_pg5", type: "token.revoked", agentId: null, data: { tokenId: "tok_x" } },
    ];
    expect((await call(B!(), key.agent, "POST", "/v1/events", { events: forged })).body.rejected.map((r: { code: string }) => r.code)).toEqual(["conflict", "insufficient_scope"]);
    const run = (await call(A!(), key.reviewer, "GET", "/v1/runs/run_pg1")).body;
    expect(run.toolCalls[0]).toMatchObject({ toolCallId: "tc_pg1", status: "blocked" });
    expect(run.events.map((e: { id: string }) => e.id)).toEqual(["evt_pg1", "evt_pg2", "evt_pg3"]);
  });

  it("one ledger chain per organization, written from both replicas, verifies the same from either", async () => {
    const globex = (await replicas[1]!.server.store.createKey({ org: "globex", role: "admin" })).key;
    // Concurrent appends to one organization's chain from both replicas: serialized by its head row.
    await Promise.all(Array.from({ length: 20 }, (_, i) => call(i % 2 ? A!() : B!(), key.admin, "POST", "/v1/tokens/revoke", { tokenId: `tok_race${i}` })));
    await call(B!(), globex, "POST", "/v1/tokens/revoke", { tokenId: "tok_globex" });
    const [onA, onB] = await Promise.all([call(A!(), key.reviewer, "GET", "/v1/ledger/verify"), call(B!(), key.reviewer, "GET", "/v1/ledger/verify")]);
    expect(onA.body).toMatchObject({ ok: true });
    expect(onB.body).toEqual(onA.body);
    expect((await call(A!(), globex, "GET", "/v1/ledger/verify")).body).toMatchObject({ ok: true, entries: 2, head: { seq: 2 } });
  });

  it("a tool call's evidence from either replica verifies offline against the organization's pinned key, under the policy version in force", async () => {
    const pinned = (await call(A!(), key.reviewer, "GET", "/v1/ledger/key")).body as { origin: string; publicKey: string };
    const bundle = (await call(B!(), key.reviewer, "GET", "/v1/evidence/tc_pg1")).body;
    expect(bundle.log.origin).toBe(pinned.origin);
    const result = await verifyEvidence(bundle, { publicKey: pinned.publicKey });
    expect(result).toMatchObject({ ok: true, subject: { kind: "toolCall", id: "tc_pg1" }, agentId: "acme-bot" });
    if (result.ok) expect(result.policy).not.toBeNull();
    expect((await call(A!(), key.agent, "GET", "/v1/evidence/tc_pg1")).status).toBe(403);
  });

  it("a halted agent cannot ask for approval on any replica", async () => {
    await call(A!(), key.admin, "POST", "/v1/halts", { agentId: "acme-bot", reason: "stop" });
    const asked = await call(B!(), key.agent, "POST", "/v1/approvals", { toolCallId: "tc_h", runId: "run_h", agentId: "acme-bot", toolName: "refund" });
    expect([asked.status, asked.body.error.code]).toEqual([403, "agent_halted"]);
    await call(B!(), key.admin, "POST", "/v1/halts/resume", { agentId: "acme-bot" });
  });

  it("an unreachable database is a clear startup error naming host and port, never the password", async () => {
    const store = new PostgresControlPlaneStore({ url: "postgres://warden:s3cret-pw@127.0.0.1:1/nowhere" });
    const error = await store.ready().catch((e: unknown) => e as Error);
    expect(String((error as Error).message)).toMatch(/127\.0\.0\.1:1\/nowhere/);
    expect(String((error as Error).message)).not.toContain("s3cret-pw");
    await store.close();
  });

  it("a console session made on one replica works on the other and after a restart; revoking its key ends it everywhere", async () => {
    const { key: secret, record } = await replicas[0]!.server.store.createKey({ org: "acme", role: "reviewer", name: "carol" });
    const signIn = await fetch(`${A!()}/console/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ apiKey: secret }) });
    expect(signIn.status).toBe(201);
    const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
    const session = (await fetch(`${B!()}/console/session`, { headers: { cookie } }).then((r) => r.json())) as { signedIn: boolean; name: string };
    expect(session).toMatchObject({ signedIn: true, name: "carol" });
    expect((await fetch(`${B!()}/v1/approvals`, { headers: { cookie } })).status).toBe(200);
    // A third replica, started after the sign-in, knows the session too.
    const later = createWardenServer({ database, onError: (error) => errors.push(error) });
    const { url: C } = await later.listen(0);
    expect((await fetch(`${C}/v1/approvals`, { headers: { cookie } })).status).toBe(200);
    expect((await call(A!(), key.admin, "DELETE", `/v1/keys/${record.keyId}`)).status).toBe(200);
    expect((await fetch(`${C}/v1/approvals`, { headers: { cookie } })).status).toBe(401);
    expect((await fetch(`${B!()}/v1/approvals`, { headers: { cookie } })).status).toBe(401);
    await later.close();
  });

  it("warden serve with an unreachable --database exits non-zero, naming host and port, never the password", async () => {
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "src/cli/bin.ts"), "--org", "acme", "serve", "--port", "0", "--database", "postgres://warden:s3cret-pw@127.0.0.1:1/warden"], { cwd: REPO, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
      child.on("close", (code) => resolve({ code, output }));
    });
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/127\.0\.0\.1:1\/warden/);
    expect(result.output).not.toContain("s3cret-pw");
  }, 60_000);

  it("reported nothing unexpected", () => {
    expect(errors).toEqual([]);
  });
});
