import { z } from "zod";
import { builtOnFirstUse } from "../internal/once.js";
import { parseWitnessKey } from "./cosignature.js";

/** A witness the ledger asks for cosignatures: where it answers, and its verifier key (`warden witness` prints it). */
export const WitnessConfigSchema = builtOnFirstUse(() =>
  z.strictObject({
    url: z.url({ protocol: /^https?$/ }),
    key: z.string().refine((k) => parseWitnessKey(k) !== undefined, "not a witness verifier key (<name>+<key id>+<base64 key>)"),
  }),
);
export type WitnessConfig = z.infer<typeof WitnessConfigSchema>;
