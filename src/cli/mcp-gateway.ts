// `warden mcp-gateway -- <command> [args…]`: governs any MCP server without touching its code. The
// gateway speaks MCP to the agent (stdio, or Streamable HTTP with --http), starts the server as its own
// child over stdio (or connects to --upstream <url>, or to every server of a --config file), and
// relays the whole protocol both ways, deciding every tool call, resource read and prompt by policy first.
import type { Command } from "commander";
import { InvalidInputError } from "../errors.js";
import { Warden } from "../warden.js";

interface GlobalOptions {
  store: string;
  org: string;
}

interface GatewayOptions {
  policies?: string;
  agent: string;
  approvalTimeout?: string;
  http?: string;
  upstream?: string;
  config?: string;
  /** False with --no-pins. */
  pins: boolean;
  onToolChange?: string;
  onToolInstructions?: string;
}

const PIN_ACTIONS = ["approval", "block", "allow"] as const;

/**
 * Adds `warden mcp-gateway [--policies file] [--agent id] [--http host:port] (--config mcp.json | --upstream <url> | -- <command> [args…])`
 * to the CLI. On stdio nothing but MCP is written to stdout; notices go to stderr.
 */
export function registerMcpGatewayCommand(program: Command): void {
  program
    .command("mcp-gateway")
    .description("serve MCP (stdio, or Streamable HTTP with --http) in front of an MCP server, relaying the whole protocol, each tool call, resource read and prompt decided by policy")
    .usage("[options] (--config <mcp.json> | --upstream <url> | -- <command> [args...])")
    .argument("[command]", "the upstream MCP server's executable, started over stdio")
    .argument("[args...]", "its arguments (after --)")
    .option("--policies <file>", "policy file (YAML or JSON)")
    .option("--agent <id>", "the agent calling through the gateway (a caller's own token or OAuth client id takes precedence)", "mcp-agent")
    .option("--approval-timeout <duration>", "how long a call waits for a reviewer when its policy does not say (e.g. 15m)")
    .option("--http <host:port>", "serve Streamable HTTP at http://<host:port>/mcp instead of stdio (one upstream connection per session)")
    .option("--upstream <url>", "an upstream that speaks Streamable HTTP, instead of a command")
    .option("--config <file>", 'several upstreams from an MCP config file ({"mcpServers": {"files": {"command": ...}, "github": {"url": ...}}}), their tools and prompts named <server>__<name>')
    .option("--on-tool-change <action>", "calls to a tool whose definition changed since it was pinned: approval | block | allow (recorded only)", "approval")
    .option("--on-tool-instructions <action>", "calls to a tool whose definition carries instructions to the model: approval | block | allow", "approval")
    .option("--no-pins", "do not pin the server's tool definitions")
    .action(async (command: string | undefined, args: string[], opts: GatewayOptions) => {
      const globals = program.opts<GlobalOptions>();
      if ([command, opts.upstream, opts.config].filter((source) => source !== undefined).length !== 1) {
        throw new InvalidInputError("warden mcp-gateway needs one of --config <file>, --upstream <url> or -- <command> [args...]");
      }
      const listen = opts.http === undefined ? undefined : parseListen(opts.http);
      const upstreamUrl = opts.upstream === undefined ? undefined : parseUrl(opts.upstream);
      const pins = opts.pins ? { onChange: parsePinAction("--on-tool-change", opts.onToolChange), onInstructions: parsePinAction("--on-tool-instructions", opts.onToolInstructions) } : false;
      const [{ StdioClientTransport }, { StreamableHTTPClientTransport }, { StdioServerTransport }, { createMcpGateway, createMcpGatewayHttpHandler, loadMcpConfig }] = await Promise.all([
        import("@modelcontextprotocol/sdk/client/stdio.js"),
        import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
        import("@modelcontextprotocol/sdk/server/stdio.js"),
        import("../../adapters/mcp/index.js"),
      ]).catch((error: unknown) => {
        throw new Error(`warden mcp-gateway needs @modelcontextprotocol/sdk: npm install @modelcontextprotocol/sdk (${(error as Error).message})`);
      });
      const config = opts.config === undefined ? undefined : await loadMcpConfig(opts.config);
      const warden = new Warden({
        agentId: opts.agent,
        store: globals.store,
        organization: globals.org,
        ...(opts.policies && { policies: opts.policies }),
        ...(opts.approvalTimeout && { approvalTimeout: opts.approvalTimeout }),
        onApprovalRequest: (request) => console.error(`[warden] tool "${request.toolName}" awaits approval ${request.approvalId}: warden approve ${request.approvalId}`),
      });
      // The server is the user's own program: it gets the whole environment, as when run directly.
      const env = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
      const newUpstream = () => (upstreamUrl !== undefined ? new StreamableHTTPClientTransport(upstreamUrl) : new StdioClientTransport({ command: command!, args, env, stderr: "inherit" }));
      const stopped = new Promise<void>((resolve) => {
        process.once("SIGTERM", () => resolve());
        process.once("SIGINT", () => resolve());
      });

      if (listen !== undefined) {
        const { createServer } = await import("node:http");
        const handler = createMcpGatewayHttpHandler(config !== undefined ? { warden, upstreams: () => config.transports(), pins } : { warden, upstream: newUpstream, pins });
        const server = createServer((request, response) => {
          handler(request, response).catch((error: unknown) => {
            console.error(`[warden] ${(error as Error).message.replace(/^\[warden\] /, "")}`);
            if (!response.headersSent) response.writeHead(500).end();
          });
        });
        try {
          await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(listen.port, listen.host, () => resolve());
          });
          const address = server.address();
          const port = typeof address === "object" && address !== null ? address.port : listen.port;
          const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
          console.error(`[warden] MCP gateway listening on http://${host}:${port}/mcp`);
          await stopped;
        } finally {
          await handler.close();
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
          warden.close();
        }
        return;
      }

      const upstreams = config !== undefined ? config.transports() : { [command ?? opts.upstream!]: newUpstream() };
      const ended = new Promise<{ by: "agent" } | { by: "upstream"; name: string }>((resolve) => {
        process.stdin.once("end", () => resolve({ by: "agent" }));
        process.stdin.once("close", () => resolve({ by: "agent" }));
        void stopped.then(() => resolve({ by: "agent" }));
        for (const [name, upstream] of Object.entries(upstreams)) upstream.onclose = () => resolve({ by: "upstream", name });
      });
      // The gateway connects the servers when the agent initializes, declaring the agent's capabilities to them.
      const gateway = createMcpGateway(config !== undefined ? { warden, upstreams, pins } : { warden, upstream: Object.values(upstreams)[0]!, pins });
      try {
        await gateway.connect(new StdioServerTransport());
        const end = await ended;
        if (end.by === "upstream") {
          console.error(`[warden] the upstream MCP server (${end.name}) exited`);
          process.exitCode = 1;
        }
      } finally {
        await gateway.close().catch(() => {});
        await Promise.all(Object.values(upstreams).map((upstream) => upstream.close().catch(() => {})));
        warden.close();
      }
    });
}

function parsePinAction(flag: string, value: string | undefined): (typeof PIN_ACTIONS)[number] {
  if (value === undefined) return "approval";
  if (!(PIN_ACTIONS as readonly string[]).includes(value)) throw new InvalidInputError(`${flag} expects ${PIN_ACTIONS.join(" | ")}, got "${value}"`);
  return value as (typeof PIN_ACTIONS)[number];
}

function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  if (!match) throw new InvalidInputError(`--http expects host:port (e.g. 127.0.0.1:8080), got "${value}"`);
  return { host: match[1] ?? match[2]!, port: Number(match[3]) };
}

function parseUrl(value: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new InvalidInputError(`--upstream expects a URL (e.g. http://127.0.0.1:3000/mcp), got "${value}"`);
  }
}
