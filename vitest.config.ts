import { existsSync, statfsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// Tests write hundreds of throwaway stores (SQLite files, spools, PostgreSQL clusters) under tmpdir():
// in memory, their fsyncs stop queueing behind the disk. Only where /dev/shm has room (Docker gives it
// 64 MB by default), and never over a TMPDIR the caller chose. Workers and the processes tests spawn
// inherit it.
const SHM = "/dev/shm";
if (process.env.TMPDIR === undefined && existsSync(SHM)) {
  const { bavail, bsize } = statfsSync(SHM);
  if (bavail * bsize >= 2 * 1024 ** 3) process.env.TMPDIR = SHM;
}

export default defineConfig({
  resolve: {
    // Tests import what users import; the aliases point those paths at the source.
    alias: [
      { find: /^agent-warden$/, replacement: here("./src/index.ts") },
      { find: /^agent-warden\/server$/, replacement: here("./src/server/index.ts") },
      { find: /^agent-warden\/witness$/, replacement: here("./src/witness/index.ts") },
      { find: /^agent-warden\/verify$/, replacement: here("./src/verify/index.ts") },
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
