// A small demo run through the real pipeline: every injected incident is found and every alert is
// explained by the ground truth (precision and recall 1.0 for every rule).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoResult, executeDemo, runDemo } from '../../functions/cli/demo.js';
import { REPORT_IDS, type ReportDocument } from '../../schemas/report.js';
import type { Session } from '../../schemas/session.js';
import { RULES } from '../../shared/detect/registry.js';
import { rowsOf } from '../report/report-fixtures.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const out = mkdtempSync(join(tmpdir(), 'demo-run-'));
let result: DemoResult;
const progress: string[] = [];

beforeAll(async () => {
  result = await executeDemo({ out, seed: 3, scale: 0.1, appRate: 0.5 }, (line) => progress.push(line));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('demo run', () => {
  it('finds every expected alert and explains every alert, for every rule', () => {
    expect(result.score.missed.map((e) => `${e.rule}: ${e.story}`)).toEqual([]);
    expect(result.score.unexplained.map((a) => `${a.rule}: ${a.title}`)).toEqual([]);
    for (const rule of RULES) {
      const r = result.score.rules.find((x) => x.rule === rule.id)!;
      expect(r.expected, rule.id).toBeGreaterThan(0);
      expect({ rule: rule.id, precision: r.precision, recall: r.recall }).toEqual({
        rule: rule.id,
        precision: 1,
        recall: 1,
      });
    }
  });

  it('reads every input record without dead letters or rule failures', () => {
    expect(result.stats.deadLetters).toEqual({});
    expect(result.stats.received).toBe(
      result.manifest.counts.mysqlEvents +
        result.manifest.counts.iamDeliveries +
        result.manifest.counts.gapRecords,
    );
    expect(result.stats.duplicates).toBe(
      result.manifest.counts.iamDeliveries - result.manifest.counts.iamEvents,
    );
  });

  it('attributes almost every IAM session, and names nobody behind the injected unattributed one', () => {
    const c = result.coverage;
    expect(c.iam).toBeGreaterThan(50);
    expect(c.byConfidence.unattributed).toBe(1);
    expect(
      c.byConfidence.verified +
        c.byConfidence.corroborated +
        c.byConfidence.asserted +
        c.byConfidence.unattributed,
    ).toBe(c.iam);
    for (const method of [
      'mapped-user',
      'external-user',
      'login-name',
      'signon-correlated',
      'local-account',
    ]) {
      expect(c.byMethod[method], method).toBeGreaterThan(0);
    }
  });

  /** The ledger's sessions of the two days that name a person. */
  const namedSessions = () =>
    readFileSync(join(out, 'sessions.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Session)
      .filter((s) => s.connectTs >= result.manifest.fleet.start && s.identity);

  it('stays silent on second laptops and on joiners inside their learning period', () => {
    const { fleet } = result.manifest;
    const sessions = namedSessions();
    const laptop = new Map(fleet.people.filter((p) => p.laptop).map((p) => [p.id, p.laptop]));
    const fromLaptop = new Set(
      sessions.filter((s) => s.sourceIp === laptop.get(s.identity!.id)).map((s) => s.identity!.id),
    );
    const joiners = new Set(fleet.people.filter((p) => !p.inSnapshot).map((p) => p.id));
    expect(fromLaptop.size).toBeGreaterThan(0);
    expect(sessions.filter((s) => joiners.has(s.identity!.id)).length).toBeGreaterThan(0);
    const about = (rules: RegExp, people: Set<string>) =>
      result.alerts.filter((a) => rules.test(a.rule) && people.has(a.identity?.principalId ?? ''));
    expect(about(/^access\.new-source$/, fromLaptop)).toEqual([]);
    expect(about(/^access\.(new-source|new-database|unusual-hour)$/, joiners)).toEqual([]);
  });

  it("acknowledges the service user's expected key rotation, and does not follow the key into its sessions", () => {
    const svc = result.manifest.fleet.serviceUser;
    const rotation = result.alerts.filter((a) => a.identity?.principalId === svc.id);
    expect(rotation.map((a) => `${a.rule} ${a.severity}`)).toEqual(['iam.credential-change high']);
    const after = namedSessions().filter((s) => s.identity!.id === svc.id);
    expect(after.map((s) => [s.connectTs > Date.parse(rotation[0]!.time), s.attribution])).toEqual([
      [true, expect.objectContaining({ method: 'mapped-user', confidence: 'verified' })],
      [true, expect.objectContaining({ method: 'mapped-user', confidence: 'verified' })],
    ]);
    expect(after.every((s) => s.attribution?.plantedCredentials === undefined)).toBe(true);
  });

  it('keeps alerts, sessions and a report in --out', () => {
    // alerts.jsonl has the alerts and their resolutions (the stale break-glass grant is revoked, the
    // service user's key rotation the configuration expects is acknowledged at once).
    const records = readFileSync(join(out, 'alerts.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string; rule: string; resolution?: { reason: string } });
    expect(records.filter((r) => r.status === 'open')).toHaveLength(result.alerts.length);
    expect(
      records.filter((r) => r.status === 'resolved').map((r) => `${r.rule} ${r.resolution?.reason}`),
    ).toEqual(['break-glass.stale membership-removed', 'iam.credential-change acknowledged']);
    const sessions = readFileSync(join(out, 'sessions.jsonl'), 'utf8').trim().split('\n');
    expect(sessions).toHaveLength(result.coverage.sessions + result.coverage.failedLogins);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.total).toMatchObject({ precision: 1, recall: 1 });
  });

  // Golden files: what this small demo gives, byte for byte (the ledger, 5 MB, by its digest). A
  // deliberate change of alerts or of the ledger is reviewed and refreshed with `npm run
  // test:update` (a test run never writes them); a change for speed or memory leaves them alone.
  it('gives exactly the golden alerts and session ledger', async () => {
    await expect(readFileSync(join(out, 'alerts.jsonl'), 'utf8')).toMatchFileSnapshot(
      './golden/alerts.jsonl',
    );
    const ledger = readFileSync(join(out, 'sessions.jsonl'));
    const lines = ledger.toString('utf8').split('\n').length - 1;
    const digest = createHash('sha256').update(ledger).digest('hex');
    await expect(`${lines} sessions, sha256 ${digest}\n`).toMatchFileSnapshot('./golden/sessions.sha256');
  });

  it('prints a readable summary naming the people behind proxied sessions', () => {
    const s = result.summary;
    for (const heading of [
      'Alerts by rule and severity',
      'Top incidents',
      'Attribution coverage',
      'Precision and recall',
      'Routes: where these alerts would go',
    ]) {
      expect(s).toContain(heading);
    }
    expect(s).toMatch(/person: \S+@example\.com through IAM group \S+ as \S+@%/);
    expect(s).not.toContain('NOT EXPLAINED');
    // The payments owners' digest route is muted during their night maintenance; the pager sees the resolution.
    expect(s).toMatch(/\n {2}payments-owners +\d+ +0 +[1-9]\d* +0 +\d+ +topic /);
    expect(s).toMatch(/\n {2}break-glass +\d+ +1 +0 +0 +\d+ +topic /);
    expect(progress.some((l) => l.startsWith('[5/5]'))).toBe(true);
  });
});

describe('demo compliance reports, against the ground truth', () => {
  const report = (id: string) =>
    JSON.parse(readFileSync(join(out, 'reports', `${id}.json`), 'utf8')) as ReportDocument;
  const nameOf = (id: string) => result.manifest.fleet.people.find((p) => p.id === id)?.name ?? id;
  const expected = (rule: string) => result.manifest.truth.expected.filter((e) => e.rule === rule);
  const window = () => result.manifest.truth.window;

  it('writes every report as HTML, JSON and CSV, and names them in the summary', () => {
    for (const id of REPORT_IDS) {
      expect(readFileSync(join(out, 'reports', `${id}.html`), 'utf8')).toContain('<!doctype html>');
      expect(readFileSync(join(out, 'reports', 'csv', `${id}.summary.csv`), 'utf8')).toContain(
        '"period_from"',
      );
      expect(result.summary).toContain(join(out, 'reports', `${id}.html`));
      expect(report(id).period).toEqual(window());
    }
  });

  it('logs every break-glass grant with its start, end and duration against the maximum', () => {
    const { from, to } = window();
    const grants = result.manifest.truth.breakGlass.filter((g) => g.granted < to && (g.revoked ?? to) > from);
    expect(grants.length).toBeGreaterThanOrEqual(2);
    const max = 4 * 3_600_000;
    expect(
      rowsOf(report('break-glass-log'), 'grants').map((r) => [
        r.person,
        r.granted,
        r.ended,
        r.still_open,
        r.duration_ms,
        r.max_duration_ms,
        r.over_maximum,
      ]),
    ).toEqual(
      grants.map((g) => {
        const duration = Date.parse(g.revoked ?? to) - Date.parse(g.granted);
        return [nameOf(g.user), g.granted, g.revoked, g.revoked === null, duration, max, duration > max];
      }),
    );
    const sessions = rowsOf(report('break-glass-log'), 'sessions');
    for (const e of expected('break-glass.used'))
      expect(
        sessions.some((s) => s.person === nameOf(e.match.principalId!) && s.connected === e.match.from),
        e.story,
      ).toBe(true);
  });

  it('sets apart the sessions of people not entitled, and lists those tied to nobody', () => {
    const outside = rowsOf(report('access-review'), 'outside-entitlements');
    const questioned = rowsOf(report('attribution-evidence'), 'not-entitled');
    for (const e of [...expected('access.after-revocation'), ...expected('access.identity-mismatch')]) {
      const match = (r: Record<string, unknown>) =>
        r.person === nameOf(e.match.principalId!) &&
        String(r.connect_time) >= e.match.from &&
        String(r.connect_time) <= e.match.to;
      const row = outside.find(match);
      expect(row, e.story).toBeDefined();
      // A group login is a shared account: attribution evidence questions it too.
      if (row?.group !== null) expect(questioned.some(match), e.story).toBe(true);
    }
    expect(rowsOf(report('attribution-evidence'), 'not-tied')).toHaveLength(
      expected('access.unattributed').length,
    );
  });

  it('lists every privileged change, failure burst and local-account login the ground truth holds', () => {
    const rules = [
      'privilege.change',
      'mapping.change',
      'iam.auth-policy-change',
      'iam.privileged-group-change',
      'iam.credential-change',
      'dbsystem.change',
      'audit.tamper',
    ];
    const changes = rowsOf(report('privileged-changes'), 'changes');
    const inWindow = (t: string) => t >= window().from && t < window().to;
    expect(changes).toHaveLength(
      result.alerts.filter((a) => rules.includes(a.rule) && inWindow(a.time)).length,
    );
    for (const e of rules.flatMap(expected).filter((x) => inWindow(x.match.from)))
      expect(
        changes.some((c) => String(c.time) >= e.match.from && String(c.time) <= e.match.to),
        e.story,
      ).toBe(true);
    const bursts = result.alerts.filter((a) => a.rule === 'auth.failure-burst' && inWindow(a.time));
    expect(bursts.length).toBeGreaterThan(0);
    expect(rowsOf(report('failed-access'), 'failure-bursts').map((r) => r.time)).toEqual(
      bursts.map((a) => a.time),
    );
    const local = rowsOf(report('failed-access'), 'local-account-use');
    for (const e of expected('access.local-account'))
      expect(
        local.some((l) => l.mysql_account === e.match.mysqlAccount && l.allow_listed === false),
        e.story,
      ).toBe(true);
  });

  it('counts the alerts of the window by rule', () => {
    const counts = new Map<string, number>();
    for (const a of result.alerts)
      if (a.time >= window().from && a.time < window().to) counts.set(a.rule, (counts.get(a.rule) ?? 0) + 1);
    const byRule = rowsOf(report('alert-summary'), 'by-rule').filter((r) => Number(r.alerts) > 0);
    expect(Object.fromEntries(byRule.map((r) => [r.rule, r.alerts]))).toEqual(Object.fromEntries(counts));
  });
});

describe('demo command', () => {
  it('prints help', async () => {
    const stdout = new Capture();
    expect(await runDemo(['--help'], { stdout, stderr: new Capture() })).toBe(0);
    expect(stdout.text).toContain('Usage: heatwave-iam-audit demo');
  });

  it('never touches a folder it did not write, nor a file, and says why', async () => {
    const foreign = mkdtempSync(join(tmpdir(), 'demo-foreign-'));
    try {
      mkdirSync(join(foreign, 'mysql'));
      writeFileSync(join(foreign, 'mysql', 'keep.txt'), 'mine');
      const stderr = new Capture();
      expect(await runDemo(['--out', foreign, '--scale', '0.05'], { stdout: new Capture(), stderr })).toBe(2);
      expect(stderr.text).toContain('holds files the demo did not write; choose a new or empty folder');
      expect(readFileSync(join(foreign, 'mysql', 'keep.txt'), 'utf8')).toBe('mine');
      const file = join(foreign, 'a-file');
      writeFileSync(file, 'x');
      const err2 = new Capture();
      expect(await runDemo(['--out', file], { stdout: new Capture(), stderr: err2 })).toBe(2);
      expect(err2.text).toContain('is a file, not a folder');
    } finally {
      rmSync(foreign, { recursive: true, force: true });
    }
  });

  it.each([[['--scale', 'big']], [['--seed', '-1']], [['--bogus']], [['extra']]])(
    'rejects %j with exit code 2',
    async (args) => {
      const stderr = new Capture();
      expect(await runDemo(args, { stdout: new Capture(), stderr })).toBe(2);
      expect(stderr.text).toMatch(/demo/);
    },
  );
});
