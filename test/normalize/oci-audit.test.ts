import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type IamEvent, IamEventSchema } from '../../schemas/events.js';
import { normalizeOciAudit } from '../../shared/normalize/oci-audit.js';

const TENANCY = 'ocid1.tenancy.oc1..aaaaaaaaexampletenancy7q3k2';
const ADMIN = 'ocid1.user.oc1..aaaaaaaaadminexample4xq2b';
const ALICE = 'ocid1.user.oc1..aaaaaaaaalice5k3j2h7dq4w';
const BOB = 'ocid1.user.oc1..aaaaaaaabob6mz2p4r8tq1v';
const DBA = 'ocid1.group.oc1..aaaaaaaadbadmins2c7w5n';
const MEMBERSHIP = 'ocid1.groupmembership.oc1..aaaaaaaamem1alicedba3f';
const MEMBERSHIP_2 = 'ocid1.groupmembership.oc1..aaaaaaaamem2bobbg8k1';
const DOMAIN_ALICE = '7a1c3e5f9b2d4f6a8c0e1b3d5f7a9c2e';
const DOMAIN_DBA = '4e6a8c0b2d4f6e8a0c2e4b6d8f0a2c4e';

// biome-ignore lint/suspicious/noExplicitAny: samples are mutated freely to build variants
type Json = any;

const cache = new Map<string, Json>();
/** A fresh copy of test/events/oci-audit/<name>.json. */
function sample(name: string): Json {
  let parsed = cache.get(name);
  if (parsed === undefined) {
    parsed = JSON.parse(readFileSync(new URL(`../events/oci-audit/${name}.json`, import.meta.url), 'utf8'));
    cache.set(name, parsed);
  }
  return structuredClone(parsed);
}

/** Normalizes a record that must succeed, checking the result against the canonical schema. */
function normalize(raw: unknown): IamEvent {
  const outcome = normalizeOciAudit(raw, { source: 'test', index: 0 });
  if (!outcome.ok) throw new Error(`unexpected dead letter: ${outcome.dead.message}`);
  expect(IamEventSchema.parse(outcome.value)).toEqual(outcome.value);
  return outcome.value;
}

