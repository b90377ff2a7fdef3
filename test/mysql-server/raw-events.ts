// Raw MySQL Enterprise audit events (the JSON HeatWave writes) for tests of the collector: a
// small builder with one id counter per log, so (timestamp, id) is unique and ordered.
const T0 = Date.parse('2026-11-02T09:00:00Z');

export const minutes = (n: number): number => T0 + n * 60_000;

function stamp(ts: number): string {
  return new Date(ts).toISOString().slice(0, 19).replace('T', ' ');
}

export class RawLog {
  readonly events: Record<string, unknown>[] = [];
  private id = 0;

  /** An event of connection `conn` by `user` (as CURRENT_USER and as the name sent). */
  private add(
    ts: number,
    fields: Record<string, unknown>,
    who?: { conn: number; user: string; ip?: string },
  ): Record<string, unknown> {
    const session = who && {
      connection_id: who.conn,
      account: { user: who.user, host: '%' },
      login: { user: who.user, os: '', ip: who.ip ?? '10.0.0.7', proxy: '' },
    };
    const event = { timestamp: stamp(ts), id: this.id++, ...session, ...fields };
    this.events.push(event);
    return event;
  }

  connect(s: { at: number; conn: number; user: string; ip?: string; status?: number }): this {
    this.add(
      s.at,
      {
        class: 'connection',
        event: 'connect',
        connection_data: { connection_type: 'ssl', status: s.status ?? 0, db: '' },
      },
      s,
    );
    return this;
  }

  query(s: {
    at: number;
    conn: number;
    user: string;
    sql: string;
    command?: string;
    status?: number;
    pad?: number;
  }): this {
    this.add(
      s.at,
      {
        class: 'general',
        event: 'status',
        general_data: {
          command: 'Query',
          sql_command: s.command ?? 'select',
          query: s.pad ? `${s.sql} /* ${'x'.repeat(s.pad)} */` : s.sql,
          status: s.status ?? 0,
        },
      },
      s,
    );
    return this;
  }

  disconnect(s: { at: number; conn: number; user: string }): this {
    this.add(
      s.at,
      { class: 'connection', event: 'disconnect', connection_data: { connection_type: 'ssl' } },
      s,
    );
    return this;
  }

  /** A session: connect, `queries` statements a second apart, disconnect. */
  session(s: {
    at: number;
    conn: number;
    user: string;
    queries: number;
    sql?: string;
    command?: string;
  }): this {
    this.connect(s);
    for (let i = 0; i < s.queries; i++)
      this.query({
        at: s.at + (i + 1) * 1000,
        conn: s.conn,
        user: s.user,
        sql: s.sql ?? `SELECT ${i}`,
        ...(s.command ? { command: s.command } : {}),
      });
    return this.disconnect({ at: s.at + (s.queries + 1) * 1000, conn: s.conn, user: s.user });
  }
}
