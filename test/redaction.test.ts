import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Warden, createRedactor, type ApprovalRecord, type WardenEvent } from "agent-warden";

const MASK = "[REDACTED]";

// Secret-looking values, long enough to be recognised, each unique so a leak is easy to spot.
const bearer = "Bearer abc123def456ghi789";
const openaiKey = "sk-proj1234567890abcdefghij";
const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ8y8tB0YxYV0C7sQ8m2Qz3p0mFv9c2n4m5k6l7j8h9g\n-----END PRIVATE KEY-----\n";

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const sha = (value: unknown) => `sha256:${createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16)}`;

describe("default redaction", () => {
  const redact = createRedactor();

  it.each(["password", "secret", "token", "api_key", "apiKey", "authorization", "Authorization", "cookie", "accessToken", "refresh_token", "client_secret", "x-api-key", "db_password", "Set-Cookie"])("masks the value of %s at any depth", (key) => {
    const input = deepFreeze({ [key]: "hunter2", nested: { deeper: { [key]: "hunter2" } }, list: [{ [key]: "hunter2" }, { [key]: { any: "shape" } }] });
    const out = redact(input) as typeof input & { nested: { deeper: Record<string, unknown> }; list: Array<Record<string, unknown>> };
    expect(out[key]).toBe(MASK);
    expect(out.nested.deeper[key]).toBe(MASK);
    expect(out.list[0]![key]).toBe(MASK);
    expect(out.list[1]![key]).toBe(MASK);
    expect(JSON.stringify(out)).not.toContain("hunter2");
  });

  it("leaves ordinary keys and values alone, and returns a clean payload as is", () => {
    const input = deepFreeze({ path: "src/auth/session.ts", max_tokens: 512, tokens_used: 40, author: "ada", items: [1, "two", { ok: true }], empty_password: "" });
    const out = redact(input);
    expect(out).toBe(input);
  });

  it.each([
    ["a bearer token", bearer],
    ["an sk- key", openaiKey],
    ["a JWT", jwt],
    ["a PEM private key", pem],
  ])("masks %s under any key and in arrays", (_name, secret) => {
    const input = deepFreeze({ header: secret, nested: { list: ["fine", secret] } });
    const out = redact(input) as { header: string; nested: { list: string[] } };
    expect(out.header).toBe(MASK);
    expect(out.nested.list).toEqual(["fine", MASK]);
    expect(redact(secret)).toBe(MASK);
  });

  it("masks extra keys given in options, case-insensitively", () => {
    const out = createRedactor({ keys: ["ssn"] })(deepFreeze({ SSN: "123-45-6789", name: "ada" }));
    expect(out).toEqual({ SSN: MASK, name: "ada" });
  });

  it("can be turned off", () => {
    const input = { password: "hunter2", header: bearer };
    expect(createRedactor({ defaults: false })(input)).toEqual(input);
  });
});

describe("redaction rules by JSON path", () => {
  const redact = createRedactor({
    rules: [
      { path: "$.card", action: "mask" },
      { path: "$.items[*].token", action: "remove" },
      { path: "$..password", action: "hash" },
    ],
  });
  const input = deepFreeze({
    card: { number: "4111111111111111", cvc: "123" },
    items: [
      { sku: "A-1", token: "tok_1" },
      { sku: "B-7", token: "tok_2" },
    ],
    user: { name: "ada", password: "hunter2", profile: { password: "correct horse" } },
    password: "s3cret!",
    note: "the card is on file",
  });

  it("masks, removes and hashes what the rules name, and leaves the input untouched", () => {
    const before = JSON.stringify(input);
    const out = redact(input) as Record<string, any>;
    expect(JSON.stringify(input)).toBe(before);
    expect(out).not.toBe(input);
    expect(out.card).toBe(MASK);
    expect(out.items).toEqual([{ sku: "A-1" }, { sku: "B-7" }]);
    expect("token" in out.items[0]).toBe(false);
    expect(out.user.password).toBe(sha("hunter2"));
    expect(out.user.profile.password).toBe(sha("correct horse"));
    expect(out.password).toBe(sha("s3cret!"));
    expect(out.user.name).toBe("ada");
    expect(out.note).toBe("the card is on file");
    const text = JSON.stringify(out);
    for (const secret of ["4111111111111111", "tok_1", "tok_2", "hunter2", "correct horse", "s3cret!"]) expect(text).not.toContain(secret);
  });

  it("hashes consistently: the same value gives the same hash, a different one a different hash", () => {
    const a = redact({ password: "same" }) as { password: string };
    const b = redact({ password: "same" }) as { password: string };
    const c = redact({ password: "other" }) as { password: string };
    expect(a.password).toBe(b.password);
    expect(a.password).not.toBe(c.password);
  });

  it("still applies the defaults beside the rules", () => {
    const out = redact(deepFreeze({ api_key: "k-123", header: bearer, items: [{ token: "x", secret: "y" }] })) as Record<string, any>;
    expect(out).toEqual({ api_key: MASK, header: MASK, items: [{ secret: MASK }] });
  });

  it("masks by index and by wildcard", () => {
    const out = createRedactor({ rules: [{ path: "$.rows[1]" }, { path: "$.env.*", action: "mask" }] })(deepFreeze({ rows: ["a", "b", "c"], env: { HOME: "/root", PATH: "/bin" } }));
    expect(out).toEqual({ rows: ["a", MASK, "c"], env: { HOME: MASK, PATH: MASK } });
  });

  it("refuses a malformed path", () => {
    expect(() => createRedactor({ rules: [{ path: "card" }] })).toThrow();
  });
});