describe('normalizeOciAudit: envelopes', () => {
  it('normalizes a classic AddUserToGroup from ListEvents', () => {
    expect(normalize(sample('add-user-to-group.listevents'))).toEqual({
      source: 'iam',
      kind: 'membership_added',
      key: '9b7e2f1c-4d3a-4e8b-a1c6-2f5d8e0b7a31',
      time: '2026-11-02T09:15:42.318Z',
      ts: Date.UTC(2026, 10, 2, 9, 15, 42, 318),
      eventType: 'com.oraclecloud.identityControlPlane.AddUserToGroup',
      eventName: 'AddUserToGroup',
      flavor: 'classic',
      tenantId: TENANCY,
      compartmentId: TENANCY,
      actor: { id: ADMIN, name: 'admin@example.com', ip: '198.51.100.23', type: 'natv' },
      user: { id: ALICE },
      group: { id: DBA },
      membershipId: MEMBERSHIP,
      status: '200',
      extraction: {
        'actor.id': 'identity.principalId',
        'actor.name': 'identity.principalName',
        'actor.ip': 'identity.ipAddress',
        'actor.type': 'identity.authType',
        'user.id': 'stateChange.current.userId',
        'group.id': 'stateChange.current.groupId',
        membershipId: 'stateChange.current.id',
      },
    });
  });

  it('reads a record exported by another tool: nested objects as JSON text, "None" for null', () => {
    const exported = sample('add-user-to-group.siem-export');
    expect(typeof exported.data.stateChange).toBe('string');
    expect(normalize(exported)).toEqual(normalize(sample('add-user-to-group.cloudevents')));
    // The same with data itself as text, a numeric status, and a parameter given as one value.
    const flat = sample('add-user-to-group.cloudevents');
    flat.data.response.status = 200;
    flat.data.request.parameters = { groupId: 'ocid1.group.oc1..x' };
    flat.data = JSON.stringify(flat.data);
    expect(normalize(flat)).toMatchObject({ kind: 'membership_added', status: '200', user: { id: ALICE } });
  });

  it('never rejects a record for fields it does not read, whatever their shape', () => {
    const raw = sample('add-user-to-group.cloudevents');
    Object.assign(raw.data, {
      freeformTags: 'None',
      definedTags: ['x'],
      availabilityDomain: 3,
      eventGroupingId: { a: 1 },
      message: 42,
      compartmentName: false,
    });
    Object.assign(raw.data.request, { headers: '{not json', id: 7, action: null });
    Object.assign(raw.data.response, { headers: 'None', responseTime: 1234, message: { m: 1 } });
    Object.assign(raw.data.identity, { userAgent: ['x'], callerName: 5, credentials: {} });
    raw.dataschema = 2;
    raw.source = null;
    const { ingestedTime, ...rest } = normalize(raw);
    const { ingestedTime: _, ...expected } = normalize(sample('add-user-to-group.cloudevents'));
    expect(ingestedTime).toBe('2026-11-02T09:16:03.912Z');
    expect(rest).toEqual(expected);
  });

  it('treats "None" in a field it reads as absent, and refuses JSON text with a prototype key', () => {
    const raw = sample('remove-user-from-group');
    raw.data.identity.principalName = 'None';
    raw.data.stateChange.previous.groupId = 'None';
    const event = normalize(raw);
    expect(event).toMatchObject({ kind: 'membership_removed', actor: { id: ADMIN }, user: { id: ALICE } });
    expect(event.actor.name).toBeUndefined();
    expect(event.group).toBeUndefined();
    const polluted = sample('add-user-to-group.cloudevents');
    polluted.data.stateChange = '{"current": {"__proto__": {"admin": true}}}';
    const outcome = normalizeOciAudit(polluted, { source: 'test', index: 0 });
    expect(outcome).toMatchObject({
      ok: false,
      dead: { code: 'SCHEMA_INVALID', path: ['data', 'stateChange'] },
    });
  });

  it('reads a spelling of null with blanks around it as absent, and a longer text as it is', () => {
    for (const blank of [' ', '\t', '\n', '\u00a0', '\u2003', '\ufeff']) {
      const raw = sample('remove-user-from-group');
      raw.data.identity.principalName = `${blank}None`;
      raw.data.stateChange.previous.groupId = `nil${blank}`;
      const event = normalize(raw);
      expect(event.actor.name, JSON.stringify(blank)).toBeUndefined();
      expect(event.group, JSON.stringify(blank)).toBeUndefined();
    }
    const raw = sample('remove-user-from-group');
    raw.data.identity.principalName = 'None of them';
    raw.data.stateChange.previous.groupId = 'nil\u00a0x';
    const event = normalize(raw);
    expect(event.actor.name).toBe('None of them');
    expect(event.group?.id).toBe('nil\u00a0x');
  });

  it('normalizes the same event identically from CloudEvents, adding only ingestedTime', () => {
    const fromListEvents = normalize(sample('add-user-to-group.listevents'));
    const { ingestedTime, ...fromCloudEvents } = normalize(sample('add-user-to-group.cloudevents'));
    expect(ingestedTime).toBe('2026-11-02T09:16:03.912Z');
    expect(fromListEvents.ingestedTime).toBeUndefined();
    expect(fromCloudEvents).toEqual(fromListEvents);
  });

  it('prefers specversion when a record carries both envelope markers', () => {
    const raw = sample('add-user-to-group.cloudevents');
    raw.eventType = 'com.oraclecloud.ComputeApi.GetInstance';
    expect(normalize(raw).kind).toBe('membership_added');
  });

  it('accepts Date event times (OCI SDK objects) and offsets, rendering UTC with milliseconds', () => {
    const withDate = sample('add-user-to-group.listevents');
    withDate.eventTime = new Date('2026-11-02T09:15:42.318Z');
    expect(normalize(withDate).time).toBe('2026-11-02T09:15:42.318Z');
    const withOffset = sample('add-user-to-group.cloudevents');
    withOffset.time = '2026-11-02T10:15:42+01:00';
    expect(normalize(withOffset)).toMatchObject({
      time: '2026-11-02T09:15:42.000Z',
      ts: Date.UTC(2026, 10, 2, 9, 15, 42),
    });
  });

  it('compares classic event types case-insensitively', () => {
    const raw = sample('add-user-to-group.listevents');
    raw.eventType = 'com.oraclecloud.identitycontrolplane.addusertogroup';
    expect(normalize(raw)).toMatchObject({ kind: 'membership_added', eventType: raw.eventType });
  });
});

