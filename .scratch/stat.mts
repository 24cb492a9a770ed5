import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(process.argv[2]!, { readOnly: true });
try {
  for (const r of db.prepare("SELECT name, sum(pgsize) AS bytes, sum(ncell) AS cells FROM dbstat GROUP BY name ORDER BY bytes DESC").all()) console.log(r);
} catch (e) { console.log(String(e)); }
console.log(db.prepare("SELECT * FROM ledger WHERE seq > 5 LIMIT 4").all());
console.log(db.prepare("SELECT * FROM tool_calls LIMIT 2 OFFSET 100").all());
console.log(db.prepare("SELECT type, count(*) n, avg(length(data)) d FROM ledger GROUP BY type").all());
