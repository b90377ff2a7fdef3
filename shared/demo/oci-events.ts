// OCI Audit events for the demo: the `data` object of classic IAM and
// identity-domain events, and the two envelopes around it (CloudEvents 1.0 as Logging exports
// it, ListEvents v2 as the Audit API pages it).
import type { Fleet, Person } from './fleet.js';
import type { Rng } from './rng.js';

type Json = Record<string, unknown>;

/** Where an event is delivered: a Logging export file, an Audit API page, or a late export. */
export type Channel = 'logging' | 'listevents' | 'late';

export type IamRecord = {
  ts: number;
  id: string;
  type: string;
  source: string;
  data: Json;
  channel: Channel;
  /** Processing delay: `oracle.ingestedtime` and the ListEvents page order. */
  ingestDelay: number;
};

/** The caller of an IAM operation. */
export type Actor = { id: string; name: string; ip: string };

const CONSOLE_UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const SDK_UA = 'Oracle-JavaSDK/3.44.0';
const CLASSIC = 'com.oraclecloud.identityControlPlane.';

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Builds IAM records with ids, request ids and delays from one Rng. */
export class IamEvents {
  constructor(
    private readonly fleet: Fleet,
    private readonly rng: Rng,
  ) {}

  private record(
    ts: number,
    operation: string,
    source: string,
    data: Json,
    channel: Channel = 'logging',
  ): IamRecord {
    return {
      ts,
      id: this.rng.uuid(),
      type: operation.includes('.') ? operation : `${CLASSIC}${operation}`,
      source,
      data,
      channel,
      ingestDelay: this.rng.int(20_000, 6 * 60_000),
    };
  }

  private base(ts: number, eventName: string, actor: Actor | null, extra: Json): Json {
    const requestId = `${this.rng.hex(12)}/${this.rng.hex(10).toUpperCase()}/${this.rng.hex(6).toUpperCase()}`;
    return {
      eventGroupingId: null,
      eventName,
      compartmentId: this.fleet.tenancy,
      compartmentName: 'example',
      resourceName: null,
      resourceId: null,
      availabilityDomain: `AD${this.rng.int(1, 3)}`,
      freeformTags: null,
      definedTags: null,
      identity: {
        principalName: actor?.name ?? null,
        principalId: actor?.id ?? null,
        authType: actor ? 'natv' : null,
        callerName: null,
        callerId: null,
        tenantId: this.fleet.tenancy,
        ipAddress: actor?.ip ?? null,
        credentials: null,
        userAgent: actor ? CONSOLE_UA : null,
        consoleSessionId: actor ? `csid${this.rng.hex(20)}` : null,
      },
      request: {
        id: requestId,
        path: '/',
        action: 'POST',
        parameters: {},
        headers: { 'User-Agent': [SDK_UA] },
      },
      response: {
        status: '200',
        responseTime: iso(ts + this.rng.int(5, 90)),
        headers: {},
        payload: null,
        message: `${eventName} succeeded`,
      },
      stateChange: null,
      additionalDetails: {},
      ...extra,
    };
  }

  private request(data: Json, path: string, action: string): void {
    (data.request as Json).path = path;
    (data.request as Json).action = action;
  }

  membershipAdded(
    ts: number,
    actor: Actor,
    user: Person,
    groupId: string,
    membershipId: string,
    channel?: Channel,
  ): IamRecord {
    const data = this.base(ts, 'AddUserToGroup', actor, {
      resourceId: membershipId,
      stateChange: {
        previous: null,
        current: {
          compartmentId: this.fleet.tenancy,
          groupId,
          id: membershipId,
          inactiveStatus: null,
          lifecycleState: 'ACTIVE',
          timeCreated: iso(ts),
          userId: user.id,
        },
      },
    });
    this.request(data, '/20160918/userGroupMemberships/', 'POST');
    return this.record(ts, 'AddUserToGroup', 'identityControlPlane', data, channel);
  }

  membershipRemoved(
    ts: number,
    actor: Actor,
    user: Person,
    groupId: string,
    membershipId: string,
    channel?: Channel,
  ): IamRecord {
    const data = this.base(ts, 'RemoveUserFromGroup', actor, {
      resourceId: membershipId,
      stateChange: {
        previous: {
          compartmentId: this.fleet.tenancy,
          groupId,
          id: membershipId,
          inactiveStatus: null,
          lifecycleState: 'ACTIVE',
          userId: user.id,
        },
        current: null,
      },
    });
    this.request(data, `/20160918/userGroupMemberships/${membershipId}`, 'DELETE');
    return this.record(ts, 'RemoveUserFromGroup', 'identityControlPlane', data, channel);
  }

