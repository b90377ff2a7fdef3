// `consume` killed with SIGKILL at random points while it reads an OCI stream (the signed local
// endpoint), then run again until the stream is drained: the state holds what a replay of the same
// records gives, nothing lost, nothing twice.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { recordKey } from '../../schemas/alert.js';
import { generateDemo } from '../../shared/demo/generate-demo.js';
import { runCli, runCliKilledAfter, stateOf } from '../helpers/cli-process.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';
import { type StreamingService, streamingService } from '../oci-endpoint/streaming.js';

const STREAM = 'ocid1.stream.oc1.iad.killed';
const dir = mkdtempSync(join(tmpdir(), 'hwaudit-consume-killed-'));
let principal: TestPrincipal;
let endpoint: OciEndpoint;
let streaming: StreamingService;
let config: string;
let records: string;

/** Collector records of the demo's audit files and its OCI audit events, in event-time order. */
function streamRecords(demo: ReturnType<typeof generateDemo>): string[] {
  const dbs = (parse(readFileSync(demo.config, 'utf8')) as { dbSystems: { id: string; name: string }[] })
    .dbSystems;
  const timed: { ts: number; text: string }[] = [];
  for (const input of demo.inputs) {
    const text = readFileSync(input, 'utf8');
    if (input.includes('/iam/')) {
      const parsed = JSON.parse(text) as unknown;
      const events = Array.isArray(parsed)
        ? parsed
        : ((parsed as { items?: unknown[]; data?: unknown[] }).items ??
          (parsed as { data?: unknown[] }).data ??
          []);
      for (const e of events as { time?: string; eventTime?: string }[])
        timed.push({ ts: Date.parse(e.time ?? e.eventTime ?? ''), text: JSON.stringify(e) });
      continue;
    }
    const db = dbs.find((d) => input.includes(`/${d.name}.`))!;
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      const r = JSON.parse(line.replace(/,$/, '')) as Record<string, unknown>;
      const record =
        r.source === undefined
          ? { source: 'mysql-audit', dbSystemId: db.id, dbSystemName: db.name, event: r }
          : r;
      const stamp = String(
        (record.event as { timestamp?: string } | undefined)?.timestamp ?? record.to ?? record.from,
      );
      timed.push({
        ts: Date.parse(stamp.includes('T') ? stamp : `${stamp.replace(' ', 'T')}Z`),
        text: JSON.stringify(record),
      });
    }
  }
  return timed.sort((a, b) => a.ts - b.ts).map((t) => t.text);
}

beforeAll(async () => {
  const demo = generateDemo({ out: join(dir, 'demo'), seed: 12, scale: 0.1, appRate: 0.2 });
  // The demo's routes name OCI topics and streams that exist nowhere: this run keeps to --out.
  const {
    routes: _,
    maintenance: __,
    ...local
  } = parse(readFileSync(demo.config, 'utf8')) as Record<string, unknown>;
  config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify(local));
  const lines = streamRecords(demo);
  records = join(dir, 'stream.jsonl');
  writeFileSync(records, `${lines.join('\n')}\n`);
  principal = createTestPrincipal();
  streaming = streamingService({ streams: [{ id: STREAM, partitions: 1 }] });
  endpoint = await startOciEndpoint({ ...principal.endpointOptions, handlers: [streaming.handler] });
  streaming.append(
    STREAM,
    lines.map((value) => ({ value, partition: 0 })),
  );
});
afterAll(async () => {
  await endpoint?.close();
  principal?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('reliability: consume', () => {
  it('killed with SIGKILL at random points, then run again until drained: the state a replay gives', async () => {
    const env = {
      ...process.env,
      HWAUDIT_OCI_AUTH: 'config-file',
      HWAUDIT_OCI_CONFIG_FILE: principal.configFile,
      HWAUDIT_OCI_ENDPOINT_STREAMING: endpoint.url,
    };
    // The consumer sweeps its watermark to the clock once the stream is drained; the replay stops
    // its timers at the same kind of time.
    const asOf = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const reference = join(dir, 'reference.sqlite');
    const r = await runCli(['replay', '--config', config, '--state', reference, '--as-of', asOf, records]);
    expect(r.code, r.stderr).toBe(0);
    const expected = await stateOf(reference);

    const state = join(dir, 'consume.sqlite');
    // One instance name across restarts: the restarted process takes its partition back at once
    // (a new name would wait for the killed one's reservation to time out).
    const args = [
      'consume',
      ...[
        '--stream',
        STREAM,
        '--group',
        'g',
        '--instance',
        'reliability',
        '--config',
        config,
        '--state',
        state,
      ],
      ...['--until-idle', '--limit', '500'],
    ];
    let killed = 0;
    const kills = [1500, 3000, 4500, 2500];
    for (const ms of kills) {
      const run = await runCliKilledAfter(args, ms, env);
      if (run.signal === 'SIGKILL') killed++;
      else expect(run.code, run.stderr).toBe(0);
    }
    // The killed runs got somewhere: offsets were committed before the kills.
    const committedBefore = streaming.committed(STREAM, 'g')['0'] ?? -1;
    expect(committedBefore).toBeGreaterThan(0);
    const last = await runCli(args, env);
    expect(last.code, last.stderr).toBe(0);
    const got = await stateOf(state);
    const keys = new Set(got.alerts.map(recordKey));
    const lost = expected.alerts.filter((a) => !keys.has(recordKey(a))).length;
    expect(got.sessions).toEqual(expected.sessions);
    expect(got.alerts.map(recordKey)).toEqual(expected.alerts.map(recordKey));
    expect(killed).toBeGreaterThan(1);
    process.stderr.write(
      `reliability: SIGKILL of consume: ${kills.length + 1} runs (${killed} killed, ${committedBefore + 1} of ${streaming.messages(STREAM, 0).length} messages committed before the last), lost ${lost}, duplicated ${got.alerts.length - keys.size}\n`,
    );
  }, 180_000);
});
