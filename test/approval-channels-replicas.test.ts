// Approval channels on two control-plane replicas sharing one PostgreSQL database: each change is
// delivered once (by the replica that made it), and a Slack click answered by the other replica
// still updates the message the first one posted.
import { createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApprovalDelivery } from "agent-warden";
import { createWardenServer, PostgresControlPlaneStore, type WardenServer } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const SIGNING_SECRET = randomBytes(16).toString("hex");

interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(POSTGRES_SKIP !== undefined)(`approval channels on two replicas${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, () => {
  let cluster: PostgresCluster;
  let receiver: Server;
  const received: Received[] = [];
  let ts = 0;
  const replicas: Array<{ server: WardenServer; url: string }> = [];
  const key = { reviewer: "", agent: "" };

  beforeAll(async () => {
    cluster = await startPostgres();
    const database = cluster.createDatabase("warden_channels");
    // One loopback server plays both the webhook receiver and Slack's Web API.
    receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      request.on("end", () => {
        received.push({ path: request.url ?? "", headers: request.headers, body });
        if (request.url?.startsWith("/api/")) response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true, channel: "C0WARDEN", ts: JSON.parse(body).ts ?? `1700000000.${++ts}` }));
        else response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const channels = { webhooks: [{ id: "hook", url: `${base}/hook`, secret: SECRET }], slack: { token: "xoxb-t", channel: "C0WARDEN", signingSecret: SIGNING_SECRET, apiUrl: `${base}/api` }, retry: { attempts: 2, initialDelay: 10 } };
    const servers = [0, 1].map(() => createWardenServer({ database, sweepInterval: 100, channels, onError: (error) => console.error(error) }));
    await Promise.all(servers.map((server) => (server.store as PostgresControlPlaneStore).ready()));
    for (const server of servers) replicas.push({ server, url: (await server.listen(0)).url });
    key.reviewer = (await servers[0]!.store.createKey({ org: "acme", role: "reviewer", name: "alice" })).key;
    key.agent = (await servers[0]!.store.createKey({ org: "acme", role: "agent", name: "bot", agentId: "acme-bot" })).key;
  }, 120_000);

  afterAll(async () => {
    for (const { server } of replicas) await server.close();
    await new Promise((resolve) => receiver?.close(resolve));
    cluster?.stop();
  });

  const call = async (url: string, apiKey: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${apiKey}`, ...(body !== undefined && { "Content-Type": "application/json" }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    return { status: response.status, body: (await response.json()) as any };
  };

  it("a request made on A and clicked in Slack through B: each event is delivered once, and A's Slack message shows the outcome", async () => {
    const [A, B] = replicas.map((r) => r.url) as [string, string];
    const created = await call(A, key.agent, "POST", "/v1/approvals", { toolCallId: "tc_replica1", runId: "run_replica1", agentId: "acme-bot", toolName: "deploy", payload: { version: "1.4.2" }, policyId: "approve-prod-deploy", timeoutMs: 600_000 });
    expect(created.status).toBe(201);
    const { approvalId } = created.body;
    await until("the Slack message", () => received.find((r) => r.path === "/api/chat.postMessage" && r.body.includes(approvalId)));

    const timestamp = Math.floor(Date.now() / 1000);
    const form = new URLSearchParams({ payload: JSON.stringify({ type: "block_actions", user: { id: "U0ALICE" }, actions: [{ action_id: "warden_approve", value: JSON.stringify({ org: "acme", approvalId }) }] }) }).toString();
    const signature = `v0=${createHmac("sha256", SIGNING_SECRET).update(`v0:${timestamp}:${form}`).digest("hex")}`;
    const clicked = await fetch(`${B}/v1/channels/slack/interactions`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-signature": signature, "x-slack-request-timestamp": String(timestamp) }, body: form });
    expect(clicked.status).toBe(200);

    const update = await until("the update from A", () => received.find((r) => r.path === "/api/chat.update" && r.body.includes(approvalId)));
    expect(JSON.stringify(JSON.parse(update.body).blocks)).toContain("slack:U0ALICE");
    // Every delivery either replica made for this request, settled.
    const all = await until("deliveries settled", async () => {
      const lists = await Promise.all([A, B].map(async (url) => (await call(url, key.reviewer, "GET", `/v1/approval-channels/deliveries?approvalId=${approvalId}`)).body.items as ApprovalDelivery[]));
      return lists.every((list) => list.length === 4 && list.every((d) => d.status === "delivered")) ? lists : undefined;
    });
    // The records are the database's: both replicas list the same four, one per event and channel.
    const [onA, onB] = all as [ApprovalDelivery[], ApprovalDelivery[]];
    expect(onA.map((d) => `${d.channel} ${d.event}`).sort()).toEqual(["slack approval.decided", "slack approval.requested", "webhook approval.decided", "webhook approval.requested"]);
    expect(onB).toEqual(onA);
    expect(received.filter((r) => r.path === "/api/chat.update" && r.body.includes(approvalId))).toHaveLength(1);
    expect(received.filter((r) => r.path === "/api/chat.postMessage" && r.body.includes(approvalId))).toHaveLength(1);
    const hooks = received.filter((r) => r.path === "/hook" && r.body.includes(approvalId)).map((r) => JSON.parse(r.body).type);
    expect(hooks.sort()).toEqual(["approval.decided", "approval.requested"]);
  }, 60_000);
});
