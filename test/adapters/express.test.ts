import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type ErrorRequestHandler, type RequestHandler } from "express";
import { afterEach, describe, expect, it } from "vitest";
import { isHalt, Warden, type PolicySetInput, type ToolCallRecord, type WardenOptions } from "agent-warden";
import { AgentAuthError, requireAgentPermission, type AgentPrincipal, type RequireAgentPermissionOptions } from "agent-warden/express";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newWarden(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "payments-service", store: ":memory:", ...options });
  cleanups.push(() => warden.close());
  return warden;
}

/** A real Express 5 app on a loopback port: POST /refunds needs payments:refund and an amount within the cap; `reached` lists what got to the app's error handlers. */
async function startApp(options: RequireAgentPermissionOptions, handled: { agent?: AgentPrincipal | undefined; count: number; reached?: unknown[] } = { count: 0 }) {
  const app = express();
  const refund: RequestHandler = (request, response) => {
    handled.count += 1;
    handled.agent = request.agent;
    response.json({ refunded: request.body.amount, agent: request.agent?.agentId });
  };
  app.post("/refunds", express.json(), requireAgentPermission("payments:refund", { ...options, amount: (request) => request.body?.amount, currency: "EUR" }), refund);
  app.get("/balance", requireAgentPermission("payments:read", options), (request, response) => {
    handled.count += 1;
    response.json({ balance: 100, agent: request.agent?.agentId });
  });
  // Then Express's default handler (an HTML page, and a stack trace on stderr outside tests).
  app.use(((error, _request, _response, next) => {
    (handled.reached ??= []).push(error);
    next(error);
  }) as ErrorRequestHandler);
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (path: string, init: { token?: string; authorization?: string; amount?: number; method?: string } = {}) => {
    const response = await fetch(`${base}${path}`, {
      method: init.method ?? (init.amount === undefined ? "GET" : "POST"),
      headers: { "content-type": "application/json", ...(init.token !== undefined && { authorization: `Bearer ${init.token}` }), ...(init.authorization !== undefined && { authorization: init.authorization }) },
      ...(init.amount !== undefined && { body: JSON.stringify({ amount: init.amount }) }),
    });
    const text = await response.text();
    return { status: response.status, type: response.headers.get("content-type"), challenge: response.headers.get("www-authenticate"), body: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : text };
  };
  return { call, handled };
}

async function recorded(warden: Warden): Promise<ToolCallRecord[]> {
  const calls: ToolCallRecord[] = [];
  for (const run of warden.listRuns({ limit: 500 }).reverse()) calls.push(...(await warden.getRun(run.runId)).toolCalls);
  return calls;
}

/** The organization mints; a planner agent attenuates for the payments agent it delegates to. */
function tokens(org: Warden) {
  const planner = org.tokens.mint({ agentId: "planner", scopes: ["payments:*"], maxAmount: { amount: 50_000, currency: "EUR" }, ttl: "1h" });
  const refunds = org.tokens.attenuate(planner, { audience: "planner/refund-agent", scopes: ["payments:refund"], maxAmount: { amount: 5_000, currency: "EUR" } });
  const reader = org.tokens.attenuate(planner, { audience: "planner/reader-agent", scopes: ["payments:read"] });
  return { planner, refunds, reader };
}

function offline(org: Warden, extra: Partial<Extract<RequireAgentPermissionOptions, { publicKey: unknown }>> = {}): RequireAgentPermissionOptions {
  return {
    publicKey: org.tokens.publicJwk(),
    isRevoked: (id) => org.tokens.isRevoked(id),
    isHalted: ({ agentId }) => agentId !== undefined && org.haltedFor({ agentId }) !== undefined,
    ...extra,
  };
}

