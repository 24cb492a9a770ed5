// Replicas of the control plane on one PostgreSQL database share what they count: the per-organization
// and per-key stream limits hold across replicas, not per replica.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWardenServer, type PostgresControlPlaneStore, type WardenServer } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";

/** Opens a stream; resolves with its status and a way to close it. */
async function openStream(url: string, key: string): Promise<{ status: number; retryAfter: string | null; close: () => void }> {
  const controller = new AbortController();
  const response = await fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${key}` }, signal: controller.signal });
  if (response.status !== 200) await response.text();
  return { status: response.status, retryAfter: response.headers.get("retry-after"), close: () => controller.abort() };
}

describe.skipIf(POSTGRES_SKIP !== undefined)(`replicas on one PostgreSQL database share their counters${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, () => {
  let cluster: PostgresCluster;
  const replicas: Array<{ server: WardenServer; url: string }> = [];
  const keys: string[] = [];

  beforeAll(async () => {
    cluster = await startPostgres();
    const database = cluster.createDatabase("warden_counters");
    for (let i = 0; i < 2; i++) {
      const server = createWardenServer({ database, console: false, maxStreams: 3, maxStreamsPerKey: 2, onError: () => {} });
      await (server.store as PostgresControlPlaneStore).ready();
      replicas.push({ server, url: (await server.listen(0)).url });
    }
    for (const name of ["one", "two", "three"]) keys.push((await replicas[0]!.server.store.createKey({ org: "acme", role: "agent", name })).key);
  }, 120_000);

  afterAll(async () => {
    for (const { server } of replicas) await server.close();
    cluster?.stop();
  });

  it("one key's streams on replica A count on replica B; the organization's limit spans both; a closed stream frees its slot", async () => {
    const [A, B] = replicas.map((replica) => replica.url) as [string, string];
    const first = await openStream(A, keys[0]!);
    const second = await openStream(B, keys[0]!);
    expect([first.status, second.status]).toEqual([200, 200]);
    // The key holds two streams, one on each replica: a third is refused on either.
    const third = await openStream(A, keys[0]!);
    expect(third).toMatchObject({ status: 503, retryAfter: "5" });
    expect((await openStream(B, keys[0]!)).status).toBe(503);
    // Another key takes the organization's third slot on B; a fourth stream is refused on A.
    const other = await openStream(B, keys[1]!);
    expect(other.status).toBe(200);
    expect((await openStream(A, keys[2]!)).status).toBe(503);
    // Closing a stream on B frees a slot that A sees.
    other.close();
    let reopened = 503;
    for (let i = 0; i < 50 && reopened !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const attempt = await openStream(A, keys[2]!);
      reopened = attempt.status;
      if (attempt.status === 200) attempt.close();
    }
    expect(reopened).toBe(200);
    first.close();
    second.close();
  }, 30_000);
});
