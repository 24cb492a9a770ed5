import { context, createTraceState, isSpanContextValid, metrics, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Counter, type Histogram, type MeterProvider, type Span, type SpanContext, type Tracer, type TracerProvider } from "@opentelemetry/api";
import type { Warden, WardenEvent } from "agent-warden";

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
}

/** The instrumentation scope's name, as backends show it. */
const SCOPE = "agent-warden";

interface RunSpan {
  span: Span;
  ctx: Context;
  agentId: string | null;
  /** The span active where the run started (its parent), to tell it from framework spans opened inside the run. */
  startSpanId: string | undefined;
}

interface CallSpan {
  span: Span;
  /** The framework's own `execute_tool` span, which Warden annotates but the framework ends. */
  adopted?: true | undefined;
  kind: "tool" | "llm";
  toolName: string;
  startedAt: number;
  approvalRequestedAt?: number | undefined;
  approvalOutcome?: string | undefined;
  policyId?: string | undefined;
  matched?: string[] | undefined;
  shadow?: string[] | undefined;
  reason?: string | undefined;
}

interface Instruments {
  toolDuration: Histogram;
  decisions: Counter;
  approvalWait: Histogram;
  halts: Counter;
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
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const instruments: Instruments = {
    toolDuration: meter.createHistogram("gen_ai.execute_tool.duration", { unit: "s", description: "Duration of tool executions governed by Warden" }),
    decisions: meter.createCounter("agent_warden.decisions", { unit: "{decision}", description: "Policy decisions on tool calls, by action and deciding policy" }),
    approvalWait: meter.createHistogram("agent_warden.approval.wait.duration", { unit: "s", description: "Time a tool call waited for a reviewer, by outcome" }),
    halts: meter.createCounter("agent_warden.halts", { unit: "{halt}", description: "Halts issued, by scope" }),
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

  /**
   * Where a span for `runId` goes: under a framework span opened inside the run, or under the caller's
   * span a request continued (`warden.continueTrace`: a later call of a long-lived run, such as an MCP
   * gateway session, joins its own caller's trace), else under the run's span, else the active context.
   */
  const parentFor = (runId: string | null): Context => {
    const active = activeContext();
    const run = runId === null ? undefined : runs.get(runId);
    if (run === undefined) return active;
    const current = trace.getSpanContext(active);
    if (current && isSpanContextValid(current) && current.spanId !== run.startSpanId) {
      if (current.traceId === run.span.spanContext().traceId || current.isRemote === true) return active;
    }
    return run.ctx;
  };

  const startCall = (event: WardenEvent, data: Record<string, unknown>): CallSpan => {
    const llm = data.kind === "llm";
    const toolName = String((llm ? data.model : data.toolName) ?? "unknown");
    const attributes: Attributes = llm
      ? { "gen_ai.operation.name": "chat", "gen_ai.request.model": toolName }
      : { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": toolName, "gen_ai.tool.type": "function" };
    if (event.toolCallId !== null) {
      if (!llm) attributes["gen_ai.tool.call.id"] = event.toolCallId;
      attributes["agent_warden.tool_call.id"] = event.toolCallId;
    }
    if (event.agentId !== null) attributes["gen_ai.agent.id"] = event.agentId;
    if (event.runId !== null) attributes["agent_warden.run.id"] = event.runId;
    attributes["agent_warden.ledger.entry_id"] = event.id;
    if (typeof data.actionType === "string") attributes["agent_warden.action_type"] = data.actionType;
    if (typeof data.decision === "string") attributes["agent_warden.decision.action"] = data.decision;
    if (data.observed === true) attributes["agent_warden.observed"] = true;
    const parent = parentFor(event.runId);
    const own = llm ? undefined : frameworkToolSpan(parent, toolName);
    if (own !== undefined) {
      // The framework traced this very call: one execute_tool span per call, with Warden's facts on it.
      adopted.add(own);
      own.setAttributes(Object.fromEntries(Object.entries(attributes).filter(([key]) => key.startsWith("agent_warden."))));
      return { span: own, adopted: true, kind: "tool", toolName, startedAt: event.ts };
    }
    if (capture && !llm && data.input !== undefined) attributes["gen_ai.tool.call.arguments"] = json(data.input);
    // An observed call is recorded after it ran: its span starts when it started.
    const durationMs = typeof data.durationMs === "number" ? data.durationMs : 0;
    const span = tracer.startSpan(llm ? `chat ${toolName}` : `execute_tool ${toolName}`, { kind: llm ? SpanKind.CLIENT : SpanKind.INTERNAL, startTime: event.ts - durationMs, attributes }, parent);
    return { span, kind: llm ? "llm" : "tool", toolName, startedAt: event.ts };
  };

  /** The decision on a call, once its policy matches (recorded right after the call) are known. */
  const settleDecision = (call: CallSpan, action: string) => {
    if (stopped) return;
    const attributes: Attributes = { "agent_warden.decision.action": action };
    if (call.policyId !== undefined) attributes["agent_warden.policy.id"] = call.policyId;
    instruments.decisions.add(1, attributes);
    if (call.matched !== undefined) attributes["agent_warden.policy.matched"] = call.matched;
    if (call.shadow !== undefined) attributes["agent_warden.policy.shadow_matched"] = call.shadow;
    if (call.reason !== undefined) attributes["agent_warden.decision.reason"] = call.reason;
    call.span.addEvent("agent_warden.decision", attributes);
  };

  /**
   * The framework's own GenAI `execute_tool` span for a call of `toolName`, when it is the active span, still
   * open and readable (the OpenTelemetry SDK's spans are), as the AI SDK's `@ai-sdk/otel` opens around `execute`.
   */
  const frameworkToolSpan = (ctx: Context, toolName: string | undefined): Span | undefined => {
    const span = trace.getSpan(ctx);
    if (span === undefined || adopted.has(span)) return undefined;
    const readable = span as Partial<{ attributes: Attributes; ended: boolean }>;
    const attributes = readable.attributes;
    if (attributes?.["gen_ai.operation.name"] !== "execute_tool" || readable.ended === true) return undefined;
    const name = attributes["gen_ai.tool.name"];
    return toolName === undefined || name === undefined || name === toolName ? span : undefined;
  };

  // A tool's duration attributes are the same on every call: built once per tool and outcome (bounded).
  const durations = new Map<string, Attributes>();
  const durationAttributes = (toolName: string, errorType: string | undefined): Attributes => {
    const key = errorType === undefined ? toolName : `${toolName}\u0000${errorType}`;
    let attributes = durations.get(key);
    if (attributes === undefined) {
      if (durations.size >= 1024) durations.clear();
      attributes = { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": toolName, ...(errorType !== undefined && { "error.type": errorType }) };
      durations.set(key, attributes);
    }
    return attributes;
  };

  const endCall = (id: string, call: CallSpan, ts: number) => {
    calls.delete(id);
    if (call.adopted !== true) call.span.end(ts);
  };

  const fail = (span: Span, errorType: string, message: string | undefined) => {
    span.setAttribute("error.type", errorType);
    span.setStatus(message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message });
  };

  const handlers: Partial<Record<WardenEvent["type"], (event: WardenEvent, data: Record<string, unknown>) => void>> = {
    "run.started": (event, data) => {
      if (event.runId === null) return;
      const parentRunId = typeof data.parentRunId === "string" ? data.parentRunId : null;
      const parent = parentFor(parentRunId);
      // A run of its own for one call the framework traces as a tool span: that span stands for it (it carries
      // `agent_warden.run.id`), rather than an `invoke_agent` per tool call.
      if (data.implicit === true && frameworkToolSpan(parent, undefined) !== undefined) return;
      const startSpan = trace.getSpanContext(parent);
      const agent = event.agentId ?? "agent";
      const attributes: Attributes = { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": agent, "gen_ai.agent.name": agent, "agent_warden.run.id": event.runId, "agent_warden.ledger.entry_id": event.id };
      if (typeof data.traceId === "string") attributes["agent_warden.trace.id"] = data.traceId;
      if (parentRunId !== null) attributes["agent_warden.parent_run.id"] = parentRunId;
      if (data.implicit === true) attributes["agent_warden.run.implicit"] = true;
      const span = tracer.startSpan(`invoke_agent ${agent}`, { kind: SpanKind.INTERNAL, startTime: event.ts, attributes }, parent);
      runs.set(event.runId, { span, ctx: trace.setSpan(parent, span), agentId: event.agentId, startSpanId: startSpan && isSpanContextValid(startSpan) ? startSpan.spanId : undefined });
    },
    "run.completed": (event) => {
      const run = event.runId === null ? undefined : runs.get(event.runId);
      if (run === undefined) return;
      runs.delete(event.runId!);
      run.span.end(event.ts);
    },
    "run.failed": (event, data) => {
      if (event.runId === null) return;
      let run = runs.get(event.runId);
      // A run refused at its start (a halt, an invalid token) never opened: its refusal still shows.
      if (run === undefined) {
        if (data.refused !== true) return;
        const agent = event.agentId ?? "agent";
        const span = tracer.startSpan(`invoke_agent ${agent}`, { kind: SpanKind.INTERNAL, startTime: event.ts, attributes: { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": agent, "gen_ai.agent.name": agent, "agent_warden.run.id": event.runId, "agent_warden.run.refused": true, "agent_warden.ledger.entry_id": event.id } }, parentFor(typeof data.parentRunId === "string" ? data.parentRunId : null));
        run = { span, ctx: context.active(), agentId: event.agentId, startSpanId: undefined };
      }
      runs.delete(event.runId);
      const error = record(data.error);
      fail(run.span, errorType(error), typeof error.message === "string" ? error.message : undefined);
      run.span.end(event.ts);
    },
    "tool.called": (event, data) => {
      if (event.toolCallId === null) return;
      const call = startCall(event, data);
      calls.set(event.toolCallId, call);
      if (call.kind === "tool" && data.observed !== true && typeof data.decision === "string") {
        const action = data.decision;
        // `policy.matched` follows in the same synchronous step: count once it has been seen.
        queueMicrotask(() => settleDecision(call, action));
      }
    },
    "policy.matched": (event, data) => {
      const call = event.toolCallId === null ? undefined : calls.get(event.toolCallId);
      if (call === undefined) return;
      const matches = Array.isArray(data.matches) ? (data.matches as Array<Record<string, unknown>>) : [];
      if (typeof data.policyId === "string") {
        call.policyId = data.policyId;
        call.span.setAttribute("agent_warden.policy.id", data.policyId);
        const deciding = matches.find((m) => m.policyId === data.policyId);
        if (typeof deciding?.reason === "string") call.reason = deciding.reason;
      }
      call.matched = matches.filter((m) => m.mode !== "shadow").map((m) => String(m.policyId));
      const shadow = matches.filter((m) => m.mode === "shadow").map((m) => String(m.policyId));
      if (shadow.length > 0) call.shadow = shadow;
    },
    "risk.detected": (event, data) => {
      const call = event.toolCallId === null ? undefined : calls.get(event.toolCallId);
      if (call === undefined) return;
      call.span.addEvent("agent_warden.risk", { "agent_warden.risk.severity": String(data.severity ?? "medium") }, event.ts);
    },
    "approval.requested": (event, data) => {
      const call = event.toolCallId === null ? undefined : calls.get(event.toolCallId);
      if (call === undefined) return;
      call.approvalRequestedAt = event.ts;
      const attributes: Attributes = { "agent_warden.approval.id": String(data.approvalId) };
      if (typeof data.expiresAt === "number") attributes["agent_warden.approval.expires_at"] = new Date(data.expiresAt).toISOString();
      call.span.setAttribute("agent_warden.approval.id", String(data.approvalId));
      call.span.addEvent("agent_warden.approval.requested", attributes, event.ts);
    },
    "approval.approved": (event, data) => settleApproval(event, data, "approved"),
    "approval.rejected": (event, data) => settleApproval(event, data, "rejected"),
    "tool.blocked": (event, data) => {
      let call = event.toolCallId === null ? undefined : calls.get(event.toolCallId);
      // Refused before it was recorded as called (a halt with no run open, a token budget): a span of its own.
      const id = event.toolCallId ?? event.id;
      if (call === undefined) {
        call = startCall(event, { ...data, decision: "block" });
        if (call.kind === "tool") instruments.decisions.add(1, { "agent_warden.decision.action": "block", ...(typeof data.policyId === "string" && { "agent_warden.policy.id": data.policyId }) });
      }
      const reason = typeof data.reason === "string" ? data.reason : undefined;
      if (typeof data.policyId === "string") call.span.setAttribute("agent_warden.policy.id", data.policyId);
      let type = "blocked";
      if (data.halted === true) {
        type = "halted";
        call.span.addEvent("agent_warden.halt", reason === undefined ? {} : { "agent_warden.halt.reason": reason }, event.ts);
      } else if (data.status === "rejected") {
        // Refused after waiting for a reviewer: rejected, expired, cancelled (a halt) or given up.
        if (call.approvalOutcome === undefined && call.approvalRequestedAt !== undefined) {
          call.approvalOutcome = reason === "expired" || reason === "aborted" ? reason : "cancelled";
          instruments.approvalWait.record((event.ts - call.approvalRequestedAt) / 1000, { "agent_warden.approval.outcome": call.approvalOutcome });
          call.span.addEvent(`agent_warden.approval.${call.approvalOutcome}`, {}, event.ts);
        }
        type = `approval_${call.approvalOutcome ?? "rejected"}`;
      }
      fail(call.span, type, reason);
      endCall(id, call, event.ts);
    },
    "tool.completed": (event, data) => {
      const call = event.toolCallId === null ? undefined : calls.get(event.toolCallId);
      if (call === undefined) return;
      const failed = data.status === "failed";
      let type: string | undefined;
      if (failed) {
        const error = record(data.error);
        type = errorType(error);
        if (type === "halted") call.span.addEvent("agent_warden.halt", typeof error.message === "string" ? { "agent_warden.halt.reason": error.message } : {}, event.ts);
        fail(call.span, type, typeof error.message === "string" ? error.message : undefined);
      }
      if (call.kind === "llm") {
        const usage = record(data.usage);
        if (typeof usage.inputTokens === "number") call.span.setAttribute("gen_ai.usage.input_tokens", usage.inputTokens);
        if (typeof usage.outputTokens === "number") call.span.setAttribute("gen_ai.usage.output_tokens", usage.outputTokens);
        if (typeof usage.model === "string") call.span.setAttribute("gen_ai.response.model", usage.model);
      } else {
        if (capture && !failed && call.adopted !== true && data.output !== undefined) call.span.setAttribute("gen_ai.tool.call.result", json(data.output));
        const seconds = (typeof data.durationMs === "number" ? data.durationMs : event.ts - call.startedAt) / 1000;
        instruments.toolDuration.record(seconds, durationAttributes(call.toolName, type));
      }
      endCall(event.toolCallId!, call, event.ts);
    },
    "agent.halted": (event, data) => {
      const scope = String(data.scope ?? "unknown");
      instruments.halts.add(1, { "agent_warden.halt.scope": scope });
      const attributes: Attributes = { "agent_warden.halt.id": String(data.haltId), "agent_warden.halt.scope": scope };
      if (typeof data.reason === "string") attributes["agent_warden.halt.reason"] = data.reason;
      // The runs it stops, where that can be told from the halt alone (a group's members are the core's to know).
      for (const [runId, run] of runs) {
        const hit = scope === "organization" || (scope === "agent" && run.agentId === data.target) || (scope === "run" && runId === data.target);
        if (hit) run.span.addEvent("agent_warden.halt", attributes, event.ts);
      }
    },
  };

  function settleApproval(event: WardenEvent, data: Record<string, unknown>, answer: "approved" | "rejected"): void {
    const call = event.toolCallId === null ? undefined : calls.get(event.toolCallId);
    if (call === undefined) return;
    // An expiry or a cancellation (a halt, a closed client) is recorded as a rejection with its own status.
    const outcome = answer === "rejected" && (data.status === "expired" || data.status === "cancelled") ? data.status : answer;
    call.approvalOutcome = outcome;
    const attributes: Attributes = { "agent_warden.approval.id": String(data.approvalId), "agent_warden.approval.outcome": outcome };
    if (typeof data.reviewer === "string") attributes["agent_warden.approval.reviewer"] = data.reviewer;
    if (call.approvalRequestedAt !== undefined) {
      const waited = event.ts - call.approvalRequestedAt;
      attributes["agent_warden.approval.wait_ms"] = waited;
      instruments.approvalWait.record(waited / 1000, { "agent_warden.approval.outcome": outcome });
    }
    call.span.setAttribute("agent_warden.approval.outcome", outcome);
    if (typeof data.reviewer === "string") call.span.setAttribute("agent_warden.approval.reviewer", data.reviewer);
    call.span.addEvent(`agent_warden.approval.${outcome}`, attributes, event.ts);
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
    // A call sent onward (the governed fetch) continues from its execute_tool span.
    headers: (toolCallId) => {
      const call = calls.get(toolCallId);
      if (call === undefined || stopped) return undefined;
      const carrier: Record<string, string> = {};
      propagation.inject(trace.setSpan(context.active(), call.span), carrier);
      return Object.keys(carrier).length > 0 ? carrier : w3cHeaders(call.span.spanContext());
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
    for (const call of [...calls.values(), ...runs.values()]) {
      call.span.setAttribute("agent_warden.incomplete", true);
      // A framework's span stays the framework's to end.
      if ((call as Partial<CallSpan>).adopted !== true) call.span.end(now);
    }
    calls.clear();
    runs.clear();
  };
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