for (const mode of ["offline (public key)", "with the organization's Warden"] as const) {
  const optionsFor = (org: Warden): RequireAgentPermissionOptions => (mode === "offline (public key)" ? offline(org) : { warden: org });

  describe(`requireAgentPermission, ${mode}`, () => {
    it("lets an attenuated token through within its scope and cap, and sets request.agent", async () => {
      const org = newWarden();
      const { refunds } = tokens(org);
      const { call, handled } = await startApp(optionsFor(org));
      const response = await call("/refunds", { token: refunds, amount: 2_800 });
      expect(response).toMatchObject({ status: 200, body: { refunded: 2_800, agent: "planner/refund-agent" } });
      expect(handled.agent).toMatchObject({ agentId: "planner/refund-agent", scopes: ["payments:refund"], maxAmount: { amount: 5_000, currency: "EUR" }, tokenId: expect.any(String) });
      expect(handled.agent!.chain.map((block) => block.audience)).toEqual(["planner", "planner/refund-agent"]);
    });

    it("answers 401 invalid_token without a token, and with a malformed Authorization header", async () => {
      const org = newWarden();
      const { call, handled } = await startApp(optionsFor(org));
      const missing = await call("/refunds", { amount: 100 });
      expect(missing.status).toBe(401);
      expect(missing.challenge).toMatch(/^Bearer error="invalid_token", error_description="missing bearer token"$/);
      expect(missing.body).toMatchObject({ code: "invalid_token" });
      const basic = await call("/balance", { authorization: "Basic YWRhOmh1bnRlcjI=" });
      expect(basic).toMatchObject({ status: 401, body: { code: "invalid_token", detail: "the Authorization header is not a bearer token" } });
      expect(handled.count).toBe(0);
    });

    it("answers refusals itself as RFC 9457 problems: application/problem+json, a stable code, no stack; the app's error handlers are not reached", async () => {
      const org = newWarden();
      const { reader, refunds } = tokens(org);
      const handled = { count: 0, reached: [] as unknown[] };
      const { call } = await startApp(optionsFor(org), handled);
      const missing = await call("/refunds", { amount: 100 });
      expect(missing).toMatchObject({ status: 401, type: "application/problem+json; charset=utf-8" });
      expect(missing.body).toEqual({ type: "tag:agent-warden,2026:problem/invalid_token", title: "Invalid token", status: 401, detail: "missing bearer token", code: "invalid_token" });
      const scope = await call("/refunds", { token: reader, amount: 100 });
      expect(scope).toMatchObject({ status: 403, type: "application/problem+json; charset=utf-8" });
      expect(scope.body).toEqual({ type: "tag:agent-warden,2026:problem/insufficient_scope", title: "Insufficient scope", status: 403, detail: expect.stringContaining("payments:refund"), code: "insufficient_scope", scope: "payments:refund" });
      org.halt({ reason: "refund loop", agentId: "planner/refund-agent" });
      const halted = await call("/refunds", { token: refunds, amount: 100 });
      expect(halted).toMatchObject({ status: 403, type: "application/problem+json; charset=utf-8", challenge: expect.stringContaining('error="agent_halted"') });
      expect(halted.body).toEqual({ type: "tag:agent-warden,2026:problem/agent_halted", title: "Agent halted", status: 403, detail: expect.stringContaining("halted"), code: "agent_halted" });
      for (const response of [missing, scope, halted]) expect(JSON.stringify(response.body)).not.toMatch(/stack|\bat .*\.ts:\d+/);
      expect(handled.reached).toEqual([]);
      expect(handled.count).toBe(0);
    });

    it("answers 401 for a tampered token", async () => {
      const org = newWarden();
      const { refunds } = tokens(org);
      const { call, handled } = await startApp(optionsFor(org));
      // Raise the cap inside the token without re-signing it.
      const wire = JSON.parse(Buffer.from(refunds.slice("wdn1.".length), "base64url").toString()) as { blocks: Array<{ content: { maxAmount?: { amount: number } } }> };
      wire.blocks[1]!.content.maxAmount!.amount = 9_999_999;
      const tampered = `wdn1.${Buffer.from(JSON.stringify(wire)).toString("base64url")}`;
      const response = await call("/refunds", { token: tampered, amount: 9_000 });
      expect(response.status).toBe(401);
      expect(response.challenge).toContain('error="invalid_token"');
      expect(response.body).toMatchObject({ code: "invalid_token", detail: expect.stringContaining("bad_signature") });
      expect(handled.count).toBe(0);
    });

    it("answers 401 for an expired token, and for one signed by another organization", async () => {
      const org = newWarden();
      const expired = org.tokens.mint({ agentId: "refund-agent", scopes: ["payments:refund"], ttl: 1 });
      await new Promise((resolve) => setTimeout(resolve, 5));
      const foreign = newWarden().tokens.mint({ agentId: "refund-agent", scopes: ["payments:refund"], ttl: "1h" });
      const { call, handled } = await startApp(optionsFor(org));
      expect(await call("/refunds", { token: expired, amount: 100 })).toMatchObject({ status: 401, body: { code: "invalid_token", detail: expect.stringContaining("expired") } });
      expect(await call("/refunds", { token: foreign, amount: 100 })).toMatchObject({ status: 401, body: { detail: expect.stringContaining("wrong_root_key") } });
      expect(handled.count).toBe(0);
    });

    it("answers 403 insufficient_scope for a permission the token lacks, naming the scope", async () => {
      const org = newWarden();
      const { reader } = tokens(org);
      const { call, handled } = await startApp(optionsFor(org));
      expect(await call("/balance", { token: reader })).toMatchObject({ status: 200, body: { agent: "planner/reader-agent" } });
      const refused = await call("/refunds", { token: reader, amount: 100 });
      expect(refused.status).toBe(403);
      expect(refused.challenge).toMatch(/^Bearer error="insufficient_scope", scope="payments:refund", error_description=".*payments:refund.*"$/);
      expect(refused.body).toMatchObject({ code: "insufficient_scope" });
      expect(handled.count).toBe(1);
    });

    it("answers 403 insufficient_scope for an amount over the token's cap", async () => {
      const org = newWarden();
      const { refunds } = tokens(org);
      const { call, handled } = await startApp(optionsFor(org));
      const refused = await call("/refunds", { token: refunds, amount: 9_000 });
      expect(refused).toMatchObject({ status: 403, body: { code: "insufficient_scope", detail: expect.stringContaining("5000 EUR") } });
      expect(handled.count).toBe(0);
      expect((await call("/refunds", { token: refunds, amount: 5_000 })).status).toBe(200);
    });

    it("answers 403 agent_halted once the agent is halted, and 401 once the token is revoked", async () => {
      const org = newWarden();
      const { refunds, reader } = tokens(org);
      const { call, handled } = await startApp(optionsFor(org));
      expect((await call("/refunds", { token: refunds, amount: 100 })).status).toBe(200);
      org.halt({ reason: "refund loop", agentId: "planner/refund-agent" });
      const halted = await call("/refunds", { token: refunds, amount: 100 });
      expect(halted).toMatchObject({ status: 403, body: { code: "agent_halted" } });
      expect(halted.challenge).toContain('error="agent_halted"');
      org.resume({ agentId: "planner/refund-agent" });
      expect((await call("/balance", { token: reader })).status).toBe(200);
      org.tokens.revoke(org.tokens.inspect(reader).chain[1]!.id, { reason: "rotated" });
      expect(await call("/balance", { token: reader })).toMatchObject({ status: 401, body: { detail: expect.stringContaining("revoked") } });
      expect(handled.count).toBe(2);
    });

    it("answers 403 agent_halted when the whole organization is halted", async () => {
      const org = newWarden();
      const { reader } = tokens(org);
      const { call } = await startApp(mode === "offline (public key)" ? offline(org, { isHalted: () => org.activeHalts.length > 0 }) : optionsFor(org));
      org.halt({ reason: "all stop" });
      expect(await call("/balance", { token: reader })).toMatchObject({ status: 403, body: { code: "agent_halted" } });
    });
  });
}

