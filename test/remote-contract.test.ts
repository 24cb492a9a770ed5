// The client's half of the wire contract: a loopback server that answers only with the contract's
// example responses, and a Warden in remote mode talking to it. Every request the client makes
// must fit the contract's example request for its route, and the client must act on the
// contract's answers (policies, halts, approval decisions, stream messages).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicySet, Warden } from "agent-warden";
import { wireEvents } from "../src/wire/event.js";
import { wireResponses } from "../src/wire/responses.js";
import { CONTRACT_PATH, shapeProblems, type ContractFile, type RecordedCase } from "./fixtures/wire.js";

const { IngestResponseSchema } = wireEvents();
const { ApprovalRecordSchema, HaltListSchema, HaltRecordSchema, JwksSchema, PolicyVersionSchema, RevocationSchema, RevokedPageSchema, TokenRevokedMessageSchema } = wireResponses();

const contract = JSON.parse(readFileSync(CONTRACT_PATH, "utf8")) as ContractFile;
const byName = (name: string): RecordedCase => {
  const found = contract.cases.find((c) => c.name === name);
  if (!found) throw new Error(`no contract case "${name}"`);
  return found;
};

/** The routes a remote client may use, each with the contract case that is its example. */
const CLIENT_ROUTES: Array<[string, RegExp, string]> = [
  ["GET", /^\/v1\/policies\/current$/, "current policies"],
  ["GET", /^\/v1\/halts\?include=all$/, "every halt, lifted ones too"],
  ["PUT", /^\/v1\/agents\/[^/]+$/, "register an agent and its group"],
  ["POST", /^\/v1\/events$/, "ingest a batch of events"],
  ["POST", /^\/v1\/approvals$/, "an agent asks for approval (naming the request and its event)"],
  ["GET", /^\/v1\/approvals\/[^/]+$/, "one approval"],
  ["POST", /^\/v1\/halts$/, "halt an agent"],
  ["POST", /^\/v1\/halts\/resume$/, "resume the agent"],
  ["GET", /^\/v1\/stream\?topics=[a-z,]+$/, "the stream from the start: every durable message, in order"],
  ["GET", /^\/v1\/tokens\/jwks$/, "the public key as JWKS"],
  ["GET", /^\/v1\/tokens\/revoked\?since=\d+&limit=\d+(&afterTokenId=[^&]+)?$/, "revocations since a time, oldest first (a client catching up)"],
];

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: unknown;
}

