// The reliability suite: faults that must not lose an alert, repeat one, leak a secret or leave
// the state wrong. Each fault runs the built CLI as users do and compares with an uninterrupted
// run of the same inputs. One figure line per fault is printed at the end (runs, lost, duplicated).
// The collector's SIGKILL runs are in test/cli/collect.test.ts; a store outage in the middle of a
// function batch in test/function/fdk-contract.test.ts ("a commit failure mid-run ...").
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Alert, recordKey } from '../../schemas/alert.js';
import { generateDemo } from '../../shared/demo/generate-demo.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { runCli, runCliKilledAfter, stateOf } from '../helpers/cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-faults-'));
const figures: string[] = [];
let demo: ReturnType<typeof generateDemo>;
let inputs: string[];
let expected: Awaited<ReturnType<typeof stateOf>>;

/** A replay of every input into `state`, with `options` (--out, --threads) before the inputs. */
const replayArgs = (state: string, ...options: string[]) => [
  'replay',
  '--config',
  demo.config,
  '--state',
  state,
  ...options,
  ...inputs,
];

beforeAll(async () => {
  demo = generateDemo({ out: join(dir, 'demo'), seed: 11, scale: 0.1, appRate: 0.3 });
  inputs = demo.inputs;
  const r = await runCli(replayArgs(join(dir, 'reference.sqlite')));
  expect(r.code, r.stderr).toBe(0);
  expected = await stateOf(join(dir, 'reference.sqlite'));
  expect(expected.alerts.length).toBeGreaterThan(10);
});
afterAll(() => {
  process.stderr.write(`${figures.map((f) => `reliability: ${f}`).join('\n')}\n`);
  rmSync(dir, { recursive: true, force: true });
});

/** Alert ids of an alerts file (every line must be whole JSON; lines that are no alert are skipped). */
/** The record keys in an alerts file (an alert's id, `<id>:resolved` for its resolution); other lines are skipped. */
function fileIds(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Alert)
    .filter((a) => a.id !== undefined)
    .map(recordKey);
}

function compare(got: Awaited<ReturnType<typeof stateOf>>): { lost: number; duplicated: number } {
  const keys = new Set(got.alerts.map(recordKey));
  return {
    lost: expected.alerts.filter((a) => !keys.has(recordKey(a))).length,
    duplicated: got.alerts.length - keys.size,
  };
}

