import { cpSync, existsSync, readdirSync } from "node:fs";
import { build } from "esbuild";
import { defineConfig } from "tsup";
import type { Plugin } from "esbuild";
import { VERIFY_ASSET, verifyBundleOptions } from "./src/console/verify-asset.js";

// One entry per subpath export: the core, then each adapter folder.
const adapters = Object.fromEntries(
  readdirSync("adapters", { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(`adapters/${entry.name}/index.ts`))
    .map((entry) => [`adapters/${entry.name}`, `adapters/${entry.name}/index.ts`]),
);

// Node's built-in modules, read in the ES module build with `process.getBuiltinModule` rather than imported.
// An `import … from "node:fs"` builds the module's ES facade, which reads every export, lazy getters included:
// `fs.promises` and `fs.ReadStream` load the promises API and streams, `module.SourceMap` the source map
// support, about 10 ms of a cold start that the package never uses. Each export is read in a pure
// expression, so the bundle keeps (and runs) only those it imports. The CommonJS build reads the module
// objects as they are already.
const builtinModules: Plugin = {
  name: "builtin-modules",
  setup(build) {
    if (build.initialOptions.format !== "esm") return;
    build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: "builtin-module" }));
    build.onLoad({ filter: /.*/, namespace: "builtin-module" }, (args) => {
      const builtin = process.getBuiltinModule(args.path) as Record<string, unknown> | undefined;
      if (builtin === undefined) return { errors: [{ text: `no built-in module ${args.path}` }] };
      const names = Object.keys(builtin).filter((name) => name !== "default" && name !== "builtin" && isBindingName(name));
      const lines = [`const builtin = process.getBuiltinModule(${JSON.stringify(args.path)});`, "export default builtin;", ...names.map((name) => `export const ${name} = /* @__PURE__ */ (() => builtin.${name})();`)];
      return { contents: lines.join("\n"), loader: "js" };
    });
  },
};

/** Whether `name` can be declared as a module-level const (an identifier, not a reserved word). */
function isBindingName(name: string): boolean {
  try {
    new Function(`"use strict"; const ${name} = 0;`);
    return /^[A-Za-z_$][\w$]*$/.test(name);
  } catch {
    return false;
  }
}

// Frameworks are the user's: never bundled.
const external = [/^@langchain\//, "langchain", "ai", /^@openai\//, /^@modelcontextprotocol\//, /^@opentelemetry\//, "express", "ofetch", "agent-warden", "esbuild"];

const entries = { index: "src/index.ts", ...adapters, "adapters/server": "src/server/index.ts", witness: "src/witness/index.ts" };
// The store's and the control plane's writer threads: each runs in a thread of its own, with modules of its
// own, so it is built whole rather than from the shared chunks. Shared, they split the chunks the core's
// import loads into more files (14 rather than 10), each one more to resolve, read and link.
const workers = { "commit-worker": "src/store/commit-worker.ts", "ingest-worker": "src/server/ingest-worker.ts" };

export default defineConfig([
  {
    // The control plane builds from src/server, published as agent-warden/server.
    entry: entries,
    format: ["esm", "cjs"],
    // Modules several entries use live in shared chunks, in CommonJS too: one copy of the core per process.
    splitting: true,
    // `import.meta.url` in CommonJS chunks (the console finds its assets by it).
    shims: true,
    // agent-warden/verify's declarations come from here: this build clears every .d.ts in dist/ when it starts.
    dts: { entry: { ...entries, ...workers, verify: "src/verify/index.ts" } },
    clean: true,
    sourcemap: true,
    target: "node22",
    removeNodeProtocol: false,
    // The console's static assets ship beside the code that serves them, with the verifier bundled for the browser.
    onSuccess: async () => {
      cpSync("src/console/assets", "dist/console", { recursive: true });
      await build({ ...verifyBundleOptions("src/verify/index.ts"), outfile: `dist/console/${VERIFY_ASSET}`, metafile: false });
    },
    external,
    esbuildPlugins: [builtinModules],
  },
  {
    // The store's writer thread loads `commit-worker.js` from beside the chunk that starts it; the control
    // plane's ingest writer, `ingest-worker.js`, likewise (ES modules, from either module format).
    entry: workers,
    format: ["esm"],
    splitting: false,
    shims: true,
    sourcemap: true,
    target: "node22",
    removeNodeProtocol: false,
    external,
    esbuildPlugins: [builtinModules],
  },
  {
    // agent-warden/verify runs in browsers too: built on its own, without the Node shims the entries above
    // share (they import node:path and node:url), so it reaches nothing but zod.
    entry: { verify: "src/verify/index.ts" },
    format: ["esm", "cjs"],
    platform: "neutral",
    sourcemap: true,
    target: "es2022",
    external: ["zod"],
  },
  {
    entry: { cli: "src/cli/bin.ts" },
    format: ["esm"],
    target: "node22",
    sourcemap: true,
    removeNodeProtocol: false,
    banner: { js: "#!/usr/bin/env node" },
    // Only reached when the console runs from source: the build ships the verifier already bundled.
    external: ["esbuild"],
  },
]);
