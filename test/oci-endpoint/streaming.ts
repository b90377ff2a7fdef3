// Streaming data plane (API 20180418): PutMessages, CreateCursor, CreateGroupCursor, GetMessages,
// ConsumerCommit, ConsumerHeartbeat, GetGroup; partitions and offsets in memory.
//
// Behaviour emulated from the service documentation:
// - Cursors are opaque, standard base64 (they can hold `+`, `/` and `=`, so a client must
//   URL-encode them: the SDK puts query values into the URL verbatim). Every cursor expires
//   `cursorTtlMs` (5 min) after it was issued; a used expired cursor answers 400 InvalidParameter.
//   `expireCursors()` and the `cursorExpired` fault hook expire them on demand.
// - Consumer groups: each instance that creates a group cursor joins the group and stays alive
//   while it calls the group within its `timeoutInMs` (default 30 s); partitions are reserved to
//   live instances (partition i -> i-th live instance by name, modulo the count) and move when an
//   instance joins or times out. A group cursor reads the partitions reserved to its instance,
//   each from the cursor's position, or (new reservation) from the group's committed offset + 1,
//   or (never committed) from the cursor type's start. ConsumerCommit stores, per partition still
//   reserved to the instance, the position the cursor encodes (the messages before it).
// - 5 GetMessages per second per consumer group per partition (sliding 1 s window on the endpoint
//   clock); over it -> 429 TooManyRequests. A plain cursor counts as its own group.
// - 1 MB per message and per PutMessages request (400); limit <= 10000 per GetMessages (400).
import { createHash, randomBytes } from 'node:crypto';
import { FAULT_HOOKS, type PutMessagesFailureSpec } from './faults.js';
import {
  type EndpointRequest,
  type EndpointResponse,
  type HandlerContext,
  ociError,
  type ServiceHandler,
} from './server.js';

export const STREAM_GETS_PER_SECOND = 5;
export const STREAM_CURSOR_TTL_MS = 5 * 60_000;
export const STREAM_MAX_MESSAGE_BYTES = 1024 * 1024;
export const STREAM_MAX_REQUEST_BYTES = 1024 * 1024;
export const STREAM_MAX_GET_LIMIT = 10_000;
export const STREAM_DEFAULT_INSTANCE_TIMEOUT_MS = 30_000;

export interface StreamSpec {
  id: string;
  /** The stream's name, as messages carry it (default: the id). */
  name?: string;
  partitions: number;
}

export interface StoredMessage {
  /** base64 or null */
  key: string | null;
  /** base64 */
  value: string;
  offset: number;
  /** Endpoint clock when appended (ms). */
  timestamp: number;
}

export interface StreamingOptions {
  streams: StreamSpec[];
  /** GetMessages per second per group per partition; Infinity disables the limit. Default 5. */
  getsPerSecond?: number;
  /** Cursor lifetime. Default 5 minutes. */
  cursorTtlMs?: number;
  /** Instance timeout when createGroupCursor gives no timeoutInMs. Default 30 s. */
  instanceTimeoutMs?: number;
  /** Caps the bytes of values one GetMessages returns (at least one message). Default: no cap. */
  maxResponseBytes?: number;
}

export interface StreamingStats {
  gets: number;
  /** GetMessages refused with 429. */
  throttled: number;
  /** Requests refused because their cursor had expired. */
  expiredCursors: number;
  messagesServed: number;
  commits: number;
  heartbeats: number;
  groupCursors: number;
  cursors: number;
  putRequests: number;
}

