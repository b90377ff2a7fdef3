// Reads OCI Vault secrets (the collector's database password) with the SDK's SecretsClient: the
// current version's content, base64 as Vault stores it. Errors name the secret OCID and the
// service's status, never the content.
import type { AuthenticationDetailsProvider } from 'oci-common';
import { AuditError } from '../errors.js';
import type { VaultSecretFetcher } from '../sources/mysql-connection.js';
import { callWithRetry, createOciClient } from './clients.js';

export async function vaultSecretFetcher(opts: {
  auth: AuthenticationDetailsProvider;
  env?: Readonly<Record<string, string | undefined>>;
}): Promise<VaultSecretFetcher> {
  const client = await createOciClient('secrets', {
    auth: opts.auth,
    ...(opts.env ? { env: opts.env } : {}),
  });
  return async (secretId) => {
    const response = await callWithRetry('getSecretBundle', () => client.getSecretBundle({ secretId }));
    const content = response.secretBundle.secretBundleContent;
    if (content?.contentType !== 'BASE64' || typeof content.content !== 'string') {
      throw new AuditError('CONFIG_INVALID', 'the Vault secret has no base64 content', {
        details: { secretId },
      });
    }
    return Buffer.from(content.content, 'base64')
      .toString('utf8')
      .replace(/\r?\n$/, '');
  };
}
