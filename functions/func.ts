// OCI Function entry, bundled to dist/func.cjs (CommonJS, as the FDK is). The only importer of
// @fnproject/fdk; everything else lives in function-host.ts.
//
// FDK facts this relies on:
// - inputMode 'buffer': the raw body; 'json' mode would hand invalid JSON over as a string.
// - the handler must never resolve to undefined/null (sendResult then throws and the process
//   dies on the unhandled rejection): FunctionHost.invoke resolves to a summary or rejects.
// - a rejection becomes HTTP 502 whose body holds the error's toString(): FunctionError messages
//   are log-safe by construction.
// - settings come from process.env (ctx.getConfig() throws: it calls .get on process.env), and so
//   does the resource principal OCI Functions gives the container (OCI_RESOURCE_PRINCIPAL_*).
// - the container may be frozen between invocations and recycled at any time: the host delivers
//   every alert (Notifications digests included) before an invocation answers, and with a shared
//   mysql:// store reloads the state at each invocation (function-host.ts).
// - the FDK buffers the whole request body before calling the handler; the HTTP server it creates
//   is wrapped (below) so that a body stops being buffered one byte past HWAUDIT_MAX_BODY_BYTES:
//   the handler then gets limit + 1 bytes and refuses them (413, a dead letter), and a huge body
//   cannot take the memory with it.
import http, { type IncomingMessage } from 'node:http';
import { handle } from '@fnproject/fdk';
import { bodyLimit } from './function-env.js';
import { FunctionHost } from './function-host.js';

/** Hands the FDK's 'data' listeners at most `limit + 1` bytes of the request body. */
function capBody(req: IncomingMessage, limit: number): void {
  let seen = 0;
  const on = req.on.bind(req);
  req.on = ((event: string, listener: (...args: unknown[]) => void) => {
    if (event !== 'data') return on(event, listener);
    return on('data', (chunk: Buffer) => {
      if (seen > limit) return;
      const room = limit + 1 - seen;
      seen += chunk.length;
      listener(chunk.length > room ? chunk.subarray(0, room) : chunk);
    });
  }) as typeof req.on;
}

const host = new FunctionHost();
const limit = bodyLimit(process.env);
const createServer = http.createServer;
http.createServer = ((handler: http.RequestListener) =>
  createServer((req, res) => {
    capBody(req, limit);
    handler(req, res);
  })) as typeof http.createServer;
try {
  handle((input, ctx) => host.invoke(input, { callId: ctx.callID, deadline: ctx.deadline }), {
    inputMode: 'buffer',
  });
} finally {
  http.createServer = createServer;
}
