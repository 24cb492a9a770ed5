import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import { ConfigError, InvalidStateError } from "../../errors.js";
import { durationSchema } from "../../internal/duration.js";
import { builtOnFirstUse } from "../../internal/once.js";
import type { ApprovalRecord } from "../../records.js";
import { createRedactor, type Redactor } from "../../redaction/redact.js";
import { ApprovalLinkSigner, type ApprovalLinkClaims } from "./links.js";
import { signWebhook, verifySlackSignature, webhookSecretKey } from "./signing.js";
import { slackBlocks, slackText } from "./slack-message.js";

/** The events a channel delivers: a request is made, or it reaches a final status (approved, rejected, expired, cancelled). */
export const APPROVAL_CHANNEL_EVENTS = ["approval.requested", "approval.decided"] as const;
/**
 * `approval.requested` or `approval.decided`.
 * @example
 * import type { ApprovalChannelEvent } from "agent-warden";
 * const only: ApprovalChannelEvent[] = ["approval.requested"];
 */
export type ApprovalChannelEvent = (typeof APPROVAL_CHANNEL_EVENTS)[number];

const WebhookSchema = builtOnFirstUse(() =>
  z.strictObject({
    /** Names the endpoint in delivery records. Default: its URL's host. */
    id: z.string().min(1).max(100).optional(),
    url: z.url({ protocol: /^https?$/, error: "a webhook url is http(s)://…" }),
    secret: z.string().superRefine((value, ctx) => {
      try {
        webhookSecretKey(value);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
      }
    }),
    events: z.array(z.enum(APPROVAL_CHANNEL_EVENTS)).min(1).optional(),
  }),
);

const SlackSchema = builtOnFirstUse(() =>
  z.strictObject({
    /** A bot token (`xoxb-…`) with `chat:write`. */
    token: z.string().min(1),
    /** The channel id (or name) requests are posted to. */
    channel: z.string().min(1),
    /** The app's signing secret: interaction requests are verified with it. */
    signingSecret: z.string().min(1),
    /** Slack's Web API. Default `https://slack.com/api`. */
    apiUrl: z.url().optional(),
  }),
);

const LinksSchema = builtOnFirstUse(() =>
  z.strictObject({
    /** Signs the links (at least 32 characters); keep it secret. */
    secret: z.string().min(32, "an approval link secret has at least 32 characters"),
    /** The control plane's public address, e.g. `https://warden.example.com`. */
    baseUrl: z.url(),
    /** How long a link is valid (never beyond the request's own expiry). Default 1h. */
    ttl: durationSchema().optional(),
  }),
);

/**
 * Where approval requests go besides the store: signed webhooks, Slack, one-time links. Validated by
 * this schema wherever it comes from (`createWardenServer({ channels })`, `warden serve --channels`,
 * `attachApprovalChannels`).
 */
export const ApprovalChannelsSchema = builtOnFirstUse(() =>
  z.strictObject({
    webhooks: z.array(WebhookSchema).optional(),
    slack: SlackSchema.optional(),
    links: LinksSchema.optional(),
    retry: z
      .strictObject({
        /** Attempts per delivery, the first included. Default 8. */
        attempts: z.number().int().min(1).max(50).optional(),
        /** Wait before the second attempt; doubled each time (with ±20% jitter). Default 5s. */
        initialDelay: durationSchema().optional(),
        /** Longest wait between attempts. Default 1h. */
        maxDelay: durationSchema().optional(),
        /** One attempt's time limit. Default 15s. */
        timeout: durationSchema().optional(),
      })
      .optional(),
    /** Delivery records kept in memory for the API and console. Default 1000. */
    keep: z.number().int().min(1).max(100_000).optional(),
    /** Per policy id, the channels its requests go to (webhook ids, `slack`); a policy not listed: every channel. From `approval.notify` in a policy file. */
    notify: z.record(z.string(), z.array(z.string())).optional(),
  }),
);

/**
 * Channel settings, as written in a file or passed in code.
 * @example
 * import type { ApprovalChannelsOptions } from "agent-warden";
 * const channels: ApprovalChannelsOptions = {
 *   webhooks: [{ url: "https://hooks.example.com/warden", secret: process.env.WARDEN_WEBHOOK_SECRET! }],
 *   slack: { token: process.env.SLACK_BOT_TOKEN!, channel: "C0123", signingSecret: process.env.SLACK_SIGNING_SECRET! },
 * };
 */
