// Every glob of a policy set in one index, so a name is matched against the globs that could match
// it rather than against all of them: globs are filed by their literal prefix (the characters before
// their first `*` or `?`), those that start with a wildcard by their literal suffix, and a short list
// holds the globs that have neither (`*`, `?m*`). A lookup hashes the name's prefixes (and suffixes)
// of the lengths some glob's literal end has, in one pass over the name (linear in its length), and
// runs the linear glob matcher only on the globs filed under them, so its cost does not grow with
// the number of unrelated globs. One hash table per direction, not a node per character: a lookup
// touches a few entries of one table, which stays in cache where a trie's nodes would not.
import { compileGlob, type Matcher } from "./pattern.js";

interface Entry<T> {
  test: Matcher;
  value: T;
  /** Length of the literal end it is filed under. */
  length: number;
}

/** Globs filed by the hash of their literal prefix (or suffix), with the distinct lengths to hash a name at. */
interface Ends<T> {
  /** Distinct lengths of the literal ends, ascending. */
  lengths: number[];
  byHash: Map<number, Entry<T>[]>;
  /** First character (last, for suffixes) of some literal end, by its low byte: most names skip the lookup. */
  firstChars: Uint8Array;
  /** `byHash` as an open-addressed table of typed arrays, rebuilt after additions: a probe reads one slot, not a Map. */
  table: Table<T> | undefined;
}

interface Table<T> {
  /** Hash + 1 per slot (0: empty), in slots a power of two and at most half full. */
  keys: Int32Array;
  /** Index into `lists` of the slot's globs. */
  values: Int32Array;
  lists: Entry<T>[][];
  mask: number;
}

const newEnds = <T>(): Ends<T> => ({ lengths: [], byHash: new Map(), firstChars: new Uint8Array(256), table: undefined });

function tableOf<T>(byHash: Map<number, Entry<T>[]>): Table<T> {
  let size = 8;
  while (size < byHash.size * 2) size *= 2;
  const table: Table<T> = { keys: new Int32Array(size), values: new Int32Array(size), lists: [], mask: size - 1 };
  for (const [hash, list] of byHash) {
    const key = hash + 1;
    let slot = key & table.mask;
    while (table.keys[slot] !== 0) slot = (slot + 1) & table.mask;
    table.keys[slot] = key;
    table.values[slot] = table.lists.push(list) - 1;
  }
  return table;
}

/**
 * Globs (as `compileGlob` reads them) indexed by their literal ends; `visit` sees the value of every
 * glob that matches a name, once per matching glob, in no particular order.
 * @example
 * import { GlobIndex } from "./glob-index.js";
 * const index = new GlobIndex<string>();
 * index.add("payments.*", "p1");
 * index.forEachMatch("payments.refund", (id) => console.log(id)); // p1
 */
export class GlobIndex<T> {
  readonly #exact = new Map<string, T[]>();
  readonly #prefixes: Ends<T> = newEnds();
  readonly #suffixes: Ends<T> = newEnds();
  readonly #rest: Entry<T>[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(pattern: string, value: T): void {
    this.#size++;
    const firstWildcard = wildcardAt(pattern);
    if (firstWildcard === -1) {
      const list = this.#exact.get(pattern);
      if (list) list.push(value);
      else this.#exact.set(pattern, [value]);
      return;
    }
    const test = compileGlob(pattern);
    if (firstWildcard > 0) return file(this.#prefixes, pattern, firstWildcard, 1, { test, value, length: firstWildcard });
    let lastWildcard = pattern.length - 1;
    while (pattern.charCodeAt(lastWildcard) !== 42 && pattern.charCodeAt(lastWildcard) !== 63) lastWildcard--;
    const suffix = pattern.length - 1 - lastWildcard;
    if (suffix > 0) return file(this.#suffixes, pattern, suffix, -1, { test, value, length: suffix });
    this.#rest.push({ test, value, length: 0 });
  }

  /** Builds the lookup tables now rather than on the first lookup after an addition. */
  compile(): void {
    this.#prefixes.table ??= tableOf(this.#prefixes.byHash);
    this.#suffixes.table ??= tableOf(this.#suffixes.byHash);
  }

  forEachMatch(name: string, visit: (value: T) => void): void {
    const found: T[] = [];
    this.collect(name, found);
    for (const value of found) visit(value);
  }

  /** Pushes the value of every glob that matches `name` onto `into`, as `forEachMatch` visits them; allocates nothing itself. */
  collect(name: string, into: T[]): void {
    if (this.#exact.size > 0) {
      const exact = this.#exact.get(name);
      if (exact !== undefined) for (const value of exact) into.push(value);
    }
    if (this.#prefixes.lengths.length > 0) lookUp(this.#prefixes, name, 1, into);
    if (this.#suffixes.lengths.length > 0) lookUp(this.#suffixes, name, -1, into);
    for (const entry of this.#rest) if (entry.test(name)) into.push(entry.value);
  }
}

function wildcardAt(pattern: string): number {
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charCodeAt(i);
    if (c === 42 /* * */ || c === 63 /* ? */) return i;
  }
  return -1;
}

// FNV-1a over UTF-16 code units, kept to 30 bits so keys stay small integers. Equal hashes of
// different strings only cost a glob test: every entry found is matched against the whole name.
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const KEY_BITS = 0x3fffffff;

/** Files `entry` under the hash of the first (`step` 1) or last (`step` -1) `length` characters of `pattern`. */
function file<T>(ends: Ends<T>, pattern: string, length: number, step: 1 | -1, entry: Entry<T>): void {
  let hash = FNV_OFFSET;
  for (let k = 0; k < length; k++) hash = Math.imul(hash ^ pattern.charCodeAt(step === 1 ? k : pattern.length - 1 - k), FNV_PRIME);
  const key = hash & KEY_BITS;
  const list = ends.byHash.get(key);
  if (list) list.push(entry);
  else ends.byHash.set(key, [entry]);
  ends.table = undefined;
  if (!ends.lengths.includes(length)) {
    ends.lengths.push(length);
    ends.lengths.sort((a, b) => a - b);
  }
  ends.firstChars[pattern.charCodeAt(step === 1 ? 0 : pattern.length - 1) & 255] = 1;
}

function lookUp<T>(ends: Ends<T>, name: string, step: 1 | -1, into: T[]): void {
  const size = name.length;
  if (size === 0 || ends.firstChars[name.charCodeAt(step === 1 ? 0 : size - 1) & 255] === 0) return;
  const lengths = ends.lengths;
  const { keys, values, lists, mask } = (ends.table ??= tableOf(ends.byHash));
  let hash = FNV_OFFSET;
  let hashed = 0;
  for (const length of lengths) {
    if (length > size) return;
    for (; hashed < length; hashed++) hash = Math.imul(hash ^ name.charCodeAt(step === 1 ? hashed : size - 1 - hashed), FNV_PRIME);
    const key = (hash & KEY_BITS) + 1;
    for (let slot = key & mask; keys[slot] !== 0; slot = (slot + 1) & mask) {
      if (keys[slot] !== key) continue;
      for (const entry of lists[values[slot]!]!) if (entry.length === length && entry.test(name)) into.push(entry.value);
      break;
    }
  }
}
