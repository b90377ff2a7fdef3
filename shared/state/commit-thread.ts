// The SQLite store's own thread, seen from the pipeline's thread: a worker with a connection of its
// own (commit-worker.ts) that does one of two jobs (`StoreThread`):
// - `commits`: it applies the store's writes in the order they are asked for, while the pipeline
//   goes on with its next batch. Reads on the pipeline's connection wait for `idle` first, so that
//   every read sees the writes asked for before it.
// - `checkpoints`: the pipeline's thread writes, and this one copies the write-ahead log into the
//   database file after each commit (a passive checkpoint, which never blocks the writer), so
//   that the copy and its fsyncs, which wait on the disk, are not on the pipeline's thread.
import { Worker } from 'node:worker_threads';
import { AuditError } from '../errors.js';
import type { AppliedCommit, CommitRows } from './sqlite-commit.js';

/** What the store's own thread does: apply its writes, or only checkpoint its log. */
export type StoreThread = 'commits' | 'checkpoints';

export type CommitSetup = { path: string };

export type CommitRequest = { id: number } & (
  | { type: 'commit'; rows: CommitRows }
  | { type: 'delivered'; sink: string; keys: string[]; now: number }
);

/** Asks for a checkpoint; not answered (the pipeline's thread may not turn its event loop for long). */
export type CheckpointRequest = { type: 'checkpoint' };

export type CommitReply =
  | ({ id: number } & Partial<AppliedCommit>)
  | { id: number; error: { message: string; code?: string } };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The bundled worker, beside the bundle that runs (dist/commit-worker.cjs). */
export const COMMIT_WORKER = new URL('./commit-worker.cjs', import.meta.url);

export class CommitThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve(r: CommitReply): void; reject(e: unknown): void }>();
  private nextId = 0;
  /** The last write: once it settles, every earlier one has (the worker answers in order). */
  private last: Promise<unknown> = Promise.resolve();
  /** Why the thread takes no more writes: it stopped, or the store closed. */
  private stopped: unknown;

  constructor(path: string, file: URL = COMMIT_WORKER) {
    this.worker = new Worker(file, { workerData: { path } satisfies CommitSetup });
    this.worker.on('message', (reply: CommitReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      // Idle, the thread does not keep the process alive (a store left open does not hang it).
      if (this.waiting.size === 0) this.worker.unref();
      waiter?.resolve(reply);
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the commit thread exited with code ${code}`)));
    this.worker.unref();
  }

  /** Applies a commit; resolves with what it did. */
  async commit(rows: CommitRows): Promise<AppliedCommit> {
    const reply = await this.request({ type: 'commit', rows });
    if (!('newAlerts' in reply)) return { newAlerts: [] };
    return reply.lost === undefined
      ? { newAlerts: reply.newAlerts ?? [] }
      : { newAlerts: reply.newAlerts ?? [], lost: reply.lost };
  }

  async delivered(sink: string, keys: string[]): Promise<void> {
    await this.request({ type: 'delivered', sink, keys, now: Date.now() });
  }

  /**
   * Asks the thread to copy the log into the database file; asks made while it copies come to one
   * more copy. Nothing waits for it, and its failure is not reported: the writing connection's own
   * checkpoints (wal_autocheckpoint) stay the fallback.
   */
  checkpoint(): void {
    if (this.stopped === undefined)
      this.worker.postMessage({ type: 'checkpoint' } satisfies CheckpointRequest);
  }

  /** Settles once every write asked for so far is applied or has failed (checkpoints are not writes). */
  async idle(): Promise<void> {
    await this.last;
  }

  async close(): Promise<void> {
    await this.idle();
    this.stopped ??= new AuditError('STORE_FAILED', 'the state store is closed');
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private request(write: DistributiveOmit<CommitRequest, 'id'>): Promise<CommitReply> {
    if (this.stopped !== undefined) return Promise.reject(this.stopped);
    const request = { ...write, id: this.nextId++ } as CommitRequest;
    const reply = new Promise<CommitReply>((resolve, reject) =>
      this.waiting.set(request.id, { resolve, reject }),
    );
    this.worker.ref();
    this.worker.postMessage(request);
    const checked = reply.then((r) => {
      if (!('error' in r)) return r;
      const { message, code } = r.error;
      const cause = Object.assign(new Error(message), code === undefined ? {} : { code });
      throw new AuditError(
        'STORE_FAILED',
        write.type === 'commit'
          ? 'state store commit failed'
          : 'cannot record the deliveries in the state store',
        { cause },
      );
    });
    this.last = checked.catch(() => undefined);
    return checked;
  }

  private fail(error: unknown): void {
    this.stopped ??= new AuditError('STORE_FAILED', 'the commit thread stopped', { cause: error });
    for (const waiter of this.waiting.values()) waiter.reject(this.stopped);
    this.waiting.clear();
  }
}
