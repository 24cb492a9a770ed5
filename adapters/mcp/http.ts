import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { StreamableHTTPServerTransport, type EventStore } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { ConfigError } from "agent-warden";
import { createResourceServer, type McpGatewayAuthOptions } from "./auth.js";
import { createMcpGateway, type McpGatewaySessionOptions } from "./gateway.js";

/**
 * Options of `createMcpGatewayHttpHandler`.
 * @example
 * import { createMcpGatewayHttpHandler } from "agent-warden/mcp";
 * const handler = createMcpGatewayHttpHandler({ warden, upstream: () => new StdioClientTransport({ command: "npx", args: ["some-mcp-server"] }) });
 */
export interface McpGatewayHttpOptions extends McpGatewaySessionOptions {
  /** A new connection to the upstream for each agent session (a child process per session, or a client transport to a URL). Either this or `upstreams`. */
  upstream?: (() => Transport) | undefined;
  /** New connections to several upstreams, by name, for each agent session (see `createMcpGateway`'s `upstreams`; `loadMcpConfig(file)` then `config.transports`). */
  upstreams?: (() => Record<string, Transport>) | undefined;
  /** Where the MCP endpoint is served. Default `/mcp`. */
  path?: string | undefined;
  /**
   * Host names a request's `Host` header may name (DNS-rebinding protection). Default: `localhost`,
   * `127.0.0.1` and `[::1]`, so a page in the agent's browser cannot reach a loopback gateway through a
   * rebound name. `false` turns the check off (behind a proxy that checks it).
   */
  allowedHosts?: string[] | false | undefined;
  /** Origins a browser request may come from. Default: none but loopback ones. */
  allowedOrigins?: string[] | undefined;
  /** Stores SSE events so a client can resume a broken stream with `Last-Event-ID`. */
  eventStore?: EventStore | undefined;
  /**
   * Who the request comes from, read before MCP sees it; an `AuthInfo` whose `token` is a Warden
   * delegation token makes calls run under it, its `clientId` names the agent. Answer the response
   * yourself and return `false` to refuse (a 401).
   */
  authenticate?: ((request: IncomingMessage, response: ServerResponse) => Promise<AuthInfo | undefined | false>) | undefined;
  /**
   * The gateway as an OAuth 2.1 resource server: serves `/.well-known/oauth-protected-resource`
   * (RFC 9728), accepts JWTs from the configured issuer (audience = `resource`) and Warden delegation
   * tokens, answers 401 with `resource_metadata` and 403 `insufficient_scope` per tool. The agent's
   * token never reaches the upstream.
   */
  auth?: McpGatewayAuthOptions | undefined;
}

/** Bodies larger than this are refused before anything reads them as JSON. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * A Node HTTP handler (`http.createServer(handler)`, or an Express route) serving the gateway over
 * Streamable HTTP: one gateway session, and one upstream connection, per MCP session; SSE streams,
 * `DELETE` to end a session, resumability with an `eventStore`, DNS-rebinding protection on by default.
 * `handler.close()` ends every session.
 * @example
 * import { createServer } from "node:http";
 * import { createMcpGatewayHttpHandler } from "agent-warden/mcp";
 * const handler = createMcpGatewayHttpHandler({ warden, upstream: () => new StdioClientTransport({ command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "./docs"] }) });
 * createServer(handler).listen(8080, "127.0.0.1");
 */
