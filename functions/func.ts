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
import { handle } from '@fnproject/fdk';
import { FunctionHost } from './function-host.js';

const host = new FunctionHost();

handle((input, ctx) => host.invoke(input, { callId: ctx.callID, deadline: ctx.deadline }), {
  inputMode: 'buffer',
});
