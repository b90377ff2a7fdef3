// Every rule, in the order `rules` lists them. A new rule is a new file in shared/rules/ plus a
// line here; the registry test runs its cases and lints its metadata.
import { accessAfterRevocation } from '../rules/access-after-revocation.js';
import { accessIdentityMismatch } from '../rules/access-identity-mismatch.js';
import { accessLocalAccount } from '../rules/access-local-account.js';
import { accessNewDatabase } from '../rules/access-new-database.js';
import { accessNewSource } from '../rules/access-new-source.js';
import { accessPlantedCredential } from '../rules/access-planted-credential.js';
import { accessUnattributed } from '../rules/access-unattributed.js';
import { accessUnusualHour } from '../rules/access-unusual-hour.js';
import { accessWithoutMfa } from '../rules/access-without-mfa.js';
import { auditGap } from '../rules/audit-gap.js';
import { auditTamper } from '../rules/audit-tamper.js';
import { authFailureBurst } from '../rules/auth-failure-burst.js';
import { breakGlassStale } from '../rules/break-glass-stale.js';
import { breakGlassUsed } from '../rules/break-glass-used.js';
import { dbSystemChange } from '../rules/dbsystem-change.js';
import { iamAuthPolicyChange } from '../rules/iam-auth-policy-change.js';
import { iamCredentialChange } from '../rules/iam-credential-change.js';
import { iamPrivilegedGroupChange } from '../rules/iam-privileged-group-change.js';
import { mappingChange } from '../rules/mapping-change.js';
import { privilegeChange } from '../rules/privilege-change.js';
import type { RuleDefinition } from './rule.js';

// biome-ignore lint/suspicious/noExplicitAny: each rule keeps its own parameter type.
export const RULES: readonly RuleDefinition<any>[] = [
  breakGlassStale,
  breakGlassUsed,
  accessAfterRevocation,
  accessIdentityMismatch,
  accessUnattributed,
  accessLocalAccount,
  authFailureBurst,
  privilegeChange,
  mappingChange,
  iamPrivilegedGroupChange,
  iamAuthPolicyChange,
  iamCredentialChange,
  accessPlantedCredential,
  auditTamper,
  auditGap,
  dbSystemChange,
  accessWithoutMfa,
  accessNewSource,
  accessNewDatabase,
  accessUnusualHour,
];
