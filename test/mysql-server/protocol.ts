// The MySQL client/server wire protocol, server side, as much of it as the collector, `doctor` and
// `sync` use against a real server: packet framing (with 16 MB continuation), the v10 handshake
// with an optional TLS upgrade, mysql_native_password (and an auth switch to any other plugin,
// for tests of client plugins), COM_QUERY answered with text result sets, OK and ERR packets,
// COM_PING and COM_QUIT. Reference: the MySQL "Client/Server Protocol" pages of the source
// documentation (connection phase, text protocol, OK/ERR/EOF packets).
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { type SecureContext, TLSSocket } from 'node:tls';

const MAX_PAYLOAD = 0xffffff;

export const CLIENT = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
} as const;

const SERVER_CAPABILITIES =
  CLIENT.LONG_PASSWORD |
  CLIENT.FOUND_ROWS |
  CLIENT.LONG_FLAG |
  CLIENT.CONNECT_WITH_DB |
  CLIENT.PROTOCOL_41 |
  CLIENT.TRANSACTIONS |
  CLIENT.SECURE_CONNECTION |
  CLIENT.MULTI_RESULTS |
  CLIENT.PLUGIN_AUTH |
  CLIENT.CONNECT_ATTRS |
  CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA;

const STATUS_AUTOCOMMIT = 0x2;
const UTF8MB4_GENERAL_CI = 45;
const BINARY = 63;

/** Column types (`MYSQL_TYPE_*`); JSON columns arrive as binary, as MySQL sends them. */
export const COLUMN_TYPE = { LONGLONG: 0x08, JSON: 0xf5, VAR_STRING: 0xfd } as const;

export type Column = { name: string; type?: number };
export type Cell = string | number | bigint | null;

/** What the handshake learned about the client. */
export type ClientHello = {
  user: string;
  database: string | undefined;
  authPlugin: string;
  authResponse: Buffer;
  capabilities: number;
  tls: boolean;
  attributes: Record<string, string>;
  /** The account whose privileges apply when not the user's own (a group-mapped IAM login). */
  account?: string;
};

/** Hooks of an authentication exchange: mysql_native_password is built in (see `nativePassword`). */
export type Authenticator = (
  hello: ClientHello,
  exchange: AuthExchange,
) => Promise<{ ok: true; account?: string } | { ok: false; message: string }>;

export type AuthExchange = {
  /** The 20-byte scramble sent in the greeting. */
  scramble: Buffer;
  /** Sends an AuthSwitchRequest for `plugin` with `data` and returns the client's answer. */
  switchTo(plugin: string, data: Buffer): Promise<Buffer>;
  /** Sends AuthMoreData and returns the client's answer. */
  more(data: Buffer): Promise<Buffer>;
};

/** Verifies a mysql_native_password response against the account's password. */
export function nativePasswordMatches(scramble: Buffer, response: Buffer, password: string): boolean {
  if (password === '') return response.length === 0;
  if (response.length !== 20) return false;
  const sha1 = (...parts: Buffer[]) => {
    const h = createHash('sha1');
    for (const p of parts) h.update(p);
    return h.digest();
  };
  const stage2 = sha1(sha1(Buffer.from(password, 'utf8')));
  const mask = sha1(scramble, stage2);
  const stage1 = Buffer.alloc(20);
  for (let i = 0; i < 20; i++) stage1[i] = response[i]! ^ mask[i]!;
  return sha1(stage1).equals(stage2);
}

