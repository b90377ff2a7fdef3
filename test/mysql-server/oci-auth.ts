// The server side of `authentication_oci` as the client sources describe it
// (docs/iam-authentication.md): switch the client to `authentication_oci_client` with a fresh
// nonce, read its JSON answer (in any of the reference clients' forms), verify the security token
// when there is one (IAM's signature, expiry, the `jwk` claim), verify the RSA-SHA256 signature of
// the nonce with the token's key or with the API key IAM holds for the user and fingerprint, then
// authorize by the account's mapping: the `user` OCID, or the first mapped group the principal is
// a member of (groups and dynamic groups alike).
import { createPublicKey, createVerify, type KeyObject, randomBytes } from 'node:crypto';
import { securityTokenClaims } from '../../shared/oci/auth.js';
import { verifySecurityToken } from '../oci-endpoint/signature.js';
import type { AuthExchange, ClientHello } from './protocol.js';

export const OCI_CLIENT_PLUGIN = 'authentication_oci_client';

/** What the server learns from IAM (through the mysql_dp_auth policy). */
export type IamDirectory = {
  /** The key IAM signs security tokens (UPST, RPST) with. */
  issuerPublicKeyPem: string;
  /** API keys uploaded to users. */
  apiKeys: { tenancy: string; user: string; fingerprint: string; publicKeyPem: string }[];
  /** Groups and dynamic groups of each principal (user or resource OCID). */
  memberships?: Record<string, string[]>;
  now?: () => number;
};

type Mapping = { tenancy?: string; user?: string; group_mapping?: Record<string, string> };

export type OciVerdict = { ok: true; account?: string; principal: string } | { ok: false; message: string };

/** Runs the exchange for an `authentication_oci` account; `account` is the proxied one, if any. */
export async function authenticateOci(
  hello: ClientHello,
  authenticationString: string,
  exchange: AuthExchange,
  iam: IamDirectory,
): Promise<OciVerdict> {
  const denied = (why: string): OciVerdict => ({
    ok: false,
    message: `Access denied for user '${hello.user}'@'127.0.0.1' (authentication_oci: ${why})`,
  });
  const nonce = randomBytes(32);
  const answer = parseAnswer(await exchange.switchTo(OCI_CLIENT_PLUGIN, nonce));
  if (answer === undefined) return denied('malformed response');
  const mapping = JSON.parse(authenticationString) as Mapping;
  const now = (iam.now ?? Date.now)();

  let principal: string;
  let key: KeyObject;
  if (answer.token) {
    const token = verifySecurityToken(answer.token, createPublicKey(iam.issuerPublicKeyPem), now);
    if ('error' in token) return denied(token.error);
    const { tenancy } = securityTokenClaims(answer.token);
    if (mapping.tenancy !== undefined && tenancy !== mapping.tenancy)
      return denied('a token of another tenancy');
    principal = token.principal;
    key = token.key;
  } else {
    // An API key: the account names the user (1-to-1); with a group mapping, any user of the
    // tenancy holding a key with that fingerprint (how HeatWave finds it is not documented).
    const registered = iam.apiKeys.find(
      (k) =>
        k.fingerprint === answer.fingerprint &&
        (mapping.tenancy === undefined || k.tenancy === mapping.tenancy) &&
        (mapping.user === undefined || k.user === mapping.user),
    );
    if (registered === undefined) return denied('no API key with this fingerprint');
    principal = registered.user;
    key = createPublicKey(registered.publicKeyPem);
  }
  const valid = (() => {
    try {
      return createVerify('RSA-SHA256').update(nonce).verify(key, answer.signature, 'base64');
    } catch {
      return false;
    }
  })();
  if (!valid) return denied('the signature does not verify');

  if (mapping.user !== undefined)
    return mapping.user === principal ? { ok: true, principal } : denied('not the mapped user');
  const groups = iam.memberships?.[principal] ?? [];
  const mapped = Object.entries(mapping.group_mapping ?? {}).find(([group]) => groups.includes(group));
  return mapped ? { ok: true, account: mapped[1], principal } : denied('in no mapped group');
}

/** `{"fingerprint","signature"[,"token"]}` with or without spaces, token absent or empty. */
function parseAnswer(raw: Buffer): { fingerprint: string; signature: string; token?: string } | undefined {
  try {
    const v = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    if (typeof v.fingerprint !== 'string' || typeof v.signature !== 'string') return undefined;
    if (v.token !== undefined && typeof v.token !== 'string') return undefined;
    return {
      fingerprint: v.fingerprint,
      signature: v.signature,
      ...(typeof v.token === 'string' && v.token.trim() !== '' ? { token: v.token.trim() } : {}),
    };
  } catch {
    return undefined;
  }
}
