// A local, signature-checking OCI endpoint for contract tests: the real SDK clients talk to it
// through `client.endpoint = endpoint.url`. Every request's signature is verified (see
// signature.ts) before any handler runs; service handlers (one file per service) plug in as
// `ServiceHandler`s. README.md in this folder documents the API.
import { createPublicKey, type KeyObject, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultController } from './faults.js';
import { MAX_CLOCK_SKEW_MS, type SignatureFailure, verifyRequest, verifySecurityToken } from './signature.js';

export interface EndpointRequest {
  method: string;
  /** Path without the query, as received (still percent-encoded). */
  path: string;
  /** `service.route` of the matched route. */
  route: string;
  /** Path parameters, percent-decoded. */
  params: Record<string, string>;
  /** Query parameters, decoded (the last value wins; `url.searchParams` has all of them). */
  query: Record<string, string>;
  url: URL;
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  body: unknown;
  rawBody: Buffer;
  /** The signature's keyId (`tenancy/user/fingerprint` or `ST$<token>`) and who it names. */
  keyId: string;
  principal: string;
}

export interface EndpointResponse {
  status: number;
  headers?: Record<string, string>;
  /** Buffer or string: sent as is; anything else: JSON. Omit for an empty body. */
  body?: unknown;
}

export interface HandlerContext {
  faults: FaultController;
  /** The endpoint's clock (ms since epoch), including any offset set by a test. */
  now(): number;
  /** Base URL of the endpoint, e.g. for links in answers. */
  url: string;
}

export interface Route {
  /** Operation name, e.g. `putMessages` (fault selectors use `service.name`). */
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  /** `/streams/{streamId}/messages` (params match one path segment) or a RegExp with named groups. */
  pattern: string | RegExp;
  /** The SDK excludes the body from the signature for this operation (PutMessages, PutObject). */
  unsignedBody?: boolean;
  handle(req: EndpointRequest, ctx: HandlerContext): EndpointResponse | Promise<EndpointResponse>;
}

export interface ServiceHandler {
  /** Service name used in route ids and fault selectors: `streaming`, `ons`, `objectstorage`. */
  name: string;
  /** Prefix of every route, e.g. the API version the SDK client appends: `/20180418`. */
  basePath?: string;
  routes: Route[];
}

export interface Credential {
  keyId: string;
  publicKeyPem: string;
  principal?: string;
}

export interface OciEndpointOptions {
  handlers: ServiceHandler[];
  /** API-key principal: keyId `tenancy/user/fingerprint` checked with publicKeyPem. */
  tenancy?: string;
  user?: string;
  fingerprint?: string;
  publicKeyPem?: string;
  /** More API keys. */
  credentials?: Credential[];
  /** Issuer of security tokens (keyId `ST$<jwt>`: session tokens, resource principal RPSTs). */
  tokenIssuerPublicKeyPem?: string;
  faults?: FaultController;
  maxClockSkewMs?: number;
  /** Clock for the signature check and, unless serviceNow is given, for handlers; default Date.now. */
  now?: () => number;
  /**
   * Clock handlers see as `ctx.now()` (cursor expiry, rate windows). Lets a test run minutes of
   * simulated service time while signatures, made by the SDK with the real time, are still
   * checked against the real clock. `setClockOffset` does not move it.
   */
  serviceNow?: () => number;
  /** Largest accepted body; bigger bodies get 413. Default 20 MB. */
  maxBodyBytes?: number;
}

export interface RecordedRequest {
  seq: number;
  method: string;
  /** Path with query. */
  target: string;
  /** `service.route`, or null when no route matched. */
  route: string | null;
  status: number;
  keyId: string | null;
  authFailure?: SignatureFailure;
  bodyBytes: number;
  /** Request headers as received (test-only, in-memory; throwaway keys and tokens). */
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
}

export interface OciEndpoint {
  url: string;
  port: number;
  faults: FaultController;
  /** Every request, in arrival order. */
  requests: RecordedRequest[];
  /** Requests that reached a route (signature accepted or not), filtered by `service.route`. */
  requestsTo(route: string): RecordedRequest[];
  addCredential(credential: Credential): void;
  /** Moves the endpoint's clock (to test clock skew with the real SDK). */
  setClockOffset(ms: number): void;
  close(): Promise<void>;
}

interface CompiledRoute {
  id: string;
  route: Route;
  regex: RegExp;
}

/** `{code, message}` error answer as OCI services send it. */
export function ociError(status: number, code: string, message: string): EndpointResponse {
  return { status, body: { code, message } };
}

