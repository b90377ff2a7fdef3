// A Connector Hub outage longer than its Logging source keeps data (24 h): the function notices
// the range that may be lost when delivery resumes, raises audit.gap with the `backfill` command,
// and that very command, run against the signed local endpoint (real SDK clients), reads the
// lost events from the Audit API into the function's state.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackfill } from '../../functions/cli/backfill.js';
import { FunctionHost, type InvocationSummary } from '../../functions/function-host.js';
import type { Alert } from '../../schemas/alert.js';
import { ago, fleetConfigJson, GROUPS, oci, removeTempDirs, tempDir, USERS } from '../helpers/fdk-harness.js';
import { Lines, N } from '../helpers/host-batches.js';
import { auditService, membershipChangeEvent } from '../oci-endpoint/audit.js';
import { identityService } from '../oci-endpoint/identity.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';

const HOUR = 3_600_000;
const TENANCY = 'ocid1.tenancy.oc1..example';
/** Bob leaves BreakGlass two hours into the outage: only the Audit API still has it afterwards. */
const REMOVAL = membershipChangeEvent({
  kind: 'remove',
  eventId: 'ev-remove-bob-bg',
  time: N + 2 * HOUR,
  userId: USERS.bob,
  groupId: GROUPS.bg,
  membershipId: 'ocid1.groupmembership.oc1..ev-add-bob-bg',
  compartmentId: TENANCY,
});

let principal: TestPrincipal;
let endpoint: OciEndpoint;

beforeAll(async () => {
  principal = createTestPrincipal();
  const audit = auditService();
  audit.add([{ compartmentId: TENANCY, processedAt: N + 2 * HOUR + 60_000, event: REMOVAL.listEvent }]);
  endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    handlers: [
      audit.handler,
      identityService({
        tenancy: TENANCY,
        compartments: [],
        users: [],
        groups: [],
        memberships: [],
        domains: [],
      }).handler,
    ],
  });
});

afterAll(async () => {
  await endpoint.close();
  principal.cleanup();
  removeTempDirs();
});

function harness(config: Parameters<typeof fleetConfigJson>[0] = {}) {
  const dir = tempDir('hwaudit-gap-');
  const configFile = join(dir, 'audit.json');
  writeFileSync(configFile, fleetConfigJson(config));
  const state = join(dir, 'state.sqlite');
  const clock = { now: N };
  const stdout = new Lines();
  const host = new FunctionHost({
    env: { HWAUDIT_CONFIG_FILE: configFile, HWAUDIT_STATE: state },
    now: () => clock.now,
    stdout,
    stderr: new Lines(),
  });
  /** One Connector Hub batch of `_Audit` records at the host's clock. */
  const deliver = (records: object[]): Promise<InvocationSummary> =>
    host.invoke(JSON.stringify(records), { callId: `call-${clock.now}` });
  const alerts = () => stdout.json() as unknown as Alert[];
  return { dir, state, clock, host, deliver, alerts };
}

const bobJoins = () =>
  oci.addUserToGroup({ id: 'ev-add-bob-bg', at: ago.minutes(5, N), user: USERS.bob, group: GROUPS.bg });
const signOn = (at: number) =>
  oci.interactiveLogin({
    id: `ev-login-${at}`,
    at,
    user: USERS.alice,
    name: 'alice@example.com',
    ip: '203.0.113.9',
  });

