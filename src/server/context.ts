import type { ApprovalChannels } from "agent-warden";
import type { Changes, ControlPlaneStore } from "./store.js";
import type { StreamHub } from "./stream.js";
import type { StreamLimits } from "./stream-limits.js";

/** What every route group shares; handed to `extend` so an app can add routes of its own. */
export interface ServerContext {
  store: ControlPlaneStore;
  hub: StreamHub;
  /** Pushes changes to stream subscribers (their durable part is already stored). */
  publish(changes: Changes | readonly Changes[]): void;
  /** Largest bodies, and the most streams one organization, and one key, may hold open. */
  limits: { body: number | string; ingestBody: number | string; streams: number; streamsPerKey: number };
  /** Admits a stream under the per-organization and per-key limits (across replicas when the store counts them). */
  streamLimits: StreamLimits;
  /** The `retry:` a stream tells a reconnecting EventSource. */
  retryMs: number;
  /** The approval channels serving an organization (the server's own, or its policy set's), if any. */
  channelsFor(org: string): Promise<ApprovalChannels | undefined>;
  /** The verifier keys of the witnesses asked to cosign the organizations' checkpoints (`witnesses` option). */
  witnessKeys: readonly string[];
}