describe('normalizeOciAudit: classic membership extraction', () => {
  it('takes a removal from stateChange.previous and the membership from it', () => {
    const event = normalize(sample('remove-user-from-group'));
    expect(event).toMatchObject({ kind: 'membership_removed', user: { id: ALICE }, group: { id: DBA } });
    expect(event.membershipId).toBe(MEMBERSHIP);
    expect(event.extraction).toMatchObject({
      'user.id': 'stateChange.previous.userId',
      'group.id': 'stateChange.previous.groupId',
      membershipId: 'stateChange.previous.id',
    });
  });

  it('leaves user and group unset when a removal names only the membership OCID (request path)', () => {
    const event = normalize(sample('remove-user-from-group.membership-only'));
    expect(event.kind).toBe('membership_removed');
    expect(event.membershipId).toBe(MEMBERSHIP_2);
    expect(event.user).toBeUndefined();
    expect(event.group).toBeUndefined();
    expect(event.extraction.membershipId).toBe('request.path');
  });

  it('falls back to a membership resourceId when the path carries no id', () => {
    const raw = sample('remove-user-from-group.membership-only');
    raw.data.request.path = '/20160918/userGroupMemberships/';
    const event = normalize(raw);
    expect(event.membershipId).toBe(MEMBERSHIP_2);
    expect(event.extraction.membershipId).toBe('resourceId');
  });

  it('uses request parameters when there is no stateChange', () => {
    const raw = sample('add-user-to-group.listevents');
    raw.data.stateChange = null;
    raw.data.request.parameters = { userId: [ALICE], groupId: [DBA] };
    const event = normalize(raw);
    expect(event).toMatchObject({ user: { id: ALICE }, group: { id: DBA }, membershipId: MEMBERSHIP });
    expect(event.extraction).toMatchObject({
      'user.id': 'request.parameters.userId',
      'group.id': 'request.parameters.groupId',
      membershipId: 'resourceId',
    });
  });

  it('reads snake_case stateChange fields and a group id from the request path', () => {
    const raw = sample('add-user-to-group.listevents');
    raw.data.stateChange = { previous: null, current: { user_id: ALICE } };
    raw.data.request.path = `/20160918/groups/${DBA}/members/`;
    const event = normalize(raw);
    expect(event).toMatchObject({ user: { id: ALICE }, group: { id: DBA } });
    expect(event.extraction).toMatchObject({
      'user.id': 'stateChange.current.user_id',
      'group.id': 'request.path',
    });
  });

  it('prefers stateChange over request parameters', () => {
    const raw = sample('add-user-to-group.listevents');
    raw.data.request.parameters = { userId: [BOB] };
    expect(normalize(raw).user).toEqual({ id: ALICE });
  });

  it('maps a failed (404) AddUserToGroup to other, keeping the status', () => {
    const event = normalize(sample('add-user-to-group.404'));
    expect(event).toMatchObject({ kind: 'other', status: '404', flavor: 'classic' });
    expect(event.eventType).toBe('com.oraclecloud.identityControlPlane.AddUserToGroup');
  });
});

