// Store logic that both databases share (ingest rules and projections, the per-organization ledger)
// is written once as generators that yield SQL statements; each store runs them with its own driver:
// SQLite synchronously inside its transaction, PostgreSQL awaiting each statement on one connection.
// The SQL is the subset both accept: `?` or `?N` placeholders, `ON CONFLICT`, `IS NOT DISTINCT FROM`.

/** Values a statement binds. */
export type SqlValue = string | number | null;

/**  One statement a shared routine asks its store to run. */
export type SqlOp = { kind: "run" | "get" | "all"; sql: string; params: SqlValue[] };

/**  A shared routine: yields statements, receives their results, returns `T`. */
export type Query<T> = Generator<SqlOp, T, unknown>;

/**  Runs a write; gives the number of rows it changed. */
export function* run(sql: string, ...params: SqlValue[]): Query<number> {
  return (yield { kind: "run", sql, params }) as number;
}

/**  Reads one row. */
export function* get<T>(sql: string, ...params: SqlValue[]): Query<T | undefined> {
  return (yield { kind: "get", sql, params }) as T | undefined;
}

/**  Reads every row. */
export function* all<T>(sql: string, ...params: SqlValue[]): Query<T[]> {
  return (yield { kind: "all", sql, params }) as T[];
}

/**  Runs a shared routine against a synchronous database (SQLite). */
export function runSync<T>(query: Query<T>, execute: (op: SqlOp) => unknown): T {
  let step = query.next();
  while (!step.done) step = query.next(execute(step.value));
  return step.value;
}

/**  Runs a shared routine against an asynchronous database (PostgreSQL). */
export async function runAsync<T>(query: Query<T>, execute: (op: SqlOp) => Promise<unknown>): Promise<T> {
  let step = query.next();
  while (!step.done) step = query.next(await execute(step.value));
  return step.value;
}

/**  SQLite's placeholders (`?`, `?N`) as PostgreSQL's (`$N`). */
export function toPostgres(sql: string): string {
  let next = 0;
  let highest = 0;
  const numbered = sql.replace(/\?(\d+)/g, (_match, n: string) => {
    highest = Math.max(highest, Number(n));
    return `$${n}`;
  });
  if (highest > 0) return numbered;
  return sql.replace(/\?/g, () => `$${++next}`);
}
