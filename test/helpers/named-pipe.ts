// A named pipe with a reader in a process of its own, for outputs that must write a pipe as it is
// (a reader in the test's own process would hold a thread of its pool if no writer ever came).
import { execFileSync, spawn } from 'node:child_process';
import { text } from 'node:stream/consumers';

/** Makes a named pipe at `path`; `text` is what its writers wrote, once the last closed it. */
export function namedPipe(path: string): { text: Promise<string>; release(): void } {
  execFileSync('mkfifo', [path]);
  const reader = spawn('cat', [path], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { text: text(reader.stdout), release: () => reader.kill() };
}
