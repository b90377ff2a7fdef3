// In-memory working state of the correlator, kept as JSON-serializable rows by kind and key, with
// the rows changed since the last commit tracked so that a batch writes only what it touched.
export type EntityRow = { kind: string; key: string; body: unknown };
export type EntityChange = { kind: string; key: string; body: unknown | null };

export class EntityCache {
  private readonly tables = new Map<string, Map<string, unknown>>();
  private readonly dirty = new Map<string, Set<string>>();

  private table(kind: string): Map<string, unknown> {
    let t = this.tables.get(kind);
    if (!t) {
      t = new Map();
      this.tables.set(kind, t);
    }
    return t;
  }

  get<T>(kind: string, key: string): T | undefined {
    return this.tables.get(kind)?.get(key) as T | undefined;
  }

  /** Stores a row and marks it for the next commit. */
  set<T>(kind: string, key: string, body: T): T {
    this.table(kind).set(key, body);
    this.touch(kind, key);
    return body;
  }

  /** Marks a row mutated in place for the next commit. */
  touch(kind: string, key: string): void {
    let d = this.dirty.get(kind);
    if (!d) {
      d = new Set();
      this.dirty.set(kind, d);
    }
    d.add(key);
  }

  delete(kind: string, key: string): void {
    if (this.tables.get(kind)?.delete(key)) this.touch(kind, key);
  }

  values<T>(kind: string): IterableIterator<T> {
    return this.table(kind).values() as IterableIterator<T>;
  }

  /**
   * The rows of a kind, live: a row deleted meanwhile is not visited (pruning deletes as it goes,
   * without a copy of every row first), a row added meanwhile is.
   */
  entries<T>(kind: string): IterableIterator<[string, T]> {
    return this.table(kind).entries() as IterableIterator<[string, T]>;
  }

  size(kind: string): number {
    return this.tables.get(kind)?.size ?? 0;
  }

  /** Restores a row read from the store (not dirty). */
  load(row: EntityRow): void {
    this.table(row.kind).set(row.key, row.body);
  }

  /** The rows changed since the last call; deleted rows have a null body. */
  drainChanges(): EntityChange[] {
    const out: EntityChange[] = [];
    for (const [kind, keys] of this.dirty) {
      const t = this.tables.get(kind);
      for (const key of keys) out.push({ kind, key, body: t?.get(key) ?? null });
    }
    this.dirty.clear();
    return out;
  }
}
