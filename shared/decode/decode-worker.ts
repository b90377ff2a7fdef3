// A decoding worker (shared/decode/decode-pool.ts): reads the inputs it is given, one chunk per
// request, and posts their decoded items. Bundled as dist/decode-worker.cjs.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { AuditError } from '../errors.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './decode-pool.js';
import { dbSystemResolver } from './input-db-system.js';
import { type DecodedItem, emptyCounts, type InputCounts, readInput } from './read-input.js';
import { packItems, transferables } from './transfer.js';

function serve(port: NonNullable<typeof parentPort>, setup: WorkerSetup): void {
  const resolveDbSystem = dbSystemResolver(setup, setup.dbSystem);
  /** Open inputs by request id: their counts and where their chunks stand. */
  const inputs = new Map<number, { counts: InputCounts; chunks: AsyncIterator<DecodedItem[]> }>();
  const open = (id: number, path: string): void => {
    const reader = readInput(path, { resolveDbSystem, lateness: setup.lateness });
    inputs.set(id, { counts: reader.counts, chunks: reader.batches()[Symbol.asyncIterator]() });
  };
  const next = async (request: { id: number }): Promise<WorkerReply> => {
    const input = inputs.get(request.id);
    // Asked for ahead past the end: the end again.
    if (input === undefined) return { id: request.id, counts: emptyCounts(), done: true };
    const { counts, chunks } = input;
    try {
      const r = await chunks.next();
      if (!r.done) return { id: request.id, chunk: packItems(r.value), counts, done: false };
    } catch (error) {
      const e =
        error instanceof AuditError ? error : new AuditError('INTERNAL', 'decoding failed', { cause: error });
      return { id: request.id, error: { code: e.code, message: e.message, details: e.details } };
    }
    inputs.delete(request.id);
    return { id: request.id, counts, done: true };
  };
  // One request at a time, in the order they came: each input's chunks stay in order.
  let queue = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    if (request.type === 'open') open(request.id, request.path);
    else
      queue = queue.then(async () => {
        const reply = await next(request);
        port.postMessage(reply, 'chunk' in reply ? transferables(reply.chunk) : []);
      });
  });
}

if (!isMainThread && parentPort !== null) serve(parentPort, workerData as WorkerSetup);
