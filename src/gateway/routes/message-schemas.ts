import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { SpillwayError } from '../../protocol/errors.js';
import { messageSchemas, schemaFileText, schemaId } from '../../protocol/message-schemas.js';
import { jsonResponse, pathParamCodes, problemResponses } from '../responses.js';
import { schemaParamsSchema } from '../schemas.js';

/** The media type JSON Schema 2020-12 registers for a schema document, so tools know what they fetched. */
export const schemaContentType = 'application/schema+json';

const closed = { additionalProperties: false } as const;
const listedSchema = Type.Object(
  {
    name: Type.String({ description: 'The name to fetch it by' }),
    topic: Type.String({ description: 'The topic whose messages it describes' }),
    id: Type.String({ format: 'uri', description: "The schema's $id, which carries its version" }),
    url: Type.String({ description: 'Where this gateway serves it' }),
  },
  closed,
);

/**
 * The JSON Schemas of the messages on every topic (docs/messages.md), served so a consumer of the
 * topics can fetch what it validates against from the deployment it reads. The text is the same
 * as docs/schemas/v1/<name>.json, built once at start.
 */
export function messageSchemaRoutes(app: FastifyInstance): void {
  const texts = new Map<string, string>(messageSchemas.map((s) => [s.name, schemaFileText(s.name)]));
  const listed = messageSchemas.map((s) => ({ name: s.name, topic: s.topic, id: schemaId(s.name), url: `/v1/schemas/${s.name}` }));

  app.get(
    '/v1/schemas',
    {
      schema: {
        summary: 'List the JSON Schemas of the messages on the topics',
        tags: ['operations'],
        response: { 200: jsonResponse('Every message schema', Type.Object({ schemas: Type.Array(listedSchema) }, closed)), ...problemResponses() },
      },
    },
    async () => ({ schemas: listed }),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/schemas/:name',
    {
      schema: {
        summary: "One topic message's JSON Schema (2020-12)",
        tags: ['operations'],
        params: schemaParamsSchema,
        response: {
          // Open: the document is sent as its text, and the serialiser never sees it.
          200: { description: 'The schema', content: { [schemaContentType]: { schema: { type: 'object', additionalProperties: true } } } },
          ...problemResponses(pathParamCodes, ['SPILLWAY_SCHEMA_NOT_FOUND']),
        },
      },
    },
    async (request, reply) => {
      const text = texts.get(request.params.name);
      if (text === undefined) throw new SpillwayError('SPILLWAY_SCHEMA_NOT_FOUND', `no message schema named "${request.params.name}"`);
      reply.type(schemaContentType);
      return text;
    },
  );
}
