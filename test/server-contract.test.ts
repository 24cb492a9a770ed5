import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POSTGRES_SKIP, startPostgres } from "./fixtures/postgres.js";
import { CONTRACT_PATH, mismatches, send, startHarness, type ContractFile, type Harness } from "./fixtures/wire.js";

const contract = JSON.parse(readFileSync(CONTRACT_PATH, "utf8")) as ContractFile;

/** Every route of the API; each must appear in the contract. */
const ROUTES: Array<[string, RegExp]> = [
  ["GET", /^\/v1\/health$/],
  ["GET", /^\/v1\/me$/],
  ["POST", /^\/v1\/events$/],
  ["GET", /^\/v1\/agents$/],
  ["PUT", /^\/v1\/agents\/[^/]+$/],
  ["POST", /^\/v1\/check$/],
  ["GET", /^\/v1\/runs(\?.*)?$/],
  ["GET", /^\/v1\/runs\/[^/?]+$/],
  ["GET", /^\/v1\/tool-calls(\?.*)?$/],
  ["GET", /^\/v1\/tool-calls\/[^/?]+$/],
  ["GET", /^\/v1\/policies\/current$/],
  ["PUT", /^\/v1\/policies$/],
  ["POST", /^\/v1\/policies\/validate$/],
  ["GET", /^\/v1\/policies\/versions(\?.*)?$/],
  ["GET", /^\/v1\/policies\/versions\/\d+$/],
  ["POST", /^\/v1\/policies\/rollback$/],
  ["POST", /^\/v1\/approvals$/],
  ["GET", /^\/v1\/approvals(\?.*)?$/],
  ["GET", /^\/v1\/approvals\/[^/?]+$/],
  ["POST", /^\/v1\/approvals\/[^/]+\/approve$/],
  ["POST", /^\/v1\/approvals\/[^/]+\/reject$/],
  ["GET", /^\/v1\/halts(\?.*)?$/],
  ["POST", /^\/v1\/halts$/],
  ["POST", /^\/v1\/halts\/resume$/],
  ["POST", /^\/v1\/tokens$/],
  ["POST", /^\/v1\/tokens\/revoke$/],
  ["POST", /^\/v1\/tokens\/verify$/],
  ["GET", /^\/v1\/tokens\/revoked(\?.*)?$/],
  ["GET", /^\/v1\/tokens\/jwks$/],
  ["GET", /^\/\.well-known\/jwks\.json$/],
  ["GET", /^\/v1\/keys$/],
  ["POST", /^\/v1\/keys$/],
  ["DELETE", /^\/v1\/keys\/[^/]+$/],
  ["GET", /^\/v1\/ledger\/verify$/],
  ["GET", /^\/v1\/ledger\/key$/],
  ["GET", /^\/v1\/evidence\/[^/?]+$/],
  ["GET", /^\/v1\/ledger\/witness\/key$/],
  ["POST", /^\/v1\/ledger\/witness\/add-checkpoint$/],
  ["GET", /^\/v1\/ledger\/witness\/checkpoint\?origin=.+$/],
  ["GET", /^\/v1\/ledger\/export(\?.*)?$/],
  ["GET", /^\/v1\/stream(\?.*)?$/],
];

// The same contract on both stores: SQLite, and PostgreSQL when its server binaries are installed.
const STORES: Array<{ name: string; skip: string | undefined; database: () => Promise<{ url: string | undefined; stop(): void }> }> = [
  { name: "SQLite", skip: undefined, database: async () => ({ url: undefined, stop() {} }) },
  {
    name: "PostgreSQL",
    skip: POSTGRES_SKIP,
    database: async () => {
      const cluster = await startPostgres();
      return { url: cluster.createDatabase("warden_contract"), stop: () => cluster.stop() };
    },
  },
];

for (const store of STORES) describe.skipIf(store.skip !== undefined)(`wire contract on ${store.name}: the server answers every case as pinned${store.skip ? ` (skipped: ${store.skip})` : ""}`, () => {
  let harness: Harness;
  let database: { url: string | undefined; stop(): void };
  const captures: Record<string, unknown> = {};

  beforeAll(async () => {
    database = await store.database();
    harness = await startHarness(database.url === undefined ? {} : { database: database.url });
  }, 120_000);
  afterAll(async () => {
    await harness?.close();
    database?.stop();
  });

  it("has a case for every route, with at least one success and the errors that matter", () => {
    for (const [method, path] of ROUTES) {
      const cases = contract.cases.filter((c) => c.method === method && path.test(c.path));
      expect(cases.length, `${method} ${path}`).toBeGreaterThan(0);
      expect(cases.some((c) => c.response.status < 300 || c.response.status === 304), `${method} ${path} succeeds somewhere`).toBe(true);
    }
    // The witness routes answer as C2SP tlog-witness says: text, a 409 naming the size held, a 422 for a history that does not extend it.
    for (const wire of contract.cases.filter((c) => c.format === "text")) expect(typeof wire.response.body, wire.name).toBe("string");
    expect(contract.cases.find((c) => c.path.endsWith("add-checkpoint") && c.response.status === 409)?.response.headers["content-type"]).toBe("text/x.tlog.size");
    const statuses = new Set(contract.cases.map((c) => c.response.status));
    for (const status of [200, 201, 304, 400, 401, 403, 404, 409, 412, 415, 422]) expect(statuses.has(status), String(status)).toBe(true);
  });

  // One test per case, in order: they share one server, as the contract says.
  for (const wire of contract.cases) {
    it(`${wire.method} ${wire.path}: ${wire.name}`, async () => {
      const actual = await send(harness, wire, captures);
      // `/v1/health` names the store; everything else answers the same on both.
      const problems = mismatches(wire.response, actual, new Set([...wire.volatile, ...(store.name === "SQLite" ? [] : ["body.store"])]));
      expect(problems, JSON.stringify(actual.body).slice(0, 2000)).toEqual([]);
    });
  }

  it("errors always have the one shape: { error: { code, message, problems? } }, but for the tlog-witness answers, which are text", () => {
    for (const wire of contract.cases.filter((c) => c.response.status >= 400 && c.format !== "text")) {
      const body = wire.response.body as { error?: { code?: unknown; message?: unknown; problems?: unknown } };
      expect(typeof body.error?.code, wire.name).toBe("string");
      expect(typeof body.error?.message, wire.name).toBe("string");
      expect(String(body.error?.message)).not.toMatch(/^\[warden\]/);
      if (body.error?.problems !== undefined) expect(Array.isArray(body.error.problems)).toBe(true);
    }
  });
});
