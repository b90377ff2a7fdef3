// TLS material for the test server: a CA, and a server certificate it signs for localhost and
// 127.0.0.1, generated once per test process (selfsigned) and written to the test run's temporary
// folder, which is removed after the run.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { inject } from 'vitest';

export type TlsMaterial = {
  /** CA certificate (PEM) and the file holding it, for `collector.ca`. */
  ca: string;
  caFile: string;
  /** The server's key and certificate. */
  key: string;
  cert: string;
  /** Another CA's file: verification with it must fail. */
  otherCaFile: string;
};

let material: Promise<TlsMaterial> | undefined;

async function authority(name: string): Promise<{ key: string; cert: string }> {
  const ca = await generate([{ name: 'commonName', value: name }], {
    keySize: 2048,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return { key: ca.private, cert: ca.cert };
}

export function tlsMaterial(): Promise<TlsMaterial> {
  material ??= (async () => {
    const ca = await authority('heatwave-iam-audit test CA');
    const other = await authority('another CA');
    const server = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      ca,
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    const dir = mkdtempSync(join(inject('runTmp'), 'tls-'));
    const caFile = join(dir, 'ca.pem');
    const otherCaFile = join(dir, 'other-ca.pem');
    writeFileSync(caFile, ca.cert);
    writeFileSync(otherCaFile, other.cert);
    return { ca: ca.cert, caFile, key: server.private, cert: server.cert, otherCaFile };
  })();
  return material;
}
