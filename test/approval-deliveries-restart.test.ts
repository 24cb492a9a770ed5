// Delivery records live in the control plane's database: a webhook that is down when a request is
// made is retried by the control plane started again on the same database (SQLite file, PostgreSQL),
// with the same record (id, first attempt, count), the same message id and body; and the records
// read through the API after the restart are the ones made before it.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApprovalDelivery } from "agent-warden";
import { createWardenServer, PostgresControlPlaneStore, type WardenServer, type WardenServerOptions } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Backend {
  name: string;
  skip: string | undefined;
  /** Where the control plane keeps its data; the same for every start. */
  database(): Promise<Pick<WardenServerOptions, "db" | "database">>;
  stop(): void;
}

let dir: string | undefined;
let cluster: PostgresCluster | undefined;
const backends: Backend[] = [
  {
    name: "SQLite",
    skip: undefined,
    async database() {
      dir ??= mkdtempSync(join(tmpdir(), "warden-deliveries-"));
      return { db: join(dir, "warden.db") };
    },
    stop: () => dir && rmSync(dir, { recursive: true, force: true }),
  },
  {
    name: "PostgreSQL",
    skip: POSTGRES_SKIP,
    async database() {
      cluster ??= await startPostgres();
      return { database: cluster.url };
    },
    stop: () => cluster?.stop(),
  },
];

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(`approval deliveries across a restart: ${backend.name}${backend.skip ? ` (skipped: ${backend.skip})` : ""}`, () => {
    const received: Array<{ headers: IncomingMessage["headers"]; body: string; answered: number }> = [];
    let up = false;
    let receiver: Server;
    let hookUrl: string;

    beforeAll(async () => {
      // Down (503) until `up`: then it accepts.
      receiver = createServer((request, response) => {
        let body = "";
        request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
        request.on("end", () => {
          const answered = up ? 204 : 503;
          received.push({ headers: request.headers, body, answered });
          response.writeHead(answered).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
      hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    }, 120_000);

    afterAll(async () => {
      await new Promise((resolve) => receiver?.close(resolve));
      backend.stop();
    });

    const start = async (): Promise<{ server: WardenServer; url: string }> => {
      const server = createWardenServer({
        ...(await backend.database()),
        console: false,
        channels: { webhooks: [{ id: "ops-hook", url: hookUrl, secret: SECRET, events: ["approval.requested"] }], retry: { attempts: 5, initialDelay: 400, maxDelay: 400 } },
        onError: () => {},
      });
      if (server.store instanceof PostgresControlPlaneStore) await server.store.ready();
      return { server, url: (await server.listen(0)).url };
    };
    const call = async (url: string, key: string, method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { "content-type": "application/json" }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
      return { status: response.status, body: (await response.json()) as any };
    };

    it("a failed delivery is retried by the next process on the same database, with the same record and message", async () => {
      const first = await start();
      const reviewer = (await first.server.store.createKey({ org: "acme", role: "reviewer", name: "alice" })).key;
      const agent = (await first.server.store.createKey({ org: "acme", role: "agent", name: "bot", agentId: "billing-agent" })).key;
      const created = await call(first.url, agent, "POST", "/v1/approvals", { toolCallId: "tc_restart1", runId: "run_restart1", agentId: "billing-agent", toolName: "refund", payload: { amount: 9000 }, timeoutMs: 600_000 });
      expect(created.status).toBe(201);
      const { approvalId } = created.body;
      const failedOnce = await until("the first attempt to fail", async () => {
        const items = (await call(first.url, reviewer, "GET", `/v1/approval-channels/deliveries?approvalId=${approvalId}`)).body.items as ApprovalDelivery[];
        return items.length === 1 && items[0]!.status === "retrying" ? items[0]! : undefined;
      });
      expect(failedOnce).toMatchObject({ channel: "webhook", target: "ops-hook", event: "approval.requested", attempts: 1, lastStatus: 503, lastError: "HTTP 503" });
      // The control plane stops before its next attempt is due.
      await first.server.close();
      const attemptsBefore = received.length;

      up = true;
      const second = await start();
      const delivered = await until("the retry from the restarted control plane", async () => {
        const items = (await call(second.url, reviewer, "GET", `/v1/approval-channels/deliveries?approvalId=${approvalId}`)).body.items as ApprovalDelivery[];
        return items.length === 1 && items[0]!.status === "delivered" ? items[0]! : undefined;
      });
      expect(delivered).toMatchObject({ deliveryId: failedOnce.deliveryId, createdAt: failedOnce.createdAt, attempts: attemptsBefore + 1 });
      expect(delivered.deliveredAt).toBeGreaterThanOrEqual(failedOnce.updatedAt);
      expect(delivered.lastError).toBeUndefined();
      // Every attempt carried the same message id and body (the receiver's idempotency key), signed anew.
      const attempts = received.filter((r) => r.body.includes(approvalId));
      expect(attempts.map((a) => a.answered)).toEqual([...Array(attemptsBefore).fill(503), 204]);
      expect(new Set(attempts.map((a) => a.headers["webhook-id"])).size).toBe(1);
      expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
      // The request was announced once more by nobody: one record, one delivery.
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(received.filter((r) => r.body.includes(approvalId))).toHaveLength(attemptsBefore + 1);
      await second.server.close();
    }, 60_000);
  });
}
