import type { Response } from "express";
import type { Changes, StreamMessage, StreamMessageType } from "./store.js";

/** What a subscriber can ask for; agents get the first three. */
export type Topic = "approvals" | "halts" | "policies" | "runs";
export const AGENT_TOPICS: readonly Topic[] = ["approvals", "halts", "policies"];
export const ALL_TOPICS: readonly Topic[] = ["approvals", "halts", "policies", "runs"];

const topicOf: Record<StreamMessageType, Topic> = {
  "approval.requested": "approvals",
  "approval.resolved": "approvals",
  "halt.created": "halts",
  "halt.lifted": "halts",
  // Revocations travel with halts: both take authority away, and every agent follows them.
  "token.revoked": "halts",
  "policy.updated": "policies",
  "run.updated": "runs",
  "tool_call.updated": "runs",
};

/** A subscriber that falls this far behind is dropped; it reconnects with `Last-Event-ID` and misses nothing durable. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** The same bound for messages held back while a slow replay is written. */
const MAX_HELD_MESSAGES = 10_000;

/** One open event stream (`GET /v1/stream`): whose it is, what it asked for, what it has been sent. */
export interface Subscriber {
  org: string;
  /** The key it authenticated with: revoking the key ends the stream. */
  keyId: string;
  /** Set when the key is bound to one agent: it hears of that agent's approval requests only. */
  agentId?: string | undefined;
  topics: ReadonlySet<Topic>;
  response: Response;
  /** Messages published while the replay was being written; delivered after it. */
  buffer: StreamMessage[] | undefined;
  lastSeq: number;
  /** When the console session it rides on ends; the stream ends with it. */
  until: number | undefined;
}

/** Renders one server-sent event. JSON has no raw newlines, so `data` is one line. */
export function formatEvent(type: string, data: unknown, id?: number): string {
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Fans stream messages out to the connected subscribers of their organization. Durable messages
 * are written once per subscriber, in sequence order; a heartbeat comment keeps idle connections
 * (and the clients' staleness clocks) alive.
 */
export class StreamHub {
  readonly #byOrg = new Map<string, Set<Subscriber>>();
  readonly #heartbeat: NodeJS.Timeout;

  constructor(heartbeatMs: number) {
    this.#heartbeat = setInterval(() => this.#beat(), heartbeatMs);
    this.#heartbeat.unref();
  }

  /** Open streams of `org`. */
  count(org: string): number {
    return this.#byOrg.get(org)?.size ?? 0;
  }

  /** Open streams of one key. */
  countKey(org: string, keyId: string): number {
    let n = 0;
    for (const subscriber of this.#byOrg.get(org) ?? []) if (subscriber.keyId === keyId) n++;
    return n;
  }

  /** Organizations with open streams. */
  orgs(): string[] {
    return [...this.#byOrg.keys()];
  }

  add(subscriber: Subscriber): void {
    let set = this.#byOrg.get(subscriber.org);
    if (set === undefined) this.#byOrg.set(subscriber.org, (set = new Set()));
    set.add(subscriber);
  }

  remove(subscriber: Subscriber): void {
    const set = this.#byOrg.get(subscriber.org);
    set?.delete(subscriber);
    if (set?.size === 0) this.#byOrg.delete(subscriber.org);
  }

  /** Ends the streams of `org` that `which` picks. */
  drop(org: string, which: (subscriber: Subscriber) => boolean): void {
    for (const subscriber of this.#byOrg.get(org) ?? []) if (which(subscriber)) this.#end(subscriber);
  }

  publish(changes: Changes): void {
    const set = this.#byOrg.get(changes.org);
    if (set === undefined || changes.messages.length === 0) return;
    for (const subscriber of set) {
      if (subscriber.buffer === undefined) {
        for (const message of changes.messages) this.deliver(subscriber, message);
      } else {
        subscriber.buffer.push(...changes.messages);
        if (subscriber.buffer.length > MAX_HELD_MESSAGES) this.#end(subscriber);
      }
    }
  }

  /** Writes one message unless the subscriber has it already or did not ask for its topic. */
  deliver(subscriber: Subscriber, message: StreamMessage): void {
    if (!subscriber.topics.has(topicOf[message.type])) return;
    if (subscriber.agentId !== undefined && topicOf[message.type] === "approvals" && (message.data as { agentId?: unknown } | null)?.agentId !== subscriber.agentId) return;
    if (message.seq !== undefined) {
      if (message.seq <= subscriber.lastSeq) return;
      subscriber.lastSeq = message.seq;
    }
    this.#write(subscriber, formatEvent(message.type, message.data, message.seq));
  }

  /** Delivers what was buffered during the replay, then delivers directly. */
  release(subscriber: Subscriber): void {
    const buffered = subscriber.buffer ?? [];
    subscriber.buffer = undefined;
    for (const message of buffered) this.deliver(subscriber, message);
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const set of this.#byOrg.values()) for (const subscriber of set) subscriber.response.end();
    this.#byOrg.clear();
  }

  #write(subscriber: Subscriber, text: string): void {
    const response = subscriber.response;
    if (response.destroyed || response.writableEnded) return;
    response.write(text);
    if (response.writableLength > MAX_BUFFERED_BYTES) this.#end(subscriber);
  }

  #end(subscriber: Subscriber): void {
    this.remove(subscriber);
    subscriber.response.destroy();
  }

  #beat(): void {
    const now = Date.now();
    const text = `: ${now}\n\n`;
    for (const set of this.#byOrg.values()) {
      for (const subscriber of set) {
        if (subscriber.until !== undefined && now >= subscriber.until) this.#end(subscriber);
        else this.#write(subscriber, text);
      }
    }
  }
}