const sse = (id: number | string | null, event: string, data: unknown) => `${id === null ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

describe("wire contract: the remote client", () => {
  const seen: Seen[] = [];
  const streams = new Set<ServerResponse>();
  let server: Server;
  let url: string;
  let dir: string;
  let warden: Warden;
  let nextSeq = 100;
  const approvalRequests: Array<Record<string, unknown>> = [];

  const push = (event: string, data: unknown) => {
    const text = sse(nextSeq++, event, data);
    for (const response of streams) response.write(text);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "warden-remote-contract-"));
    const policies = byName("current policies").response;
    server = createServer((request, response) => {
      let text = "";
      request.setEncoding("utf8");
      request.on("data", (chunk: string) => (text += chunk));
      request.on("end", () => {
        const body: unknown = text === "" ? undefined : JSON.parse(text);
        seen.push({ method: request.method!, url: request.url!, headers: request.headers, body });
        const json = (example: RecordedCase["response"], override?: unknown) => {
          response.writeHead(example.status, { "content-type": "application/json", ...(example.headers.etag && { etag: example.headers.etag }) });
          response.end(JSON.stringify(override ?? example.body));
        };
        const path = request.url!;
        if (request.method === "GET" && path === "/v1/policies/current") {
          if (request.headers["if-none-match"] === policies.headers.etag) {
            response.writeHead(304, { etag: policies.headers.etag! });
            response.end();
          } else json(policies);
        } else if (request.method === "GET" && path === "/v1/halts?include=all") json(byName("every halt, lifted ones too").response);
        else if (request.method === "PUT" && path.startsWith("/v1/agents/")) json(byName("register an agent and its group").response);
        else if (request.method === "POST" && path === "/v1/events") json(byName("ingest a batch of events").response, { accepted: (body as { events: unknown[] }).events.length, duplicates: 0 });
        else if (request.method === "POST" && path === "/v1/approvals") {
          const asked = body as Record<string, unknown>;
          approvalRequests.push(asked);
          const example = byName("an agent asks for approval (naming the request and its event)").response;
          json(example, { ...(example.body as object), approvalId: asked.approvalId, toolCallId: asked.toolCallId, runId: asked.runId, agentId: asked.agentId, toolName: asked.toolName });
        } else if (request.method === "GET" && path.startsWith("/v1/approvals/")) {
          // Still pending as far as polling can tell: the decision comes over the stream.
          const example = byName("an agent asks for approval (naming the request and its event)").response;
          json(example, { ...(example.body as object), approvalId: decodeURIComponent(path.slice("/v1/approvals/".length)) });
        } else if (request.method === "POST" && path === "/v1/halts") json(byName("halt an agent").response);
        else if (request.method === "POST" && path === "/v1/halts/resume") json(byName("resume the agent").response);
        else if (request.method === "GET" && path.startsWith("/v1/tokens/revoked?")) json(byName("revocations since a time, oldest first (a client catching up)").response);
        else if (request.method === "GET" && path.startsWith("/v1/stream")) {
          response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          response.write("retry: 1000\n\n");
          // A new client: hello first. The contract's replay follows, as a reconnecting client would get it.
          response.write(sse(0, "hello", (byName("the stream without an id: hello").response.body as Array<{ data: unknown }>)[0]!.data));
          for (const event of byName("the stream from the start: every durable message, in order").response.body as Array<{ id: string; event: string; data: unknown }>) response.write(sse(event.id, event.event, event.data));
          streams.add(response);
          response.on("close", () => streams.delete(response));
        } else {
          response.writeHead(404, { "content-type": "application/json" });
          response.end(JSON.stringify(byName("no such route: 404").response.body));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    warden = new Warden({ agentId: "agent-1", url, apiKey: `wdn_${"k".repeat(43)}`, store: ":memory:", remote: { cacheDir: dir, flushInterval: 20 }, onError: () => {} });
  });

  afterAll(async () => {
    await warden?.shutdown();
    for (const response of streams) response.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("syncs the contract's policies and halts, and follows the stream", async () => {
    expect(await warden.ready()).toBe(true);
    const expected = parsePolicySet((byName("current policies").response.body as { policies: unknown }).policies);
    expect(warden.policies).toEqual(expected);
    expect(warden.check({ tool: "wipe_disk" }).action).toBe("block");
    await waitFor(() => streams.size === 1);
    // The replayed halts were all lifted in the end.
    await waitFor(() => warden.activeHalts.length === 0 && seen.some((s) => s.url.startsWith("/v1/stream")));
  });

  it("catches up with the revocations the contract lists, from the start and after hello", async () => {
    const [revoked] = (byName("revocations since a time, oldest first (a client catching up)").response.body as { items: Array<{ tokenId: string; revokedAt: number }> }).items;
    // ready() waited for the first catch-up: the contract's revocation is known here.
    expect(warden.tokens.isRevoked(revoked!.tokenId)).toBe(true);
    const asked = seen.filter((s) => s.url.startsWith("/v1/tokens/revoked?")).map((s) => new URL(s.url, url).searchParams.get("since"));
    expect(asked[0]).toBe("0");
    // After hello it asks again, from a minute before the newest revocation it has seen.
    await waitFor(() => seen.filter((s) => s.url.startsWith("/v1/tokens/revoked?")).length >= 2);
    expect(new URL(seen.filter((s) => s.url.startsWith("/v1/tokens/revoked?"))[1]!.url, url).searchParams.get("since")).toBe(String(revoked!.revokedAt - 60_000));
  });

  it("applies a halt and its lifting from the stream", async () => {
    const [created, lifted] = ["halt.created", "halt.lifted"].map((type) => (byName("the stream from the start: every durable message, in order").response.body as Array<{ event: string; data: Record<string, unknown> }>).find((e) => e.event === type)!.data);
    push("halt.created", { ...created, haltId: "halt_stream00001" });
    await waitFor(() => warden.check({ tool: "read_order" }).action === "block");
    expect(warden.check({ tool: "read_order" })).toMatchObject({ halted: true, reason: "halted (agent agent-1): runaway refunds" });
    expect(warden.signal.aborted).toBe(true);
    push("halt.lifted", { ...lifted, haltId: "halt_stream00001" });
    await waitFor(() => warden.check({ tool: "read_order" }).action === "allow");
  });

  it("asks for approval through the server and runs the tool when the stream says approved", async () => {
    const result = warden.run({ task: "refund" }, (run) => run.tool("refund", { amount: 28000, currency: "EUR" }, () => "refunded"));
    await waitFor(() => approvalRequests.length === 1);
    const asked = approvalRequests[0]!;
    const resolved = (byName("the stream from the start: every durable message, in order").response.body as Array<{ event: string; data: Record<string, unknown> }>).find((e) => e.event === "approval.resolved" && e.data.status === "approved")!.data;
    push("approval.resolved", { ...resolved, approvalId: asked.approvalId, toolCallId: asked.toolCallId, runId: asked.runId, agentId: asked.agentId });
    await expect(result).resolves.toBe("refunded");
  });

  it("sends its own halts and resumes to the server", async () => {
    warden.halt({ reason: "local stop", agentId: "agent-1" });
    warden.resume({ agentId: "agent-1", reason: "ok" });
    await waitFor(() => seen.some((s) => s.url === "/v1/halts") && seen.some((s) => s.url === "/v1/halts/resume"));
  });

  it("sends its events in batches, and every request fits the contract", async () => {
    await warden.remote?.flush();
    await waitFor(() => seen.some((s) => s.url === "/v1/events"));
    for (const request of seen) {
      const route = CLIENT_ROUTES.find(([method, path]) => method === request.method && path.test(request.url));
      expect(route, `${request.method} ${request.url} is not a route the contract gives a client`).toBeDefined();
      expect(request.headers.authorization).toMatch(/^Bearer wdn_/);
      if (request.body === undefined) continue;
      const example = byName(route![2]);
      const problems = shapeProblems(example.request, request.body, new Set(example.freeform ?? []));
      expect(problems, `${request.method} ${request.url}`).toEqual([]);
    }
    const kinds = new Set(seen.map((s) => `${s.method} ${s.url.split("?")[0]!.replace(/\/(agent-1|apr_\w+)$/, "/:id")}`));
    for (const expected of ["GET /v1/policies/current", "GET /v1/halts", "PUT /v1/agents/:id", "POST /v1/events", "POST /v1/approvals", "POST /v1/halts", "POST /v1/halts/resume", "GET /v1/stream", "GET /v1/tokens/jwks", "GET /v1/tokens/revoked"]) expect(kinds).toContain(expected);
  });

  it("revalidates its cached policies with If-None-Match and accepts 304", async () => {
    const restarted = new Warden({ agentId: "agent-1", url, apiKey: `wdn_${"k".repeat(43)}`, store: ":memory:", remote: { cacheDir: dir, stream: false }, onError: () => {} });
    try {
      expect(await restarted.ready()).toBe(true);
      const revalidation = seen.filter((s) => s.url === "/v1/policies/current").at(-1)!;
      // The cache holds the newest version the first client saw: the last one pushed over the stream.
      const pushed = (byName("the stream from the start: every durable message, in order").response.body as Array<{ event: string; data: { etag: string } }>).filter((e) => e.event === "policy.updated").at(-1)!;
      expect(revalidation.headers["if-none-match"]).toBe(pushed.data.etag);
      expect(restarted.check({ tool: "wipe_disk" }).action).toBe("block");
    } finally {
      await restarted.shutdown();
    }
  });
});

describe("wire contract: the client reads every answer it acts on with a schema", () => {
  const answers: Array<[string, { safeParse(value: unknown): { success: boolean; error?: unknown } }]> = [
    ["current policies", PolicyVersionSchema],
    ["every halt, lifted ones too", HaltListSchema],
    ["one approval", ApprovalRecordSchema],
    ["the public key as JWKS", JwksSchema],
    ["revocations since a time, oldest first (a client catching up)", RevokedPageSchema],
    ["ingest a batch of events", IngestResponseSchema],
    ["the same batch again: every event a duplicate", IngestResponseSchema],
  ];
  for (const [name, schema] of answers) {
    it(`parses the contract's answer: ${name}`, () => {
      const result = schema.safeParse(byName(name).response.body);
      expect(result.error).toBeUndefined();
    });
  }

  it("parses every stream message it acts on, and each revocation listed", () => {
    const stream = byName("the stream from the start: every durable message, in order").response.body as Array<{ event: string; data: unknown }>;
    const schemas: Record<string, { safeParse(value: unknown): { success: boolean; error?: unknown } }> = {
      "policy.updated": PolicyVersionSchema,
      "halt.created": HaltRecordSchema,
      "halt.lifted": HaltRecordSchema,
      "approval.resolved": ApprovalRecordSchema,
      "token.revoked": TokenRevokedMessageSchema,
    };
    const kinds = new Set<string>();
    for (const message of stream) {
      const schema = schemas[message.event];
      if (schema === undefined) continue;
      kinds.add(message.event);
      expect(schema.safeParse(message.data).error, message.event).toBeUndefined();
    }
    expect([...kinds].sort()).toEqual(Object.keys(schemas).sort());
    for (const item of (byName("revocations since a time, oldest first (a client catching up)").response.body as { items: unknown[] }).items) expect(RevocationSchema.safeParse(item).success).toBe(true);
  });

  it("refuses answers of another shape: a halt without its scope, policies that are not an object, a JWK without kty", () => {
    const halts = byName("every halt, lifted ones too").response.body as { halts: Array<Record<string, unknown>> };
    expect(HaltListSchema.safeParse({ halts: [{ ...halts.halts[0], scope: "everything" }] }).success).toBe(false);
    expect(PolicyVersionSchema.safeParse({ version: 1, etag: "x", policies: "block everything" }).success).toBe(false);
    expect(JwksSchema.safeParse({ keys: [{ x: "abc" }] }).success).toBe(false);
    expect(IngestResponseSchema.safeParse({ accepted: -1 }).success).toBe(false);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
