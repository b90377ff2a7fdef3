// Delivery claims on a store shared by several instances (containers of the function, consumers,
// CLI processes): an alert is sent by the instance whose commit stored it, unless that instance
// fails to deliver it, and nothing is lost. Each instance is a store of its own on one location,
// with its own claimant and the test's clock.
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import { at, db, iam, USERS } from '../../shared/detect/timeline.js';
import type { AlertSink } from '../../shared/emit/sink.js';
import { AuditError } from '../../shared/errors.js';
import { Pipeline } from '../../shared/pipeline.js';
import { CLAIM_LEASE_MS, type StateStore } from '../../shared/state/state-store.js';
import { describeMySql } from '../helpers/mysql-server.js';
import { testConfig } from '../helpers/run-timeline.js';
import {
  ACTIVE_UNTIL_AND_LATER,
  type Adapter,
  alert,
  backingPerTest,
  batch,
  mysqlAdapter,
  RecordingSink,
  sqliteAdapter,
  sqliteThreadAdapter,
  withoutActiveUntil,
} from './store-fixtures.js';

/** A local account's login, then a sign-on that moves the watermark past it: one alert. */
const login = (account: string, conn: number): CanonicalEvent[] => [
  db.connect({ at: at(0), conn, account }),
  iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
];

/** A sink that holds each delivery until released: an instance still sending (or one that died sending). */
class HeldSink implements AlertSink {
  readonly sent: Alert[] = [];
  /** Settles once a delivery has started. */
  readonly sending: Promise<void>;
  private started!: () => void;
  private open!: () => void;
  private readonly gate = new Promise<void>((resolve) => {
    this.open = resolve;
  });

  constructor(readonly name: string) {
    this.sending = new Promise((resolve) => {
      this.started = resolve;
    });
  }

  async send(alerts: Alert[]): Promise<void> {
    if (alerts.length === 0) return;
    this.started();
    await this.gate;
    this.sent.push(...alerts);
  }

  release(): void {
    this.open();
  }
}

/** A sink whose output fails, as a topic answering 5xx after every retry does. */
class FailingSink implements AlertSink {
  constructor(readonly name: string) {}
  async send(alerts: Alert[]): Promise<void> {
    if (alerts.length > 0) throw new AuditError('SINK_FAILED', `${this.name}: the output failed`);
  }
}

const SINK = 'alerts';

/** The store, with each call of its method `name` (the promise it returns) told to `seen`. */
function observed(
  store: StateStore,
  name: keyof StateStore,
  seen: (result: Promise<unknown>) => void,
): StateStore {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop !== name) return value.bind(target);
      return (...args: unknown[]) => {
        const result = value.apply(target, args) as Promise<unknown>;
        seen(result);
        return result;
      };
    },
  });
}

