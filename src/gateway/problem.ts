import type { Static } from '@sinclair/typebox';
import type { FieldCodes, Problem } from '../http/problem.js';
import type { problemSchema } from './schemas.js';

/**
 * Fields of the prediction request with a code of their own: a schema violation there (a
 * deadline that is not a date-time, an unknown callback event) answers with the code the field's
 * deeper checks give, so a client sees one code per field whichever check caught it.
 */
export const bodyFieldCodes: FieldCodes = [
  ['/deadline', 'SPILLWAY_INVALID_DEADLINE'],
  ['/callback', 'SPILLWAY_INVALID_CALLBACK'],
];

/**
 * What the OpenAPI document promises for a problem and what src/http/problem.ts sends are one
 * shape: this stops compiling when either changes without the other.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export type ProblemSchemaMatches = Assert<Same<Static<typeof problemSchema>, Problem>>;
type Assert<T extends true> = T;
