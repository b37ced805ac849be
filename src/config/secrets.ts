import { z } from 'zod';
import { configSchema } from './schema.js';
import { child, unwrap } from './restart.js';

declare module 'zod/v4/core' {
  interface GlobalMeta {
    /** Never printed back: `config get` (and anything else that shows config) masks it. */
    secret?: boolean;
  }
}

/** What a set secret shows as; an unset (empty) one shows as '' so the administrator sees it is missing. */
export const SECRET_MASK = '********';

/** Whether the field or any wrapper of it (its default, its refinements) is marked secret. */
function isSecret(schema: z.core.$ZodType): boolean {
  for (let cur: z.core.$ZodType | null = schema; cur; cur = unwrap(cur)) if (z.globalRegistry.get(cur)?.secret === true) return true;
  return false;
}

function innermost(schema: z.core.$ZodType): z.core.$ZodType {
  let cur = schema;
  for (let inner = unwrap(cur); inner; inner = unwrap(cur)) cur = inner;
  return cur;
}

/** The schema of a dotted key ('' is the whole document), or null when the schema has no such key. */
function schemaAt(key: string): z.core.$ZodType | null {
  let cur: z.core.$ZodType = configSchema;
  if (key === '') return cur;
  for (const part of key.split('.')) {
    const next = child(innermost(cur), part);
    if (!next) return null;
    cur = next;
  }
  return cur;
}

function maskWith(schema: z.core.$ZodType, value: unknown): unknown {
  if (isSecret(schema)) return value === '' || value === undefined ? value : SECRET_MASK;
  const s = innermost(schema);
  // Anything the schema does not describe is hidden rather than guessed about.
  const inner = (part: string, v: unknown) => {
    const c = child(s, part);
    return c ? maskWith(c, v) : SECRET_MASK;
  };
  if (Array.isArray(value)) return value.map((v, i) => inner(String(i), v));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, inner(k, v)]));
  return value;
}

/**
 * A copy of the config value at `key` ('' for the whole document) with every field the
 * schema marks `.meta({ secret: true })` masked, at any depth.
 */
export function maskSecrets(key: string, value: unknown): unknown {
  const schema = schemaAt(key);
  return schema ? maskWith(schema, value) : SECRET_MASK;
}
