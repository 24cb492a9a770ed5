import type { LedgerDraft } from "./sqlite-store.js";

/**
 * A ledger draft made by a constructor, not a literal: queued for the commit window, it must not come
 * from an allocation site V8 may move to old space (see the store's queue). The recorder makes them and
 * the writer thread reads them back from the hand-over text.
 */
export class Draft implements LedgerDraft {
  constructor(
    readonly id: string,
    readonly ts: number,
    readonly type: string,
    readonly org: string,
    readonly agentId: string | null,
    readonly runId: string | null,
    readonly stepId: string | null,
    readonly toolCallId: string | null,
    readonly actor: string | null,
    readonly dataJson: string,
  ) {}
}
