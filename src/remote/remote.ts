import { createHash } from "node:crypto";
import type { Jwk } from "../tokens/jwk.js";
import type { z } from "zod";
import { dirname, join, resolve } from "node:path";
import type { ResolvedOptions } from "../config.js";
import { ApprovalStatus, EventType } from "../enums.js";
import { RemoteError } from "../errors.js";
import type { WardenEvent } from "../events.js";
import type { HaltRecord } from "../halt/halt.js";
import { noRemotePolicyNotice } from "../notices.js";
import type { ApprovalRecord } from "../records.js";
import { wireResponses, type PolicyVersion } from "../wire/responses.js";
import { readKeyCache, readPolicyCache, readRevocationCache, writeKeyCache, writePolicyCache, writeRevocationCache, type RevocationEntry } from "./cache.js";
import { wireEvents, type IngestResponse } from "../wire/event.js";
import { AcknowledgedWatermark, type LedgerReader } from "./acknowledged.js";
import { DeadLetterFile, type DeadLetter } from "./dead-letters.js";
import { TelemetryGaps, type TelemetryGap } from "./gaps.js";
import { EventDispatcher, type DispatcherStats } from "./dispatcher.js";
import { RemoteHttp } from "./http.js";
import { RemoteOptionsSchema, type RemoteSettings } from "./options.js";
import { Spool } from "./spool.js";
import { followEventStream, type StreamEvent } from "./sse.js";

/** What remote mode needs from the client it serves. Every callback is called from background work. */
export interface RemoteHost {
  /** Replaces the policy set in force; throws when the set does not validate. */
  applyPolicies(policies: object): void;
  /** Mirrors halts the control plane reports (lifted ones too) and stops what they cover. */
  applyHalts(halts: readonly HaltRecord[]): void;
  /** A reviewer's decision on one of this client's approval requests. */
  applyApproval(record: ApprovalRecord): void;
  /** The organization's public key, which delegation tokens verify against. */
  applyOrganizationKey(jwk: Jwk): void;
  /** A token (or block) the control plane revoked: it stops verifying here too. */
  applyRevocation(tokenId: string, reason: string | undefined): void;
  /** The client's ledger: entries the control plane never acknowledged are sent again on the next start. */
  ledger?: LedgerReader | undefined;
  reportError(error: unknown): void;
  /** Something the developer must hear once, such as an organization with no policy yet. */
  warn?(key: string, message: string): void;
  /** Events that will never reach the control plane: recorded (and signed) in the local ledger. */
  recordGap?(gap: TelemetryGap): void;
}

export interface RemoteLinkOptions {
  /** The control plane: one URL, or several replicas tried in turn. */
  url: string | readonly string[];
  apiKey: string;
  agentId: string;
  group: string | undefined;
  settings: RemoteSettings;
  /** Policy cache and spool of this control plane and key. */
  dir: string;
  /** The client's store (`:memory:` keeps no ledger across restarts, so nothing is sent again). */
  store?: string | undefined;
  /** Halt state older than this is unknown (and, by default, blocks). */
  staleAfter: number;
  /** The client was given policies of its own to enforce until the first sync. */
  hasLocalPolicies: boolean;
  host: RemoteHost;
}

/** What a client with neither cached nor local policies enforces until the control plane answers. */
const UNSYNCED_POLICY_SET = {
  version: 1,
  default: "block",
  policies: [{ id: "warden-unsynced", when: {}, action: "block", reason: "no policies synced from the control plane yet" }],
} as const;

/**
 * Revocation catch-up asks from this long before the newest revocation it has seen: one committed
 * late with an earlier time (another process on the same database, a clock step) is still caught.
 */
const REVOCATION_OVERLAP = 60_000;
/** Revocations per page of `GET /v1/tokens/revoked`. */
const REVOCATION_PAGE = 1000;

/**
 * Remote mode's state, for health checks and diagnostics: stream, sync and event-queue figures.
 * @example
 * import type { RemoteStatus } from "agent-warden";
 * const status: RemoteStatus | undefined = warden.remote?.status;
 * if (status?.offline) console.warn(`control plane unreachable; ${status.queued} events queued`);
 */
