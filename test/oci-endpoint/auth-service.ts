// IAM's auth service, the one call the OCI CLI's `oci session refresh` (and oci-common's
// SessionAuthDetailProvider.refreshSessionToken) makes: POST /v1/authentication/refresh with
// `{"currentToken": <token>}`, signed with that session (keyId `ST$<token>`, checked by the
// endpoint against the token issuer), answers `{"token": <new token>}`: the same claims and session
// key with a new expiry. An expired token cannot be refreshed (the signature check refuses it).
import { createSign } from 'node:crypto';
import { ociError, type ServiceHandler } from './server.js';

export interface AuthService {
  handler: ServiceHandler;
  /** Tokens issued by refresh, in order. */
  issued: string[];
}

export function authService(opts: { issuerPrivateKeyPem: string; lifetimeMs?: number }): AuthService {
  const issued: string[] = [];
  const handler: ServiceHandler = {
    name: 'auth',
    basePath: '/v1',
    routes: [
      {
        name: 'refresh',
        method: 'POST',
        pattern: '/authentication/refresh',
        handle(req, ctx) {
          const current = (req.body as { currentToken?: unknown } | undefined)?.currentToken;
          if (typeof current !== 'string' || req.keyId !== `ST$${current}`)
            return ociError(
              401,
              'NotAuthenticated',
              'The request is not signed by the session it refreshes.',
            );
          const [header, payload] = current.split('.') as [string, string];
          const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<
            string,
            unknown
          >;
          const now = Math.floor(ctx.now() / 1000);
          const next = Buffer.from(
            JSON.stringify({
              ...claims,
              iat: now,
              exp: now + Math.floor((opts.lifetimeMs ?? 3_600_000) / 1000),
            }),
          ).toString('base64url');
          const input = `${header}.${next}`;
          const signature = createSign('RSA-SHA256')
            .update(input)
            .sign(opts.issuerPrivateKeyPem, 'base64url');
          const token = `${input}.${signature}`;
          issued.push(token);
          return { status: 200, body: { token } };
        },
      },
    ],
  };
  return { handler, issued };
}
