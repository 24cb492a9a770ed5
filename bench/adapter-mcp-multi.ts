// MCP gateway with several upstreams: one tools/call and one tools/list through a gateway in front of
// one server (relayed as it is) and in front of two (prefixed names, routed; lists merged), all
// in-memory, so the figures are the router's own cost on top of the gateway's.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { z } from "zod";
import { Warden } from "agent-warden";
import { createMcpGateway, type McpGatewayOptions } from "agent-warden/mcp";
import { measureAsync, type BenchRow, type Timing } from "./harness.js";

const GROUP = "adapters";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-mcp-multi-"));
  const rows: BenchRow[] = [];
  const row = (name: string, timing: Timing, note?: string) => rows.push({ group: GROUP, name, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec, note });
  const warden = new Warden({ agentId: "bench-mcp-multi", store: join(dir, "warden.db"), policies: { version: 1, default: "allow", policies: [{ id: "no-writes", when: { tool: "files__write_*" }, action: "block" }] } });
  const open: Client[] = [];
  const upstream = async (server: McpServer): Promise<Transport> => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    return clientSide;
  };
  const agent = async (upstreams: Pick<McpGatewayOptions, "upstream" | "upstreams">) => {
    const gateway = createMcpGateway({ warden, ...upstreams } as McpGatewayOptions);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await gateway.connect(serverSide);
    const client = new Client({ name: "bench", version: "1.0.0" });
    await client.connect(clientSide);
    open.push(client);
    return client;
  };
  try {
    const options = { samples: 500, batch: 10, warmup: 300 };
    let n = 0;
    const one = await agent({ upstream: await upstream(toolServer("orders", 20)) });
    const two = await agent({ upstreams: { orders: await upstream(toolServer("orders", 20)), files: await upstream(toolServer("files", 20)) } });
    // One run for each session, as an agent's session has: each sample is one governed call in it.
    const single = await measureAsync(() => one.callTool({ name: "lookup_0", arguments: { id: n++ } }), options);
    row("mcp callTool through createMcpGateway, 1 upstream", single, "relayed as it is");
    const routed = await measureAsync(() => two.callTool({ name: "orders__lookup_0", arguments: { id: n++ } }), options);
    row("mcp callTool through createMcpGateway, 2 upstreams", routed, `prefix routed; ${signed(routed.medianUs - single.medianUs)} µs`);
    const listOne = await measureAsync(() => one.listTools(), options);
    row("mcp tools/list through the gateway, 1 upstream (20 tools)", listOne);
    const listTwo = await measureAsync(() => two.listTools(), options);
    row("mcp tools/list through the gateway, 2 upstreams (40 tools)", listTwo, `both asked at once, merged; ${signed(listTwo.medianUs - listOne.medianUs)} µs`);
  } finally {
    for (const client of open) await client.close();
    warden.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

const signed = (value: number) => `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(0)}`;

function toolServer(name: string, tools: number): McpServer {
  const server = new McpServer({ name, version: "1.0.0" });
  for (let i = 0; i < tools; i++) server.registerTool(`lookup_${i}`, { description: `Looks up ${name} #${i}`, inputSchema: { id: z.number() } }, ({ id }) => ({ content: [{ type: "text", text: `${name} ${id}` }] }));
  return server;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
