// CEF output: header and extension escaping, fuzzed, checked by parsing the lines back with a
// small independent CEF parser.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import { SESSION_END_REASONS, type Session } from '../../schemas/session.js';
import {
  CEF_SEVERITY,
  cefAlert,
  cefSession,
  escapeCefHeader,
  escapeCefValue,
} from '../../shared/emit/formats/cef.js';
import { DEFAULT_CONTEXT, type FormatContext } from '../../shared/emit/formats/format.js';
import { redactLiterals } from '../../shared/normalize/redact.js';
import { withPlantedKey } from '../helpers/planted-credential.js';
import { runs } from '../helpers/property.js';
import { beforeFirstTest, runTimeline, type TimelineResult } from '../helpers/run-timeline.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';

type ParsedCef = {
  version: string;
  vendor: string;
  product: string;
  deviceVersion: string;
  signature: string;
  name: string;
  severity: number;
  ext: Record<string, string>;
};

/** Header: `\\` and `\|` are escapes, an unescaped `|` ends a field. */
function parseHeader(line: string): { fields: string[]; rest: string } {
  const fields: string[] = [];
  let field = '';
  let i = 0;
  while (fields.length < 7) {
    const c = line[i];
    if (c === undefined) throw new Error(`truncated header after ${fields.length} fields`);
    const next = line[i + 1];
    if (c === '\\' && (next === '\\' || next === '|')) {
      field += next;
      i += 2;
    } else if (c === '|') {
      fields.push(field);
      field = '';
      i += 1;
    } else {
      field += c;
      i += 1;
    }
  }
  return { fields, rest: line.slice(i) };
}

function unescapeValue(v: string): string {
  return v.replace(/\\([\\=nr])/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}

/** Extension: every unescaped `=` ends a key (the word before it); a value runs to the space before the next key. */
function parseExtension(ext: string): Record<string, string> {
  const equals: number[] = [];
  for (let i = 0; i < ext.length; i++) {
    if (ext[i] === '\\') i += 1;
    else if (ext[i] === '=') equals.push(i);
  }
  const keys = equals.map((eq) => {
    const start = ext.lastIndexOf(' ', eq) + 1;
    return { key: ext.slice(start, eq), start, eq };
  });
  const out: Record<string, string> = {};
  keys.forEach((k, j) => {
    if (!/^[A-Za-z0-9]+$/.test(k.key)) throw new Error(`bad key ${JSON.stringify(k.key)}`);
    if (k.key in out) throw new Error(`duplicate key ${k.key}`);
    const end = j + 1 < keys.length ? keys[j + 1]!.start - 1 : ext.length;
    out[k.key] = unescapeValue(ext.slice(k.eq + 1, end));
  });
  return out;
}

function parseCef(line: string): ParsedCef {
  if (/[\r\n]/.test(line)) throw new Error('raw line break in a CEF line');
  const { fields, rest } = parseHeader(line);
  const [version, vendor, product, deviceVersion, signature, name, severity] = fields as [
    string,
    ...string[],
  ];
  if (version !== 'CEF:0') throw new Error(`not CEF:0: ${version}`);
  return {
    version,
    vendor: vendor!,
    product: product!,
    deviceVersion: deviceVersion!,
    signature: signature!,
    name: name!,
    severity: Number(severity),
    ext: parseExtension(rest),
  };
}

/** Custom fields by label: `{ rule: 'privilege.change', ... }`. */
function labelled(ext: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ext)) {
    const m = /^(cs\d|cn\d|flexString\d)Label$/.exec(k);
    if (m) out[v] = ext[m[1]!]!;
  }
  return out;
}

const ctx: FormatContext = {
  ...DEFAULT_CONTEXT,
  product: { ...DEFAULT_CONTEXT.product, version: '9.9.9-test' },
};

let run: TimelineResult;
beforeFirstTest(async () => {
  run = await runTimeline(incidentTimeline());
});