describe('Connector Hub outage longer than its source keeps data', () => {
  it('raises audit.gap with the backfill command, whose run reads the lost events', async () => {
    const h = harness();
    await h.deliver([bobJoins()]);
    h.clock.now = N + 30 * HOUR;
    const resumed = signOn(N + 30 * HOUR - 3 * 60_000);
    const summary = await h.deliver([resumed]);

    const from = new Date(ago.minutes(5, N) + 21_000).toISOString();
    const to = new Date(N + 30 * HOUR - 3 * 60_000 + 21_000).toISOString();
    expect(summary.deliveryGap).toEqual({ from, to });
    // Like every event, the gap is applied once the watermark passes it: the next sweep.
    h.clock.now = N + 30 * HOUR + 5 * 60_000;
    await h.host.invoke('{"action":"sweep"}');
    const gaps = h.alerts().filter((a) => a.rule === 'audit.gap');
    expect(gaps).toHaveLength(1);
    const gap = gaps[0]!;
    expect(gap).toMatchObject({
      severity: 'critical',
      details: { trail: 'oci-audit', reason: 'delivery-outage', from, to },
    });
    const detail = String(gap.details?.detail);
    expect(detail).toMatch(
      /no batch and no sweep for 30\.0 h, longer than a Connector Hub Logging source keeps data \(24 h\)/,
    );
    const command = /npx heatwave-iam-audit backfill (.*)$/.exec(detail)?.[1];
    expect(command).toBe(
      [
        '--source audit --include-subcompartments',
        `--compartment ${TENANCY}`,
        `--from ${new Date(ago.minutes(5, N)).toISOString()}`,
        `--to ${new Date(N + 30 * HOUR - 2 * 60_000).toISOString()}`,
        `--config ${join(h.dir, 'audit.json')}`,
        `--state ${h.state}`,
        '--scope function',
      ].join(' '),
    );

    // A redelivery of the same batch is no second gap.
    const again = await h.deliver([resumed]);
    expect(again.deliveryGap).toBeUndefined();
    expect(h.alerts().filter((a) => a.rule === 'audit.gap')).toHaveLength(1);

    // The command, as written, fills the range from the Audit API into the function's state.
    const out = join(h.dir, 'backfilled.jsonl');
    const err: string[] = [];
    const code = await runBackfill(
      [...command!.split(' '), '--out', out],
      {
        stdout: process.stdout,
        stderr: { write: (s: string) => err.push(s) } as unknown as NodeJS.WritableStream,
      },
      {
        env: { HWAUDIT_OCI_CONFIG_FILE: principal.configFile, HWAUDIT_OCI_ENDPOINT: endpoint.url },
        handleSignals: false,
        backfill: { now: () => h.clock.now, retry: { baseMs: 1, maxMs: 5 } },
      },
    );
    expect(code).toBe(0);
    expect(err.join('')).toMatch(/backfill: covered 1 compartments/);
    const filled = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Alert);
    // The lost removal, which also ends the break-glass grant left open past its deadline.
    expect(filled).toEqual([
      expect.objectContaining({ rule: 'iam.privileged-group-change', evidence: ['ev-remove-bob-bg'] }),
      expect.objectContaining({
        rule: 'break-glass.stale',
        status: 'resolved',
        resolution: expect.objectContaining({ reason: 'membership-removed', evidence: ['ev-remove-bob-bg'] }),
      }),
    ]);
  });

  it('notices a partial loss: after 25 h the oldest hour has expired and delivery resumes after it', async () => {
    const h = harness();
    await h.deliver([bobJoins()]);
    h.clock.now = N + 25 * HOUR;
    const summary = await h.deliver([signOn(N + HOUR)]);
    expect(summary.deliveryGap).toEqual({
      from: new Date(ago.minutes(5, N) + 21_000).toISOString(),
      to: new Date(N + HOUR + 21_000).toISOString(),
    });
  });

  it('raises nothing when delivery resumes within the retention (Connector Hub redelivers)', async () => {
    const h = harness();
    await h.deliver([bobJoins()]);
    h.clock.now = N + 20 * HOUR;
    expect((await h.deliver([signOn(N + 2 * HOUR)])).deliveryGap).toBeUndefined();
    expect(h.alerts().filter((a) => a.rule === 'audit.gap')).toEqual([]);
  });

  it('reads how far delivery went from every record, also those of other services (ignored)', async () => {
    const h = harness();
    // The last record before the outage, and the first after it, are of other services.
    await h.deliver([bobJoins(), oci.getObject({ id: 'ev-get-1', at: N - 60_000 })]);
    h.clock.now = N + 30 * HOUR;
    const resumed = [oci.getObject({ id: 'ev-get-2', at: N - 30_000 }), signOn(N + 30 * HOUR - 60_000)];
    const summary = await h.deliver(resumed);
    expect(summary).toMatchObject({ ignored: 1 });
    // Delivery resumed 30 s after the last record it had delivered: nothing lost in between.
    expect(summary.deliveryGap).toBeUndefined();
  });

  it('names the tenancy in the backfill command when the batch after the outage is of other services only', async () => {
    // No tenancy configured: the command takes it from the records.
    const h = harness({ tenancy: undefined });
    await h.deliver([bobJoins()]);
    h.clock.now = N + 30 * HOUR;
    const summary = await h.deliver([
      oci.getObject({ id: 'ev-get-resumed', at: N + 30 * HOUR - 3 * 60_000 }),
    ]);
    expect(summary).toMatchObject({ ignored: 1 });
    expect(summary.deliveryGap).toBeDefined();
    h.clock.now = N + 30 * HOUR + 5 * 60_000;
    await h.host.invoke('{"action":"sweep"}');
    const [gap] = h.alerts().filter((a) => a.rule === 'audit.gap');
    expect(String(gap?.details?.detail)).toContain(`--compartment ${TENANCY} `);
  });

  it('raises nothing for a quiet _Audit while the sweeps ran', async () => {
    const h = harness();
    await h.deliver([bobJoins()]);
    for (const hours of [10, 20]) {
      h.clock.now = N + hours * HOUR;
      await h.host.invoke('{"action":"sweep"}');
    }
    h.clock.now = N + 30 * HOUR;
    expect((await h.deliver([signOn(N + 30 * HOUR - 60_000)])).deliveryGap).toBeUndefined();
    expect(h.alerts().filter((a) => a.rule === 'audit.gap')).toEqual([]);
  });
});
