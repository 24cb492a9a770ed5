import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(":memory:");
db.exec("CREATE TABLE tool_calls (id TEXT PRIMARY KEY, external_id TEXT, org TEXT, kind TEXT, started_at INTEGER); CREATE INDEX tool_calls_by_external_id ON tool_calls (external_id) WHERE external_id IS NOT NULL;");
for (let i = 0; i < 1000; i++) db.prepare("INSERT INTO tool_calls VALUES (?,?,?,?,?)").run(`tc_${i}`, i % 10 ? null : `x_${i}`, "default", "tool", i);
db.exec("ANALYZE");
console.log(db.prepare("EXPLAIN QUERY PLAN SELECT * FROM tool_calls WHERE (id = ?1 OR external_id = ?1) AND org = ?2 AND kind = 'tool' ORDER BY started_at DESC, rowid DESC LIMIT 1").all());
console.log(db.prepare("SELECT sqlite_version() v").get());
