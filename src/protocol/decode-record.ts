import { envelopeVersion, type ResponseEnvelope } from './envelope.js';
import { predictionStatuses, type PredictionRecord } from './prediction.js';

/** Reads a record from the response stream; undefined for anything that is not one. */
export function decodeRecord(value: string): PredictionRecord | undefined {
  let parsed: Partial<ResponseEnvelope>;
  try {
    parsed = JSON.parse(value) as Partial<ResponseEnvelope>;
  } catch {
    return undefined;
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    typeof parsed.id !== 'string' ||
    typeof parsed.model !== 'string' ||
    !predictionStatuses.includes(parsed.status as never)
  ) {
    return undefined;
  }
  const { v: _version, ...record } = parsed as ResponseEnvelope;
  return record;
}

/** A response envelope is `{"v":1,` and then the record's own fields (responseMessage). */
const envelopeStart = `{"v":${envelopeVersion},`;

/** The JSON of the record a response message carries (`record`, decoded from it): its own fields, kept as they are, without a second stringify. */
export function recordJsonOf(value: string, record: PredictionRecord): string {
  return value.startsWith(envelopeStart) ? `{${value.slice(envelopeStart.length)}` : JSON.stringify(record);
}
