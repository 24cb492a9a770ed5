import { context, createTraceState, isSpanContextValid, metrics, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Counter, type Histogram, type Meter, type MeterProvider, type Span, type SpanContext, type Tracer, type TracerProvider } from "@opentelemetry/api";
import { InvalidInputError, type Warden, type WardenEvent } from "agent-warden";

/**
 * How `instrumentWarden` reports: the providers to use (the globally registered ones when absent) and
 * whether tool arguments and results go on spans.
 * @example
 * import type { WardenTelemetryOptions } from "agent-warden/otel";
 * const options: WardenTelemetryOptions = { tracerProvider: provider, captureContent: true };
 */
export interface WardenTelemetryOptions {
  /** Where spans go; the global tracer provider when absent. */
  tracerProvider?: TracerProvider | undefined;
  /** Where metrics go; the global meter provider when absent. */
  meterProvider?: MeterProvider | undefined;
  /**
   * Puts tool arguments and results on `execute_tool` spans (`gen_ai.tool.call.arguments` /
   * `gen_ai.tool.call.result`), as the ledger records them: redacted and size-capped. Off by default.
   */
  captureContent?: boolean | undefined;
  /**
   * The framework span the code running now is in, for a framework tracer that never makes its spans
   * active (the OpenAI Agents SDK's OpenTelemetry bridges: `linkAgentsSpans(provider).currentSpan`). Warden's
   * spans nest under it and a run started inside it takes its trace id. Absent: the active span alone.
   */
  frameworkSpan?: (() => Span | undefined) | undefined;
  /**
   * How many runs, and how many tool and model calls, may be open at once with a span waiting to end (10,000
   * when absent). One that never finishes here (a call paused for a reviewer and resumed in another process)
   * would be kept for ever: past the limit the oldest open one ends, marked `agent_warden.incomplete`.
   */
  maxOpenSpans?: number | undefined;
}

/** The instrumentation scope's name, as backends show it. */
const SCOPE = "agent-warden";

/** An event noted before its span started, added when it starts. */
interface PendingEvent {
  name: string;
  attributes: Attributes;
  ts: number;
}

/**
 * A span Warden starts only once it knows it needs one: it starts with every attribute known by then, in one
 * object, and its events are added as it starts. Until then `span` is undefined and what is set lands in
 * `attributes` and `events`.
 */
interface LazySpan {
  span: Span | undefined;
  name: string;
  kind: SpanKind;
  /** Where it starts: a context, or a run whose span starts first if it has not. */
  parent: Context | RunSpan;
  startTime: number;
  attributes: Attributes;
  events: PendingEvent[] | undefined;
  /** Set by a failure, applied when the span ends. */
  status: { code: SpanStatusCode; message?: string } | undefined;
}

interface RunSpan extends LazySpan {
  parent: Context;
  /** The context its children start in, once its span has started. */
  ctx: Context | undefined;
  /** Ended, or given up: a span that had not started by then never does. */
  closed: boolean;
  agentId: string | null;
  /** A run of its own for one call: its span starts only when one of its calls needs a parent of Warden's. */
  implicit: boolean;
  /** The span active where the run started (its parent), to tell it from framework spans opened inside the run. */
  startSpan: Span | undefined;
  startSpanId: string | undefined;
}

interface CallSpan extends LazySpan {
  /** The framework's own `execute_tool` span, which Warden annotates but the framework ends. */
  adopted: boolean;
  llm: boolean;
  /** What every call of this tool or model shares. */
  callee: Callee;
  /** The context active when the call was decided, and its span: a framework span opened later may be the call's. */
  calledIn: Context;
  calledUnder: Span | undefined;
  /** The record time of `tool.called`. */
  calledAt: number;
  /** The decision, until its policy matches (recorded right after the call) are known: then counted. */
  decision: string | undefined;
  approvalRequestedAt: number | undefined;
  approvalOutcome: string | undefined;
  policyId: string | undefined;
  matched: string[] | undefined;
  shadow: string[] | undefined;
  reason: string | undefined;
}

/** What every call of one tool (or model) shares, built at its first call: its span's name, its duration attributes. */
interface Callee {
  toolName: string;
  spanName: string;
  /** The duration histogram's attributes for a call that did not fail, and by `error.type` for one that did. */
  succeeded: Attributes | undefined;
  failed: Map<string, Attributes> | undefined;
}

