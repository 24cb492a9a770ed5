import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { ConfigError, WardenError } from "agent-warden";
import { z } from "zod";
import { checkServerNames } from "./upstreams.js";

const stringMap = z.record(z.string(), z.string());

/** A server the gateway starts as its child and speaks to over stdio. */
const stdioServerSchema = z.object({
  type: z.literal("stdio").optional(),
  command: z.string().min(1),
  args: z.array(z.string()).optional(),
  env: stringMap.optional(),
  /** Relative to the config file. */
  cwd: z.string().optional(),
  disabled: z.boolean().optional(),
});

/** A server reached over Streamable HTTP. */
const httpServerSchema = z.object({
  type: z.enum(["http", "streamable-http", "streamableHttp"]).optional(),
  url: z.url({ protocol: /^https?$/ }),
  headers: stringMap.optional(),
  disabled: z.boolean().optional(),
});

const configFileSchema = z.object({ mcpServers: z.record(z.string(), z.unknown()) });

/**
 * One server of an MCP config file, as hosts write it: `{ command, args, env, cwd }` for a server
 * started over stdio, `{ url, headers }` for one that speaks Streamable HTTP.
 * @example
 * import type { McpServerConfig } from "agent-warden/mcp";
 * const files: McpServerConfig = { command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "./docs"] };
 */
export type McpServerConfig = z.output<typeof stdioServerSchema> | z.output<typeof httpServerSchema>;

/**
 * A loaded MCP config: its servers by name (disabled ones left out, `${VAR}` expanded) and new
 * transports to them, for `createMcpGateway({ upstreams })` or, per session, the HTTP handler.
 * @example
 * import { createMcpGateway, loadMcpConfig } from "agent-warden/mcp";
 * const config = await loadMcpConfig("mcp.json");
 * const gateway = createMcpGateway({ warden, upstreams: config.transports() });
 */
export interface McpConfig {
  servers: Record<string, McpServerConfig>;
  /** A new transport to each server, by name: a child process for each stdio server, a client for each URL. */
  transports(): Record<string, Transport>;
}

/**
 * Options of `loadMcpConfig` and `parseMcpConfig`.
 * @example
 * import { loadMcpConfig } from "agent-warden/mcp";
 * await loadMcpConfig("mcp.json", { env: { GITHUB_TOKEN: "…" }, stderr: "ignore" });
 */
export interface McpConfigOptions {
  /** Where `${VAR}` and `${VAR:-default}` in commands, arguments, env, URLs and headers are read from. Default: `process.env`. */
  env?: Record<string, string | undefined> | undefined;
  /** What becomes of a stdio server's stderr. Default `inherit`: the gateway's own stderr (its stdout is MCP's). */
  stderr?: "inherit" | "ignore" | "pipe" | undefined;
}

/**
 * Reads an MCP config file in the shape hosts use (`{ "mcpServers": { "files": { "command": … },
 * "github": { "url": …, "headers": … } } }`). A mistake throws `ConfigError` naming the file and field.
 * @example
 * import { createMcpGatewayHttpHandler, loadMcpConfig } from "agent-warden/mcp";
 * const config = await loadMcpConfig("mcp.json");
 * const handler = createMcpGatewayHttpHandler({ warden, upstreams: () => config.transports() });
 */
export async function loadMcpConfig(file: string, options: McpConfigOptions = {}): Promise<McpConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read MCP config ${file}: ${(error as Error).message}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // Where, but not the snippet of the file JSON.parse may quote: it can hold a header's token.
    const at = /line \d+ column \d+|position \d+/.exec((error as Error).message)?.[0];
    throw new ConfigError(`MCP config ${file} is not JSON${at === undefined ? "" : ` (${at})`}`);
  }
  return parseMcpConfig(value, { ...options, file });
}

/**
 * Validates an MCP config already read (see `loadMcpConfig`); `file` names it in errors and is where a relative `cwd` starts.
 * @example
 * import { parseMcpConfig } from "agent-warden/mcp";
 * const config = parseMcpConfig({ mcpServers: { files: { command: "mcp-server-filesystem", args: ["./docs"] } } });
 */
export function parseMcpConfig(value: unknown, options: McpConfigOptions & { file?: string | undefined } = {}): McpConfig {
  const where = options.file === undefined ? "MCP config" : `MCP config ${options.file}`;
  const fail = (path: Array<PropertyKey>, message: string): never => {
    throw new ConfigError(`invalid ${where}: ${path.map(String).join(".") || "(root)"}: ${message}`);
  };
  const file = configFileSchema.safeParse(value);
  if (!file.success) {
    const issue = file.error.issues[0]!;
    return fail(issue.path, issue.path.length === 0 ? 'expected an object with "mcpServers"' : issue.message);
  }
  const env = options.env ?? process.env;
  const base = options.file === undefined ? process.cwd() : dirname(resolve(options.file));
  const servers: Record<string, McpServerConfig> = {};
  for (const [name, entry] of Object.entries(file.data.mcpServers)) {
    const path = ["mcpServers", name];
    const raw = (typeof entry === "object" && entry !== null ? entry : {}) as Record<string, unknown>;
    if (raw.type === "sse") fail([...path, "type"], "the SSE transport is deprecated and not supported: use a server's Streamable HTTP endpoint");
    const schema = "url" in raw || raw.type === "http" || raw.type === "streamable-http" || raw.type === "streamableHttp" ? httpServerSchema : "command" in raw ? stdioServerSchema : undefined;
    if (schema === undefined) fail(path, 'expected "command" (a server started over stdio) or "url" (a Streamable HTTP server)');
    const expanded = expand(entry, env, path, fail);
    const parsed = schema!.safeParse(expanded);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      fail([...path, ...issue.path], issue.message);
    }
    const server = parsed.data!;
    if (server.disabled === true) continue;
    servers[name] = "command" in server && server.cwd !== undefined ? { ...server, cwd: resolve(base, server.cwd) } : server;
  }
  try {
    checkServerNames(Object.keys(servers));
  } catch (error) {
    if (WardenError.isInstance(error)) throw new ConfigError(`invalid ${where}: mcpServers: ${error.message.replace(/^\[warden\] /, "")}`);
    throw error;
  }
  const stderr = options.stderr ?? "inherit";
  return {
    servers,
    transports: () => Object.fromEntries(Object.entries(servers).map(([name, server]) => [name, transportTo(server, stderr)])),
  };
}

function transportTo(server: McpServerConfig, stderr: "inherit" | "ignore" | "pipe"): Transport {
  if ("url" in server) return new StreamableHTTPClientTransport(new URL(server.url), server.headers === undefined ? undefined : { requestInit: { headers: server.headers } });
  // The SDK adds a safe default environment (PATH, HOME…) to the one configured, as hosts do.
  return new StdioClientTransport({ command: server.command, args: server.args ?? [], stderr, ...(server.env !== undefined && { env: server.env }), ...(server.cwd !== undefined && { cwd: server.cwd }) });
}

/** `${VAR}` and `${VAR:-default}` in every string of a server's entry, as hosts expand them; a variable unset without a default is a mistake. */
function expand(value: unknown, env: Record<string, string | undefined>, path: PropertyKey[], fail: (path: PropertyKey[], message: string) => never): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== "") return found;
      if (fallback !== undefined) return fallback;
      return fail(path, `environment variable ${name} is not set (write \${${name}:-default} for a default)`);
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => expand(item, env, [...path, index], fail));
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expand(item, env, [...path, key], fail)]));
  return value;
}