export interface RemoteStatus extends DispatcherStats {
  streamConnected: boolean;
  policyVersion: number | undefined;
  policyEtag: string | undefined;
  haltSyncedAt: number;
  awaitingApprovals: number;
  /** Ledger entries sent again on start because no control plane had acknowledged them (a client before this one was killed). */
  recovered: number;
}

type PolicyVersionBody = PolicyVersion;

/** An answer read with its schema; one of another shape is a `RemoteError` (never retried as it is). */
function readAs<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new RemoteError(`${what}: an answer of an unexpected shape (${issue ? `${issue.path.map(String).join(".") || "body"}: ${issue.message}` : "?"})`, { retryable: false });
}

/** The directory of one control plane and key: `<cacheDir>/<hash>`. */
function remoteDir(options: Pick<ResolvedOptions, "store" | "remote">, url: string, apiKey: string): string {
  // One cache for all replicas of one control plane: `url` names them all.
  const base = options.remote?.cacheDir ?? (options.store === ":memory:" ? "./.warden/remote" : join(dirname(resolve(options.store)), "remote"));
  const keyHash = createHash("sha256").update(apiKey).digest("hex");
  return resolve(base, createHash("sha256").update(`${url}\n${keyHash}`).digest("hex").slice(0, 16));
}

/** The name of a control plane in caches: its URL, or its replicas' URLs one a line. */
function controlPlaneOf(url: string | readonly string[]): string {
  return typeof url === "string" ? url : url.join("\n");
}

/** Creates the remote collaborator when the options name a control plane; undefined in embedded mode. */
export function createRemoteLink(options: ResolvedOptions, agent: { agentId: string; group: string | undefined }, host: RemoteHost): RemoteLink | undefined {
  if (options.url === undefined || options.apiKey === undefined) return undefined;
  return new RemoteLink({
    url: options.url,
    apiKey: options.apiKey,
    agentId: agent.agentId,
    group: agent.group,
    settings: options.remote ?? RemoteOptionsSchema.parse({}),
    dir: remoteDir(options, controlPlaneOf(options.url), options.apiKey),
    store: options.store,
    staleAfter: options.halt.staleAfter,
    hasLocalPolicies: options.policies !== undefined,
    host,
  });
}

/**
 * The client's side of the control plane. Decisions stay local: policies are synced (ETag on start,
 * pushed updates over the stream, cached on disk); halts and approval decisions arrive over the
 * stream with polling as a backstop; events go out through a background dispatcher. Approval
 * requests and halts made by this client are sent at once. Nothing here throws into the agent.
 * Reached as `warden.remote` (undefined in embedded mode).
 * @example
 * import type { RemoteLink } from "agent-warden";
 * const link: RemoteLink | undefined = warden.remote;
 * await link?.flush();
 */
export class RemoteLink {
  readonly #options: RemoteLinkOptions;
  /** The control plane as caches name it. */
  readonly #controlPlane: string;
  readonly #http: RemoteHttp;
  readonly #dispatcher: EventDispatcher;
  readonly #deadLetters: DeadLetterFile;
  readonly #gaps: TelemetryGaps;
  readonly #watermark: AcknowledgedWatermark | undefined;
  readonly #cachePath: string;
  readonly #keyPath: string;
  readonly #revocationPath: string;
  /** Every revocation learned by catch-up (not the stream's), by id: what the cache holds. */
  readonly #revocations = new Map<string, RevocationEntry>();
  /** The newest `revokedAt` learned by catch-up. */
  #revokedThrough = 0;
  /** Revocations learned since the cache was last written. */
  #revocationCacheStale = false;
  readonly #waiting = new Set<string>();
  readonly #ready: Promise<boolean>;
  readonly #poller: NodeJS.Timeout;
  readonly #watchdog: NodeJS.Timeout;
  readonly #reported = new Set<string>();
  #etag: string | undefined;
  #policyVersion: number | undefined;
  /** Bumped on every policy change, so an answer to an older request is not applied over a newer push. */
  #policyChanges = 0;
  #haltSyncedAt = 0;
  #lastPolicyCheck = 0;
  #streamOpen = false;
  #streamSynced = false;
  #lastEventId: string | undefined;
  #lastActivity = 0;
  #streamAbort: AbortController | undefined;
  #backoff: NodeJS.Timeout | undefined;
  #wakeStream: (() => void) | undefined;
  #syncing: { halts?: Promise<void> | undefined; policies?: Promise<void> | undefined; approvals?: Promise<void> | undefined; revocations?: Promise<void> | undefined } = {};
  #registered = false;
  #recovered = 0;
  #shutdown: Promise<void> | undefined;
  #closed = false;

