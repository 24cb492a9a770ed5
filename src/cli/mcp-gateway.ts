// `warden mcp-gateway -- <command> [args…]`: governs any MCP server without touching its code. The
// gateway speaks MCP on stdio to the agent, starts the server as its own child over stdio, and
// relays the whole protocol both ways, deciding every tool call, resource read and prompt by policy first.
import type { Command } from "commander";
import { Warden } from "../warden.js";

interface GlobalOptions {
  store: string;
  org: string;
}

interface GatewayOptions {
  policies?: string;
  agent: string;
  approvalTimeout?: string;
}

/**
 * Adds `warden mcp-gateway [--policies file] [--agent id] -- <command> [args…]` to the CLI.
 * Nothing but MCP is written to stdout; notices go to stderr.
 */
export function registerMcpGatewayCommand(program: Command): void {
  program
    .command("mcp-gateway")
    .description("serve MCP on stdio in front of the MCP server <command> starts, relaying the whole protocol, each tool call, resource read and prompt decided by policy")
    .usage("[options] -- <command> [args...]")
    .argument("<command>", "the upstream MCP server's executable")
    .argument("[args...]", "its arguments (after --)")
    .option("--policies <file>", "policy file (YAML or JSON)")
    .option("--agent <id>", "the agent calling through the gateway (a caller's own token or OAuth client id takes precedence)", "mcp-agent")
    .option("--approval-timeout <duration>", "how long a call waits for a reviewer when its policy does not say (e.g. 15m)")
    .action(async (command: string, args: string[], opts: GatewayOptions) => {
      const globals = program.opts<GlobalOptions>();
      const [{ StdioClientTransport }, { StdioServerTransport }, { createMcpGateway }] = await Promise.all([
        import("@modelcontextprotocol/sdk/client/stdio.js"),
        import("@modelcontextprotocol/sdk/server/stdio.js"),
        import("../../adapters/mcp/index.js"),
      ]).catch((error: unknown) => {
        throw new Error(`warden mcp-gateway needs @modelcontextprotocol/sdk: npm install @modelcontextprotocol/sdk (${(error as Error).message})`);
      });
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
      const upstream = new StdioClientTransport({ command, args, env, stderr: "inherit" });
      const ended = new Promise<"agent" | "upstream">((resolve) => {
        process.stdin.once("end", () => resolve("agent"));
        process.stdin.once("close", () => resolve("agent"));
        process.once("SIGTERM", () => resolve("agent"));
        process.once("SIGINT", () => resolve("agent"));
        upstream.onclose = () => resolve("upstream");
      });
      // The gateway starts the server when the agent initializes, declaring the agent's capabilities to it.
      const gateway = createMcpGateway({ warden, upstream });
      try {
        await gateway.connect(new StdioServerTransport());
        if ((await ended) === "upstream") {
          console.error(`[warden] the upstream MCP server (${command}) exited`);
          process.exitCode = 1;
        }
      } finally {
        await gateway.close().catch(() => {});
        await upstream.close().catch(() => {});
        warden.close();
      }
    });
}
