// The newcomer's path from the packed tarball (scripts/smoke-newcomer.mjs): npm pack, npm install in a
// clean folder, the quick start approved from the CLI, the fetch snippet, the hook recipe, serve +
// policy push + a blocked remote agent. It packs, installs from the registry and takes minutes, so it
// runs in CI only (CI=true); locally: npm run smoke:newcomer.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

describe.skipIf(process.env.CI !== "true")("npm run smoke:newcomer (CI only)", () => {
  it("replays the newcomer's path on a clean folder", () => {
    const result = spawnSync(process.execPath, [join(import.meta.dirname, "../scripts/smoke-newcomer.mjs")], { encoding: "utf8", timeout: 15 * 60_000 });
    expect(result.stderr.split("\n").filter((line) => line.startsWith("✗"))).toEqual([]);
    expect(result.stdout).toContain("✓ the newcomer's path works");
    expect(result.status).toBe(0);
  }, 16 * 60_000);
});