/** A length-encoded integer. */
function lenencInt(n: number): Buffer {
  if (n < 251) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  if (n < 0x1000000) return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

function lenencString(text: string | Buffer): Buffer {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  return Buffer.concat([lenencInt(bytes.length), bytes]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** Reads fields of a client packet in order. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    public pos = 0,
  ) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  u8(): number {
    return this.buf[this.pos++]!;
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  skip(n: number): void {
    this.pos += n;
  }
  nulString(): string {
    const end = this.buf.indexOf(0, this.pos);
    const stop = end === -1 ? this.buf.length : end;
    const s = this.buf.subarray(this.pos, stop).toString('utf8');
    this.pos = stop + 1;
    return s;
  }
  lenencInt(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) {
      const v = this.buf.readUInt16LE(this.pos);
      this.pos += 2;
      return v;
    }
    if (first === 0xfd) {
      const v = this.buf.readUIntLE(this.pos, 3);
      this.pos += 3;
      return v;
    }
    const v = Number(this.buf.readBigUInt64LE(this.pos));
    this.pos += 8;
    return v;
  }
  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  rest(): Buffer {
    return this.bytes(this.buf.length - this.pos);
  }
}

/**
 * One client connection: frames packets in both directions and keeps the sequence id. Packets
 * are read with `next()`; a closed socket rejects it.
 */
export class PacketChannel {
  private socket: Socket | TLSSocket;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly queue: Buffer[] = [];
  private waiting: { resolve(p: Buffer): void; reject(e: Error): void } | undefined;
  private closed = false;
  /** After an SSLRequest the bytes that follow are TLS, not packets: framing stops until the upgrade. */
  private tlsPending = false;
  private handshaking = true;
  /** The sequence id of the next packet written. */
  seq = 0;

  constructor(private readonly raw: Socket) {
    this.socket = raw;
    this.listen(raw);
  }

  private listen(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new Error('connection closed')));
    socket.on('error', (error) => this.fail(error));
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let payload: Buffer[] = [];
    for (;;) {
      if (this.tlsPending || this.buffered.length < 4) break;
      const length = this.buffered.readUIntLE(0, 3);
      if (this.buffered.length < 4 + length) break;
      this.seq = (this.buffered[3]! + 1) & 0xff;
      payload.push(this.buffered.subarray(4, 4 + length));
      this.buffered = this.buffered.subarray(4 + length);
      if (length === MAX_PAYLOAD) continue;
      const packet = Buffer.concat(payload);
      payload = [];
      if (this.handshaking && packet.length === 32 && packet.readUInt32LE(0) & CLIENT.SSL)
        this.tlsPending = true;
      this.deliver(packet);
    }
    if (payload.length > 0) {
      // An incomplete continuation: put the frames back (rare; only > 16 MB packets).
      const frames = payload.map((p) => Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0]), p]));
      this.buffered = Buffer.concat([...frames, this.buffered]);
    }
  }

  private deliver(packet: Buffer): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve(packet);
    } else {
      this.queue.push(packet);
    }
  }

  private fail(error: Error): void {
    this.closed = true;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.reject(error);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  next(): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  write(payload: Buffer): void {
    if (this.closed) return;
    let offset = 0;
    for (;;) {
      const part = payload.subarray(offset, offset + MAX_PAYLOAD);
      const header = Buffer.alloc(4);
      header.writeUIntLE(part.length, 0, 3);
      header[3] = this.seq;
      this.seq = (this.seq + 1) & 0xff;
      this.socket.write(Buffer.concat([header, part]));
      offset += part.length;
      if (part.length < MAX_PAYLOAD) break;
    }
  }

  /**
   * Switches to TLS (server side) after an SSLRequest. The client's first TLS bytes may already
   * have arrived with the request, so the TLS socket reads through a stream that replays them.
   */
  async upgrade(secureContext: SecureContext): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const early = this.buffered;
    this.buffered = Buffer.alloc(0);
    this.tlsPending = false;
    const relay = new Duplex({
      read: () => plain.resume(),
      write: (chunk, _encoding, done) => plain.write(chunk, done),
      final: (done) => {
        plain.end();
        done();
      },
    });
    if (early.length > 0) relay.push(early);
    plain.on('data', (chunk: Buffer) => {
      if (!relay.push(chunk)) plain.pause();
    });
    plain.on('end', () => relay.push(null));
    plain.on('close', () => relay.destroy());
    plain.on('error', (error) => relay.destroy(error));
    const secure = new TLSSocket(relay, { isServer: true, secureContext });
    this.socket = secure;
    this.listen(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('error', reject);
    });
  }

  /** Ends the connection; `abort` drops it without a goodbye (a network failure). */
  close(abort = false): void {
    this.closed = true;
    if (abort) {
      this.socket.destroy();
      this.raw.destroy();
    } else this.socket.end();
  }

  // --- server packets ---------------------------------------------------------------------------

  ok(opts: { affectedRows?: number; warnings?: number; info?: string } = {}): void {
    this.write(
      Buffer.concat([
        Buffer.from([0x00]),
        lenencInt(opts.affectedRows ?? 0),
        lenencInt(0),
        u16(STATUS_AUTOCOMMIT),
        u16(opts.warnings ?? 0),
        Buffer.from(opts.info ?? '', 'utf8'),
      ]),
    );
  }

  error(code: number, sqlState: string, message: string): void {
    this.write(
      Buffer.concat([
        Buffer.from([0xff]),
        u16(code),
        Buffer.from(`#${sqlState.padEnd(5, '0').slice(0, 5)}`, 'ascii'),
        Buffer.from(message, 'utf8'),
      ]),
    );
  }

  private eof(warnings: number): void {
    this.write(Buffer.concat([Buffer.from([0xfe]), u16(warnings), u16(STATUS_AUTOCOMMIT)]));
  }

  /** A text result set. */
  resultSet(columns: readonly Column[], rows: readonly (readonly Cell[])[], warnings = 0): void {
    this.write(lenencInt(columns.length));
    for (const c of columns) {
      const type = c.type ?? COLUMN_TYPE.VAR_STRING;
      this.write(
        Buffer.concat([
          lenencString('def'),
          lenencString(''),
          lenencString(''),
          lenencString(''),
          lenencString(c.name),
          lenencString(c.name),
          lenencInt(0x0c),
          u16(type === COLUMN_TYPE.VAR_STRING ? UTF8MB4_GENERAL_CI : BINARY),
          u32(type === COLUMN_TYPE.LONGLONG ? 20 : 0xffffffff),
          Buffer.from([type]),
          u16(0),
          Buffer.from([0]),
          u16(0),
        ]),
      );
    }
    this.eof(0);
    for (const row of rows) {
      this.write(Buffer.concat(row.map((v) => (v === null ? Buffer.from([0xfb]) : lenencString(String(v))))));
    }
    this.eof(warnings);
  }

  // --- connection phase -------------------------------------------------------------------------

  /**
   * Runs the connection phase: greeting, optional TLS upgrade, the client's response and the
   * authenticator's verdict (OK or ERR 1045). Returns the client's hello, or undefined when
   * the client was refused or went away.
   */
  async handshake(opts: {
    serverVersion: string;
    connectionId: number;
    tls?: SecureContext;
    authenticate: Authenticator;
  }): Promise<ClientHello | undefined> {
    const scramble = Buffer.from(randomBytes(20).map((b) => (b % 94) + 33));
    const capabilities = SERVER_CAPABILITIES | (opts.tls ? CLIENT.SSL : 0);
    this.seq = 0;
    this.write(
      Buffer.concat([
        Buffer.from([10]),
        Buffer.from(`${opts.serverVersion}\0`, 'utf8'),
        u32(opts.connectionId),
        scramble.subarray(0, 8),
        Buffer.from([0]),
        u16(capabilities & 0xffff),
        Buffer.from([UTF8MB4_GENERAL_CI]),
        u16(STATUS_AUTOCOMMIT),
        u16(capabilities >>> 16),
        Buffer.from([21]),
        Buffer.alloc(10),
        scramble.subarray(8),
        Buffer.from([0]),
        Buffer.from('mysql_native_password\0', 'ascii'),
      ]),
    );
    let packet = await this.next().catch(() => undefined);
    if (packet === undefined) return undefined;
    let tls = false;
    if (packet.length === 32 && packet.readUInt32LE(0) & CLIENT.SSL) {
      if (!opts.tls) return undefined;
      await this.upgrade(opts.tls);
      tls = true;
      packet = await this.next().catch(() => undefined);
      if (packet === undefined) return undefined;
    }
    this.handshaking = false;
    const hello = parseHandshakeResponse(packet, tls);
    const exchange: AuthExchange = {
      scramble,
      switchTo: async (plugin, data) => {
        this.write(Buffer.concat([Buffer.from([0xfe]), Buffer.from(`${plugin}\0`, 'utf8'), data]));
        return this.next();
      },
      more: async (data) => {
        this.write(Buffer.concat([Buffer.from([0x01]), data]));
        return this.next();
      },
    };
    const verdict = await opts.authenticate(hello, exchange).catch(() => undefined);
    if (verdict === undefined) return undefined;
    if (!verdict.ok) {
      this.error(1045, '28000', verdict.message);
      this.close();
      return undefined;
    }
    this.ok();
    return verdict.account === undefined ? hello : { ...hello, account: verdict.account };
  }
}

