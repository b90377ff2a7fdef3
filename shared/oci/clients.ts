// OCI SDK clients, created lazily: each service package is imported on first use so the function
// entry stays small. Endpoint: an explicit option, else HWAUDIT_OCI_ENDPOINT_<SERVICE>, else
// HWAUDIT_OCI_ENDPOINT (tests, private endpoints), else the region (HWAUDIT_OCI_REGION or the
// provider's). Clients are built with SDK retries and the SDK circuit breaker OFF: callers own
// retries (bounded, jittered, in milliseconds, and for PutMessages per failed entry), see
// shared/emit/stream-sink.ts and docs/oci-integrations.md.
import type { AuditClient } from 'oci-audit';
import type { AuthenticationDetailsProvider, ClientConfiguration } from 'oci-common';
import type { IdentityClient } from 'oci-identity';
import type { IdentityDomainsClient } from 'oci-identitydomains';
import type { LogSearchClient } from 'oci-loggingsearch';
import type { DbSystemClient, ReplicasClient } from 'oci-mysql';
import type { ObjectStorageClient } from 'oci-objectstorage';
import type { NotificationDataPlaneClient } from 'oci-ons';
import type { SecretsClient } from 'oci-secrets';
import type { StreamClient } from 'oci-streaming';
import { AuditError } from '../errors.js';
import type { OciEnvVar } from './auth.js';

export const OCI_SERVICES = [
  'streaming',
  'notifications',
  'objectstorage',
  'audit',
  'loggingsearch',
  'secrets',
  'identity',
  'identitydomains',
  'mysql',
  'mysqlreplicas',
] as const;
export type OciService = (typeof OCI_SERVICES)[number];
/** Services called without an SDK client: IAM's auth service refreshes session tokens. */
export type OciEndpointName = OciService | 'auth';

export interface OciClientTypes {
  streaming: StreamClient;
  notifications: NotificationDataPlaneClient;
  objectstorage: ObjectStorageClient;
  audit: AuditClient;
  loggingsearch: LogSearchClient;
  secrets: SecretsClient;
  identity: IdentityClient;
  /** One per identity domain: its endpoint is the domain's URL (ListDomains), never an override. */
  identitydomains: IdentityDomainsClient;
  mysql: DbSystemClient;
  /** The MySQL service's read replicas API: the same endpoint as `mysql`. */
  mysqlreplicas: ReplicasClient;
}

/** Services that share another's endpoint; identity domains are reached at each domain's own URL. */
const ENDPOINT_OF: Partial<Record<OciService, OciService | null>> = {
  mysqlreplicas: 'mysql',
  identitydomains: null,
};

export const OCI_CLIENT_ENV_VARS: readonly OciEnvVar[] = [
  {
    name: 'HWAUDIT_OCI_REGION',
    default: "(the auth provider's region)",
    description: 'Region id for service endpoints, e.g. eu-frankfurt-1.',
  },
  {
    name: 'HWAUDIT_OCI_ENDPOINT',
    default: '(none)',
    description:
      'One base URL for every OCI service (a local emulator or a proxy). Per-service variables win.',
  },
  ...OCI_SERVICES.filter((s) => ENDPOINT_OF[s] === undefined).map((s) => ({
    name: endpointVariable(s),
    default: '(none)',
    description:
      s === 'streaming'
        ? "The stream pool's messages endpoint (Stream.messagesEndpoint). Required for Streaming: the data plane has no regional default."
        : `Base URL of the ${s} service (private endpoint or emulator), without the API version path.`,
  })),
  {
    name: endpointVariable('auth'),
    default: "(the region's auth service)",
    description: "Base URL of IAM's auth service, which refreshes session tokens (emulator, proxy).",
  },
];

type Env = Readonly<Record<string, string | undefined>>;

export function endpointVariable(service: OciEndpointName): string {
  return `HWAUDIT_OCI_ENDPOINT_${service.toUpperCase()}`;
}

/** The endpoint override for a service, validated; undefined when none is set. */
export function ociEndpointOverride(service: OciEndpointName, env: Env = process.env): string | undefined {
  const own = service === 'auth' ? undefined : ENDPOINT_OF[service];
  if (own === null) return undefined;
  for (const name of [endpointVariable(own ?? service), 'HWAUDIT_OCI_ENDPOINT']) {
    const raw = env[name]?.trim();
    if (raw) return normalizeEndpoint(raw, name);
  }
  return undefined;
}

