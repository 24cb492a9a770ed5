/**
 * Pinned tool definitions (an MCP server's tools as first seen): the pinned hash and definition, the
 * newest definition seen when it differs (a change awaiting review), and who accepted which hash.
 */
const TOOL_PINS_SQL = `
CREATE TABLE IF NOT EXISTS tool_pins (
  org TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, hash TEXT NOT NULL, definition TEXT NOT NULL,
  first_seen INTEGER NOT NULL, latest_hash TEXT NOT NULL, latest_definition TEXT NOT NULL, latest_seen INTEGER NOT NULL,
  findings TEXT NOT NULL, accepted_hash TEXT, accepted_at INTEGER, accepted_by TEXT,
  PRIMARY KEY (org, server, tool)
);
`;

/**
 * Calls by the framework's id. Most calls have none: a partial index holds only those that do, so a
 * call without one costs no index write (`external_id = ?` implies the index's condition, so lookups use it).
 */
const EXTERNAL_ID_INDEX_SQL = "CREATE INDEX IF NOT EXISTS tool_calls_by_external_id ON tool_calls (external_id) WHERE external_id IS NOT NULL;";

/** Schema of the embedded store. Bump `SCHEMA_VERSION` with a migration when it changes. */
export const SCHEMA_VERSION = 8;

/**
 * The ledger: each entry's hash as 32 bytes; its link to the entry before is that entry's hash, read
 * from the row before, not stored again.
 */
const LEDGER_SQL = (table: string) => `CREATE TABLE IF NOT EXISTS ${table} (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL, ts INTEGER NOT NULL, type TEXT NOT NULL, org TEXT NOT NULL,
  agent_id TEXT, run_id TEXT, step_id TEXT, tool_call_id TEXT, actor TEXT, data TEXT NOT NULL, hash BLOB NOT NULL
);`;
/**
 * A run's entries, by the last 8 characters of its id (the random end of a generated id) rather than the
 * whole id: an index entry of ~16 bytes instead of ~54. Rows come out in seq order (the index's implicit
 * rowid is the seq). Readers match both the key and the id (`ledgerRunMatch`).
 */
const LEDGER_INDEX_SQL = "CREATE INDEX IF NOT EXISTS ledger_by_run_tail ON ledger (substr(run_id, -8));";
/** The condition that finds a run's entries through `ledger_by_run_tail` (in a schema-6 store opened read-only, through its `ledger_by_run`); `?1` is the run id. */
export const ledgerRunMatch = (alias: string, param = "?1") => `substr(${alias}run_id, -8) = substr(${param}, -8) AND ${alias}run_id = ${param}`;
/**
 * A tool call's entries, by the clock part of its id (the 12 hex digits before the last 20: the millisecond
 * it was made), not the whole id: how a call whose only record is its ledger entry is found by id, and a
 * call's evidence without a scan. Ids are time-ordered, so entries append at the index's right edge (a key
 * on the id's random end dirtied a random page per entry); a key is shared by the calls of one
 * millisecond, and readers match the whole id too (`ledgerCallMatch`). Entries of no call are not in it.
 */
const LEDGER_CALL_INDEX_SQL = "CREATE INDEX IF NOT EXISTS ledger_by_call_time ON ledger (substr(tool_call_id, -32, 12)) WHERE tool_call_id IS NOT NULL;";
/** The condition that finds a tool call's entries through `ledger_by_call_time` (a scan in a store from before schema 8); `?1` is the call id. */
export const ledgerCallMatch = (alias: string, param = "?1") => `substr(${alias}tool_call_id, -32, 12) = substr(${param}, -32, 12) AND ${alias}tool_call_id = ${param}`;

/** A tool call's row, column by column, in the table's order (what `SELECT *` gives). */
export const TOOL_CALL_ROW_COLUMNS = "id, external_id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, output, error, blocked_reason, decision, agent_context, reason, usage, started_at, ended_at, duration_ms";