describe("requireAgentPermission, recording", () => {
  it("with the organization's Warden, records each request as a run under the token, refusals included", async () => {
    const org = newWarden();
    const { refunds } = tokens(org);
    const { call } = await startApp({ warden: org });
    await call("/refunds", { token: refunds, amount: 2_800 });
    await call("/refunds", { token: refunds, amount: 9_000 });
    const runs = org.listRuns().reverse();
    expect(runs.map((r) => [r.agentId, r.tokenId, r.status])).toEqual([
      ["planner/refund-agent", expect.any(String), "completed"],
      ["planner/refund-agent", expect.any(String), "completed"],
    ]);
    const calls = await recorded(org);
    expect(calls.map((c) => [c.toolName, c.status])).toEqual([
      ["payments:refund", "completed"],
      ["payments:refund", "blocked"],
    ]);
    expect(calls[0]).toMatchObject({ input: { method: "POST", path: "/refunds", amount: 2_800, currency: "EUR" }, output: { status: 200 } });
    expect(calls[1]!.blockedReason).toContain("exceeds the token's cap");
  });

  it("records a refusal by a halt before any run is open: the agent's own, and its delegator's reaching the token", async () => {
    const org = newWarden();
    const { refunds, reader } = tokens(org);
    const { call } = await startApp({ warden: org });
    org.halt({ reason: "refund loop", agentId: "planner/refund-agent" });
    expect(await call("/refunds", { token: refunds, amount: 100 })).toMatchObject({ status: 403, body: { code: "agent_halted" } });
    org.halt({ reason: "planner loop", agentId: "planner" });
    expect(await call("/balance", { token: reader })).toMatchObject({ status: 403, body: { code: "agent_halted" } });
    const refusals = org.ledger.entries({ limit: 100 }).filter((entry) => entry.type === "run.failed");
    expect(refusals.map((entry) => [entry.agentId, entry.runId, (entry.data as { refused?: boolean }).refused, (entry.data as { error: { code: string } }).error.code])).toEqual([
      ["planner/refund-agent", null, true, "token_invalid"],
      ["planner/reader-agent", null, true, "token_invalid"],
    ]);
    expect(org.listRuns()).toEqual([]);
  });

  it("applies the organization's policies too: an approval holds the request until a reviewer decides", async () => {
    const policies: PolicySetInput = { version: 1, default: "allow", policies: [{ id: "big-refunds", when: { tool: "payments:refund", "args.amount": { gt: 3_000 } }, action: "require_approval" }] };
    let verdict: "approve" | "reject" = "approve";
    const org = newWarden({ policies, onApprovalRequest: (_request, decide) => setTimeout(() => (verdict === "approve" ? decide.approve({ reviewer: "cfo" }) : decide.reject({ reviewer: "cfo", reason: "no" })), 10) });
    const { refunds } = tokens(org);
    const { call, handled } = await startApp({ warden: org });
    expect((await call("/refunds", { token: refunds, amount: 4_000 })).status).toBe(200);
    verdict = "reject";
    expect(await call("/refunds", { token: refunds, amount: 4_500 })).toMatchObject({ status: 403, body: { code: "insufficient_scope", detail: expect.stringContaining("rejected by cfo") } });
    expect(handled.count).toBe(1);
    const calls = await recorded(org);
    expect(calls.map((c) => [c.status, c.approval?.status])).toEqual([
      ["completed", "approved"],
      ["rejected", "rejected"],
    ]);
  });

  it("offline, records each request in the service's own ledger when given its Warden client", async () => {
    const org = newWarden({ agentId: "org-admin" });
    const service = newWarden({ agentId: "payments-service" });
    const { refunds } = tokens(org);
    const { call } = await startApp(offline(org, { warden: service }));
    expect((await call("/refunds", { token: refunds, amount: 1_000 })).status).toBe(200);
    expect(service.listRuns().map((r) => r.agentId)).toEqual(["planner/refund-agent"]);
    const [recordedCall] = await recorded(service);
    expect(recordedCall).toMatchObject({ toolName: "payments:refund", status: "completed", input: { amount: 1_000 }, output: { status: 200 } });
    expect(org.listRuns()).toEqual([]);
  });

  it("with refusals: \"next\", passes them to the app's error handlers; Express's default one sends the status and challenge", async () => {
    const org = newWarden();
    const { reader } = tokens(org);
    const handled = { count: 0, reached: [] as unknown[] };
    const { call } = await startApp({ ...offline(org), refusals: "next" }, handled);
    const refused = await call("/refunds", { token: reader, amount: 1 });
    expect(refused.status).toBe(403);
    expect(refused.challenge).toContain('error="insufficient_scope"');
    expect(refused.type).toMatch(/^text\/html/);
    expect(handled.reached).toHaveLength(1);
    expect(AgentAuthError.isInstance(handled.reached[0])).toBe(true);
    expect((handled.reached[0] as AgentAuthError).toProblem()).toEqual({ type: "tag:agent-warden,2026:problem/insufficient_scope", title: "Insufficient scope", status: 403, detail: expect.stringContaining("payments:refund"), code: "insufficient_scope", scope: "payments:refund" });
  });

  it("refuses an unknown refusals mode when the route is built", () => {
    expect(() => requireAgentPermission("payments:refund", { warden: newWarden(), refusals: "html" as "next" })).toThrow(expect.objectContaining({ code: "invalid_input", message: expect.stringMatching(/refusals must be "problem" or "next"/) }));
  });

  it("re-checks revocation on every request, for a token seen before too", async () => {
    const org = newWarden();
    const { reader, refunds } = tokens(org);
    let revokedChecks = 0;
    const { call } = await startApp(offline(org, { isRevoked: (id) => (revokedChecks++, org.tokens.isRevoked(id)) }));
    await call("/balance", { token: reader });
    const afterFirst = revokedChecks;
    await call("/balance", { token: reader });
    expect(revokedChecks).toBeGreaterThan(afterFirst);
    await call("/refunds", { token: refunds, amount: 10 });
    org.tokens.revoke(org.tokens.inspect(refunds).id);
    expect((await call("/refunds", { token: refunds, amount: 10 })).status).toBe(401);
  });
});