  constructor(options: RemoteLinkOptions) {
    this.#options = options;
    this.#controlPlane = controlPlaneOf(options.url);
    this.#http = new RemoteHttp(options.url, options.apiKey, options.settings.requestTimeout);
    this.#cachePath = join(options.dir, "policies.json");
    this.#keyPath = join(options.dir, "organization-key.json");
    this.#revocationPath = join(options.dir, "revocations.json");
    let spool: Spool | undefined;
    if (options.settings.spool) {
      try {
        spool = new Spool(options.dir, options.settings.maxSpoolBytes);
      } catch (error) {
        options.host.reportError(error);
      }
    }
    this.#deadLetters = new DeadLetterFile(options.dir, options.settings.maxDeadLetterBytes);
    this.#gaps = new TelemetryGaps((gap) => {
      try {
        options.host.recordGap?.(gap);
      } catch (error) {
        options.host.reportError(error);
      }
    });
    const ledger = options.host.ledger;
    this.#watermark = ledger !== undefined && options.store !== undefined && options.store !== ":memory:" ? new AcknowledgedWatermark(options.dir, options.store, ledger, (error) => this.#report("watermark", error)) : undefined;
    this.#dispatcher = new EventDispatcher({
      send: (batch, body) => this.#postEvents(batch, body),
      flushInterval: options.settings.flushInterval,
      maxQueue: options.settings.maxQueue,
      maxBatch: options.settings.maxBatch,
      maxInflight: options.settings.maxInflight,
      spool,
      deadLetters: this.#deadLetters,
      onSettled: (events) => this.#watermark?.settled(events),
      onDropped: () => this.#watermark?.dropped(),
      onLost: (events, why, kind) => this.#gaps.lost(events, why, kind),
      onError: (error) => options.host.reportError(error),
    });
    // What a client killed before sending left in this store's ledger goes out first.
    this.#watermark
      ?.recover((event) => this.#dispatcher.enqueue(event))
      .then((count) => (this.#recovered = count))
      .catch((error: unknown) => this.#report("watermark", error));
    this.#loadCachedPolicies();
    this.#loadCachedKey();
    this.#loadCachedRevocations();
    const pollEvery = Math.max(10, Math.min(options.settings.pollInterval, options.staleAfter / 3));
    this.#poller = setInterval(() => this.#poll(), pollEvery);
    this.#poller.unref();
    this.#watchdog = setInterval(() => this.#watch(), Math.max(10, Math.min(1000, options.staleAfter / 2)));
    this.#watchdog.unref();
    this.#ready = this.#start();
    if (options.settings.stream) void this.#followStream();
  }

  /** Resolves true once policies, halt state and revocations are synced, false when the first attempt could not reach the server. */
  ready(): Promise<boolean> {
    return this.#ready;
  }

  /** True when the halt state is older than the staleness bound (the control plane has not been heard from). */
  haltStateUnknown(now = Date.now()): boolean {
    return now - this.#haltSyncedAt > this.#options.staleAfter;
  }

  get status(): RemoteStatus {
    return { ...this.#dispatcher.stats, streamConnected: this.#streamOpen, policyVersion: this.#policyVersion, policyEtag: this.#etag, haltSyncedAt: this.#haltSyncedAt, awaitingApprovals: this.#waiting.size, recovered: this.#recovered };
  }

  /** Hands one event over. Approval requests and halts made here go to the server at once; the rest is batched. */
  send(event: WardenEvent): void {
    if (this.#closed) return;
    try {
      this.#watermark?.track(event);
      const data = event.data;
      switch (event.type) {
        case EventType.APPROVAL_REQUESTED:
          if (typeof data.approvalId === "string") this.#waiting.add(data.approvalId);
          void this.#control(event, () => this.#http.request("POST", "/v1/approvals", { body: approvalBody(event) }));
          return;
        case EventType.APPROVAL_APPROVED:
        case EventType.APPROVAL_REJECTED:
          if (typeof data.approvalId === "string") this.#waiting.delete(data.approvalId);
          break;
        case EventType.AGENT_HALTED:
          void this.#control(event, () => this.#http.request("POST", "/v1/halts", { body: haltBody(event) }));
          return;
        case EventType.AGENT_RESUMED:
          void this.#control(event, () => this.#http.request("POST", "/v1/halts/resume", { body: resumeBody(event) }));
          return;
      }
      this.#dispatcher.enqueue(event);
    } catch (error) {
      this.#report("send", error);
    }
  }

  /**
   * Events the control plane will never accept (nested deeper than the wire allows, an id too long,
   * too large, or refused by the server), oldest first, each with the reason. Their batches were
   * delivered without them; the full events stay in the local ledger under their ids.
   */
  deadLetters(): DeadLetter[] {
    return this.#deadLetters.read();
  }

  /** Sends what is queued (and spooled) now; returns early while the server is unreachable. Never rejects. */
  flush(): Promise<void> {
    return this.#dispatcher.flush();
  }

  /** Flushes, then stops following the server. Safe to call twice. */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      await this.#dispatcher.shutdown();
      this.close();
    })();
    return this.#shutdown;
  }

  /** Stops at once; unsent events go to the spool. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#poller);
    clearInterval(this.#watchdog);
    if (this.#backoff) clearTimeout(this.#backoff);
    this.#wakeStream?.();
    this.#streamAbort?.abort();
    this.#dispatcher.close();
    this.#gaps.flush();
    this.#watermark?.close();
  }

  // ── sync ──────────────────────────────────────────────────────────────────────────────────

  async #start(): Promise<boolean> {
    const [policies, halts, revocations] = await Promise.allSettled([this.#syncPolicies(), this.#syncHalts(), this.#syncRevocations(), this.#register(), this.#syncKey()]);
    if (revocations.status === "rejected") this.#report("revocations", revocations.reason);
    return policies.status === "fulfilled" && halts.status === "fulfilled" && revocations.status === "fulfilled";
  }

  #loadCachedPolicies(): void {
    const cached = readPolicyCache(this.#cachePath, this.#controlPlane);
    if (cached !== undefined && this.#apply(cached)) return;
    // Fail closed: with nothing to enforce yet, every call is blocked until the first sync.
    if (!this.#options.hasLocalPolicies) this.#options.host.applyPolicies(UNSYNCED_POLICY_SET);
  }

  #apply(version: PolicyVersionBody): boolean {
    if (version.etag === this.#etag) return true;
    if (typeof version.policies !== "object" || version.policies === null) return false;
    try {
      this.#options.host.applyPolicies(version.policies);
    } catch (error) {
      this.#report("policies", error);
      return false;
    }
    this.#etag = version.etag;
    this.#policyVersion = version.version;
    this.#policyChanges++;
    // Version 0 is the empty set every organization starts with: nothing is governed until one is published.
    if (version.version === 0) this.#options.host.warn?.("remote-no-policy", noRemotePolicyNotice(typeof this.#options.url === "string" ? this.#options.url : this.#options.url[0]!, undefined));
    return true;
  }

  #syncPolicies(): Promise<void> {
    this.#syncing.policies ??= (async () => {
      const changesBefore = this.#policyChanges;
      this.#lastPolicyCheck = Date.now();
      const response = await this.#http.request<unknown>("GET", "/v1/policies/current", { headers: this.#etag ? { "if-none-match": this.#etag } : {} });
      if (response.status === 304 || this.#policyChanges !== changesBefore) return;
      this.#applyAndCache(readAs(wireResponses().PolicyVersionSchema, response.body, "GET /v1/policies/current"));
    })().finally(() => (this.#syncing.policies = undefined));
    return this.#syncing.policies;
  }

  #applyAndCache(version: PolicyVersionBody): void {
    if (!this.#apply(version)) return;
    try {
      writePolicyCache(this.#cachePath, { url: this.#controlPlane, version: version.version, etag: version.etag, policies: version.policies, savedAt: Date.now() });
    } catch (error) {
      this.#report("cache", error);
    }
  }

  #loadCachedKey(): void {
    const jwk = readKeyCache(this.#keyPath, this.#controlPlane);
    if (jwk === undefined) return;
    try {
      this.#options.host.applyOrganizationKey(jwk);
    } catch (error) {
      this.#report("cache", error);
    }
  }

  /** The organization's public key (JWKS): tokens verify offline against it, never against a local key. */
  async #syncKey(): Promise<void> {
    const { body } = await this.#http.request<unknown>("GET", "/v1/tokens/jwks");
    const jwk = readAs(wireResponses().JwksSchema, body, "GET /v1/tokens/jwks").keys[0];
    if (jwk === undefined) return;
    this.#options.host.applyOrganizationKey(jwk);
    try {
      writeKeyCache(this.#keyPath, { url: this.#controlPlane, jwk });
    } catch (error) {
      this.#report("cache", error);
    }
  }

  #syncHalts(): Promise<void> {
    this.#syncing.halts ??= (async () => {
      const started = Date.now();
      const response = await this.#http.request<{ halts: HaltRecord[] }>("GET", "/v1/halts?include=all");
      this.#options.host.applyHalts(readAs(wireResponses().HaltListSchema, response.body, "GET /v1/halts").halts);
      this.#haltSyncedAt = Math.max(this.#haltSyncedAt, started);
      this.#reported.delete("poll");
    })().finally(() => (this.#syncing.halts = undefined));
    return this.#syncing.halts;
  }

  #loadCachedRevocations(): void {
    try {
      for (const entry of readRevocationCache(this.#revocationPath, this.#controlPlane) ?? []) this.#learnRevocation(entry);
    } catch (error) {
      this.#report("cache", error);
    }
  }

  /**
   * Revocations made while this client was not listening (before it started, or longer ago than the
   * stream keeps, which the stream answers with `reset`): read in pages from a little before the
   * newest one seen, applied, and cached beside the policies.
   */
  #syncRevocations(): Promise<void> {
    this.#syncing.revocations ??= (async () => {
      let query: { since: number; afterTokenId?: string } = { since: Math.max(0, this.#revokedThrough - REVOCATION_OVERLAP) };
      for (;;) {
        const search = new URLSearchParams({ since: String(query.since), limit: String(REVOCATION_PAGE) });
        if (query.afterTokenId !== undefined) search.set("afterTokenId", query.afterTokenId);
        const response = await this.#http.request<unknown>("GET", `/v1/tokens/revoked?${search}`);
        const body = readAs(wireResponses().RevokedPageSchema, response.body, "GET /v1/tokens/revoked");
        for (const value of body.items) {
          // One item of another shape is skipped, not the page.
          const item = wireResponses().RevocationSchema.safeParse(value);
          if (item.success && this.#learnRevocation({ tokenId: item.data.tokenId, revokedAt: item.data.revokedAt, ...(item.data.reason !== undefined && { reason: item.data.reason }) })) this.#revocationCacheStale = true;
        }
        const next = body.next;
        if (next === null || next === undefined) break;
        // A cursor that does not move would ask for the same page forever.
        if (next.since < query.since || (next.since === query.since && query.afterTokenId !== undefined && next.afterTokenId <= query.afterTokenId)) break;
        query = { since: next.since, afterTokenId: next.afterTokenId };
      }
      this.#reported.delete("revocations");
      // Written once the whole list is read (a sync cut short is completed by the next one, which writes it).
      if (!this.#revocationCacheStale) return;
      try {
        writeRevocationCache(this.#revocationPath, { url: this.#controlPlane, items: [...this.#revocations.values()] });
        this.#revocationCacheStale = false;
      } catch (error) {
        this.#report("cache", error);
      }
    })().finally(() => (this.#syncing.revocations = undefined));
    return this.#syncing.revocations;
  }

  /** Applies a revocation not seen before; false when it was. */
  #learnRevocation(entry: RevocationEntry): boolean {
    const known = this.#revocations.has(entry.tokenId);
    if (!known) {
      this.#options.host.applyRevocation(entry.tokenId, entry.reason);
      this.#revocations.set(entry.tokenId, entry);
    }
    this.#revokedThrough = Math.max(this.#revokedThrough, entry.revokedAt);
    return !known;
  }

  /** Asks about every request this client waits on; a decided one wakes its caller. */
  #syncApprovals(): Promise<void> {
    this.#syncing.approvals ??= (async () => {
      for (const approvalId of [...this.#waiting]) {
        try {
          const { body } = await this.#http.request<unknown>("GET", `/v1/approvals/${encodeURIComponent(approvalId)}`);
          this.#resolved(readAs(wireResponses().ApprovalRecordSchema, body, "GET /v1/approvals/:id"));
        } catch (error) {
          // 404: the request is still on its way (spooled); keep waiting.
          if (!(error instanceof RemoteError && error.status === 404)) throw error;
        }
      }
    })().finally(() => (this.#syncing.approvals = undefined));
    return this.#syncing.approvals;
  }

  #resolved(record: ApprovalRecord): void {
    if (record.status === ApprovalStatus.PENDING || !this.#waiting.delete(record.approvalId)) return;
    this.#options.host.applyApproval(record);
  }

  async #register(): Promise<void> {
    if (this.#registered) return;
    try {
      await this.#http.request("PUT", `/v1/agents/${encodeURIComponent(this.#options.agentId)}`, { body: { group: this.#options.group ?? null } });
      this.#registered = true;
    } catch (error) {
      // A reviewer's key may not register agents: nothing to do then.
      if (error instanceof RemoteError && error.status === 403) this.#registered = true;
      else throw error;
    }
  }

  #poll(): void {
    if (this.#closed) return;
    const now = Date.now();
    const catchUp = !this.#streamSynced;
    const work: Promise<unknown>[] = [];
    if (catchUp) work.push(this.#syncHalts(), this.#syncApprovals(), this.#syncRevocations());
    if (catchUp ? now - this.#lastPolicyCheck >= 5 * this.#options.settings.pollInterval : now - this.#lastPolicyCheck >= this.#options.settings.policyRefreshInterval) work.push(this.#syncPolicies());
    if (!this.#registered) work.push(this.#register());
    for (const promise of work) promise.catch((error: unknown) => this.#report("poll", error));
  }

  // ── stream ────────────────────────────────────────────────────────────────────────────────

  async #followStream(): Promise<void> {
    let attempt = 0;
    while (!this.#closed) {
      const controller = new AbortController();
      this.#streamAbort = controller;
      const base = this.#http.baseUrl;
      let unreachable = false;
      try {
        await followEventStream({
          url: `${base}/v1/stream?topics=approvals,halts,policies`,
          headers: { authorization: this.#http.authorization, ...(this.#lastEventId !== undefined && { "last-event-id": this.#lastEventId }) },
          signal: controller.signal,
          onOpen: () => {
            attempt = 0;
            this.#streamOpen = true;
            this.#lastActivity = Date.now();
            // Resuming after a known id, the server replays what was missed: in sync from the first byte.
            this.#streamSynced = this.#lastEventId !== undefined;
            this.#reported.delete("stream");
            this.#dispatcher.nudge();
          },
          onEvent: (event) => this.#onStreamEvent(event),
          onActivity: () => {
            this.#lastActivity = Date.now();
            if (this.#streamSynced) this.#haltSyncedAt = this.#lastActivity;
          },
        });
      } catch (error) {
        if (!this.#closed) this.#report("stream", error);
        // A replica that cannot be reached or cannot serve: follow the next one (with `Last-Event-ID`, nothing is missed).
        unreachable = error instanceof RemoteError && error.retryable && (error.status === undefined || error.status >= 502);
        if (unreachable) this.#http.failover(base);
      }
      this.#streamOpen = false;
      this.#streamSynced = false;
      if (this.#closed) return;
      attempt++;
      // Another replica is tried at once, until each has failed in turn.
      const backoff = unreachable && attempt < this.#http.urls.length ? 0 : Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
      await new Promise<void>((wake) => {
        this.#wakeStream = wake;
        this.#backoff = setTimeout(wake, backoff / 2 + Math.random() * (backoff / 2));
        this.#backoff.unref();
      });
    }
  }

  #onStreamEvent(event: StreamEvent): void {
    if (event.id !== undefined) this.#lastEventId = event.id;
    let data: unknown;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    try {
      switch (event.event) {
        case "hello":
        case "reset":
          // State may have changed while this client was not listening: read it, then follow.
          this.#streamSynced = false;
          void Promise.all([this.#syncHalts(), this.#syncPolicies(), this.#syncApprovals(), this.#syncRevocations(), this.#register()])
            .then(() => {
              if (this.#streamOpen) this.#streamSynced = true;
            })
            .catch((error: unknown) => this.#report("poll", error));
          return;
        case "policy.updated": {
          const version = readAs(wireResponses().PolicyVersionSchema, data, "stream policy.updated");
          if (this.#policyVersion === undefined || version.version > this.#policyVersion) this.#applyAndCache(version);
          return;
        }
        case "halt.created":
        case "halt.lifted":
          this.#options.host.applyHalts([readAs(wireResponses().HaltRecordSchema, data, `stream ${event.event}`)]);
          return;
        case "approval.resolved":
          this.#resolved(readAs(wireResponses().ApprovalRecordSchema, data, "stream approval.resolved"));
          return;
        case "token.revoked": {
          const { tokenId, reason } = readAs(wireResponses().TokenRevokedMessageSchema, data, "stream token.revoked");
          this.#options.host.applyRevocation(tokenId, reason);
          return;
        }
      }
    } catch (error) {
      this.#report("stream", error);
    }
  }

  /** Restarts a stream that has gone silent for longer than the staleness bound (a half-open connection). */
  #watch(): void {
    if (this.#streamOpen && Date.now() - this.#lastActivity > this.#options.staleAfter) this.#streamAbort?.abort();
  }

  // ── sending ───────────────────────────────────────────────────────────────────────────────

  /** `POST /v1/events`; the answer is read with the schema the server answers by. */
  async #postEvents(batch: WardenEvent[], body: string): Promise<IngestResponse> {
    try {
      const response = await this.#http.request<unknown>("POST", "/v1/events", { rawBody: body });
      const parsed = wireEvents().IngestResponseSchema.safeParse(response.body);
      if (parsed.success) return parsed.data;
      this.#report("ingest-answer", new RemoteError(`POST /v1/events: an answer of an unknown shape (${parsed.error.issues[0]?.message ?? "?"}); the batch counts as accepted`, { status: response.status, retryable: false }));
    } catch (error) {
      // A 2xx that is not JSON: the server took the batch all the same.
      if (!(error instanceof RemoteError && error.status !== undefined && error.status >= 200 && error.status < 300)) throw error;
    }
    return { accepted: batch.length };
  }

  /** A request the server must act on now. If it cannot be made, the event still reaches the ledger through the queue. */
  async #control(event: WardenEvent, request: () => Promise<unknown>): Promise<void> {
    try {
      await request();
      this.#watermark?.settled([event]);
    } catch (error) {
      this.#report(`control:${event.type}`, error);
      this.#dispatcher.enqueue(event);
    }
  }

  /** Reports the first failure of each kind until that kind succeeds again: an outage is one warning, not thousands. */
  #report(kind: string, error: unknown): void {
    if (this.#reported.has(kind)) return;
    this.#reported.add(kind);
    this.#options.host.reportError(error);
  }
}

function approvalBody(event: WardenEvent): Record<string, unknown> {
  const d = event.data;
  return {
    approvalId: d.approvalId,
    eventId: event.id,
    toolCallId: event.toolCallId,
    runId: event.runId,
    agentId: event.agentId,
    toolName: d.toolName,
    payload: d.payload,
    agentContext: d.agentContext,
    policyId: d.policyId,
    reason: d.reason,
    expiresAt: d.expiresAt,
    rule: d.rule,
  };
}

function target(event: WardenEvent): Record<string, unknown> {
  const scope = event.data.scope;
  const value = event.data.target;
  if (scope === "agent") return { agentId: value };
  if (scope === "group") return { group: value };
  if (scope === "run") return { runId: value };
  return {};
}

function haltBody(event: WardenEvent): Record<string, unknown> {
  return { ...target(event), haltId: event.data.haltId, eventId: event.id, reason: event.data.reason, ...(event.actor !== null && { actor: event.actor }) };
}

function resumeBody(event: WardenEvent): Record<string, unknown> {
  return { ...target(event), eventId: event.id, ...(typeof event.data.reason === "string" && { reason: event.data.reason }), ...(event.actor !== null && { actor: event.actor }) };
}
