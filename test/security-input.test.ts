// Hostile input must cost bounded time and never break recording: backtracking patterns, graphs of
// shared references, BigInt, values JSON cannot hold. Each attack below stalled, froze or threw
// before; the bounds are set far below those stalls, so a regression fails instead of hanging.
import { describe, expect, it } from "vitest";
import { createRedactor, parsePolicySet, parsePolicyText, PolicyEngine, PolicyError, ToolBlockedError, Warden, toolAllowed, type PolicySetInput } from "agent-warden";
import { canonicalJson } from "../src/internal/canonical.js";
import { compileGlob, compileRegex, globCaptures } from "../src/policy/pattern.js";
import { MAX_JSON_DEPTH, MAX_PAYLOAD_NODES } from "../src/redaction/limits.js";
import { withinDepth } from "../src/server/validation.js";

/** Runs `fn` and reports how long it took; used only to fail fast where a backtracking engine would not return. */
function elapsedMs(fn: () => unknown): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

function policyError(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return error as PolicyError;
  }
  throw new Error("expected a PolicyError");
}

describe("patterns match in linear time", () => {
  it("a nested-quantifier regex against a long near-miss argument decides at once", () => {
    const engine = new PolicyEngine(parsePolicySet({ policies: [{ id: "evil", when: { "args.name": { matches: "^(a+)+$" } }, action: "block" }] }));
    // 30 characters stalled a backtracking engine for more than 20 s; 100,000 is nothing for RE2.
    for (const length of [30, 1000, 100_000]) {
      const name = `${"a".repeat(length)}!`;
      let action = "";
      expect(elapsedMs(() => (action = engine.evaluate({ tool: "t", action: "unknown", agent: "x", args: { name } }).action))).toBeLessThan(2000);
      expect(action).toBe("allow");
    }
    expect(engine.evaluate({ tool: "t", action: "unknown", agent: "x", args: { name: "aaaa" } }).action).toBe("block");
  });

  it("a many-star glob against a long tool name decides at once, in policies, limits and tokens", () => {
    const glob = "a*a*a*a*a*a*a*a*a*a*a*a*b";
    const name = "a".repeat(5000);
    const engine = new PolicyEngine(parsePolicySet({ policies: [{ id: "stars", when: { tool: glob }, action: "block" }], limits: [{ id: "l", tool: glob, max: 1, per: "1m" }] }));
    expect(elapsedMs(() => expect(engine.evaluate({ tool: name, action: "unknown", agent: "x", args: {} }).action).toBe("allow"))).toBeLessThan(2000);
    expect(engine.evaluate({ tool: `${name}b`, action: "unknown", agent: "x", args: {} }).action).toBe("block");
    expect(elapsedMs(() => expect(toolAllowed({ agentId: "x", scopes: [], tools: [glob], expiresAt: 0, depth: 0 }, name)).toBe(false))).toBeLessThan(2000);
    const warden = new Warden({ agentId: "x", store: ":memory:", policies: { limits: [{ id: "l", tool: glob, max: 1, per: "1m" }] } });
    try {
      expect(elapsedMs(() => warden.check({ tool: `${"a".repeat(120)}` }))).toBeLessThan(2000);
    } finally {
      warden.close();
    }
  });

  it("globs keep their meaning", () => {
    const cases: Array<[string, string, boolean]> = [
      ["payments.*", "payments.refund", true],
      ["payments.*", "payments", false],
      ["payments.*", "paymentsXrefund", false],
      ["write_*", "write_", true],
      ["read_?ile", "read_file", true],
      ["read_?ile", "read_ile", false],
      ["*", "", true],
      ["*.refund", "payments.refund", true],
      ["a*b*c", "abc", true],
      ["a*b*c", "acb", false],
      ["a*a", "a", false],
      ["?*?", "ab", true],
      ["?*?", "a", false],
      ["*x*", "x", true],
      ["a**b", "ab", true],
      ["a.b", "aXb", false],
      ["(a)", "(a)", true],
      ["[a]", "a", false],
    ];
    for (const [glob, name, expected] of cases) {
      expect(compileGlob(glob)(name), `${glob} ~ ${name}`).toBe(expected);
      // What the wildcards span: defined exactly when the glob matches, and putting them back gives the name.
      const captures = globCaptures(glob, name);
      expect(captures !== undefined, `captures of ${glob} ~ ${name}`).toBe(expected);
      if (captures !== undefined) {
        let next = 0;
        expect([...glob].map((char) => (char === "*" || char === "?" ? captures[next++] : char)).join("")).toBe(name);
        expect(next).toBe(captures.length);
      }
    }
    expect(globCaptures("payments.*", "payments.refund")).toEqual(["refund"]);
    // Segments sit at their leftmost fit, as compileGlob places them.
    expect(globCaptures("?*.*_v?", "ab.cd.ef_v2")).toEqual(["a", "b", "cd.ef", "2"]);
  });

  it("regexes keep JavaScript's search semantics (unanchored, \\uXXXX escapes)", () => {
    expect(compileRegex("ask")("customer asked")).toBe(true);
    expect(compileRegex("^ask")("customer asked")).toBe(false);
    expect(compileRegex("^28\\d{3}$")("28000")).toBe(true);
    expect(compileRegex("\\u0041B")("xAB")).toBe(true);
    expect(compileRegex("\\u{1F600}")("smile 😀")).toBe(true);
    expect(compileRegex("\\\\u0041")("\\u0041")).toBe(true);
  });

  it("refuses, at load, patterns RE2 cannot run in linear time, naming the policy and field", () => {
    for (const matches of ["(a)\\1", "(?=admin)", "(?!x)y", "(?<=a)b", "(?<!a)b"]) {
      const error = policyError(() => parsePolicySet({ policies: [{ id: "lookaround", when: { "args.name": { matches } }, action: "block" }] }));
      expect(error.policyId, matches).toBe("lookaround");
      expect(error.field).toBe("when.args.name.matches");
      expect(error.message).toMatch(/linear-time regular expression/);
    }
    const yaml = ["policies:", "  - id: backref", "    when:", "      agent: { matches: '(x)\\1' }", "    action: block"].join("\n");
    const error = policyError(() => parsePolicyText(yaml, "warden.yaml"));
    expect(error).toMatchObject({ policyId: "backref", field: "when.agent.matches", line: 4 });
  });
});

