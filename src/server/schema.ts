import { orgLedgerSchema } from "./org-ledger.js";

/** The control plane's own schema version, kept in `meta` (the embedded store keeps `user_version`). */
export const SERVER_SCHEMA_VERSION = 5;

/**
 * Tables the control plane adds to the embedded store's schema. Every row carries its
 * organization; the embedded tables (runs, tool calls, approvals, halts, ledger) are shared as they are.
 */
export const SERVER_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, role TEXT NOT NULL, name TEXT, agent_id TEXT, hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER, last_used_at INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_by_org ON api_keys (org, created_at);
CREATE TABLE IF NOT EXISTS policy_versions (
  org TEXT NOT NULL, version INTEGER NOT NULL, document TEXT NOT NULL, source TEXT, etag TEXT NOT NULL,
  author TEXT, comment TEXT, rolled_back_from INTEGER, created_at INTEGER NOT NULL, PRIMARY KEY (org, version)
);
CREATE TABLE IF NOT EXISTS stream_events (
  org TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (org, seq)
);
CREATE INDEX IF NOT EXISTS stream_events_by_ts ON stream_events (ts);
CREATE TABLE IF NOT EXISTS ingested_events (
  org TEXT NOT NULL, id TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (org, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_by_org ON ledger (org, seq);
CREATE INDEX IF NOT EXISTS runs_by_org_agent ON runs (org, agent_id, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_by_org_status ON runs (org, status, started_at DESC);
CREATE INDEX IF NOT EXISTS tool_calls_by_org ON tool_calls (org, started_at DESC);
CREATE INDEX IF NOT EXISTS approvals_by_decided ON approvals (decided_at);
CREATE INDEX IF NOT EXISTS approvals_by_expiry ON approvals (status, expires_at);
CREATE INDEX IF NOT EXISTS halts_by_org ON halts (org, created_at);
CREATE INDEX IF NOT EXISTS revoked_tokens_by_time ON revoked_tokens (org, revoked_at, id);
`;

/**
 * Version 2: one ledger chain per organization (the shared `ledger` table stays for the embedded
 * client), stream sequence heads, and approval ids scoped to their organization (another
 * organization's id is no conflict, so answers cannot tell whether it exists).
 */
export const SERVER_SCHEMA_V2_SQL = `${orgLedgerSchema({ int: "INTEGER", text: "TEXT" })}
CREATE TABLE IF NOT EXISTS stream_heads (org TEXT PRIMARY KEY, seq INTEGER NOT NULL);
INSERT INTO stream_heads (org, seq) SELECT org, MAX(seq) FROM stream_events WHERE true GROUP BY org ON CONFLICT (org) DO NOTHING;
CREATE TABLE approvals_by_org (
  id TEXT NOT NULL, org TEXT NOT NULL, tool_call_id TEXT NOT NULL, run_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  tool_name TEXT NOT NULL, status TEXT NOT NULL, payload TEXT, agent_context TEXT, policy_id TEXT, reason TEXT,
  reviewer TEXT, decision_reason TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, decided_at INTEGER, PRIMARY KEY (org, id)
);
INSERT INTO approvals_by_org SELECT id, org, tool_call_id, run_id, agent_id, tool_name, status, payload, agent_context, policy_id, reason, reviewer, decision_reason, created_at, expires_at, decided_at FROM approvals;
DROP TABLE approvals;
ALTER TABLE approvals_by_org RENAME TO approvals;
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals (org, status, created_at);
CREATE INDEX IF NOT EXISTS approvals_by_tool_call ON approvals (tool_call_id);
CREATE INDEX IF NOT EXISTS approvals_by_decided ON approvals (decided_at);
CREATE INDEX IF NOT EXISTS approvals_by_expiry ON approvals (status, expires_at);
`;

/**
 * Version 3: what approvals need on the control plane. Columns added to `approvals` and `api_keys`
 * (when an older file lacks them): the request's rule, votes and escalation, the key that asked, how
 * it was answered, and a key's groups. `approval_deliveries`: each message to a channel and what
 * became of it, so retries resume after a restart.
 */
export const SERVER_V3_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  approvals: ["args_digest TEXT", "policy_version TEXT", "rule TEXT", "votes TEXT", "escalated_at INTEGER", "consumed_at INTEGER", "consumed_by TEXT", "requested_by TEXT", "decided_via TEXT"],
  api_keys: ["groups TEXT"],
};

/** The delivery log of approval channels, in SQL both databases accept (`int` is INTEGER or BIGINT). */
export function deliveriesSchema(types: { int: string; text: string }): string {
  const { int, text } = types;
  return `CREATE TABLE IF NOT EXISTS approval_deliveries (
  id ${text} PRIMARY KEY, org ${text} NOT NULL, approval_id ${text} NOT NULL, agent_id ${text} NOT NULL, channel ${text} NOT NULL,
  target ${text} NOT NULL, event ${text} NOT NULL, status ${text} NOT NULL, attempts ${int} NOT NULL, last_status ${int}, last_error ${text},
  reviewer ${text}, created_at ${int} NOT NULL, updated_at ${int} NOT NULL, next_attempt_at ${int}, delivered_at ${int}, lease_until ${int},
  message ${text} NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_deliveries_by_org ON approval_deliveries (org, created_at);
CREATE INDEX IF NOT EXISTS approval_deliveries_by_approval ON approval_deliveries (org, approval_id);
CREATE INDEX IF NOT EXISTS approval_deliveries_due ON approval_deliveries (status, next_attempt_at);
`;
}

/**
 * Version 4: the organizations' checkpoints as witnesses read them. `org_checkpoints` gains `note` (the
 * C2SP tlog-checkpoint signed note of the organization's tree head, with witnesses' cosignature lines
 * appended as they answer) and `frontier` (the tree's right edge at that size, so the next tree head and a
 * witness's consistency proof cost the entries since, not the whole log). `agent_log_heads`: the last
 * agent checkpoint the control plane countersigned per log (created on first use before this version).
 */
export const SERVER_V4_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  org_checkpoints: ["note TEXT", "frontier TEXT"],
};

/** The countersigned heads of agents' local ledgers, in SQL both databases accept. */
export function agentLogHeadsSchema(types: { int: string; text: string }): string {
  const { int, text } = types;
  return `CREATE TABLE IF NOT EXISTS agent_log_heads (
  org ${text} NOT NULL, origin ${text} NOT NULL, agent_id ${text}, size ${int} NOT NULL, root ${text} NOT NULL, note ${text} NOT NULL, ts ${int} NOT NULL, PRIMARY KEY (org, origin)
);
`;
}

/**
 * Version 5: the ids of ingested events in a table without rowid, so claiming an id writes one b-tree,
 * not the table and its key's index.
 */
export const SERVER_SCHEMA_V5_SQL = `
CREATE TABLE ingested_events_v5 (
  org TEXT NOT NULL, id TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (org, id)
) WITHOUT ROWID;
INSERT INTO ingested_events_v5 (org, id, received_at) SELECT org, id, received_at FROM ingested_events;
DROP TABLE ingested_events;
ALTER TABLE ingested_events_v5 RENAME TO ingested_events;
`;
