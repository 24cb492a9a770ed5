import { getCurrentSpan, getCurrentTrace } from "@openai/agents";

/** What of an OpenTelemetry tracer provider the link uses; structural, so this subpath never loads OpenTelemetry. */
export interface TracerProviderLike {
  getTracer(name: string, version?: string, options?: any): { startSpan(name: string, options?: any, context?: any): unknown };
}

/** The span type a tracer provider's tracers start. */
export type SpanOf<P extends TracerProviderLike> = ReturnType<ReturnType<P["getTracer"]>["startSpan"]>;

/**
 * What `linkAgentsSpans` returns.
 * @example
 * import { linkAgentsSpans, type AgentsSpanLink } from "agent-warden/openai-agents";
 * const link: AgentsSpanLink<typeof provider> = linkAgentsSpans(provider);
 */
export interface AgentsSpanLink<P extends TracerProviderLike> {
  /** The same provider, to hand to the OpenTelemetry bridge of the Agents SDK's tracing: it starts its spans through it. */
  readonly tracerProvider: P;
  /** The bridge's span for the SDK span current now (a tool's function span while it runs), for `instrumentWarden`'s `frameworkSpan`. */
  readonly currentSpan: () => SpanOf<P> | undefined;
}

/** Spans remembered at most; a bridge's spans for long-finished SDK spans go first. */
const REMEMBERED = 10_000;

interface SdkSpan {
  spanId: string;
  traceId: string;
  parentId: string | null;
  spanData: { type: string; name?: unknown; to_agent?: unknown };
}

/**
 * Links the spans an OpenTelemetry bridge of the Agents SDK's tracing (such as
 * `@arizeai/openinference-instrumentation-openai-agents`) starts to the SDK spans they stand for. Such a
 * bridge is a trace processor: it never makes its spans active, so nothing started while the SDK runs a
 * tool could nest under them. Hand `tracerProvider` to the bridge and `currentSpan` to `instrumentWarden`:
 * Warden's spans then sit under the bridge's span for the SDK span current where Warden records.
 * @example
 * import * as agents from "@openai/agents";
 * import { OpenAIAgentsInstrumentation } from "@arizeai/openinference-instrumentation-openai-agents";
 * import { linkAgentsSpans } from "agent-warden/openai-agents";
 * import { instrumentWarden } from "agent-warden/otel";
 * const link = linkAgentsSpans(provider);
 * new OpenAIAgentsInstrumentation({ tracerProvider: link.tracerProvider }).manuallyInstrument(agents);
 * instrumentWarden(warden, { tracerProvider: provider, frameworkSpan: link.currentSpan });
 */
export function linkAgentsSpans<P extends TracerProviderLike>(tracerProvider: P): AgentsSpanLink<P> {
  // A bridge starts the span for an SDK span in its `onSpanStart`, while that span is current (the SDK's
  // `with…Span` helpers) or while its parent still is (spans the runner starts by hand): the span is
  // remembered as the SDK span's own when the names agree, else by parent (or trace) and name.
  const spans = new Map<string, SpanOf<P>>();
  const remember = (key: string, span: SpanOf<P>) => {
    spans.delete(key);
    spans.set(key, span);
    if (spans.size > REMEMBERED) spans.delete(spans.keys().next().value!);
  };
  const started = (name: unknown, span: SpanOf<P>) => {
    const current = getCurrentSpan() as SdkSpan | null;
    if (current !== null && nameOf(current) === name) remember(current.spanId, span);
    else if (current !== null) remember(`${current.spanId}>${String(name)}`, span);
    else {
      const trace = getCurrentTrace();
      if (trace !== null) remember(`${trace.traceId}>${String(name)}`, span);
    }
  };
  const tracers = new WeakMap<object, object>();
  const linkTracer = (tracer: object): object => {
    let linked = tracers.get(tracer);
    if (linked === undefined) {
      linked = new Proxy(tracer, {
        get(target, key) {
          const value: unknown = Reflect.get(target, key, target);
          if (typeof value !== "function") return value;
          if (key !== "startSpan") return value.bind(target);
          return (...args: unknown[]) => {
            const span = value.apply(target, args) as SpanOf<P>;
            try {
              started(args[0], span);
            } catch {
              // Linking is best effort: the bridge's span is returned either way.
            }
            return span;
          };
        },
      });
      tracers.set(tracer, linked);
    }
    return linked;
  };
  const linkedProvider = new Proxy(tracerProvider, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      if (key !== "getTracer") return value.bind(target);
      return (...args: unknown[]) => linkTracer(value.apply(target, args) as object);
    },
  });
  return {
    tracerProvider: linkedProvider,
    currentSpan: () => {
      const current = getCurrentSpan() as SdkSpan | null;
      if (current === null) return undefined;
      const name = nameOf(current);
      return spans.get(current.spanId) ?? spans.get(`${current.parentId ?? current.traceId}>${name}`) ?? (current.parentId === null ? undefined : spans.get(current.parentId));
    },
  };
}

/** The name a bridge gives an SDK span's span: its name where it has one, as OpenInference's does. */
function nameOf(span: SdkSpan): string {
  const data = span.spanData;
  if (typeof data.name === "string") return data.name;
  if (data.type === "handoff" && typeof data.to_agent === "string") return `handoff to ${data.to_agent}`;
  return data.type;
}
