import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests import what users import; the aliases point those paths at the source.
    alias: [
      { find: /^agent-warden$/, replacement: here("./src/index.ts") },
      { find: /^agent-warden\/server$/, replacement: here("./src/server/index.ts") },
      { find: /^agent-warden\/witness$/, replacement: here("./src/witness/index.ts") },
      { find: /^agent-warden\/(.*)$/, replacement: here("./adapters/$1/index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Most slow files wait on child processes, PostgreSQL or Chromium rather than the CPU: one file more
    // than there are cores keeps the machine busy (vitest's default leaves one core idle).
    maxWorkers: availableParallelism() + 1,
    // A worker runs file after file in one process, keeping the modules it has loaded (src, the frameworks,
    // express, pg): loading them afresh for every file was about 40% of the in-process files' CPU. Files
    // put back what they change in the process (stubbed globals and env, fake timers, OTel's context
    // manager, the OpenAI Agents trace processors) in their after hooks.
    isolate: false,
    // One PostgreSQL cluster for the run, started when a file first asks (test/fixtures/postgres.ts).
    globalSetup: ["test/fixtures/postgres-setup.ts"],
  },
});
