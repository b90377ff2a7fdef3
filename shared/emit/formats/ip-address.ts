// Whether a recorded source address can go in a SIEM's IP address field (CEF `src`, ECS
// `source.ip`): an IPv4 or IPv6 address, without an IPv6 zone index (`fe80::1%eth0`), which is no
// part of an address literal and which those fields do not parse.
import { isIP } from 'node:net';

export function isIpAddressField(address: string | undefined): address is string {
  return Boolean(address && isIP(address) && !address.includes('%'));
}