/** How many decisions on tool calls were seen, by action and deciding policy, with the attributes they are reported under. */
type DecisionTallies = Map<string, Map<string | undefined, { attributes: Attributes; count: number }>>;
const talliesByMeter = new WeakMap<Meter, DecisionTallies>();

/**
 * The decision tallies of a meter, shared by every instrumentation on it (a client instrumented again keeps
 * adding up): `agent_warden.decisions`, a monotonic sum as a counter's, is observed from them when metrics
 * are collected, so a decision costs an increment rather than a recording with its attributes hashed.
 */
function decisionsOf(meter: Meter): DecisionTallies {
  const tallies = talliesByMeter.get(meter);
  if (tallies !== undefined) return tallies;
  const counted: DecisionTallies = new Map();
  talliesByMeter.set(meter, counted);
  const counter = meter.createObservableCounter("agent_warden.decisions", { unit: "{decision}", description: "Policy decisions on tool calls, by action and deciding policy" });
  counter.addCallback((result) => {
    for (const byPolicy of counted.values()) for (const { attributes, count } of byPolicy.values()) result.observe(count, attributes);
  });
  return counted;
}

/**
 * Shows Warden's runs, tool calls, decisions, approvals and halts in OpenTelemetry, named after the
 * GenAI semantic conventions: a span per run (`invoke_agent {agent}`), per tool call
 * (`execute_tool {tool}`) and per model call (`chat {model}`), decisions, approvals and halts as span
 * events and `agent_warden.*` attributes, and metrics. Spans join the active context, and a run started
 * inside an active span takes its trace id. Telemetry fails open: what fails here is reported through
 * `warden.reportError`, never thrown into agent code. Returns the function that switches it off.
 * @example
 * import { instrumentWarden } from "agent-warden/otel";
 * const undo = instrumentWarden(warden, { tracerProvider: provider });
 * // ... later
 * undo();
 */
