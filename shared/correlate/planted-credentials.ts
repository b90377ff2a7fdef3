// Credentials someone created on another person's IAM user (what iam.credential-change raises), in
// force from their creation until their deletion: whoever holds one can log in to the databases as
// that person, so the person's sessions in between say so (Attribution.plantedCredentials). A row
// per user in the correlation state; what is in force at a time is computed from the creations and
// their ends in event time, so a deletion applied before its creation (arrived late) ends it all the
// same. A credential is kept `retention` after its creation or the last session it marked, an end
// `retention` after it, and each user's latest few of each (bounded memory).
import type { EntityCache } from '../state/entity-cache.js';

export type PlantedCredential = {
  /** The creation's IAM event key. */
  key: string;
  ts: number;
  type: string;
  /** The credential (an API key's fingerprint, another's OCID), when the event names it. */
  id?: string;
  /** Who created it, as the IAM event names them. */
  actor: { id?: string; name?: string };
  /** The latest login that it was in force at (it is kept `retention` after that). */
  usedTs?: number;
};

/** What ends a planted credential: its deletion, or the person setting a password of their own. */
export type CredentialEnd = { key: string; ts: number; type: string; id?: string };

type Row = { planted: PlantedCredential[]; ends: CredentialEnd[] };

const PLANTED = 'planted-credential';
/** Creations and ends kept per user: the latest. */
const MAX_PER_USER = 20;
const PRUNE_EVERY = 3_600_000;

const byTime = (a: { ts: number; key: string }, b: { ts: number; key: string }) =>
  a.ts - b.ts || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export class PlantedCredentials {
  private prunedTo = Number.NEGATIVE_INFINITY;

  /** `retention`: how long a credential is followed after its creation or the last login it was in force at. */
  constructor(
    private readonly cache: EntityCache,
    private readonly retention: number,
  ) {}

  /** Records a credential another principal created on `userId` (once per event). */
  plant(userId: string, credential: PlantedCredential): void {
    this.add(userId, 'planted', credential);
  }

  /** Records what ends the user's planted credentials of its type (and id, where both name one). */
  end(userId: string, end: CredentialEnd): void {
    this.add(userId, 'ends', end);
  }

  private add<K extends keyof Row>(userId: string, list: K, item: Row[K][number]): void {
    const row = this.cache.get<Row>(PLANTED, userId) ?? { planted: [], ends: [] };
    if (row[list].some((x) => x.key === item.key)) return;
    row[list] = [...row[list], item].sort(byTime).slice(-MAX_PER_USER) as Row[K];
    this.cache.set(PLANTED, userId, row);
  }

  /**
   * The user's planted credentials in force at `ts`: created by then, created or last in force at a
   * login within `retention` before it (in event time, whether or not a prune has run yet), and not
   * ended since.
   */
  inForce(userId: string, ts: number): PlantedCredential[] {
    const row = this.cache.get<Row>(PLANTED, userId);
    if (!row) return [];
    return row.planted.filter(
      (p) =>
        p.ts <= ts &&
        (p.usedTs ?? p.ts) >= ts - this.retention &&
        !row.ends.some((e) => e.ts > p.ts && e.ts <= ts && ends(e, p)),
    );
  }

  /** Notes a login at `ts` that the user's credentials `keys` were in force at. */
  noteUse(userId: string, keys: readonly string[], ts: number): void {
    const row = this.cache.get<Row>(PLANTED, userId);
    for (const p of row?.planted ?? [])
      if (keys.includes(p.key) && (p.usedTs ?? p.ts) < ts) {
        p.usedTs = ts;
        this.cache.touch(PLANTED, userId);
      }
  }

  /** Forgets credentials neither created nor used since `before`, and ends older than it (hourly at most). */
  prune(before: number): void {
    if (before < this.prunedTo + PRUNE_EVERY) return;
    this.prunedTo = before;
    for (const [userId, row] of [...this.cache.entries<Row>(PLANTED)]) {
      const planted = row.planted.filter((p) => (p.usedTs ?? p.ts) >= before);
      const kept = row.ends.filter((e) => e.ts >= before);
      if (planted.length === row.planted.length && kept.length === row.ends.length) continue;
      if (planted.length === 0 && kept.length === 0) this.cache.delete(PLANTED, userId);
      else this.cache.set<Row>(PLANTED, userId, { planted, ends: kept });
    }
  }
}

/** Whether `e` ends `p`: the same type, and the same credential where both events name it. */
function ends(e: CredentialEnd, p: PlantedCredential): boolean {
  return e.type === p.type && (e.id === undefined || p.id === undefined || e.id === p.id);
}
