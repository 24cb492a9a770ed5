import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  ErrorCode,
  InitializeRequestSchema,
  LATEST_PROTOCOL_VERSION,
  McpError,
  ResultSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  type CallToolResult,
  type ClientCapabilities,
  type Implementation,
  type InitializeResult,
  type JSONRPCRequest,
  type Notification,
  type Progress,
  type ServerCapabilities,
} from "@modelcontextprotocol/sdk/types.js";
import { ConfigError, type ToolCallHandle, type Warden } from "agent-warden";
import { governRequest, governToolCall, HALTED_ERROR_CODE, TOKEN_META_KEY, withTraceMeta, type McpGovernOptions, type McpRequestExtra } from "./shared.js";
import { UpstreamRouter, type Upstream } from "./upstreams.js";
import { sessionPins, type McpPinOptions } from "./pins.js";

/**
 * Options of `createMcpGateway`: one `upstream`, mirrored as it is, or several `upstreams` by name.
 * @example
 * import { createMcpGateway } from "agent-warden/mcp";
 * const gateway = createMcpGateway({ warden, upstream: new StdioClientTransport({ command: "npx", args: ["some-mcp-server"] }), upstreamTimeout: 120_000 });
 */
export type McpGatewayOptions = McpGatewaySessionOptions & (McpGatewaySingleUpstream | McpGatewaySeveralUpstreams);

/**
 * What a gateway session is configured with besides its upstream(s).
 * @example
 * import type { McpGatewaySessionOptions } from "agent-warden/mcp";
 * const common: McpGatewaySessionOptions = { warden, upstreamTimeout: 120_000 };
 */
export interface McpGatewaySessionOptions extends McpGovernOptions {
  warden: Warden;
  /** How the gateway introduces itself to the agent. Default: the upstream's own `serverInfo` (with several: `warden-mcp-gateway`). */
  name?: string | undefined;
  version?: string | undefined;
  /** The server's name in the arguments of governed `resource.read` and `prompt.get` calls. Default: the upstream's `serverInfo.name` (with several: each one's configured name). */
  serverName?: string | undefined;
  /** Timeout of each forwarded request in ms (reset by progress). Default: the SDK's 60 s. */
  upstreamTimeout?: number | undefined;
  /**
   * Pinning of the upstreams' tool definitions (see `McpPinOptions`): on by default, a changed definition
   * or one carrying instructions to the model holds calls to that tool for approval; `false` turns it off.
   * Tool descriptions reach the agent redacted either way.
   */
  pins?: McpPinOptions | false | undefined;
}

/**
 * One governed server, mirrored as it is: names, cursors and capabilities unchanged.
 * @example
 * import { createMcpGateway } from "agent-warden/mcp";
 * createMcpGateway({ warden, upstream: new StdioClientTransport({ command: "mcp-server-everything" }) });
 */
export interface McpGatewaySingleUpstream {
  /**
   * The server being governed: a transport to it (a `StdioClientTransport`, a
   * `StreamableHTTPClientTransport`…), which the gateway connects when the agent initializes (declaring
   * the agent's own client capabilities upstream) and closes with itself; or a `Client` already connected.
   */
  upstream: Client | Transport;
  upstreams?: undefined;
}

/**
 * Several governed servers behind one gateway, by name: each server's tools and prompts are exposed as
 * `<name>__<tool>`, its resources under their own URIs, routed back to it.
 * @example
 * import { createMcpGateway } from "agent-warden/mcp";
 * createMcpGateway({ warden, upstreams: { files: new StdioClientTransport({ command: "mcp-server-filesystem", args: ["./docs"] }), github: new StreamableHTTPClientTransport(url) } });
 */
export interface McpGatewaySeveralUpstreams {
  /**
   * Each server (a transport the gateway connects, or a `Client` already connected) under the name
   * that prefixes its tools and prompts and names it in governed calls: letters, digits, `-` and `_`.
   */
  upstreams: Record<string, Client | Transport>;
  upstream?: undefined;
}

