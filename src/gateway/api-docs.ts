import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** Where the gateway serves its API reference page. */
export const apiDocsPath = '/docs';

/**
 * A readable page of the API at /docs, rendered in the browser from the same OpenAPI document
 * as /openapi.json. Every asset (script, style, icon) comes from the package, never a CDN, so
 * the page works on a machine with no internet. The plugin's own routes are hidden from the
 * document. Registered after @fastify/swagger, which it reads.
 */
export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, {
    routePrefix: apiDocsPath,
    // Swagger UI can ask validator.swagger.io to check the document; the page stays offline.
    validatorUrl: false,
    uiConfig: { deepLinking: true, docExpansion: 'list' },
  });
}
