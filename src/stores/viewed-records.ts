import { decodeRecord, recordJsonOf } from '../protocol/decode-record.js';
import { headerNames } from '../protocol/envelope.js';
import type { OutgoingMessage } from '../protocol/message.js';
import { storeProgress, storeRank, type PredictionRecord } from '../protocol/prediction.js';

/** A record on its way to the response stream, as a records view stores it. */
export interface ViewedRecord {
  readonly record: PredictionRecord;
  readonly rank: number;
  readonly progress: number;
  /** The record's JSON, taken from the message as it is. */
  readonly json: string;
}

/**
 * What a records view (RecordsView) reads from the messages it is given: their records, and the
 * messages to publish instead, those with a record marked stored for the store writer to pass
 * over (isStored). A message that is not a record goes as it came.
 */
export function viewRecords(messages: readonly OutgoingMessage[]): { readonly records: ViewedRecord[]; readonly marked: OutgoingMessage[] } {
  const records: ViewedRecord[] = [];
  const marked = messages.map((message) => {
    const record = decodeRecord(message.value);
    if (record === undefined) return message;
    records.push({ record, rank: storeRank(record), progress: storeProgress(record), json: recordJsonOf(message.value, record) });
    return { ...message, headers: { ...message.headers, [headerNames.stored]: 'yes' } };
  });
  return { records, marked };
}

/** Whether a records view stored this message's record as it was published. */
export const isStored = (headers: Readonly<Record<string, string>>): boolean => headers[headerNames.stored] === 'yes';