describe('normalizeOciAudit: identity-domain events', () => {
  it('reads a member added from adminResource (group) and adminRefResource (user), not from the type', () => {
    const event = normalize(sample('domain.add-member'));
    expect(event).toMatchObject({
      kind: 'membership_added',
      flavor: 'identity-domain',
      eventType: 'admin.group.add.member.success',
      group: { id: DOMAIN_DBA, name: 'DBAdmins' },
      user: { id: DOMAIN_ALICE, name: 'alice@example.com' },
      actor: {
        id: '1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a',
        name: 'admin@example.com',
        ip: '198.51.100.23',
        type: 'User',
      },
    });
    expect(event.extraction).toMatchObject({
      'group.id': 'additionalDetails.adminResourceId',
      'group.name': 'additionalDetails.adminResourceName',
      'user.id': 'additionalDetails.adminRefResourceId',
      'user.name': 'additionalDetails.adminRefResourceName',
      'actor.name': 'additionalDetails.actorName',
      'domain.id': 'additionalDetails.domainOcid',
    });
    // Group names are unique only within a domain: the event says which one.
    expect(event.domain).toEqual({ id: 'ocid1.domain.oc1..aaaaaaaadefaultdomain3k9', name: 'Default' });
  });

  it('reads a member removed', () => {
    expect(normalize(sample('domain.remove-member'))).toMatchObject({
      kind: 'membership_removed',
      group: { id: DOMAIN_DBA, name: 'DBAdmins' },
      user: { id: DOMAIN_ALICE, name: 'alice@example.com' },
    });
  });

  it('reads a sign-on with its MFA factor, session and client IP; the user is who signed on', () => {
    const event = normalize(sample('domain.signon-mfa'));
    expect(event).toMatchObject({
      kind: 'signon_success',
      flavor: 'identity-domain',
      eventType: 'sso.session.create.success',
      user: { id: DOMAIN_ALICE, name: 'alice@example.com' },
      signOn: {
        success: true,
        ip: '203.0.113.54',
        mfaFactor: 'TOTP',
        sessionId: 'a3f9c1e7b5d24f6e8a0c2b4d6f8e1a3c',
      },
    });
    expect(event.extraction['signOn.mfaFactor']).toBe('additionalDetails.ssoAuthFactor');
  });

  it('maps sso.authentication.failure to signon_failure', () => {
    const raw = sample('domain.signon-mfa');
    raw.data.additionalDetails.eventId = 'sso.authentication.failure';
    expect(normalize(raw)).toMatchObject({ kind: 'signon_failure', signOn: { success: false } });
  });

  it('keeps an MFA factor step as other, with its user', () => {
    const raw = sample('domain.signon-mfa');
    raw.data.additionalDetails.eventId = 'sso.auth.factor.initiated';
    const event = normalize(raw);
    expect(event).toMatchObject({
      kind: 'other',
      eventType: 'sso.auth.factor.initiated',
      user: { id: DOMAIN_ALICE },
    });
    expect(event.signOn).toBeUndefined();
  });

  it.each([
    ['admin.user.create.success', 'user_created'],
    ['admin.user.delete.success', 'user_deleted'],
    ['admin.user.activated.success', 'user_reactivated'],
    ['admin.user.deactivated.success', 'user_deactivated'],
    ['admin.group.create.success', 'group_created'],
    ['admin.group.delete.success', 'group_deleted'],
    ['admin.policy.update.success', 'policy_updated'],
    ['admin.app.create.success', 'other'],
  ] as const)('maps %s to %s', (eventId, kind) => {
    const raw = sample('domain.add-member');
    raw.data.additionalDetails.eventId = eventId;
    expect(normalize(raw).kind).toBe(kind);
  });

  /** An admin.user.* event about alice. */
  function aboutAlice(eventId: string) {
    const raw = sample('domain.add-member');
    Object.assign(raw.data.additionalDetails, {
      eventId,
      adminResourceId: DOMAIN_ALICE,
      adminResourceName: 'alice@example.com',
    });
    return normalize(raw);
  }

  it('takes the user of admin.user.* events from adminResource', () => {
    const event = aboutAlice('admin.user.deactivated.success');
    expect(event.user).toEqual({ id: DOMAIN_ALICE, name: 'alice@example.com' });
    expect(event.group).toBeUndefined();
  });

  it("reads an administrator's password reset as a password created for the user", () => {
    expect(aboutAlice('admin.user.password.reset.success')).toMatchObject({
      kind: 'credential_change',
      user: { id: DOMAIN_ALICE },
      credential: { type: 'password', change: 'created' },
    });
  });
});

describe('normalizeOciAudit: classic sign-on', () => {
  it('maps a successful InteractiveLogin', () => {
    expect(normalize(sample('interactive-login'))).toMatchObject({
      kind: 'signon_success',
      flavor: 'classic',
      user: { id: ALICE, name: 'alice@example.com' },
      signOn: { success: true, ip: '203.0.113.54', sessionId: 'csid1e3a5c7b9d2f4e6a8c0b' },
    });
  });

  it('maps a rejected InteractiveLogin to signon_failure', () => {
    const raw = sample('interactive-login');
    raw.data.response.status = '401';
    expect(normalize(raw)).toMatchObject({
      kind: 'signon_failure',
      status: '401',
      signOn: { success: false },
    });
  });

  it('keeps an InteractiveLogin without a status as other', () => {
    const raw = sample('interactive-login');
    raw.data.response = null;
    expect(normalize(raw).kind).toBe('other');
  });
});

