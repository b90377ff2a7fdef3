// The run summary's attribution line, the replay progress line, and the order the merge takes records in.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { progressLine } from '../../functions/cli/replay.js';
import { pipelineReport, readLedger } from '../../functions/cli/summary.js';
import { at, db } from '../../shared/detect/timeline.js';
import { type ReplayProgress, replayFiles } from '../../shared/replay.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { runBatches, testConfig } from '../helpers/run-timeline.js';

describe('pipelineReport: attribution', () => {
  it('gives shares of the IAM sessions, as the demo does, with local accounts and failed logins beside them', async () => {
    const store = SqliteStore.open(':memory:');
    const { pipeline } = await runBatches(
      [
        [
          db.connect({ at: at(1), conn: 1, account: 'carol' }), // 1-to-1: verified
          db.connect({ at: at(2), conn: 2, account: 'admin' }), // local
          db.connect({ at: at(3), conn: 3, account: 'app' }), // local
          db.connect({ at: at(4), conn: 4, account: 'app', status: 1045 }), // failed login
          db.unnamed({ at: at(5), conn: 5, ip: '10.9.0.1' }), // group-mapped, nobody named: unattributed
        ],
      ],
      { store },
    );
    const line = (coverage: Awaited<ReturnType<typeof readLedger>>) =>
      pipelineReport(pipeline, coverage, []).find((l) => l.includes('attribution'));
    // From the store's typed columns, and from the sessions as the sessions file is written.
    const counted = await readLedger(store, { path: undefined, format: 'jsonl' });
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-ledger-'));
    const read = await readLedger(store, { path: join(dir, 'sessions.jsonl'), format: 'jsonl' });
    rmSync(dir, { recursive: true, force: true });
    expect(counted).toEqual(read);
    expect(line(counted)).toBe(
      '  attribution of 2 IAM sessions: verified 50.0%, corroborated 0.0%, asserted 0.0%, unattributed 50.0%; plus 2 local-account sessions and 1 failed logins',
    );
    await store.close();
  });
});

/** `n` one-line audit records, one connect and one disconnect per connection, minutes apart. */
function auditFile(path: string, n: number, offsetSeconds: number): void {
  const lines = Array.from({ length: n }, (_, i) => {
    const conn = Math.floor(i / 2) + 1;
    const ts = new Date(at(i) + offsetSeconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
    return JSON.stringify({
      timestamp: ts,
      id: i,
      class: 'connection',
      event: i % 2 === 0 ? 'connect' : 'disconnect',
      connection_id: conn,
      account: { user: 'app', host: '%' },
      login: { user: 'app', os: '', ip: '10.0.0.9', proxy: '' },
      connection_data: { connection_type: 'ssl', status: 0 },
    });
  });
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/**
 * Replays audit files of `n` records each, `offsetSeconds` after the timeline's start, in batches of
 * `batchSize`; gives the replay's stats and its progress reports (one per batch, then the end).
 */
async function replayAuditFiles(
  files: Record<string, [n: number, offsetSeconds: number]>,
  batchSize: number,
  batchesPerCommit?: number,
) {
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-progress-'));
  const inputs = Object.entries(files).map(([name, [n, offset]]) => {
    const path = join(dir, name);
    auditFile(path, n, offset);
    return path;
  });
  const { config, rules } = testConfig();
  const seen: ReplayProgress[] = [];
  const store = SqliteStore.open(':memory:');
  const commit = store.commit.bind(store);
  let commits = 0;
  store.commit = (batch) => {
    commits++;
    return commit(batch);
  };
  try {
    const { stats } = await replayFiles({
      config,
      rules,
      inputs,
      store,
      sinks: [],
      batchSize,
      ...(batchesPerCommit === undefined ? {} : { batchesPerCommit }),
      onProgress: (p) => seen.push(structuredClone(p)),
    });
    return { inputs, stats, seen, commits };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('replay progress', () => {
  it('counts the records of each input as the merge takes them', async () => {
    const { inputs, seen } = await replayAuditFiles({ 'a.log': [40, 0], 'b.log': [10, 30] }, 5);
    // Interleaved by time: after the first 10 records, both files have given some.
    expect(seen[1]?.inputs).toMatchObject([
      { path: inputs[0], records: 5 },
      { path: inputs[1], records: 5 },
    ]);
    expect(seen.at(-1)).toMatchObject({ records: 50, inputs: [{ records: 40 }, { records: 10 }] });
  });

  it('keeps taking the first input across batch boundaries while another starts later', async () => {
    // Minutes 0-9, and one record two hours later.
    const { stats, seen } = await replayAuditFiles({ 'early.log': [10, 0], 'late.log': [1, 2 * 3600] }, 2);
    // Taken out of order, the later record would move the watermark past the earlier ones.
    expect(stats).toMatchObject({ received: 11, processed: 11, late: 0 });
    expect(seen.slice(0, 5).map((p) => p.inputs.map((i) => i.records))).toEqual([
      [2, 0],
      [4, 0],
      [6, 0],
      [8, 0],
      [10, 0],
    ]);
  });

  it('writes its batches to the store a few at a time, with the same result', async () => {
    // 40 records in batches of 4: ten batches and the end. Four at a time: the first batch (whose
    // commit first prunes the ledger), the fourth, the eighth, and the end with the last two.
    const files = { 'a.log': [30, 0], 'b.log': [10, 600] } satisfies Record<string, [number, number]>;
    const each = await replayAuditFiles(files, 4, 1);
    const grouped = await replayAuditFiles(files, 4);
    expect([each.commits, grouped.commits]).toEqual([11, 4]);
    expect(grouped.stats).toEqual(each.stats);
  });

  it('takes records of the same time in command-line order, whatever input it took last', async () => {
    // The same records in both files: each time, the first input's record goes first (a0 b0 a1 | b1 a2 b2 | a3 b3).
    const { stats, seen } = await replayAuditFiles({ 'a.log': [4, 0], 'b.log': [4, 0] }, 3);
    expect(seen.map((p) => p.inputs.map((i) => i.records))).toEqual([
      [2, 1],
      [3, 3],
      [4, 4],
    ]);
    expect(stats).toMatchObject({ received: 8, processed: 4, duplicates: 4 });
  });

  it('credits each input with the records read from it, the busiest first', () => {
    const inputs = [
      { path: 'iam.json', records: 300 },
      { path: 'prod.log', records: 1200 },
      { path: 'empty.log', records: 0 },
      { path: 'b.log', records: 20 },
      { path: 'c.log', records: 10 },
    ];
    expect(progressLine({ records: 1530, alerts: 2, inputs })).toBe(
      '  1,530 records, 2 alerts (prod.log 1,200; iam.json 300; b.log 20; +1 input)',
    );
  });
});
