// Express: one HTTP request to a loopback Express 5 app (fetch, keep-alive), on a route without a
// guard, and guarded by requireAgentPermission: verified offline with the public key (verified tokens
// kept, so a repeat costs only the expiry, revocation and halt checks), verified offline on every
// request (cache off: two Ed25519 verifications for a two-block token), and with the organization's
// Warden (verification, a run under the token and the request recorded).
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express, { type RequestHandler } from "express";
import { Warden } from "agent-warden";
import { requireAgentPermission } from "agent-warden/express";
import { measureAsync, type BenchRow, type Timing } from "./harness.js";

const GROUP = "adapters";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-express-"));
  const rows: BenchRow[] = [];
  const row = (name: string, timing: Timing, note?: string) => rows.push({ group: GROUP, name, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec, note });
  const org = new Warden({ agentId: "org", store: join(dir, "warden.db") });
  const root = org.tokens.mint({ agentId: "planner", scopes: ["orders:*"], ttl: "1h" });
  const token = org.tokens.attenuate(root, { audience: "planner/orders-agent", scopes: ["orders:read"] });
  const offline = { publicKey: org.tokens.publicJwk(), isRevoked: (id: string) => org.tokens.isRevoked(id) };
  const answer: RequestHandler = (request, response) => {
    response.json({ order: request.params.id, agent: request.agent?.agentId });
  };
  const app = express();
  app.get("/plain/:id", answer);
  app.get("/cached/:id", requireAgentPermission("orders:read", offline), answer);
  app.get("/recorded/:id", requireAgentPermission("orders:read", { warden: org }), answer);
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const headers = { authorization: `Bearer ${token}` };
  try {
    const options = { samples: 300, batch: 5, warmup: 200 };
    let n = 0;
    const get = (route: string) => async () => {
      const response = await fetch(`${base}/${route}/${n++}`, { headers });
      if (response.status !== 200) throw new Error(`${route}: ${response.status}`);
      await response.arrayBuffer();
    };
    const plain = await measureAsync(get("plain"), options);
    row("express request, no guard", plain, "fetch over loopback, keep-alive");
    const cached = await measureAsync(get("cached"), options);
    row("express request + requireAgentPermission, public key", cached, `signatures checked once per token; +${(cached.medianUs - plain.medianUs).toFixed(0)} µs`);
    const recorded = await measureAsync(get("recorded"), options);
    row("express request + requireAgentPermission, organization's Warden", recorded, `verify + run + record, file store; +${(recorded.medianUs - plain.medianUs).toFixed(0)} µs`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    org.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
