import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The directory this module runs from: the source folder, `dist/`, or `dist/adapters/`. */
function moduleDir(): string {
  // The CommonJS build has `__dirname`; ES modules (source and the ESM build) have `import.meta.url`.
  if (typeof __dirname === "string") return __dirname;
  return dirname(fileURLToPath(import.meta.url));
}

/**
 * Where the console's static files are. From source they sit beside this file (`assets/`); the
 * build copies them to `dist/console/`, which the bundles reach from `dist/` (ESM chunks, the CLI)
 * or `dist/adapters/` (the CommonJS entry).
 */
export function consoleAssetsDir(from = moduleDir()): string | undefined {
  const candidates = [join(from, "assets"), join(from, "console"), join(from, "..", "console")];
  return candidates.find((dir) => existsSync(join(dir, "index.html")));
}
