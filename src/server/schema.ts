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
);
CREATE INDEX IF NOT EXISTS ledger_by_org ON ledger (org, seq);
CREATE INDEX IF NOT EXISTS runs_by_org_agent ON runs (org, agent_id, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_by_org_status ON runs (org, status, started_at DESC);
CREATE INDEX IF NOT EXISTS tool_calls_by_org ON tool_calls (org, started_at DESC);
CREATE INDEX IF NOT EXISTS approvals_by_decided ON approvals (decided_at);
CREATE INDEX IF NOT EXISTS approvals_by_expiry ON approvals (status, expires_at);
CREATE INDEX IF NOT EXISTS halts_by_org ON halts (org, created_at);
CREATE INDEX IF NOT EXISTS revoked_tokens_by_time ON revoked_tokens (org, revoked_at, id);
`;
