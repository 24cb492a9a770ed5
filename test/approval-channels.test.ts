// Approval channels on a real control plane (Express on loopback, SQLite in a temp dir): webhooks to
// receivers on loopback ports, checked with a Standard Webhooks verifier written here; a fake Slack
// Web API on a loopback port; Slack interactions signed as Slack signs them.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ApprovalChannels, ConfigError, Warden, attachApprovalChannels, loadApprovalChannels, signWebhook, verifySlackSignature, type ApprovalDelivery } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";

const ORG = "acme";
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const SIGNING_SECRET = randomBytes(16).toString("hex");
const SLACK_TOKEN = "xoxb-test-token";

// ── an independent Standard Webhooks verifier ───────────────────────────────────────────────────
function verifyStandardWebhook(secret: string, headers: IncomingMessage["headers"], body: string, toleranceSeconds = 300): boolean {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (typeof id !== "string" || typeof timestamp !== "string" || typeof signatures !== "string") return false;
  if (id.includes(".") || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(Math.floor(Date.now() / 1000) - Number(timestamp)) > toleranceSeconds) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(" ").some((entry) => {
    const [version, value] = entry.split(",", 2);
    if (version !== "v1" || value === undefined) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  /** What the receiver answered. */
  answer?: unknown;
}

/** An HTTP server on a loopback port that records requests and answers with `answer`. */
async function receiver(answer: (received: Received, index: number) => { status: number; body?: unknown }): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const entry: Received = { path: request.url ?? "", headers: request.headers, body: Buffer.concat(chunks).toString("utf8") };
      received.push(entry);
      const { status, body } = answer(entry, received.length - 1);
      entry.answer = body;
      response.writeHead(status, { "content-type": "application/json" }).end(body === undefined ? "" : JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
}

/** A port nothing listens on. */
async function deadPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function slackSign(body: string, timestamp = Math.floor(Date.now() / 1000), secret = SIGNING_SECRET) {
  return { "x-slack-request-timestamp": String(timestamp), "x-slack-signature": `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}` };
}

function interaction(approvalId: string, actionId: "warden_approve" | "warden_reject", user = { id: "U024BE7LH", username: "carol" }) {
  const payload = { type: "block_actions", user, team: { id: "T0001" }, actions: [{ action_id: actionId, block_id: `warden_${approvalId}`, value: JSON.stringify({ org: ORG, approvalId }), type: "button" }] };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

let dir: string;
let server: WardenServer;
let url: string;
let keys: { admin: string; reviewer: string; agent: string };
let good: Awaited<ReturnType<typeof receiver>>;
let flaky: Awaited<ReturnType<typeof receiver>>;
let gone: Awaited<ReturnType<typeof receiver>>;
let slack: Awaited<ReturnType<typeof receiver>>;
let slackTs = 0;
const errors: unknown[] = [];

async function api(method: string, path: string, options: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.Authorization = `Bearer ${options.key}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const body = options.raw ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined);
  const response = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined && { body }) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as any) : undefined };
}

let counter = 0;
async function requestApproval(extra: Record<string, unknown> = {}) {
  counter++;
  const created = await api("POST", "/v1/approvals", {
    key: keys.agent,
    body: { toolCallId: `tc_chan${counter}`, runId: `run_chan${counter}`, agentId: "billing-agent", toolName: "deploy", payload: { version: "1.4.2", environment: "production", apiKey: "sk-live-abcdefghijklmnopqrstuvwx" }, agentContext: { goal: "ship release 1.4.2" }, policyId: "approve-prod-deploy", reason: "Production deploys need a human", timeoutMs: 600_000, ...extra },
  });
  expect(created.status).toBe(201);
  return created.body as { approvalId: string };
}

const deliveries = async (approvalId: string): Promise<ApprovalDelivery[]> => (await api("GET", `/v1/approval-channels/deliveries?approvalId=${approvalId}`, { key: keys.reviewer })).body.items;
const webhookEvents = (target: { received: Received[] }, approvalId: string) => target.received.filter((r) => r.body && JSON.parse(r.body).data?.approvalId === approvalId);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "warden-channels-"));
  good = await receiver(() => ({ status: 204 }));
  // Fails twice per message, then accepts.
  const failures = new Map<string, number>();
  flaky = await receiver((entry) => {
    const id = String(entry.headers["webhook-id"]);
    const seen = failures.get(id) ?? 0;
    failures.set(id, seen + 1);
    return { status: seen < 2 ? 503 : 200 };
  });
  gone = await receiver(() => ({ status: 410 }));
  slack = await receiver((entry) => {
    if (entry.headers.authorization !== `Bearer ${SLACK_TOKEN}`) return { status: 200, body: { ok: false, error: "invalid_auth" } };
    const body = JSON.parse(entry.body) as { channel: string; ts?: string };
    return { status: 200, body: { ok: true, channel: "C0WARDEN", ts: body.ts ?? `1700000000.${String(++slackTs).padStart(6, "0")}` } };
  });
  server = createWardenServer({
    db: join(dir, "warden.db"),
    sweepInterval: 50,
    onError: (error) => errors.push(error),
    channels: {
      webhooks: [
        { id: "good", url: `${good.url}/hooks/warden`, secret: WEBHOOK_SECRET },
        { id: "flaky", url: `${flaky.url}/hooks`, secret: WEBHOOK_SECRET, events: ["approval.requested"] },
        { id: "gone", url: `${gone.url}/hooks`, secret: WEBHOOK_SECRET, events: ["approval.requested"] },
        { id: "down", url: `${await deadPort()}/hooks`, secret: WEBHOOK_SECRET, events: ["approval.requested"] },
      ],
      slack: { token: SLACK_TOKEN, channel: "#approvals", signingSecret: SIGNING_SECRET, apiUrl: `${slack.url}/api` },
      retry: { attempts: 4, initialDelay: 20, maxDelay: 200, timeout: 2000 },
    },
  });
  keys = {
    admin: (await server.store.createKey({ org: ORG, role: "admin", name: "alice" })).key,
    reviewer: (await server.store.createKey({ org: ORG, role: "reviewer", name: "bob" })).key,
    agent: (await server.store.createKey({ org: ORG, role: "agent", name: "billing agents", agentId: "billing-agent" })).key,
  };
  ({ url } = await server.listen(0));
}, 30_000);

afterAll(async () => {
  await server?.close();
  for (const r of [good, flaky, gone, slack]) await new Promise((resolve) => r?.server.close(resolve));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("signed webhooks (Standard Webhooks)", () => {
  test("approval.requested and approval.decided arrive signed; the receiver's own check verifies them; a changed body does not", async () => {
    const { approvalId } = await requestApproval();
    const requested = await until("the requested webhook", () => webhookEvents(good, approvalId)[0]);
    expect(requested.path).toBe("/hooks/warden");
    expect(requested.headers["webhook-id"]).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(requested.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(verifyStandardWebhook(WEBHOOK_SECRET, requested.headers, requested.body)).toBe(true);
    expect(verifyStandardWebhook(WEBHOOK_SECRET, requested.headers, requested.body.replace("1.4.2", "6.6.6"))).toBe(false);
    expect(verifyStandardWebhook(`whsec_${randomBytes(32).toString("base64")}`, requested.headers, requested.body)).toBe(false);
    const event = JSON.parse(requested.body);
    expect(event).toMatchObject({ type: "approval.requested", data: { org: ORG, approvalId, toolName: "deploy", agentId: "billing-agent", policyId: "approve-prod-deploy", status: "pending" } });
    expect(Number.isNaN(Date.parse(event.timestamp))).toBe(false);
    // Secrets in the arguments never leave redacted.
    expect(requested.body).not.toContain("sk-live-abcdefghijklmnopqrstuvwx");

    const decided = await api("POST", `/v1/approvals/${approvalId}/approve`, { key: keys.reviewer, body: { reason: "change window" } });
    expect(decided.status).toBe(200);
    const outcome = await until("the decided webhook", () => webhookEvents(good, approvalId).find((r) => JSON.parse(r.body).type === "approval.decided"));
    expect(verifyStandardWebhook(WEBHOOK_SECRET, outcome.headers, outcome.body)).toBe(true);
    expect(JSON.parse(outcome.body).data).toMatchObject({ approvalId, status: "approved", reviewer: "bob", decisionReason: "change window" });
    expect(outcome.headers["webhook-id"]).not.toBe(requested.headers["webhook-id"]);
  });

  test("a failing receiver is retried with the same id and body until it accepts; 410 Gone stops at once; an unreachable one fails after its attempts, visibly", async () => {
    const { approvalId } = await requestApproval();
    const attempts = await until("three attempts at the flaky receiver", () => {
      const seen = webhookEvents(flaky, approvalId);
      return seen.length >= 3 ? seen : undefined;
    });
    expect(new Set(attempts.map((a) => a.headers["webhook-id"])).size).toBe(1);
    expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
    for (const attempt of attempts) expect(verifyStandardWebhook(WEBHOOK_SECRET, attempt.headers, attempt.body)).toBe(true);

    const settled = await until("every delivery settled", async () => {
      const list = await deliveries(approvalId);
      return list.length === 5 && list.every((d) => d.status === "delivered" || d.status === "failed") ? list : undefined;
    });
    const byTarget = Object.fromEntries(settled.map((d) => [d.target, d]));
    expect(byTarget.good).toMatchObject({ channel: "webhook", event: "approval.requested", status: "delivered", attempts: 1, lastStatus: 204 });
    expect(byTarget.flaky).toMatchObject({ status: "delivered", attempts: 3, lastStatus: 200 });
    expect(byTarget.gone).toMatchObject({ status: "failed", attempts: 1, lastStatus: 410 });
    expect(byTarget.down).toMatchObject({ status: "failed", attempts: 4 });
    expect(byTarget.down!.lastError).toBeTruthy();
    expect(byTarget["#approvals"]).toMatchObject({ channel: "slack", status: "delivered" });
    expect(webhookEvents(gone, approvalId)).toHaveLength(1);
    const failed = (await api("GET", `/v1/approval-channels/deliveries?status=failed`, { key: keys.reviewer })).body.items as ApprovalDelivery[];
    expect(failed.filter((d) => d.approvalId === approvalId).map((d) => d.target).sort()).toEqual(["down", "gone"]);
    // The requesting agent's key reads its own deliveries; a key bound to another agent, or of another organization, sees none.
    expect(((await api("GET", `/v1/approval-channels/deliveries?approvalId=${approvalId}`, { key: keys.agent })).body.items as ApprovalDelivery[]).length).toBe(5);
    const otherAgent = (await server.store.createKey({ org: ORG, role: "agent", name: "other agent", agentId: "support-agent" })).key;
    expect((await api("GET", `/v1/approval-channels/deliveries?approvalId=${approvalId}`, { key: otherAgent })).body.items).toEqual([]);
    const other = (await server.store.createKey({ org: "other-org", role: "admin", name: "eve" })).key;
    expect((await api("GET", `/v1/approval-channels/deliveries?approvalId=${approvalId}`, { key: other })).body.items).toEqual([]);
  });

  test("secrets and signatures: whsec_ secrets are required; signWebhook matches the independent check", () => {
    const body = JSON.stringify({ type: "approval.requested" });
    const signature = signWebhook(WEBHOOK_SECRET, "msg_abc", 1674087231, body);
    const key = Buffer.from(WEBHOOK_SECRET.slice(6), "base64");
    expect(signature).toBe(`v1,${createHmac("sha256", key).update(`msg_abc.1674087231.${body}`).digest("base64")}`);
    const backend = { decide: async () => Promise.reject(new Error("unused")), get: async () => undefined };
    expect(() => new ApprovalChannels({ webhooks: [{ url: "https://example.com/h", secret: "not-a-secret" }] }, backend)).toThrow(ConfigError);
    expect(() => new ApprovalChannels({ webhooks: [{ url: "ftp://example.com/h", secret: WEBHOOK_SECRET }] }, backend)).toThrow(ConfigError);
    expect(() => new ApprovalChannels({ links: { secret: "short", baseUrl: "https://warden.example.com" } }, backend)).toThrow(ConfigError);
  });

  test("a channels file (YAML) takes its secrets from the environment; an unset variable or a bad field is a ConfigError", () => {
    const file = join(dir, "channels.yaml");
    writeFileSync(file, ["webhooks:", "  - url: https://hooks.example.com/warden", "    secret: ${HOOK_SECRET}", "slack:", "  token: ${SLACK_TOKEN}", "  channel: C0123", "  signingSecret: ${SLACK_SIGNING_SECRET}", "retry: { attempts: 3, initialDelay: 2s }", ""].join("\n"));
    const loaded = loadApprovalChannels(file, { HOOK_SECRET: WEBHOOK_SECRET, SLACK_TOKEN: "xoxb-1", SLACK_SIGNING_SECRET: "abc" });
    expect(loaded).toMatchObject({ webhooks: [{ url: "https://hooks.example.com/warden", secret: WEBHOOK_SECRET }], slack: { token: "xoxb-1", channel: "C0123", signingSecret: "abc" }, retry: { attempts: 3, initialDelay: "2s" } });
    expect(() => loadApprovalChannels(file, { HOOK_SECRET: WEBHOOK_SECRET })).toThrow(/SLACK_TOKEN/);
    writeFileSync(file, "webhooks:\n  - url: https://hooks.example.com/warden\n    secret: whsec_short\n");
    expect(() => loadApprovalChannels(file, {})).toThrow(ConfigError);
    expect(() => loadApprovalChannels(join(dir, "missing.yaml"), {})).toThrow(ConfigError);
  });
});

describe("Slack", () => {
  const posts = (approvalId: string, method: string) => slack.received.filter((r) => r.path === `/api/${method}` && r.body.includes(approvalId));

  test("a request posts a message with the call, agent, goal, policy and Approve / Reject; a signed click decides as the Slack user and the message shows the outcome", async () => {
    const { approvalId } = await requestApproval();
    const post = await until("chat.postMessage", () => posts(approvalId, "chat.postMessage")[0]);
    expect(post.headers.authorization).toBe(`Bearer ${SLACK_TOKEN}`);
    expect(post.headers["content-type"]).toContain("application/json");
    const message = JSON.parse(post.body);
    expect(message.channel).toBe("#approvals");
    const text = JSON.stringify(message.blocks);
    for (const part of ["deploy", "billing-agent", "ship release 1.4.2", "approve-prod-deploy", "1.4.2", "Approve", "Reject"]) expect(text).toContain(part);
    expect(text).not.toContain("sk-live-abcdefghijklmnopqrstuvwx");
    const actions = message.blocks.find((b: { type: string }) => b.type === "actions");
    expect(actions.elements.map((e: { action_id: string }) => e.action_id)).toEqual(["warden_approve", "warden_reject"]);

    const body = interaction(approvalId, "warden_approve");
    const clicked = await api("POST", "/v1/channels/slack/interactions", { raw: body, headers: { "content-type": "application/x-www-form-urlencoded", ...slackSign(body) } });
    expect(clicked.status).toBe(200);
    const record = (await api("GET", `/v1/approvals/${approvalId}`, { key: keys.reviewer })).body;
    expect(record).toMatchObject({ status: "approved", reviewer: "slack:U024BE7LH" });
    expect(record.decisionReason).toContain("@carol");

    const update = await until("chat.update", () => posts(approvalId, "chat.update")[0]);
    const updated = JSON.parse(update.body);
    // The message Slack created is the one updated.
    expect(updated).toMatchObject({ channel: "C0WARDEN", ts: (post.answer as { ts: string }).ts });
    const shown = JSON.stringify(updated.blocks);
    expect(shown).toContain("Approved");
    expect(shown).toContain("slack:U024BE7LH");
    expect(updated.blocks.some((b: { type: string }) => b.type === "actions")).toBe(false);

    // A second click (a replayed, still fresh request) decides nothing more.
    const again = await api("POST", "/v1/channels/slack/interactions", { raw: interaction(approvalId, "warden_reject"), headers: { "content-type": "application/x-www-form-urlencoded", ...slackSign(interaction(approvalId, "warden_reject")) } });
    expect(again.status).toBe(200);
    expect(again.body.ok).toBe(false);
    expect((await api("GET", `/v1/approvals/${approvalId}`, { key: keys.reviewer })).body.status).toBe("approved");
  });

  test("a forged signature, an unsigned request and a replayed (old) timestamp are refused with 401 and decide nothing", async () => {
    const { approvalId } = await requestApproval();
    const body = interaction(approvalId, "warden_approve");
    const forged = await api("POST", "/v1/channels/slack/interactions", { raw: body, headers: { "content-type": "application/x-www-form-urlencoded", ...slackSign(body, undefined, "not-the-signing-secret") } });
    expect(forged.status).toBe(401);
    const unsigned = await api("POST", "/v1/channels/slack/interactions", { raw: body, headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(unsigned.status).toBe(401);
    const old = Math.floor(Date.now() / 1000) - 6 * 60;
    const replayed = await api("POST", "/v1/channels/slack/interactions", { raw: body, headers: { "content-type": "application/x-www-form-urlencoded", ...slackSign(body, old) } });
    expect(replayed.status).toBe(401);
    // A signature over another body does not carry over.
    const other = interaction(approvalId, "warden_reject");
    const swapped = await api("POST", "/v1/channels/slack/interactions", { raw: body, headers: { "content-type": "application/x-www-form-urlencoded", ...slackSign(other) } });
    expect(swapped.status).toBe(401);
    const still = (await api("GET", `/v1/approvals/${approvalId}`, { key: keys.reviewer })).body;
    expect(still.status).toBe("pending");
    expect(still.reviewer).toBeUndefined();
    expect(verifySlackSignature(SIGNING_SECRET, body, slackSign(body)["x-slack-signature"], slackSign(body)["x-slack-request-timestamp"])).toBe(true);
  });

  test("a timed-out request and one cancelled by a halt update their messages too", async () => {
    const expiring = await requestApproval({ timeoutMs: 300 });
    await until("posted", () => posts(expiring.approvalId, "chat.postMessage")[0]);
    const timedOut = await until("the timeout update", () => posts(expiring.approvalId, "chat.update")[0]);
    const timeoutText = JSON.stringify(JSON.parse(timedOut.body).blocks);
    expect(timeoutText).toContain("Timed out");
    expect(timeoutText).toContain("not run");

    const halted = await requestApproval();
    await until("posted", () => posts(halted.approvalId, "chat.postMessage")[0]);
    const halt = await api("POST", "/v1/halts", { key: keys.admin, body: { agentId: "billing-agent", reason: "incident 42" } });
    expect(halt.status).toBe(201);
    const cancelled = await until("the halt update", () => posts(halted.approvalId, "chat.update")[0]);
    const cancelText = JSON.stringify(JSON.parse(cancelled.body).blocks);
    expect(cancelText).toContain("Cancelled");
    expect(cancelText).toContain("incident 42");
    expect((await api("POST", "/v1/halts/resume", { key: keys.admin, body: { agentId: "billing-agent" } })).status).toBe(200);
  });
});

describe("a channel that is down", () => {
  test("the agent's call still waits, is answered through the API, and the failed delivery is visible", async () => {
    const down = await deadPort();
    const local = createWardenServer({
      db: ":memory:",
      onError: (error) => errors.push(error),
      channels: {
        webhooks: [{ id: "down", url: `${down}/hooks`, secret: WEBHOOK_SECRET }],
        slack: { token: SLACK_TOKEN, channel: "#approvals", signingSecret: SIGNING_SECRET, apiUrl: `${down}/api` },
        retry: { attempts: 2, initialDelay: 10, maxDelay: 20, timeout: 1000 },
      },
    });
    const admin = (await local.store.createKey({ org: ORG, role: "admin", name: "alice" })).key;
    const agentKey = (await local.store.createKey({ org: ORG, role: "agent", name: "agents" })).key;
    const { url: localUrl } = await local.listen(0);
    const cache = mkdtempSync(join(dir, "agent-"));
    const put = await fetch(`${localUrl}/v1/policies`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
      body: JSON.stringify({ policies: { version: 1, default: "allow", policies: [{ id: "approve-prod-deploy", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "10m" } }] } }),
    });
    expect(put.status).toBe(201);
    const warden = new Warden({ agentId: "billing-agent", url: localUrl, apiKey: agentKey, store: ":memory:", remote: { cacheDir: cache, flushInterval: 50 } });
    try {
      expect(await warden.ready()).toBe(true);
      let ran = 0;
      const result = warden.run({ task: "deploy" }, (run) => run.tool("deploy", { version: "1.4.2" }, () => ++ran));
      const get = (path: string) => fetch(`${localUrl}${path}`, { headers: { Authorization: `Bearer ${admin}` } }).then((r) => r.json() as Promise<any>);
      const pending = await until("the pending request", async () => (await get("/v1/approvals?status=pending")).items[0]);
      const failed = await until("the failed deliveries", async () => {
        const items = (await get(`/v1/approval-channels/deliveries?approvalId=${pending.approvalId}`)).items as ApprovalDelivery[];
        return items.length === 2 && items.every((d) => d.status === "failed") ? items : undefined;
      });
      expect(failed.map((d) => d.channel).sort()).toEqual(["slack", "webhook"]);
      expect(failed.every((d) => d.attempts === 2 && d.lastError)).toBe(true);
      expect(ran).toBe(0);
      const approved = await fetch(`${localUrl}/v1/approvals/${pending.approvalId}/approve`, { method: "POST", headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" }, body: JSON.stringify({ reason: "answered in the console" }) });
      expect(approved.status).toBe(200);
      expect(await result).toBe(1);
      expect(ran).toBe(1);
    } finally {
      await warden.shutdown();
      await local.close();
    }
  }, 30_000);
});

describe("embedded Warden", () => {
  test("attachApprovalChannels delivers an in-process request and its decision to a signed webhook", async () => {
    const warden = new Warden({
      agentId: "billing-agent",
      store: ":memory:",
      policies: { version: 1, default: "allow", policies: [{ id: "approve-prod-deploy", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "10m" } }] },
    });
    const channels = attachApprovalChannels(warden, { webhooks: [{ id: "good", url: `${good.url}/embedded`, secret: WEBHOOK_SECRET }], retry: { attempts: 2, initialDelay: 10 } });
    try {
      const result = warden.run({ task: "deploy" }, (run) => run.tool("deploy", { version: "2.0.0" }, () => "deployed"));
      const requested = await until("the embedded request", () => good.received.find((r) => r.path === "/embedded" && JSON.parse(r.body).type === "approval.requested"));
      expect(verifyStandardWebhook(WEBHOOK_SECRET, requested.headers, requested.body)).toBe(true);
      const { approvalId } = JSON.parse(requested.body).data;
      warden.approvals.approve(approvalId, { reviewer: "alice", reason: "ok" });
      expect(await result).toBe("deployed");
      const decided = await until("the embedded decision", () => good.received.find((r) => r.path === "/embedded" && JSON.parse(r.body).type === "approval.decided"));
      expect(verifyStandardWebhook(WEBHOOK_SECRET, decided.headers, decided.body)).toBe(true);
      expect(JSON.parse(decided.body).data).toMatchObject({ approvalId, status: "approved", reviewer: "alice" });
      const records = await until("both deliveries recorded", () => {
        const list = channels.deliveries({ approvalId });
        return list.every((d) => d.status === "delivered") && list;
      });
      expect(records.map((d) => [d.event, d.attempts])).toEqual([["approval.decided", 1], ["approval.requested", 1]]);
      // Nothing above was an unexpected failure of the control plane.
      expect(errors).toEqual([]);
    } finally {
      channels.close();
      warden.close();
    }
  });
});
