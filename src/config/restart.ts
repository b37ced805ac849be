import { z } from 'zod';
import { configSchema } from './schema.js';

declare module 'zod/v4/core' {
  interface GlobalMeta {
    /** Read only when the daemon starts: a live `config set` is saved but changes nothing until then. */
    restart?: boolean;
  }
}

/** The schema a field is wrapped in (defaults, optional, refinements piped) is looked through. */
export function unwrap(schema: z.core.$ZodType): z.core.$ZodType | null {
  const def = schema._zod.def as z.core.$ZodTypeDef & { innerType?: z.core.$ZodType; in?: z.core.$ZodType };
  if (def.innerType) return def.innerType;
  if (def.type === 'pipe' && def.in) return def.in;
  return null;
}

const marked = (schema: z.core.$ZodType) => z.globalRegistry.get(schema)?.restart === true;

/** The child schema that holds `part` (an object key, an array index, a record key). */
export function child(schema: z.core.$ZodType, part: string): z.core.$ZodType | null {
  const def = schema._zod.def as z.core.$ZodTypeDef & { shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType };
  if (def.type === 'object') return Object.hasOwn(def.shape!, part) ? def.shape![part]! : null;
  if (def.type === 'array') return /^\d+$/.test(part) ? def.element! : null;
  if (def.type === 'record') return def.valueType!;
  return null;
}

/** Whether the schema itself, or anything inside it, is marked: setting a parent sets its children. */
function containsMarked(schema: z.core.$ZodType, seen = new Set<z.core.$ZodType>()): boolean {
  if (seen.has(schema)) return false;
  seen.add(schema);
  if (marked(schema)) return true;
  const inner = unwrap(schema);
  if (inner) return containsMarked(inner, seen);
  const def = schema._zod.def as z.core.$ZodTypeDef & { shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType };
  const children = def.type === 'object' ? Object.values(def.shape!) : def.type === 'array' ? [def.element!] : def.type === 'record' ? [def.valueType!] : [];
  return children.some((c) => containsMarked(c, seen));
}

/**
 * Whether setting a dotted config key ('smtp.listeners', 'ha.peer.host', 'smtp') takes
 * effect only at the next start: the key or one of its parents is marked
 * `.meta({ restart: true })` in the schema, or (for a parent key) one of its children is.
 * An unknown key answers false; `config set` refuses it anyway.
 */
export function needsRestart(key: string): boolean {
  let cur: z.core.$ZodType = configSchema;
  for (const part of key.split('.')) {
    // A mark on any wrapper of the field (its default, its refinements) marks the field.
    for (let inner = unwrap(cur); ; inner = unwrap(cur)) {
      if (marked(cur)) return true;
      if (!inner) break;
      cur = inner;
    }
    const next = child(cur, part);
    if (!next) return false;
    cur = next;
  }
  return containsMarked(cur);
}