describe('normalizeOciAudit: policies', () => {
  it('flags a policy granting mysql_dp_auth', () => {
    const event = normalize(sample('policy.mysql-dp-auth'));
    expect(event).toMatchObject({
      kind: 'policy_created',
      policy: {
        id: 'ocid1.policy.oc1..aaaaaaaamysqlauth4w2x9',
        name: 'mysql-iam-auth',
        mysqlAuth: true,
        statements: [
          'ALLOW service mysql_dp_auth TO {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT, DYNAMIC_GROUP_INSPECT} IN TENANCY',
        ],
      },
    });
    expect(event.extraction['policy.statements']).toBe('stateChange.current.statements');
  });

  it('does not flag an unrelated policy', () => {
    expect(normalize(sample('policy.unrelated'))).toMatchObject({
      kind: 'policy_updated',
      policy: {
        mysqlAuth: false,
        statements: ['Allow group NetOps to manage virtual-network-family in tenancy'],
      },
    });
  });

  it("flags the 9.4+ request.principal.type = 'mysqldbsystem' form on its own", () => {
    const raw = sample('policy.mysqldbsystem');
    raw.data.stateChange.previous = null;
    expect(normalize(raw).policy?.mysqlAuth).toBe(true);
  });

  it("does not flag Oracle's network security group policy, which uses the mysqldbsystem condition", () => {
    expect(normalize(sample('policy.mysqldbsystem-nsg'))).toMatchObject({
      kind: 'policy_updated',
      policy: { name: 'mysql-nsg', mysqlAuth: false },
    });
  });

  it.each([
    ['AUTHENTICATION_INSPECT', true],
    ['GROUP_MEMBERSHIP_INSPECT', true],
    ['dynamic_group_inspect', true],
    ['VNIC_CREATE', false],
  ])('flags the mysqldbsystem principal given %s: %s', (permission, flagged) => {
    const raw = sample('policy.mysqldbsystem');
    raw.data.stateChange.previous = null;
    raw.data.stateChange.current.statements = [
      `Allow any-user to {${permission}} in tenancy where request.principal.type='mysqldbsystem'`,
    ];
    expect(normalize(raw).policy?.mysqlAuth).toBe(flagged);
  });

  it('flags a change that removes the mysql_dp_auth statement (before counts too)', () => {
    const raw = sample('policy.unrelated');
    raw.data.stateChange.previous.statements.push(
      'allow SERVICE MYSQL_DP_AUTH to {AUTHENTICATION_INSPECT} in tenancy',
    );
    expect(normalize(raw).policy?.mysqlAuth).toBe(true);
  });

  it('reads a deleted policy from stateChange.previous', () => {
    const raw = sample('policy.mysql-dp-auth');
    raw.eventType = 'com.oraclecloud.identityControlPlane.DeletePolicy';
    raw.data.stateChange = { previous: raw.data.stateChange.current, current: null };
    const event = normalize(raw);
    expect(event).toMatchObject({ kind: 'policy_deleted', policy: { mysqlAuth: true } });
    expect(event.extraction).toMatchObject({
      'policy.id': 'stateChange.previous.id',
      'policy.statements': 'stateChange.previous.statements',
    });
  });

  it('keeps the policy off a refused change, which changed nothing', () => {
    const raw = sample('policy.mysql-dp-auth');
    raw.data.response.status = '409';
    const event = normalize(raw);
    expect(event).toMatchObject({ kind: 'other', status: '409' });
    expect(event.policy).toBeUndefined();
  });
});

