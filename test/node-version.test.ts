import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { unsupportedNodeMessage } from "../src/internal/runtime.js";

// The machine's own Node, when it is older than agent-warden supports (CI images keep one): the real thing.
const oldNode = ["/usr/bin/node", "/usr/local/bin/node"].find((path) => {
  if (!existsSync(path)) return false;
  const version = execFileSync(path, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
  return unsupportedNodeMessage(version) !== undefined;
});

describe("a Node too old for node:sqlite", () => {
  it("gets one sentence naming the version needed and the version found", () => {
    expect(unsupportedNodeMessage("20.20.2")).toBe("agent-warden needs Node.js 22.13 or newer (it stores with node:sqlite); this is v20.20.2");
    expect(unsupportedNodeMessage("22.12.0")).toContain("22.13");
    expect(unsupportedNodeMessage("22.13.0")).toBeUndefined();
    expect(unsupportedNodeMessage("24.1.0")).toBeUndefined();
  });

  it.skipIf(!oldNode)("the hook fails closed (exit 2, the tool is blocked) instead of crashing with exit 1", () => {
    const result = spawnSync(oldNode!, ["--import", "tsx", "src/cli/bin.ts", "hook", "pre-tool-use", "--policies", "examples/warden.yaml"], { input: JSON.stringify({ tool_name: "Bash", tool_input: { command: "ls" } }), encoding: "utf8" });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("needs Node.js 22.13 or newer");
  });

  it.skipIf(!oldNode)("the CLI and the library say so in one sentence", () => {
    const cli = spawnSync(oldNode!, ["--import", "tsx", "src/cli/bin.ts", "--help"], { encoding: "utf8" });
    expect(cli.status).toBe(1);
    expect(cli.stderr.trim().split("\n")).toHaveLength(1);
    const library = spawnSync(oldNode!, ["--import", "tsx", "-e", 'import("./src/index.ts").then((m) => { try { new m.Warden({ agentId: "a", store: ":memory:" }); } catch (e) { console.log(e.code + " " + e.message); } })'], { encoding: "utf8" });
    expect(library.stdout).toContain("config_invalid [warden] agent-warden needs Node.js 22.13 or newer");
    const tests = spawnSync(oldNode!, ["scripts/check-node.mjs"], { encoding: "utf8" });
    expect(tests.status).toBe(1);
    expect(tests.stderr).toContain("needs Node.js 22.13 or newer");
  });
});
