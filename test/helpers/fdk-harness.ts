// Runs dist/func.cjs the way Fn does: FN_FORMAT=http-stream,
// FN_LISTENER=unix:<dir>/lsnr.sock, wait for the FDK's symlink, then POST /call with Fn-Call-Id,
// Fn-Deadline (RFC 3339) and Content-Type over the unix socket. Also builds realistic payloads:
// Connector Hub batches from Logging (CloudEvents 1.0) and Streaming (base64 collector records),
// and the resource principal environment OCI Functions gives a container (RPST v2.2).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../schemas/config.js';
import { baseConfig, DB, GROUPS, USERS } from '../../shared/detect/timeline.js';
import { craftSecurityToken, generateTestKeyPair, type TestKeyPair } from '../oci-endpoint/signature.js';
import { bundlePath } from './bundle.js';

export type FnResponse = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
};

export type CallOptions = {
  /** Fn-Deadline; default 60 s from now. */
  deadline?: Date;
  contentType?: string;
  callId?: string;
};

export type FnProcess = {
  readonly dir: string;
  readonly socket: string;
  /** Milliseconds from spawn to the listener's symlink appearing (the FDK is ready). */
  readonly readyMs: number;
  readonly pid: number;
  call(body: string | Buffer, opts?: CallOptions): Promise<FnResponse>;
  alive(): boolean;
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
};

export type StartOptions = {
  env: Record<string, string>;
  /** Folder for the socket (a fresh temporary folder by default). */
  dir?: string;
  readyTimeoutMs?: number;
};

const created: string[] = [];

