// Behind a TLS-terminating proxy: with `trustProxy`, X-Forwarded-Proto: https marks the console's
// session cookie Secure; without it, a forwarded header is not believed.
import { afterEach, describe, expect, it } from "vitest";
import { createWardenServer, type WardenServer } from "agent-warden/server";

const servers: WardenServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function signIn(options: { trustProxy?: number }): Promise<string> {
  const server = createWardenServer({ db: ":memory:", onError: () => {}, ...options });
  servers.push(server);
  const reviewer = (await server.store.createKey({ org: "default", role: "reviewer", name: "bob" })).key;
  const { url } = await server.listen(0);
  const response = await fetch(`${url}/console/session`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-forwarded-proto": "https", origin: url },
    body: JSON.stringify({ apiKey: reviewer }),
  });
  expect(response.status).toBe(201);
  return response.headers.get("set-cookie")!;
}

describe("trustProxy", () => {
  it("marks the session cookie Secure when the proxy says the request came over HTTPS", async () => {
    expect(await signIn({ trustProxy: 1 })).toContain("Secure");
  });

  it("does not believe X-Forwarded-Proto from a client without it", async () => {
    expect(await signIn({})).not.toContain("Secure");
  });
});
