// What an import loads: the core and the LangChain adapter load only what their first use needs. The YAML
// parser, casbin, the server, the console, LangGraph, `langchain` and LangChain's messages (which bring most
// of `@langchain/core` and langsmith) load when a feature that needs them is used, not with the import.
import { spawnSync } from "node:child_process";
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
