import { get, run, type Query } from "./sql.js";
import type { StreamMessage, StreamMessageType } from "./store.js";

/**
 * Appends a durable stream message in the caller's transaction. The organization's head
 * row is taken first, so writers on several replicas hand out each sequence number once.
 */
export function* appendStream(org: string, type: StreamMessageType, data: unknown, ts: number): Query<StreamMessage> {
  yield* run("INSERT INTO stream_heads (org, seq) VALUES (?, 0) ON CONFLICT (org) DO NOTHING", org);
  const seq = Number((yield* get<{ seq: number }>("UPDATE stream_heads SET seq = seq + 1 WHERE org = ? RETURNING seq", org))!.seq);
  yield* run("INSERT INTO stream_events (org, seq, type, data, ts) VALUES (?,?,?,?,?)", org, seq, type, JSON.stringify(data), ts);
  return { seq, type, data, ts };
}
