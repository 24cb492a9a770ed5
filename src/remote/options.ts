import { z } from "zod";
import { durationSchema } from "../internal/duration.js";
import { builtOnFirstUse } from "../internal/once.js";

/** Tuning of remote mode (`new Warden({ url, apiKey, remote: { … } })`). Every field has a default. */
export const RemoteOptionsSchema = builtOnFirstUse(() =>
  z.strictObject({
    /** Where the policy cache and the event spool live. Default: `remote/` beside the store (`./.warden/remote` for `:memory:`). */
    cacheDir: z.string().min(1).optional(),
    /** How often queued events are sent. */
    flushInterval: durationSchema().default(500),
    /** Events held in memory; beyond it they spill to the spool (or, without one, are dropped with one warning). */
    maxQueue: z.number().int().positive().default(10_000),
    /** Events per request (the server accepts up to 1000): the most by default, since each request costs both sides a fixed share on top of its events. */
    maxBatch: z.number().int().positive().max(1000).default(1000),
    /** Batches sent at once, each awaiting its own answer, so one is prepared and sent while the server writes another; 1 delivers in the order sent (the server takes events in any order). */
    maxInflight: z.number().int().positive().max(16).default(2),
    /** Spill events to disk while the server is unreachable and replay them when it returns. */
    spool: z.boolean().default(true),
    /** Largest spool on disk; beyond it new events are dropped with one warning. */
    maxSpoolBytes: z.number().int().positive().default(256 * 1024 * 1024),
    /** Largest dead-letter file pair on disk (events the control plane will never accept, with the reason). */
    maxDeadLetterBytes: z.number().int().positive().default(16 * 1024 * 1024),
    /** Timeout of each request to the control plane. */
    requestTimeout: durationSchema().default(10_000),
    /** Follow `GET /v1/stream` for halts, approvals and policy updates; without it, polling only. */
    stream: z.boolean().default(true),
    /** How often halts (and awaited approvals) are polled while the stream is down. Capped at a third of `halt.staleAfter`. */
    pollInterval: durationSchema().default(1000),
    /** How often policies are re-checked by ETag even while the stream is up. */
    policyRefreshInterval: durationSchema().default(60_000),
  }),
);

/**
 * Tuning of remote mode (`new Warden({ url, apiKey, remote })`), for trading event latency, memory
 * and disk against each other. Every field has a default.
 * @example
 * import { Warden, type RemoteOptions } from "agent-warden";
 * const remote: RemoteOptions = { flushInterval: "2s", maxSpoolBytes: 64 * 1024 * 1024 };
 * const warden = new Warden({ agentId: "billing-agent", url: "https://warden.example.com", apiKey: process.env.WARDEN_API_KEY, remote });
 */
export type RemoteOptions = z.input<typeof RemoteOptionsSchema>;
export type RemoteSettings = z.output<typeof RemoteOptionsSchema>;