export interface StreamingService {
  handler: ServiceHandler;
  stats: StreamingStats;
  /**
   * Appends records directly (test setup; bypasses HTTP). Partition: explicit, else by key hash,
   * else round robin. Values and keys are raw bytes or strings (base64-encoded here).
   */
  append(
    streamId: string,
    records: { value: string | Buffer; key?: string | Buffer | null; partition?: number }[],
  ): { partition: number; offset: number }[];
  messages(streamId: string, partition: number): readonly StoredMessage[];
  /** Committed offset per partition (the offset of the last committed message). */
  committed(streamId: string, group: string): Record<string, number>;
  /** Which live instance holds each partition now. */
  reservations(streamId: string, group: string): Record<string, string>;
  /** Expires every cursor issued so far. */
  expireCursors(): void;
  /** Forgets an instance at once (as if its timeout had passed): its partitions move at the next call. */
  dropInstance(streamId: string, group: string, instance: string): void;
}

interface StreamState {
  spec: StreamSpec;
  name: string;
  partitions: StoredMessage[][];
  roundRobin: number;
}

type InitialType = 'TRIM_HORIZON' | 'LATEST' | 'AT_TIME';

interface GroupState {
  streamId: string;
  name: string;
  committed: Map<number, number>;
  initial: { type: InitialType; time?: number };
  /** instance -> liveness */
  instances: Map<string, { lastSeen: number; timeoutMs: number }>;
  /** partition -> current owner and an epoch that changes whenever the owner changes */
  owners: Map<number, { instance: string; epoch: number }>;
  epochSeq: number;
  /** next partition to read first (fairness across partitions) */
  rotate: Map<string, number>;
}

interface PartitionCursor {
  kind: 'partition';
  streamId: string;
  partition: number;
  position: number;
  issuedAt: number;
  generation: number;
}

interface GroupCursor {
  kind: 'group';
  streamId: string;
  group: string;
  instance: string;
  /** partition -> next offset to read, valid for the reservation epoch it was read under */
  positions: Map<number, { next: number; epoch: number }>;
  issuedAt: number;
  generation: number;
}

type CursorState = PartitionCursor | GroupCursor;

/** base64 `++++////`: bytes whose encoding needs URL-encoding in a query string. */
const URL_HOSTILE_PREFIX = Buffer.from([0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff]);

