// Logging in to HeatWave as an OCI IAM principal: the client side of `authentication_oci`
// (`authentication_oci_client`) as a mysql2 auth plugin. The server sends a nonce; the answer is
// JSON with the key's fingerprint, an RSA-SHA256 (PKCS#1 v1.5) signature of the nonce in base64
// and, for a security token, the token. docs/iam-authentication.md has the sources and what stays
// unconfirmed.
//
// The key material comes from the process's OCI authentication (shared/oci/auth.ts): an API key
// profile, a session-token profile (refreshed when it nears its expiry), a resource or instance
// principal. Messages name the principal, the profile and the fingerprint, never a key, a token
// or a signature.
import { createHash, createPrivateKey, createPublicKey, createSign } from 'node:crypto';
import type { AuthenticationDetailsProvider } from 'oci-common';
import { AuditError } from '../errors.js';
import {
  type OciAuthKind,
  type OciAuthSpec,
  ociAuthProvider,
  refreshSessionToken,
  securityTokenClaims,
} from '../oci/auth.js';

export const OCI_CLIENT_PLUGIN = 'authentication_oci_client';

/** A session token with less time left than this is refreshed before a login. */
export const TOKEN_REFRESH_MARGIN_MS = 15 * 60_000;

/** Every reference client refuses larger token files (docs/iam-authentication.md). */
const MAX_TOKEN_BYTES = 10 * 1024;

/** Who logs in: what the server learns from the answer, and what `doctor` reports. */
export type IamPrincipal = {
  kind: OciAuthKind;
  /** The user OCID (API key, session token) or the resource OCID (resource, instance principal). */
  id: string;
  tenancy?: string;
  fingerprint: string;
  /** When the security token expires (token logins only). */
  tokenExpiresAt?: number;
};

const KIND_NAMES: Record<OciAuthKind, string> = {
  'config-file': 'API key of',
  'session-token': 'session token of',
  'resource-principal': 'resource principal',
  'instance-principal': 'instance principal',
};

/** `API key of ocid1.user... (fingerprint ab:cd:...)`, for messages: no key, no token. */
export function describePrincipal(p: IamPrincipal): string {
  return `${KIND_NAMES[p.kind]} ${p.id} (fingerprint ${p.fingerprint})`;
}

/** What one login answers with. */
export type IamCredentials = {
  principal: IamPrincipal;
  privateKeyPem: string;
  passphrase?: string;
  /** The security token, for every kind but an API key. */
  token?: string;
};

/** The key material of an oci-common provider, whichever kind it is. */
export async function iamCredentials(
  kind: OciAuthKind,
  provider: AuthenticationDetailsProvider,
): Promise<IamCredentials> {
  // The key id first: for principals it refreshes the token and, with it, the session key.
  const keyId = await provider.getKeyId();
  const privateKeyPem = provider.getPrivateKey();
  const passphrase = provider.getPassphrase() || undefined;
  const credentials = (principal: IamPrincipal, token?: string): IamCredentials => ({
    principal,
    privateKeyPem,
    ...(passphrase ? { passphrase } : {}),
    ...(token ? { token } : {}),
  });
  if (!keyId.startsWith('ST$')) {
    // An API key: tenancy/user/fingerprint.
    const [tenancy = '', id = '', fingerprint = ''] = keyId.split('/');
    return credentials({ kind, id, tenancy, fingerprint });
  }
  const token = keyId.slice(3).trim();
  const claims = securityTokenClaims(token);
  const named = (provider as Partial<{ getFingerprint(): string }>).getFingerprint?.();
  const principal: IamPrincipal = {
    kind,
    id: claims.subject ?? 'unknown',
    fingerprint: named || keyFingerprint(privateKeyPem, passphrase),
  };
  if (claims.tenancy) principal.tenancy = claims.tenancy;
  if (claims.expiresAt !== undefined) principal.tokenExpiresAt = claims.expiresAt;
  return credentials(principal, token);
}

/** The fingerprint OCI shows for a key: MD5 of the DER public key, hex pairs joined by colons. */
export function keyFingerprint(privateKeyPem: string, passphrase?: string): string {
  const key = createPrivateKey(passphrase ? { key: privateKeyPem, passphrase } : privateKeyPem);
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return (createHash('md5').update(der).digest('hex').match(/../g) ?? []).join(':');
}

