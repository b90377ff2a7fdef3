// Who was behind a connection (architecture section 4): each path yields a method, a confidence
// and the keys of the facts it rests on. Pure over the correlator's models at connect time.
import type { Attribution } from '../../schemas/session.js';
import { toIso } from '../time.js';
import type { Directory } from './directory.js';
import { type Mappings, ociMappingOf, parsedAccountName, sameAccount } from './mappings.js';
import type { Memberships } from './memberships.js';
import type { PlantedCredentials } from './planted-credentials.js';
import type { SignOn, SignOns } from './signons.js';

export type Models = {
  directory: Directory;
  memberships: Memberships;
  mappings: Mappings;
  signOns: SignOns;
  credentials: PlantedCredentials;
};

export type ConnectFacts = {
  db: string;
  ts: number;
  /** Key of the connect event. */
  key: string;
  login: { user: string; os: string; ip: string; proxy: string };
  account: { user: string; host: string };
};

export type Ref = { id: string; name: string };

export type AttributionResult = {
  identity: Ref | null;
  group: Ref | null;
  proxied: boolean;
  attribution: Attribution;
  /** The membership grant (its add event key) the session resolved through. */
  grantKey?: string;
  /** The IAM sign-on that corroborated the attribution. */
  signOn?: SignOn;
  /** Set when the person had left a candidate group before connecting: the removal's key. */
  removalKey?: string;
  /** Set when the person was deleted or deactivated at connect time. */
  userState?: { state: string; key: string };
};

export function attribute(facts: ConnectFacts, models: Models, tokenLifetime: number): AttributionResult {
  return withPlantedCredentials(resolve(facts, models, tokenLifetime), models.credentials, facts.ts);
}

/**
 * A person named without a problem, on whose IAM user another principal created a credential still
 * in force: the login may be whoever holds it. The attribution names the credentials, and a
 * `verified` one (a signature by one of the person's keys, which no longer tells the person from
 * the credential's creator) becomes `asserted`; so does a `corroborated` one when a planted
 * credential is a password, with which its holder can make the IAM sign-on that corroborates.
 */
function withPlantedCredentials(
  result: AttributionResult,
  credentials: PlantedCredentials,
  ts: number,
): AttributionResult {
  const { identity, attribution } = result;
  if (!identity || attribution.problem !== undefined) return result;
  const planted = credentials.inForce(identity.id, ts);
  if (planted.length === 0) return result;
  attribution.plantedCredentials = planted.map((p) => ({
    type: p.type,
    ...(p.id === undefined ? {} : { id: p.id }),
    actor: p.actor,
    time: toIso(p.ts),
    key: p.key,
  }));
  attribution.evidence.push(...planted.map((p) => p.key));
  const password = planted.some((p) => p.type === 'password');
  if (attribution.confidence === 'verified' || (password && attribution.confidence === 'corroborated'))
    attribution.confidence = 'asserted';
  return result;
}

