import type { ToolCallInit, ToolOptions } from "./inputs.js";
import { scopeStorage, type ActiveRun } from "./scope.js";
import type { ToolContext } from "./tool-call.js";

/**  What a run scope asks of the client: the governed call, steps, the halt signal. */
export interface RunHost {
  readonly signal: AbortSignal;
  execute<T>(init: ToolCallInit, fn: (context: ToolContext) => T | Promise<T>): Promise<T>;
  step<T>(runId: string, name: string, fn: () => T | Promise<T>, metadata?: Record<string, unknown>): Promise<T>;
}

/**
 * A run in progress, handed to `warden.run(…, async (run) => …)`: the calls made through it are
 * governed and recorded as that run's.
 * @example
 * import type { RunScope } from "agent-warden";
 * const refund = (run: RunScope, orderId: number) => run.tool("refund", { orderId }, () => payments.refund(orderId));
 * await warden.run({ task: "refund order 1042" }, (run) => refund(run, 1042));
 */
export class RunScope {
  readonly runId: string;
  readonly traceId: string;
  readonly #warden: RunHost;

  /** @internal */
  constructor(warden: RunHost, run: ActiveRun) {
    this.#warden = warden;
    this.runId = run.runId;
    this.traceId = run.traceId;
  }

  /** Aborts when this run (or its agent, group, organization) is halted. */
  get signal(): AbortSignal {
    return this.#warden.signal;
  }

  /**
   * Checks, waits for approval if needed, runs `fn`, records the result. A block throws `ToolBlockedError`.
   * @example
   * const order = await run.tool("read_order", { id: 1042 }, () => db.orders.get(1042));
   */
  tool<T>(name: string, args: unknown, fn: (context: ToolContext) => T | Promise<T>, options: ToolOptions = {}): Promise<T> {
    return this.#warden.execute({ ...options, tool: name, args, runId: this.runId, stepId: options.stepId ?? scopeStorage.getStore()?.stepId }, fn);
  }

  /** Groups the calls made inside `fn` under a step. */
  step<T>(name: string, fn: () => T | Promise<T>, metadata?: Record<string, unknown>): Promise<T> {
    return this.#warden.step(this.runId, name, fn, metadata);
  }
}

