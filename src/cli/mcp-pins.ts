// `warden mcp pins`: the tool definitions the MCP gateway pinned, and accepting a changed one.
import type { Command } from "commander";
import { InvalidInputError } from "../errors.js";
import type { ToolPinRecord } from "../tool-pins.js";
import type { Warden } from "../warden.js";

interface PinsHelpers {
  /** Opens the store (refusing one that does not exist), runs `fn`, closes. */
  withWarden: <T>(fn: (warden: Warden) => T | Promise<T>) => Promise<T>;
  print: (value: unknown, text: () => string) => void;
  actor: () => string;
}

/** Adds `warden mcp pins [--accept <server>/<tool>]` under `warden mcp`. */
export function registerMcpPinsCommand(mcp: Command, helpers: PinsHelpers): void {
  mcp
    .command("pins")
    .description("list the tool definitions the MCP gateway pinned (server, tool, hash, first seen, status: pinned, flagged, changed, accepted); --accept a changed or flagged one")
    .option("--accept <server/tool>", "accept the definition the server serves now: calls to the tool are no longer held for it")
    .option("--server <name>", "only this server's tools")
    .action(async (opts: { accept?: string; server?: string }) => {
      await helpers.withWarden((warden) => {
        if (opts.accept !== undefined) {
          const { server, tool } = parsePinName(opts.accept);
          const pin = warden.toolPins.accept(server, tool, { actor: helpers.actor() });
          helpers.print(pin, () => `accepted ${pin.server}/${pin.tool} ${pin.hash.slice(0, 12)}`);
          return;
        }
        const pins = warden.toolPins.list({ server: opts.server });
        helpers.print(pins, () => (pins.length === 0 ? "no pinned tools" : formatPins(pins)));
      });
    });
}

/** `<server>/<tool>`, split at the last slash (server names such as `example-servers/everything` have one). */
export function parsePinName(value: string): { server: string; tool: string } {
  const at = value.lastIndexOf("/");
  if (at <= 0 || at === value.length - 1) throw new InvalidInputError(`--accept expects <server>/<tool> (as "warden mcp pins" lists them), got "${value}"`);
  return { server: value.slice(0, at), tool: value.slice(at + 1) };
}

function formatPins(pins: readonly ToolPinRecord[]): string {
  const name = (pin: ToolPinRecord) => `${pin.server}/${pin.tool}`;
  const width = Math.min(48, Math.max(...pins.map((pin) => name(pin).length)));
  return pins
    .map((pin) => {
      const line = `${name(pin).padEnd(width)}  ${pin.hash.slice(0, 12)}  ${new Date(pin.firstSeenAt).toISOString()}  ${pin.status}`;
      const notes = [
        pin.changed && `now ${pin.changed.hash.slice(0, 12)} since ${new Date(pin.changed.seenAt).toISOString()}`,
        pin.findings.length > 0 && pin.status !== "accepted" && pin.findings.join("; "),
        pin.accepted && `accepted ${new Date(pin.accepted.at).toISOString()}${pin.accepted.by ? ` by ${pin.accepted.by}` : ""}`,
      ].filter(Boolean);
      return notes.length > 0 ? `${line}  (${notes.join("; ")})` : line;
    })
    .join("\n");
}
