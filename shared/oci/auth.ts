// How the process authenticates to OCI: one factory over oci-common's providers. The spec comes
// from HWAUDIT_OCI_* variables (OCI_AUTH_ENV_VARS, documented in docs/oci-integrations.md).
// oci-common is imported lazily so that loading the function entry does not load the SDK.
// Errors name variables, profiles and paths, never key material or tokens.
import type { AuthenticationDetailsProvider } from 'oci-common';
import { AuditError } from '../errors.js';

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

/** Builds the oci-common provider for a spec. Failures are CONFIG_INVALID with a log-safe message. */
export async function ociAuthProvider(spec: OciAuthSpec): Promise<AuthenticationDetailsProvider> {
  const common = await import('oci-common');
  const details: Record<string, string> = { auth: spec.kind };
  try {
    switch (spec.kind) {
      case 'config-file': {
        if (spec.profile) details.profile = spec.profile;
        return new common.ConfigFileAuthenticationDetailsProvider(spec.configFile, spec.profile);
      }
      case 'session-token': {
        if (spec.profile) details.profile = spec.profile;
        const provider = new common.SessionAuthDetailProvider(spec.configFile, spec.profile);
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
    throw new AuditError(
      'CONFIG_INVALID',
      `cannot build OCI ${spec.kind} credentials: ${safeReason(error)}`,
      {
        details,
        cause: error,
      },
    );
  }
}

/** The SDK throws strings and Errors whose text may quote a path; keep the first line, drop PEM/JWT-looking runs. */
function safeReason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split('\n')[0] ?? '';
  return line
    .replace(/-----BEGIN[\s\S]*?-----END[^-]*-----/g, '[redacted key]')
    .replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, '[redacted token]')
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
