import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(process.argv[2]!, { readOnly: true });
for (const sql of ["SELECT count(*) AS n FROM ledger", "SELECT max(seq) AS n FROM ledger", "SELECT count(*) AS n FROM checkpoints c CROSS JOIN ledger l ON l.seq = c.seq WHERE c.seq <= 1000000 AND l.hash = c.hash", "SELECT count(*) AS n FROM ledger"]) {
  const t0 = performance.now(); const r = db.prepare(sql).get(); console.log((performance.now() - t0).toFixed(1), "ms", r, sql.slice(0, 50));
}
console.log(db.prepare("EXPLAIN QUERY PLAN SELECT count(*) AS n FROM ledger").all());
