// Decoding on worker threads: each input is read and decoded by one worker (inputs are dealt out
// in turn), a few chunks ahead of the replay, which merges and applies them on its own thread as if
// it had decoded them itself. The worker is dist/decode-worker.cjs, beside the bundle that runs.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AuditError, type ErrorCode, type SafeDetails } from '../errors.js';
import { type DecodedItem, emptyCounts, type InputCounts, type InputReader } from './read-input.js';
import { type TransferChunk, unpackItems } from './transfer.js';

/** What the replay's thread sends a worker. */
export type WorkerRequest = { type: 'open'; id: number; path: string } | { type: 'next'; id: number };

/** A worker's answer to `next`: the input's next chunk, or its end, or why it cannot be read. */
export type WorkerReply =
  | { id: number; chunk: TransferChunk; counts: InputCounts; done: false }
  | { id: number; counts: InputCounts; done: true }
  | { id: number; error: { code: ErrorCode; message: string; details: SafeDetails } };

/**
 * What a worker needs to decode: the DB systems that name raw audit files (see dbSystemResolver),
 * and the lateness that makes a clock step (ReadOptions).
 */
export type WorkerSetup = { dbSystems: { id: string; name: string }[]; dbSystem?: string; lateness: number };

/**
 * Inputs this large in all (bytes on disk) get a decoding worker where there is a second core. On
 * two cores, where the process is bound by its CPU time, 659 MB replayed from 7% slower to 19%
 * faster with one in the last eight benches (median about 2% faster; 11%, 12%, 15%, 13%, 12%,
 * 22%, 18% and 19% faster in the eight before; 10-17% faster three times and 4% slower once before
 * routine statements travelled as columns); 212 MB 8% faster (four pairs of runs: 5.01-5.17
 * against 5.44-5.65 s); 118 MB as fast (3.22-3.44 against 3.16-3.47 s).
 */
export const WORKER_INPUT_BYTES = 192 * 1024 * 1024;

/**
 * Threads in all for `--threads auto`: two (one of them decoding) where there is a second core and
 * the inputs are large enough, else one. The replay's own thread does about two thirds of the
 * work, so one worker keeps up with it and more would only take memory.
 */
export function autoThreads(inputBytes: number, cores = availableParallelism()): number {
  return cores >= 2 && inputBytes >= WORKER_INPUT_BYTES ? 2 : 1;
}

/** Chunks of each input asked for before they are needed. */
const AHEAD = 4;

export class DecodePool {
  private readonly workers: Worker[];
  /** Per input, the requests not answered yet, oldest first (a worker answers them in order). */
  private readonly waiting = new Map<number, { resolve(r: WorkerReply): void; reject(e: unknown): void }[]>();
  private failure: unknown;
  private nextId = 0;

  constructor(size: number, setup: WorkerSetup) {
    const file = new URL('./decode-worker.cjs', import.meta.url);
    this.workers = Array.from({ length: size }, () => {
      const worker = new Worker(file, { workerData: setup });
      worker.on('message', (reply: WorkerReply) => this.waiting.get(reply.id)?.shift()?.resolve(reply));
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`a decoding worker exited with code ${code}`));
      });
      return worker;
    });
  }

  /** Reads one input on the next worker in turn (its counts are those of the last chunk received). */
  read(path: string): Pick<InputReader, 'counts' | 'batches'> {
    const id = this.nextId++;
    const worker = this.workers[id % this.workers.length]!;
    worker.postMessage({ type: 'open', id, path } satisfies WorkerRequest);
    const counts = emptyCounts();
    // Chunks are asked for AHEAD at a time, so that the worker decodes while this thread works.
    this.waiting.set(id, []);
    const ahead = Array.from({ length: AHEAD }, () => this.request(worker, id));
    let ended = false;
    const next = async (): Promise<IteratorResult<DecodedItem[]>> => {
      if (ended) return { done: true, value: undefined };
      const reply = await ahead.shift()!;
      if ('error' in reply)
        throw new AuditError(reply.error.code, reply.error.message, { details: reply.error.details });
      Object.assign(counts, reply.counts);
      if (reply.done) {
        ended = true;
        return { done: true, value: undefined };
      }
      ahead.push(this.request(worker, id));
      return { done: false, value: unpackItems(reply.chunk) };
    };
    return { counts, batches: () => ({ [Symbol.asyncIterator]: () => ({ next }) }) };
  }

  async close(): Promise<void> {
    this.failure ??= new Error('the decoding workers are closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private request(worker: Worker, id: number): Promise<WorkerReply> {
    const reply =
      this.failure !== undefined
        ? Promise.reject(this.failure)
        : new Promise<WorkerReply>((resolve, reject) => this.waiting.get(id)?.push({ resolve, reject }));
    // Asked for ahead: a failure is reported when the chunk is awaited, not as an unhandled rejection.
    reply.catch(() => undefined);
    if (this.failure === undefined) worker.postMessage({ type: 'next', id } satisfies WorkerRequest);
    return reply;
  }

  private fail(error: unknown): void {
    this.failure ??= error;
    for (const waiters of this.waiting.values()) for (const waiter of waiters.splice(0)) waiter.reject(error);
  }
}
