import type { Redis } from '../../redis/connect.js';
import { apiKeyAge, apiKeyFields, apiKeyFromFields, type StoredApiKeyFields } from '../api-key-fields.js';
import type { ApiKeys, StoredApiKey } from '../store.js';
import type { StoreKeys } from './keys.js';
import { listApiKeysLua, putApiKeyLua } from './scripts.js';
import { guarded } from './unavailable.js';

/** The scripts as ioredis commands (defineCommand adds them at run time; this names their types). */
interface ApiKeyCommands {
  spillwayPutApiKey(key: string, index: string, id: string, createdMs: number, ...fields: string[]): Promise<number>;
  spillwayListApiKeys(index: string, keyPrefix: string): Promise<string[][]>;
}

/**
 * API keys on Redis: a hash per key and one index of ids by creation time, none with a TTL
 * (keys outlive the record retention). The index exists once any key was ever put, so whether
 * there are keys is one EXISTS.
 */
export class RedisApiKeys implements ApiKeys {
  private readonly redis: Redis & ApiKeyCommands;

  constructor(
    redis: Redis,
    private readonly keys: StoreKeys,
    private readonly url: string,
  ) {
    redis.defineCommand('spillwayPutApiKey', { lua: putApiKeyLua, numberOfKeys: 2 });
    redis.defineCommand('spillwayListApiKeys', { lua: listApiKeysLua, numberOfKeys: 1, readOnly: true });
    this.redis = redis as Redis & ApiKeyCommands;
  }

  async putApiKey(key: StoredApiKey): Promise<void> {
    const fields = Object.entries(apiKeyFields(key)).flatMap(([f, v]) => (v === undefined ? [] : [f, v]));
    await guarded(this.url, () => this.redis.spillwayPutApiKey(this.keys.apiKey(key.id), this.keys.apiKeyIndex, key.id, apiKeyAge(key), ...fields));
  }

  async getApiKey(id: string): Promise<StoredApiKey | undefined> {
    const fields = await guarded(this.url, () => this.redis.hgetall(this.keys.apiKey(id)));
    return fields['id'] === undefined ? undefined : apiKeyFromFields(fields as unknown as StoredApiKeyFields);
  }

  async listApiKeys(): Promise<StoredApiKey[]> {
    const flat = await guarded(this.url, () => this.redis.spillwayListApiKeys(this.keys.apiKeyIndex, this.keys.apiKeyPrefix));
    return flat.map((pairs) => apiKeyFromFields(fromPairs(pairs)));
  }

  async hasApiKeys(): Promise<boolean> {
    return (await guarded(this.url, () => this.redis.exists(this.keys.apiKeyIndex))) === 1;
  }
}

/** HGETALL's flat reply inside a script (field, value, …) as the fields it names. */
function fromPairs(pairs: readonly string[]): StoredApiKeyFields {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) fields[pairs[i]!] = pairs[i + 1]!;
  return fields as unknown as StoredApiKeyFields;
}
