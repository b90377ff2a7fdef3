// Containers of the function on one shared store: the container whose commit stored an alert
// sends it; another container invoked meanwhile (every invocation re-opens the pipeline on a
// mysql:// store) does not page it again; if the first dies while sending, the first invocation in
// any container after the claim's lease sends it, once. Runs on a real MySQL store (TEST_MYSQL_URL)
// and on a SQLite file standing in for it; each container claims as itself, on the test's clock.
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { FunctionHost } from '../../functions/function-host.js';
import { MySqlStore } from '../../shared/state/mysql-store.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { CLAIM_LEASE_MS, type ClaimOptions, type StateStore } from '../../shared/state/state-store.js';
import { collect } from '../helpers/collect.js';
import { fleetConfigJson, removeTempDirs, tempDir } from '../helpers/fdk-harness.js';
import { Lines, loggingBatch, N } from '../helpers/host-batches.js';
import { describeMySql, type MySqlTestServer } from '../helpers/mysql-server.js';

afterAll(() => removeTempDirs());

type Open = (scope: string, claims: ClaimOptions) => Promise<StateStore>;

/** A new shared location per test: a MySQL database or a SQLite file. */
type Location = { open: Open; dispose(): Promise<void> };

/** stdout of a container that stops in the middle of writing an alert: it takes nothing more until `release`. */
class StuckOutput extends Writable {
  readonly lines: string[] = [];
  private pending: (() => void) | undefined;
  constructor() {
    super({ highWaterMark: 1 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(chunk.toString('utf8'));
    this.pending = done;
  }
  get stuck(): boolean {
    return this.pending !== undefined;
  }
  release(): void {
    this.pending?.();
  }
}

function deliveryClaims(create: () => Promise<Location>) {
  it('a container invoked while another sends an alert does not send it; after a dead sender’s lease the next invocation does, once', async () => {
    const location = await create();
    let clock = Date.parse('2026-11-20T12:00:00Z');
    const container = (name: string, stdout: NodeJS.WritableStream) =>
      new FunctionHost({
        // The mysql:// spec makes the host re-open the pipeline at every invocation; the stores are the test's.
        env: {
          HWAUDIT_CONFIG: fleetConfigJson(),
          HWAUDIT_STATE: 'mysql://hwaudit@heatwave.example:3306/hwaudit',
        },
        now: () => N,
        stdout,
        stderr: new Lines(),
        openStore: async (_spec, { scope }) => {
          const store = await location.open(scope ?? 'function', { claimant: name, now: () => clock });
          // Invocations of one scope take turns (lockScope); a container stuck sending would hold
          // the lock until the server ends its connection. The turns are not what is tested here.
          return new Proxy(store, {
            get(target, prop) {
              if (prop === 'lockScope') return async () => ({ release: async () => {} });
              const value = Reflect.get(target, prop, target);
              return typeof value === 'function' ? value.bind(target) : value;
            },
          });
        },
      });
    try {
      const stuck = new StuckOutput();
      const a = container('container-a', stuck);
      void a.invoke(loggingBatch(), { callId: 'batch' });
      while (!stuck.stuck) await new Promise((resolve) => setTimeout(resolve, 10));
      // What a committed, and is sending (the first of it is half written).
      const reader = await location.open('reader', { claimant: 'reader', now: () => clock });
      const stored = (await collect(reader.alerts())).map((x) => x.id);
      expect(stored.length).toBeGreaterThan(0);
      const sentOfA = (out: Lines) =>
        out
          .json()
          .filter((x) => stored.includes(String(x.id)))
          .map((x) => x.id);

      const bOut = new Lines();
      const b = container('container-b', bOut);
      await b.invoke('{"action":"sweep"}', { callId: 'sweep-1' });
      expect(sentOfA(bOut)).toEqual([]);
      // Container a died sending. Its claims run out; b's next invocation sends its alerts.
      clock += CLAIM_LEASE_MS - 1;
      await b.invoke('{"action":"sweep"}', { callId: 'sweep-2' });
      expect(sentOfA(bOut)).toEqual([]);
      clock += 1;
      await b.invoke('{"action":"sweep"}', { callId: 'sweep-3' });
      expect(sentOfA(bOut)).toEqual(stored);
      const cOut = new Lines();
      const c = container('container-c', cOut);
      await c.invoke('{"action":"sweep"}', { callId: 'sweep-4' });
      await b.invoke('{"action":"sweep"}', { callId: 'sweep-5' });
      expect(sentOfA(cOut)).toEqual([]);
      expect(sentOfA(bOut)).toEqual(stored);
      await Promise.all([b.close(), c.close()]);
    } finally {
      await location.dispose();
    }
  });
}

/** Stores opened on one location, all closed by `dispose`. */
function tracked(open: Open): Location {
  const opened: StateStore[] = [];
  return {
    open: async (scope, claims) => {
      const store = await open(scope, claims);
      opened.push(store);
      return store;
    },
    dispose: async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
    },
  };
}

describe('delivery claims of function containers: SQLite file standing in for the shared store', () => {
  deliveryClaims(async () => {
    const file = join(tempDir('hwaudit-claims-'), 'shared.sqlite');
    return tracked(async (scope, claims) => SqliteStore.open(file, { scope, claims }));
  });
});

describeMySql('delivery claims of function containers: MySQL store', (server: MySqlTestServer) => {
  deliveryClaims(async () => {
    const db = await server.createDatabase();
    return tracked((scope, claims) => MySqlStore.open(db.connection, { scope, claims }));
  });
});