function parseHandshakeResponse(packet: Buffer, tls: boolean): ClientHello {
  const r = new Reader(packet);
  const capabilities = r.u32();
  r.skip(4 + 1 + 23);
  const user = r.nulString();
  let authResponse: Buffer;
  if (capabilities & CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.bytes(r.lenencInt());
  else if (capabilities & CLIENT.SECURE_CONNECTION) authResponse = r.bytes(r.u8());
  else authResponse = Buffer.from(r.nulString(), 'utf8');
  const database = capabilities & CLIENT.CONNECT_WITH_DB && !r.done ? r.nulString() : undefined;
  const authPlugin = capabilities & CLIENT.PLUGIN_AUTH && !r.done ? r.nulString() : 'mysql_native_password';
  const attributes: Record<string, string> = {};
  if (capabilities & CLIENT.CONNECT_ATTRS && !r.done) {
    const end = r.lenencInt() + r.pos;
    while (r.pos < end) {
      const key = r.bytes(r.lenencInt()).toString('utf8');
      attributes[key] = r.bytes(r.lenencInt()).toString('utf8');
    }
  }
  return {
    user,
    database: database === '' ? undefined : database,
    authPlugin,
    authResponse: Buffer.from(authResponse),
    capabilities,
    tls,
    attributes,
  };
}

/** The command of a client packet after the handshake. */
export type Command =
  | { type: 'query'; sql: string }
  | { type: 'quit' }
  | { type: 'ping' }
  | { type: 'init-db'; database: string }
  | { type: 'other'; code: number };

export function parseCommand(packet: Buffer): Command {
  const code = packet[0];
  const body = packet.subarray(1).toString('utf8');
  switch (code) {
    case 0x01:
      return { type: 'quit' };
    case 0x02:
      return { type: 'init-db', database: body };
    case 0x03:
      return { type: 'query', sql: body };
    case 0x0e:
      return { type: 'ping' };
    default:
      return { type: 'other', code: code ?? -1 };
  }
}