describe('normalizeOciAudit: users and credentials', () => {
  it('maps UpdateUserState, which can only unblock, to user_reactivated', () => {
    const event = normalize(sample('update-user-state.unblocked'));
    expect(event).toMatchObject({ kind: 'user_reactivated', user: { id: BOB, name: 'bob@example.com' } });
    expect(event.extraction['user.state']).toBe('stateChange.current.lifecycleState');
    const raw = sample('update-user-state.unblocked');
    raw.data.stateChange = null;
    expect(normalize(raw).kind).toBe('user_reactivated');
  });

  it('keeps an UpdateUserState that leaves the user inactive (another reason holds it) as user_updated', () => {
    const raw = sample('update-user-state.unblocked');
    raw.data.stateChange.current.lifecycleState = 'INACTIVE';
    raw.data.stateChange.current.inactiveStatus = 2;
    expect(normalize(raw).kind).toBe('user_updated');
  });

  it('never reads a block from UpdateUserState (the API cannot block)', () => {
    const raw = sample('update-user-state.unblocked');
    raw.data.request.parameters = { blocked: ['true'] };
    expect(normalize(raw).kind).toBe('user_reactivated');
  });

  it('maps UploadApiKey to credential_change for the key owner', () => {
    const event = normalize(sample('upload-api-key'));
    expect(event).toMatchObject({
      kind: 'credential_change',
      user: { id: ALICE },
      actor: { id: ALICE },
      credential: { type: 'api-key', change: 'created' },
    });
    expect(event.extraction['user.id']).toBe('stateChange.current.userId');
  });

  it('tells what a credential operation did, and keeps it off a failed one', () => {
    const raw = sample('upload-api-key');
    const as = (type: string) =>
      normalize({ ...raw, eventType: `com.oraclecloud.identityControlPlane.${type}` });
    expect(as('DeleteApiKey').credential).toMatchObject({ type: 'api-key', change: 'deleted' });
    expect(as('UpdateAuthToken').credential).toMatchObject({ type: 'auth-token', change: 'updated' });
    expect(as('CreateDbCredential').credential).toMatchObject({ type: 'db-credential', change: 'created' });
    raw.data.response.status = '409';
    expect(normalize(raw)).toMatchObject({ kind: 'other' });
    expect(normalize(raw).credential).toBeUndefined();
  });

  it('names the credential: an API key by its fingerprint, from the state or the request path', () => {
    const FP = 'd1:8c:4e:7a:90:2b:3f:61:c5:de:08:94:71:ab:2e:f3';
    const uploaded = normalize(sample('upload-api-key'));
    expect(uploaded.credential).toEqual({ type: 'api-key', change: 'created', id: FP });
    expect(uploaded.extraction['credential.id']).toBe('stateChange.current.fingerprint');
    const raw = sample('upload-api-key');
    raw.eventType = 'com.oraclecloud.identityControlPlane.DeleteApiKey';
    raw.data.stateChange = null;
    raw.data.request.path = `/20160918/users/${ALICE}/apiKeys/${encodeURIComponent(FP)}`;
    const deleted = normalize(raw);
    expect(deleted.credential).toEqual({ type: 'api-key', change: 'deleted', id: FP });
    expect(deleted.extraction['credential.id']).toBe('request.path');
  });

  it("names an auth token by its id, never by the user's OCID, and a credential it cannot name by none", () => {
    const raw = sample('upload-api-key');
    raw.eventType = 'com.oraclecloud.identityControlPlane.CreateAuthToken';
    raw.data.stateChange.current = { id: 'ocid1.credential.oc1..tok', userId: ALICE };
    expect(normalize(raw).credential).toEqual({
      type: 'auth-token',
      change: 'created',
      id: 'ocid1.credential.oc1..tok',
    });
    raw.data.stateChange.current = { id: ALICE };
    raw.data.request.path = `/20160918/users/${ALICE}/authTokens/`;
    expect(normalize(raw).credential).toEqual({ type: 'auth-token', change: 'created' });
  });

  it('maps other credential operations', () => {
    const raw = sample('upload-api-key');
    raw.eventType = 'com.oraclecloud.identityControlPlane.CreateOrResetUIPassword';
    raw.data.stateChange = null;
    const event = normalize(raw);
    expect(event).toMatchObject({
      kind: 'credential_change',
      user: { id: ALICE, name: 'alice@example.com' },
      credential: { type: 'password', change: 'created' },
    });
    expect(event.extraction['user.id']).toBe('request.path');
  });
});

