// A SQLite session body leaves to its row's typed columns what they hold (shared/state/ledger.ts):
// whatever a session holds, the row gives back the same JSON, and writing the body leaves the
// session as it was.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Session } from '../../schemas/session.js';
import {
  readSession,
  SESSION_FIELDS,
  SESSION_READ_COLUMNS,
  type SessionRow,
  sessionBody,
} from '../../shared/state/ledger.js';
import { session } from './store-fixtures.js';

/** The row a SQLite store writes for `s` (the body, and each field in its column), as it reads it. */
function rowOf(s: Session): { body: string; row: SessionRow } {
  const columns: Record<string, unknown> = { body: sessionBody(s) };
  for (const f of SESSION_FIELDS) columns[f.stored?.sqlite ?? f.name] = f.value(s);
  const names = ['connect_ts', 'id', ...SESSION_READ_COLUMNS.split(', ')];
  const unknown = names.filter((name) => !(name in columns));
  if (unknown.length > 0) throw new Error(`columns no field writes: ${unknown.join(', ')}`);
  return { body: columns.body as string, row: names.map((name) => columns[name]) };
}

const DB = 'ocid1.mysqldbsystem.oc1..db';
/** Texts that look like what the body writes in their place, or like a stripped key. */
const text = fc.oneof(fc.string(), fc.constantFrom('', '0', ':x', '/x', DB, `${DB}:k`, `${DB}/replica:k`));
const ref = fc.record({ id: text, name: text });
const optionalText = fc.option(text, { nil: undefined });

const sessions = fc
  .record({
    id: text,
    db: fc.oneof(text, fc.constant(DB)),
    dbName: text,
    instance: optionalText,
    connectionId: fc.nat(),
    connectTime: text,
    connectTs: fc.integer(),
    disconnectTime: optionalText,
    outcome: fc.constantFrom('success' as const, 'failed' as const),
    status: fc.nat(),
    login: fc.record({ user: text, os: text, ip: text, proxy: text }),
    sourceIp: optionalText,
    client: fc.option(fc.record({ program: text, name: text, version: text }, { requiredKeys: [] }), {
      nil: undefined,
    }),
    identity: fc.option(ref, { nil: null }),
    group: fc.option(ref, { nil: null }),
    mysqlAccount: text,
    attribution: fc.option(
      fc.record(
        {
          method: fc.constantFrom('login-name' as const, 'unattributed' as const),
          confidence: fc.constantFrom('corroborated' as const, 'none' as const),
          evidence: fc.array(text, { maxLength: 4 }),
          problem: fc.constantFrom('not-member' as const, 'ambiguous' as const),
        },
        { requiredKeys: ['method', 'confidence', 'evidence'] },
      ),
      { nil: null },
    ),
    breakGlassGrant: fc.option(text, { nil: null }),
    mfaFactor: optionalText,
    counts: fc.record({
      queries: fc.nat(),
      tableAccess: fc.nat(),
      changeUser: fc.nat(),
      failedStatements: fc.nat(),
    }),
    keySuffix: fc.constantFrom(':2026-10-12 09:44:45:0:36', '/replica-1:2026-10-12 09:44:45:0:36', ''),
    keyInEvidence: fc.nat({ max: 5 }),
  })
  .map((r) => {
    const connectKey = `${r.db}${r.keySuffix}`;
    const attribution = r.attribution && { ...r.attribution, evidence: [...r.attribution.evidence] };
    // The connect key is most often one of the evidence, as attribution names it.
    if (attribution && r.keyInEvidence <= attribution.evidence.length)
      attribution.evidence.splice(r.keyInEvidence, 0, connectKey);
    const s = session(r.id, r.connectTs, {
      dbSystem: { id: r.db, name: r.dbName },
      connectionId: r.connectionId,
      connectTime: r.connectTime,
      outcome: r.outcome,
      status: r.status,
      login: r.login,
      identity: r.identity,
      group: r.group,
      mysqlAccount: r.mysqlAccount,
      attribution,
      breakGlassGrant: r.breakGlassGrant,
      counts: r.counts,
      connectKey,
    });
    if (r.instance !== undefined) s.instance = r.instance;
    if (r.disconnectTime !== undefined) s.disconnectTime = r.disconnectTime;
    if (r.sourceIp !== undefined) s.sourceIp = r.sourceIp;
    if (r.client !== undefined) s.client = r.client;
    if (r.mfaFactor !== undefined) s.mfaFactor = r.mfaFactor;
    return s;
  });

describe('session bodies', () => {
  it('give back the same JSON from the row, and leave the session as it was', () => {
    fc.assert(
      fc.property(sessions, (s) => {
        const json = JSON.stringify(s);
        const { row } = rowOf(s);
        expect(JSON.stringify(s)).toBe(json);
        expect(JSON.stringify(readSession(row))).toBe(json);
      }),
    );
  });

  it('read a close written as columns alone (the disconnect last) as if written whole', () => {
    fc.assert(
      fc.property(sessions, fc.string(), (s, closedAt) => {
        delete s.disconnectTime;
        const { body } = rowOf(s);
        s.disconnectTime = closedAt || 'x';
        const { row } = rowOf(s);
        const bodyAt = ['connect_ts', 'id', ...SESSION_READ_COLUMNS.split(', ')].indexOf('body');
        const written = [...row];
        written[bodyAt] = body;
        expect(JSON.stringify(readSession(written))).toBe(JSON.stringify(s));
      }),
    );
  });

  it('leave what the columns hold out, the connect key as its place in the evidence', () => {
    const key = `${DB}:2026-10-12 09:44:45:0:36`;
    const s = session('s1', Date.parse('2026-10-12T09:44:45Z'), {
      dbSystem: { id: DB, name: 'prod-orders-01' },
      identity: { id: 'ocid1.user.oc1..alice', name: 'alice@example.com' },
      group: { id: 'ocid1.group.oc1..dba', name: 'DBAdmins' },
      attribution: { method: 'login-name', confidence: 'corroborated', evidence: ['config:directory', key] },
      mfaFactor: 'TOTP',
      sourceIp: '10.0.0.5',
      connectKey: key,
      counts: { queries: 4, tableAccess: 2, changeUser: 0, failedStatements: 1 },
    });
    const { body: text, row } = rowOf(s);
    const body = JSON.parse(text);
    expect(body).toMatchObject({
      id: 0,
      dbSystem: { id: 0, name: 0 },
      connectTime: 0,
      connectTs: 0,
      outcome: 0,
      login: { user: 0, os: '', ip: '10.0.0.5', proxy: '' },
      identity: { id: 0, name: 0 },
      group: { id: 0, name: 0 },
      attribution: { method: 0, confidence: 0, evidence: ['config:directory', ':2026-10-12 09:44:45:0:36'] },
      counts: { queries: 0, tableAccess: 0, changeUser: 0, failedStatements: 0 },
      connectKey: -2,
      sourceIp: 0,
      mfaFactor: 0,
    });
    expect(text.length).toBeLessThan(JSON.stringify(s).length * 0.7);
    expect(readSession(row)).toEqual(s);
  });
});
