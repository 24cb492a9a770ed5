// The MCP gateway in front of the reference server (`@modelcontextprotocol/server-everything`): per-call
// time of `tools/call` (its echo tool) and `resources/read` (a generated text resource) through the
// gateway against a direct connection to the same server, over stdio and over Streamable HTTP, the
// cases interleaved call by call; then throughput with 10 sessions calling at once.
//
// stdio: the agent's client starts `warden mcp-gateway -- <server>` as its child (the gateway then starts
// the server as its own), as a host's MCP settings do; direct, it starts the server itself. HTTP: the
// gateway's handler on a loopback port in this process, in front of the server's own HTTP endpoint (one
// upstream session per agent session); direct, the client talks to that endpoint. Decisions and records
// go to a SQLite file, as in production.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { Warden, type PolicySetInput } from "agent-warden";
import { createMcpGatewayHttpHandler } from "agent-warden/mcp";
import { interleaveAsync, quick, scaled, timingRow, type BenchRow } from "./harness.js";

const GROUP = "MCP gateway (reference server)";
const REPO = fileURLToPath(new URL("..", import.meta.url));
const EVERYTHING = realpathSync(join(REPO, "node_modules/.bin/mcp-server-everything"));
const SESSIONS = 10;

/** A few rules, so each decision looks something up; none of them refuses the benchmark's calls. */
const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-system-files", when: { tool: "resource.read", "args.uri": { matches: "^file:///etc/" } }, action: "block" },
    { id: "no-writes", when: { tool: ["write_*", "delete_*"] }, action: "block" },
    { id: "flag-env", when: { tool: "get-env" }, action: "warn" },
  ],
};

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-mcp-gateway-"));
  const closers: Array<() => Promise<unknown> | unknown> = [];
  const rows: BenchRow[] = [];
  try {
    const everythingUrl = await everythingOverHttp(closers);
    const warden = new Warden({ agentId: "bench-gateway", store: join(dir, "http.db"), policies });
    closers.push(() => warden.close());
    const gatewayUrl = await httpGateway(warden, everythingUrl, closers);

    const gatewayStdio = () =>
      new StdioClientTransport({
        command: process.execPath,
        args: ["--import", "tsx", "src/cli/bin.ts", "--store", join(dir, `stdio-${Math.random().toString(36).slice(2)}.db`), "mcp-gateway", "--policies", writePolicies(dir), "--", process.execPath, EVERYTHING, "stdio"],
        cwd: REPO,
        env: cleanEnv(),
        stderr: "ignore",
      });
    const directStdio = () => new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, "stdio"], stderr: "ignore" });
    const paths = {
      "stdio, direct": directStdio,
      "stdio, through `warden mcp-gateway`": gatewayStdio,
      "HTTP, direct": () => new StreamableHTTPClientTransport(everythingUrl),
      "HTTP, through the gateway's handler": () => new StreamableHTTPClientTransport(gatewayUrl),
    } as const;

    // Per call: one session per path, every case one call per round, the order rotated.
    const clients = new Map<string, Client>();
    for (const [name, transport] of Object.entries(paths)) clients.set(name, await connect(transport(), closers));
    const cases = [...clients].flatMap(([name, client]) => [
      { name: `tools/call echo, ${name}`, step: (i: number) => client.callTool({ name: "echo", arguments: { message: `call ${i}` } }) },
      { name: `resources/read, ${name}`, step: (i: number) => client.readResource({ uri: `demo://resource/dynamic/text/${(Math.abs(i) % 50) + 1}` }) },
    ]);
    const rounds = scaled(1500, 200);
    const timings = await interleaveAsync(cases, rounds, (r) => r, 100);
    const median = (name: string) => timings.get(name)!.medianUs;
    for (const method of ["tools/call echo", "resources/read"]) {
      for (const transport of ["stdio", "HTTP"]) {
        const direct = `${method}, ${transport}, direct`;
        const through = cases.find((c) => c.name.startsWith(`${method}, ${transport}, through`))!.name;
        rows.push(timingRow(GROUP, direct, timings.get(direct)!));
        rows.push(timingRow(GROUP, through, timings.get(through)!, `${signed(median(through) - median(direct))} µs median vs direct`));
      }
    }

    // Throughput: SESSIONS sessions each calling in a loop, all at once.
    const perSession = quick ? 100 : 400;
    for (const [name, transport] of Object.entries(paths)) {
      // Connected one after the other: starting ten gateways at once is not what is measured.
      const sessions: Client[] = [];
      for (let s = 0; s < SESSIONS; s++) sessions.push(await connect(transport(), closers));
      await Promise.all(sessions.map(async (client) => {
        for (let i = 0; i < 20; i++) await client.callTool({ name: "echo", arguments: { message: "warm" } });
      }));
      const started = performance.now();
      await Promise.all(sessions.map(async (client, s) => {
        for (let i = 0; i < perSession; i++) await client.callTool({ name: "echo", arguments: { message: `session ${s} call ${i}` } });
      }));
      const seconds = (performance.now() - started) / 1000;
      rows.push({ group: GROUP, name: `throughput, ${SESSIONS} sessions, ${name}`, samples: SESSIONS * perSession, opsPerSec: (SESSIONS * perSession) / seconds, note: "tools/call echo, each session one call at a time" });
      for (const client of sessions) await client.close().catch(() => {});
    }
  } finally {
    for (const close of closers.reverse()) await Promise.resolve().then(close).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** A difference with its sign: on a loaded machine the gateway's extra hop can land inside the noise either way. */
const signed = (us: number) => `${us < 0 ? "−" : "+"}${Math.abs(us).toFixed(0)}`;

async function connect(transport: Transport, closers: Array<() => unknown>): Promise<Client> {
  const client = new Client({ name: "bench-agent", version: "1.0.0" });
  // A gateway started from source compiles as it loads: slow on a busy machine, and not what is timed.
  await client.connect(transport, { timeout: 180_000 });
  closers.push(() => client.close());
  return client;
}

/** The policies as a file for the CLI (it reads YAML or JSON). */
function writePolicies(dir: string): string {
  const file = join(dir, "policies.json");
  writeFileSync(file, JSON.stringify(policies));
  return file;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The reference server's own Streamable HTTP endpoint, in a child process. */
async function everythingOverHttp(closers: Array<() => unknown>): Promise<URL> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [EVERYTHING, "streamableHttp"], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] });
  closers.push(() => new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  }));
  await new Promise<void>((resolve, reject) => {
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes("listening on port")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the reference server exited (${code}): ${stderr}`)));
  });
  return new URL(`http://127.0.0.1:${port}/mcp`);
}

async function httpGateway(warden: Warden, upstream: URL, closers: Array<() => unknown>): Promise<URL> {
  const handler = createMcpGatewayHttpHandler({ warden, upstream: () => new StreamableHTTPClientTransport(upstream) });
  const server = createServer((request, response) => void handler(request, response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(async () => {
    await handler.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("WARDEN_") && key !== "NODE_OPTIONS") env[key] = value;
  return env;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
  process.exit();
}
