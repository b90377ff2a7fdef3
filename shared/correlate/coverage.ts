// Attribution coverage: how many sessions could be tied to a person, and how surely. One
// definition for every summary (replay, collect, demo): shares are of the successful sessions
// through IAM accounts (1-to-1 or group mapped); local-account sessions and failed logins are
// counted beside them, never in the denominator.
import type { Session } from '../../schemas/session.js';
import type { SessionCount } from '../state/ledger.js';
import { grouped } from '../text.js';

export type Coverage = {
  /** Successful sessions. */
  sessions: number;
  failedLogins: number;
  /** Successful sessions through an IAM account (1-to-1 or group mapping): the shares' base. */
  iam: number;
  local: number;
  byConfidence: { verified: number; corroborated: number; asserted: number; unattributed: number };
  byMethod: Record<string, number>;
};

export function emptyCoverage(): Coverage {
  return {
    sessions: 0,
    failedLogins: 0,
    iam: 0,
    local: 0,
    byConfidence: { verified: 0, corroborated: 0, asserted: 0, unattributed: 0 },
    byMethod: {},
  };
}

/** Counts one session into the coverage. */
export function addToCoverage(c: Coverage, s: Session): void {
  countInCoverage(c, {
    outcome: s.outcome,
    method: s.attribution?.method ?? null,
    confidence: s.attribution?.confidence ?? null,
    sessions: 1,
  });
}

/**
 * Counts sessions of one outcome and attribution into the coverage: one session, or a store's count
 * of them (StateStore.sessionCounts).
 */
export function countInCoverage(c: Coverage, n: SessionCount): void {
  if (n.outcome !== 'success') {
    c.failedLogins += n.sessions;
    return;
  }
  c.sessions += n.sessions;
  const method = n.method ?? 'unattributed';
  c.byMethod[method] = (c.byMethod[method] ?? 0) + n.sessions;
  if (method === 'local-account') {
    c.local += n.sessions;
    return;
  }
  c.iam += n.sessions;
  const confidence = (n.confidence ?? 'none') as keyof Coverage['byConfidence'] | 'none';
  if (confidence === 'none') c.byConfidence.unattributed += n.sessions;
  else c.byConfidence[confidence] += n.sessions;
}

/** A share of the IAM sessions, as every summary prints it. */
export function shareOfIam(c: Coverage, n: number): string {
  return c.iam === 0 ? '0.0%' : `${((100 * n) / c.iam).toFixed(1)}%`;
}

/** The one-line form: `attribution of N IAM sessions: verified ..., plus ...`. */
export function coverageLine(c: Coverage): string {
  const b = c.byConfidence;
  const share = (n: number) => shareOfIam(c, n);
  return (
    `attribution of ${grouped(c.iam)} IAM sessions: verified ${share(b.verified)}, corroborated ${share(b.corroborated)}, ` +
    `asserted ${share(b.asserted)}, unattributed ${share(b.unattributed)}; ` +
    `plus ${grouped(c.local)} local-account sessions and ${grouped(c.failedLogins)} failed logins`
  );
}
