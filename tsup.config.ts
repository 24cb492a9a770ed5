import { defineConfig } from "tsup";

export default defineConfig([
  {
    entry: { index: "src/index.ts" },
    format: ["esm", "cjs"],
    dts: true,
    clean: true,
    sourcemap: true,
    target: "node22",
    removeNodeProtocol: false,
  },
  {
    entry: { cli: "src/cli/main.ts" },
    format: ["esm"],
    target: "node22",
    sourcemap: true,
    removeNodeProtocol: false,
    banner: { js: "#!/usr/bin/env node" },
  },
]);
