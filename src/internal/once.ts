/**
 * A value built on its first use, then kept. For the zod schemas of paths that a process may never take
 * (delegation tokens, remote mode, ledger verification): building them at import costs every process that
 * loads Warden, and the first `new Warden()` + `check()` needs none of them.
 */
export function once<T>(build: () => T): () => T {
  let value: T | undefined;
  let built = false;
  return () => {
    if (!built) {
      value = build();
      built = true;
    }
    return value as T;
  };
}

/**
 * A module-level object built on its first use, for the zod schemas that modules and users import by
 * name (`PolicySetSchema`): nothing is built at import, and the first property read builds it. Methods
 * are bound to the built object, so a schema derived from it (`MoneySchema.optional()`) holds the schema
 * itself rather than this stand-in.
 */
export function builtOnFirstUse<T extends object>(build: () => T): T {
  const value = once(build);
  const bound = new Map<PropertyKey, { of: Function; method: Function }>();
  return new Proxy({} as T, {
    get(_, key) {
      const target = value();
      const property: unknown = Reflect.get(target, key, target);
      if (typeof property !== "function") return property;
      const cached = bound.get(key);
      if (cached?.of === property) return cached.method;
      const method = property.bind(target);
      bound.set(key, { of: property, method });
      return method;
    },
    has: (_, key) => Reflect.has(value(), key),
    ownKeys: () => Reflect.ownKeys(value()),
    // Reported configurable: the stand-in holds none of them itself (a proxy may not report otherwise).
    getOwnPropertyDescriptor(_, key) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value(), key);
      return descriptor && { ...descriptor, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(value()),
    set: (_, key, property) => Reflect.set(value(), key, property),
    defineProperty: (_, key, descriptor) => Reflect.defineProperty(value(), key, descriptor),
    deleteProperty: (_, key) => Reflect.deleteProperty(value(), key),
  });
}