  private userObject(user: Person): Json {
    return {
      compartmentId: this.fleet.tenancy,
      description: user.display,
      email: user.name,
      id: user.id,
      inactiveStatus: null,
      isMfaActivated: user.signOn === 'domain',
      lifecycleState: 'ACTIVE',
      name: user.name,
    };
  }

  userCreated(ts: number, actor: Actor, user: Person): IamRecord {
    const data = this.base(ts, 'CreateUser', actor, {
      resourceId: user.id,
      resourceName: user.name,
      stateChange: { previous: null, current: this.userObject(user) },
    });
    this.request(data, '/20160918/users/', 'POST');
    return this.record(ts, 'CreateUser', 'identityControlPlane', data);
  }

  /**
   * An administrator deactivates a user in the identity domain (`admin.user.deactivated.success`):
   * how a user is switched off (the classic UpdateUserState can only unblock).
   */
  userDeactivated(ts: number, actor: Actor, user: Person): IamRecord {
    const data = this.base(ts, 'UpdateUser', actor, {
      additionalDetails: {
        eventId: 'admin.user.deactivated.success',
        actorName: actor.name,
        actorId: actor.id,
        actorType: 'User',
        domainName: 'Default',
        adminResourceName: user.name,
        adminResourceId: user.id,
        adminResourceType: 'User',
      },
    });
    (data.identity as Json).principalName = 'IdentityDomains';
    this.request(data, `/admin/v1/Users/${user.id}`, 'PATCH');
    return this.record(ts, 'com.oraclecloud.identityControlPlane.UpdateUser', 'identityControlPlane', data);
  }

  userDeleted(ts: number, actor: Actor, user: Person): IamRecord {
    const data = this.base(ts, 'DeleteUser', actor, {
      resourceId: user.id,
      resourceName: user.name,
      stateChange: { previous: this.userObject(user), current: null },
    });
    this.request(data, `/20160918/users/${user.id}`, 'DELETE');
    return this.record(ts, 'DeleteUser', 'identityControlPlane', data);
  }

  /** An API key put on `user`'s IAM user by `actor` (`actorOf(user)`: self-service). */
  apiKeyUploaded(ts: number, user: Pick<Person, 'id' | 'name'>, actor: Actor): IamRecord {
    const fingerprint = Array.from({ length: 16 }, () => this.rng.hex(2)).join(':');
    const data = this.base(ts, 'UploadApiKey', actor, {
      resourceId: user.id,
      resourceName: user.name,
      stateChange: {
        previous: null,
        current: {
          fingerprint,
          keyId: `${this.fleet.tenancy}/${user.id}/${fingerprint}`,
          keyValue: '-----BEGIN PUBLIC KEY-----\nREDACTED\n-----END PUBLIC KEY-----',
          lifecycleState: 'ACTIVE',
          userId: user.id,
        },
      },
    });
    this.request(data, `/20160918/users/${user.id}/apiKeys/`, 'POST');
    return this.record(ts, 'UploadApiKey', 'identityControlPlane', data);
  }

  /** A DB system given another MySQL configuration, through the MySQL HeatWave API. */
  dbSystemUpdated(
    ts: number,
    actor: Actor,
    db: { id: string; name: string },
    configuration: { from: string; to: string },
  ): IamRecord {
    const state = (configurationId: string) => ({ id: db.id, displayName: db.name, configurationId });
    const data = this.base(ts, 'UpdateDbSystem', actor, {
      resourceId: db.id,
      resourceName: db.name,
      stateChange: { previous: state(configuration.from), current: state(configuration.to) },
    });
    this.request(data, `/20190415/dbSystems/${db.id}`, 'PUT');
    return this.record(ts, 'com.oraclecloud.mysqlaas.UpdateDbSystem', 'mysqlaas', data);
  }

