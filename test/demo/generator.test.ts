// The demo generator: deterministic output, input shapes the decoders accept, a valid config, and
// a ground truth that covers every rule.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../shared/config/load-config.js';
import { dbSystemResolver } from '../../shared/decode/input-db-system.js';
import { readInput } from '../../shared/decode/read-input.js';
import { generateDemo } from '../../shared/demo/generate-demo.js';
import { scoreAlerts } from '../../shared/demo/ground-truth.js';
import { Rng } from '../../shared/demo/rng.js';
import { RULES } from '../../shared/detect/registry.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'demo-gen-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function digests(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else out[relative(root, path)] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(root);
  return out;
}

const SMALL = { scale: 0.1, appRate: 0.5 };

describe('demo generator', () => {
  const out = tempDir();
  const manifest = generateDemo({ out, seed: 11, ...SMALL });

  it('writes the same bytes for the same seed', () => {
    const again = tempDir();
    generateDemo({ out: again, seed: 11, ...SMALL });
    const a = digests(out);
    expect(Object.keys(a).length).toBeGreaterThan(5);
    expect(digests(again)).toEqual(a);
  });

  it('writes different data for another seed', () => {
    const other = tempDir();
    generateDemo({ out: other, seed: 12, ...SMALL });
    expect(digests(other)['ground-truth.json']).not.toBe(digests(out)['ground-truth.json']);
  });

  it('writes MySQL audit files in the on-disk shape, collector records and OCI exports', () => {
    const files = manifest.inputs.map((p) => relative(out, p));
    const audit = files.filter((f) => f.startsWith('mysql/'));
    expect(audit.length).toBeGreaterThan(0);
    const lines = readFileSync(join(out, audit[0]!), 'utf8').split('\n');
    expect(lines[0]).toBe('[');
    expect(lines.at(-1)).toBe(''); // ends with a newline, no closing bracket while active
    for (const line of lines.slice(1, -1)) expect(line.endsWith('},')).toBe(true);
    const first = JSON.parse(lines[1]!.slice(0, -1));
    expect(Object.keys(first).slice(0, 3)).toEqual(['timestamp', 'id', 'class']);
    expect(first.timestamp).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

    const collector = files.find((f) => f.startsWith('collector/'))!;
    const record = JSON.parse(readFileSync(join(out, collector), 'utf8').split('\n')[0]!);
    expect(record).toMatchObject({
      source: 'mysql-audit',
      dbSystemId: expect.stringMatching(/^ocid1\.mysqldbsystem\./),
    });
    expect(record.event.timestamp).toBeTypeOf('string');

    const logging = JSON.parse(
      readFileSync(join(out, files.find((f) => f.startsWith('iam/audit-logging'))!), 'utf8'),
    );
    expect(logging[0]).toMatchObject({
      specversion: '1.0',
      dataschema: '2.0',
      oracle: { loggroupid: '_Audit' },
    });
    const page = JSON.parse(
      readFileSync(join(out, files.find((f) => f.startsWith('iam/listevents'))!), 'utf8'),
    );
    expect(page.items[0]).toMatchObject({
      cloudEventsVersion: '0.1',
      eventTypeVersion: '2.0',
      data: { additionalDetails: { eventId: 'sso.session.create.success' } },
    });
  });

  it('delivers the revocation late: before the connect it revokes, ingested beyond the lateness', async () => {
    const late = JSON.parse(readFileSync(join(out, 'iam', 'late-delivery.json'), 'utf8'));
    const removal = late.find((e: { type: string }) => e.type.endsWith('RemoveUserFromGroup'));
    const delay = Date.parse(removal.oracle.ingestedtime) - Date.parse(removal.time);
    const { config } = await loadConfigFile(manifest.config);
    expect(delay).toBeGreaterThan(config.lateness);
    const revoked = manifest.truth.expected.find(
      (e) => e.rule === 'access.after-revocation' && e.story.includes('after leaving'),
    )!;
    expect(removal.time < revoked.match.from).toBe(true);
    expect(Date.parse(removal.oracle.ingestedtime)).toBeGreaterThan(Date.parse(revoked.match.from));
  });

  it('every input decodes without dead letters against the generated config', async () => {
    const { config } = await loadConfigFile(manifest.config);
    const resolveDbSystem = dbSystemResolver(config);
    let events = 0;
    const dead: string[] = [];
    for (const path of manifest.inputs) {
      for await (const item of readInput(path, { resolveDbSystem })) {
        // Events of other services are read as ignored ones: records all the same.
        if (item.type === 'dead') dead.push(`${item.dead.code} ${item.dead.message}`);
        else events++;
      }
    }
    expect(dead).toEqual([]);
    expect(events).toBe(
      manifest.counts.mysqlEvents + manifest.counts.iamDeliveries + manifest.counts.gapRecords,
    );
  });

  it('injects at least one incident for every rule of the registry', () => {
    const incidents = new Set(
      manifest.truth.expected.filter((e) => e.kind === 'incident').map((e) => e.rule),
    );
    for (const rule of RULES) expect(incidents, rule.id).toContain(rule.id);
    const ids = manifest.truth.expected.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('demo scoring', () => {
  const truth = {
    seed: 1,
    scale: 1,
    window: { from: '2026-11-02T00:00:00.000Z', to: '2026-11-04T00:00:00.000Z' },
    expected: [
      {
        id: 'inc-001',
        rule: 'audit.tamper',
        kind: 'incident' as const,
        story: 'filter removed',
        match: { from: '2026-11-03T20:12:00.000Z', to: '2026-11-03T20:12:59.000Z', dbSystemId: 'db1' },
      },
    ],
  };
  const alert = (rule: string, time: string, db: string) => ({
    id: `${rule}-${time}-${db}`,
    rule,
    severity: 'critical' as const,
    time,
    title: 't',
    identity: null,
    dbSystem: { id: db, name: db },
    evidence: [],
    status: 'open' as const,
  });

  it('explains matching alerts and finds the expectation', () => {
    const score = scoreAlerts([alert('audit.tamper', '2026-11-03T20:12:45.000Z', 'db1')], truth);
    const tamper = score.rules.find((r) => r.rule === 'audit.tamper')!;
    expect(tamper).toMatchObject({ alerts: 1, explained: 1, expected: 1, found: 1, precision: 1, recall: 1 });
    expect(score.total.precision).toBe(1);
  });

  it('counts an alert on another DB system as unexplained and the incident as missed', () => {
    const score = scoreAlerts([alert('audit.tamper', '2026-11-03T20:12:45.000Z', 'db2')], truth);
    const tamper = score.rules.find((r) => r.rule === 'audit.tamper')!;
    expect(tamper).toMatchObject({ precision: 0, recall: 0 });
    expect(score.unexplained).toHaveLength(1);
    expect(score.missed.map((e) => e.id)).toEqual(['inc-001']);
  });

  it('scores a rule with no alerts and no expectations as perfect', () => {
    const score = scoreAlerts([], { ...truth, expected: [] });
    expect(score.rules.every((r) => r.precision === 1 && r.recall === 1)).toBe(true);
  });
});

describe('demo rng', () => {
  it('is deterministic and forks independently of draws', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    expect([a.next(), a.next(), a.uuid()]).toEqual([b.next(), b.next(), b.uuid()]);
    const c = new Rng(5);
    c.next();
    expect(c.fork('x').next()).toBe(new Rng(5).fork('x').next());
    expect(new Rng(5).fork('x').next()).not.toBe(new Rng(5).fork('y').next());
  });

  it('stays within bounds', () => {
    const r = new Rng(9);
    for (let i = 0; i < 1000; i++) {
      const n = r.int(3, 7);
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(7);
    }
    expect(r.uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
