import type { Changes, ControlPlaneStore } from "./store.js";
import type { StreamHub } from "./stream.js";

/** What every route group shares; handed to `extend` so an app can add routes of its own. */
export interface ServerContext {
  store: ControlPlaneStore;
  hub: StreamHub;
  /** Pushes changes to stream subscribers (their durable part is already stored). */
  publish(changes: Changes | readonly Changes[]): void;
  limits: { body: number | string; ingestBody: number | string };
  retryMs: number;
}
