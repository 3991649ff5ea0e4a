import type { FieldCodes } from '../http/problem.js';

/**
 * Fields of the prediction request with a code of their own: a schema violation there (a
 * deadline that is not a date-time, an unknown callback event) answers with the code the field's
 * deeper checks give, so a client sees one code per field whichever check caught it.
 */
export const bodyFieldCodes: FieldCodes = [
  ['/deadline', 'SPILLWAY_INVALID_DEADLINE'],
  ['/callback', 'SPILLWAY_INVALID_CALLBACK'],
];
