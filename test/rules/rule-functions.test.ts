// The pure functions rules decide with, beyond what their cases reach: the network a source
// address belongs to, the strength of a sign-on's second factor, and the bounds of parameters.
import { describe, expect, it } from 'vitest';
import { accessNewSource, networkOf } from '../../shared/rules/access-new-source.js';
import { accessUnusualHour } from '../../shared/rules/access-unusual-hour.js';
import { factorStrength } from '../../shared/rules/access-without-mfa.js';
import { authFailureBurst } from '../../shared/rules/auth-failure-burst.js';

describe('networkOf', () => {
  it.each([
    ['10.1.2.3', 24, 48, '10.1.2.0/24'],
    ['10.1.3.3', 23, 48, '10.1.2.0/23'],
    ['10.1.2.3', 0, 48, '0.0.0.0/0'],
    ['10.1.2.3', 32, 48, '10.1.2.3/32'],
    ['192.168.100.200', 17, 48, '192.168.0.0/17'],
    // IPv4-mapped IPv6 addresses are their IPv4 address.
    ['::ffff:192.168.100.200', 24, 48, '192.168.100.0/24'],
    ['::FFFF:10.1.2.3', 24, 48, '10.1.2.0/24'],
    // However the mapped address is written: in hex, in full, with a zone.
    ['::ffff:c0a8:64c8', 24, 48, '192.168.100.0/24'],
    ['0:0:0:0:0:ffff:10.1.2.3', 24, 48, '10.1.2.0/24'],
    ['0000:0000:0000:0000:0000:FFFF:0A01:0203', 32, 48, '10.1.2.3/32'],
    ['::ffff:10.1.2.3%eth0', 16, 48, '10.1.0.0/16'],
    // Only a mapping prefix at the start maps.
    ['1::ffff:10.1.2.3', 24, 128, '1:0:0:0:0:ffff:a01:203/128'],
    ['2001:db8:1:2::5', 24, 48, '2001:db8:1:0:0:0:0:0/48'],
    ['2001:db8::1', 24, 32, '2001:db8:0:0:0:0:0:0/32'],
    ['2001:db8:abcd:1234::1', 24, 36, '2001:db8:a000:0:0:0:0:0/36'],
    ['fe80::1%eth0', 24, 64, 'fe80:0:0:0:0:0:0:0/64'],
    // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) addresses are their embedded IPv4 address.
    ['64:ff9b::192.168.100.200', 24, 128, '192.168.100.0/24'],
    ['64:FF9B::c0a8:64c8', 32, 48, '192.168.100.200/32'],
    ['64:ff9b:0:0:0:0:10.1.2.3%eth0', 16, 48, '10.1.0.0/16'],
    ['::192.168.100.200', 24, 48, '192.168.100.0/24'],
    ['0:0:0:0:0:0:a01:203', 24, 48, '10.1.2.0/24'],
    ['::2', 24, 48, '0.0.0.0/24'],
    ['::0.1.0.0', 24, 48, '0.1.0.0/24'],
    // Only that prefix: the local-use 64:ff9b:1::/48, or 64:ff9b with more set, is IPv6.
    ['64:ff9b:1::10.1.2.3', 24, 48, '64:ff9b:1:0:0:0:0:0/48'],
    ['64:ff9b::1:10.1.2.3', 24, 128, '64:ff9b:0:0:0:1:a01:203/128'],
    // The unspecified address and the loopback are not IPv4.
    ['::', 24, 128, '0:0:0:0:0:0:0:0/128'],
    ['::1', 24, 128, '0:0:0:0:0:0:0:1/128'],
    ['0:0:0:0:0:0:0:1', 24, 48, '0:0:0:0:0:0:0:0/48'],
    ['1::', 24, 128, '1:0:0:0:0:0:0:0/128'],
    ['2001:db8:0:0:0:0:0:1', 24, 127, '2001:db8:0:0:0:0:0:0/127'],
    // Anything else the log recorded stands for itself.
    ['client.example.com', 24, 48, 'client.example.com'],
    ['10.1.2', 24, 48, '10.1.2'],
  ])('%s with /%i and /%i is %s', (ip, v4, v6, network) => {
    expect(networkOf(ip, v4, v6)).toBe(network);
  });
});

describe('factorStrength', () => {
  it.each([
    [undefined, -1],
    ['', -1],
    ['NONE', -1],
    ['password', -1],
    ['USERNAME_PASSWORD', -1],
    ['usernamepassword', -1],
    [' totp ', 1],
    ['TOTP', 1],
    ['OMA_PUSH', 2],
    ['FIDO_AUTHENTICATOR', 3],
    ['webauthn', 3],
    ['Passkey', 3],
    ['SECURITY KEY', 3],
    ['securitykey', 3],
    ['SMS', 0],
  ])('%j is %i', (factor, strength) => {
    expect(factorStrength(factor)).toBe(strength);
  });
});

describe('parameter bounds', () => {
  it.each([
    [accessNewSource.params, { ipv4Prefix: 0, ipv6Prefix: 0 }, true],
    [accessNewSource.params, { ipv4Prefix: 32, ipv6Prefix: 128 }, true],
    [accessNewSource.params, { ipv4Prefix: 33 }, false],
    [accessNewSource.params, { ipv6Prefix: 129 }, false],
    [accessNewSource.params, { ipv6Prefix: -1 }, false],
    [accessUnusualHour.params, { margin: 0 }, true],
    [accessUnusualHour.params, { margin: 11 }, true],
    [accessUnusualHour.params, { margin: 12 }, false],
    [accessUnusualHour.params, { margin: -1 }, false],
    [authFailureBurst.params, { longThreshold: 0 }, true],
    [authFailureBurst.params, { longThreshold: 1 }, false],
    [authFailureBurst.params, { threshold: 19, window: 'PT23H59M' }, true],
    // The long window counts more failures over a longer time than the burst's.
    [authFailureBurst.params, { threshold: 20 }, false],
    [authFailureBurst.params, { window: 'PT24H' }, false],
    [authFailureBurst.params, { threshold: 20, window: 'PT24H', longThreshold: 0 }, true],
  ])('%#: %j valid: %s', (schema, value, valid) => {
    expect(schema.safeParse(value).success).toBe(valid);
  });
});
