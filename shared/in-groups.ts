// Work on many remote things (instances, compartments) a few at a time: enough at once that one
// slow to answer costs its own wait rather than adding to everyone's, few enough not to flood it.

/** `fn` over `items`, `size` at once (a group starts when the one before is done); results in order. */
export async function inGroups<T, R>(
  items: readonly T[],
  size: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}
