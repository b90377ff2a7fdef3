// Which IAM policy statements govern HeatWave's IAM database authentication (domain.md 1 and 8):
// the service form `ALLOW service mysql_dp_auth TO {...} IN TENANCY`, and the 9.4+ form
// `Allow any-user to {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT, DYNAMIC_GROUP_INSPECT} in
// tenancy where request.principal.type = 'mysqldbsystem'`. The condition alone is no sign:
// Oracle's mandatory policies use it for unrelated grants (VNIC_CREATE for network security
// groups), so the 9.4+ form needs one of the lookup permissions as well.
const SERVICE = /\bmysql_dp_auth\b/i;
const PRINCIPAL = /request\.principal\.type\s*={1,2}\s*['"]?mysqldbsystem\b/i;
const LOOKUP_PERMISSIONS = /\b(?:AUTHENTICATION_INSPECT|GROUP_MEMBERSHIP_INSPECT|DYNAMIC_GROUP_INSPECT)\b/i;

export function grantsDbAuthentication(statement: string): boolean {
  return SERVICE.test(statement) || (PRINCIPAL.test(statement) && LOOKUP_PERMISSIONS.test(statement));
}
