// How the process authenticates to OCI: one factory over oci-common's providers. The spec comes
// from HWAUDIT_OCI_* variables (OCI_AUTH_ENV_VARS, documented in docs/oci-integrations.md).
// oci-common is imported lazily so that loading the function entry does not load the SDK.
// Errors name variables, profiles and paths, never key material or tokens.
import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import type { AuthenticationDetailsProvider, SessionAuthDetailProvider } from 'oci-common';
import { AuditError } from '../errors.js';
import { ociEndpointOverride } from './clients.js';

export const OCI_AUTH_KINDS = [
  'config-file',
  'session-token',
  'resource-principal',
  'instance-principal',
] as const;
export type OciAuthKind = (typeof OCI_AUTH_KINDS)[number];

export type OciAuthSpec =
  /** An API key from an OCI config file profile (`~/.oci/config`, `[DEFAULT]`). */
  | { kind: 'config-file'; configFile?: string; profile?: string }
  /** A profile written by `oci session authenticate` (security_token_file + session key). */
  | { kind: 'session-token'; configFile?: string; profile?: string }
  /** Inside OCI Functions: OCI_RESOURCE_PRINCIPAL_VERSION / _RPST / _PRIVATE_PEM / _REGION. */
  | { kind: 'resource-principal' }
  /** On an OCI compute instance: certificates from the instance metadata service. */
  | { kind: 'instance-principal' };

export type SessionTokenSpec = Extract<OciAuthSpec, { kind: 'session-token' }>;

export type OciEnvVar = { name: string; default: string; description: string };

export const OCI_AUTH_ENV_VARS: readonly OciEnvVar[] = [
  {
    name: 'HWAUDIT_OCI_AUTH',
    default: 'resource-principal when OCI_RESOURCE_PRINCIPAL_VERSION is set, else config-file',
    description: `How to authenticate to OCI: ${OCI_AUTH_KINDS.join(' | ')}.`,
  },
  {
    name: 'HWAUDIT_OCI_CONFIG_FILE',
    default: '~/.oci/config',
    description: 'OCI config file for config-file and session-token.',
  },
  {
    name: 'HWAUDIT_OCI_PROFILE',
    default: 'DEFAULT',
    description: 'Profile in that file (for session-token: the profile `oci session authenticate` wrote).',
  },
];

type Env = Readonly<Record<string, string | undefined>>;

function setting(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** Reads the auth spec from the environment; an unknown HWAUDIT_OCI_AUTH is CONFIG_INVALID. */
export function ociAuthSpecFromEnv(env: Env = process.env): OciAuthSpec {
  const raw = setting(env, 'HWAUDIT_OCI_AUTH');
  const kind = raw ?? (setting(env, 'OCI_RESOURCE_PRINCIPAL_VERSION') ? 'resource-principal' : 'config-file');
  if (!(OCI_AUTH_KINDS as readonly string[]).includes(kind)) {
    throw new AuditError('CONFIG_INVALID', `HWAUDIT_OCI_AUTH: expected one of ${OCI_AUTH_KINDS.join(', ')}`, {
      details: { variable: 'HWAUDIT_OCI_AUTH' },
    });
  }
  if (kind === 'config-file' || kind === 'session-token') {
    const spec: { kind: typeof kind; configFile?: string; profile?: string } = { kind };
    const configFile = setting(env, 'HWAUDIT_OCI_CONFIG_FILE');
    const profile = setting(env, 'HWAUDIT_OCI_PROFILE');
    if (configFile !== undefined) spec.configFile = configFile;
    if (profile !== undefined) spec.profile = profile;
    return spec;
  }
  return { kind: kind as 'resource-principal' | 'instance-principal' };
}

/**
 * The credentials of `spec`, built at the first call and shared by the later ones: a command that
 * stops before its first OCI call never builds them, so a failure to build them cannot outlive it
 * unhandled.
 */
export function lazyOciAuth(spec: OciAuthSpec): () => Promise<AuthenticationDetailsProvider> {
  let auth: Promise<AuthenticationDetailsProvider> | undefined;
  return () => {
    auth ??= ociAuthProvider(spec);
    return auth;
  };
}

/** Builds the oci-common provider for a spec. Failures are CONFIG_INVALID with a log-safe message. */
export async function ociAuthProvider(spec: OciAuthSpec): Promise<AuthenticationDetailsProvider> {
  const common = await import('oci-common');
  const details: Record<string, string> = { auth: spec.kind };
  try {
    switch (spec.kind) {
      case 'config-file': {
        if (spec.profile) details.profile = spec.profile;
        return quietly(
          () => new common.ConfigFileAuthenticationDetailsProvider(spec.configFile, spec.profile),
        );
      }
      case 'session-token': {
        if (spec.profile) details.profile = spec.profile;
        const provider = quietly(() => new common.SessionAuthDetailProvider(spec.configFile, spec.profile));
        const token = provider.sessionToken;
        if (typeof token !== 'string' || token.trim() === '') {
          throw new Error('the profile has no security_token_file (run `oci session authenticate`)');
        }
        // The SDK reads the token file verbatim; a trailing newline would break the keyId header.
        provider.sessionToken = token.trim();
        return provider;
      }
      case 'resource-principal':
        return common.ResourcePrincipalAuthenticationDetailsProvider.builder();
      case 'instance-principal':
        return await new common.InstancePrincipalsAuthenticationDetailsProviderBuilder().build();
    }
  } catch (error) {
    // A profile's failure names the profile and the file, which the SDK's messages do not all do.
    const where =
      spec.kind === 'config-file' || spec.kind === 'session-token'
        ? ` (profile ${spec.profile ?? 'DEFAULT'} of ${spec.configFile ?? '~/.oci/config'})`
        : '';
    throw new AuditError(
      'CONFIG_INVALID',
      `cannot build OCI ${spec.kind} credentials${where}: ${safeReason(error)}`,
      {
        details,
        cause: error,
      },
    );
  }
}

/**
 * Runs a config file read with console.info silenced: the SDK announces a file without a
 * [DEFAULT] section there, on stdout, where the CLI writes alerts.
 */
function quietly<T>(read: () => T): T {
  // biome-ignore lint/suspicious/noConsole: the SDK's console.info is swapped out, not used.
  const info = console.info;
  console.info = () => undefined;
  try {
    return read();
  } finally {
    console.info = info;
  }
}

/**
 * The SDK throws strings and Errors whose text may quote a path: keep the first line without the
 * SDK's "For more info ..." pointers to its documentation, drop PEM/JWT-looking runs.
 */
function safeReason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = (text.split('\n')[0] ?? '').split(/ For more info| See https:/)[0]!;
  return line
    .replace(/-----BEGIN[\s\S]*?-----END[^-]*-----/g, '[redacted key]')
    .replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, '[redacted token]')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 1000);
}

