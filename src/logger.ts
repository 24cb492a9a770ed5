/**
 * Where Warden's notices go: a call waiting for a reviewer, a client with no policy. Anything with
 * `warn` (and optionally `info`) fits, such as `console` or a pino logger. Default: one line on stderr.
 * @example
 * import { Warden, type WardenLogger } from "agent-warden";
 * const logger: WardenLogger = { info: (message) => log.info(message), warn: (message) => log.warn(message) };
 * const warden = new Warden({ agentId: "billing-agent", policies: "./warden.yaml", logger });
 */
export interface WardenLogger {
  /** Something to act on: no policy loaded, everything allowed. */
  warn(message: string): void;
  /** Something to know: a call waits for a reviewer. `warn` when absent. */
  info?(message: string): void;
}

const PREFIX = "[warden] ";

/** @internal Messages carry no prefix; the default logger adds one, once. */
export const stderrLogger: WardenLogger = {
  warn: (message) => process.stderr.write(`${message.startsWith(PREFIX) ? message : PREFIX + message}\n`),
};

const saidOnStderr = new Set<string>();

/** @internal Says each notice once per key, never throwing into agent code. */
export class Notices {
  readonly #logger: WardenLogger;
  readonly #said: Set<string>;

  constructor(logger: WardenLogger | undefined) {
    this.#logger = logger ?? stderrLogger;
    // stderr is the process's: what one client said there, the next one need not repeat.
    this.#said = logger === undefined ? saidOnStderr : new Set();
  }

  get custom(): boolean {
    return this.#logger !== stderrLogger;
  }

  info(key: string, message: string): void {
    this.#say(key, message, this.#logger.info ?? this.#logger.warn);
  }

  warn(key: string, message: string): void {
    this.#say(key, message, this.#logger.warn);
  }

  #say(key: string, message: string, write: (message: string) => void): void {
    if (this.#said.has(key)) return;
    // Bounded: a long-lived client waiting on many approvals never grows this without limit.
    if (this.#said.size >= 1024) this.#said.clear();
    this.#said.add(key);
    try {
      write.call(this.#logger, message);
    } catch {
      // A logger that throws has nowhere left to report to.
    }
  }
}
