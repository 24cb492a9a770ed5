import type * as Sqlite from "node:sqlite";
import { ConfigError } from "../errors.js";

/** The oldest Node.js that has a stable enough `node:sqlite` for the store (also `engines` in package.json). */
export const MINIMUM_NODE = "22.13";

/** The one sentence a too-old Node gets, everywhere: the CLI, the library and the test command. */
export function unsupportedNodeMessage(version: string = process.versions.node): string | undefined {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  if (major > 22 || (major === 22 && minor >= 13)) return undefined;
  return `agent-warden needs Node.js ${MINIMUM_NODE} or newer (it stores with node:sqlite); this is v${version}`;
}

let sqlite: typeof Sqlite | undefined;

/**
 * `node:sqlite`, loaded on first use rather than imported, so that `import "agent-warden"` on an older
 * Node reaches a clear error instead of failing to link.
 */
export function loadSqlite(): typeof Sqlite {
  if (sqlite) return sqlite;
  const unsupported = unsupportedNodeMessage();
  if (unsupported) throw new ConfigError(unsupported);
  sqlite = process.getBuiltinModule("node:sqlite") as typeof Sqlite;
  return sqlite;
}