export function instrumentWarden(warden: Warden, options: WardenTelemetryOptions = {}): () => void {
  const maxOpen = options.maxOpenSpans ?? 10_000;
  if (!Number.isSafeInteger(maxOpen) || maxOpen < 1) throw new InvalidInputError(`instrumentWarden: maxOpenSpans must be a positive integer, got ${String(options.maxOpenSpans)}`);
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const toolDuration: Histogram = meter.createHistogram("gen_ai.execute_tool.duration", { unit: "s", description: "Duration of tool executions governed by Warden" });
  const approvalWait: Histogram = meter.createHistogram("agent_warden.approval.wait.duration", { unit: "s", description: "Time a tool call waited for a reviewer, by outcome" });
  const halts: Counter = meter.createCounter("agent_warden.halts", { unit: "{halt}", description: "Halts issued, by scope" });
  // One decision per call, by action and policy: a tally of the meter's, reported when metrics are collected.
  const decisionTallies = decisionsOf(meter);
  const countDecision = (action: string, policyId: string | undefined) => {
    let byPolicy = decisionTallies.get(action);
    if (byPolicy === undefined) decisionTallies.set(action, (byPolicy = new Map()));
    let tally = byPolicy.get(policyId);
    if (tally === undefined) {
      // Bounded: policy ids come from the policy set, but a set replaced many times must not grow this without end
      // (past the bound the counts start again, as a reset of the sum).
      if (byPolicy.size >= 1024) byPolicy.clear();
      byPolicy.set(policyId, (tally = { attributes: policyId === undefined ? { "agent_warden.decision.action": action } : { "agent_warden.decision.action": action, "agent_warden.policy.id": policyId }, count: 0 }));
    }
    tally.count++;
  };
  const capture = options.captureContent === true;
  const runs = new Map<string, RunSpan>();
  const calls = new Map<string, CallSpan>();
  /** Framework tool spans already carrying a Warden call: a nested call gets a span of its own. */
  const adopted = new WeakSet<Span>();
  let stopped = false;

  /** The active context, with the framework's span as its span when `frameworkSpan` names one. */
  const activeContext = (): Context => {
    const active = context.active();
    if (options.frameworkSpan === undefined) return active;
    let span: Span | undefined;
    try {
      span = options.frameworkSpan();
    } catch (error) {
      warden.reportError(error, "otel");
    }
    return span === undefined ? active : trace.setSpan(active, span);
  };

  /** Starts a lazy span, if it has not started: its attributes in one object, then its events. */
  const start = (lazy: LazySpan): Span => {
    if (lazy.span !== undefined) return lazy.span;
    const parent = isRun(lazy.parent) ? runContext(lazy.parent) : lazy.parent;
    const span = tracer.startSpan(lazy.name, { kind: lazy.kind, startTime: lazy.startTime, attributes: lazy.attributes }, parent);
    lazy.span = span;
    addEvents(span, lazy);
    return span;
  };
  const isRun = (parent: Context | RunSpan): parent is RunSpan => (parent as Partial<RunSpan>).implicit !== undefined;
  /** The context a run's children start in: its span's, started now if it had not. */
  const runContext = (run: RunSpan): Context => {
    if (run.ctx === undefined && run.closed) return run.parent;
    return (run.ctx ??= trace.setSpan(run.parent, start(run)));
  };
  const addEvents = (span: Span, lazy: LazySpan) => {
    if (lazy.events === undefined) return;
    for (const { name, attributes, ts } of lazy.events) span.addEvent(name, attributes, ts);
    lazy.events = undefined;
  };
  const setAttribute = (lazy: LazySpan, key: string, value: string | number | boolean) => {
    if (lazy.span === undefined) lazy.attributes[key] = value;
    else lazy.span.setAttribute(key, value);
  };
  const addEvent = (lazy: LazySpan, name: string, attributes: Attributes, ts: number) => {
    if (lazy.span === undefined) (lazy.events ??= []).push({ name, attributes, ts });
    else lazy.span.addEvent(name, attributes, ts);
  };
  const fail = (lazy: LazySpan, errorType: string, message: string | undefined) => {
    setAttribute(lazy, "error.type", errorType);
    lazy.status = message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message };
  };
  /** Ends a span Warden owns, starting it first if it never needed to start before. */
  const finish = (lazy: LazySpan, ts: number) => {
    const span = start(lazy);
    if (lazy.status !== undefined) span.setStatus(lazy.status);
    span.end(ts);
  };

  /**
   * Where a span for `runId` goes: under a framework span opened inside the run, or under the caller's
   * span a request continued (`warden.continueTrace`: a later call of a long-lived run, such as an MCP
   * gateway session, joins its own caller's trace), else under the run's span, else the active context.
   * Returns the run itself when the span goes under it, so it starts only if its child does.
   */
  const parentFor = (runId: string | null, active: Context, current: Span | undefined = trace.getSpan(active)): Context | RunSpan => {
    const run = runId === null ? undefined : runs.get(runId);
    if (run === undefined) return active;
    if (current !== undefined && current !== run.startSpan) {
      const spanContext = current.spanContext();
      if (spanContext.spanId !== run.startSpanId && isSpanContextValid(spanContext)) {
        // The run's trace: its span's, or (not started yet) the one it will join.
        const runTrace = run.span === undefined ? trace.getSpanContext(run.parent)?.traceId : run.span.spanContext().traceId;
        if (spanContext.traceId === runTrace || spanContext.isRemote === true) return active;
      }
    }
    return run;
  };
  const contextOf = (parent: Context | RunSpan): Context => (isRun(parent) ? runContext(parent) : parent);

  const startCall = (event: WardenEvent, data: Record<string, unknown>): CallSpan => {
    const llm = data.kind === "llm";
    const toolName = String((llm ? data.model : data.toolName) ?? "unknown");
    const attributes = llm || event.toolCallId === null || event.agentId === null || event.runId === null || typeof data.actionType !== "string" || typeof data.decision !== "string" ? callAttributes(event, data, llm, toolName) : toolAttributes(event, data, toolName);
    if (data.observed === true) attributes["agent_warden.observed"] = true;
    const active = activeContext();
    const current = trace.getSpan(active);
    const where = parentFor(event.runId, active, current);
    const callee = calleeOf(llm, toolName);
    // An observed call is recorded after it ran: its span starts when it started.
    const startTime = typeof data.durationMs === "number" ? event.ts - data.durationMs : event.ts;
    const call: CallSpan = {
      span: undefined,
      name: callee.spanName,
      kind: llm ? SpanKind.CLIENT : SpanKind.INTERNAL,
      parent: where,
      startTime,
      attributes,
      events: undefined,
      status: undefined,
      adopted: false,
      llm,
      callee,
      calledIn: active,
      calledUnder: current,
      calledAt: event.ts,
      decision: undefined,
      approvalRequestedAt: undefined,
      approvalOutcome: undefined,
      policyId: undefined,
      matched: undefined,
      shadow: undefined,
      reason: undefined,
    };
    // Under a run not started yet (a run of its own for this call), the framework's span where the call was made.
    const own = llm ? undefined : frameworkToolSpan(isRun(where) ? (where.span === undefined ? active : undefined) : where, toolName);
    if (own !== undefined) {
      // The framework traced this very call: one execute_tool span per call, with Warden's facts on it.
      adopt(call, own);
      return call;
    }
    if (capture && !llm && data.input !== undefined) attributes["gen_ai.tool.call.arguments"] = json(data.input);
    return call;
  };

  /** Makes the framework's span the call's: Warden's own facts go on it (the framework names the call). */
  const adopt = (call: CallSpan, own: Span) => {
    adopted.add(own);
    call.span = own;
    call.adopted = true;
    const mine: Attributes = {};
    for (const key in call.attributes) if (key.startsWith("agent_warden.")) mine[key] = call.attributes[key];
    own.setAttributes(mine);
    addEvents(own, call);
  };

  /**
   * A call decided before the framework opened its span for it (the AI SDK's `toolApproval` decides before
   * `@ai-sdk/otel` opens `execute_tool`) and finishing inside that span: the framework's span is the call's.
   */
  const adoptLate = (call: CallSpan) => {
    if (call.span !== undefined || call.llm) return;
    const active = activeContext();
    // The context the call was decided in: its span was there then, and was not the call's.
    if (active === call.calledIn) return;
    const own = frameworkToolSpan(active, call.callee.toolName);
    if (own !== undefined && own !== call.calledUnder) adopt(call, own);
  };

  /** Counts the decision on a call, with an event when a policy decided it. */
  const settleDecision = (call: CallSpan) => {
    const action = call.decision;
    if (action === undefined) return;
    call.decision = undefined;
    countDecision(action, call.policyId);
    if (call.matched === undefined && call.policyId === undefined) return;
    const attributes: Attributes = { "agent_warden.decision.action": action };
    if (call.policyId !== undefined) attributes["agent_warden.policy.id"] = call.policyId;
    if (call.matched !== undefined) attributes["agent_warden.policy.matched"] = call.matched;
    if (call.shadow !== undefined) attributes["agent_warden.policy.shadow_matched"] = call.shadow;
    if (call.reason !== undefined) attributes["agent_warden.decision.reason"] = call.reason;
    addEvent(call, "agent_warden.decision", attributes, call.calledAt);
  };

  /** The open call an event is about, its decision settled once the events that complete it are past. */
  const callOf = (event: WardenEvent): CallSpan | undefined => {
    const call = event.toolCallId === null ? undefined : calls.get(event.toolCallId);
    if (call !== undefined && call.decision !== undefined) settleDecision(call);
    return call;
  };

  /**
   * The framework's own GenAI `execute_tool` span for a call of `toolName`, when it is the active span, still
   * open and readable (the OpenTelemetry SDK's spans are), as the AI SDK's `@ai-sdk/otel` opens around `execute`.
   */
  const frameworkToolSpan = (ctx: Context | undefined, toolName: string): Span | undefined => {
    const span = ctx === undefined ? undefined : trace.getSpan(ctx);
    if (span === undefined || adopted.has(span)) return undefined;
    const readable = span as Partial<{ attributes: Attributes; ended: boolean }>;
    const attributes = readable.attributes;
    if (attributes?.["gen_ai.operation.name"] !== "execute_tool" || readable.ended === true) return undefined;
    const name = attributes["gen_ai.tool.name"];
    return name === undefined || name === toolName ? span : undefined;
  };

  // What the calls of one tool or model share, built at its first call (bounded: names come from agent code).
  const tools = new Map<string, Callee>();
  const models = new Map<string, Callee>();
  const calleeOf = (llm: boolean, toolName: string): Callee => {
    const known = llm ? models : tools;
    let callee = known.get(toolName);
    if (callee === undefined) {
      if (known.size >= 1024) known.clear();
      callee = { toolName, spanName: llm ? `chat ${toolName}` : `execute_tool ${toolName}`, succeeded: undefined, failed: undefined };
      known.set(toolName, callee);
    }
    return callee;
  };
  const durationAttributes = (callee: Callee, errorType: string | undefined): Attributes => {
    if (errorType === undefined) return (callee.succeeded ??= { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": callee.toolName });
    const failed = (callee.failed ??= new Map());
    let attributes = failed.get(errorType);
    if (attributes === undefined) {
      if (failed.size >= 64) failed.clear();
      failed.set(errorType, (attributes = { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": callee.toolName, "error.type": errorType }));
    }
    return attributes;
  };

  const endCall = (id: string, call: CallSpan, ts: number) => {
    calls.delete(id);
    if (!call.adopted) finish(call, ts);
    else if (call.status !== undefined) call.span!.setStatus(call.status);
  };

  /** Ends what is still open, marked so: on `undo()`, or the oldest open one past `maxOpenSpans`. */
  const abandonCall = (call: CallSpan, now: number) => {
    settleDecision(call);
    setAttribute(call, "agent_warden.incomplete", true);
    // A framework's span stays the framework's to end.
    if (!call.adopted) finish(call, now);
  };
  const abandonRun = (run: RunSpan, now: number) => {
    run.closed = true;
    if (run.span === undefined) return;
    setAttribute(run, "agent_warden.incomplete", true);
    finish(run, now);
  };
  const makeRoom = <T>(open: Map<string, T>, abandon: (value: T, now: number) => void) => {
    if (open.size < maxOpen) return;
    const [id, oldest] = open.entries().next().value!;
    open.delete(id);
    abandon(oldest, Date.now());
  };

  const handlers: Partial<Record<WardenEvent["type"], (event: WardenEvent, data: Record<string, unknown>) => void>> = {
    "run.started": (event, data) => {
      if (event.runId === null) return;
      const parentRunId = typeof data.parentRunId === "string" ? data.parentRunId : null;
      const parent = contextOf(parentFor(parentRunId, activeContext()));
      const startSpan = trace.getSpan(parent);
      const agent = event.agentId ?? "agent";
      const attributes: Attributes = { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": agent, "gen_ai.agent.name": agent, "agent_warden.run.id": event.runId, "agent_warden.ledger.entry_id": event.id };
      if (typeof data.traceId === "string") attributes["agent_warden.trace.id"] = data.traceId;
      if (parentRunId !== null) attributes["agent_warden.parent_run.id"] = parentRunId;
      const implicit = data.implicit === true;
      if (implicit) attributes["agent_warden.run.implicit"] = true;
      const run: RunSpan = { span: undefined, name: `invoke_agent ${agent}`, kind: SpanKind.INTERNAL, parent, ctx: undefined, closed: false, startTime: event.ts, attributes, events: undefined, status: undefined, agentId: event.agentId, implicit, startSpan, startSpanId: startSpan?.spanContext().spanId };
      // A run the caller opened shows even with no call in it; a run of its own for one call shows only under a
      // span of Warden's: a call the framework traces as its own tool span stands for it (it carries
      // `agent_warden.run.id`), rather than an `invoke_agent` per tool call.
      if (!implicit) start(run);
      makeRoom(runs, abandonRun);
      runs.set(event.runId, run);
    },
    "run.completed": (event) => {
      const run = event.runId === null ? undefined : runs.get(event.runId);
      if (run === undefined) return;
      runs.delete(event.runId!);
      run.closed = true;
      if (run.span !== undefined) finish(run, event.ts);
    },
    "run.failed": (event, data) => {
      if (event.runId === null) return;
      let run = runs.get(event.runId);
      // A run refused at its start (a halt, an invalid token) never opened: its refusal still shows.
      if (run === undefined) {
        if (data.refused !== true) return;
        const agent = event.agentId ?? "agent";
        const parent = contextOf(parentFor(typeof data.parentRunId === "string" ? data.parentRunId : null, activeContext()));
        run = { span: undefined, name: `invoke_agent ${agent}`, kind: SpanKind.INTERNAL, parent, ctx: undefined, closed: false, startTime: event.ts, attributes: { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": agent, "gen_ai.agent.name": agent, "agent_warden.run.id": event.runId, "agent_warden.run.refused": true, "agent_warden.ledger.entry_id": event.id }, events: undefined, status: undefined, agentId: event.agentId, implicit: false, startSpan: undefined, startSpanId: undefined };
      }
      runs.delete(event.runId);
      run.closed = true;
      if (run.implicit && run.span === undefined) return;
      const error = record(data.error);
      fail(run, errorType(error), typeof error.message === "string" ? error.message : undefined);
      finish(run, event.ts);
    },
    "tool.called": (event, data) => {
      if (event.toolCallId === null) return;
      const call = startCall(event, data);
      makeRoom(calls, abandonCall);
      calls.set(event.toolCallId, call);
      // Counted once its policy matches, the next event on the same call, have been seen.
      if (!call.llm && data.observed !== true && typeof data.decision === "string") call.decision = data.decision;
    },
    "policy.matched": (event, data) => {
      const call = event.toolCallId === null ? undefined : calls.get(event.toolCallId);
      if (call === undefined) return;
      const matches = Array.isArray(data.matches) ? (data.matches as Array<Record<string, unknown>>) : [];
      if (typeof data.policyId === "string") {
        call.policyId = data.policyId;
        setAttribute(call, "agent_warden.policy.id", data.policyId);
      }
      const matched: string[] = [];
      let shadow: string[] | undefined;
      for (const match of matches) {
        if (match.mode === "shadow") (shadow ??= []).push(String(match.policyId));
        else matched.push(String(match.policyId));
        if (match.policyId === call.policyId && typeof match.reason === "string") call.reason = match.reason;
      }
      call.matched = matched;
      call.shadow = shadow;
      settleDecision(call);
    },
    "risk.detected": (event, data) => {
      const call = callOf(event);
      if (call === undefined) return;
      addEvent(call, "agent_warden.risk", { "agent_warden.risk.severity": String(data.severity ?? "medium") }, event.ts);
    },
    "approval.requested": (event, data) => {
      const call = callOf(event);
      if (call === undefined) return;
      call.approvalRequestedAt = event.ts;
      const attributes: Attributes = { "agent_warden.approval.id": String(data.approvalId) };
      if (typeof data.expiresAt === "number") attributes["agent_warden.approval.expires_at"] = new Date(data.expiresAt).toISOString();
      setAttribute(call, "agent_warden.approval.id", String(data.approvalId));
      addEvent(call, "agent_warden.approval.requested", attributes, event.ts);
    },
    "approval.approved": (event, data) => settleApproval(event, data, "approved"),
    "approval.rejected": (event, data) => settleApproval(event, data, "rejected"),
    "tool.blocked": (event, data) => {
      let call = callOf(event);
      // Refused before it was recorded as called (a halt with no run open, a token budget): a span of its own.
      const id = event.toolCallId ?? event.id;
      if (call === undefined) {
        call = startCall(event, { ...data, decision: "block" });
        if (!call.llm) countDecision("block", typeof data.policyId === "string" ? data.policyId : undefined);
      }
      const reason = typeof data.reason === "string" ? data.reason : undefined;
      if (typeof data.policyId === "string") setAttribute(call, "agent_warden.policy.id", data.policyId);
      let type = "blocked";
      if (data.halted === true) {
        type = "halted";
        addEvent(call, "agent_warden.halt", reason === undefined ? {} : { "agent_warden.halt.reason": reason }, event.ts);
      } else if (data.status === "rejected") {
        // Refused after waiting for a reviewer: rejected, expired, cancelled (a halt) or given up.
        if (call.approvalOutcome === undefined && call.approvalRequestedAt !== undefined) {
          call.approvalOutcome = reason === "expired" || reason === "aborted" ? reason : "cancelled";
          approvalWait.record((event.ts - call.approvalRequestedAt) / 1000, { "agent_warden.approval.outcome": call.approvalOutcome });
          addEvent(call, `agent_warden.approval.${call.approvalOutcome}`, {}, event.ts);
        }
        type = `approval_${call.approvalOutcome ?? "rejected"}`;
      }
      fail(call, type, reason);
      endCall(id, call, event.ts);
    },
    "tool.completed": (event, data) => {
      const call = callOf(event);
      if (call === undefined) return;
      adoptLate(call);
      const failed = data.status === "failed";
      let type: string | undefined;
      if (failed) {
        const error = record(data.error);
        type = errorType(error);
        if (type === "halted") addEvent(call, "agent_warden.halt", typeof error.message === "string" ? { "agent_warden.halt.reason": error.message } : {}, event.ts);
        fail(call, type, typeof error.message === "string" ? error.message : undefined);
      }
      if (call.llm) {
        const usage = record(data.usage);
        if (typeof usage.inputTokens === "number") setAttribute(call, "gen_ai.usage.input_tokens", usage.inputTokens);
        if (typeof usage.outputTokens === "number") setAttribute(call, "gen_ai.usage.output_tokens", usage.outputTokens);
        if (typeof usage.model === "string") setAttribute(call, "gen_ai.response.model", usage.model);
      } else {
        if (capture && !failed && !call.adopted && data.output !== undefined) setAttribute(call, "gen_ai.tool.call.result", json(data.output));
        const seconds = (typeof data.durationMs === "number" ? data.durationMs : event.ts - call.calledAt) / 1000;
        toolDuration.record(seconds, durationAttributes(call.callee, type));
      }
      endCall(event.toolCallId!, call, event.ts);
    },
    "agent.halted": (event, data) => {
      const scope = String(data.scope ?? "unknown");
      halts.add(1, { "agent_warden.halt.scope": scope });
      const attributes: Attributes = { "agent_warden.halt.id": String(data.haltId), "agent_warden.halt.scope": scope };
      if (typeof data.reason === "string") attributes["agent_warden.halt.reason"] = data.reason;
      // The runs it stops, where that can be told from the halt alone (a group's members are the core's to know).
      for (const [runId, run] of runs) {
        const hit = scope === "organization" || (scope === "agent" && run.agentId === data.target) || (scope === "run" && runId === data.target);
        if (hit) addEvent(run, "agent_warden.halt", attributes, event.ts);
      }
    },
  };

  function settleApproval(event: WardenEvent, data: Record<string, unknown>, answer: "approved" | "rejected"): void {
    const call = callOf(event);
    if (call === undefined) return;
    // An expiry or a cancellation (a halt, a closed client) is recorded as a rejection with its own status.
    const outcome = answer === "rejected" && (data.status === "expired" || data.status === "cancelled") ? data.status : answer;
    call.approvalOutcome = outcome;
    const attributes: Attributes = { "agent_warden.approval.id": String(data.approvalId), "agent_warden.approval.outcome": outcome };
    if (typeof data.reviewer === "string") attributes["agent_warden.approval.reviewer"] = data.reviewer;
    if (call.approvalRequestedAt !== undefined) {
      const waited = event.ts - call.approvalRequestedAt;
      attributes["agent_warden.approval.wait_ms"] = waited;
      approvalWait.record(waited / 1000, { "agent_warden.approval.outcome": outcome });
    }
    setAttribute(call, "agent_warden.approval.outcome", outcome);
    if (typeof data.reviewer === "string") setAttribute(call, "agent_warden.approval.reviewer", data.reviewer);
    addEvent(call, `agent_warden.approval.${outcome}`, attributes, event.ts);
  }

  const unsubscribe = warden.on("*", (event) => {
    if (stopped) return;
    const handler = handlers[event.type];
    if (handler !== undefined) handler(event, event.data);
  });
  const removeTracing = warden.useTracing({
    // A run started inside an active span shares its trace id, so the ledger and the backend agree.
    traceId: () => {
      const span = trace.getSpanContext(activeContext());
      return span && isSpanContextValid(span) ? span.traceId : undefined;
    },
    // A call sent onward (the governed fetch) continues from its execute_tool span, which starts now if it had not.
    headers: (toolCallId) => {
      const call = calls.get(toolCallId);
      if (call === undefined || stopped) return undefined;
      const span = start(call);
      const carrier: Record<string, string> = {};
      propagation.inject(trace.setSpan(context.active(), span), carrier);
      return Object.keys(carrier).length > 0 ? carrier : w3cHeaders(span.spanContext());
    },
    // A request that arrived with a caller's trace context (an MCP call's `_meta`) continues that trace.
    continueFrom: (carrier, fn) => {
      if (stopped) return fn();
      const active = context.active();
      // The registered propagator first (W3C, B3…); the API's default reads nothing, so W3C by hand then.
      const extracted = propagation.extract(ROOT_CONTEXT, carrier);
      if (trace.getSpanContext(extracted) !== undefined) return context.with(propagation.extract(active, carrier), fn);
      const remote = w3cContext(carrier);
      return remote === undefined ? fn() : context.with(trace.setSpanContext(active, remote), fn);
    },
  });

  return () => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    removeTracing();
    // What is still open ends now, marked so, rather than never reaching the exporter.
    const now = Date.now();
    for (const call of calls.values()) abandonCall(call, now);
    for (const run of runs.values()) abandonRun(run, now);
    calls.clear();
    runs.clear();
  };
}

/** A governed tool call's span attributes, the common case (every id known) in one literal. */
function toolAttributes(event: WardenEvent, data: Record<string, unknown>, toolName: string): Attributes {
  return {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": toolName,
    "gen_ai.tool.type": "function",
    // The framework's own id for the call (a model's tool call id, an MCP request id) when it gave one.
    "gen_ai.tool.call.id": typeof data.externalId === "string" ? data.externalId : event.toolCallId!,
    "agent_warden.tool_call.id": event.toolCallId!,
    "gen_ai.agent.id": event.agentId!,
    "agent_warden.run.id": event.runId!,
    "agent_warden.ledger.entry_id": event.id,
    "agent_warden.action_type": data.actionType as string,
    "agent_warden.decision.action": data.decision as string,
  };
}

/** A call's span attributes, any call: a model call, or a tool call missing some of its ids. */
function callAttributes(event: WardenEvent, data: Record<string, unknown>, llm: boolean, toolName: string): Attributes {
  const attributes: Attributes = llm
    ? { "gen_ai.operation.name": "chat", "gen_ai.request.model": toolName }
    : { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": toolName, "gen_ai.tool.type": "function" };
  if (event.toolCallId !== null) {
    if (!llm) attributes["gen_ai.tool.call.id"] = typeof data.externalId === "string" ? data.externalId : event.toolCallId;
    attributes["agent_warden.tool_call.id"] = event.toolCallId;
  }
  if (event.agentId !== null) attributes["gen_ai.agent.id"] = event.agentId;
  if (event.runId !== null) attributes["agent_warden.run.id"] = event.runId;
  attributes["agent_warden.ledger.entry_id"] = event.id;
  if (typeof data.actionType === "string") attributes["agent_warden.action_type"] = data.actionType;
  if (typeof data.decision === "string") attributes["agent_warden.decision.action"] = data.decision;
  return attributes;
}

/** W3C Trace Context headers, for when no propagator is registered (the API's default injects nothing). */
function w3cHeaders(span: SpanContext): Record<string, string> | undefined {
  if (!isSpanContextValid(span)) return undefined;
  const headers: Record<string, string> = { traceparent: `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, "0")}` };
  const state = span.traceState?.serialize();
  if (state) headers.tracestate = state;
  return headers;
}

/** The span context a W3C `traceparent` (and `tracestate`) names, or undefined when it names none. */
function w3cContext(carrier: Record<string, string>): SpanContext | undefined {
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/.exec(carrier.traceparent?.trim() ?? "");
  // Version ff is invalid; a later version may add fields after the four read here.
  if (match === null || match[1] === "ff" || (match[1] === "00" && carrier.traceparent!.trim().length !== 55)) return undefined;
  const span: SpanContext = { traceId: match[2]!, spanId: match[3]!, traceFlags: Number.parseInt(match[4]!, 16) & 0x01, isRemote: true };
  if (typeof carrier.tracestate === "string" && carrier.tracestate.length > 0) span.traceState = createTraceState(carrier.tracestate);
  return isSpanContextValid(span) ? span : undefined;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

/** A low-cardinality `error.type`: Warden's error code, else the error's name. */
function errorType(error: Record<string, unknown>): string {
  if (typeof error.code === "string") return error.code;
  if (typeof error.name === "string" && error.name !== "Error") return error.name;
  return "_OTHER";
}

function json(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return "[unserializable]";
  }
}