/** A fresh folder under the system temp folder; removeTempDirs() deletes every one made. */
export function tempDir(prefix = 'hwaudit-fn-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Spawns `node dist/func.cjs` with only the Fn contract variables and `env` set. */
export async function startFunction(opts: StartOptions): Promise<FnProcess> {
  const bundle = bundlePath('func');
  const dir = opts.dir ?? tempDir();
  const socket = join(dir, 'lsnr.sock');
  const started = performance.now();
  const child = spawn(process.execPath, [bundle], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      TZ: 'UTC',
      FN_FORMAT: 'http-stream',
      FN_LISTENER: `unix:${socket}`,
      FN_APP_NAME: 'heatwave-audit',
      FN_FN_NAME: 'heatwave-iam-audit',
      FN_MEMORY: '512',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const readyMs = await waitForSocket(child, socket, started, opts.readyTimeoutMs ?? 10_000, () => err);

  return {
    dir,
    socket,
    readyMs,
    pid: child.pid!,
    call: (body, callOpts = {}) => post(socket, body, callOpts),
    alive: () => child.exitCode === null && child.signalCode === null,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function waitForSocket(
  child: ChildProcess,
  socket: string,
  started: number,
  timeoutMs: number,
  stderr: () => string,
): Promise<number> {
  for (;;) {
    if (isSymlink(socket)) return performance.now() - started;
    if (child.exitCode !== null)
      throw new Error(`function exited with ${child.exitCode} before listening: ${stderr()}`);
    if (performance.now() - started > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`function not listening after ${timeoutMs} ms: ${stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function post(socket: string, body: string | Buffer, opts: CallOptions): Promise<FnResponse> {
  const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const deadline = opts.deadline ?? new Date(Date.now() + 60_000);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        method: 'POST',
        path: '/call',
        headers: {
          'Fn-Call-Id': opts.callId ?? `01${randomUUID().replaceAll('-', '').toUpperCase().slice(0, 24)}`,
          'Fn-Deadline': deadline.toISOString(),
          'Content-Type': opts.contentType ?? 'application/json',
          'Content-Length': String(payload.length),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------
// Resource principal

export type ResourcePrincipal = {
  /** The OCI_RESOURCE_PRINCIPAL_* variables, as OCI Functions sets them (files for the token and key). */
  env: Record<string, string>;
  rpst: string;
};

/**
 * The resource principal of a function, as the local endpoint accepts it: an RPST (v2.2) signed by
 * `issuer` (start the endpoint with `tokenIssuerPublicKeyPem: issuer.publicKeyPem`) naming a fresh
 * session key, both written to files in `dir` like the ones Functions mounts.
 */
export function resourcePrincipal(opts: {
  issuer: TestKeyPair;
  tenancy: string;
  dir: string;
  region?: string;
}): ResourcePrincipal {
  const session = generateTestKeyPair();
  const rpst = craftSecurityToken({
    issuerPrivateKeyPem: opts.issuer.privateKeyPem,
    sessionPublicKeyPem: session.publicKeyPem,
    subject: 'ocid1.fnfunc.oc1..heatwaveiamaudit',
    tenancy: opts.tenancy,
    expiresAt: new Date(Date.now() + 3_600_000),
    claims: {
      res_tenant: opts.tenancy,
      res_compartment: 'ocid1.compartment.oc1..security',
      res_type: 'fnfunc',
    },
  });
  const rpstFile = join(opts.dir, 'rpst');
  const pemFile = join(opts.dir, 'rp-private.pem');
  writeFileSync(rpstFile, rpst, { mode: 0o600 });
  writeFileSync(pemFile, session.privateKeyPem, { mode: 0o600 });
  return {
    rpst,
    env: {
      OCI_RESOURCE_PRINCIPAL_VERSION: '2.2',
      OCI_RESOURCE_PRINCIPAL_RPST: rpstFile,
      OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM: pemFile,
      OCI_RESOURCE_PRINCIPAL_REGION: opts.region ?? 'us-ashburn-1',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Payloads

/** The standard test fleet (baseConfig) with a short lateness, as HWAUDIT_CONFIG text. */
export function fleetConfigJson(overrides: Partial<ConfigInput> = {}): string {
  return JSON.stringify({ ...baseConfig(), lateness: 'PT1M', ...overrides });
}

export { DB, GROUPS, USERS };

const TENANCY = 'ocid1.tenancy.oc1..example';
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** Whole seconds, so MySQL timestamps (second precision) and CloudEvents times agree. */
export function wholeSecond(ts = Date.now()): number {
  return Math.floor(ts / 1000) * 1000;
}

export const ago = {
  hours: (n: number, from: number) => from - n * HOUR,
  minutes: (n: number, from: number) => from - n * MINUTE,
};

function iamData(eventName: string, at: number, fields: Record<string, unknown>): Record<string, unknown> {
  return {
    eventGroupingId: null,
    eventName,
    compartmentId: TENANCY,
    compartmentName: 'example',
    resourceName: null,
    resourceId: null,
    availabilityDomain: 'AD1',
    freeformTags: null,
    definedTags: null,
    identity: {
      principalName: 'iam-admin@example.com',
      principalId: 'ocid1.user.oc1..iamadmin',
      authType: 'natv',
      callerName: null,
      callerId: null,
      tenantId: TENANCY,
      ipAddress: '198.51.100.23',
      credentials: null,
      userAgent: 'Oracle-JavaSDK/3.44.0',
      consoleSessionId: null,
    },
    request: {
      id: `req-${eventName}-${at}`,
      path: '/20160918/userGroupMemberships/',
      action: 'POST',
      parameters: {},
      headers: {},
    },
    response: {
      status: '200',
      responseTime: new Date(at + 40).toISOString(),
      headers: {},
      payload: null,
      message: `${eventName} succeeded`,
    },
    stateChange: null,
    additionalDetails: {},
    ...fields,
  };
}

/** A group membership added or removed: the membership's state before and after. */
function membershipEvent(
  action: 'AddUserToGroup' | 'RemoveUserFromGroup',
  s: { id: string; at: number },
  membership: string,
  stateChange: { previous: unknown; current: unknown },
): Record<string, unknown> {
  return cloudEvent(
    `com.oraclecloud.identityControlPlane.${action}`,
    s.id,
    s.at,
    iamData(action, s.at, { resourceId: membership, stateChange }),
  );
}

/** A CloudEvents 1.0 record as the `_Audit` log group delivers it through Connector Hub. */
function cloudEvent(
  type: string,
  id: string,
  at: number,
  data: Record<string, unknown>,
): Record<string, unknown> {
  return {
    specversion: '1.0',
    type,
    id,
    time: new Date(at).toISOString(),
    source: '',
    dataschema: '2.0',
    datacontenttype: 'application/json',
    oracle: {
      compartmentid: TENANCY,
      ingestedtime: new Date(at + 21_000).toISOString(),
      loggroupid: '_Audit',
      tenantid: TENANCY,
    },
    data,
  };
}

export const oci = {
  /** An object read in another service: in the same `_Audit`, concerning nothing the pipeline reads. */
  getObject(s: { id: string; at: number }): Record<string, unknown> {
    return cloudEvent(
      'com.oraclecloud.objectstorage.GetObject',
      s.id,
      s.at,
      iamData('GetObject', s.at, {
        request: {
          id: `req-${s.id}`,
          path: '/n/example/b/reports/o/daily.csv',
          action: 'GET',
          parameters: {},
          headers: {},
        },
      }),
    );
  },
  /** Removes the membership that `addUserToGroup` with id `added` created. */
  removeUserFromGroup(s: {
    id: string;
    added: string;
    at: number;
    user: string;
    group: string;
  }): Record<string, unknown> {
    const membership = `ocid1.groupmembership.oc1..${s.added}`;
    return membershipEvent('RemoveUserFromGroup', s, membership, {
      previous: { compartmentId: TENANCY, id: membership, userId: s.user, groupId: s.group },
      current: null,
    });
  },
  addUserToGroup(s: { id: string; at: number; user: string; group: string }): Record<string, unknown> {
    const membership = `ocid1.groupmembership.oc1..${s.id}`;
    return membershipEvent('AddUserToGroup', s, membership, {
      previous: null,
      current: {
        compartmentId: TENANCY,
        id: membership,
        userId: s.user,
        groupId: s.group,
        lifecycleState: 'ACTIVE',
        timeCreated: new Date(s.at).toISOString(),
      },
    });
  },
  interactiveLogin(s: {
    id: string;
    at: number;
    user: string;
    name: string;
    ip: string;
    /** The second factor reported in `additionalDetails.ssoAuthFactor`, if any. */
    mfa?: string;
  }): Record<string, unknown> {
    return cloudEvent(
      'com.oraclecloud.IdentitySignOn.InteractiveLogin',
      s.id,
      s.at,
      iamData('InteractiveLogin', s.at, {
        resourceName: s.name,
        resourceId: s.user,
        identity: {
          principalName: s.name,
          principalId: s.user,
          authType: 'natv',
          tenantId: TENANCY,
          ipAddress: s.ip,
          userAgent: 'Mozilla/5.0',
        },
        request: {
          id: `req-login-${s.at}`,
          path: '/v1/authentication/login',
          action: 'POST',
          parameters: {},
          headers: {},
        },
        ...(s.mfa ? { additionalDetails: { ssoAuthFactor: s.mfa } } : {}),
      }),
    );
  },
};

function mysqlTimestamp(ts: number): string {
  return new Date(ts).toISOString().slice(0, 19).replace('T', ' ');
}

type Conn = {
  at: number;
  id: number;
  conn: number;
  account: string;
  user: string;
  ip: string;
  proxy?: boolean;
};

export const mysql = {
  connect(s: Conn): Record<string, unknown> {
    return {
      timestamp: mysqlTimestamp(s.at),
      id: s.id,
      class: 'connection',
      event: 'connect',
      connection_id: s.conn,
      account: { user: s.account, host: '%' },
      login: { user: s.user, os: '', ip: s.ip, proxy: s.proxy ? "''@'%'" : '' },
      connection_data: { connection_type: 'ssl', status: 0, db: 'orders' },
    };
  },
  /** As `connect` (same key order), with no `db` in its connection data. */
  disconnect(s: Conn): Record<string, unknown> {
    return { ...mysql.connect(s), event: 'disconnect', connection_data: { connection_type: 'ssl' } };
  },
};

/** A collector record around one raw audit event. */
export function collectorRecord(event: Record<string, unknown>): Record<string, unknown> {
  return { source: 'mysql-audit', dbSystemId: DB.id, dbSystemName: DB.name, event };
}

/** A Connector Hub batch from a Streaming source: base64 `value`s, as the function receives it. */
export function streamingBatch(
  records: Record<string, unknown>[],
  firstOffset = 100,
): Record<string, unknown>[] {
  return records.map((record, i) => ({
    stream: 'mysql-audit',
    partition: '0',
    key: Buffer.from(DB.id).toString('base64'),
    value: Buffer.from(JSON.stringify(record)).toString('base64'),
    offset: firstOffset + i,
    timestamp: new Date().toISOString(),
  }));
}