  policyUpdated(
    ts: number,
    actor: Actor,
    policy: { id: string; name: string },
    previous: string[],
    current: string[],
  ): IamRecord {
    const obj = (statements: string[]) => ({
      compartmentId: this.fleet.tenancy,
      description: `${policy.name} policy`,
      id: policy.id,
      lifecycleState: 'ACTIVE',
      name: policy.name,
      statements,
    });
    const data = this.base(ts, 'UpdatePolicy', actor, {
      resourceId: policy.id,
      resourceName: policy.name,
      stateChange: { previous: obj(previous), current: obj(current) },
    });
    this.request(data, `/20160918/policies/${policy.id}`, 'PUT');
    return this.record(ts, 'UpdatePolicy', 'identityControlPlane', data);
  }

  /** Classic console sign-on (`InteractiveLogin`); a failure carries HTTP 401. */
  classicSignOn(ts: number, user: Person, success = true): IamRecord {
    const data = this.base(ts, 'InteractiveLogin', actorOf(user), {
      resourceId: user.id,
      resourceName: user.name,
    });
    this.request(data, '/v1/authentication/login', 'POST');
    (data.identity as Json).credentials = null;
    const response = data.response as Json;
    response.status = success ? '200' : '401';
    response.message = success ? 'InteractiveLogin succeeded' : 'InteractiveLogin failed';
    return this.record(ts, 'com.oraclecloud.IdentitySignOn.InteractiveLogin', 'IdentitySignOn', data);
  }

  /**
   * Identity-domain sign-on (`sso.session.create.success`, or `sso.authentication.failure`).
   * `actorId` carries the user's OCID: the directory in the config knows users by OCID.
   */
  domainSignOn(ts: number, user: Person, success = true): IamRecord {
    const eventId = success ? 'sso.session.create.success' : 'sso.authentication.failure';
    const data = this.base(ts, 'InteractiveLogin', null, {
      additionalDetails: {
        eventId,
        actorName: user.name,
        actorId: user.id,
        actorType: 'User',
        actorDisplayName: user.display,
        clientIp: user.ip,
        domainName: 'Default',
        ssoComments: success ? 'Session created' : 'Authentication failed',
        ssoSessionId: this.rng.hex(32),
        ssoIdentityProvider: 'UserNamePassword',
        ...(success ? { ssoAuthFactor: user.mfa, ssoAuthnLevel: 2 } : {}),
        ssoUserAgent: CONSOLE_UA,
      },
    });
    (data.identity as Json).principalName = 'IdentityDomains';
    (data.identity as Json).ipAddress = user.ip;
    this.request(data, '/sso/v1/user/login', 'POST');
    (data.response as Json).message = null;
    return this.record(
      ts,
      'com.oraclecloud.IdentitySignOn.InteractiveLogin',
      'IdentitySignOn',
      data,
      'listevents',
    );
  }

  /** Events of other services in the same `_Audit` log: read as `other`, never a problem. */
  otherService(ts: number, user: Person): IamRecord {
    const [type, name, path] = this.rng.pick([
      ['com.oraclecloud.computeApi.GetInstance', 'GetInstance', '/20160918/instances/'],
      ['com.oraclecloud.objectstorage.GetObject', 'GetObject', '/n/example/b/reports/o/'],
      ['com.oraclecloud.mysqlaas.GetDbSystem', 'GetDbSystem', '/20190415/dbSystems/'],
      ['com.oraclecloud.identityControlPlane.ListUsers', 'ListUsers', '/20160918/users/'],
    ] as const);
    const data = this.base(ts, name, actorOf(user), {});
    this.request(data, path, 'GET');
    return this.record(ts, type, type.split('.')[2] ?? 'oci', data);
  }
}

export function actorOf(p: Person): Actor {
  return { id: p.id, name: p.name, ip: p.ip };
}

/** Logging (`_Audit`) export / Connector Hub shape. */
export function toCloudEvent(r: IamRecord, tenancy: string): Json {
  return {
    datacontenttype: 'application/json',
    dataschema: '2.0',
    id: r.id,
    oracle: {
      compartmentid: tenancy,
      ingestedtime: iso(r.ts + r.ingestDelay),
      loggroupid: '_Audit',
      tenantid: tenancy,
    },
    source: (r.data.resourceName as string | null) ?? '',
    specversion: '1.0',
    time: iso(r.ts),
    type: r.type,
    data: r.data,
  };
}

/** Audit API `ListEvents` item shape. */
export function toListEvent(r: IamRecord): Json {
  return {
    eventType: r.type,
    cloudEventsVersion: '0.1',
    eventTypeVersion: '2.0',
    source: r.source,
    eventId: r.id,
    eventTime: iso(r.ts),
    contentType: 'application/json',
    data: r.data,
  };
}
