// node:http and node:https are fetched when a stream opens: importing them statically evaluates every
// export, which loads Node's bundled fetch implementation into every process that imports the package.
type RequestOptions = import("node:http").RequestOptions;
const httpRequest = (url: URL, options: RequestOptions) => process.getBuiltinModule("node:http").request(url, options);
const httpsRequest = (url: URL, options: RequestOptions) => process.getBuiltinModule("node:https").request(url, options);
import { RemoteError } from "../errors.js";
import { isRetryableStatus, parseRetryAfter } from "./http.js";

/** One server-sent event. */
export interface StreamEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** Incremental parser of `text/event-stream` (the WHATWG rules this client needs). */
export class EventStreamParser {
  #buffer = "";
  #afterCr = false;
  #data: string[] = [];
  #event = "";
  #id: string | undefined;
  readonly #onEvent: (event: StreamEvent) => void;

  constructor(onEvent: (event: StreamEvent) => void) {
    this.#onEvent = onEvent;
  }

  push(chunk: string): void {
    // A chunk that ended in \r may have split a \r\n: its \n is not a second line end.
    if (this.#afterCr && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.#afterCr = false;
    this.#buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      if (match === null) break;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      if (match[0] === "\r" && this.#buffer === "") this.#afterCr = true;
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === "") {
      if (this.#data.length > 0) this.#onEvent({ id: this.#id, event: this.#event || "message", data: this.#data.join("\n") });
      this.#data = [];
      this.#event = "";
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#id = value;
  }
}

/**
 * Follows an event stream until it ends, fails or `signal` aborts. Uses `node:http` so the socket
 * can be unref'd: following the stream never keeps the agent's process alive.
 * `onActivity` fires on every chunk, heartbeats included.
 */
export function followEventStream(options: {
  url: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  onOpen: () => void;
  onEvent: (event: StreamEvent) => void;
  onActivity: () => void;
}): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = new URL(options.url);
    const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, { method: "GET", headers: { accept: "text/event-stream", ...options.headers }, signal: options.signal });
    request.on("socket", (socket) => socket.unref());
    request.on("error", (cause) => {
      if (options.signal.aborted) resolve();
      else reject(new RemoteError(`[GET] "${options.url}": unreachable (${(cause as NodeJS.ErrnoException).code ?? cause.message})`, { retryable: true, cause }));
    });
    request.on("response", (response) => {
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        response.resume();
        reject(new RemoteError(`[GET] "${options.url}": ${status}`, { status, retryable: isRetryableStatus(status), retryAfterMs: parseRetryAfter((response.headers["retry-after"] as string | undefined) ?? null) }));
        return;
      }
      options.onOpen();
      const parser = new EventStreamParser(options.onEvent);
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        options.onActivity();
        parser.push(chunk);
      });
      response.on("end", () => resolve());
      response.on("error", (cause) => (options.signal.aborted ? resolve() : reject(new RemoteError(`[GET] "${options.url}": stream broken (${cause.message})`, { retryable: true, cause }))));
      response.on("close", () => resolve());
    });
    request.end();
  });
}