describe("redaction before anything is recorded, emitted or shown", () => {
  const clients: Warden[] = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });

  it("the ledger, the events and the approval request never see a secret", async () => {
    const events: WardenEvent[] = [];
    const requests: ApprovalRecord[] = [];
    const warden = new Warden({
      agentId: "billing-agent",
      store: ":memory:",
      redaction: { rules: [{ path: "$.card", action: "mask" }, { path: "$..pin", action: "hash" }] },
      policies: { policies: [{ id: "refunds", when: { tool: "refund" }, action: "require_approval" }] },
      onApprovalRequest: (request, decide) => {
        requests.push(request);
        decide.approve({ reviewer: "alice" });
      },
    });
    clients.push(warden);
    warden.on("*", (event) => events.push(event));

    const args = deepFreeze({
      orderId: 1042,
      card: { number: "4111111111111111", cvc: "cvc-x737" },
      pin: "pin-9876",
      password: "hunter2",
      headers: { authorization: bearer, cookie: "session=abcdef" },
      apiKey: openaiKey,
      context: { note: "signed", id_token: jwt, key: pem },
    });
    const output = await warden.run({ task: "refund order 1042", accessToken: "at-0000-secret" }, (run) =>
      run.step("refund", () => run.tool("refund", args, () => ({ refunded: true, receipt: { token: "rcpt-secret-1", signature: bearer } }))),
    );
    expect(output.receipt.token).toBe("rcpt-secret-1"); // the tool's caller gets the real output

    const secrets = ["4111111111111111", "cvc-x737", "pin-9876", "hunter2", "abc123def456ghi789", "session=abcdef", openaiKey, jwt, "MC4CAQAwBQYDK2VwBCIEIJ8y8tB0", "at-0000-secret", "rcpt-secret-1"];
    const noSecret = (what: string, value: unknown) => {
      const text = JSON.stringify(value);
      for (const secret of secrets) expect(text, `${what} contains ${secret}`).not.toContain(secret);
    };

    // events
    expect(events.map((e) => e.type)).toContain("approval.requested");
    noSecret("events", events);
    // approval request, as the callback and the store see it
    expect(requests).toHaveLength(1);
    expect(requests[0]!.payload).toMatchObject({ orderId: 1042, card: MASK, pin: sha("pin-9876"), password: MASK, headers: { authorization: MASK, cookie: MASK }, apiKey: MASK, context: { note: "signed", id_token: MASK, key: MASK } });
    noSecret("approval request", requests);
    noSecret("approvals", warden.approvals.list());
    // ledger, and the run as recorded
    const ledger = warden.ledger.entries();
    expect(ledger.length).toBeGreaterThan(5);
    noSecret("ledger", ledger);
    const [summary] = warden.listRuns();
    const run = await warden.getRun(summary!.runId);
    expect(run.toolCalls[0]!.status).toBe("completed");
    expect(run.toolCalls[0]!.output).toEqual({ refunded: true, receipt: { token: MASK, signature: MASK } });
    expect(run.metadata).toEqual({ task: "refund order 1042", accessToken: MASK });
    noSecret("run", run);
    // and the caller's arguments were not touched
    expect(args.password).toBe("hunter2");
    expect(warden.ledger.verify()).toMatchObject({ ok: true });
  });

  it("a failed tool's error is recorded redacted", async () => {
    const warden = new Warden({ agentId: "a", store: ":memory:" });
    clients.push(warden);
    const failure = Object.assign(new Error("upstream refused"), { code: "E_UP" });
    await expect(warden.run({}, (run) => run.tool("call_api", { token: "tkn-1234" }, () => Promise.reject(failure)))).rejects.toBe(failure);
    const [summary] = warden.listRuns();
    const run = await warden.getRun(summary!.runId);
    expect(run.status).toBe("failed");
    expect(run.toolCalls[0]).toMatchObject({ status: "failed", input: { token: MASK }, error: { name: "Error", message: "upstream refused" } });
    expect(JSON.stringify(warden.ledger.entries())).not.toContain("tkn-1234");
  });
});

describe("secrets inside longer text", () => {
  it("masks each secret in place and keeps the rest of the message", () => {
    const redact = createRedactor();
    const message = "upstream said 401 for Authorization: Bearer abcdEFGH12345678.xyz (key sk-live_0123456789abcdefXYZ)";
    expect(redact({ error: message })).toEqual({ error: "upstream said 401 for Authorization: [REDACTED] (key [REDACTED])" });
    expect(redact("nothing secret in this sentence at all")).toBe("nothing secret in this sentence at all");
  });
});

describe("payment card numbers", () => {
  it("are masked wherever they appear in a string when the Luhn check passes; other long numbers stay", async () => {
    const { createRedactor } = await import("agent-warden");
    const redact = createRedactor();
    expect(redact({ card: "4111 1111 1111 1111", other: "5500-0000-0000-0004", note: "pay with 4111111111111111 now" })).toEqual({ card: "[REDACTED]", other: "[REDACTED]", note: "pay with [REDACTED] now" });
    // Not a card: the check digit is wrong, or it is an id or a timestamp.
    expect(redact({ order: "4111111111111112", ts: "1796247070758" })).toEqual({ order: "4111111111111112", ts: "1796247070758" });
  });
});