function resolve(facts: ConnectFacts, models: Models, tokenLifetime: number): AttributionResult {
  const { directory, memberships, mappings, signOns } = models;
  const { db, ts, login, account } = facts;
  const evidence = [facts.key];
  const ref = (id: string): Ref => ({ id, name: directory.user(id)?.name ?? id });
  const groupRef = (id: string): Ref => ({ id, name: directory.group(id)?.name ?? id });

  const withUserState = (result: AttributionResult): AttributionResult => {
    if (!result.identity) return result;
    const state = directory.userStateAt(result.identity.id, ts);
    if (state.state === 'active' || !state.key) return result;
    result.userState = { state: state.state, key: state.key };
    result.attribution.problem ??= 'user-inactive';
    result.attribution.evidence.push(state.key);
    return result;
  };

  // 1. A 1-to-1 authentication_oci account names its IAM user.
  const accountVersion = mappings.versionAt(db, account, ts);
  const mapping = ociMappingOf(accountVersion);
  if (mapping?.user && accountVersion) {
    evidence.push(accountVersion.key);
    return withUserState({
      identity: ref(mapping.user),
      group: null,
      proxied: false,
      attribution: { method: 'mapped-user', confidence: 'verified', evidence },
    });
  }

  // 2. A group login: the proxied account is the target of one or more group mappings. Where the
  // server names the proxy account, it must be a mapping account; where it names none (what
  // authentication_oci writes there is not documented), an account open at connect time to logins
  // without IAM (unlocked, or given a password or another plugin, as audited statements and
  // snapshots say; a look-alike on another host) may have been logged in to directly, and is
  // taken for a local account, whenever it was opened, before or after a mapping named it.
  const mapped = mappings.groupsMappedTo(db, account, ts);
  const direct = login.proxy || mapped.length === 0 ? undefined : mappings.directLoginAt(db, account, ts);
  const proxy = login.proxy ? parsedAccountName(login.proxy) : undefined;
  const candidates = direct
    ? []
    : mapped.filter((c) => !proxy || sameAccount(proxy, parsedAccountName(c.via)));
  if (candidates.length === 0) {
    return {
      identity: null,
      group: null,
      proxied: false,
      attribution: {
        method: 'local-account',
        confidence: 'none',
        evidence: direct ? [...evidence, direct.key] : evidence,
      },
    };
  }
  evidence.push(...new Set(candidates.map((c) => c.key)));
  const groups = [...new Set(candidates.map((c) => c.groupId))];

  /** Resolves a named user against the candidate groups at connect time. */
  const resolveNamed = (userId: string, method: 'external-user' | 'login-name'): AttributionResult => {
    const identity = ref(userId);
    const member = groups.find((g) => memberships.isMember(userId, g, ts));
    if (member) {
      const grant = memberships.stateAt(userId, member, ts)!;
      const ev = [...evidence, grant.key];
      let confidence: Attribution['confidence'] = 'verified';
      let signOn: SignOn | undefined;
      if (method === 'login-name') {
        signOn = signOns.latestBefore(userId, ts, tokenLifetime, login.ip || undefined);
        confidence = signOn ? 'corroborated' : 'asserted';
        if (signOn) ev.push(signOn.key);
      }
      const result: AttributionResult = {
        identity,
        group: groupRef(member),
        proxied: true,
        attribution: { method, confidence, evidence: ev },
        grantKey: grant.key,
      };
      if (signOn) result.signOn = signOn;
      return withUserState(result);
    }
    // Not a member of any group that maps to this account at connect time.
    const left = groups
      .map((g) => ({ g, change: memberships.stateAt(userId, g, ts) }))
      .find((x) => x.change?.op === 'remove');
    const result: AttributionResult = {
      identity,
      group: left ? groupRef(left.g) : null,
      proxied: true,
      attribution: {
        method,
        confidence: method === 'external-user' ? 'verified' : 'asserted',
        evidence: left ? [...evidence, left.change!.key] : evidence,
        problem: left ? 'left-group' : 'not-member',
      },
    };
    if (left) result.removalKey = left.change!.key;
    return withUserState(result);
  };

  // 2a. The plugin's external user names a person.
  const external = login.os ? directory.findUser(login.os, ts) : undefined;
  if (external) return resolveNamed(external.id, 'external-user');

  // 2b. The name the client sent names a person.
  const named = login.user ? directory.findUser(login.user, ts) : undefined;
  if (named) return resolveNamed(named.id, 'login-name');

  // 2c. Exactly one member of a candidate group signed on from the same client IP. Candidates
  // come from the sign-ons of that IP (each user once), ordered as the groups and then by user id
  // (the evidence of an ambiguous login lists them in that order).
  const signedOn: { at: number; userId: string; group: string; signOn: SignOn }[] = [];
  for (const userId of login.ip ? signOns.usersFrom(login.ip, ts, tokenLifetime) : []) {
    const at = groups.findIndex((g) => memberships.isMember(userId, g, ts));
    if (at < 0) continue;
    const s = signOns.latestBefore(userId, ts, tokenLifetime, login.ip);
    if (s?.ip === login.ip) signedOn.push({ at, userId, group: groups[at]!, signOn: s });
  }
  signedOn.sort((a, b) => a.at - b.at || (a.userId < b.userId ? -1 : 1));
  if (signedOn.length === 1) {
    const { userId, group, signOn } = signedOn[0]!;
    const grant = memberships.stateAt(userId, group, ts)!;
    const result: AttributionResult = {
      identity: ref(userId),
      group: groupRef(group),
      proxied: true,
      attribution: {
        method: 'signon-correlated',
        confidence: 'corroborated',
        evidence: [...evidence, signOn.key, grant.key],
      },
      grantKey: grant.key,
      signOn,
    };
    return withUserState(result);
  }

  // 2d. Nobody can be named.
  return {
    identity: null,
    group: groups.length === 1 ? groupRef(groups[0]!) : null,
    proxied: true,
    attribution: {
      method: 'unattributed',
      confidence: 'none',
      evidence: [...evidence, ...signedOn.map((s) => s.signOn.key)],
      problem: signedOn.length > 1 ? 'ambiguous' : 'no-evidence',
    },
  };
}
