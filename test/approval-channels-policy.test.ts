// Channels declared in the policy file: validated with the file's line numbers (a secret written in
// clear, an environment variable outside WARDEN_, a policy notifying an undeclared channel), used by an
// embedded Warden (attachApprovalChannels(warden)) with each policy's `approval.notify`, and by the
// control plane for the organization whose pushed set declares them (webhook receivers on loopback).
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { attachApprovalChannels, ConfigError, parsePolicyText, PolicyError, Warden, type ApprovalDelivery } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;

/** Standard Webhooks, checked independently of the code under test. */
function verified(headers: IncomingMessage["headers"], body: string): boolean {
  const key = Buffer.from(SECRET.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`).digest();
  return String(headers["webhook-signature"] ?? "")
    .split(" ")
    .some((entry) => {
      const given = Buffer.from(entry.replace(/^v1,/, ""), "base64");
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
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

let receiver: Server;
let base: string;
const received: Array<{ path: string; headers: IncomingMessage["headers"]; body: string }> = [];

beforeAll(async () => {
  process.env.WARDEN_TEST_HOOK_SECRET = SECRET;
  receiver = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      received.push({ path: request.url ?? "", headers: request.headers, body });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  delete process.env.WARDEN_TEST_HOOK_SECRET;
  await new Promise((resolve) => receiver?.close(resolve));
});

const policyFile = (url: string, secret = "${WARDEN_TEST_HOOK_SECRET}") => `version: 1
default: allow
channels:
  webhooks:
    - id: payments-hook
      url: ${url}/payments
      secret: ${secret}
    - id: ops-hook
      url: ${url}/ops
      secret: \${WARDEN_TEST_HOOK_SECRET}
  retry: { attempts: 2, initialDelay: 20ms }
policies:
  - id: refunds
    when: { tool: refund }
    action: require_approval
    approval:
      timeout: 10m
      notify: [payments-hook]
  - id: deploys
    when: { tool: deploy }
    action: require_approval
`;

describe("channels in the policy file", () => {
  test("a secret in clear, a variable outside WARDEN_, an undeclared channel: refused, at their line", () => {
    const inline = policyFile("https://hooks.example.com", "whsec_c2VjcmV0c2VjcmV0c2VjcmV0");
    const error = (() => {
      try {
        parsePolicyText(inline, "warden.yaml");
      } catch (caught) {
        return caught;
      }
    })() as PolicyError;
    expect(error).toBeInstanceOf(PolicyError);
    expect(error.line).toBe(inline.split("\n").findIndex((line) => line.includes("secret: whsec_")) + 1);
    expect(error.message).toMatch(/environment reference such as \$\{WARDEN_WEBHOOK_SECRET\}/);

    expect(() => parsePolicyText(policyFile("https://hooks.example.com", "${DATABASE_PASSWORD}"), "warden.yaml")).toThrow(/names start with WARDEN_/);

    const undeclared = policyFile("https://hooks.example.com").replace("notify: [payments-hook]", "notify: [pagerduty]");
    const notify = (() => {
      try {
        parsePolicyText(undeclared, "warden.yaml");
      } catch (caught) {
        return caught;
      }
    })() as PolicyError;
    expect(notify.message).toContain(`approval.notify names "pagerduty", which is not a channel (declared: payments-hook, ops-hook)`);
    expect(notify.line).toBe(undeclared.split("\n").findIndex((line) => line.includes("notify: [pagerduty]")) + 1);
  });

  test("embedded: attachApprovalChannels(warden) delivers each request to the channels its policy names, signed with the secret from the environment", async () => {
    const warden = new Warden({ agentId: "billing-agent", store: ":memory:", policies: parsePolicyText(policyFile(`${base}/embedded`)) });
    const channels = attachApprovalChannels(warden);
    try {
      const refund = warden.run({ task: "refund" }, (run) => run.tool("refund", { amount: 9000 }, () => "refunded"));
      const deploy = warden.run({ task: "deploy" }, (run) => run.tool("deploy", { version: "2.0.0" }, () => "deployed"));
      const requests = await until("both requests", () => {
        const found = received.filter((r) => r.path.startsWith("/embedded") && JSON.parse(r.body).type === "approval.requested");
        return found.length === 3 && found;
      });
      expect(requests.every((r) => verified(r.headers, r.body))).toBe(true);
      // refunds notify payments-hook only; deploys (no notify) every channel.
      const where = requests.map((r) => `${JSON.parse(r.body).data.toolName} → ${r.path}`).sort();
      expect(where).toEqual(["deploy → /embedded/ops", "deploy → /embedded/payments", "refund → /embedded/payments"]);
      for (const approval of warden.approvals.list({ status: "pending" })) warden.approvals.approve(approval.approvalId, { reviewer: "alice" });
      expect(await refund).toBe("refunded");
      expect(await deploy).toBe("deployed");
    } finally {
      channels.close();
      warden.close();
    }
  });

  test("embedded: a variable the file names but the environment lacks is a ConfigError naming it", () => {
    const warden = new Warden({ agentId: "billing-agent", store: ":memory:", policies: parsePolicyText(policyFile(base).replaceAll("WARDEN_TEST_HOOK_SECRET", "WARDEN_UNSET_SECRET")) });
    try {
      expect(() => attachApprovalChannels(warden)).toThrow(ConfigError);
      expect(() => attachApprovalChannels(warden)).toThrow(/\$\{WARDEN_UNSET_SECRET\} at channels\.webhooks\[0\]\.secret, which is not set/);
    } finally {
      warden.close();
    }
  });

  describe("control plane without channels of its own", () => {
    let dir: string;
    let server: WardenServer;
    let url: string;
    const keys: Record<string, string> = {};

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "warden-policy-channels-"));
      server = createWardenServer({ db: join(dir, "warden.db"), console: false, onError: (error) => console.error(error) });
      url = (await server.listen(0)).url;
      for (const org of ["acme", "globex"]) {
        keys[`${org}-admin`] = (await server.store.createKey({ org, role: "admin", name: "root" })).key;
        keys[`${org}-agent`] = (await server.store.createKey({ org, role: "agent", name: "bot", agentId: "billing-agent" })).key;
      }
    });

    afterAll(async () => {
      await server?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const call = async (key: string, method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { "content-type": "application/json" }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
      return { status: response.status, body: (await response.json()) as any };
    };

    test("the organization's pushed set declares the channels: its requests are delivered and recorded; another organization's are not", async () => {
      const pushed = await call(keys["acme-admin"]!, "PUT", "/v1/policies", { policies: policyFile(`${base}/plane`) });
      expect(pushed.status).toBe(201);
      // An inline secret is refused at push time, with its line.
      const refused = await call(keys["globex-admin"]!, "PUT", "/v1/policies", { policies: policyFile(`${base}/plane`, "whsec_c2VjcmV0c2VjcmV0c2VjcmV0") });
      expect(refused.status).toBe(400);
      expect(refused.body.error.problems[0]).toMatchObject({ line: 7 });

      const asked = await call(keys["acme-agent"]!, "POST", "/v1/approvals", { toolCallId: "tc_plane1", runId: "run_plane1", agentId: "billing-agent", toolName: "refund", policyId: "refunds", payload: { amount: 9000 }, timeoutMs: 600_000 });
      expect(asked.status).toBe(201);
      const other = await call(keys["globex-agent"]!, "POST", "/v1/approvals", { toolCallId: "tc_plane2", runId: "run_plane2", agentId: "billing-agent", toolName: "refund", policyId: "refunds", payload: { amount: 1 }, timeoutMs: 600_000 });
      expect(other.status).toBe(201);

      const delivered = await until("the request at the payments hook", () => received.find((r) => r.path === "/plane/payments" && r.body.includes(asked.body.approvalId)));
      expect(verified(delivered.headers, delivered.body)).toBe(true);
      const items = await until("the delivery recorded", async () => {
        const list = (await call(keys["acme-admin"]!, "GET", `/v1/approval-channels/deliveries?approvalId=${asked.body.approvalId}`)).body.items as ApprovalDelivery[];
        return list.length === 1 && list[0]!.status === "delivered" && list;
      });
      expect(items[0]).toMatchObject({ channel: "webhook", target: "payments-hook", event: "approval.requested", attempts: 1 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received.filter((r) => r.path === "/plane/ops" && r.body.includes(asked.body.approvalId))).toEqual([]);
      expect(received.some((r) => r.body.includes(other.body.approvalId))).toBe(false);
    });
  });
});
