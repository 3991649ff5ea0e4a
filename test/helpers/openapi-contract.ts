import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { JsonSchema } from './schema-inputs.js';
import type { WireAnswer } from './wire.js';

/** The parts of an OpenAPI 3.1 document the contract test reads. */
export interface OpenApiDocument {
  readonly openapi: string;
  readonly paths: Readonly<Record<string, Readonly<Record<string, Operation>>>>;
  readonly components: { readonly schemas: Readonly<Record<string, JsonSchema>> };
}

export interface Operation {
  readonly parameters?: readonly { readonly in: string; readonly name: string; readonly required?: boolean; readonly schema: JsonSchema }[];
  readonly requestBody?: { readonly content: Readonly<Record<string, { readonly schema: JsonSchema }>> };
  readonly responses: Readonly<Record<string, ResponseObject>>;
}

export interface MediaType {
  readonly schema?: JsonSchema;
  readonly itemSchema?: JsonSchema & { readonly properties?: Readonly<Record<string, JsonSchema & { contentMediaType?: string; contentSchema?: JsonSchema }>> };
}

export interface ResponseObject {
  readonly description: string;
  readonly headers?: Readonly<Record<string, { readonly schema: JsonSchema }>>;
  readonly content?: Readonly<Record<string, MediaType>>;
}


// ajv-formats is CommonJS; under NodeNext its default export arrives as the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** Validates values against the document's schemas, `#/components/schemas/…` refs included. */
export class DocumentSchemas {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: true });
  private readonly compiled = new WeakMap<object, ValidateFunction>();

  constructor(doc: OpenApiDocument) {
    addFormats(this.ajv);
    for (const [name, schema] of Object.entries(doc.components.schemas)) this.ajv.addSchema(localRefs({ ...schema, $id: name }), name);
  }

  /** Ajv's errors for `value`, or [] when it fits. */
  errors(schema: JsonSchema, value: unknown): string[] {
    let validate = this.compiled.get(schema);
    if (validate === undefined) {
      validate = this.ajv.compile(localRefs(schema));
      this.compiled.set(schema, validate);
    }
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  }
}

/** `#/components/schemas/X` becomes `X`, the id each component is added under. */
function localRefs<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"')) as T;
}

/** `text/plain; version=0.0.4` matches an answer of that media type carrying at least those parameters. */
export function mediaTypeMatches(declared: string, actual: string): boolean {
  const parse = (value: string) => {
    const [type = '', ...params] = value.split(';').map((s) => s.trim().toLowerCase());
    return { type, params: new Set(params.map((p) => p.replace(/\s*=\s*/, '='))) };
  };
  const d = parse(declared);
  const a = parse(actual);
  return d.type === a.type && [...d.params].every((p) => a.params.has(p));
}

/** One Server-Sent Event: its fields as the stream wrote them (comment lines are no events). */
export function parseEventStream(text: string): Record<string, string>[] {
  return text
    .split('\n\n')
    .map((block) => block.split('\n').filter((line) => line !== '' && !line.startsWith(':')))
    .filter((lines) => lines.length > 0)
    .map((lines) => Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).replace(/^ /, '')])));
}

/**
 * Everything wrong with `answer` as an answer of `operation`: a status it does not declare, a
 * content type that status does not declare, a body (or, for an event stream, an event) that
 * does not validate, a declared header with a value outside its schema. [] when it is right.
 */
export function contractViolations(schemas: DocumentSchemas, operation: Operation, answer: WireAnswer): string[] {
  const declared = operation.responses[String(answer.status)];
  if (declared === undefined) return [`status ${answer.status} is not declared (declared: ${Object.keys(operation.responses).join(', ')})`];
  const type = String(answer.headers['content-type'] ?? '');
  const content = declared.content ?? {};
  const key = Object.keys(content).find((k) => mediaTypeMatches(k, type));
  if (key === undefined) return [`content type "${type}" is not declared for ${answer.status} (declared: ${Object.keys(content).join(', ')})`];
  const problems: string[] = [];
  for (const [name, header] of Object.entries(declared.headers ?? {})) {
    const value = answer.headers[name];
    if (value === undefined) continue;
    const typed = header.schema.type === 'integer' && /^-?\d+$/.test(String(value)) ? Number(value) : value;
    problems.push(...schemas.errors(header.schema, typed).map((e) => `header ${name}: ${e}`));
  }
  const media = content[key] ?? {};
  if (media.itemSchema !== undefined) {
    const events = parseEventStream(answer.text);
    if (events.length === 0) problems.push('the event stream carried no event');
    for (const [i, event] of events.entries()) {
      problems.push(...schemas.errors(media.itemSchema, event).map((e) => `event ${i}: ${e}`));
      for (const [field, sub] of Object.entries(media.itemSchema.properties ?? {})) {
        if (sub.contentMediaType !== 'application/json' || sub.contentSchema === undefined || event[field] === undefined) continue;
        problems.push(...schemas.errors(sub.contentSchema, JSON.parse(event[field])).map((e) => `event ${i} ${field}: ${e}`));
      }
    }
  } else if (media.schema !== undefined) {
    let body: unknown = answer.text;
    if (/json/.test(key)) {
      try {
        body = JSON.parse(answer.text);
      } catch {
        return [`the ${key} body is not JSON: ${answer.text.slice(0, 200)}`];
      }
    }
    problems.push(...schemas.errors(media.schema, body).map((e) => `body: ${e}`));
  }
  return problems;
}