export type ApprovalChannelsOptions = z.input<typeof ApprovalChannelsSchema>;

/**
 * One message to one channel and what became of it: each attempt is counted, the last failure kept.
 * @example
 * import type { ApprovalDelivery } from "agent-warden";
 * const failing = (deliveries: ApprovalDelivery[]) => deliveries.filter((d) => d.status === "failed");
 */
export interface ApprovalDelivery {
  deliveryId: string;
  channel: "webhook" | "slack";
  /** The webhook's id or the Slack channel. */
  target: string;
  event: ApprovalChannelEvent;
  org: string;
  approvalId: string;
  /** The agent whose request it is. */
  agentId: string;
  /** `pending` (first attempt under way), `retrying`, `delivered`, or `failed` (attempts exhausted, or the receiver answered 410 Gone). */
  status: "pending" | "retrying" | "delivered" | "failed";
  attempts: number;
  /** The receiver's last HTTP status, if it answered. */
  lastStatus?: number | undefined;
  lastError?: string | undefined;
  createdAt: number;
  updatedAt: number;
  nextAttemptAt?: number | undefined;
  /** When the channel accepted it. */
  deliveredAt?: number | undefined;
}

/**
 * What a delivery sends, kept with its record so any process can make its next attempt: already
 * redacted, and never a secret (a webhook is named by its id, signed with the configured secret at
 * send time; Slack's token is read from the settings too).
 */
export type ApprovalDeliveryMessage =
  | { kind: "webhook"; hook: string; messageId: string; body: string }
  | { kind: "slack"; method: "chat.postMessage" | "chat.update"; payload: Record<string, unknown>; posted?: { channel: string; ts: string } | undefined };

/**
 * Where delivery records live when they must survive a restart (the control plane's database): each
 * attempt's outcome is written, and due retries are claimed with a lease, so exactly one process
 * makes each attempt and retries resume after a restart, on any replica.
 * @example
 * import type { ApprovalDeliveryLog } from "agent-warden";
 * declare const log: ApprovalDeliveryLog; // e.g. the control plane store's `deliveries`
 * const failed = await log.list({ org: "acme", status: "failed" });
 */
export interface ApprovalDeliveryLog {
  /** Records a new delivery, leased to the caller until `leaseUntil`; false when that delivery (same id) was recorded already. */
  add(delivery: ApprovalDelivery, message: ApprovalDeliveryMessage, leaseUntil: number): Promise<boolean>;
  /** Records an attempt's outcome and releases the lease; `message` replaces the stored one when given. */
  update(delivery: ApprovalDelivery, message?: ApprovalDeliveryMessage): Promise<void>;
  /** Leases up to `limit` deliveries (of `org`, when given) whose next attempt is due and whose lease has lapsed. */
  claimDue(now: number, leaseUntil: number, limit: number, org?: string): Promise<Array<{ delivery: ApprovalDelivery; message: ApprovalDeliveryMessage }>>;
  /** Optional: the organizations with deliveries not yet settled (their channels resume them). */
  dueOrgs?(now: number): Promise<string[]>;
  /** Newest first. */
  list(filter: DeliveryFilter): Promise<ApprovalDelivery[]>;
  /** Where the request's Slack message was posted, once it was. */
  slackPost(org: string, approvalId: string): Promise<{ channel: string; ts: string } | undefined>;
}

/**
 * Which delivery records to list.
 * @example
 * import type { DeliveryFilter } from "agent-warden";
 * const filter: DeliveryFilter = { org: "acme", approvalId: "apr_1" };
 */
export interface DeliveryFilter {
  org?: string | undefined;
  approvalId?: string | undefined;
  agentId?: string | undefined;
  status?: ApprovalDelivery["status"] | undefined;
  limit?: number | undefined;
}

/**
 * How channels act on requests: deciding one (a Slack button, a link) and reading one back.
 * @example
 * import type { ApprovalChannelsBackend } from "agent-warden";
 * const backend: ApprovalChannelsBackend = {
 *   decide: async (_org, approvalId, status, input) => (status === "approved" ? warden.approvals.approve(approvalId, input) : warden.approvals.reject(approvalId, input)),
 *   get: async (_org, approvalId) => warden.approvals.get(approvalId),
 * };
 */
