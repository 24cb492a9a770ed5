// Every glob of a policy set in one index, so a name is matched against the globs that could match
// it rather than against all of them: a trie over each glob's literal prefix (the characters before
// its first `*` or `?`), a second trie over the literal suffix of globs that start with a wildcard,
// and a short list for the globs that have neither (`*`, `?m*`). A lookup walks the name once per
// trie (linear in its length) and runs the linear glob matcher only on the globs whose literal
// prefix or suffix the name carries, so its cost does not grow with the number of unrelated globs.
import { compileGlob, type Matcher } from "./pattern.js";

interface Entry<T> {
  test: Matcher;
  value: T;
}

interface Node<T> {
  next: Map<number, Node<T>> | undefined;
  entries: Entry<T>[] | undefined;
}

const newNode = <T>(): Node<T> => ({ next: undefined, entries: undefined });

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
  readonly #prefixes: Node<T> = newNode();
  readonly #suffixes: Node<T> = newNode();
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
    const entry: Entry<T> = { test: compileGlob(pattern), value };
    if (firstWildcard > 0) return insert(this.#prefixes, pattern, 0, firstWildcard, 1, entry);
    let lastWildcard = pattern.length - 1;
    while (pattern.charCodeAt(lastWildcard) !== 42 && pattern.charCodeAt(lastWildcard) !== 63) lastWildcard--;
    if (lastWildcard < pattern.length - 1) return insert(this.#suffixes, pattern, pattern.length - 1, lastWildcard, -1, entry);
    this.#rest.push(entry);
  }

  forEachMatch(name: string, visit: (value: T) => void): void {
    const found: T[] = [];
    this.collect(name, found);
    for (const value of found) visit(value);
  }

  /** Pushes the value of every glob that matches `name` onto `into`, as `forEachMatch` visits them; allocates nothing itself. */
  collect(name: string, into: T[]): void {
    const exact = this.#exact.get(name);
    if (exact !== undefined) for (const value of exact) into.push(value);
    walk(this.#prefixes, name, 0, name.length, 1, into);
    walk(this.#suffixes, name, name.length - 1, -1, -1, into);
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

/** Inserts the characters of `pattern` from `from` (inclusive) to `to` (exclusive), stepping by `step`. */
function insert<T>(root: Node<T>, pattern: string, from: number, to: number, step: 1 | -1, entry: Entry<T>): void {
  let node = root;
  for (let i = from; i !== to; i += step) {
    const c = pattern.charCodeAt(i);
    node.next ??= new Map();
    let child = node.next.get(c);
    if (child === undefined) node.next.set(c, (child = newNode()));
    node = child;
  }
  (node.entries ??= []).push(entry);
}

function walk<T>(root: Node<T>, name: string, from: number, to: number, step: 1 | -1, into: T[]): void {
  let node: Node<T> | undefined = root;
  for (let i = from; i !== to; i += step) {
    node = node.next?.get(name.charCodeAt(i));
    if (node === undefined) return;
    if (node.entries !== undefined) for (const entry of node.entries) if (entry.test(name)) into.push(entry.value);
  }
}
