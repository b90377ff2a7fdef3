// The alerts file: appended and synced; after a crash between writing lines and marking them
// delivered, the run that sends them again (its backlog) writes only those the file lacks.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import { FileSink } from '../../shared/emit/file-sink.js';
import type { SendContext } from '../../shared/emit/sink.js';
import { namedPipe } from '../helpers/named-pipe.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-file-sink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const alert = (id: string): Alert => ({
  id,
  rule: 'audit.tamper',
  severity: 'critical',
  time: '2026-11-02T09:00:00.000Z',
  title: `alert ${id}`,
  identity: null,
  dbSystem: null,
  evidence: [],
  status: 'open',
});
const ctx = (backlog: boolean) => ({ backlog }) as SendContext;
const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);

describe('FileSink', () => {
  it('removes a line an earlier run was cut in, and refuses a file whose last line it did not write', async () => {
    const format = (a: Alert) => JSON.stringify(a);
    for (const cut of ['{"id":"x","ru', 'CEF:0|heatwave', 'CE']) {
      const path = join(dir, 'cut.log');
      writeFileSync(path, `{"id":"a"}\n${cut}`);
      await (await FileSink.open(path, 'jsonl', format)).close();
      expect(readFileSync(path, 'utf8')).toBe('{"id":"a"}\n');
    }
    for (const foreign of ['notes\rline2', '{"id":"a"}\nmy notes']) {
      const path = join(dir, 'notes.txt');
      writeFileSync(path, foreign);
      await expect(FileSink.open(path, 'jsonl', format)).rejects.toMatchObject({
        code: 'USAGE',
        message: `${path} does not end with a line break, and its last line is not one this tool writes: name another file`,
      });
      expect(readFileSync(path, 'utf8')).toBe(foreign);
    }
  });

  it('writes a backlog only where the file lacks it; other sends always append', async () => {
    const path = join(dir, 'alerts.jsonl');
    const first = await FileSink.open(path, 'jsonl', (a) => JSON.stringify(a));
    await first.send([alert('a'), alert('b')], ctx(false));
    await first.close();
    // The crash: a and b are in the file, not marked delivered; the next run sends a, b and c.
    const again = await FileSink.open(path, 'jsonl', (a) => JSON.stringify(a));
    await again.send([alert('a'), alert('b'), alert('c')], ctx(true));
    expect(lines(path).map((l) => JSON.parse(l).id)).toEqual(['a', 'b', 'c']);
    // A backlog the file holds entirely writes nothing.
    await again.send([alert('c')], ctx(true));
    // Outside a backlog, a send appends what it is given.
    await again.send([alert('d')], ctx(false));
    await again.close();
    expect(lines(path).map((l) => JSON.parse(l).id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('writes a device or a named pipe as it is: nothing synced, cut back or read again', async () => {
    const devNull = await FileSink.open('/dev/null', 'jsonl', (a) => JSON.stringify(a));
    await devNull.send([alert('a')], ctx(false));
    await devNull.send([alert('a')], ctx(true));
    await devNull.close();
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);

    const path = join(dir, 'alerts.pipe');
    const pipe = namedPipe(path);
    try {
      const sink = await FileSink.open(path, 'jsonl', (a) => JSON.stringify(a));
      await sink.send([alert('a'), alert('b')], ctx(false));
      // What a pipe holds cannot be read back: a backlog is written whole.
      await sink.send([alert('a')], ctx(true));
      await sink.close();
      const ids = (await pipe.text)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).id);
      expect(ids).toEqual(['a', 'b', 'a']);
    } finally {
      pipe.release();
    }
    expect(statSync(path).isFIFO()).toBe(true);
  });
});