/**
 * The answer to a nonce: `{"fingerprint","signature"[,"token"]}`, the token only when there is
 * one (as Connector/Python). A nonce that could be an OCI request signing string is refused: the
 * same key signs OCI API requests, and a server must not get one signed in the guise of a nonce.
 */
export function authResponse(nonce: Buffer, credentials: IamCredentials): Buffer {
  if (nonce.length === 0)
    throw new AuditError('SOURCE_FAILED', 'the server sent an empty authentication_oci nonce');
  if (nonce.includes('(request-target)'))
    throw new AuditError(
      'SOURCE_FAILED',
      'the server sent an authentication_oci nonce that looks like an OCI request to sign: refused',
    );
  if (credentials.token !== undefined && Buffer.byteLength(credentials.token) > MAX_TOKEN_BYTES)
    throw new AuditError('CONFIG_INVALID', 'the security token is larger than 10 KB', {
      details: { auth: credentials.principal.kind },
    });
  const { privateKeyPem, passphrase } = credentials;
  const signature = createSign('RSA-SHA256')
    .update(nonce)
    .sign(passphrase ? { key: privateKeyPem, passphrase } : privateKeyPem, 'base64');
  const answer: Record<string, string> = { fingerprint: credentials.principal.fingerprint, signature };
  if (credentials.token) answer.token = credentials.token;
  return Buffer.from(JSON.stringify(answer), 'utf8');
}

/** mysql2's `authPlugins` entry for one login: answers the nonce of the AuthSwitchRequest. */
export function ociClientAuthPlugin(credentials: IamCredentials) {
  return () => (nonce: Buffer) => authResponse(nonce, credentials);
}

/** The IAM principal the collector logs in as. */
export type IamLogin = {
  /** The key material for the next login: read again each time, a session token refreshed first. */
  credentials(): Promise<IamCredentials>;
};

/**
 * Logins as the principal `spec` names. Profiles (API key, session token) are read again at each
 * login, so a rotated key or a token another tool refreshed is used at once; principals (resource,
 * instance) keep one provider, which refreshes its own token.
 */
export function iamLogin(
  spec: OciAuthSpec,
  opts: {
    env?: Readonly<Record<string, string | undefined>>;
    now?: () => number;
    onWarning?: (message: string) => void;
  } = {},
): IamLogin {
  const now = opts.now ?? Date.now;
  const env = opts.env ?? process.env;
  let principalProvider: Promise<AuthenticationDetailsProvider> | undefined;
  let refreshing: Promise<void> | undefined;
  const read = async () => {
    if (spec.kind === 'config-file' || spec.kind === 'session-token')
      return iamCredentials(spec.kind, await ociAuthProvider(spec));
    principalProvider ??= ociAuthProvider(spec);
    principalProvider.catch(() => {
      principalProvider = undefined;
    });
    return iamCredentials(spec.kind, await principalProvider);
  };
  return {
    async credentials() {
      let credentials = await read();
      const expiresAt = credentials.principal.tokenExpiresAt;
      if (spec.kind !== 'session-token' || expiresAt === undefined) return credentials;
      const profile = { auth: spec.kind, profile: spec.profile ?? 'DEFAULT' };
      if (expiresAt - now() < TOKEN_REFRESH_MARGIN_MS && expiresAt > now()) {
        // One refresh at a time: the instances of a pass log in together.
        refreshing ??= refreshSessionToken(spec, env).finally(() => {
          refreshing = undefined;
        });
        try {
          await refreshing;
          credentials = await read();
        } catch (error) {
          opts.onWarning?.(
            `cannot refresh the session token of profile ${profile.profile} (${error instanceof Error ? error.message : 'error'}); it is used until it expires at ${new Date(expiresAt).toISOString()}`,
          );
        }
      }
      const until = credentials.principal.tokenExpiresAt ?? expiresAt;
      if (until <= now())
        throw new AuditError(
          'CONFIG_INVALID',
          `the session token of profile ${profile.profile} expired at ${new Date(until).toISOString()}: run \`oci session authenticate\` again`,
          { details: profile },
        );
      return credentials;
    },
  };
}