/**
 * Tool calls whose one record is their folded ledger entry (`tool.call`), as the rows they would have had,
 * in `TOOL_CALL_ROW_COLUMNS` order, with the entry's `seq`. A call allowed with nothing matched, without a
 * framework id, that ended within the commit window it started in, writes no row (schema 8): its entry
 * holds everything the row held (the input with its keys sorted; its start and end times are the two
 * events'). Calls that have a row are not here. `where` narrows the entries (alias `l`).
 */
export const foldedToolCallsSql = (where: string) => `SELECT l.tool_call_id AS id, l.data ->> '$.called.externalId' AS external_id, l.run_id AS run_id, l.step_id AS step_id, l.org AS org, l.agent_id AS agent_id,
  'tool' AS kind, l.data ->> '$.called.toolName' AS tool_name, l.data ->> '$.called.actionType' AS action_type, l.data ->> '$.end.data.status' AS status,
  l.data -> '$.called.input' AS input, l.data -> '$.end.data.output' AS output, l.data -> '$.end.data.error' AS error,
  CASE WHEN l.data ->> '$.end.type' = 'tool.blocked' THEN l.data ->> '$.end.data.reason' END AS blocked_reason, '"allow"' AS decision,
  l.data -> '$.called.agentContext' AS agent_context, l.data ->> '$.called.reason' AS reason, NULL AS usage,
  l.ts AS started_at, l.data ->> '$.end.ts' AS ended_at, l.data ->> '$.end.data.durationMs' AS duration_ms, l.seq AS seq
FROM ledger l WHERE ${where} AND l.type = 'tool.call' AND l.data ->> '$.called.kind' IS NULL AND NOT EXISTS (SELECT 1 FROM tool_calls t WHERE t.id = l.tool_call_id)`;

/** A run's tool calls (`?1`) in an organization (`?2`), rows and folded entries, in the order they started (ties: the order they were recorded). */
export const TOOL_CALLS_OF_RUN_SQL = `SELECT ${TOOL_CALL_ROW_COLUMNS} FROM (
  SELECT ${TOOL_CALL_ROW_COLUMNS}, (SELECT min(e.seq) FROM ledger e WHERE ${ledgerCallMatch("e.", "t.id")}) AS seq, rowid AS n FROM tool_calls t WHERE run_id = ?1 AND org = ?2
  UNION ALL SELECT *, 0 AS n FROM (${foldedToolCallsSql(`${ledgerRunMatch("l.")} AND l.org = ?2`)})
) ORDER BY started_at, seq IS NULL, seq, n`;

/** A tool call by its Warden id (`?1`) in an organization (`?2`), when its folded entry is its only record. */
export const FOLDED_CALL_SQL = `SELECT ${TOOL_CALL_ROW_COLUMNS} FROM (${foldedToolCallsSql(`${ledgerCallMatch("l.")} AND l.org = ?2`)})`;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
  org TEXT NOT NULL, id TEXT NOT NULL, grp TEXT, created_at INTEGER NOT NULL, PRIMARY KEY (org, id)
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, agent_id TEXT NOT NULL, trace_id TEXT NOT NULL, parent_run_id TEXT,
  status TEXT NOT NULL, metadata TEXT, reason TEXT, agent_context TEXT, token_id TEXT,
  started_at INTEGER NOT NULL, ended_at INTEGER, error TEXT, owner TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_org ON runs (org, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_by_trace ON runs (trace_id);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id);
