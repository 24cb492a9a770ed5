import { randomUUID } from "node:crypto";

/** Prefixed random ids (`run_…`, `tc_…`) so a bare id in a log says what it names. */
export function newId(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll("-", "")}`;
}