const CURSOR_TYPES = ['AFTER_OFFSET', 'AT_OFFSET', 'AT_TIME', 'LATEST', 'TRIM_HORIZON'] as const;
const GROUP_CURSOR_TYPES = ['AT_TIME', 'LATEST', 'TRIM_HORIZON'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toBase64(v: string | Buffer): string {
  return (typeof v === 'string' ? Buffer.from(v, 'utf8') : v).toString('base64');
}

function base64Bytes(v: string): number {
  return Buffer.byteLength(v, 'base64');
}

export function streamingService(opts: StreamingOptions): StreamingService {
  const getsPerSecond = opts.getsPerSecond ?? STREAM_GETS_PER_SECOND;
  const ttl = opts.cursorTtlMs ?? STREAM_CURSOR_TTL_MS;
  const defaultTimeout = opts.instanceTimeoutMs ?? STREAM_DEFAULT_INSTANCE_TIMEOUT_MS;
  const streams = new Map<string, StreamState>();
  for (const spec of opts.streams) {
    streams.set(spec.id, {
      spec,
      name: spec.name ?? spec.id,
      partitions: Array.from({ length: spec.partitions }, () => []),
      roundRobin: 0,
    });
  }
  const groups = new Map<string, GroupState>();
  const cursors = new Map<string, CursorState>();
  /** `stream/group/partition` -> times of recent GETs */
  const recentGets = new Map<string, number[]>();
  /** Cursors issued before this generation are expired. */
  let generation = 0;
  const stats: StreamingStats = {
    gets: 0,
    throttled: 0,
    expiredCursors: 0,
    messagesServed: 0,
    commits: 0,
    heartbeats: 0,
    groupCursors: 0,
    cursors: 0,
    putRequests: 0,
  };

  const groupKey = (streamId: string, group: string) => `${streamId}\u0000${group}`;

  const issue = (state: CursorState): string => {
    // OCI cursors are base64 JSON. These always hold `+` and `/` (and mostly `=`), so a client
    // that does not URL-encode them fails at once.
    const token = Buffer.concat([
      URL_HOSTILE_PREFIX,
      Buffer.from(JSON.stringify({ k: state.kind, s: state.streamId })),
      randomBytes(13),
    ]).toString('base64');
    cursors.set(token, state);
    return token;
  };

  const pruneCursors = (now: number) => {
    if (cursors.size < 10_000) return;
    for (const [token, c] of cursors)
      if (c.issuedAt + ttl < now || c.generation < generation) cursors.delete(token);
  };

  type Resolved = { ok: true; cursor: CursorState } | { ok: false; response: EndpointResponse };
  const resolveCursor = (req: EndpointRequest, ctx: HandlerContext): Resolved => {
    const token = req.query.cursor;
    if (!token)
      return { ok: false, response: ociError(400, 'InvalidParameter', 'The cursor parameter is required.') };
    const cursor = cursors.get(token);
    if (!cursor || cursor.streamId !== req.params.streamId) {
      return {
        ok: false,
        response: ociError(400, 'InvalidParameter', 'The cursor is not valid for this stream.'),
      };
    }
    const forced = ctx.faults.take<unknown>(req.route, FAULT_HOOKS.cursorExpired) !== undefined;
    if (forced || cursor.generation < generation || ctx.now() > cursor.issuedAt + ttl) {
      stats.expiredCursors++;
      return { ok: false, response: ociError(400, 'InvalidParameter', 'The cursor has expired.') };
    }
    return { ok: true, cursor };
  };

  const streamOf = (req: EndpointRequest): StreamState | undefined => streams.get(req.params.streamId ?? '');
  const notFound = () => ociError(404, 'NotAuthorizedOrNotFound', 'Stream not found or not authorized.');

  const startOffset = (
    messages: readonly StoredMessage[],
    initial: { type: string; time?: number; offset?: number },
  ) => {
    switch (initial.type) {
      case 'LATEST':
        return messages.length;
      case 'AT_TIME': {
        const i = messages.findIndex((m) => m.timestamp >= (initial.time ?? 0));
        return i === -1 ? messages.length : i;
      }
      case 'AT_OFFSET':
        return initial.offset ?? 0;
      case 'AFTER_OFFSET':
        return (initial.offset ?? -1) + 1;
      default:
        return 0;
    }
  };

  /** Live instances, sorted; drops timed-out ones and reassigns partitions when membership changes. */
  const rebalance = (group: GroupState, stream: StreamState, now: number) => {
    for (const [name, inst] of group.instances)
      if (inst.lastSeen + inst.timeoutMs < now) group.instances.delete(name);
    const live = [...group.instances.keys()].sort();
    for (let p = 0; p < stream.partitions.length; p++) {
      const owner = live.length === 0 ? undefined : live[p % live.length]!;
      const current = group.owners.get(p);
      if (owner === undefined) {
        group.owners.delete(p);
      } else if (current?.instance !== owner) {
        group.owners.set(p, { instance: owner, epoch: ++group.epochSeq });
      }
    }
  };

  const touch = (group: GroupState, instance: string, now: number, timeoutMs?: number) => {
    const inst = group.instances.get(instance);
    if (inst) {
      inst.lastSeen = now;
      if (timeoutMs !== undefined) inst.timeoutMs = timeoutMs;
    } else {
      group.instances.set(instance, { lastSeen: now, timeoutMs: timeoutMs ?? defaultTimeout });
    }
  };

  const owned = (group: GroupState, instance: string): number[] => {
    const out: number[] = [];
    for (const [p, o] of group.owners) if (o.instance === instance) out.push(p);
    return out.sort((a, b) => a - b);
  };

  /** Where a group cursor reads partition p: its own position if still valid, else committed + 1. */
  const groupPosition = (group: GroupState, stream: StreamState, cursor: GroupCursor, p: number): number => {
    const epoch = group.owners.get(p)?.epoch;
    const pos = cursor.positions.get(p);
    if (pos !== undefined && pos.epoch === epoch) return pos.next;
    const committed = group.committed.get(p);
    if (committed !== undefined) return committed + 1;
    return startOffset(stream.partitions[p]!, group.initial);
  };

  const throttled = (key: string, now: number): boolean => {
    const times = (recentGets.get(key) ?? []).filter((t) => t > now - 1000);
    recentGets.set(key, times);
    return times.length >= getsPerSecond;
  };

  const messageJson = (stream: StreamState, p: number, m: StoredMessage) => ({
    stream: stream.name,
    partition: String(p),
    key: m.key,
    value: m.value,
    offset: m.offset,
    timestamp: new Date(m.timestamp).toISOString(),
  });

  const appendOne = (
    stream: StreamState,
    key: string | null,
    value: string,
    now: number,
    partition?: number,
  ) => {
    let p = partition;
    if (p === undefined) {
      if (key !== null) {
        p =
          createHash('md5').update(Buffer.from(key, 'base64')).digest().readUInt32BE(0) %
          stream.partitions.length;
      } else {
        p = stream.roundRobin++ % stream.partitions.length;
      }
    }
    const list = stream.partitions[p];
    if (!list) throw new Error(`partition ${p} does not exist`);
    const m: StoredMessage = { key, value, offset: list.length, timestamp: now };
    list.push(m);
    return { partition: p, offset: m.offset, timestamp: now };
  };

  const parseLimit = (req: EndpointRequest): number | EndpointResponse => {
    if (req.query.limit === undefined) return STREAM_MAX_GET_LIMIT;
    const limit = Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > STREAM_MAX_GET_LIMIT) {
      return ociError(400, 'InvalidParameter', `limit must be between 1 and ${STREAM_MAX_GET_LIMIT}.`);
    }
    return limit;
  };

  const readFrom = (
    stream: StreamState,
    order: number[],
    position: (p: number) => number,
    limit: number,
  ): { items: ReturnType<typeof messageJson>[]; next: Map<number, number> } => {
    const items: ReturnType<typeof messageJson>[] = [];
    const next = new Map<number, number>();
    let bytes = 0;
    for (const p of order) {
      let pos = position(p);
      const list = stream.partitions[p]!;
      while (pos < list.length && items.length < limit) {
        const m = list[pos]!;
        const size = base64Bytes(m.value);
        if (opts.maxResponseBytes !== undefined && items.length > 0 && bytes + size > opts.maxResponseBytes)
          break;
        bytes += size;
        items.push(messageJson(stream, p, m));
        pos++;
      }
      next.set(p, pos);
    }
    stats.messagesServed += items.length;
    return { items, next };
  };

  /** The group of a group cursor, its instance kept alive and partitions rebalanced. */
  const liveGroup = (cursor: GroupCursor, stream: StreamState, now: number): GroupState => {
    const group = groups.get(groupKey(cursor.streamId, cursor.group))!;
    touch(group, cursor.instance, now);
    rebalance(group, stream, now);
    return group;
  };

  /**
   * ConsumerCommit / ConsumerHeartbeat: resolves the group cursor, refreshes its group
   * (liveGroup), runs `act` and answers with a fresh cursor.
   */
  const groupCall = (
    req: EndpointRequest,
    ctx: HandlerContext,
    notGroup: string,
    act: (cursor: GroupCursor, group: GroupState) => void,
  ): EndpointResponse => {
    const stream = streamOf(req);
    if (!stream) return notFound();
    const resolved = resolveCursor(req, ctx);
    if (!resolved.ok) return resolved.response;
    const cursor = resolved.cursor;
    if (cursor.kind !== 'group') return ociError(400, 'InvalidParameter', notGroup);
    const now = ctx.now();
    const group = liveGroup(cursor, stream, now);
    act(cursor, group);
    const value = issue({ ...cursor, issuedAt: now, generation });
    return { status: 200, body: { value } };
  };

  const handler: ServiceHandler = {
    name: 'streaming',
    basePath: '/20180418',
    routes: [
      {
        name: 'putMessages',
        method: 'POST',
        pattern: '/streams/{streamId}/messages',
        unsignedBody: true,
        handle(req, ctx) {
          const stream = streamOf(req);
          if (!stream) return notFound();
          stats.putRequests++;
          const body = req.body;
          if (!isObject(body) || !Array.isArray(body.messages) || body.messages.length === 0) {
            return ociError(400, 'InvalidParameter', 'messages is required.');
          }
          let total = 0;
          for (const m of body.messages) {
            if (!isObject(m) || typeof m.value !== 'string')
              return ociError(400, 'InvalidParameter', 'Each message needs a value.');
            const size = base64Bytes(m.value) + (typeof m.key === 'string' ? base64Bytes(m.key) : 0);
            if (size > STREAM_MAX_MESSAGE_BYTES)
              return ociError(400, 'InvalidParameter', 'A message exceeds 1 MB.');
            total += size;
          }
          if (total > STREAM_MAX_REQUEST_BYTES)
            return ociError(400, 'InvalidParameter', 'The request exceeds 1 MB.');
          const failing = failedIndexes(
            ctx.faults.take<PutMessagesFailureSpec>(req.route, FAULT_HOOKS.putMessagesFailures),
            body.messages.length,
          );
          const now = ctx.now();
          let failures = 0;
          const entries = (body.messages as Record<string, unknown>[]).map((m, i) => {
            if (failing.indexes.has(i)) {
              failures++;
              return { error: failing.errorCode, errorMessage: 'Injected failure.' };
            }
            const key = typeof m.key === 'string' ? m.key : null;
            const r = appendOne(stream, key, m.value as string, now);
            return {
              partition: String(r.partition),
              offset: r.offset,
              timestamp: new Date(r.timestamp).toISOString(),
            };
          });
          return { status: 200, body: { failures, entries } };
        },
      },
      {
        name: 'createCursor',
        method: 'POST',
        pattern: '/streams/{streamId}/cursors',
        handle(req, ctx) {
          const stream = streamOf(req);
          if (!stream) return notFound();
          const body = req.body;
          if (!isObject(body) || !(CURSOR_TYPES as readonly unknown[]).includes(body.type)) {
            return ociError(400, 'InvalidParameter', `type must be one of ${CURSOR_TYPES.join(', ')}.`);
          }
          const p = Number(body.partition);
          const list = stream.partitions[p];
          if (!Number.isInteger(p) || !list)
            return ociError(400, 'InvalidParameter', 'The partition does not exist.');
          const offset = typeof body.offset === 'number' ? body.offset : undefined;
          if ((body.type === 'AT_OFFSET' || body.type === 'AFTER_OFFSET') && offset === undefined) {
            return ociError(400, 'InvalidParameter', 'offset is required for this cursor type.');
          }
          const time = typeof body.time === 'string' ? Date.parse(body.time) : undefined;
          if (body.type === 'AT_TIME' && (time === undefined || Number.isNaN(time))) {
            return ociError(400, 'InvalidParameter', 'time is required for AT_TIME.');
          }
          const initial: { type: string; time?: number; offset?: number } = { type: body.type as string };
          if (time !== undefined) initial.time = time;
          if (offset !== undefined) initial.offset = offset;
          stats.cursors++;
          const now = ctx.now();
          pruneCursors(now);
          const value = issue({
            kind: 'partition',
            streamId: stream.spec.id,
            partition: p,
            position: Math.min(startOffset(list, initial), list.length),
            issuedAt: now,
            generation,
          });
          return { status: 200, body: { value } };
        },
      },
      {
        name: 'createGroupCursor',
        method: 'POST',
        pattern: '/streams/{streamId}/groupCursors',
        handle(req, ctx) {
          const stream = streamOf(req);
          if (!stream) return notFound();
          const body = req.body;
          if (!isObject(body) || typeof body.groupName !== 'string' || body.groupName === '') {
            return ociError(400, 'InvalidParameter', 'groupName is required.');
          }
          if (!(GROUP_CURSOR_TYPES as readonly unknown[]).includes(body.type)) {
            return ociError(400, 'InvalidParameter', `type must be one of ${GROUP_CURSOR_TYPES.join(', ')}.`);
          }
          const time = typeof body.time === 'string' ? Date.parse(body.time) : undefined;
          if (body.type === 'AT_TIME' && (time === undefined || Number.isNaN(time))) {
            return ociError(400, 'InvalidParameter', 'time is required for AT_TIME.');
          }
          const instance =
            typeof body.instanceName === 'string' && body.instanceName !== ''
              ? body.instanceName
              : `instance-${randomBytes(6).toString('hex')}`;
          const timeoutMs = typeof body.timeoutInMs === 'number' ? body.timeoutInMs : undefined;
          const now = ctx.now();
          const key = groupKey(stream.spec.id, body.groupName);
          let group = groups.get(key);
          if (!group) {
            const initial: GroupState['initial'] = { type: body.type as InitialType };
            if (time !== undefined) initial.time = time;
            group = {
              streamId: stream.spec.id,
              name: body.groupName,
              committed: new Map(),
              initial,
              instances: new Map(),
              owners: new Map(),
              epochSeq: 0,
              rotate: new Map(),
            };
            groups.set(key, group);
          }
          touch(group, instance, now, timeoutMs);
          rebalance(group, stream, now);
          stats.groupCursors++;
          pruneCursors(now);
          const value = issue({
            kind: 'group',
            streamId: stream.spec.id,
            group: group.name,
            instance,
            positions: new Map(),
            issuedAt: now,
            generation,
          });
          return { status: 200, body: { value } };
        },
      },
      {
        name: 'getMessages',
        method: 'GET',
        pattern: '/streams/{streamId}/messages',
        handle(req, ctx) {
          const stream = streamOf(req);
          if (!stream) return notFound();
          const limit = parseLimit(req);
          if (typeof limit !== 'number') return limit;
          const resolved = resolveCursor(req, ctx);
          if (!resolved.ok) return resolved.response;
          const cursor = resolved.cursor;
          const now = ctx.now();
          stats.gets++;

          if (cursor.kind === 'partition') {
            const rateKey = `${stream.spec.id}/\u0000cursor/${cursor.partition}`;
            if (throttled(rateKey, now)) {
              stats.throttled++;
              return ociError(429, 'TooManyRequests', 'Too many requests for the partition.');
            }
            recentGets.get(rateKey)!.push(now);
            const { items, next } = readFrom(stream, [cursor.partition], () => cursor.position, limit);
            const value = issue({
              ...cursor,
              position: next.get(cursor.partition)!,
              issuedAt: now,
              generation,
            });
            return { status: 200, headers: { 'opc-next-cursor': value }, body: items };
          }

          const group = liveGroup(cursor, stream, now);
          const mine = owned(group, cursor.instance);
          const rateKeys = mine.map((p) => `${stream.spec.id}/${group.name}/${p}`);
          if (rateKeys.some((k) => throttled(k, now))) {
            stats.throttled++;
            return ociError(
              429,
              'TooManyRequests',
              'Too many requests for the consumer group and partition.',
            );
          }
          for (const k of rateKeys) recentGets.get(k)!.push(now);
          const first = (group.rotate.get(cursor.instance) ?? 0) % Math.max(1, mine.length);
          group.rotate.set(cursor.instance, first + 1);
          const order = [...mine.slice(first), ...mine.slice(0, first)];
          const { items, next } = readFrom(
            stream,
            order,
            (p) => groupPosition(group, stream, cursor, p),
            limit,
          );
          const positions = new Map<number, { next: number; epoch: number }>();
          for (const [p, n] of next) positions.set(p, { next: n, epoch: group.owners.get(p)!.epoch });
          const value = issue({ ...cursor, positions, issuedAt: now, generation });
          return { status: 200, headers: { 'opc-next-cursor': value }, body: items };
        },
      },
      {
        name: 'consumerCommit',
        method: 'POST',
        pattern: '/streams/{streamId}/commit',
        handle(req, ctx) {
          return groupCall(req, ctx, 'Only group cursors can be committed.', (cursor, group) => {
            for (const [p, pos] of cursor.positions) {
              const owner = group.owners.get(p);
              if (owner?.instance === cursor.instance && owner.epoch === pos.epoch)
                group.committed.set(p, pos.next - 1);
            }
            stats.commits++;
          });
        },
      },
      {
        name: 'consumerHeartbeat',
        method: 'POST',
        pattern: '/streams/{streamId}/heartbeat',
        handle(req, ctx) {
          return groupCall(req, ctx, 'Only group cursors have heartbeats.', () => {
            stats.heartbeats++;
          });
        },
      },
      {
        name: 'getGroup',
        method: 'GET',
        pattern: '/streams/{streamId}/groups/{groupName}',
        handle(req, ctx) {
          const stream = streamOf(req);
          if (!stream) return notFound();
          const group = groups.get(groupKey(stream.spec.id, req.params.groupName!));
          if (!group) return ociError(404, 'NotAuthorizedOrNotFound', 'Group not found.');
          rebalance(group, stream, ctx.now());
          const reservations = stream.partitions.map((_, p) => {
            const owner = group.owners.get(p);
            const inst = owner ? group.instances.get(owner.instance) : undefined;
            const committed = group.committed.get(p);
            return {
              partition: String(p),
              ...(committed !== undefined ? { committedOffset: committed } : {}),
              ...(owner ? { reservedInstance: owner.instance } : {}),
              ...(inst ? { timeReservedUntil: new Date(inst.lastSeen + inst.timeoutMs).toISOString() } : {}),
            };
          });
          return { status: 200, body: { streamId: stream.spec.id, groupName: group.name, reservations } };
        },
      },
    ],
  };

  return {
    handler,
    stats,
    append(streamId, records) {
      const stream = streams.get(streamId);
      if (!stream) throw new Error(`unknown stream ${streamId}`);
      const now = Date.now();
      return records.map((r) => {
        const key = r.key === undefined || r.key === null ? null : toBase64(r.key);
        const { partition, offset } = appendOne(stream, key, toBase64(r.value), now, r.partition);
        return { partition, offset };
      });
    },
    messages(streamId, partition) {
      return streams.get(streamId)?.partitions[partition] ?? [];
    },
    committed(streamId, group) {
      const g = groups.get(groupKey(streamId, group));
      return Object.fromEntries(
        [...(g?.committed ?? new Map<number, number>())].map(([p, o]) => [String(p), o]),
      );
    },
    reservations(streamId, group) {
      const g = groups.get(groupKey(streamId, group));
      return Object.fromEntries(
        [...(g?.owners ?? new Map<number, { instance: string }>())].map(([p, o]) => [String(p), o.instance]),
      );
    },
    expireCursors() {
      generation++;
    },
    dropInstance(streamId, group, instance) {
      // Partitions move at the group's next call, as they do when the timeout passes.
      groups.get(groupKey(streamId, group))?.instances.delete(instance);
    },
  };
}