export function compilePattern(pattern: string | RegExp, basePath = ''): RegExp {
  if (pattern instanceof RegExp) {
    if (!basePath) return pattern;
    const src = pattern.source.startsWith('^') ? pattern.source.slice(1) : pattern.source;
    return new RegExp(`^${escapeRegex(basePath)}${src}`, pattern.flags);
  }
  const parts = `${basePath}${pattern}`.split(/(\{[A-Za-z_][A-Za-z0-9_]*\})/);
  const src = parts
    .map((p) => (p.startsWith('{') && p.endsWith('}') ? `(?<${p.slice(1, -1)}>[^/]+)` : escapeRegex(p)))
    .join('');
  return new RegExp(`^${src}$`);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooBig ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startOciEndpoint(opts: OciEndpointOptions): Promise<OciEndpoint> {
  const faults = opts.faults ?? new FaultController();
  const maxSkew = opts.maxClockSkewMs ?? MAX_CLOCK_SKEW_MS;
  const maxBody = opts.maxBodyBytes ?? 20 * 1024 * 1024;
  const baseNow = opts.now ?? Date.now;
  let offset = 0;
  const now = () => baseNow() + offset;
  const serviceNow = opts.serviceNow ?? now;

  const keys = new Map<string, { key: KeyObject; principal: string }>();
  const addCredential = (c: Credential) => {
    keys.set(c.keyId, {
      key: createPublicKey(c.publicKeyPem),
      principal: c.principal ?? c.keyId.split('/')[1] ?? c.keyId,
    });
  };
  if (opts.publicKeyPem && opts.tenancy && opts.user && opts.fingerprint) {
    addCredential({
      keyId: `${opts.tenancy}/${opts.user}/${opts.fingerprint}`,
      publicKeyPem: opts.publicKeyPem,
      principal: opts.user,
    });
  }
  for (const c of opts.credentials ?? []) addCredential(c);
  const issuer = opts.tokenIssuerPublicKeyPem ? createPublicKey(opts.tokenIssuerPublicKeyPem) : null;
  const resolveKey = (keyId: string, at: number) => {
    if (keyId.startsWith('ST$')) {
      if (!issuer) return { error: 'Security tokens are not accepted by this endpoint.' };
      return verifySecurityToken(keyId.slice(3), issuer, at);
    }
    return keys.get(keyId) ?? null;
  };

  const routes: CompiledRoute[] = opts.handlers.flatMap((h) =>
    h.routes.map((r) => ({
      id: `${h.name}.${r.name}`,
      route: r,
      regex: compilePattern(r.pattern, h.basePath),
    })),
  );
  const requests: RecordedRequest[] = [];
  let url = '';

  const send = (res: ServerResponse, out: EndpointResponse, record: RecordedRequest) => {
    record.status = out.status;
    const headers: Record<string, string> = { 'opc-request-id': randomUUID(), ...out.headers };
    let payload: Buffer | undefined;
    if (Buffer.isBuffer(out.body)) payload = out.body;
    else if (typeof out.body === 'string') payload = Buffer.from(out.body);
    else if (out.body !== undefined) {
      payload = Buffer.from(JSON.stringify(out.body));
      headers['content-type'] ??= 'application/json';
    }
    headers['content-length'] = String(payload?.length ?? 0);
    res.writeHead(out.status, headers);
    res.end(payload);
  };

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const target = req.url ?? '/';
    const parsed = new URL(target, 'http://endpoint.invalid');
    const record: RecordedRequest = {
      seq: requests.length,
      method,
      target,
      route: null,
      status: 0,
      keyId: null,
      bodyBytes: 0,
      headers: req.headers,
      rawBody: Buffer.alloc(0),
    };
    requests.push(record);

    const body = await readBody(req, maxBody);
    if (body === null)
      return send(res, ociError(413, 'RequestEntityTooLarge', 'The request body is too large.'), record);
    record.bodyBytes = body.length;
    record.rawBody = body;

    let match: { compiled: CompiledRoute; groups: Record<string, string> } | null = null;
    for (const compiled of routes) {
      if (compiled.route.method !== method) continue;
      const m = compiled.regex.exec(parsed.pathname);
      if (m) {
        match = { compiled, groups: { ...m.groups } };
        break;
      }
    }
    record.route = match?.compiled.id ?? null;

    // OCI authenticates before it routes: an unsigned request to an unknown path is a 401.
    const verdict = verifyRequest(
      {
        method,
        target,
        headers: req.headers,
        body,
        unsignedBody: match?.compiled.route.unsignedBody === true,
      },
      resolveKey,
      now(),
      maxSkew,
    );
    if (!verdict.ok) {
      record.authFailure = verdict.reason;
      return send(res, ociError(401, 'NotAuthenticated', verdict.message), record);
    }
    record.keyId = verdict.keyId;
    if (!match)
      return send(
        res,
        ociError(404, 'NotAuthorizedOrNotFound', `No route for ${method} ${parsed.pathname}`),
        record,
      );

    const id = match.compiled.id;
    const delay = faults.nextDelay(id);
    if (delay > 0) await sleep(delay);
    const fault = faults.nextError(id);
    if (fault) {
      const out = ociError(fault.status, fault.code, fault.message);
      if (fault.retryAfterSeconds !== undefined)
        out.headers = { 'retry-after': String(fault.retryAfterSeconds) };
      return send(res, out, record);
    }

    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(match.groups)) params[k] = decodeURIComponent(v);
    const query: Record<string, string> = {};
    for (const [k, v] of parsed.searchParams) query[k] = v;
    let json: unknown;
    if (body.length > 0) {
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = undefined;
      }
    }
    try {
      const out = await match.compiled.route.handle(
        {
          method,
          path: parsed.pathname,
          route: id,
          params,
          query,
          url: parsed,
          headers: req.headers,
          body: json,
          rawBody: body,
          keyId: verdict.keyId,
          principal: verdict.principal,
        },
        { faults, now: serviceNow, url },
      );
      send(res, out, record);
    } catch (error) {
      send(res, ociError(500, 'InternalServerError', `Handler ${id} failed: ${String(error)}`), record);
    }
  };

  const server = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'InternalServerError', message: String(error) }));
    });
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}`;

  return {
    url,
    port,
    faults,
    requests,
    requestsTo: (route) => requests.filter((r) => r.route === route),
    addCredential,
    setClockOffset: (ms) => {
      offset = ms;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