/** Capabilities the gateway does not relay: task-augmented requests (experimental in the SDK) are answered directly or not at all. */
const NOT_RELAYED = ["tasks"] as const;

/** Server → client requests, and the client capability each needs. */
const CLIENT_CAPABILITY: Record<string, keyof ClientCapabilities> = { "sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots" };

type Outgoing = { method: string; params?: Record<string, unknown> };

/**
 * A governing proxy for any MCP server, without touching its code: a low-level `Server` that mirrors the
 * upstream (its capabilities, instructions and server info) and relays the whole protocol both ways —
 * tools, resources, templates, subscriptions, prompts, completion, logging, ping, progress,
 * cancellation, list-changed notifications, and the server's own sampling, elicitation and roots
 * requests to the agent — deciding by policy first every `tools/call` (block → an `isError` result,
 * approval → wait, halt → `McpError`), every `resources/read` (as `resource.read` with
 * `{ uri, server }`), every `prompts/get` (as `prompt.get` with `{ name, arguments, server }`) and the
 * server's sampling and elicitation requests (`sampling.create_message`, `elicitation.create`). Calls
 * are recorded in one run per session. Connect it to any server transport: stdio, Streamable HTTP.
 * @example
 * import { createMcpGateway } from "agent-warden/mcp";
 * const gateway = createMcpGateway({ warden, upstream: new StdioClientTransport({ command: "npx", args: ["some-mcp-server"] }) });
 * await gateway.connect(new StdioServerTransport());
 */
