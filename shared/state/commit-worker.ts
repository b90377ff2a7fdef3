// The SQLite store's own thread (commit-thread.ts): its own connection to the state file, on which
// it applies commits and deliveries one at a time, in the order they come, or checkpoints the log
// when asked.
// Bundled as dist/commit-worker.cjs.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CheckpointRequest, CommitReply, CommitRequest, CommitSetup } from './commit-thread.js';
import { applyCommit, applyDelivered, connectionSettings } from './sqlite-commit.js';

function serve(port: NonNullable<typeof parentPort>, setup: CommitSetup): void {
  const db = new Database(setup.path);
  connectionSettings(db);
  // Asks that come while a checkpoint is pending or under way come to one more (see CommitThread.checkpoint).
  let checkpointAsked = false;
  const checkpoint = () => {
    checkpointAsked = false;
    try {
      // Passive: copies what it can without waiting for the writer, which goes on appending.
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // The writer's own checkpoints copy the log instead.
    }
  };
  port.on('message', (request: CommitRequest | CheckpointRequest) => {
    if (request.type === 'checkpoint') {
      if (!checkpointAsked) setImmediate(checkpoint);
      checkpointAsked = true;
      return;
    }
    let reply: CommitReply;
    try {
      if (request.type === 'commit') reply = { id: request.id, ...applyCommit(db, request.rows) };
      else {
        applyDelivered(db, request.sink, request.keys, request.now);
        reply = { id: request.id };
      }
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      reply = {
        id: request.id,
        error: {
          message: error instanceof Error ? error.message : String(error),
          ...(typeof code === 'string' ? { code } : {}),
        },
      };
    }
    port.postMessage(reply);
  });
}

if (!isMainThread && parentPort !== null) serve(parentPort, workerData as CommitSetup);