describe('CEF alerts', () => {
  it('header: vendor, product, version, rule id, title, severity 0-10', () => {
    const alert = run.alerts.find((a) => a.rule === 'privilege.change')!;
    const line = cefAlert(alert, ctx);
    expect(line.startsWith('CEF:0|heatwave-iam-audit|heatwave-iam-audit|9.9.9-test|privilege.change|')).toBe(
      true,
    );
    const p = parseCef(line);
    expect(p).toMatchObject({ signature: 'privilege.change', name: alert.title, severity: 8 });
  });

  it('extension: both identities, source, DB system, time, ids and labelled custom fields', () => {
    const alert = run.alerts.find((a) => a.rule === 'privilege.change')!;
    const { ext } = parseCef(cefAlert(alert, ctx));
    expect(ext).toMatchObject({
      rt: String(Date.parse(alert.time)),
      externalId: alert.id,
      suser: 'alice@example.com',
      suid: 'ocid1.user.oc1..alice',
      duser: 'dba_proxy@%',
      src: '10.0.0.5',
      dvchost: 'prod-orders',
      deviceExternalId: 'ocid1.mysqldbsystem.oc1..prod1',
      cat: 'database,iam',
      cnt: '1',
      msg: 'GRANT SELECT ON shop.* TO ?@?',
    });
    expect(labelled(ext)).toEqual({
      rule: 'privilege.change',
      attributionMethod: 'login-name',
      attributionConfidence: 'corroborated',
      iamGroup: 'DBAdmins',
      iamGroupId: 'ocid1.group.oc1..dba',
      ruleTitle: 'MySQL privileges changed',
      attackTechniques: 'T1098',
      loginUser: 'alice',
    });
  });

  it('a resolution: the same alert with act=resolved, the reason, and when it began and ended', () => {
    const alert = run.alerts.find((a) => a.rule === 'privilege.change')!;
    const resolved: Alert = {
      ...alert,
      status: 'resolved',
      resolution: {
        time: '2026-11-02T12:00:00.000Z',
        reason: 'reverted',
        note: 'undone | later',
        evidence: ['k'],
      },
    };
    const p = parseCef(cefAlert(resolved, ctx));
    expect(p).toMatchObject({ signature: 'privilege.change', name: `Resolved: ${alert.title}`, severity: 8 });
    expect(p.ext).toMatchObject({
      externalId: alert.id,
      act: 'resolved',
      reason: 'undone | later',
      rt: String(Date.parse('2026-11-02T12:00:00.000Z')),
      start: String(Date.parse(alert.time)),
      end: String(Date.parse('2026-11-02T12:00:00.000Z')),
    });
    expect(parseCef(cefAlert(alert, ctx)).ext.act).toBeUndefined();
  });

  it('a change made to someone else: the actor is the source user, the person changed the destination', () => {
    const alert = run.alerts.find((a) => a.rule === 'iam.privileged-group-change' && a.identity)!;
    const { ext } = parseCef(cefAlert(alert, ctx));
    expect(ext).toMatchObject({
      suser: 'iam-admin',
      suid: 'ocid1.user.oc1..admin',
      duser: alert.identity!.name,
      duid: alert.identity!.principalId,
    });
  });

  it('shows control characters and the controls of bidirectional text as symbols', () => {
    const alert = run.alerts.find((a) => a.rule === 'privilege.change' && a.identity)!;
    const forged = { ...alert, loginUser: 'adm\u202enimda\u2066x\u001b[31m' };
    const custom = labelled(parseCef(cefAlert(forged, ctx)).ext);
    expect(custom.loginUser).toBe('adm\ufffdnimda\ufffdx\u241b[31m');
  });

  it('leaves out what the alert does not know', () => {
    const alert = run.alerts.find((a) => a.rule === 'auth.failure-burst')!;
    const { ext } = parseCef(cefAlert(alert, ctx));
    expect(ext).not.toHaveProperty('suser');
    expect(ext).not.toHaveProperty('cs2');
    expect(ext).not.toHaveProperty('cs4Label');
    expect(ext.duser).toBe('admin@%');
  });

  it('maps every severity into 0-10, increasing', () => {
    const values = (['info', 'low', 'medium', 'high', 'critical'] as const).map((s) => CEF_SEVERITY[s]);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    for (const v of values) expect(v >= 0 && v <= 10).toBe(true);
    const alert = run.alerts.find((a) => a.rule === 'audit.tamper')!;
    expect(parseCef(cefAlert(alert, ctx)).severity).toBe(10);
  });

  it('a source that is not an IP address goes to shost', () => {
    const alert = { ...run.alerts[0]!, sourceIp: 'client.example.com' };
    const { ext } = parseCef(cefAlert(alert, ctx));
    expect(ext.shost).toBe('client.example.com');
    expect(ext).not.toHaveProperty('src');
  });

  it('an IPv6 address with a zone index goes to shost too (an address field cannot parse it)', () => {
    const zoned = parseCef(cefAlert({ ...run.alerts[0]!, sourceIp: 'fe80::1%eth0' }, ctx)).ext;
    expect(zoned).toMatchObject({ shost: 'fe80::1%eth0' });
    expect(zoned).not.toHaveProperty('src');
    expect(parseCef(cefAlert({ ...run.alerts[0]!, sourceIp: 'fe80::1' }, ctx)).ext.src).toBe('fe80::1');
  });
});