/** The region the provider names (config file `region`, OCI_RESOURCE_PRINCIPAL_REGION, metadata). */
export function providerRegionId(provider: AuthenticationDetailsProvider): string | undefined {
  const p = provider as Partial<{ getRegion(): { regionId: string } | undefined }>;
  try {
    return typeof p.getRegion === 'function' ? p.getRegion()?.regionId : undefined;
  } catch {
    return undefined;
  }
}

/** Who a security token (UPST, RPST) names and until when: its claims, read, not verified. */
export function securityTokenClaims(token: string): {
  subject?: string;
  tenancy?: string;
  expiresAt?: number;
} {
  try {
    const payload = JSON.parse(
      Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'),
    ) as Record<string, unknown>;
    const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const claims: { subject?: string; tenancy?: string; expiresAt?: number } = {};
    const subject = text(payload.sub);
    const tenancy = text(payload.tenant) ?? text(payload.res_tenant);
    if (subject) claims.subject = subject;
    if (tenancy) claims.tenancy = tenancy;
    if (typeof payload.exp === 'number') claims.expiresAt = payload.exp * 1000;
    return claims;
  } catch {
    return {};
  }
}

/**
 * Exchanges a session-token profile's token for a fresh one, as `oci session refresh` does (IAM's
 * refresh call, signed with the session), and writes it to the profile's security_token_file
 * (atomically, mode 0600) so that later runs and the OCI CLI use it too. The address is
 * HWAUDIT_OCI_ENDPOINT_AUTH (or HWAUDIT_OCI_ENDPOINT), else the region's auth service: the SDK's
 * own refreshSessionToken() can call neither a private endpoint nor an emulator, and keeps the
 * token in memory only. IAM refreshes a token only while it is valid.
 */
export async function refreshSessionToken(spec: SessionTokenSpec, env: Env = process.env): Promise<void> {
  const common = await import('oci-common');
  const provider = (await ociAuthProvider(spec)) as SessionAuthDetailProvider;
  const details: Record<string, string | number> = { auth: spec.kind, profile: spec.profile ?? 'DEFAULT' };
  const profile = spec.profile ?? common.ConfigFileReader.DEFAULT_PROFILE_NAME;
  const file = quietly(() =>
    spec.configFile
      ? common.ConfigFileReader.parseFileFromPath(spec.configFile, profile)
      : common.ConfigFileReader.parseDefault(profile),
  );
  const tokenFile = common.ConfigFileReader.expandUserHome(file.get('security_token_file') ?? '');
  const regionId = providerRegionId(provider);
  const domain = regionId ? common.Region.fromRegionId(regionId)?.realm.secondLevelDomain : undefined;
  const base =
    ociEndpointOverride('auth', env) ?? (domain ? `https://auth.${regionId}.${domain}` : undefined);
  if (base === undefined)
    throw new AuditError('CONFIG_INVALID', 'cannot refresh the session token: the profile names no region', {
      details,
    });
  let response: Response;
  try {
    const client = new common.FetchHttpClient(new common.DefaultRequestSigner(provider));
    const request = await common.composeRequest({
      baseEndpoint: base,
      path: '/v1/authentication/refresh',
      method: 'POST',
      defaultHeaders: { 'content-type': 'application/json' },
      bodyContent: JSON.stringify({ currentToken: provider.sessionToken }),
    });
    response = await client.send(request);
  } catch (error) {
    throw new AuditError('OCI_REQUEST_FAILED', `cannot refresh the session token: ${safeReason(error)}`, {
      details,
      cause: error,
    });
  }
  const body = (await response.json().catch(() => ({}))) as { token?: unknown };
  if (!response.ok || typeof body.token !== 'string' || body.token.split('.').length !== 3)
    throw new AuditError(
      'OCI_REQUEST_FAILED',
      `IAM refused to refresh the session token (HTTP ${response.status})`,
      {
        details: { ...details, status: response.status },
      },
    );
  const temporary = `${tokenFile}.${process.pid}.tmp`;
  writeFileSync(temporary, body.token, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, tokenFile);
}
