// A consumer project that type-checks its own code and Warden's declarations (`skipLibCheck: false`)
// against the built package. Runs against `dist/` (CI builds before testing; locally: npx tsup).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const built = existsSync(join(root, "dist/index.d.ts")) && existsSync(join(root, "dist/adapters/server.d.ts"));

const CONSUMER = `import { Warden, ToolBlockedError, type Jwk, type WardenLogger, type PolicySetInput } from "agent-warden";
import { createWardenServer } from "agent-warden/server";
import { preToolUse } from "agent-warden/hook";
import { verifyBundle } from "agent-warden/verify";

const policies: PolicySetInput = { version: 1, policies: [{ id: "no-wipes", when: { tool: "wipe_*" }, action: "block" }] };
const logger: WardenLogger = { warn: (message) => console.warn(message) };
const warden = new Warden({ agentId: "billing-agent", policies, store: ":memory:", logger });
const jwk: Jwk = warden.tokens.publicJwk();
const kty: string | undefined = jwk.kty;
try {
  await warden.run({ task: "t" }, (run) => run.tool("wipe_disk", {}, () => 1));
} catch (error) {
  if (error instanceof ToolBlockedError) console.log(error.policyId, kty);
}
const server = createWardenServer({ db: ":memory:" });
void server;
void preToolUse;
const verdict = await verifyBundle({});
if (!verdict.ok) console.log(verdict.code, verdict.problem);
`;

describe.skipIf(!built)("the built declarations (run `npx tsup` first)", () => {
  it("name no type that only some @types/node majors export (JsonWebKey from node:crypto)", () => {
    // The core and the entries a consumer meets first; every file the core's declarations pull in is checked.
    const files = readdirSync(join(root, "dist")).filter((f) => f.endsWith(".d.ts")).map((f) => join(root, "dist", f));
    files.push(...["server", "hook", "fetch", "ai"].map((entry) => join(root, "dist/adapters", `${entry}.d.ts`)));
    for (const file of files) expect(readFileSync(file, "utf8"), file).not.toMatch(/\bJsonWebKey\b/);
  });

  // The @types/node a consumer may have: the one this repo builds with, the oldest Node it supports, and
  // the two newest majors (installed under aliases so they never join this repo's own type roots).
  const typesNode = ["@types/node", "types-node-22", "types-node-25", "types-node-26"].filter((name) => existsSync(join(root, "node_modules", name)));

  // What `tsc -p <consumer>` does, one program per @types/node major in this process: the files the
  // programs have in common (TypeScript's lib, Warden's declarations, zod, express's types) are read,
  // parsed and bound once, as an editor's language service shares them; every program checks all its files.
  const shared = new Map<string, ts.SourceFile | undefined>();
  function typeCheck(dir: string): string {
    const config = ts.readConfigFile(join(dir, "tsconfig.json"), ts.sys.readFile);
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dir);
    const host = ts.createCompilerHost(parsed.options);
    const read = host.getSourceFile.bind(host);
    const own = realpathSync(dir) + sep;
    host.getSourceFile = (fileName, target, onError, fresh) => {
      const real = realpathSync(fileName);
      if (real.startsWith(own)) return read(fileName, target, onError, fresh);
      const key = `${real} ${JSON.stringify(target)}`;
      if (!shared.has(key)) shared.set(key, read(fileName, target, onError, fresh));
      return shared.get(key);
    };
    const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options, host });
    const diagnostics = [...parsed.errors, ...ts.getPreEmitDiagnostics(program)];
    return ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (name) => name, getCurrentDirectory: () => dir, getNewLine: () => "\n" });
  }

  it.each(typesNode)("compile in a consumer project with skipLibCheck: false (%s)", (typesPackage) => {
    const dir = mkdtempSync(join(tmpdir(), "warden-consumer-"));
    try {
      mkdirSync(join(dir, "node_modules/@types"), { recursive: true });
      symlinkSync(root, join(dir, "node_modules/agent-warden"), "dir");
      symlinkSync(join(root, "node_modules", typesPackage), join(dir, "node_modules/@types/node"), "dir");
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
      writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { target: "es2023", module: "nodenext", moduleResolution: "nodenext", strict: true, exactOptionalPropertyTypes: true, skipLibCheck: false, noEmit: true, types: ["node"] }, files: ["index.ts"] }));
      writeFileSync(join(dir, "index.ts"), CONSUMER);
      expect(typeCheck(dir)).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it("are checked against four @types/node majors", () => {
    expect(typesNode).toHaveLength(4);
  });
});