describe('normalizeOciAudit: IdP group mappings and dynamic groups', () => {
  const IDP = 'ocid1.saml2idp.oc1..aaaaaaaaidp';
  const DYNAMIC = 'ocid1.dynamicgroup.oc1..aaaaaaaabatch';

  function classic(type: string, stateChange: Json, path: string) {
    const raw = sample('add-user-to-group.cloudevents');
    Object.assign(raw, { type: `com.oraclecloud.identityControlPlane.${type}` });
    Object.assign(raw.data, { stateChange, resourceId: null, resourceName: null });
    raw.data.request.path = path;
    return normalize(raw);
  }

  it('maps an IdP group mapping onto a group, naming the IdP group', () => {
    const mapping = {
      id: 'ocid1.idpgroupmapping.oc1..m',
      idpGroupName: 'everyone',
      groupId: DBA,
      idpId: IDP,
    };
    const created = classic(
      'CreateIdpGroupMapping',
      { previous: null, current: mapping },
      `/20160918/identityProviders/${IDP}/groupMappings/`,
    );
    expect(created).toMatchObject({
      kind: 'idp_mapping_created',
      group: { id: DBA },
      idpGroupMapping: { idpId: IDP, idpGroupName: 'everyone' },
    });
    const deleted = classic(
      'DeleteIdpGroupMapping',
      { previous: mapping, current: null },
      `/20160918/identityProviders/${IDP}/groupMappings/m`,
    );
    expect(deleted).toMatchObject({ kind: 'idp_mapping_deleted', group: { id: DBA } });
    expect(deleted.extraction['group.id']).toBe('stateChange.previous.groupId');
  });

  it('maps a dynamic group change with its matching rule before and after, and no IAM group', () => {
    const before = { id: DYNAMIC, name: 'batch', matchingRule: "instance.id = 'ocid1.instance.oc1..a'" };
    const after = {
      ...before,
      matchingRule: "ALL {instance.compartment.id = 'ocid1.compartment.oc1..prod'}",
    };
    const event = classic(
      'UpdateDynamicGroup',
      { previous: before, current: after },
      `/20160918/dynamicGroups/${DYNAMIC}`,
    );
    expect(event).toMatchObject({
      kind: 'dynamic_group_updated',
      dynamicGroup: {
        id: DYNAMIC,
        name: 'batch',
        matchingRule: after.matchingRule,
        previousMatchingRule: before.matchingRule,
      },
    });
    expect(event.group).toBeUndefined();
    const created = classic(
      'CreateDynamicGroup',
      { previous: null, current: null },
      '/20160918/dynamicGroups/',
    );
    expect(created).toMatchObject({ kind: 'dynamic_group_created' });
    expect(created.dynamicGroup).toEqual({});
  });
});

