// The client program a connection names in its attributes is kept on its session (`client`), through
// the store, and shown by every format that writes sessions.
import { describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../schemas/events.js';
import { CLIENT_FIELD_MAX, clientLabel } from '../../schemas/session.js';
import { readInput } from '../../shared/decode/read-input.js';
import { at, DB, db } from '../../shared/detect/timeline.js';
import { collect } from '../helpers/collect.js';
import { runAcrossReopens, runBatches } from '../helpers/run-timeline.js';
import { describeSharedFixture } from '../helpers/shared-fixtures.js';

const connect = (conn: number, attributes?: Record<string, string>) =>
  db.connect({ at: at(conn), conn, account: 'app', ip: '10.0.0.7', ...(attributes && { attributes }) });

describe('a session client', () => {
  it('is the program, library and version the connection named, kept across a reopen of the store', async () => {
    const events = [
      connect(1, {
        _client_name: 'libmysql',
        _client_version: '8.4.3',
        program_name: 'mysql',
        _os: 'Linux',
        _pid: '4242',
      }),
      connect(2, { _client_name: 'mysql-connector-python', _client_version: '9.1.0' }),
      connect(3, { program_name: 'order-service' }),
      connect(4, { _os: 'Linux', _platform: 'x86_64', program_name: '  ' }),
      connect(5),
    ];
    const disconnects = [1, 2, 3, 4, 5].map((conn) =>
      db.disconnect({ at: at(10 + conn), conn, account: 'app' }),
    );
    const { sessions } = await runAcrossReopens([events, disconnects]);
    const byConn = new Map(sessions.map((s) => [s.connectionId, s]));
    expect(byConn.get(1)?.client).toEqual({ program: 'mysql', name: 'libmysql', version: '8.4.3' });
    expect(byConn.get(2)?.client).toEqual({ name: 'mysql-connector-python', version: '9.1.0' });
    expect(byConn.get(3)?.client).toEqual({ program: 'order-service' });
    // Attributes that name no client, or none at all: no client.
    expect(byConn.get(4)).not.toHaveProperty('client');
    expect(byConn.get(5)).not.toHaveProperty('client');
    expect(sessions.every((s) => s.disconnectTime !== undefined)).toBe(true);
  });

  it('keeps at most CLIENT_FIELD_MAX characters of each value (a client sends what it likes)', async () => {
    const long = 'x'.repeat(CLIENT_FIELD_MAX + 50);
    const { sessions } = await runBatches([[connect(1, { program_name: long, _client_version: '' })]]);
    expect(sessions[0]?.client).toEqual({ program: 'x'.repeat(CLIENT_FIELD_MAX) });
  });

  it('cuts a long value between characters, never inside one (no lone surrogate half)', async () => {
    // 127 characters, then one outside the Basic Multilingual Plane (two UTF-16 code units).
    const long = `${'x'.repeat(CLIENT_FIELD_MAX - 1)}\u{1F600}tail`;
    const { sessions } = await runBatches([[connect(1, { program_name: long, _client_name: '\u{1F600}' })]]);
    const client = sessions[0]?.client;
    expect(client?.program).toBe('x'.repeat(CLIENT_FIELD_MAX - 1));
    expect(client?.name).toBe('\u{1F600}');
  });

  it('reads as one line: the program, then its library and version', () => {
    expect(clientLabel({ program: 'mysql', name: 'libmysql', version: '8.4.3' })).toBe(
      'mysql (libmysql 8.4.3)',
    );
    expect(clientLabel({ name: 'mysql-connector-python', version: '9.1.0' })).toBe(
      'mysql-connector-python 9.1.0',
    );
    expect(clientLabel({ program: 'order-service' })).toBe('order-service');
    expect(clientLabel({ version: '9.1.0' })).toBe('9.1.0');
    expect(clientLabel(undefined)).toBeUndefined();
  });
});

describeSharedFixture('mysql-audit/guardium-connector-sample.log', (path) => {
  it('is read from a captured audit log: Connector/J and its version', async () => {
    const reader = readInput(path, { resolveDbSystem: () => ({ id: DB.id, name: DB.name }) });
    const events = (await collect(reader)).flatMap((i): CanonicalEvent[] =>
      i.type === 'event' ? [i.event] : [],
    );
    const { sessions } = await runBatches([events]);
    const connected = sessions.find((s) => s.outcome === 'success');
    expect(connected?.client).toEqual({ name: 'MySQL Connector/J', version: '8.0.17' });
  });
});
