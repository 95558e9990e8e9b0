import { errorText, type RedisConnection } from './connection.js'

/** What the startup check found out about the server. */
export interface RedisServerCheck {
  /** `appendonly` as CONFIG GET reported it; undefined when CONFIG GET was refused */
  appendonly?: string
  /** `maxmemory-policy` as CONFIG GET reported it; undefined when CONFIG GET was refused */
  maxmemoryPolicy?: string
  /** the warnings logged (empty when the server is set up for durable locks and certificates) */
  warnings: string[]
}

const PREFIX = '@fastify-acme/storage-adapters/redis:'

/**
 * Reads the persistence and eviction settings and explains what each risky value means for
 * certificates and locks. Managed services often refuse CONFIG: then it says it could not check.
 */
export async function checkRedisServer (conn: RedisConnection, timeoutMs: number): Promise<RedisServerCheck> {
  let appendonly: string | undefined
  let policy: string | undefined
  try {
    [appendonly, policy] = await Promise.all([
      configGet(conn, 'appendonly', timeoutMs),
      configGet(conn, 'maxmemory-policy', timeoutMs),
    ])
  } catch (err) {
    return {
      warnings: [`${PREFIX} could not check appendonly and maxmemory-policy (CONFIG GET failed: ${errorText(err)}). ` +
        'Make sure the server persists writes (appendonly yes) and never evicts keys (maxmemory-policy noeviction).'],
    }
  }
  const warnings: string[] = []
  if (appendonly === 'no') {
    warnings.push(`${PREFIX} the server runs with appendonly no: a crash or restart loses certificates written since the last ` +
      'snapshot and forgets every lock (holders notice at their next renewal). Set appendonly yes (and appendfsync always for no loss).')
  }
  if (policy !== undefined && policy.startsWith('allkeys-')) {
    warnings.push(`${PREFIX} maxmemory-policy is ${policy}: under memory pressure Redis may evict certificates, accounts ` +
      'and locks. Use maxmemory-policy noeviction.')
  } else if (policy !== undefined && policy.startsWith('volatile-')) {
    warnings.push(`${PREFIX} maxmemory-policy is ${policy}: under memory pressure Redis may evict held locks (they have a TTL), ` +
      'letting two instances work on one certificate. Use maxmemory-policy noeviction.')
  }
  return { appendonly, maxmemoryPolicy: policy, warnings }
}

async function configGet (conn: RedisConnection, name: string, timeoutMs: number): Promise<string | undefined> {
  const reply = await conn.send(['CONFIG', 'GET', name], { timeoutMs })
  // RESP2 answers [name, value]; RESP3 a map (an object in node-redis, a Map or array elsewhere)
  const entries: unknown[][] = Array.isArray(reply)
    ? reply.flatMap((v, i) => i % 2 === 0 ? [[v, reply[i + 1]]] : [])
    : reply instanceof Map ? [...reply.entries()] : Object.entries(reply ?? {})
  const found = entries.find(([k]) => String(k) === name)
  return found === undefined ? undefined : String(found[1])
}