function claims(adapter: Adapter) {
  const backing = backingPerTest(adapter);
  let now: number;
  beforeEach(() => {
    now = Date.parse('2026-11-02T10:00:00Z');
  });

  /** An instance: a store of its own (scope and claimant `name`) on the test's location and clock. */
  const instance = (name: string): Promise<StateStore> =>
    backing().open(name, { claimant: name, now: () => now });

  async function open(store: StateStore, sink: AlertSink): Promise<Pipeline> {
    const { config, rules } = testConfig();
    return Pipeline.open({ config, rules, store, sinks: [sink] });
  }

  /** Opens an instance with a recording sink, and returns what it sent on opening. */
  async function opened(name: string): Promise<{ sent: string[]; pipeline: Pipeline; sink: RecordingSink }> {
    const sink = new RecordingSink(SINK);
    const pipeline = await open(await instance(name), sink);
    return {
      get sent() {
        return sink.sent.map((a) => a.id);
      },
      pipeline,
      sink,
    };
  }

  /** `name` commits the alert of `account`'s login and starts sending it, which it finishes only if released. */
  async function sending(name: string, account = 'app', conn = 1) {
    const sink = new HeldSink(SINK);
    const pipeline = await open(await instance(name), sink);
    const delivered = pipeline.ingest(
      login(account, conn).map((event) => ({ type: 'event' as const, event })),
    );
    await sink.sending;
    return { sink, delivered };
  }

  it('an instance opening while another sends the alert it stored sends nothing of it; once delivered nobody sends it again', async () => {
    const a = await sending('container-a');
    const b = await opened('container-b');
    expect(b.sent).toEqual([]);
    a.sink.release();
    const raised = await a.delivered;
    expect(raised.map((x) => x.rule)).toEqual(['access.local-account']);
    expect(a.sink.sent).toEqual(raised);
    // Delivered: long after the lease, nobody has anything to send.
    now += 2 * CLAIM_LEASE_MS;
    expect((await opened('container-c')).sent).toEqual([]);
    await b.pipeline.advance(at(70));
    expect(b.sent).toEqual([]);
  });

  it('an alert whose instance died before delivering it is sent once, by the first instance to open after its lease', async () => {
    const a = await sending('container-a');
    now += CLAIM_LEASE_MS - 1;
    expect((await opened('container-b')).sent).toEqual([]);
    now += 1;
    const c = await opened('container-c');
    expect(c.sent).toHaveLength(1);
    expect((await opened('container-d')).sent).toEqual([]);
    // Much later still: delivered, never sent again.
    now += 2 * CLAIM_LEASE_MS;
    expect((await opened('container-e')).sent).toEqual([]);
    expect(a.sink.sent).toEqual([]);
  });

  it('two instances opening at once after the lease send the alert once between them', async () => {
    await sending('container-a');
    await sending('container-x', 'etl', 2);
    now += CLAIM_LEASE_MS;
    const [b, c] = await Promise.all([opened('container-b'), opened('container-c')]);
    const sent = [...b.sent, ...c.sent];
    expect(sent).toHaveLength(2);
    expect(new Set(sent).size).toBe(2);
  });

  it('a pipeline kept open (a sweep) takes over what a dead instance left once its lease ran out', async () => {
    await sending('container-a');
    const b = await opened('container-b');
    expect(b.sent).toEqual([]);
    now += CLAIM_LEASE_MS;
    await b.pipeline.advance(at(70));
    expect(b.sent).toHaveLength(1);
    await b.pipeline.advance(at(71));
    await b.pipeline.finish();
    expect(b.sent).toHaveLength(1);
    expect((await opened('container-c')).sent).toEqual([]);
  });

  /** `container-a` still sends the alert of app's login, and `container-x` failed to send that of etl's. */
  async function oneSendingOneFailed() {
    const a = await sending('container-a');
    const x = await open(await instance('container-x'), new FailingSink(SINK));
    const items = login('etl', 2).map((event) => ({ type: 'event' as const, event }));
    await expect(x.ingest(items)).rejects.toMatchObject({ code: 'SINK_FAILED' });
    return a;
  }

  const titles = (sink: RecordingSink) => sink.sent.map((s) => s.title);

  // The retry in the same container (the same claimant, the pipeline re-opened), or another instance.
  it.each([
    ["the instance's retry", 'container-x', 'container-b'],
    ['another instance', 'container-b', 'container-x'],
  ])(
    'a sink that failed gives its alerts up: %s sends them at once, not what another instance still sends',
    async (_, first, then) => {
      const a = await oneSendingOneFailed();
      expect(titles((await opened(first)).sink)).toEqual([expect.stringMatching(/etl/)]);
      expect((await opened(then)).sent).toEqual([]);
      a.sink.release();
      await a.delivered;
    },
  );

  it('a pipeline kept open takes at its next sweep what another instance gave up, not what one still sends', async () => {
    const b = await opened('container-b');
    const a = await oneSendingOneFailed();
    // The claim given up ended at once: the sweep, looking only at claims that ended, finds it.
    await b.pipeline.advance(at(70));
    expect(titles(b.sink)).toEqual([expect.stringMatching(/etl/)]);
    await b.pipeline.advance(at(71));
    expect(b.sent).toHaveLength(1);
    a.sink.release();
    await a.delivered;
  });

  it('upgrades a store written by the previous schema: its records have no claim, and the first instance to ask sends them once', async () => {
    const writer = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await writer.commit(batch({ alerts: [alert('a1', t), alert('a2', t), alert('a3', t)] }));
    await writer.markDelivered(SINK, ['a1']);
    await writer.close();
    const mysql = adapter.name === 'MySqlStore';
    const versions = await backing().schemaVersions();
    // Before the claim columns and their index; then the looks stored, until when each session was
    // active and the later ones.
    const previous = versions.length - 2 - ACTIVE_UNTIL_AND_LATER;
    await backing().sql(
      [
        ...withoutActiveUntil(mysql),
        'DROP TABLE delivery_looks',
        mysql ? 'ALTER TABLE alerts DROP KEY alerts_claimed' : 'DROP INDEX alerts_claimed',
        'ALTER TABLE alerts DROP COLUMN claimant',
        'ALTER TABLE alerts DROP COLUMN claimed_until',
        mysql
          ? `DELETE FROM schema_version WHERE version > ${previous}`
          : `PRAGMA user_version = ${previous}`,
      ].join(';\n'),
    );
    const b = await instance('container-b');
    expect(await backing().schemaVersions()).toEqual(versions);
    expect((await b.undelivered(SINK)).map((x) => x.id)).toEqual(['a2', 'a3']);
    expect(await (await instance('container-c')).undelivered(SINK)).toEqual([]);
  });

  it('upgrades a store written before the looks were stored: the first look for each output reads every record', async () => {
    const writer = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await writer.commit(batch({ alerts: [alert('left', t), alert('sent', t)] }));
    await writer.markDelivered(SINK, ['sent']);
    await writer.close();
    const versions = await backing().schemaVersions();
    const mysql = adapter.name === 'MySqlStore';
    // The version before those of withoutActiveUntil stored the looks.
    await backing().sql(
      [
        ...withoutActiveUntil(mysql),
        'DROP TABLE delivery_looks',
        mysql
          ? `DELETE FROM schema_version WHERE version > ${versions.length - 1 - ACTIVE_UNTIL_AND_LATER}`
          : `PRAGMA user_version = ${versions.length - 1 - ACTIVE_UNTIL_AND_LATER}`,
      ].join(';\n'),
    );
    // Its claim ended long ago: the time any look was stored (none yet) would be too late for it.
    now += 3 * CLAIM_LEASE_MS;
    const b = await firstLook('container-b');
    expect(await backing().schemaVersions()).toEqual(versions);
    expect([b.full, b.ids()]).toEqual([[SINK], ['left']]);
    expect(await backing().sql('SELECT looked_until FROM delivery_looks')).toEqual([{ looked_until: now }]);
    const c = await firstLook('container-c');
    expect([c.full, c.ids()]).toEqual([[], []]);
  });

  it('an instance still sending when its lease runs out (a long backlog, retries) is not overtaken by one that opens', async () => {
    // A sink that takes longer than the lease: the whole history to a new output, an output
    // retrying with backoff. The instance is alive and delivers what it stored; its timers run
    // while it sends (setInterval here goes by the test's clock).
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const renewals: Promise<unknown>[] = [];
      const store = observed(await instance('container-a'), 'renewClaims', (p) => renewals.push(p));
      class SlowSink implements AlertSink {
        readonly sent: Alert[] = [];
        constructor(
          readonly name: string,
          private readonly during: () => Promise<void>,
        ) {}
        async send(alerts: Alert[]): Promise<void> {
          if (alerts.length === 0) return;
          for (const step of [CLAIM_LEASE_MS / 2, CLAIM_LEASE_MS / 2 + 60_000]) {
            now += step;
            await vi.advanceTimersByTimeAsync(step);
            await Promise.all(renewals);
          }
          await this.during();
          this.sent.push(...alerts);
        }
      }
      let other: string[] = [];
      const slow = new SlowSink(SINK, async () => {
        other = (await opened('container-b')).sent;
      });
      const a = await open(store, slow);
      const raised = await a.ingest(login('app', 1).map((event) => ({ type: 'event' as const, event })));
      expect(renewals.length).toBeGreaterThan(0);
      expect(slow.sent).toEqual(raised);
      expect(other).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a call made before advance() resolves (as inTurn allows) has its alerts delivered once', async () => {
    const sink = new HeldSink(SINK);
    const pipeline = await open(await instance('container-a'), sink);
    // The first login is buffered; advance releases it and starts sending its alert.
    await pipeline.ingest([
      { type: 'event' as const, event: db.connect({ at: at(0), conn: 1, account: 'app' }) },
    ]);
    const advanced = pipeline.advance(at(30));
    await sink.sending;
    // The next call is made while advance's delivery is under way: its commit stores etl's alert.
    const next = pipeline.ingest(login('etl', 2).map((event) => ({ type: 'event' as const, event })));
    await new Promise((resolve) => setTimeout(resolve, 50));
    sink.release();
    await advanced;
    await next;
    const ids = sink.sent.map((x) => x.id);
    expect(new Set(ids).size).toBe(2);
    expect(ids).toEqual([...new Set(ids)]);
  });

  it('a pipeline kept open does not scan the whole backlog for every sink at every sweep', async () => {
    // undelivered() reads every stored alert (NOT EXISTS per row: about 0.8 s a sink on SQLite,
    // 6 s on MariaDB, with 1M alerts); a sweep runs every minute, a consumer's on every partition.
    const store = await instance('container-a');
    const scans = vi.spyOn(store, 'undelivered');
    const looks = vi.spyOn(store, 'lapsed');
    const { config, rules } = testConfig();
    const names = ['jsonl', 'oci-stream', 'oci-notifications'];
    const pipeline = await Pipeline.open({
      config,
      rules,
      store,
      sinks: names.map((n) => new RecordingSink(n)),
    });
    // Opening: one look for every sink, which reads every record for a sink none looked for before.
    expect(looks).toHaveBeenCalledTimes(1);
    expect(scans.mock.calls).toEqual(names.map((n) => [n]));
    // Ten sweeps: each looks once, for every sink at once, at the claims that ended since the last
    // look (by their end, an index), never at the whole backlog again.
    for (let i = 1; i <= 10; i++) {
      now += 100;
      await pipeline.advance(at(i));
    }
    expect(scans).toHaveBeenCalledTimes(names.length);
    expect(looks).toHaveBeenCalledTimes(11);
    // Another pipeline that opens (a function's next invocation) looks from the time stored.
    const next = await instance('container-b');
    const again = vi.spyOn(next, 'undelivered');
    await Pipeline.open({ config, rules, store: next, sinks: names.map((n) => new RecordingSink(n)) });
    expect(again).not.toHaveBeenCalled();
  });

  /**
   * The look of a pipeline that opens on a new instance `name` (`lapsed`, its first): what it gives
   * each sink, and the sinks for which it read every record (`undelivered`).
   */
  async function firstLook(name: string, sinks: string[] = [SINK], store?: StateStore) {
    const opening = store ?? (await instance(name));
    const full = vi.spyOn(opening, 'undelivered');
    const found = await opening.lapsed(sinks, { opening: true });
    return {
      ids: (sink = SINK) => (found.get(sink) ?? []).map((a) => a.id),
      full: full.mock.calls.map((c) => c[0]),
    };
  }

  it('a pipeline that opens looks from the last look stored for each output; one for an output none looked for (new, renamed) reads every record, once', async () => {
    const a = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await a.commit(batch({ alerts: [alert('r1', t), alert('r2', t)] }));
    await a.markDelivered(SINK, ['r1', 'r2']);
    expect(await firstLook('container-b')).toMatchObject({ full: [SINK] });
    // An output added (or renamed) since: its first look reads every record; the other's does not.
    const c = await firstLook('container-c', [SINK, 'added']);
    expect(c.full).toEqual(['added']);
    // The records are still container-a's (its lease runs): no one takes them yet.
    expect([c.ids(SINK), c.ids('added')]).toEqual([[], []]);
    // Once its claims ended, an instance with the output container-a lacks sends them there.
    now += CLAIM_LEASE_MS;
    const d = await firstLook('container-d', [SINK, 'added']);
    expect(d).toMatchObject({ full: [] });
    expect([d.ids(SINK), d.ids('added')]).toEqual([[], ['r1', 'r2']]);
    expect(await firstLook('container-e', [SINK, 'added'])).toMatchObject({ full: [] });
  });

  it('the look from the time stored finds what an instance left (died, gave up), and what an instance reopened holds itself', async () => {
    expect((await firstLook('container-b')).full).toEqual([SINK]);
    const a = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await a.commit(batch({ alerts: [alert('left', t), alert('given', t), alert('sent', t)] }));
    await a.markDelivered(SINK, ['sent']);
    await a.releaseClaims(['given']);
    const c = await firstLook('container-c');
    expect([c.full, c.ids()]).toEqual([[], ['given']]);
    // A pipeline re-opened on the same scope in the same process (the same claimant) takes back
    // what it holds, as the look at every record did: its claim has not ended.
    now += CLAIM_LEASE_MS / 2;
    const again = await firstLook('container-a');
    expect([again.full, again.ids()]).toEqual([[], ['left']]);
    // Long after, the claims of both ended (neither sent): the next to open sends them, once.
    now += 3 * CLAIM_LEASE_MS;
    const d = await firstLook('container-d');
    expect([d.full, d.ids()]).toEqual([[], ['given', 'left']]);
    const e = await firstLook('container-e');
    expect([e.full, e.ids()]).toEqual([[], []]);
  });

  it('a given-up record every output of an instance received is found by the next to open with another output, whose clock may be ahead', async () => {
    expect((await firstLook('container-b', [SINK, 'pager'])).full).toEqual([SINK, 'pager']);
    const a = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await a.commit(batch({ alerts: [alert('r', t)] }));
    // Its pager failed after the first output took the record: it gives the record up.
    await a.markDelivered(SINK, ['r']);
    await a.releaseClaims(['r']);
    // An instance with the first output only, its clock 5 minutes behind, clears the mark at its
    // look (by its clock): the record's claim ended then.
    const behind = await backing().open('container-x', { claimant: 'container-x', now: () => now - 300_000 });
    expect((await behind.lapsed([SINK])).get(SINK)).toEqual([]);
    const c = await firstLook('container-c', [SINK, 'pager']);
    expect([c.full, c.ids(SINK), c.ids('pager')]).toEqual([[], [], ['r']]);
    expect((await firstLook('container-d', [SINK, 'pager'])).ids('pager')).toEqual([]);
  });

  it('a given-up record every output of an instance received reaches a pipeline kept open with another output that looked after the time of the look that unmarked it', async () => {
    // A consumer kept open with both outputs; its sweeps look from its own last look.
    const b = await instance('container-b');
    const sweep = async () => {
      const sent = ((await b.lapsed([SINK, 'pager'])).get('pager') ?? []).map((x) => x.id);
      await b.markDelivered('pager', sent);
      return sent;
    };
    expect((await firstLook('container-b', [SINK, 'pager'], b)).full).toEqual([SINK, 'pager']);
    const a = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await a.commit(batch({ alerts: [alert('r', t)] }));
    now += 30_000;
    // The consumer's sweep: the record is still container-a's.
    expect(await sweep()).toEqual([]);
    // Its pager failed after the first output took the record: it gives the record up, and an
    // instance with the first output only, its clock 2 minutes behind (the claims allow up to a
    // lease), unmarks it at its look before the consumer looks again.
    await a.markDelivered(SINK, ['r']);
    await a.releaseClaims(['r']);
    const behind = await backing().open('container-x', { claimant: 'container-x', now: () => now - 120_000 });
    expect((await behind.lapsed([SINK])).get(SINK)).toEqual([]);
    const found: string[] = [];
    for (let i = 0; i < 40; i++) {
      now += 60_000;
      found.push(...(await sweep()));
    }
    expect(found).toEqual(['r']);
    // Nor does an instance that opens later with the pager take it again.
    expect((await firstLook('container-c', [SINK, 'pager'])).ids('pager')).toEqual([]);
  });

  it('a look stored by an instance whose clock is far ahead does not make those that open skip the records whose claims ended since', async () => {
    // A container whose clock is an hour ahead looks, and stores the time of its look by its clock.
    const ahead = await backing().open('container-z', {
      claimant: 'container-z',
      now: () => now + 3_600_000,
    });
    expect((await ahead.lapsed([SINK])).get(SINK)).toEqual([]);
    // Then an instance stores a record and dies before sending it.
    const a = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await a.commit(batch({ alerts: [alert('left', t)] }));
    // Its claim ended: the next to open sends it.
    now += 2 * CLAIM_LEASE_MS;
    const b = await firstLook('container-b');
    expect([b.full, b.ids()]).toEqual([[SINK], ['left']]);
    // That look, at every record, stored its own time: the next looks from it.
    const c = await firstLook('container-c');
    expect([c.full, c.ids()]).toEqual([[], []]);
  });

  it('two instances opening at once, and a commit meanwhile: each record is taken once; a look that failed before taking what it found is made again', async () => {
    expect((await firstLook('container-b')).full).toEqual([SINK]);
    const a = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await a.commit(batch({ alerts: [alert('r1', t), alert('r2', t)] }));
    now += CLAIM_LEASE_MS;
    const [c, d] = await Promise.all([
      firstLook('container-c'),
      firstLook('container-d'),
      a.commit(batch({ alerts: [alert('r3', t)] })),
    ]);
    expect([...c.full, ...d.full]).toEqual([]);
    expect([...c.ids(), ...d.ids()].sort()).toEqual(['r1', 'r2']);
    // All left undelivered (their instances died). Long after, a look fails before it claims what
    // it found: the time it looked is not stored, and the next look starts from the last one stored.
    now += 3 * CLAIM_LEASE_MS;
    const failing = await instance('container-e');
    vi.spyOn(failing as unknown as { claim: () => never }, 'claim').mockImplementation(() => {
      throw new AuditError('STORE_FAILED', 'state store connection lost');
    });
    await expect(failing.lapsed([SINK])).rejects.toMatchObject({ code: 'STORE_FAILED' });
    const f = await firstLook('container-f');
    expect([f.full, f.ids()]).toEqual([[], ['r1', 'r2', 'r3']]);
  });

  it('a renewal of some of its claims (a digest checking what is due) does not hold off the renewal of the others at the next commit', async () => {
    const store = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    // Two records of its own: one a route's digest sends soon, one another route's digest holds.
    await store.commit(batch({ alerts: [alert('due', t), alert('held', t)] }));
    // Just before the lease ends, the first digest asks which of its records are still its own.
    now += CLAIM_LEASE_MS - 10_000;
    expect(await store.renewClaims(['due'])).toEqual(new Set());
    // Its next commit lists every record it holds, the held one too.
    now += 5_000;
    expect((await store.commit(batch({ renew: ['due', 'held'] }))).lost ?? new Set()).toEqual(new Set());
    // The instance runs: another one that opens after the first lease takes nothing over.
    now += 5_001;
    const other = await instance('container-b');
    expect((await other.undelivered(SINK)).map((x) => x.id)).toEqual([]);
  });

  it('renews its own claims when it looks again, so that a record it holds is not taken over while it runs', async () => {
    const store = await instance('container-a');
    const t = new Date(at(1)).toISOString();
    await store.commit(batch({ alerts: [alert('a1', t)] }));
    now += CLAIM_LEASE_MS - 1;
    expect((await store.undelivered(SINK)).map((x) => x.id)).toEqual(['a1']);
    now += CLAIM_LEASE_MS - 1;
    const other = await instance('container-b');
    expect(await other.undelivered(SINK)).toEqual([]);
    now += 1;
    expect((await other.undelivered(SINK)).map((x) => x.id)).toEqual(['a1']);
    expect(await store.undelivered(SINK)).toEqual([]);
  });
}

