// Vault secrets data plane: GetSecretBundle (the current version's base64 content), from secrets a
// test sets. An unknown secret answers 404 like OCI.
import { ociError, type ServiceHandler } from './server.js';

export interface SecretsService {
  handler: ServiceHandler;
  /** Secret values by OCID; a test may change one (rotation). */
  secrets: Map<string, string>;
}

export function secretsService(initial: Record<string, string> = {}): SecretsService {
  const secrets = new Map(Object.entries(initial));
  const handler: ServiceHandler = {
    name: 'secrets',
    basePath: '/20190301',
    routes: [
      {
        name: 'getSecretBundle',
        method: 'GET',
        pattern: '/secretbundles/{secretId}',
        handle(req) {
          const secretId = req.params.secretId!;
          const value = secrets.get(secretId);
          if (value === undefined) return ociError(404, 'NotAuthorizedOrNotFound', 'Secret not found');
          return {
            status: 200,
            body: {
              secretId,
              versionNumber: 1,
              stages: ['CURRENT', 'LATEST'],
              timeCreated: '2026-11-01T00:00:00.000Z',
              secretBundleContent: {
                contentType: 'BASE64',
                content: Buffer.from(value, 'utf8').toString('base64'),
              },
            },
          };
        },
      },
    ],
  };
  return { handler, secrets };
}