describe('normalizeOciAudit: MySQL HeatWave control plane', () => {
  const PROD = 'ocid1.mysqldbsystem.oc1..aaaaaaaaprodorders7k2m';
  const NOAUDIT = 'ocid1.mysqlconfiguration.oc1..aaaaaaaanoaudit9q4w';
  const STANDARD = 'ocid1.mysqlconfiguration.oc1..aaaaaaaastandard3x8p';

  it('reads the old and new configuration of an UpdateDbSystem from stateChange', () => {
    const event = normalize(sample('mysqlaas.update-db-system'));
    expect(event).toMatchObject({
      kind: 'dbsystem_change',
      actor: { id: ADMIN },
      dbSystemChange: {
        operation: 'update',
        dbSystem: { id: PROD, name: 'prod-orders' },
        configuration: { from: STANDARD, to: NOAUDIT },
      },
    });
    expect(event.extraction['dbSystem.id']).toBe('stateChange.current.id');
  });

  it('reads the new configuration from the request body, and none when the record has neither', () => {
    const raw = sample('mysqlaas.update-db-system');
    raw.type = 'com.oraclecloud.mysqlaas.updatedbsystem.begin';
    raw.data.stateChange = null;
    raw.data.request.payload = { configurationId: NOAUDIT };
    expect(normalize(raw).dbSystemChange).toMatchObject({
      dbSystem: { id: PROD },
      configuration: { to: NOAUDIT },
    });
    raw.data.request.payload = null;
    expect(normalize(raw).dbSystemChange).toEqual({
      operation: 'update',
      dbSystem: { id: PROD, name: 'prod-orders' },
      resource: { id: PROD, name: 'prod-orders' },
      configuration: {},
    });
  });

  it.each([
    ['com.oraclecloud.mysqlaas.StopDbSystem', 'stop'],
    ['com.oraclecloud.mysqlaas.restartdbsystem.begin', 'restart'],
    ['com.oraclecloud.mysqlaas.deletedbsystem.begin', 'delete'],
  ] as const)('maps %s to %s of the DB system', (type, operation) => {
    const raw = sample('mysqlaas.update-db-system');
    raw.type = type;
    raw.data.stateChange = null;
    expect(normalize(raw)).toMatchObject({
      kind: 'dbsystem_change',
      dbSystemChange: { operation, dbSystem: { id: PROD } },
    });
  });

  it('names the DB system of a deleted backup when the record does', () => {
    const raw = sample('mysqlaas.update-db-system');
    raw.type = 'com.oraclecloud.mysqlaas.deletebackup.begin';
    raw.data.resourceId = 'ocid1.mysqlbackup.oc1..b1';
    raw.data.resourceName = 'nightly';
    raw.data.stateChange = { previous: { id: 'ocid1.mysqlbackup.oc1..b1', dbSystemId: PROD }, current: null };
    expect(normalize(raw).dbSystemChange).toEqual({
      operation: 'delete-backup',
      dbSystem: { id: PROD },
      resource: { id: 'ocid1.mysqlbackup.oc1..b1', name: 'nightly' },
    });
  });

  it('maps a configuration created to its resource, with no DB system', () => {
    const raw = sample('mysqlaas.update-db-system');
    raw.type = 'com.oraclecloud.mysqlaas.createconfiguration';
    raw.data.resourceId = NOAUDIT;
    raw.data.resourceName = 'noaudit';
    raw.data.stateChange = null;
    raw.data.request.path = '/20190415/configurations';
    expect(normalize(raw).dbSystemChange).toEqual({
      operation: 'create-configuration',
      resource: { id: NOAUDIT, name: 'noaudit' },
    });
  });

  it('leaves the end of an operation, other MySQL operations and refused requests as other', () => {
    const raw = sample('mysqlaas.update-db-system');
    for (const type of [
      'com.oraclecloud.mysqlaas.updatedbsystem.end',
      'com.oraclecloud.mysqlaas.GetDbSystem',
    ]) {
      raw.type = type;
      expect(normalize(raw)).toMatchObject({ kind: 'other' });
    }
    raw.type = 'com.oraclecloud.mysqlaas.UpdateDbSystem';
    raw.data.response.status = '409';
    const refused = normalize(raw);
    expect(refused.kind).toBe('other');
    expect(refused.dbSystemChange).toBeUndefined();
  });
});

describe('normalizeOciAudit: unknown events', () => {
  it('maps an unknown event type to other without dead-lettering it', () => {
    const event = normalize(sample('unknown-type'));
    expect(event).toMatchObject({
      kind: 'other',
      flavor: 'classic',
      eventType: 'com.oraclecloud.ComputeApi.GetInstance',
      key: 'f3b7d5a1-9e4c-4b2f-8a6d-1c7e3f9b5d02',
    });
    expect(event.user).toBeUndefined();
  });

  it("reads no user or group from another service's path or parameters", () => {
    const raw = sample('unknown-type');
    raw.eventType = 'com.oraclecloud.objectstorage.GetObject';
    raw.data.request.path = '/n/example/b/users/o/report.csv';
    raw.data.request.parameters = { groupId: [DBA] };
    raw.data.resourceId = ALICE;
    const event = normalize(raw);
    expect(event.kind).toBe('other');
    expect([event.user, event.group, event.membershipId]).toEqual([undefined, undefined, undefined]);
    expect(Object.keys(event.extraction).filter((k) => !k.startsWith('actor.'))).toEqual([]);
    // The identity services' own records are read as before, whatever their operation.
    raw.eventType = 'com.oraclecloud.identityControlPlane.GetUser';
    raw.data.request.path = `/20160918/users/${ALICE}`;
    expect(normalize(raw)).toMatchObject({ kind: 'other', user: { id: ALICE }, group: { id: DBA } });
  });

  it('does not mistake prototype keys for event types', () => {
    const raw = sample('unknown-type');
    raw.eventType = 'com.oraclecloud.identityControlPlane.constructor';
    expect(normalize(raw).kind).toBe('other');
  });
});
