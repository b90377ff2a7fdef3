// Verification (and, for raw test requests, creation) of OCI request signatures: draft-cavage
// HTTP signatures as oci-common's DefaultRequestSigner writes them (signer.js + http-signature):
//   Authorization: Signature version="1",keyId="<tenancy>/<user>/<fingerprint>" | "ST$<jwt>",
//                  algorithm="rsa-sha256",headers="x-date (request-target) host[ Content-Type
//                  Content-Length x-content-sha256]",signature="<base64>"
// The header names in `headers` keep the signer's case (Content-Type): compare lower-cased.
// POST/PUT/PATCH sign the body headers unless the operation excludes the body (Streaming
// PutMessages, Object Storage PutObject: `makeServiceCall(..., true)`).
import {
  createHash,
  createPublicKey,
  createSign,
  createVerify,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
export const BODY_METHODS = ['POST', 'PUT', 'PATCH'] as const;
export const BODY_HEADERS = ['content-type', 'content-length', 'x-content-sha256'] as const;

export interface ParsedSignature {
  version: string | undefined;
  keyId: string;
  algorithm: string;
  headers: string[];
  signature: string;
}

export type SignatureFailure =
  | 'missing-authorization'
  | 'malformed-authorization'
  | 'unsupported-algorithm'
  | 'unknown-key'
  | 'invalid-token'
  | 'missing-signed-header'
  | 'missing-date'
  | 'clock-skew'
  | 'body-not-signed'
  | 'body-hash-mismatch'
  | 'content-length-mismatch'
  | 'bad-signature';

export type VerifyResult =
  | { ok: true; keyId: string; principal: string }
  | { ok: false; reason: SignatureFailure; message: string };

export interface IncomingForVerify {
  method: string;
  /** Path plus query exactly as received (`req.url`). */
  target: string;
  /** Lower-cased header names, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The operation excludes the body from the signature (PutMessages, PutObject). */
  unsignedBody: boolean;
}

/** Finds the public key that checks a keyId; returns null for an unknown key. */
export type KeyResolver = (
  keyId: string,
  now: number,
) => { key: KeyObject; principal: string } | { error: string } | null;

export function parseAuthorization(value: string): ParsedSignature | null {
  const m = /^Signature\s+(.*)$/s.exec(value.trim());
  if (!m) return null;
  const fields = new Map<string, string>();
  for (const part of m[1]!.matchAll(/([A-Za-z]+)="([^"]*)"/g)) fields.set(part[1]!, part[2]!);
  const keyId = fields.get('keyId');
  const signature = fields.get('signature');
  const headers = fields.get('headers');
  if (!keyId || !signature) return null;
  return {
    version: fields.get('version'),
    keyId,
    algorithm: fields.get('algorithm') ?? '',
    headers: (headers ?? 'date').split(/\s+/).filter(Boolean),
    signature,
  };
}

function headerValue(headers: IncomingForVerify['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function signingString(
  method: string,
  target: string,
  headerNames: readonly string[],
  get: (name: string) => string | undefined,
): string | { missing: string } {
  const lines: string[] = [];
  for (const raw of headerNames) {
    const h = raw.toLowerCase();
    if (h === '(request-target)') {
      lines.push(`(request-target): ${method.toLowerCase()} ${target}`);
      continue;
    }
    const v = get(h);
    if (v === undefined || v === '') return { missing: h };
    lines.push(`${h}: ${v}`);
  }
  return lines.join('\n');
}

export function sha256Base64(body: Buffer | string): string {
  return createHash('sha256').update(body).digest('base64');
}

export function verifyRequest(
  req: IncomingForVerify,
  resolveKey: KeyResolver,
  now: number,
  maxSkewMs = MAX_CLOCK_SKEW_MS,
): VerifyResult {
  const fail = (reason: SignatureFailure, message: string): VerifyResult => ({ ok: false, reason, message });
  const auth = headerValue(req.headers, 'authorization');
  if (!auth)
    return fail(
      'missing-authorization',
      'The required information to complete authentication was not provided.',
    );
  const sig = parseAuthorization(auth);
  if (!sig) return fail('malformed-authorization', 'The Authorization header is not a valid signature.');
  if (sig.algorithm.toLowerCase() !== 'rsa-sha256')
    return fail('unsupported-algorithm', `Unsupported algorithm ${sig.algorithm}`);
  if (sig.version !== undefined && sig.version !== '1')
    return fail('malformed-authorization', 'Unsupported signature version');

  const signed = new Set(sig.headers.map((h) => h.toLowerCase()));
  for (const required of ['(request-target)', 'host']) {
    if (!signed.has(required)) return fail('missing-signed-header', `Header ${required} must be signed.`);
  }
  const dateHeader = signed.has('x-date') ? 'x-date' : signed.has('date') ? 'date' : null;
  if (!dateHeader) return fail('missing-signed-header', 'Header date or x-date must be signed.');
  const isBodyMethod = (BODY_METHODS as readonly string[]).includes(req.method.toUpperCase());
  if (isBodyMethod && !req.unsignedBody) {
    for (const h of BODY_HEADERS)
      if (!signed.has(h)) return fail('body-not-signed', `Header ${h} must be signed.`);
  }

  const date = Date.parse(headerValue(req.headers, dateHeader) ?? '');
  if (Number.isNaN(date)) return fail('missing-date', `Header ${dateHeader} is not a date.`);
  if (Math.abs(now - date) > maxSkewMs) {
    return fail('clock-skew', 'The request date is more than 5 minutes away from the server clock.');
  }

  if (signed.has('x-content-sha256')) {
    if (headerValue(req.headers, 'x-content-sha256') !== sha256Base64(req.body)) {
      return fail('body-hash-mismatch', 'x-content-sha256 does not match the request body.');
    }
  }
  if (signed.has('content-length')) {
    if (Number(headerValue(req.headers, 'content-length')) !== req.body.length) {
      return fail('content-length-mismatch', 'Content-Length does not match the request body.');
    }
  }

  const key = resolveKey(sig.keyId, now);
  if (key === null) return fail('unknown-key', 'The key id is not known.');
  if ('error' in key) return fail('invalid-token', key.error);

  const text = signingString(req.method, req.target, sig.headers, (h) => headerValue(req.headers, h));
  if (typeof text !== 'string')
    return fail('missing-signed-header', `Signed header ${text.missing} is missing.`);
  const verifier = createVerify('RSA-SHA256');
  verifier.update(text);
  let valid = false;
  try {
    valid = verifier.verify(key.key, sig.signature, 'base64');
  } catch {
    valid = false;
  }
  if (!valid) return fail('bad-signature', 'The signature does not verify.');
  return { ok: true, keyId: sig.keyId, principal: key.principal };
}

/** Signs a raw request the way oci-common does (for hand-made requests in tests). */
export function signHeaders(opts: {
  method: string;
  url: string;
  keyId: string;
  privateKeyPem: string;
  body?: Buffer | string;
  date?: Date;
  excludeBody?: boolean;
}): Record<string, string> {
  const url = new URL(opts.url);
  const headers: Record<string, string> = {
    host: url.host,
    'x-date': (opts.date ?? new Date()).toUTCString(),
  };
  const names = ['x-date', '(request-target)', 'host'];
  const isBodyMethod = (BODY_METHODS as readonly string[]).includes(opts.method.toUpperCase());
  if (isBodyMethod && !opts.excludeBody) {
    const body = opts.body ?? '';
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
    headers['x-content-sha256'] = sha256Base64(typeof body === 'string' ? Buffer.from(body) : body);
    names.push('content-type', 'content-length', 'x-content-sha256');
  }
  const text = signingString(opts.method, `${url.pathname}${url.search}`, names, (h) => headers[h]);
  if (typeof text !== 'string') throw new Error(`cannot sign: ${text.missing} missing`);
  const signature = createSign('RSA-SHA256').update(text).sign(opts.privateKeyPem, 'base64');
  headers.authorization = `Signature version="1",keyId="${opts.keyId}",algorithm="rsa-sha256",headers="${names.join(' ')}",signature="${signature}"`;
  return headers;
}

export interface TestKeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
  /** MD5 of the DER public key, colon-separated, as the OCI console shows it. */
  fingerprint: string;
}

/** A fresh RSA 2048 key pair, generated at test time (never checked in). */
export function generateTestKeyPair(): TestKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const fingerprint = (createHash('md5').update(der).digest('hex').match(/../g) ?? []).join(':');
  return { privateKeyPem, publicKeyPem, fingerprint };
}