CREATE TABLE IF NOT EXISTS steps (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, run_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, metadata TEXT,
  started_at INTEGER NOT NULL, ended_at INTEGER
);
CREATE INDEX IF NOT EXISTS steps_by_run ON steps (run_id, started_at);
CREATE TABLE IF NOT EXISTS tool_calls (
  id TEXT PRIMARY KEY, external_id TEXT, run_id TEXT NOT NULL, step_id TEXT, org TEXT NOT NULL, agent_id TEXT NOT NULL,
  kind TEXT NOT NULL, tool_name TEXT NOT NULL, action_type TEXT NOT NULL, status TEXT NOT NULL,
  input TEXT, output TEXT, error TEXT, blocked_reason TEXT, decision TEXT, agent_context TEXT, reason TEXT,
  usage TEXT, started_at INTEGER NOT NULL, ended_at INTEGER, duration_ms REAL
);
CREATE INDEX IF NOT EXISTS tool_calls_by_run ON tool_calls (run_id, started_at);
${EXTERNAL_ID_INDEX_SQL}
CREATE TABLE IF NOT EXISTS approvals (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, tool_call_id TEXT NOT NULL, run_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  tool_name TEXT NOT NULL, status TEXT NOT NULL, payload TEXT, agent_context TEXT, policy_id TEXT, reason TEXT,
  reviewer TEXT, decision_reason TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, decided_at INTEGER,
  args_digest TEXT, policy_version TEXT, rule TEXT, votes TEXT, escalated_at INTEGER, consumed_at INTEGER, consumed_by TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals (org, status, created_at);
CREATE INDEX IF NOT EXISTS approvals_by_tool_call ON approvals (tool_call_id);
CREATE TABLE IF NOT EXISTS halts (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, target_kind TEXT NOT NULL, target TEXT, reason TEXT NOT NULL, actor TEXT,
  created_at INTEGER NOT NULL, lifted_at INTEGER, lifted_by TEXT, lift_reason TEXT
);
CREATE TABLE IF NOT EXISTS revoked_tokens (
  org TEXT NOT NULL, id TEXT NOT NULL, reason TEXT, revoked_at INTEGER NOT NULL, PRIMARY KEY (org, id)
);
${LEDGER_SQL("ledger")}
${LEDGER_INDEX_SQL}
${LEDGER_CALL_INDEX_SQL}
CREATE TABLE IF NOT EXISTS checkpoints (
  seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, ts INTEGER NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL,
  note TEXT, frontier TEXT
);
${TOOL_PINS_SQL}
`;

const APPROVAL_BINDING_COLUMNS = ["args_digest TEXT", "policy_version TEXT", "rule TEXT", "votes TEXT", "escalated_at INTEGER", "consumed_at INTEGER", "consumed_by TEXT"];

/**
 * Steps from one schema version to the next, for stores created by an earlier version.
 * 8: a tool call's entries are indexed by the clock part of its id (`ledger_by_call_time`): a fast call allowed
 *    with nothing matched writes no row, and is found by id through its ledger entry. Existing rows stay.
 * 7: a run's ledger entries are indexed by the end of the run id (`ledger_by_run_tail`), not the whole id.
 * 6: the ledger keeps no `prev_hash` (the link is the previous row's hash) and `hash` as 32 bytes. Rows
 *    are copied as they are: a hash that is not 64 hex digits stays as it was, for verification to name.
 * 5: `tool_calls_by_external_id` holds only calls that have a framework id (partial index).
 * 4: `tool_pins`, the pinned tool definitions of MCP servers.
 * 3: approvals bound to the action (`args_digest`, `policy_version`, `consumed_at`/`consumed_by`), the
 *    deciding policy's reviewer rule (`rule`), reviewers' votes (`votes`) and escalation (`escalated_at`).
 * 2: `runs.owner` (host and process of the client running it), so a run whose process died is found.
 */
export const MIGRATIONS: Record<number, string> = {
  2: "ALTER TABLE runs ADD COLUMN owner TEXT;",
  3: APPROVAL_BINDING_COLUMNS.map((column) => `ALTER TABLE approvals ADD COLUMN ${column};`).join("\n"),
  4: TOOL_PINS_SQL,
  5: `DROP INDEX IF EXISTS tool_calls_by_external_id;\n${EXTERNAL_ID_INDEX_SQL}`,
  6: `${LEDGER_SQL("ledger_v6")}
INSERT INTO ledger_v6 (seq, id, ts, type, org, agent_id, run_id, step_id, tool_call_id, actor, data, hash)
  SELECT seq, id, ts, type, org, agent_id, run_id, step_id, tool_call_id, actor, data,
    CASE WHEN typeof(hash) = 'text' AND length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*' THEN unhex(hash) ELSE hash END
  FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_v6 RENAME TO ledger;`,
  7: `DROP INDEX IF EXISTS ledger_by_run;\n${LEDGER_INDEX_SQL}`,
  8: LEDGER_CALL_INDEX_SQL,
};
