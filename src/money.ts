import { z } from "zod";
import { ConfigError, InvalidInputError } from "./errors.js";
import { builtOnFirstUse } from "./internal/once.js";

/** An amount in integer minor units (cents) with an ISO 4217 currency. Never a float. */
export const MoneySchema = builtOnFirstUse(() =>
  z.object({
    amount: z.number().int().nonnegative(),
    currency: z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 code such as EUR"),
  }),
);
/**
 * An amount in integer minor units (cents) with an ISO 4217 currency, never a float, so caps and
 * budgets compare exactly.
 * @example
 * import type { Money } from "agent-warden";
 * const cap: Money = { amount: 50000, currency: "EUR" }; // €500.00
 */
export type Money = z.infer<typeof MoneySchema>;

/**
 * Exchange rates as decimal strings (`{ USD: { EUR: "0.92" } }`: 1 USD = 0.92 EUR), kept exact as
 * integer ratios so no money passes through floating point.
 */
export const CurrencyTableSchema = builtOnFirstUse(() =>
  z.record(z.string().regex(/^[A-Z]{3}$/), z.record(z.string().regex(/^[A-Z]{3}$/), z.string().regex(/^\d+(\.\d+)?$/, "a decimal string such as \"0.92\""))),
);
/**
 * Exchange rates as decimal strings, so budgets and token caps can compare amounts in different
 * currencies: `new Warden({ currencies })`.
 * @example
 * import type { CurrencyTable } from "agent-warden";
 * const currencies: CurrencyTable = { USD: { EUR: "0.92" } }; // 1 USD = 0.92 EUR; EUR→USD is derived
 */
export type CurrencyTable = z.infer<typeof CurrencyTableSchema>;

interface Ratio {
  num: bigint;
  den: bigint;
}

function parseRatio(text: string): Ratio {
  const [whole, frac = ""] = text.split(".");
  return { num: BigInt(whole + frac), den: 10n ** BigInt(frac.length) };
}

/**
 * Converts money between currencies with a rate table, exactly (no floating point), for comparing an
 * amount with a cap in another currency; inverse rates are derived when only one direction is given.
 * @example
 * import { CurrencyConverter } from "agent-warden";
 * const converter = new CurrencyConverter({ USD: { EUR: "0.92" } });
 * converter.convert({ amount: 1000, currency: "USD" }, "EUR"); // { amount: 920, currency: "EUR" }
 */
export class CurrencyConverter {
  readonly #rates = new Map<string, Ratio>();

  constructor(table: CurrencyTable = {}) {
    // No rates (most clients): nothing to check, and the table's schema is not built.
    if (typeof table === "object" && table !== null && Object.keys(table).length === 0) return;
    const parsed = CurrencyTableSchema.safeParse(table);
    if (!parsed.success) throw new ConfigError(`invalid currency table: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    for (const [from, targets] of Object.entries(parsed.data)) {
      for (const [to, rate] of Object.entries(targets)) {
        const ratio = parseRatio(rate);
        if (ratio.num === 0n) throw new ConfigError(`currency rate ${from}→${to} is zero`);
        this.#rates.set(`${from}:${to}`, ratio);
        if (!this.#rates.has(`${to}:${from}`)) this.#rates.set(`${to}:${from}`, { num: ratio.den, den: ratio.num });
      }
    }
  }

  /** Converts `money` into `currency`, rounding half away from zero to the minor unit. */
  convert(money: Money, currency: string): Money {
    if (money.currency === currency) return money;
    const ratio = this.#rates.get(`${money.currency}:${currency}`);
    if (!ratio) throw new InvalidInputError(`no exchange rate from ${money.currency} to ${currency}`);
    const scaled = BigInt(money.amount) * ratio.num;
    const amount = (scaled * 2n + ratio.den) / (ratio.den * 2n);
    return { amount: Number(amount), currency };
  }

  /** True when `money` is at most `cap` once converted into the cap's currency. */
  within(money: Money, cap: Money): boolean {
    return this.convert(money, cap.currency).amount <= cap.amount;
  }
}