describe("when.agent, tool, action and environment take operators", () => {
  const set: PolicySetInput = {
    policies: [
      { id: "interns", when: { agent: { in: ["intern", "temp"] } }, action: "block" },
      { id: "not-ci", when: { tool: "deploy", agent: { not_in: ["ci-bot"] } }, action: "require_approval" },
      { id: "payment-tools", when: { tool: { matches: "^payments\\." } }, action: "warn" },
      { id: "exact-star", when: { tool: { eq: "files.*" } }, action: "block" },
      { id: "risky-actions", when: { action: { in: ["deploy", "db_migrate"] }, environment: { ne: "staging" } }, action: "require_approval" },
      { id: "no-environment", when: { tool: "report", environment: { exists: false } }, action: "warn" },
    ],
  };
  const engine = new PolicyEngine(parsePolicySet(set));
  const decide = (tool: string, agent: string, extra: { action?: string; environment?: string } = {}) =>
    engine.evaluate({ tool, action: (extra.action ?? "unknown") as never, agent, environment: extra.environment, args: {} }).action;

  it("decides by them, through the tool index as well", () => {
    expect(decide("search", "intern")).toBe("block");
    expect(decide("search", "intern/helper")).toBe("block");
    expect(decide("search", "staff")).toBe("allow");
    expect(decide("deploy", "ci-bot")).toBe("allow");
    expect(decide("deploy", "staff")).toBe("require_approval");
    expect(decide("payments.refund", "staff")).toBe("warn");
    expect(decide("paymentsXrefund", "staff")).toBe("allow");
    expect(decide("files.read", "staff")).toBe("allow");
    expect(decide("files.*", "staff")).toBe("block");
    expect(decide("migrate", "staff", { action: "db_migrate", environment: "production" })).toBe("require_approval");
    expect(decide("migrate", "staff", { action: "db_migrate", environment: "staging" })).toBe("allow");
    expect(decide("report", "staff")).toBe("warn");
    expect(decide("report", "staff", { environment: "production" })).toBe("allow");
    // Repeated: the candidates are cached per tool and action.
    expect(decide("payments.refund", "staff")).toBe("warn");
    expect(decide("deploy", "staff")).toBe("require_approval");
  });

  it("says which forms are accepted when none fits", () => {
    const bad = [
      [{ agent: { bogus: 1 } }, "when.agent", /Unrecognized key: "bogus"[\s\S]*eq ne in not_in contains matches exists/],
      [{ agent: 5 }, "when.agent", /a glob such as "payments\.\*", a list of them, or operators such as \{ in: \[\.\.\.\] \}/],
      [{ tool: { in: "deploy" } }, "when.tool.in", /array/],
      [{ action: "launch" }, "when.action", /an action type \(/],
    ] as const;
    for (const [when, field, message] of bad) {
      const error = policyError(() => parsePolicySet({ policies: [{ id: "p", when: when as never, action: "block" }] }));
      expect(error.field, JSON.stringify(when)).toBe(field);
      expect(error.message).toMatch(message);
    }
  });
});

describe("redaction of hostile results costs bounded time and always records", () => {
  const redact = createRedactor();

  /** An ORM/DOM-like graph: a parent whose children point back at it and at their siblings. */
  function family(size: number) {
    const parent: Record<string, unknown> = { name: "parent", password: "hunter2", children: [] as unknown[] };
    const children = parent["children"] as Array<Record<string, unknown>>;
    for (let i = 0; i < size; i++) children.push({ name: `child-${i}`, parent, siblings: children, token: `t-${i}` });
    return parent;
  }

  /** Each level holds the next one twice: 2^depth paths through `depth` objects. */
  function diamonds(depth: number) {
    let node: unknown = { leaf: true, api_key: "k" };
    for (let i = 0; i < depth; i++) node = { left: node, right: node };
    return node;
  }

  it("cuts cycles with a marker and masks what it reaches", () => {
    let out: any;
    expect(elapsedMs(() => (out = redact(family(200))))).toBeLessThan(2000);
    expect(out.password).toBe("[REDACTED]");
    expect(out.children[0].parent).toBe("[circular]");
    expect(out.children[0].siblings).toBe("[circular]");
    expect(out.children[199].token).toBe("[REDACTED]");
    expect(() => JSON.stringify(out)).not.toThrow();
  });

  it("visits each shared object once and bounds the result of a graph with exponentially many paths", () => {
    let out: unknown;
    expect(elapsedMs(() => (out = redact(diamonds(60))))).toBeLessThan(2000);
    let text = "";
    expect(elapsedMs(() => (text = JSON.stringify(out)))).toBeLessThan(2000);
    expect(text).toContain('"[truncated]"');
    expect(text).not.toContain('"k"');
    expect(text.length).toBeLessThan(20 * MAX_PAYLOAD_NODES);
    // A modest sharing is kept whole.
    expect(redact({ a: diamonds(3), b: 1 })).toEqual({ a: JSON.parse(JSON.stringify(diamonds(3)).replaceAll('"k"', '"[REDACTED]"')), b: 1 });
    // Rules walk the same bounded way, cycles and all.
    const ruled = createRedactor({ rules: [{ path: "$..name", action: "hash" }, { path: "$.children[*].token", action: "remove" }] })(family(50)) as any;
    expect(ruled.children[3]).toMatchObject({ parent: "[circular]", siblings: "[circular]" });
    expect(ruled.children[3]).not.toHaveProperty("token");
    expect(ruled.name).toMatch(/^sha256:/);
  });

  it("stops at the depth the control plane accepts, with a marker", () => {
    let nested: Record<string, unknown> = { bottom: true };
    for (let i = 0; i < 50; i++) nested = { next: nested };
    const out = redact(nested) as Record<string, unknown>;
    expect(withinDepth({ input: out })).toBe(true);
    expect(JSON.stringify(out)).toContain('"[too deep]"');
    expect(withinDepth({ input: out }, MAX_JSON_DEPTH - 1)).toBe(false);
  });

  it("records BigInt as a marked string, functions and symbols as markers, and a throwing toJSON as one", () => {
    const out = redact({ amount: 12345678901234567890n, list: [1n], run: () => 1, tag: Symbol("x"), odd: { toJSON: () => { throw new Error("no"); } }, at: new Date(0) });
    expect(out).toEqual({ amount: "12345678901234567890n", list: ["1n"], run: "[function]", tag: "[symbol]", odd: "[unserializable]", at: "1970-01-01T00:00:00.000Z" });
    expect(canonicalJson({ n: 5n, f: () => 1, s: Symbol("s"), list: [() => 1] })).toBe('{"list":[null],"n":"5n"}');
    const loop: Record<string, unknown> = { a: 1 };
    loop["self"] = loop;
    expect(canonicalJson(loop)).toBe('{"a":1,"self":"[circular]"}');
  });

  it("masks secrets in long hostile strings in linear time", () => {
    for (const text of ["-eyJ".repeat(250_000), "eyJ.".repeat(250_000), `Bearer ${" ".repeat(500_000)}`, "sk-".repeat(300_000)]) {
      expect(elapsedMs(() => redact({ text }))).toBeLessThan(2000);
    }
    expect(redact({ text: "id=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uh" })).toEqual({ text: "id=[REDACTED]" });
  });

  it("a tool whose arguments and result hold cycles, shared graphs and BigInts completes and is recorded", async () => {
    const warden = new Warden({ agentId: "orm-agent", store: ":memory:", policies: { policies: [{ id: "big-refunds", when: { tool: "refund", "args.amount": { gt: 50_000 } }, action: "block" }] } });
    try {
      const output = await warden.run({}, (run) => run.tool("load_family", { id: 7n }, () => family(100)));
      expect((output as any).children[0].parent).toBe(output);
      // A BigInt amount is compared as a number: it does not slip past the limit.
      await expect(warden.run({}, (run) => run.tool("refund", { amount: 100_000n }, () => "refunded"))).rejects.toBeInstanceOf(ToolBlockedError);
      const small = await warden.run({}, (run) => run.tool("refund", { amount: 100n, graph: diamonds(40) }, () => ({ refunded: 100n })));
      expect(small).toEqual({ refunded: 100n });
      const calls = (await Promise.all(warden.listRuns().map((summary) => warden.getRun(summary.runId)))).flatMap((run) => run.toolCalls);
      expect(calls.map((call) => call.status).sort()).toEqual(["blocked", "completed", "completed"]);
      expect(JSON.stringify(calls)).toContain('"100n"');
      expect(JSON.stringify(calls)).toContain('"[circular]"');
      expect(warden.ledger.verify()).toMatchObject({ ok: true });
    } finally {
      warden.close();
    }
  });
});
