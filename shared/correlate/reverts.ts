// Whether a change undoes earlier ones: mapping and policy changes resolve the alerts of the
// changes they revert (README "Alert lifecycle").

/** One version of a changing thing: the event behind it, and its state after (as comparable text). */
export type Version = {
  key: string;
  /** What kind of change it was (an IAM event kind, a statement's command). */
  kind: string;
  state: string;
  /** An audited change (not a config seed). */
  change: boolean;
};

/** A change undone by a later one. */
export type Undone = { key: string; kind: string };

/** The state of something that does not exist (before its creation, after its deletion). */
export const ABSENT = '\u0000absent';

/** How far back a revert is looked for: older changes stay open. */
const MAX_UNDONE = 20;

/**
 * The changes that `versions[index]` undoes: walking back over the latest changes until one whose
 * state before equals the state after `index`; none when there is no such change (or a seed, the
 * configuration's or a snapshot's, comes first). `before`: the state before the first version, when known.
 */
export function undone(versions: readonly Version[], index: number, before: string | undefined): Undone[] {
  const target = versions[index]?.state;
  const out: Undone[] = [];
  for (let k = index - 1; k >= 0 && out.length < MAX_UNDONE; k--) {
    const v = versions[k]!;
    if (!v.change) return [];
    out.push({ key: v.key, kind: v.kind });
    if ((k > 0 ? versions[k - 1]!.state : before) === target) return out;
  }
  return [];
}
