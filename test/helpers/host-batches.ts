// The two Connector Hub batches the function host tests share: bob joins BreakGlass and signs on
// (Logging), then connects through the break-glass account (Streaming); and a line collector.
import { Writable } from 'node:stream';
import {
  ago,
  collectorRecord,
  GROUPS,
  mysql,
  oci,
  streamingBatch,
  USERS,
  wholeSecond,
} from './fdk-harness.js';

export const N = wholeSecond(Date.parse('2026-11-20T12:00:00Z'));

/** Collects written lines (stdout/stderr of a host) for assertions. */
export class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line !== '') this.lines.push(line);
    done();
  }
  json(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** Bob joins BreakGlass 5 h before N and signs on with MFA (Logging connector). */
export function loggingBatch(): string {
  return JSON.stringify([
    oci.addUserToGroup({ id: 'ev-add-bob-bg', at: ago.hours(5, N), user: USERS.bob, group: GROUPS.bg }),
    oci.interactiveLogin({
      id: 'ev-login-bob',
      at: ago.minutes(298, N),
      user: USERS.bob,
      name: 'bob@example.com',
      ip: '203.0.113.7',
      mfa: 'PUSH',
    }),
  ]);
}

/** Bob connects through the break-glass account a few minutes later (Streaming connector). */
export function streamBatch(): string {
  const session = { conn: 7, account: 'emergency_admin', user: 'bob', ip: '203.0.113.7', proxy: true };
  return JSON.stringify(
    streamingBatch([
      collectorRecord(mysql.connect({ ...session, at: ago.minutes(290, N), id: 1 })),
      collectorRecord(mysql.disconnect({ ...session, at: ago.minutes(280, N), id: 2 })),
    ]),
  );
}
