import { unsupportedNodeMessage } from "../internal/runtime.js";

// Checked before anything that needs a newer Node is loaded, so the answer is one clear sentence.
const unsupported = unsupportedNodeMessage();
if (unsupported) {
  console.error(`[warden] ${unsupported}. Install Node.js 22.13 or newer and run the command again.`);
  // A coding-agent hook fails closed: exit 2 blocks the tool, where exit 1 would let it run.
  process.exitCode = process.argv.slice(2).includes("hook") ? 2 : 1;
} else {
  const { main } = await import("./main.js");
  process.exitCode = await main(process.argv.slice(2));
}