describe('reliability', () => {
  // Three threads: a worker decodes, the state store commits on a thread of its own while the next
  // batch is built.
  it.each([
    ['1', [300, 700, 1100, 500, 1500]],
    ['3', [400, 900, 1300]],
  ])(
    'replay on %s thread(s) killed with SIGKILL at random points, then run again: nothing lost, nothing twice',
    async (threads, kills) => {
      const state = join(dir, `killed-${threads}.sqlite`);
      const out = join(dir, `killed-${threads}.jsonl`);
      const args = replayArgs(state, '--threads', threads, '--out', out);
      let killed = 0;
      for (const ms of kills) {
        const r = await runCliKilledAfter(args, ms);
        if (r.signal === 'SIGKILL') killed++;
        else expect(r.code, r.stderr).toBe(0);
      }
      const last = await runCli(args);
      expect(last.code, last.stderr).toBe(0);
      const got = await stateOf(state);
      const { lost, duplicated } = compare(got);
      expect(got.alerts).toEqual(expected.alerts);
      expect(got.sessions).toEqual(expected.sessions);
      // The file got every alert, once: delivered means synced, and a cut line is removed.
      const ids = fileIds(out);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.sort()).toEqual(expected.alerts.map(recordKey).sort());
      figures.push(
        `SIGKILL of replay on ${threads} thread(s): ${kills.length + 1} runs (${killed} killed), lost ${lost}, duplicated ${duplicated}, alerts file ${ids.length}/${expected.alerts.length} once each`,
      );
    },
    120_000,
  );

  it('two writers on one state: the second waits for the first; the result is the sequential one', async () => {
    // A new file another process is still creating: the run waits for it instead of failing.
    const creating = join(dir, 'creating.sqlite');
    const other = new (await import('better-sqlite3')).default(creating);
    other.exec('BEGIN IMMEDIATE; CREATE TABLE other_process (x)');
    const waiting = runCli(['replay', '--config', demo.config, '--state', creating, inputs[0]!]);
    await new Promise((r) => setTimeout(r, 1500));
    other.exec('COMMIT');
    other.close();
    const w = await waiting;
    expect(w.code, w.stderr).toBe(0);

    const state = join(dir, 'two.sqlite');
    const half = Math.ceil(inputs.length / 2);
    const [a, b] = await Promise.all([
      runCli(['replay', '--config', demo.config, '--state', state, ...inputs.slice(0, half)], {
        ...process.env,
        HWAUDIT_LOCK_WAIT: 'PT60S',
      }),
      runCli(['replay', '--config', demo.config, '--state', state, ...inputs.slice(half)], {
        ...process.env,
        HWAUDIT_LOCK_WAIT: 'PT60S',
      }),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const got = await stateOf(state);
    // Both halves in one state, each run whole: every session of the reference is there.
    expect(got.sessions.map((s) => s.id)).toEqual(expected.sessions.map((s) => s.id));
    figures.push(
      `two concurrent writers: 2 runs, both completed one after the other, ${got.sessions.length} sessions as the reference`,
    );

    // A holder that does not let go: the second process stops with who holds the state.
    const holder = SqliteStore.open(state);
    const lock = await holder.lockScope({ timeoutMs: 0 });
    try {
      const r = await runCli(['replay', '--config', demo.config, '--state', state, inputs[0]!], {
        ...process.env,
        HWAUDIT_LOCK_WAIT: 'PT0.5S',
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `replay: the state is in use by PID ${process.pid} on \\S+ since \\S+Z \\(scope default\\); wait for it to finish, or stop it`,
        ),
      );
    } finally {
      await lock.release();
      await holder.close();
    }
  }, 120_000);

  it('a full disk under the alerts file: a clear error, exit 1; the next run writes what was missing, once', async () => {
    const state = join(dir, 'full.sqlite');
    const full = await runCli(replayArgs(state, '--out', '/dev/full'));
    expect(full.code, full.stderr).toBe(1);
    expect(full.stderr).toContain('cannot write alerts to /dev/full (ENOSPC)');
    expect(full.stderr).not.toContain('    at ');

    // The shell's file size limit (512-byte blocks) lets the alerts file grow by 4 KB past a line
    // already in it, larger than the state will ever be: some alerts fit, then EFBIG.
    const out = join(dir, 'limited.jsonl');
    const filler = Math.max(64 * 1024 * 1024, 4 * statSync(join(dir, 'reference.sqlite')).size);
    writeFileSync(out, `${JSON.stringify({ filler: 'x'.repeat(filler) })}\n`);
    const blocks = Math.floor((statSync(out).size + 4096) / 512);
    const limited = await runCli(
      replayArgs(state, '--out', out),
      process.env,
      `trap '' XFSZ; ulimit -f ${blocks}`,
    );
    expect(limited.code, limited.stderr).toBe(1);
    expect(limited.stderr).toContain(`cannot write alerts to ${out} (EFBIG)`);
    // Only whole lines: the write that failed was undone (a delivery is all of a batch or none of it).
    expect(fileIds(out).length).toBeLessThan(expected.alerts.length);

    const again = await runCli(replayArgs(state, '--out', out));
    expect(again.code, again.stderr).toBe(0);
    const ids = fileIds(out);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(expected.alerts.map(recordKey).sort());
    figures.push(
      `full disk under --out: 3 runs, lost ${expected.alerts.length - ids.length}, duplicated ${ids.length - new Set(ids).size}`,
    );
  }, 120_000);

  it.each(['1', '3'])(
    'a full disk under the state, on %s thread(s): a clear error naming the file; the next run completes',
    async (threads) => {
      const state = join(dir, `state-full-${threads}.sqlite`);
      const r = await runCli(
        replayArgs(state, '--threads', threads),
        process.env,
        "trap '' XFSZ; ulimit -f 64",
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`the state file ${state} cannot be read or written`);
      expect(r.stderr).not.toContain('    at ');
      const again = await runCli(replayArgs(state));
      expect(again.code, again.stderr).toBe(0);
      const { lost, duplicated } = compare(await stateOf(state));
      expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
      figures.push(
        `full disk under the state on ${threads} thread(s): 2 runs, lost ${lost}, duplicated ${duplicated}`,
      );
    },
    120_000,
  );

  it('a state that cannot be used says which file and what to do', async () => {
    const input = inputs.find((p) => p.endsWith('.audit.log'))!;
    const missing = await runCli([
      'replay',
      '--config',
      demo.config,
      '--state',
      join(dir, 'no', 'such', 'dir', 's.sqlite'),
      input,
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('s.sqlite cannot be created: its folder does not exist');
    const corrupt = join(dir, 'corrupt.sqlite');
    writeFileSync(corrupt, 'this is not a database, but long enough to look like one '.repeat(100));
    const bad = await runCli(['replay', '--config', demo.config, '--state', corrupt, input]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`the state file ${corrupt} is not a state file`);
    expect(bad.stderr).not.toContain('internal error');
    const newer = join(dir, 'newer.sqlite');
    await SqliteStore.open(newer).close();
    const db = new (await import('better-sqlite3')).default(newer);
    db.pragma('user_version = 999');
    db.close();
    const future = await runCli(['replay', '--config', demo.config, '--state', newer, input]);
    expect(future.code).toBe(1);
    expect(future.stderr).toContain(
      `the state file ${newer} was written by a newer version of heatwave-iam-audit (schema 999)`,
    );
  });

  it('events dated 9999 (MySQL and IAM) are dead letters and do not blind the pipeline; --as-of in the future is refused', async () => {
    const poisoned = join(dir, 'poisoned.json');
    writeFileSync(
      poisoned,
      `${JSON.stringify([
        {
          timestamp: '9999-12-31 23:59:59',
          id: 1,
          class: 'connection',
          event: 'connect',
          connection_id: 1,
          account: { user: 'x', host: '%' },
          login: { user: 'x', os: '', ip: '', proxy: '' },
          connection_data: { status: 0 },
        },
      ])}\n`,
    );
    const iamPoisoned = join(dir, 'iam-poisoned.json');
    writeFileSync(
      iamPoisoned,
      `${JSON.stringify([
        {
          specversion: '1.0',
          id: 'poison-1',
          type: 'com.oraclecloud.identityControlPlane.AddUserToGroup',
          time: '9999-12-31T23:59:59Z',
          source: 'IdentityControlPlane',
          data: { eventName: 'AddUserToGroup', identity: {}, request: {}, response: { status: '200' } },
        },
      ])}\n`,
    );
    const state = join(dir, 'poisoned.sqlite');
    const first = inputs.find((p) => p.endsWith('.audit.log'))!;
    const db = first.split('/').at(-1)!.split('.')[0]!;
    const r = await runCli([
      'replay',
      '--config',
      demo.config,
      '--state',
      state,
      '--db-system',
      db,
      poisoned,
      iamPoisoned,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('TIME_OUT_OF_RANGE: 2');
    const rest = await runCli(replayArgs(state));
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stderr).not.toContain('TOO_LATE');
    const { lost } = compare(await stateOf(state));
    expect(lost).toBe(0);

    const future = await runCli([
      'replay',
      '--config',
      demo.config,
      '--as-of',
      '2999-01-01T00:00:00Z',
      first,
    ]);
    expect(future.code).toBe(2);
    expect(future.stderr).toContain('--as-of is in the future');
    figures.push(`events dated 9999: 2 dead letters (TIME_OUT_OF_RANGE), later input: lost ${lost}`);
  }, 120_000);
});