describe('delivery claims: SqliteStore (one file)', () => {
  claims(sqliteAdapter);

  it('takes over at once the claims of a process of this host that no longer runs, not those of one that runs', async () => {
    const backing = await sqliteAdapter.create();
    try {
      const gone = spawnSync(process.execPath, ['-e', '']).pid;
      const claimant = (pid: number) => `${pid}@${hostname()}#00000000/function`;
      const t = new Date(at(1)).toISOString();
      const dead = await backing.open('function', { claimant: claimant(gone) });
      await dead.commit(batch({ alerts: [alert('left', t)] }));
      const alive = await backing.open('function', { claimant: claimant(process.ppid) });
      await alive.commit(batch({ alerts: [alert('sending', t)] }));
      const next = await backing.open('function');
      expect((await next.undelivered(SINK)).map((x) => x.id)).toEqual(['left']);
    } finally {
      await backing.dispose();
    }
  });
});
describe('delivery claims: SqliteStore, given-up records every sink received', () => {
  // An output that fails part-way (an immediate topic route after some messages) gives up every
  // record of the send, those it took and marked delivered too: the look at ended claims must not
  // read those at every later sweep of every instance, as it would the whole backlog.
  it('are read by one look at ended claims, not by every later one', async () => {
    const backing = await sqliteAdapter.create();
    try {
      const t = new Date(at(1)).toISOString();
      const failed = await backing.open('function', { claimant: 'container-a' });
      await failed.commit(batch({ alerts: [alert('taken', t), alert('missed', t)] }));
      await failed.markDelivered(SINK, ['taken']);
      await failed.releaseClaims(['taken', 'missed']);
      const other = await backing.open('function', { claimant: 'container-b' });
      expect((await other.undelivered(SINK)).map((x) => x.id)).toEqual(['missed']);
      const asked: string[][] = [];
      const delivered = other.delivered.bind(other);
      vi.spyOn(other, 'delivered').mockImplementation(async (sink, keys) => {
        asked.push([...keys]);
        return delivered(sink, keys);
      });
      for (let i = 0; i < 3; i++) await other.lapsed([SINK]);
      // Whatever the first look reads, the records the sink received are not read again and again.
      expect(asked.slice(1).flat()).not.toContain('taken');
    } finally {
      await backing.dispose();
    }
  });
});
describe('delivery claims: SqliteStore, a process restarted with the same PID', () => {
  // A process in a container is PID 1 at every start: the claim of the one that crashed has this
  // process's PID and host, with another tag. A holder row of the same PID is taken over at once.
  it('takes over at once the claims of an earlier process that had this PID', async () => {
    const backing = await sqliteAdapter.create();
    try {
      const earlier = `${process.pid}@${hostname()}#00000000/function`;
      const t = new Date(at(1)).toISOString();
      const crashed = await backing.open('function', { claimant: earlier });
      await crashed.commit(batch({ alerts: [alert('left', t)] }));
      const restarted = await backing.open('function');
      expect((await restarted.undelivered(SINK)).map((x) => x.id)).toEqual(['left']);
    } finally {
      await backing.dispose();
    }
  });
});
describe('delivery claims: SqliteStore (one file, commit threads)', () => claims(sqliteThreadAdapter));
describeMySql('delivery claims: MySqlStore', (server) => claims(mysqlAdapter(server)));