export interface ApprovalChannelsBackend {
  /** `via`: the channel the answer came through, recorded with the decision. */
  decide(org: string, approvalId: string, status: "approved" | "rejected", input: { reviewer: string; reason?: string | undefined; via: "slack" | "link" }): Promise<ApprovalRecord>;
  get(org: string, approvalId: string): Promise<ApprovalRecord | undefined>;
  onError?: ((error: unknown) => void) | undefined;
}

/**
 * What an interaction endpoint answers: its HTTP status and JSON body.
 * @example
 * import type { ChannelResponse } from "agent-warden";
 * const send = (res: { status(n: number): { json(b: unknown): void } }, answer: ChannelResponse) => res.status(answer.status).json(answer.body);
 */
export interface ChannelResponse {
  status: number;
  body: Record<string, unknown>;
}

type SendOutcome = { ok: boolean; status?: number | undefined; error?: string | undefined; gone?: boolean; retryAfterMs?: number | undefined; posted?: { channel: string; ts: string } | undefined };

const SLACK_API = "https://slack.com/api";
const SEEN_LIMIT = 10_000;

/**
 * Delivers approval requests and outcomes to webhooks (Standard Webhooks signatures) and Slack
 * (a message with Approve / Reject, updated with the outcome), signs one-time approval links, and
 * decides requests from Slack's signed interactions. Deliveries retry with exponential backoff and
 * are recorded (in memory, or in `log` so they survive a restart); a channel that is down never
 * decides anything: the request waits for another reviewer or its timeout.
 * @example
 * import { ApprovalChannels } from "agent-warden";
 * const channels = new ApprovalChannels({ webhooks: [{ url: "https://hooks.example.com/warden", secret: "whsec_…" }] }, backend);
 * channels.requested("acme", record);
 */
export class ApprovalChannels {
  readonly #options: z.output<typeof ApprovalChannelsSchema>;
  readonly #backend: ApprovalChannelsBackend;
  readonly #log: ApprovalDeliveryLog | undefined;
  readonly #org: string | undefined;
  readonly #links: ApprovalLinkSigner | undefined;
  readonly #deliveries: ApprovalDelivery[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #seen = new Set<string>();
  /** Where each request's Slack message is, so its outcome updates it; the update waits for the post. */
  readonly #slackMessages = new Map<string, Promise<{ channel: string; ts: string } | undefined>>();
  /** Links already used to decide (a decided request refuses every link anyway; this also covers a decision that failed half-way). */
  readonly #usedLinks = new Set<string>();
  /** Payloads pass the default redaction again on their way out, whoever stored them. */
  readonly #redact: Redactor = createRedactor();
  #poller: NodeJS.Timeout | undefined;
  #polling = false;
  #closed = false;

  /**
   * `log`: keep delivery records there (the control plane passes its database), so retries resume
   * after a restart. `scope.org`: these channels serve one organization (its policy file's), and
   * resume only its deliveries.
   */
  constructor(options: ApprovalChannelsOptions, backend: ApprovalChannelsBackend, log?: ApprovalDeliveryLog, scope: { org?: string | undefined } = {}) {
    const parsed = ApprovalChannelsSchema.safeParse(options);
    if (!parsed.success) throw new ConfigError(`invalid approval channels: ${parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ")}`);
    this.#options = parsed.data;
    this.#backend = backend;
    this.#log = log;
    this.#org = scope.org;
    this.#links = parsed.data.links ? new ApprovalLinkSigner(parsed.data.links.secret) : undefined;
    if (log) {
      // Retries (and deliveries a stopped process left due) are picked up from the log by whichever process polls first.
      this.#poller = setInterval(() => void this.#resumeDue(), Math.min(1000, Math.max(20, Math.floor(this.#retry.initialDelay / 2))));
      this.#poller.unref();
    }
  }