/** The entries of one PutMessages request that a `putMessagesFailures` fault fails, and their error code. */
export function failedIndexes(
  spec: PutMessagesFailureSpec | undefined,
  count: number,
): { indexes: Set<number>; errorCode: string } {
  const indexes = new Set<number>();
  if (!spec) return { indexes, errorCode: '' };
  if ('first' in spec) for (let i = 0; i < Math.min(spec.first, count); i++) indexes.add(i);
  else if ('indexes' in spec) for (const i of spec.indexes) indexes.add(i);
  else for (let i = 0; i < count; i += Math.max(1, spec.every)) indexes.add(i);
  return { indexes, errorCode: spec.errorCode ?? 'InternalServerError' };
}

// --- Stream payloads for tests ------------------------------------------------------------------

type Json = Record<string, unknown>;

/** How a MySQL audit event travels on a stream. */
export function collectorRecord(db: { id: string; name: string }, event: Json): Json {
  return { source: 'mysql-audit', dbSystemId: db.id, dbSystemName: db.name, event };
}

/** `YYYY-MM-DD hh:mm:ss` in UTC, as MySQL audit writes it. */
export function mysqlTimestamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * A deterministic MySQL audit workload for the standard test fleet (shared/detect/timeline.ts),
 * one session every `stepMs`: allowed local admin sessions, a non-allow-listed local account
 * (`app`), group logins of alice through dba_proxy, bursts of failed logins and GRANTs by carol.
 * About 5 records per session.
 */
