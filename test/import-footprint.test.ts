// What an import loads: the core and the LangChain adapter load only what their first use needs. The YAML
// parser, casbin, the server, the console, LangGraph, `langchain` and LangChain's messages (which bring most
// of `@langchain/core` and langsmith) load when a feature that needs them is used, not with the import; so do
// the witnessing client and the evidence verifier; and, within Node, the promises API of node:fs, file
// streams and worker threads.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("..", import.meta.url));

// Records every module the process resolves (imports and requires alike), by URL.
const RECORD = `
import { registerHooks } from "node:module";
globalThis.__loaded = [];
registerHooks({ resolve(specifier, context, next) { const resolved = next(specifier, context); globalThis.__loaded.push(resolved.url); return resolved; } });`;

function loadedBy(script: string): string[] {
  const child = spawnSync(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(RECORD)}`, "--import", "tsx", "--input-type=module", "-e", `${script}\nprocess.stdout.write(JSON.stringify(globalThis.__loaded));`], { cwd: REPO, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout) as string[];
}

// The TypeScript loader the test runs the sources with is not part of the footprint.
const packagesOf = (urls: string[]) => new Set(urls.flatMap((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? []).filter((name) => name !== "tsx" && name !== "esbuild"));

describe("import footprint", () => {
  it("agent-warden loads zod and its own code, not YAML, casbin, the server or the console", () => {
    const loaded = loadedBy(`const { Warden } = await import("agent-warden"); if (typeof Warden !== "function") process.exit(2);`);
    expect([...packagesOf(loaded)].sort()).toEqual(["zod"]);
    expect(loaded.filter((url) => /\/src\/(server|console|cli)\//.test(url))).toEqual([]);
    expect(loaded.some((url) => url.endsWith("/src/warden.ts"))).toBe(true);
  }, 60_000);

  it("a first governed call loads neither the witnessing client nor the evidence verifier; witness() and verifyEvidence() load them", () => {
    const loaded = loadedBy(`
      const { Warden, verifyEvidence } = await import("agent-warden");
      const warden = new Warden({ agentId: "a", store: ":memory:", policies: { policies: [{ id: "no-wipes", when: { tool: "wipe_*" }, action: "block" }] } });
      if (warden.check({ tool: "wipe_disk" }).action !== "block") process.exit(2);
      await warden.run({ task: "t" }, (run) => run.tool("read_order", { id: 1 }, () => 1));
      globalThis.__loaded.push("--");
      if ((await warden.witness()).length !== 0) process.exit(3);
      if ((await verifyEvidence({})).code !== "bundle_malformed") process.exit(4);
      warden.close();`);
    const split = loaded.indexOf("--");
    const lazy = (urls: string[]) => urls.filter((url) => /\/src\/(ledger\/witnessing|verify\/verify)\.ts$/.test(url)).map((url) => url.replace(/.*\/src\//, "src/")).sort();
    expect(lazy(loaded.slice(0, split))).toEqual([]);
    expect(lazy(loaded.slice(split + 1))).toEqual(["src/ledger/witnessing.ts", "src/verify/verify.ts"]);
  }, 60_000);

  // The same from the built package, in both module formats (CommonJS turns `import()` into a deferred require).
  it.skipIf(!existsSync(`${REPO}dist/index.cjs`))("the built package loads them on first use, as ESM and as CommonJS (run `npx tsup` first)", () => {
    const use = `const warden = new Warden({ agentId: "a", store: ":memory:", logger: { warn() {} } });
      const results = await warden.witness();
      const verdict = await verifyEvidence({});
      warden.close();
      process.stdout.write(JSON.stringify([results, verdict.code]));`;
    const esm = spawnSync(process.execPath, ["--input-type=module", "-e", `const { Warden, verifyEvidence } = await import(${JSON.stringify(`${REPO}dist/index.js`)});\n${use}`], { encoding: "utf8" });
    const cjs = spawnSync(process.execPath, ["-e", `const { Warden, verifyEvidence } = require(${JSON.stringify(`${REPO}dist/index.cjs`)});\n(async () => { ${use} })();`], { encoding: "utf8" });
    for (const child of [esm, cjs]) {
      expect(child.status, child.stderr).toBe(0);
      expect(JSON.parse(child.stdout)).toEqual([[], "bundle_malformed"]);
    }
  }, 60_000);

  // Node's own modules: the ES build reads `node:fs` and `node:crypto` without their ES facades (which run
  // every lazy getter: `fs.promises` loads the promises API and file streams), and a client on `:memory:`
  // starts no writer thread, so `node:worker_threads` stays unloaded.
  it.skipIf(!existsSync(`${REPO}dist/index.js`))("the built package's import and first governed call load neither fs/promises, file streams nor worker threads (run `npx tsup` first)", () => {
    const script = `const before = new Set(process.moduleLoadList);
      const { Warden } = await import(${JSON.stringify(`${REPO}dist/index.js`)});
      const warden = new Warden({ agentId: "a", store: ":memory:", logger: { warn() {} } });
      if (warden.check({ tool: "read_order", args: { id: 1 } }).action !== "allow") process.exit(2);
      await warden.run({ task: "t" }, (run) => run.tool("read_order", { id: 1 }, () => 1));
      warden.close();
      process.stdout.write(JSON.stringify(process.moduleLoadList.filter((name) => !before.has(name))));`;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(child.status, child.stderr).toBe(0);
    const loaded = JSON.parse(child.stdout) as string[];
    expect(loaded).toContain("NativeModule crypto");
    expect(loaded.filter((name) => /^NativeModule (internal\/fs\/promises|internal\/fs\/streams|worker_threads|internal\/worker)$/.test(name))).toEqual([]);
  }, 60_000);

  it("agent-warden/langchain loads LangChain's callback base alone; parsing a policy file loads the YAML parser then", () => {
    const loaded = loadedBy(`
      const { WardenCallbackHandler, wardenMiddleware } = await import("agent-warden/langchain");
      if (typeof WardenCallbackHandler !== "function" || typeof wardenMiddleware !== "function") process.exit(2);
      const before = globalThis.__loaded.length;
      const { parsePolicyText } = await import("agent-warden");
      parsePolicyText("version: 1\\npolicies: []\\n", "inline.yaml");
      globalThis.__loaded = [...globalThis.__loaded.slice(0, before), "--", ...globalThis.__loaded.slice(before)];`);
    const split = loaded.indexOf("--");
    const atImport = loaded.slice(0, split);
    expect([...packagesOf(atImport)].sort()).toEqual(["@langchain/core", "zod"]);
    // LangChain's callback base, not its messages (which load most of @langchain/core and langsmith).
    expect(atImport.some((url) => url.includes("/@langchain/core/dist/callbacks/base.js"))).toBe(true);
    expect(atImport.filter((url) => /\/@langchain\/core\/dist\/(messages|language_models|tools|runnables)\//.test(url))).toEqual([]);
    expect([...packagesOf(loaded.slice(split + 1))]).toContain("yaml");
  }, 60_000);
});
