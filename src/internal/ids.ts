import { randomBytes } from "node:crypto";

// Random bytes drawn in bulk: one syscall for many ids.
const pool = Buffer.alloc(4096);
let offset = pool.length;

/**
 * Prefixed ids (`run_…`, `tc_…`) so a bare id in a log says what it names. Time-ordered (48-bit
 * millisecond clock, then 80 random bits) so rows append at the right edge of the store's indexes
 * instead of dirtying a random page per insert.
 */
export function newId(prefix: string): string {
  if (offset + 10 > pool.length) {
    randomBytes(pool.length).copy(pool);
    offset = 0;
  }
  const random = pool.toString("hex", offset, offset + 10);
  offset += 10;
  return `${prefix}_${Date.now().toString(16).padStart(12, "0")}${random}`;
}
