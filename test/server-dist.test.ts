// The built package holds one copy of the core: `agent-warden/server` (CommonJS and ESM) reaches it
// through the package name, so an error its control plane throws is an instance of the class the
// core entry exports. Runs against `dist/` (CI builds before testing; locally: npm run build).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const built = existsSync(join(root, "dist/adapters/server.cjs")) && existsSync(join(root, "dist/index.cjs"));
const require = createRequire(import.meta.url);

describe.skipIf(!built)("the built control plane shares the core's classes (run `npm run build` first)", () => {
  for (const [format, load] of [
    ["CommonJS", async () => ({ core: require(join(root, "dist/index.cjs")), server: require(join(root, "dist/adapters/server.cjs")) })],
  ] as const) {
    it(`${format}: a store error is an instance of the core entry's error class`, async () => {
      const { core, server } = await load();
      const dir = mkdtempSync(join(tmpdir(), "warden-dist-"));
      const store = new server.SqliteControlPlaneStore({ path: join(dir, "warden.db") });
      try {
        const refused = await store.createKey({ org: "not an org!", role: "admin" }).catch((error: unknown) => error);
        const missing = await store.revokeKey("acme", "key_missing").catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(core.InvalidInputError);
        expect(refused).toBeInstanceOf(core.WardenError);
        expect(missing).toBeInstanceOf(core.NotFoundError);
        expect(core.WardenError.isInstance(missing)).toBe(true);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("ESM: a store error is an instance of the core entry's error class (in plain Node, where the package resolves itself)", () => {
    // Outside the test runner, whose aliases point "agent-warden" at the source.
    const script = `
      const core = await import(${JSON.stringify(pathToFileURL(join(root, "dist/index.js")).href)});
      const server = await import(${JSON.stringify(pathToFileURL(join(root, "dist/adapters/server.js")).href)});
      const store = new server.SqliteControlPlaneStore({ path: ":memory:" });
      const error = await store.createKey({ org: "not an org!", role: "admin" }).catch((e) => e);
      console.log(JSON.stringify({ same: error instanceof core.InvalidInputError && error instanceof core.WardenError, code: error.code }));
      await store.close();`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: tmpdir(), encoding: "utf8" });
    expect(JSON.parse(out.trim().split("\n").at(-1)!)).toEqual({ same: true, code: "invalid_input" });
  });

  it("CommonJS: the core's error classes are defined once across every entry", () => {
    const { readdirSync, readFileSync } = require("node:fs") as typeof import("node:fs");
    const files = [...readdirSync(join(root, "dist")).map((f) => join("dist", f)), ...readdirSync(join(root, "dist/adapters")).map((f) => join("dist/adapters", f))].filter((f) => f.endsWith(".cjs"));
    const defining = files.filter((f) => /var WardenError = /.test(readFileSync(join(root, f), "utf8")));
    expect(defining).toHaveLength(1);
  });
});