describe('CEF sessions', () => {
  it('one line per session, success and failure', () => {
    const ok = parseCef(cefSession(run.sessions.find((s) => s.connectionId === 1)!, ctx));
    expect(ok).toMatchObject({
      signature: 'session.logon',
      name: 'Group-proxied database login',
      severity: 1,
    });
    expect(ok.ext).toMatchObject({
      outcome: 'success',
      suser: 'alice@example.com',
      duser: 'dba_proxy@%',
      src: '10.0.0.5',
    });
    expect(labelled(ok.ext)).toMatchObject({ mfaFactor: 'TOTP', iamGroup: 'DBAdmins', loginUser: 'alice' });
    expect(ok.ext.end).toBe(String(Date.parse('2026-11-02T09:25:00.000Z')));
    const failed = parseCef(cefSession(run.sessions.find((s) => s.outcome === 'failed')!, ctx));
    expect(failed).toMatchObject({ signature: 'session.logon-failed', severity: 3 });
    expect(failed.ext).toMatchObject({ outcome: 'failure', reason: '1045', duser: 'admin@%' });
  });

  it('externalId fits the 40 characters CEF gives it, one per session; the session id is labelled', () => {
    const lines = run.sessions.map((s) => parseCef(cefSession(s, ctx)).ext);
    for (const ext of lines) expect(ext.externalId!.length).toBeLessThanOrEqual(40);
    expect(new Set(lines.map((ext) => ext.externalId)).size).toBe(run.sessions.length);
    expect(lines.map((ext) => labelled(ext).sessionId)).toEqual(run.sessions.map((s) => s.id));
    const again = parseCef(cefSession(run.sessions[0]!, ctx)).ext;
    expect(again.externalId).toBe(lines[0]!.externalId);
  });

  it('a login made while a credential someone else created on the person was in force counts them in cn2', () => {
    const s = run.sessions.find((x) => x.connectionId === 1)!;
    expect(labelled(parseCef(cefSession(withPlantedKey(s), ctx)).ext)).toMatchObject({
      plantedCredentials: '1',
      attributionConfidence: 'asserted',
    });
    expect(parseCef(cefSession(s, ctx)).ext).not.toHaveProperty('cn2');
  });

  it('a session its server ended without logging a disconnect says why in reason, beside its end', () => {
    const s = run.sessions.find((x) => x.connectionId === 1)!;
    for (const endReason of SESSION_END_REASONS) {
      const ext = parseCef(cefSession({ ...s, endReason }, ctx)).ext;
      expect(ext).toMatchObject({
        outcome: 'success',
        reason: endReason,
        end: String(Date.parse(s.disconnectTime!)),
      });
    }
    expect(parseCef(cefSession(s, ctx)).ext).not.toHaveProperty('reason');
  });

  it('a session through a break-glass group names the grant', () => {
    const session = run.sessions.find((s) => s.breakGlassGrant)!;
    expect(labelled(parseCef(cefSession(session, ctx)).ext)).toMatchObject({
      breakGlassGrant: session.breakGlassGrant!,
      iamGroup: 'BreakGlass',
    });
  });
});

describe('CEF of a minimal alert', () => {
  it('an alert with only the required fields gives a line without the optional keys', () => {
    const alert = {
      id: 'a1',
      rule: 'audit.tamper',
      severity: 'critical' as const,
      time: '2026-11-02T09:00:00.000Z',
      title: 'minimal',
      identity: null,
      dbSystem: null,
      evidence: [],
      status: 'open' as const,
    };
    const { ext } = parseCef(cefAlert(alert, ctx));
    expect(Object.keys(ext).sort()).toEqual([
      'cat',
      'cs1',
      'cs1Label',
      'cs6',
      'cs6Label',
      'externalId',
      'rt',
    ]);
  });
});

/** Strings rich in what CEF must escape. */
const nasty = fc.oneof(
  fc.string({
    unit: fc.constantFrom('|', '=', '\\', '\n', '\r', ' ', 'a', 'Z', '0', 'é', '日', '😀', '\t', "'"),
    maxLength: 24,
  }),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
);