const b64url = (v: Buffer | string) => Buffer.from(v).toString('base64url');

/**
 * A security token (UPST from `oci session authenticate`, or an RPST inside Functions): an RS256
 * JWT whose `jwk` claim carries the public half of the session key that signs requests.
 */
export function craftSecurityToken(opts: {
  issuerPrivateKeyPem: string;
  sessionPublicKeyPem: string;
  subject: string;
  tenancy: string;
  expiresAt: Date;
  claims?: Record<string, unknown>;
}): string {
  const jwk = createPublicKey(opts.sessionPublicKeyPem).export({ format: 'jwk' });
  const header = { alg: 'RS256', typ: 'JWT', kid: 'asw' };
  const payload = {
    sub: opts.subject,
    tenant: opts.tenancy,
    iss: 'authService.oracle.com',
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(opts.expiresAt.getTime() / 1000),
    jwk: JSON.stringify({ ...jwk, kid: 'session', alg: 'RS256', use: 'sig' }),
    ...opts.claims,
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = createSign('RSA-SHA256').update(input).sign(opts.issuerPrivateKeyPem);
  return `${input}.${b64url(sig)}`;
}

/** Checks a security token against the issuer key; returns the session public key it names. */
export function verifySecurityToken(
  token: string,
  issuerPublicKey: KeyObject,
  now: number,
): { key: KeyObject; principal: string } | { error: string } {
  const parts = token.split('.');
  if (parts.length !== 3) return { error: 'The security token is malformed.' };
  const [h, p, s] = parts as [string, string, string];
  const ok = createVerify('RSA-SHA256')
    .update(`${h}.${p}`)
    .verify(issuerPublicKey, Buffer.from(s, 'base64url'));
  if (!ok) return { error: 'The security token signature does not verify.' };
  let payload: { exp?: number; sub?: string; jwk?: string | Record<string, unknown> };
  try {
    payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return { error: 'The security token payload is not JSON.' };
  }
  if (typeof payload.exp !== 'number' || payload.exp * 1000 <= now)
    return { error: 'The security token has expired.' };
  if (!payload.jwk) return { error: 'The security token carries no jwk claim.' };
  try {
    const jwk = typeof payload.jwk === 'string' ? JSON.parse(payload.jwk) : payload.jwk;
    return { key: createPublicKey({ key: jwk, format: 'jwk' }), principal: payload.sub ?? 'unknown' };
  } catch {
    return { error: 'The security token jwk claim is not a key.' };
  }
}

export interface TestPrincipal extends TestKeyPair {
  tenancy: string;
  user: string;
  region: string;
  /** Temp dir holding `config` (an ~/.oci/config-style file) and `key.pem`. */
  dir: string;
  configFile: string;
  profile: string;
  keyId: string;
  /** Spread into startOciEndpoint's options. */
  endpointOptions: { tenancy: string; user: string; fingerprint: string; publicKeyPem: string };
  cleanup(): void;
}

/** A throwaway API-key principal: fresh key pair, written to a temp OCI config file. */
export function createTestPrincipal(opts: { profile?: string; region?: string } = {}): TestPrincipal {
  const keys = generateTestKeyPair();
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-oci-'));
  const tenancy = 'ocid1.tenancy.oc1..aaaatesttenancy';
  const user = 'ocid1.user.oc1..aaaatestuser';
  const region = opts.region ?? 'us-ashburn-1';
  const profile = opts.profile ?? 'DEFAULT';
  const keyFile = join(dir, 'key.pem');
  writeFileSync(keyFile, keys.privateKeyPem, { mode: 0o600 });
  const configFile = join(dir, 'config');
  writeFileSync(
    configFile,
    `[${profile}]\nuser=${user}\nfingerprint=${keys.fingerprint}\ntenancy=${tenancy}\nregion=${region}\nkey_file=${keyFile}\n`,
    { mode: 0o600 },
  );
  return {
    ...keys,
    tenancy,
    user,
    region,
    dir,
    configFile,
    profile,
    keyId: `${tenancy}/${user}/${keys.fingerprint}`,
    endpointOptions: { tenancy, user, fingerprint: keys.fingerprint, publicKeyPem: keys.publicKeyPem },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface SessionProfile {
  configFile: string;
  profile: string;
  token: string;
  tokenFile: string;
  /** The session key pair (`oci session authenticate` generates one; the token carries its public half). */
  session: TestKeyPair;
}

/**
 * A session-token profile as `oci session authenticate` writes it: no `user`, the session key's
 * fingerprint and key file, and a `security_token_file` holding a token the issuer signed.
 */
export function writeSessionProfile(opts: {
  dir: string;
  issuerPrivateKeyPem: string;
  subject: string;
  tenancy: string;
  expiresAt: Date;
  profile?: string;
  region?: string;
  trailingNewline?: boolean;
}): SessionProfile {
  const session = generateTestKeyPair();
  const token = craftSecurityToken({
    issuerPrivateKeyPem: opts.issuerPrivateKeyPem,
    sessionPublicKeyPem: session.publicKeyPem,
    subject: opts.subject,
    tenancy: opts.tenancy,
    expiresAt: opts.expiresAt,
  });
  const profile = opts.profile ?? 'SESSION';
  const base = join(opts.dir, `session-${Math.random().toString(36).slice(2)}`);
  const keyFile = `${base}.pem`;
  const tokenFile = `${base}.token`;
  writeFileSync(keyFile, session.privateKeyPem, { mode: 0o600 });
  writeFileSync(tokenFile, opts.trailingNewline ? `${token}\n` : token, { mode: 0o600 });
  const configFile = `${base}.config`;
  writeFileSync(
    configFile,
    `[${profile}]\nfingerprint=${session.fingerprint}\nkey_file=${keyFile}\ntenancy=${opts.tenancy}\nregion=${opts.region ?? 'eu-frankfurt-1'}\nsecurity_token_file=${tokenFile}\n`,
  );
  return { configFile, profile, token, tokenFile, session };
}
