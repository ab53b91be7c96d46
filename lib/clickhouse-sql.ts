/**
 * The one ClickHouse binder (DESIGN §4). ClickHouse 18.16 has no server-side query parameters, so
 * values are bound client-side: every value passes through `literal()`, which either produces a
 * literal ClickHouse parses back to exactly that value, or throws. SQL is written with the `ch`
 * tag; nothing else in the project builds ClickHouse SQL from strings.
 */

export type ChValue =
  string | number | bigint | boolean | Date | null | readonly ChValue[] | Identifier | ChFragment;

const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
  '\r': '\\r',
  '\n': '\\n',
  '\t': '\\t',
};

/** A string literal: backslash escapes for the quote, the backslash and control characters. */
export function quoteString(value: string): string {
  return `'${value.replace(/[\\'\0\b\f\r\n\t]/g, (c) => ESCAPES[c] as string)}'`;
}

class Identifier {
  constructor(readonly name: string) {}
}

/** A table or column name; only plain identifiers (optionally db-qualified) are accepted. */
export function ident(name: string): Identifier {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(name))
    throw new Error(`not a plain identifier: ${JSON.stringify(name)}`);
  return new Identifier(name);
}

export class ChFragment {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export function literal(value: ChValue): string {
  if (value === null) return 'NULL';
  if (value instanceof ChFragment) return value.text;
  if (value instanceof Identifier) return value.name;
  if (typeof value === 'string') return quoteString(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot bind a non-finite number: ${value}`);
    return String(value); // the shortest text that reads back as the same double
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new Error('cannot bind an invalid Date');
    const d = value;
    const text = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    return `toDateTime('${text}', 'UTC')`;
  }
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  throw new Error(`cannot bind a value of type ${typeof value}`);
}

/** Tagged template: ch`SELECT … WHERE track_id = toUUID(${id})` → SQL text with every value bound. */
export function ch(strings: TemplateStringsArray, ...values: ChValue[]): ChFragment {
  let out = strings[0] as string;
  values.forEach((v, i) => {
    out += literal(v) + (strings[i + 1] as string);
  });
  return new ChFragment(out);
}

/** Joins fragments (e.g. optional WHERE clauses) with a separator. */
export function join(parts: ChFragment[], separator: string): ChFragment {
  return new ChFragment(parts.map((p) => p.text).join(separator));
}
