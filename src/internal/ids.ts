import { randomFillSync } from "node:crypto";

// Random bytes drawn in bulk, one syscall for many ids, and turned into hex once for all of them.
const POOL_BYTES = 4096;
const ID_RANDOM_BYTES = 10;
const pool = Buffer.alloc(POOL_BYTES);
let hex = "";
let offset = POOL_BYTES;
// The clock part changes once a millisecond: written once per millisecond, not once per id.
let clockMs = -1;
let clockHex = "";

/**
 * Prefixed ids (`run_…`, `tc_…`) so a bare id in a log says what it names. Time-ordered (48-bit
 * millisecond clock, then 80 random bits) so rows append at the right edge of the store's indexes
 * instead of dirtying a random page per insert.
 */
export function newId(prefix: string): string {
  if (offset + ID_RANDOM_BYTES > POOL_BYTES) {
    randomFillSync(pool);
    hex = pool.toString("hex");
    offset = 0;
  }
  // Two slices under V8's 13 characters are copies: an id that lives on does not keep the whole pool's text alive.
  const at = offset * 2;
  const random = hex.slice(at, at + ID_RANDOM_BYTES) + hex.slice(at + ID_RANDOM_BYTES, at + 2 * ID_RANDOM_BYTES);
  offset += ID_RANDOM_BYTES;
  const now = Date.now();
  if (now !== clockMs) {
    clockMs = now;
    clockHex = now.toString(16).padStart(12, "0");
  }
  return `${prefix}_${clockHex}${random}`;
}
