// The console's Verify page checks bundles in the browser with agent-warden/verify itself: one browser
// ES module bundled from src/verify. The package build writes it to dist/console/verify.js; run from
// source (tests, development), it is bundled on first request and kept in memory.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BuildOptions } from "esbuild";
import type { Request, Response } from "express";

/** The asset's name beside the console's other files. */
export const VERIFY_ASSET = "verifier.js";

/** What esbuild needs to bundle the verifier for a browser: no Node built-in can resolve on this platform. */
export function verifyBundleOptions(entry: string): BuildOptions {
  return { entryPoints: [entry], bundle: true, format: "esm", platform: "browser", target: "es2022", minify: true, legalComments: "none", metafile: true };
}

/** Bundles src/verify for a browser (esbuild is a build-time tool: only reached when running from source). */
export async function bundleVerifier(entry = fileURLToPath(new URL("../verify/index.ts", import.meta.url))): Promise<{ text: string; inputs: string[]; imports: string[] }> {
  const { build } = await import("esbuild");
  const result = await build({ ...verifyBundleOptions(entry), write: false, outdir: "out", logLevel: "silent" });
  const metafile = result.metafile!;
  const output = Object.values(metafile.outputs)[0]!;
  return { text: result.outputFiles![0]!.text, inputs: Object.keys(metafile.inputs), imports: output.imports.map((i) => i.path) };
}

/**
 * A handler serving the verifier bundled from source when the assets folder holds no built one; undefined
 * when it does (the static files serve it).
 */
export function verifyAssetFromSource(assets: string): ((request: Request, response: Response) => Promise<void>) | undefined {
  if (existsSync(join(assets, VERIFY_ASSET))) return undefined;
  let bundled: Promise<string> | undefined;
  return async (_request, response) => {
    bundled ??= bundleVerifier().then((b) => b.text);
    let text: string;
    try {
      text = await bundled;
    } catch (error) {
      bundled = undefined;
      throw error;
    }
    response.type("text/javascript").send(text);
  };
}