function normalizeEndpoint(raw: string, source: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (error) {
    throw new AuditError('CONFIG_INVALID', `${source}: not a URL`, {
      details: { variable: source },
      cause: error,
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AuditError('CONFIG_INVALID', `${source}: expected an http(s) URL`, {
      details: { variable: source },
    });
  }
  if (url.username || url.password) {
    throw new AuditError('CONFIG_INVALID', `${source}: credentials in the URL are not allowed`, {
      details: { variable: source },
    });
  }
  // The SDK appends the API version (e.g. /20180418) to what it is given.
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export interface OciClientOptions {
  auth: AuthenticationDetailsProvider;
  /** Explicit endpoint; wins over the environment. */
  endpoint?: string;
  /** Region id; wins over HWAUDIT_OCI_REGION and the provider's region. */
  regionId?: string;
  env?: Env;
  /**
   * SDK-level retries. Default: none (the caller retries). Pass e.g. `'sdk-default'` for the
   * SDK's 8 attempts with up to 30 s jittered backoff on reads that have no retry loop of their own.
   */
  sdkRetries?: 'none' | 'sdk-default';
}

/** What the SDK's retrier writes to console.warn for every failed call (its error as "[object Object]"). */
const SDK_RETRIER_WARNING =
  /^(All retry attempts have exhausted|Request cannot be retried|Request failed with Exception)/;
let retrierQuiet = false;

/**
 * Drops the SDK retrier's warnings: they went to stderr, among the CLI's messages and into the
 * function's JSON log, once per failed call, saying nothing; the callers report failures
 * themselves (callWithRetry). Every other console.warn passes.
 */
function quietSdkRetrier(): void {
  if (retrierQuiet) return;
  retrierQuiet = true;
  // biome-ignore lint/suspicious/noConsole: the SDK's console.warn is filtered, not used.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && SDK_RETRIER_WARNING.test(args[0])) return;
    warn.apply(console, args);
  };
}

/** Creates an SDK client for a service, importing its package on first use. */
export async function createOciClient<S extends OciService>(
  service: S,
  opts: OciClientOptions,
): Promise<OciClientTypes[S]> {
  const env = opts.env ?? process.env;
  const common = await import('oci-common');
  quietSdkRetrier();
  const config: ClientConfiguration = {
    retryConfiguration:
      opts.sdkRetries === 'sdk-default'
        ? common.OciSdkDefaultRetryConfiguration
        : common.NoRetryConfigurationDetails,
    circuitBreaker: new common.CircuitBreaker({ disableClientCircuitBreaker: true }),
  };
  const params = { authenticationDetailsProvider: opts.auth };
  const client = await construct(service, params, config);

  const endpoint =
    opts.endpoint !== undefined
      ? normalizeEndpoint(opts.endpoint, 'endpoint')
      : ociEndpointOverride(service, env);
  if (endpoint !== undefined) {
    client.endpoint = endpoint;
  } else if (service === 'streaming') {
    throw new AuditError(
      'CONFIG_INVALID',
      `${endpointVariable('streaming')}: the stream pool's messages endpoint is required`,
      {
        details: { variable: endpointVariable('streaming') },
      },
    );
  } else {
    const regionId = opts.regionId ?? env.HWAUDIT_OCI_REGION?.trim();
    if (regionId) (client as { regionId: string }).regionId = regionId;
    else if (!client.endpoint) {
      throw new AuditError(
        'CONFIG_INVALID',
        `no region for ${service}: set HWAUDIT_OCI_REGION or a region in the OCI profile`,
        {
          details: { service },
        },
      );
    }
  }
  return client as OciClientTypes[S];
}

type AnyClient = OciClientTypes[OciService];
type Params = { authenticationDetailsProvider: AuthenticationDetailsProvider };

async function construct(
  service: OciService,
  params: Params,
  config: ClientConfiguration,
): Promise<AnyClient> {
  switch (service) {
    case 'streaming':
      return new (await import('oci-streaming')).StreamClient(params, config);
    case 'notifications':
      return new (await import('oci-ons')).NotificationDataPlaneClient(params, config);
    case 'objectstorage':
      return new (await import('oci-objectstorage')).ObjectStorageClient(params, config);
    case 'audit':
      return new (await import('oci-audit')).AuditClient(params, config);
    case 'loggingsearch':
      return new (await import('oci-loggingsearch')).LogSearchClient(params, config);
    case 'secrets':
      return new (await import('oci-secrets')).SecretsClient(params, config);
    case 'identity':
      return new (await import('oci-identity')).IdentityClient(params, config);
    case 'identitydomains':
      return new (await import('oci-identitydomains')).IdentityDomainsClient(params, config);
    case 'mysql':
      return new (await import('oci-mysql')).DbSystemClient(params, config);
    case 'mysqlreplicas':
      return new (await import('oci-mysql')).ReplicasClient(params, config);
  }
}

/** Bounded retries with exponential backoff and jitter, in milliseconds (tests inject tiny delays). */
export interface RetryPolicy {
  /** Total attempts including the first (>= 1). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** [0, 1); injectable for deterministic tests. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 250, maxDelayMs: 8_000 };

export const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Delay before retry number `retry` (0-based): "equal jitter", half fixed, half random. */
export function backoffDelayMs(policy: RetryPolicy, retry: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry, 30));
  const random = policy.random ?? Math.random;
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** What an SDK call failure tells us, without its message (which may quote request data). */
export interface OciFailure {
  status: number | null;
  code: string | null;
  retryable: boolean;
  /** Without a status (no answer): the host the request went to, when the SDK says. */
  host?: string;
}

/** 429, 5xx, 409 IncorrectState and transport errors (no status) are worth retrying. */
export function classifyOciError(error: unknown): OciFailure {
  const e = (error ?? {}) as {
    statusCode?: unknown;
    serviceCode?: unknown;
    code?: unknown;
    requestEndpoint?: unknown;
  };
  const status = typeof e.statusCode === 'number' && e.statusCode > 0 ? e.statusCode : null;
  const code = typeof e.serviceCode === 'string' ? e.serviceCode : typeof e.code === 'string' ? e.code : null;
  if (status === null) {
    const host = requestHost(e.requestEndpoint);
    return host === undefined ? { status, code, retryable: true } : { status, code, retryable: true, host };
  }
  const retryable = status === 429 || status >= 500 || (status === 409 && code === 'IncorrectState');
  return { status, code, retryable };
}

/** The host of the SDK's `requestEndpoint` ("GET https://host/path?query"): never the path or query. */
function requestHost(endpoint: unknown): string | undefined {
  if (typeof endpoint !== 'string') return undefined;
  const url = endpoint.split(' ').find((part) => /^https?:\/\//.test(part));
  if (url === undefined) return undefined;
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

/**
 * A failure in a message: `status 404, NotAuthorizedOrNotFound`, or `no answer from HOST` for
 * one that got no answer (network, DNS, TLS, or an endpoint override that points nowhere).
 */
export function describeOciFailure(failure: OciFailure | null): string {
  if (failure === null || failure.status === null)
    return `no answer from ${failure?.host ?? 'the service'}${failure?.code ? ` (${failure.code})` : ''}`;
  return `status ${failure.status}${failure.code ? `, ${failure.code}` : ''}`;
}

/**
 * Runs `call` until it succeeds, a non-retryable error occurs, or the attempts are used up;
 * then throws AuditError `code` (OCI_REQUEST_FAILED by default) naming the operation.
 */
export async function callWithRetry<T>(
  operation: string,
  call: () => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  code: 'OCI_REQUEST_FAILED' | 'SINK_FAILED' = 'OCI_REQUEST_FAILED',
): Promise<T> {
  const sleep = policy.sleep ?? sleepMs;
  const attempts = Math.max(1, policy.maxAttempts);
  let last: OciFailure = { status: null, code: null, retryable: true };
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(backoffDelayMs(policy, attempt - 1));
    try {
      return await call();
    } catch (error) {
      lastError = error;
      last = classifyOciError(error);
      if (!last.retryable) break;
    }
  }
  throw new AuditError(
    code,
    last.status === null
      ? `${operation} failed: ${describeOciFailure(last)}`
      : `${operation} failed (${describeOciFailure(last)})`,
    {
      details: { operation, status: last.status, serviceCode: last.code },
      cause: lastError,
    },
  );
}
