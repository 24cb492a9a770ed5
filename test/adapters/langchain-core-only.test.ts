// `agent-warden/langchain` with only `@langchain/core` installed (an LCEL project): the callback handler
// must import and govern without `langchain` or `@langchain/langgraph`, which the child process cannot resolve.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const FIXTURE = fileURLToPath(new URL("./fixtures/langchain-core-only.ts", import.meta.url));

// Resolution hooks that make the two packages look uninstalled, by name and by resolved file.
const HIDE = `
import { registerHooks } from "node:module";
const notFound = (what) => Object.assign(new Error("Cannot find package " + what), { code: "ERR_MODULE_NOT_FOUND" });
registerHooks({
  resolve(specifier, context, next) {
    if (/^(langchain|@langchain\\/langgraph)(\\/|$)/.test(specifier)) throw notFound(specifier);
    const resolved = next(specifier, context);
    if (/\\/node_modules\\/(langchain|@langchain\\/langgraph[^/]*)\\//.test(resolved.url)) throw notFound(resolved.url);
    return resolved;
  },
});`;

function runWithoutLangChain(): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("WARDEN_") && key !== "NODE_OPTIONS"));
    const child = spawn(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(HIDE)}`, "--import", "tsx", FIXTURE], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

describe("agent-warden/langchain with @langchain/core alone", () => {
  it("imports, and WardenCallbackHandler governs an LCEL chain", async () => {
    const { code, out, err } = await runWithoutLangChain();
    expect(code, err).toBe(0);
    const result = JSON.parse(out.trim().split("\n").at(-1)!);
    // The packages really are absent in that process.
    expect(result.missing).toEqual(["langchain: ERR_MODULE_NOT_FOUND", "@langchain/langgraph: ERR_MODULE_NOT_FOUND"]);
    expect(result.answer).toBe("summary");
    // The blocked tool never ran; the handler refused it before it started.
    expect(result.refused).toBe("ToolBlockedError");
    expect(result.ran).toEqual(["search"]);
    expect(result.runs).toEqual([
      { status: "completed", calls: [["tool", "search", "completed"], ["llm", expect.any(String), "completed"]] },
      { status: "failed", calls: [["tool", "drop_database", "blocked"]] },
    ]);
  }, 60_000);
});