const flattenHeader = (s: string) => s.replace(/\r\n|[\r\n]/g, ' ');

describe('CEF escaping (fuzzed)', () => {
  it('extension values round-trip through the parser', () => {
    fc.assert(
      fc.property(nasty, (v) => {
        const escaped = escapeCefValue(v);
        expect(escaped).not.toMatch(/[\r\n]/);
        expect(parseExtension(`a=${escaped} b=${escaped}`)).toEqual({ a: v, b: v });
      }),
    );
  });

  it('header fields keep `|` and `\\` and flatten line breaks', () => {
    fc.assert(
      fc.property(nasty, (v) => {
        const { fields } = parseHeader(`${escapeCefHeader(v)}|x|x|x|x|x|x|`);
        expect(fields[0]).toBe(flattenHeader(v));
      }),
    );
  });

  it('alerts with hostile names, titles and SQL parse back to the same values', () => {
    const base = run.alerts.find((a) => a.rule === 'privilege.change')!;
    fc.assert(
      fc.property(
        fc.record({
          title: nasty,
          person: nasty,
          account: nasty,
          login: nasty,
          group: nasty,
          sql: nasty,
          db: nasty,
          version: nasty,
        }),
        (v) => {
          const alert: Alert = {
            ...base,
            title: v.title,
            identity: {
              principalId: 'ocid1.user.oc1..x',
              name: v.person,
              attribution: base.identity!.attribution,
            },
            mysqlAccount: v.account,
            loginUser: v.login,
            group: { id: 'ocid1.group.oc1..g', name: v.group },
            dbSystem: { id: 'ocid1.mysqldbsystem.oc1..d', name: v.db },
            details: { sql: v.sql, occurrences: 1 },
          };
          const line = cefAlert(alert, { ...ctx, product: { ...ctx.product, version: v.version } });
          const p = parseCef(line);
          expect(p.deviceVersion).toBe(flattenHeader(v.version));
          expect(p.name).toBe(flattenHeader(v.title));
          expect(p.signature).toBe('privilege.change');
          const expectOptional = (key: string, value: string) => {
            if (value === '') expect(p.ext).not.toHaveProperty(key);
            else expect(p.ext[key]).toBe(value);
          };
          expectOptional('suser', v.person);
          expectOptional('duser', v.account);
          expectOptional('dvchost', v.db);
          expectOptional('msg', redactLiterals(v.sql));
          const custom = labelled(p.ext);
          expect(custom.iamGroup).toBe(v.group === '' ? undefined : v.group);
          expect(custom.loginUser).toBe(v.login === '' ? undefined : v.login);
          expect(custom.rule).toBe('privilege.change');
        },
      ),
      runs(500),
    );
  });

  it('sessions with hostile names parse back to the same values', () => {
    const base = run.sessions.find((s) => s.connectionId === 1)!;
    fc.assert(
      fc.property(
        fc.record({ person: nasty, account: nasty, login: nasty, ip: nasty, factor: nasty }),
        (v) => {
          const s: Session = {
            ...base,
            identity: { id: 'ocid1.user.oc1..x', name: v.person },
            mysqlAccount: v.account,
            login: { ...base.login, user: v.login },
            sourceIp: v.ip,
            mfaFactor: v.factor,
          };
          const p = parseCef(cefSession(s, ctx));
          if (v.person) expect(p.ext.suser).toBe(v.person);
          if (v.account) expect(p.ext.duser).toBe(v.account);
          if (v.ip) expect(p.ext.shost ?? p.ext.src).toBe(v.ip);
          if (v.factor) expect(labelled(p.ext).mfaFactor).toBe(v.factor);
        },
      ),
      runs(300),
    );
  });

  it('the parser itself rejects broken lines (the round trip can fail)', () => {
    expect(() => parseCef('CEF:0|a|b|c|d|e|5|msg=one\ntwo')).toThrow();
    expect(() => parseCef('CEF:0|a|b|c|d|e')).toThrow();
    expect(() => parseCef('CEF:0|a|b|c|d|e|5|msg=x=y')).toThrow(/bad key/);
    expect(parseCef('CEF:0|a\\|b|c|d|e|f|5|msg=x').vendor).toBe('a|b');
    expect(parseCef('CEF:0|a|b|c|d|e|5|msg=x\\=y').ext).toEqual({ msg: 'x=y' });
  });
});
