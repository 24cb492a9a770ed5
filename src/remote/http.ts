import { RemoteError } from "../errors.js";

/** Statuses worth retrying: throttled, or a gateway that could not reach the server. */
const RETRYABLE = new Set([429, 502, 503, 504]);
const MAX_RETRY_AFTER = 60_000;

/** True for the statuses a request (or the stream) is retried after; anything else is final. */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE.has(status);
}

export interface RemoteResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. Capped at a minute. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value.trim());
  const ms = Number.isFinite(seconds) && value.trim() !== "" ? seconds * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER, Math.max(0, ms));
}

/** Statuses of a replica (or the gateway in front of it) that cannot serve now: another replica may. */
const FAILS_OVER = new Set([502, 503, 504]);

/**
 * JSON over HTTP to the control plane; every failure is a `RemoteError` saying whether to retry.
 * Given several URLs (replicas of one control plane), a request that cannot reach the current one,
 * or that it answers 502/503/504, is sent to the next at once; the one that answered stays current.
 * A 4xx is an answer, never a reason to switch. Resending is safe: the server stores each event,
 * approval request and halt once by its id.
 */
export class RemoteHttp {
  readonly #urls: readonly string[];
  #current = 0;
  readonly #apiKey: string;
  readonly #timeoutMs: number;

  constructor(baseUrl: string | readonly string[], apiKey: string, timeoutMs: number) {
    this.#urls = (typeof baseUrl === "string" ? [baseUrl] : baseUrl).map((url) => url.replace(/\/+$/, ""));
    this.#apiKey = apiKey;
    this.#timeoutMs = timeoutMs;
  }

  /** The URL requests go to now. */
  get baseUrl(): string {
    return this.#urls[this.#current]!;
  }

  /** Every URL, in the order given. */
  get urls(): readonly string[] {
    return this.#urls;
  }

  /** `failed` did not serve: the next URL becomes current (unless another failure moved on already). */
  failover(failed: string): void {
    if (this.#urls.length > 1 && this.baseUrl === failed) this.#current = (this.#current + 1) % this.#urls.length;
  }

  get authorization(): string {
    return `Bearer ${this.#apiKey}`;
  }

  /**
   * Sends a request; 2xx and 304 resolve, anything else rejects with `RemoteError`. `rawBody` is a
   * body already serialized as JSON (sent as it is).
   */
  async request<T>(method: string, path: string, options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}): Promise<RemoteResponse<T>> {
    for (let tried = 1; ; tried++) {
      const base = this.baseUrl;
      try {
        return await this.#requestOnce<T>(base, method, path, options);
      } catch (error) {
        const unavailable = error instanceof RemoteError && error.retryable && (error.status === undefined || FAILS_OVER.has(error.status));
        if (!unavailable || this.#urls.length === 1) throw error;
        this.failover(base);
        if (tried >= this.#urls.length) throw error;
      }
    }
  }

  async #requestOnce<T>(base: string, method: string, path: string, options: { body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<RemoteResponse<T>> {
    const url = `${base}${path}`;
    const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { authorization: this.authorization, accept: "application/json", ...(body !== undefined && { "content-type": "application/json" }), ...options.headers },
        ...(body !== undefined && { body }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (cause) {
      throw new RemoteError(`[${method}] "${url}": ${describeFailure(cause)}`, { retryable: true, cause });
    }
    const text = await response.text().catch(() => "");
    if (response.status === 304 || (response.status >= 200 && response.status < 300)) {
      let body: unknown;
      try {
        body = text === "" ? undefined : JSON.parse(text);
      } catch (cause) {
        throw new RemoteError(`[${method}] "${url}": the answer is not JSON`, { status: response.status, retryable: false, cause });
      }
      return { status: response.status, headers: response.headers, body: body as T };
    }
    let detail = response.statusText;
    try {
      const parsed = JSON.parse(text) as { error?: { message?: string } };
      if (parsed.error?.message) detail = parsed.error.message;
    } catch {
      // Not a Warden error body.
    }
    throw new RemoteError(`[${method}] "${url}": ${response.status} ${detail}`, {
      status: response.status,
      retryable: isRetryableStatus(response.status),
      retryAfterMs: parseRetryAfter(response.headers.get("retry-after")),
    });
  }
}

function describeFailure(cause: unknown): string {
  if (cause instanceof Error && cause.name === "TimeoutError") return "no answer in time";
  const code = (cause as { cause?: { code?: string } })?.cause?.code;
  return code ? `unreachable (${code})` : `unreachable (${cause instanceof Error ? cause.message : String(cause)})`;
}