describe("requireAgentPermission, a halt while the handler runs", () => {
  /** An app whose /work route runs `handler` behind the guard; `entered` resolves when the handler starts. */
  async function haltableApp(org: Warden, handler: (request: express.Request, response: express.Response) => Promise<void>) {
    let enter!: () => void;
    const entered = new Promise<void>((resolve) => (enter = resolve));
    const failures: unknown[] = [];
    const app = express();
    app.post("/work", express.json(), requireAgentPermission("payments:refund", { warden: org }), async (request, response) => {
      enter();
      await handler(request, response);
    });
    app.use(((error, _request, _response, next) => {
      failures.push(error);
      next(error);
    }) as ErrorRequestHandler);
    const server: Server = await new Promise((resolve) => {
      const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
    });
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/work`;
    const send = (token: string) => fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}" });
    return { send, entered, failures };
  }

  it("answers 403 agent_halted, drops what a handler that ignores the halt sends later, and records the call failed", async () => {
    const org = newWarden();
    const { refunds } = tokens(org);
    let late!: () => void;
    const lateWriteDone = new Promise<void>((resolve) => (late = resolve));
    const { send, entered } = await haltableApp(org, async (_request, response) => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      // Ignores the halt: answers 200 as if nothing happened, from a timer, where a throw would crash the server.
      setTimeout(() => {
        response.status(200).json({ refunded: true });
        late();
      }, 0);
    });

    const pending = send(refunds);
    await entered;
    org.halt({ reason: "refund loop", agentId: "planner/refund-agent" });
    const response = await pending;
    expect(response.status).toBe(403);
    expect(response.headers.get("www-authenticate")).toContain('error="agent_halted"');
    expect(await response.json()).toMatchObject({ code: "agent_halted", detail: expect.stringContaining("refund loop") });
    await lateWriteDone;

    const [call] = await recorded(org);
    expect(call).toMatchObject({ toolName: "payments:refund", status: "failed", error: { name: "HaltedError" } });
    expect(call!.output).toBeUndefined();
  });

  it("hands the handler a signal that aborts with the HaltedError, and survives the handler rethrowing it", async () => {
    const org = newWarden();
    const { refunds } = tokens(org);
    const reasons: unknown[] = [];
    const { send, entered, failures } = await haltableApp(org, async (request) => {
      const signal = request.agent!.signal!;
      await new Promise((_, reject) => signal.addEventListener("abort", () => (reasons.push(signal.reason), reject(signal.reason)), { once: true }));
    });

    const pending = send(refunds);
    await entered;
    org.halt({ reason: "all stop" });
    const response = await pending;
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "agent_halted" });
    expect(reasons).toHaveLength(1);
    expect(isHalt(reasons[0])).toBe(true);
    await expect.poll(() => failures.length).toBe(1);
    const [call] = await recorded(org);
    expect(call).toMatchObject({ status: "failed", error: { name: "HaltedError" } });
  });

  it("cuts off a response already started, rather than let it finish as a success", async () => {
    const org = newWarden();
    const { refunds } = tokens(org);
    let halted!: () => void;
    const haltLanded = new Promise<void>((resolve) => (halted = resolve));
    const { send, entered } = await haltableApp(org, async (_request, response) => {
      response.status(200).type("text/plain").write("first part; ");
      await haltLanded;
      response.end("second part");
    });

    const pending = send(refunds);
    await entered;
    const response = await pending;
    expect(response.status).toBe(200);
    org.halt({ reason: "mid-stream", agentId: "planner/refund-agent" });
    halted();
    await expect(response.text()).rejects.toThrow();

    await expect.poll(async () => (await recorded(org))[0]?.status).toBe("failed");
    const [call] = await recorded(org);
    expect(call).toMatchObject({ error: { name: "HaltedError" } });
  });
});