  /** Whether Slack interactions and approval links are configured. */
  get accepts(): { slack: boolean; links: boolean } {
    return { slack: this.#options.slack !== undefined, links: this.#links !== undefined };
  }

  /** Announces a new request on every channel (at most once per request). */
  requested(org: string, stored: ApprovalRecord): void {
    if (this.#closed || !this.#first(`requested:${org}:${stored.approvalId}`)) return;
    const record = this.redacted(stored);
    const link = this.#links && record.expiresAt > Date.now() ? this.createLink(org, record) : undefined;
    this.#toWebhooks(org, record, "approval.requested", link?.url);
    const slack = this.#options.slack;
    if (slack && this.#notifies(record, "slack")) {
      const posted = new Promise<{ channel: string; ts: string } | undefined>((resolve) => {
        const message: ApprovalDeliveryMessage = { kind: "slack", method: "chat.postMessage", payload: { channel: slack.channel, text: slackText(record), blocks: slackBlocks(org, record, { linkUrl: link?.url }) } };
        this.#deliver(org, record, "slack", slack.channel, "approval.requested", message, (outcome) => resolve(outcome?.posted));
      });
      this.#slackMessages.set(`${org}:${record.approvalId}`, posted);
    }
  }

  /**
   * Announces a final status (approved, rejected, expired, cancelled) and updates the Slack message.
   * `onlyOwnMessages`: the decision was made and announced by another replica; only update a Slack message posted from here.
   */
  decided(org: string, stored: ApprovalRecord, options: { onlyOwnMessages?: boolean | undefined } = {}): void {
    if (this.#closed || stored.status === "pending") return;
    // A decision another replica made (and announces itself) only updates the Slack message posted from here.
    if (options.onlyOwnMessages && !this.#slackMessages.has(`${org}:${stored.approvalId}`)) return;
    if (!this.#first(`decided:${org}:${stored.approvalId}`)) return;
    const record = this.redacted(stored);
    if (!options.onlyOwnMessages) this.#toWebhooks(org, record, "approval.decided", undefined);
    const slack = this.#options.slack;
    if (!slack || !this.#notifies(record, "slack")) return;
    const key = `${org}:${record.approvalId}`;
    const own = this.#slackMessages.get(key);
    this.#slackMessages.delete(key);
    // Posted by this process, or (after a restart, or by another replica) found in the log.
    const where = own ?? (this.#log ? this.#log.slackPost(org, record.approvalId).catch((error) => void this.#backend.onError?.(error)) : undefined);
    if (!where) return;
    void where.then((at) => {
      if (!at || this.#closed) return;
      this.#deliver(org, record, "slack", at.channel, "approval.decided", { kind: "slack", method: "chat.update", payload: { channel: at.channel, ts: at.ts, text: slackText(record), blocks: slackBlocks(org, record, {}) } });
    });
  }

  /** The record with its payload (and goal) redacted, as every channel shows it. */
  redacted(record: ApprovalRecord): ApprovalRecord {
    return { ...record, payload: this.#redact(record.payload ?? null), ...(record.agentContext && { agentContext: this.#redact(record.agentContext) as ApprovalRecord["agentContext"] }) };
  }

  /** Delivery records kept in this process's memory, newest first (with a log, use `listDeliveries`). */
  deliveries(filter: DeliveryFilter = {}): ApprovalDelivery[] {
    const out: ApprovalDelivery[] = [];
    for (let i = this.#deliveries.length - 1; i >= 0 && out.length < (filter.limit ?? 100); i--) {
      const d = this.#deliveries[i]!;
      if ((filter.org === undefined || d.org === filter.org) && (filter.approvalId === undefined || d.approvalId === filter.approvalId) && (filter.agentId === undefined || d.agentId === filter.agentId) && (filter.status === undefined || d.status === filter.status)) out.push({ ...d });
    }
    return out;
  }

  /** Delivery records, newest first: from the log when there is one (every process's, across restarts), else from memory. */
  async listDeliveries(filter: DeliveryFilter = {}): Promise<ApprovalDelivery[]> {
    return this.#log ? this.#log.list(filter) : this.deliveries(filter);
  }

  /** A signed, expiring, single-use link to decide one request (needs `links`). */
  createLink(org: string, record: ApprovalRecord, options: { to?: string | undefined; ttl?: number | undefined } = {}): { url: string; token: string; expiresAt: number } {
    const links = this.#options.links;
    if (!this.#links || !links) throw new ConfigError("approval links are not configured (channels.links)");
    const expiresAt = Math.min(record.expiresAt, Date.now() + (options.ttl ?? links.ttl ?? 3_600_000));
    const token = this.#links.sign({ org, approvalId: record.approvalId, exp: expiresAt, ...(options.to !== undefined && { to: options.to }) });
    return { url: `${links.baseUrl.replace(/\/+$/, "")}/approval-links/${token}`, token, expiresAt };
  }

  /** The claims of a genuine, unexpired, unused link; `TokenError` or `InvalidStateError` otherwise. */
  readLink(token: string): ApprovalLinkClaims {
    if (!this.#links) throw new ConfigError("approval links are not configured (channels.links)");
    const claims = this.#links.verify(token);
    if (this.#usedLinks.has(claims.id)) throw new InvalidStateError("this approval link was already used");
    return claims;
  }

  /** Decides through a link, once: the reviewer is whom the link was issued to. */
  async decideByLink(token: string, status: "approved" | "rejected", reason: string | undefined): Promise<ApprovalRecord> {
    const claims = this.readLink(token);
    this.#usedLinks.add(claims.id);
    return this.#backend.decide(claims.org, claims.approvalId, status, { reviewer: claims.to ?? "approval link", reason: reason ?? "decided through a one-time approval link", via: "link" });
  }

  /**
   * Handles a Slack interaction (`block_actions` from the Approve / Reject buttons): verifies the
   * request signature and timestamp (401 and nothing decided otherwise), then decides with the
   * Slack user as reviewer. The message is updated when the decision is announced.
   */
  async handleSlackInteraction(input: { rawBody: string; signature: string | undefined; timestamp: string | undefined }): Promise<ChannelResponse> {
    const slack = this.#options.slack;
    if (!slack) return { status: 404, body: { error: { code: "not_found", message: "Slack is not configured" } } };
    if (!verifySlackSignature(slack.signingSecret, input.rawBody, input.signature, input.timestamp)) {
      return { status: 401, body: { error: { code: "unauthorized", message: "the Slack request signature or timestamp does not verify" } } };
    }
    const action = parseSlackAction(input.rawBody);
    // Signed by Slack but not a Warden decision (the Open button, another app's action): acknowledged, nothing decided.
    if (!action) return { status: 200, body: { ok: false, message: "not a Warden approval action" } };
    const reviewer = `slack:${action.userId}`;
    try {
      const record = await this.#backend.decide(action.org, action.approvalId, action.status, { reviewer, reason: `decided in Slack${action.userName ? ` by @${action.userName}` : ""}`, via: "slack" });
      return { status: 200, body: { ok: true, approvalId: record.approvalId, status: record.status, reviewer } };
    } catch (error) {
      if (!(error instanceof InvalidStateError) && (error as { code?: string }).code !== "not_found" && (error as { code?: string }).code !== "reviewer_not_allowed" && (error as { status?: number }).status !== 409) this.#backend.onError?.(error);
      // Slack shows nothing of a 200's body to the user; the message already says (or will say) the outcome.
      return { status: 200, body: { ok: false, message: (error as Error).message } };
    }
  }

  /** Stops retries; deliveries under way finish but are not retried (with a log, another process or a restart resumes them). */
  close(): void {
    this.#closed = true;
    if (this.#poller) clearInterval(this.#poller);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Whether the request's policy sends it to `channel` (every channel unless its `approval.notify` says otherwise). */
  #notifies(record: ApprovalRecord, channel: string): boolean {
    const only = record.policyId === undefined ? undefined : this.#options.notify?.[record.policyId];
    return only === undefined || only.includes(channel);
  }

  #first(key: string): boolean {
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    if (this.#seen.size > SEEN_LIMIT) this.#seen.delete(this.#seen.values().next().value!);
    return true;
  }

  #toWebhooks(org: string, record: ApprovalRecord, event: ApprovalChannelEvent, linkUrl: string | undefined): void {
    for (const hook of this.#options.webhooks ?? []) {
      if (hook.events && !hook.events.includes(event)) continue;
      const target = hook.id ?? new URL(hook.url).host;
      if (!this.#notifies(record, target)) continue;
      // One id and body for every attempt (the id is the receiver's idempotency key); the timestamp is the attempt's.
      const messageId = `msg_${this.#log ? deliveryKey(org, record.approvalId, event, "webhook", target) : randomUUID().replaceAll("-", "")}`;
      const body = JSON.stringify({ type: event, timestamp: new Date().toISOString(), data: { org, ...record, ...(linkUrl !== undefined && { approvalUrl: linkUrl }) } });
      this.#deliver(org, record, "webhook", target, event, { kind: "webhook", hook: target, messageId, body });
    }
  }

  /** One attempt at sending `message`. */
  async #send(message: ApprovalDeliveryMessage): Promise<SendOutcome> {
    if (message.kind === "webhook") {
      const hook = (this.#options.webhooks ?? []).find((candidate) => (candidate.id ?? new URL(candidate.url).host) === message.hook);
      // Settings changed since it was recorded (a restart with another file): nothing to send it to.
      if (!hook) return { ok: false, error: `webhook "${message.hook}" is no longer configured`, gone: true };
      const timestamp = Math.floor(Date.now() / 1000);
      const response = await fetch(hook.url, {
        method: "POST",
        redirect: "manual",
        signal: AbortSignal.timeout(this.#retry.timeout),
        headers: { "content-type": "application/json", "user-agent": "agent-warden", "webhook-id": message.messageId, "webhook-timestamp": String(timestamp), "webhook-signature": signWebhook(hook.secret, message.messageId, timestamp, message.body) },
        body: message.body,
      });
      await response.body?.cancel().catch(() => {});
      return { ok: response.status >= 200 && response.status < 300, status: response.status, gone: response.status === 410, retryAfterMs: retryAfter(response.headers.get("retry-after")) };
    }
    if (!this.#options.slack) return { ok: false, error: "Slack is no longer configured", gone: true };
    const answer = await this.#slackCall(message.method, message.payload);
    if (answer.ok && message.method === "chat.postMessage") return { ...answer, posted: { channel: String(answer.body?.channel ?? message.payload.channel), ts: String(answer.body?.ts) } };
    return answer;
  }

  async #slackCall(method: string, payload: Record<string, unknown>): Promise<{ ok: boolean; status?: number; error?: string; retryAfterMs?: number | undefined; body?: Record<string, unknown> }> {
    const slack = this.#options.slack!;
    const response = await fetch(`${(slack.apiUrl ?? SLACK_API).replace(/\/+$/, "")}/${method}`, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(this.#retry.timeout),
      headers: { "content-type": "application/json; charset=utf-8", authorization: `Bearer ${slack.token}` },
      body: JSON.stringify(payload),
    });
    const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    // Slack answers 200 with `ok: false` for refusals (bad channel, bad token); 429 with Retry-After when rate limited.
    const ok = response.ok && body?.ok === true;
    return { ok, status: response.status, ...(!ok && { error: typeof body?.error === "string" ? body.error : `HTTP ${response.status}` }), retryAfterMs: retryAfter(response.headers.get("retry-after")), ...(body && { body }) };
  }

  get #retry() {
    const retry = this.#options.retry ?? {};
    return { attempts: retry.attempts ?? 8, initialDelay: retry.initialDelay ?? 5000, maxDelay: retry.maxDelay ?? 3_600_000, timeout: retry.timeout ?? 15_000 };
  }

  /** How long an attempt holds its lease: longer than the attempt's own time limit. */
  get #lease(): number {
    return this.#retry.timeout + 5000;
  }

  #deliver(org: string, approval: ApprovalRecord, channel: ApprovalDelivery["channel"], target: string, event: ApprovalChannelEvent, message: ApprovalDeliveryMessage, onDone?: (outcome: SendOutcome | undefined) => void): void {
    const now = Date.now();
    // With a log the id is the same in every process: a request announced twice (two replicas, a restart) is delivered once.
    const deliveryId = `dlv_${this.#log ? deliveryKey(org, approval.approvalId, event, channel, target) : randomUUID().replaceAll("-", "")}`;
    const record: ApprovalDelivery = { deliveryId, channel, target, event, org, approvalId: approval.approvalId, agentId: approval.agentId, status: "pending", attempts: 0, createdAt: now, updatedAt: now };
    if (this.#log) {
      void this.#log
        .add(record, message, now + this.#lease)
        .then((added) => (added ? this.#attempt(record, message, onDone) : onDone?.(undefined)))
        .catch((error) => {
          if (!this.#closed) this.#backend.onError?.(error);
          onDone?.(undefined);
        });
      return;
    }
    this.#deliveries.push(record);
    const keep = this.#options.keep ?? 1000;
    if (this.#deliveries.length > keep) this.#deliveries.splice(0, this.#deliveries.length - keep);
    void this.#attempt(record, message, onDone).catch((error) => this.#backend.onError?.(error));
  }

  /** Makes one attempt and records it; schedules the next (a timer, or the log's due time) or gives up. */
  async #attempt(record: ApprovalDelivery, message: ApprovalDeliveryMessage, onDone?: (outcome: SendOutcome | undefined) => void): Promise<void> {
    record.attempts++;
    record.nextAttemptAt = undefined;
    let outcome: SendOutcome;
    try {
      outcome = await this.#send(message);
    } catch (error) {
      outcome = { ok: false, error: (error as Error).message ?? String(error) };
    }
    record.updatedAt = Date.now();
    record.lastStatus = outcome.status;
    let settled = true;
    if (outcome.ok) {
      record.status = "delivered";
      record.deliveredAt = record.updatedAt;
      record.lastError = undefined;
    } else {
      record.lastError = outcome.error ?? `HTTP ${outcome.status}`;
      const { attempts, initialDelay, maxDelay } = this.#retry;
      // 410 Gone: the receiver wants no more (Standard Webhooks); otherwise retry until attempts run out.
      if (outcome.gone || record.attempts >= attempts || (this.#closed && !this.#log)) record.status = "failed";
      else {
        settled = false;
        const backoff = Math.min(maxDelay, initialDelay * 2 ** (record.attempts - 1)) * (0.8 + Math.random() * 0.4);
        const delay = Math.round(Math.min(maxDelay, Math.max(backoff, outcome.retryAfterMs ?? 0)));
        record.status = "retrying";
        record.nextAttemptAt = Date.now() + delay;
        if (!this.#log) {
          const timer = setTimeout(() => {
            this.#timers.delete(timer);
            void this.#attempt(record, message, onDone).catch((error) => this.#backend.onError?.(error));
          }, delay);
          timer.unref();
          this.#timers.add(timer);
        }
      }
    }
    if (this.#log) {
      const posted = outcome.posted && message.kind === "slack" ? { ...message, posted: outcome.posted } : undefined;
      // Closed meanwhile (the store may be gone): the lease lapses and the next process makes the attempt again.
      await this.#log.update(record, posted).catch((error) => this.#closed || this.#backend.onError?.(error));
    }
    if (settled) onDone?.(outcome.ok ? outcome : undefined);
  }

  /** Claims the log's due deliveries (retries, and those a stopped process left) and attempts each. */
  async #resumeDue(): Promise<void> {
    if (this.#polling || this.#closed || !this.#log) return;
    this.#polling = true;
    try {
      const now = Date.now();
      const due = await this.#log.claimDue(now, now + this.#lease, 20, this.#org);
      await Promise.all(due.map(({ delivery, message }) => this.#attempt(delivery, message)));
    } catch (error) {
      if (!this.#closed) this.#backend.onError?.(error);
    } finally {
      this.#polling = false;
    }
  }
}

/** A delivery's id, the same in every process: one per request, event, channel and target. */
function deliveryKey(org: string, approvalId: string, event: string, channel: string, target: string): string {
  return createHash("sha256").update(JSON.stringify([org, approvalId, event, channel, target])).digest("hex").slice(0, 32);
}

function retryAfter(header: string | null): number | undefined {
  if (header === null || !/^\d{1,6}$/.test(header.trim())) return undefined;
  return Number(header.trim()) * 1000;
}

/** The decision a Warden button carries, from Slack's `payload=` form field. */
function parseSlackAction(rawBody: string): { org: string; approvalId: string; status: "approved" | "rejected"; userId: string; userName: string | undefined } | undefined {
  try {
    const payload = JSON.parse(new URLSearchParams(rawBody).get("payload") ?? "null") as {
      type?: string;
      user?: { id?: string; username?: string; name?: string };
      actions?: { action_id?: string; value?: string }[];
    } | null;
    const action = payload?.actions?.[0];
    if (payload?.type !== "block_actions" || !action || typeof payload.user?.id !== "string") return undefined;
    const status = action.action_id === "warden_approve" ? "approved" : action.action_id === "warden_reject" ? "rejected" : undefined;
    const value = JSON.parse(action.value ?? "null") as { org?: unknown; approvalId?: unknown } | null;
    if (!status || typeof value?.org !== "string" || typeof value.approvalId !== "string") return undefined;
    return { org: value.org, approvalId: value.approvalId, status, userId: payload.user.id, userName: payload.user.username ?? payload.user.name };
  } catch {
    return undefined;
  }
}