export function mysqlWorkload(opts: {
  start: number;
  sessions: number;
  stepMs?: number;
  firstConnection?: number;
}): Json[] {
  const step = opts.stepMs ?? 20_000;
  const events: Json[] = [];
  let id = 0;
  const push = (ts: number, e: Json) => {
    events.push({ timestamp: mysqlTimestamp(ts), id: id++, ...e });
  };
  const session = (
    ts: number,
    conn: number,
    account: string,
    login: Json,
    queries: [string, string][],
    status = 0,
  ) => {
    const who = { account: { user: account, host: '%' }, login };
    push(ts, {
      class: 'connection',
      event: 'connect',
      connection_id: conn,
      ...who,
      connection_data: { connection_type: 'ssl', status, db: 'orders' },
    });
    if (status !== 0) return;
    queries.forEach(([sqlCommand, query], i) => {
      push(ts + 1000 * (i + 1), {
        class: 'general',
        event: 'status',
        connection_id: conn,
        ...who,
        general_data: { command: 'Query', sql_command: sqlCommand, query, status: 0 },
      });
    });
    push(ts + 1000 * (queries.length + 1), {
      class: 'connection',
      event: 'disconnect',
      connection_id: conn,
      ...who,
      connection_data: { connection_type: 'ssl' },
    });
  };
  const selects: [string, string][] = [
    ['select', 'SELECT id, total FROM orders WHERE id = 42'],
    ['select', 'SELECT COUNT(*) FROM order_lines'],
    ['select', 'SELECT 1'],
  ];
  const local = (user: string) => ({ user, os: '', ip: '10.20.0.5', proxy: '' });
  for (let i = 0; i < opts.sessions; i++) {
    const ts = opts.start + i * step;
    const conn = (opts.firstConnection ?? 1000) + i;
    switch (i % 10) {
      case 6:
        session(ts, conn, 'app', local('app'), selects);
        break;
      case 7:
        session(
          ts,
          conn,
          'dba_proxy',
          { user: 'alice', os: '', ip: '198.51.100.7', proxy: "''@'%'" },
          selects,
        );
        break;
      case 8:
        for (let k = 0; k < 4; k++)
          session(ts + k * 500, conn * 10 + k, 'mallory', local('mallory'), [], 1045);
        break;
      case 9:
        session(ts, conn, 'carol', { user: 'carol', os: '', ip: '198.51.100.9', proxy: '' }, [
          ['grant', 'GRANT SELECT ON orders.* TO reporting'],
          ['select', 'SELECT 1'],
        ]);
        break;
      default:
        session(ts, conn, 'admin', local('admin'), selects);
    }
  }
  return events;
}