export function createMcpGateway(options: McpGatewayOptions): Server {
  const { warden, upstreamTimeout } = options;
  if ((options.upstream === undefined) === (options.upstreams === undefined)) throw new ConfigError("createMcpGateway needs either `upstream` or `upstreams`, not both");
  // With several servers a router merges them; one server is relayed as it is.
  const router = options.upstreams === undefined ? undefined : new UpstreamRouter(options.upstreams);
  const upstreams: readonly Upstream[] = router?.upstreams ?? [{ name: options.serverName ?? "", source: options.upstream!, client: undefined }];
  for (const upstream of upstreams) if (isClient(upstream.source)) upstream.client = upstream.source;
  const owned = upstreams.some((upstream) => !isClient(upstream.source));
  // Every capability, so the SDK lets each notification through; the agent is told only the upstream's.
  const server = new Server({ name: options.name ?? "warden-mcp-gateway", version: options.version ?? "1.0.0" }, { capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true }, logging: {}, completions: {} } });
  // Answered by the upstream, not by the gateway: ping tells whether the server is alive, setLevel is the server's.
  server.removeRequestHandler("ping");
  server.removeRequestHandler("logging/setLevel");

  let connecting: Promise<void> | undefined;
  let agentCapabilities: ClientCapabilities = {};
  let agentInfo: Implementation | undefined;
  let serverName = router === undefined ? options.serverName : options.name ?? "warden-mcp-gateway";
  /** This session's tool calls in flight (and the server each went to), so a sampling request is recorded with the call that caused it. */
  const inFlight = new Map<string | number, { handle: ToolCallHandle; requestId: string | number; server: string | undefined }>();
  /** One run per session and agent; every call of the session is recorded in it. */
  const runs = new Map<string, string>();
  /** The halt that stopped a call of this session: its runs end failed with it, as a run a halt stops anywhere. */
  let haltedBy: unknown;
  let closed = false;
  const pins = sessionPins(warden, options.pins);
  /** A governed request's answer, noting a halt that refused it or stopped it. */
  const governed = <T>(answer: Promise<T>): Promise<T> =>
    answer.catch((error: unknown) => {
      if (error instanceof McpError && error.code === HALTED_ERROR_CODE) haltedBy ??= error.cause ?? error;
      throw error;
    });

  /** Resolves once every upstream is connected. */
  const ready = (): Promise<void> => {
    if (!owned) return Promise.resolve();
    if (connecting === undefined) throw new McpError(ErrorCode.InvalidRequest, "the gateway is not initialized");
    return connecting;
  };
  /** The in-flight tool call that caused a server's request, when that is clear: the one call of the session to that server. */
  const causeFrom = (server: string | undefined) => {
    const calls = [...inFlight.values()].filter((call) => router === undefined || call.server === server);
    return calls.length === 1 ? calls[0] : undefined;
  };

  const sessionRun = (agentId: string | undefined): string | undefined => {
    const key = agentId ?? warden.agentId;
    const existing = runs.get(key);
    if (existing !== undefined || closed) return existing;
    try {
      const { runId } = warden.beginRun({ mcp: { server: serverName, ...(router && { servers: router.upstreams.map((upstream) => upstream.name) }), client: agentInfo?.name } }, { agentId: key, reason: "MCP session" });
      runs.set(key, runId);
      return runId;
    } catch {
      // Refused (a halt): the call goes to the core without a run, which refuses and records it.
      return undefined;
    }
  };

  const timeouts = (extra: McpRequestExtra | undefined): RequestOptions => ({
    ...(extra && { signal: extra.signal }),
    ...(upstreamTimeout !== undefined && { timeout: upstreamTimeout, resetTimeoutOnProgress: true }),
  });

  /** Sends a request of the agent's on to the upstream, its progress relayed under the agent's own token. */
  const forward = async (request: Outgoing, extra: McpRequestExtra, signal: AbortSignal = extra.signal): Promise<Record<string, unknown>> => {
    await ready();
    const { progressToken, params } = withoutPrivateMeta(request.params);
    let relayed: Promise<void> = Promise.resolve();
    const onprogress = (progress: Progress) => {
      relayed = extra.sendNotification({ method: "notifications/progress", params: { ...progress, progressToken: progressToken! } }).catch(() => {});
    };
    try {
      const sent = { method: request.method, ...(params !== undefined && { params }) };
      const requestOptions: RequestOptions = { ...timeouts(extra), signal, ...(progressToken !== undefined && { onprogress }) };
      const result = router !== undefined ? await router.request(sent, requestOptions) : await upstreams[0]!.client!.request(sent, ResultSchema, requestOptions);
      // The last progress goes out before the answer, as the server sent them.
      await relayed;
      return result;
    } catch (error) {
      throw asRelayed(error);
    }
  };

  server.setRequestHandler(InitializeRequestSchema, async (request): Promise<InitializeResult> => {
    agentCapabilities = request.params.capabilities;
    agentInfo = request.params.clientInfo;
    if (owned) {
      connecting ??= Promise.all(
        upstreams.map(async (upstream) => {
          if (upstream.client !== undefined) return;
          // The upstream sees the agent as it is: its client info and the capabilities it declared.
          const upstreamClient = new Client(request.params.clientInfo, { capabilities: without(request.params.capabilities, NOT_RELAYED) });
          relayFromUpstream(upstreamClient, upstream);
          // One server gone ends the session: the agent's host restarts the gateway, as it would the server.
          upstreamClient.onclose = () => void server.close().catch(() => {});
          try {
            await upstreamClient.connect(upstream.source as Transport, timeouts(undefined));
          } catch (error) {
            if (router === undefined) throw error;
            throw new McpError(ErrorCode.InternalError, `the upstream MCP server "${upstream.name}" did not connect: ${(error as Error).message}`);
          }
          upstream.client = upstreamClient;
        }),
      ).then(() => undefined);
    }
    await ready();
    const requested = request.params.protocolVersion;
    const protocolVersion = SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
    if (router !== undefined) {
      const instructions = router.instructions();
      return {
        protocolVersion,
        capabilities: without(router.capabilities(), NOT_RELAYED) as ServerCapabilities,
        serverInfo: { name: options.name ?? "warden-mcp-gateway", version: options.version ?? "1.0.0" },
        ...(instructions !== undefined && { instructions }),
      };
    }
    const target = upstreams[0]!.client!;
    const info = target.getServerVersion();
    serverName ??= info?.name;
    const instructions = target.getInstructions();
    return {
      protocolVersion,
      capabilities: without(target.getServerCapabilities() ?? {}, NOT_RELAYED) as ServerCapabilities,
      serverInfo: { ...(info as Implementation), ...(options.name !== undefined && { name: options.name }), ...(options.version !== undefined && { version: options.version }) },
      ...(instructions !== undefined && { instructions }),
    };
  });

  server.fallbackRequestHandler = async (raw: JSONRPCRequest, extra: McpRequestExtra) => {
    const request: Outgoing = { method: raw.method, ...(raw.params !== undefined && { params: raw.params }) };
    const params = (raw.params ?? {}) as Record<string, unknown>;
    switch (raw.method) {
      case "tools/list":
        return pins.listed(serverName ?? "default", await forward(request, extra));
      case "tools/call": {
        const name = typeof params.name === "string" ? params.name : "";
        const server = router?.split(name)?.upstream.name;
        return governed(
          governToolCall(warden, options, { name, args: params.arguments, extra, runFor: sessionRun, ...pins.check(serverName ?? "default", name) }, async (signal, handle) => {
            inFlight.set(extra.requestId, { handle, requestId: extra.requestId, server });
            try {
              return (await forward(withTraceMeta(request, handle), extra, signal)) as CallToolResult;
            } finally {
              inFlight.delete(extra.requestId);
            }
          }),
        );
      }
      case "resources/read": {
        const server = await serverOf(request, extra);
        return governed(governRequest(warden, options, { name: "resource.read", args: { uri: params.uri, server }, extra, runFor: sessionRun }, (signal) => forward(request, extra, signal)));
      }
      case "prompts/get": {
        const server = await serverOf(request, extra);
        return governed(governRequest(warden, options, { name: "prompt.get", args: { name: params.name, arguments: params.arguments ?? {}, server }, extra, runFor: sessionRun }, (signal) => forward(request, extra, signal)));
      }
      default:
        return forward(request, extra);
    }
  };

  /** The server a resource read or prompt names, for the record: the one upstream's name, or the one the router sends it to. */
  async function serverOf(request: Outgoing, extra: McpRequestExtra): Promise<string | undefined> {
    if (router === undefined) return serverName;
    await ready();
    try {
      return await router.serverOf(request, timeouts(extra));
    } catch (error) {
      throw asRelayed(error);
    }
  }

  // The agent's notifications (roots list changed, …); cancellation and progress are answered by the SDK per hop.
  server.fallbackNotificationHandler = async (notification: Notification) => {
    if (router !== undefined) return router.notifyAll(notification);
    const target = upstreams[0]!.client;
    if (target === undefined) return;
    await target.notification(notification).catch(() => {
      // The upstream is gone: the session ends with it.
    });
  };

  /** An upstream's requests and notifications, relayed to the agent. */
  function relayFromUpstream(upstreamClient: Client, upstream: Upstream): void {
    const from = () => (router === undefined ? serverName : upstream.name);
    upstreamClient.removeRequestHandler("ping");
    upstreamClient.fallbackRequestHandler = async (raw: JSONRPCRequest, extra) => {
      const capability = CLIENT_CAPABILITY[raw.method];
      // As the agent's client would answer itself: it has no handler for what it did not declare.
      if (capability !== undefined && agentCapabilities[capability] === undefined) throw asRelayed(new McpError(ErrorCode.MethodNotFound, "Method not found"));
      const request: Outgoing = { method: raw.method, ...(raw.params !== undefined && { params: raw.params }) };
      // Over Streamable HTTP a request goes out on the stream of the agent's call that caused it, when that is clear.
      const cause = causeFrom(upstream.name);
      const relay = async (signal: AbortSignal): Promise<Record<string, unknown>> => {
        const { progressToken, params } = withoutPrivateMeta(request.params);
        try {
          return await server.request({ method: request.method, ...(params !== undefined && { params }) }, ResultSchema, {
            signal,
            ...(cause && { relatedRequestId: cause.requestId }),
            ...(upstreamTimeout !== undefined && { timeout: upstreamTimeout, resetTimeoutOnProgress: true }),
            ...(progressToken !== undefined && { onprogress: (progress) => void extra.sendNotification({ method: "notifications/progress", params: { ...progress, progressToken } }).catch(() => {}) }),
          });
        } catch (error) {
          throw asRelayed(error);
        }
      };
      const action = raw.method === "sampling/createMessage" ? "sampling.create_message" : raw.method === "elicitation/create" ? "elicitation.create" : undefined;
      if (action === undefined) return relay(extra.signal);
      const { _meta: _ignored, ...shown } = (raw.params ?? {}) as Record<string, unknown>;
      const args = { server: from(), ...shown, ...(cause && { causedBy: { tool: cause.handle.toolName, toolCallId: cause.handle.toolCallId } }) };
      const runId = cause?.handle.runId ?? sessionRun(undefined);
      // The upstream speaks for no agent: its requests are recorded as the session's, whatever they carry.
      return governed(governRequest(warden, { ...options, identify: () => ({}) }, { name: action, args, extra: extra as unknown as McpRequestExtra, runFor: () => runId }, relay));
    };
    upstreamClient.fallbackNotificationHandler = async (notification: Notification) => {
      if (notification.method === "notifications/resources/list_changed") router?.resourcesChanged();
      const cause = causeFrom(upstream.name);
      await server.notification(notification, cause && notification.method === "notifications/message" ? { relatedRequestId: cause.requestId } : undefined).catch(() => {
        // No agent connected (yet or any more): nothing to tell.
      });
    };
  }
  for (const upstream of upstreams) if (upstream.client !== undefined) relayFromUpstream(upstream.client, upstream);

  // Chained on the transport, so a user's own `server.onclose` does not end the session's bookkeeping.
  const connect = server.connect.bind(server);
  server.connect = async (transport: Transport) => {
    const previous = transport.onclose;
    transport.onclose = () => {
      previous?.();
      endSession();
    };
    return connect(transport);
  };
  const endSession = () => {
    if (closed) return;
    closed = true;
    // A session the agent carried on after refusals completes; one a halt stopped fails with the halt.
    for (const runId of runs.values()) void (haltedBy === undefined ? warden.completeRun(runId) : warden.failRun(runId, haltedBy)).catch(() => {});
    runs.clear();
    for (const upstream of upstreams) {
      if (isClient(upstream.source) || upstream.client === undefined) continue;
      void upstream.client.close().catch(() => {
        // The upstream is gone already.
      });
    }
  };
  return server;
}

