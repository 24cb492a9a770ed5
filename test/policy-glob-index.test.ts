import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GlobIndex } from "../src/policy/glob-index.js";
import { compileGlob } from "../src/policy/pattern.js";

// Small alphabet so patterns and names share prefixes, suffixes and wildcards often.
const char = fc.constantFrom("a", "b", ".", "_");
const patternChar = fc.constantFrom("a", "b", ".", "_", "*", "?");
const name = fc.array(char, { maxLength: 8 }).map((cs) => cs.join(""));
const pattern = fc.array(patternChar, { maxLength: 7 }).map((cs) => cs.join(""));

describe("GlobIndex", () => {
  it("finds exactly the globs that match a name, each once, as matching them one by one does", () => {
    fc.assert(
      fc.property(fc.array(pattern, { maxLength: 30 }), fc.array(name, { minLength: 1, maxLength: 20 }), (patterns, names) => {
        const index = new GlobIndex<number>();
        patterns.forEach((p, i) => index.add(p, i));
        expect(index.size).toBe(patterns.length);
        for (const n of names) {
          const found: number[] = [];
          index.forEachMatch(n, (i) => found.push(i));
          const expected = patterns.flatMap((p, i) => (compileGlob(p)(n) ? [i] : []));
          expect(found.sort((a, b) => a - b)).toEqual(expected);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("indexes literal prefixes, literal suffixes and bare wildcards", () => {
    const index = new GlobIndex<string>();
    for (const p of ["payments.*", "*.refund", "*", "?m", "pay*s", "deploy", "a*b*c"]) index.add(p, p);
    const matches = (n: string) => {
      const found: string[] = [];
      index.forEachMatch(n, (p) => found.push(p));
      return found.sort();
    };
    expect(matches("payments.refund")).toEqual(["*", "*.refund", "payments.*"]);
    expect(matches("rm")).toEqual(["*", "?m"]);
    expect(matches("payments")).toEqual(["*", "pay*s"]);
    expect(matches("deploy")).toEqual(["*", "deploy"]);
    expect(matches("axbyc")).toEqual(["*", "a*b*c"]);
    expect(matches("")).toEqual(["*"]);
  });
});
