// What a decoding worker sends is what the replay's thread would have decoded itself: routine
// statements travel as columns and come back with the same properties in the same order.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DbEvent } from '../../schemas/events.js';
import { loadConfigFile } from '../../shared/config/load-config.js';
import { dbSystemResolver } from '../../shared/decode/input-db-system.js';
import { type DecodedItem, readInput as read } from '../../shared/decode/read-input.js';
import { PackedStatement, packItems, transferables, unpackItems } from '../../shared/decode/transfer.js';
import { generateDemo } from '../../shared/demo/generate-demo.js';
import { MysqlEvent, normalizeMysqlAudit } from '../../shared/normalize/mysql-audit.js';

/**
 * Items with their MySQL events in plain form (a MysqlEvent's key is a getter, and a packed
 * statement's every property, which equality does not see).
 */
const plain = (items: readonly DecodedItem[]) =>
  items.map((i) =>
    i.type === 'event' && (i.event instanceof MysqlEvent || i.event instanceof PackedStatement)
      ? { ...i, event: i.event.toJSON() }
      : i,
  );

/** Each property a reader may ask of an event, as it reads it. */
const READ = [
  'source',
  'kind',
  'key',
  'time',
  'ts',
  'dbSystemId',
  'dbSystemName',
  'instance',
  'recordId',
  'connectionId',
  'class',
  'event',
  'login',
  'account',
  'status',
  'db',
  'connectionType',
  'attributes',
  'sql',
  'table',
  'stats',
  'server',
] as const;
const asRead = (items: readonly DecodedItem[]) =>
  items.map((i) => (i.type === 'event' ? READ.map((name) => (i.event as DbEvent)[name]) : i));

describe('decoded items across threads', () => {
  it('come back exactly as decoded, through structured clone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-transfer-'));
    try {
      const demo = generateDemo({ out: join(dir, 'demo'), seed: 3, scale: 0.05, appRate: 2 });
      const { config } = await loadConfigFile(demo.config);
      const resolveDbSystem = dbSystemResolver(config);
      const kinds = new Map<string, number>();
      for (const path of demo.inputs) {
        for await (const items of read(path, { resolveDbSystem }).batches()) {
          const packed = packItems(items);
          const back = unpackItems(structuredClone(packed));
          expect(plain(back)).toEqual(plain(items));
          expect(asRead(back)).toEqual(asRead(items));
          expect(back.map((i) => JSON.stringify(i))).toEqual(items.map((i) => JSON.stringify(i)));
          for (const [i, item] of items.entries()) {
            const kind =
              typeof packed.items[i] === 'number'
                ? `packed ${item.type === 'event' && item.event.source === 'mysql' ? item.event.kind : ''}`
                : item.type;
            kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          }
        }
      }
      // Both kinds of routine statement were packed, and the rest went as it was.
      expect(kinds.get('packed query')).toBeGreaterThan(100);
      expect(kinds.get('packed table_access')).toBeGreaterThan(100);
      expect(kinds.get('event')).toBeGreaterThan(100);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keep instances, DB system names and partial statistics, and leave absent parts absent', () => {
    const loc = { source: 'f', line: 1 };
    const records = [
      {
        timestamp: '2026-11-02 09:00:01',
        id: 4,
        class: 'general',
        event: 'status',
        connection_id: 9,
        general_data: { command: 'Query', sql_command: 'select', query: 'SELECT 1', status: 1146 },
        query_statistics: { rows_sent: 3 },
      },
      {
        timestamp: '2026-11-02 09:00:02',
        id: 5,
        class: 'table_access',
        event: 'read',
        connection_id: 9,
        table_access_data: { db: 'shop', table: 'orders' },
      },
      {
        timestamp: '2026-11-02 09:00:03',
        id: 6,
        class: 'general',
        event: 'status',
        connection_id: 9,
        general_data: {},
      },
      {
        timestamp: '2026-11-02 09:00:03',
        id: 7,
        class: 'general',
        event: 'status',
        connection_id: 9,
        general_data: { command: 'Query', sql_command: 'select', query: '', status: 0 },
      },
      {
        timestamp: '2026-11-02 09:00:04',
        id: 8,
        class: 'general',
        event: 'status',
        connection_id: 9,
        general_data: { command: 'Query', sql_command: 'select', query: 'SELECT 2', status: 0 },
      },
      {
        timestamp: '2026-11-02 09:00:05',
        id: 9,
        class: 'general',
        event: 'status',
        connection_id: 9,
        // Beyond Latin-1, and a lone surrogate (JSON may escape one): it comes back the same.
        general_data: { command: 'Query', sql_command: 'select', query: "SELECT 'é€\ud800'", status: 0 },
      },
    ];
    const items: DecodedItem[] = [];
    for (const db of [
      { id: 'db1', instance: 'replica-1' },
      { id: 'db1', name: 'prod' },
    ])
      for (const raw of records) {
        const r = normalizeMysqlAudit(raw, db, loc);
        if (!r.ok || !r.routine) throw new Error('expected a routine statement');
        items.push({ type: 'event', event: r.value, routine: true });
      }
    const packed = packItems(items);
    expect(packed.items).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // The texts travel end to end: an empty one is not an absent one.
    expect(String.fromCharCode(...packed.texts)).toBe("SELECT 1SELECT 2SELECT 'é€\ud800'".repeat(2));
    expect(
      items.filter((i) => i.type === 'event' && 'sql' in i.event && i.event.sql?.text === ''),
    ).toHaveLength(2);
    // Each short string once: the DB system, kinds, times, classes, events, commands, the table, instance and name.
    expect(new Set(packed.dictionary).size).toBe(packed.dictionary.length);
    const back = unpackItems(structuredClone(packed, { transfer: transferables(packed) }));
    // Handed over, not copied.
    expect(packed.texts.length).toBe(0);
    expect(back.map((i) => JSON.stringify(i))).toEqual(items.map((i) => JSON.stringify(i)));
    expect(plain(back)).toEqual(plain(items));
    expect(asRead(back)).toEqual(asRead(items));
    // Read from the columns when asked, not rebuilt.
    expect(back.every((i) => i.type === 'event' && i.event instanceof PackedStatement)).toBe(true);
  });
});