export function createMcpGatewayHttpHandler(options: McpGatewayHttpOptions): McpGatewayHttpHandler {
  const { upstream, upstreams, path = "/mcp", allowedHosts, allowedOrigins, eventStore, authenticate, auth: authOptions, ...gatewayOptions } = options;
  if ((upstream === undefined) === (upstreams === undefined)) throw new ConfigError("createMcpGatewayHttpHandler needs either `upstream` or `upstreams`, not both");
  const resourceServer = authOptions === undefined ? undefined : createResourceServer(options.warden, authOptions);
  const hosts = allowedHosts === false ? undefined : new Set((allowedHosts ?? LOOPBACK_HOSTS).map((host) => host.toLowerCase()));
  /** Each session is bound to the client that opened it: another token cannot ride it. */
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; owner: string | undefined; close: () => Promise<void> }>();

  const handler = async function mcpGatewayHttpHandler(request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): Promise<void> {
    const url = new URL(request.url ?? "/", "http://gateway");
    if (resourceServer !== undefined && request.method === "GET" && resourceServer.serveMetadata(request, response)) return;
    if (url.pathname !== path) {
      if (next) return next();
      return answer(response, 404, "not found");
    }
    const refused = checkOrigin(request, hosts, allowedOrigins);
    if (refused !== undefined) return answer(response, 403, refused);
    let body: unknown;
    if (request.method === "POST") {
      const read = await readJson(request);
      if (!read.ok) return answer(response, read.status, read.message, -32700);
      body = read.body;
    }
    let auth: AuthInfo | undefined;
    if (resourceServer !== undefined) {
      const result = await resourceServer.check(request, response, body);
      if (result === false) return;
      auth = result;
    }
    if (authenticate !== undefined) {
      const result = await authenticate(request, response);
      if (result === false) return;
      auth = result ?? auth;
    }
    if (auth !== undefined) (request as IncomingMessage & { auth?: AuthInfo }).auth = auth;

    const sessionId = request.headers["mcp-session-id"];
    if (typeof sessionId === "string") {
      const session = sessions.get(sessionId);
      if (session === undefined || session.owner !== auth?.clientId) return answer(response, 404, "session not found", -32001);
      return session.transport.handleRequest(request, response, body);
    }
    if (request.method !== "POST") return answer(response, 400, "no session: initialize with a POST first");

    let id: string | undefined;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      ...(eventStore !== undefined && { eventStore }),
      onsessioninitialized: (newId) => {
        id = newId;
        sessions.set(newId, { transport, owner: auth?.clientId, close: () => gateway.close() });
      },
    });
    transport.onclose = () => {
      if (id !== undefined) sessions.delete(id);
    };
    const gateway = createMcpGateway(upstreams !== undefined ? { ...gatewayOptions, upstreams: upstreams() } : { ...gatewayOptions, upstream: upstream!() });
    await gateway.connect(transport);
    await transport.handleRequest(request, response, body);
    // Anything but an initialize opens no session: nothing to keep.
    if (id === undefined) await gateway.close();
  };
  Object.defineProperty(handler, "sessions", { get: () => sessions.size });
  return Object.assign(handler as typeof handler & { readonly sessions: number }, {
    async close() {
      await Promise.all([...sessions.values()].map((session) => session.close().catch(() => {})));
      sessions.clear();
    },
  });
}

/**
 * What `createMcpGatewayHttpHandler` returns: a Node request handler, with the number of open sessions
 * and `close()` to end them all.
 * @example
 * import { createMcpGatewayHttpHandler, type McpGatewayHttpHandler } from "agent-warden/mcp";
 * const handler: McpGatewayHttpHandler = createMcpGatewayHttpHandler({ warden, upstream });
 * process.on("SIGTERM", () => void handler.close());
 */
export interface McpGatewayHttpHandler {
  (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): Promise<void>;
  readonly sessions: number;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"];

/** Why the request's Host or Origin is refused, if it is. */
function checkOrigin(request: IncomingMessage, hosts: Set<string> | undefined, origins: string[] | undefined): string | undefined {
  if (hosts !== undefined) {
    const host = request.headers.host;
    const name = host === undefined ? undefined : hostname(host);
    if (name === undefined || !hosts.has(name)) return `Host header not allowed: ${host ?? "(none)"}`;
  }
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== "null") {
    if (origins?.includes(origin)) return undefined;
    let name: string;
    try {
      name = new URL(origin).hostname.toLowerCase();
    } catch {
      return `Origin not allowed: ${origin}`;
    }
    if (!LOOPBACK_HOSTS.includes(name) && !LOOPBACK_HOSTS.includes(`[${name}]`)) return `Origin not allowed: ${origin}`;
  } else if (origin === "null") return "Origin not allowed: null";
  return undefined;
}

/** The host name of a Host header, without its port. */
function hostname(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith("[")) return lower.slice(0, lower.indexOf("]") + 1);
  const colon = lower.lastIndexOf(":");
  return colon === -1 ? lower : lower.slice(0, colon);
}

async function readJson(request: IncomingMessage): Promise<{ ok: true; body: unknown } | { ok: false; status: number; message: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return { ok: false, status: 413, message: "request body too large" };
    chunks.push(chunk);
  }
  try {
    return { ok: true, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) };
  } catch {
    return { ok: false, status: 400, message: "Parse error: the body is not JSON" };
  }
}

function answer(response: ServerResponse, status: number, message: string, code = -32000): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}
