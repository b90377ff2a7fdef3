// Values derived again and again from keys that keep coming back (digests, names, compiled
// patterns, parsed strings): made once and then looked up. A memo forgets everything once it holds
// `max` entries, so its memory stays bounded and a forgotten value is only made again.
export class Memo<K, V> {
  private readonly values = new Map<K, V>();

  constructor(
    private readonly max: number,
    private readonly make: (key: K) => V,
  ) {}

  get(key: K): V {
    let value = this.values.get(key);
    if (value === undefined) {
      if (this.values.size >= this.max) this.values.clear();
      value = this.make(key);
      this.values.set(key, value);
    }
    return value;
  }
}
