// Runs before the test command and the demo: on a Node too old for node:sqlite, say so in one sentence
// instead of minutes of failing tests. Plain JavaScript, so it runs on any Node.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  console.error(`agent-warden needs Node.js 22.13 or newer (it stores with node:sqlite); this is v${process.versions.node}.`);
  process.exit(1);
}