function isClient(value: Client | Transport): value is Client {
  return typeof (value as Client).callTool === "function";
}

/** `params` without the agent's progress token (the SDK puts its own) and without a delegation token (it carries a private key: it never goes past the gateway). */
function withoutPrivateMeta(params: Record<string, unknown> | undefined): { progressToken: string | number | undefined; params: Record<string, unknown> | undefined } {
  if (params === undefined) return { progressToken: undefined, params };
  const { _meta: meta, ...rest } = params as { _meta?: Record<string, unknown> };
  if (meta === undefined) return { progressToken: undefined, params };
  const { [TOKEN_META_KEY]: _token, progressToken, ...kept } = meta;
  return { progressToken: typeof progressToken === "string" || typeof progressToken === "number" ? progressToken : undefined, params: Object.keys(kept).length > 0 ? { ...rest, _meta: kept } : rest };
}

function without<T extends object>(value: T, keys: readonly string[]): T {
  return Object.fromEntries(Object.entries(value).filter(([key]) => !keys.includes(key))) as T;
}

/** An error from the other side, answered as it came: the same code, message and data (without the SDK's "MCP error N:" prefix). */
function asRelayed(error: unknown): unknown {
  if (!(error instanceof McpError)) return error;
  const prefix = `MCP error ${error.code}: `;
  const relayed = new McpError(error.code, "", error.data);
  relayed.message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return relayed;
}
