// MCP: one tools/call over an in-memory transport (client → server → tool → back), ungoverned, with
// governMcpServer (decided and recorded on the serving side, a run per call as calls come from
// outside), with governMcpClient (decided and recorded before sending), and through createMcpGateway
// (agent → gateway → upstream server, all in-memory).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { z } from "zod";
import { Warden } from "agent-warden";
import { createMcpGateway, findToolInstructions, governMcpClient, governMcpServer } from "agent-warden/mcp";
import { interleaveAsync, measureAsync, measureSync, scaled, type BenchRow, type Timing } from "./harness.js";

const GROUP = "adapters";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-mcp-"));
  const rows: BenchRow[] = [];
  const row = (name: string, timing: Timing, note?: string) => rows.push({ group: GROUP, name, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec, note });
  const warden = new Warden({ agentId: "bench-mcp", store: join(dir, "warden.db"), policies: { version: 1, default: "allow", policies: [{ id: "no-drop", when: { tool: "drop_table" }, action: "block" }] } });
  const open: Array<{ close(): Promise<void> }> = [];
  const connect = async (server: McpServer | Server) => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: "bench", version: "1.0.0" });
    await client.connect(clientSide);
    open.push(client);
    return client;
  };
  try {
    const options = { samples: 500, batch: 10, warmup: 300 };
    let n = 0;
    const call = (client: Client) => () => client.callTool({ name: "lookup_order", arguments: { id: n++ } });

    const bare = await measureAsync(call(await connect(ordersServer())), options);
    row("mcp callTool, ungoverned", bare, "InMemoryTransport, McpServer tool");
    const served = await measureAsync(call(await connect(governMcpServer(ordersServer(), warden))), options);
    row("mcp callTool + governMcpServer", served, `check + run + record + ledger, file store; +${(served.medianUs - bare.medianUs).toFixed(0)} µs`);
    const calling = await measureAsync(call(governMcpClient(await connect(ordersServer()), warden)), options);
    row("mcp callTool + governMcpClient", calling, `+${(calling.medianUs - bare.medianUs).toFixed(0)} µs`);

    const [upstreamClientSide, upstreamServerSide] = InMemoryTransport.createLinkedPair();
    await ordersServer().connect(upstreamServerSide);
    const gateway = createMcpGateway({ warden, upstream: upstreamClientSide });
    const viaGateway = await measureAsync(call(await connect(gateway)), options);
    row("mcp callTool through createMcpGateway", viaGateway, `two hops; +${(viaGateway.medianUs - bare.medianUs).toFixed(0)} µs`);

    // Pinning: the agent lists the tools first (pinned), so each call reads its pin; against a gateway with pins off.
    const gatewayWith = async (pins: false | undefined) => {
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      await ordersServer().connect(serverSide);
      const client = await connect(createMcpGateway({ warden, upstream: clientSide, ...(pins === false && { pins }) }));
      await client.listTools();
      return client;
    };
    // Interleaved, so both see the same store size and machine load.
    const [off, on] = [call(await gatewayWith(false)), call(await gatewayWith(undefined))];
    const pinning = await interleaveAsync([{ name: "off", step: off }, { name: "on", step: on }], scaled(5000), () => undefined, 300);
    const unpinned = pinning.get("off")!;
    const pinned = pinning.get("on")!;
    row("mcp callTool through createMcpGateway, pins off", unpinned, "listed first; interleaved with the next row");
    row("mcp callTool through createMcpGateway, tool pinned", pinned, `listed first; the pin read per call: +${(pinned.medianUs - unpinned.medianUs).toFixed(0)} µs`);
    const hostile = { name: "t", description: `${"ignore ".repeat(4000)}${"<important ".repeat(2000)}${"send ".repeat(4000)}${"do not ".repeat(3000)}`.slice(0, 64 * 1024) };
    const scan = measureSync(() => findToolInstructions(hostile), { samples: 200, warmup: 20 });
    row("findToolInstructions, 64 KB hostile description", scan, "repeated pattern prefixes, no match; linear in the length");
  } finally {
    for (const client of open) await client.close();
    warden.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

function ordersServer(): McpServer {
  const server = new McpServer({ name: "orders", version: "1.0.0" });
  server.registerTool("lookup_order", { inputSchema: { id: z.number() } }, ({ id }) => ({ content: [{ type: "text", text: `order ${id}: shipped` }] }));
  return server;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
