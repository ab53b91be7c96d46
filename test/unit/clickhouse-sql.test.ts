import fc from 'fast-check';
import { ch, ident, join, literal, quoteString } from '../../lib/clickhouse-sql';

/** The one ClickHouse binder: every value becomes a literal, or an error — never SQL text. */
describe('ClickHouse binder', () => {
  it('quotes strings with backslash escapes for quotes, backslashes and control characters', () => {
    expect(quoteString("it's")).toBe("'it\\'s'");
    expect(quoteString('back\\slash')).toBe("'back\\\\slash'");
    expect(quoteString('line\nbreak\ttab\rret\0nul\bbs\fff')).toBe(
      "'line\\nbreak\\ttab\\rret\\0nul\\bbs\\fff'",
    );
    expect(quoteString('')).toBe("''");
    expect(quoteString('emoji 🎵 and ünïcode')).toBe("'emoji 🎵 and ünïcode'");
  });

  it('leaves no unescaped quote in any string, so a value cannot end its literal early', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const q = quoteString(s);
        const inner = q.slice(1, -1);
        // Walk the escapes: every quote inside must be preceded by an escaping backslash.
        for (let i = 0; i < inner.length; i++) {
          if (inner[i] === '\\') i++;
          else expect(inner[i]).not.toBe("'");
        }
        expect(inner).not.toMatch(/[\n\r\0]/);
      }),
      { numRuns: 2000 },
    );
  });

  it('binds numbers, bigints, booleans, null, dates and arrays', () => {
    expect(literal(42)).toBe('42');
    expect(literal(-1.5)).toBe('-1.5');
    expect(literal(1e-7)).toBe('1e-7');
    expect(literal(12345678901234567890n)).toBe('12345678901234567890');
    expect(literal(true)).toBe('1');
    expect(literal(null)).toBe('NULL');
    expect(literal(new Date('2025-05-01T07:08:09.999Z'))).toBe("toDateTime('2025-05-01 07:08:09', 'UTC')");
    expect(literal(['a', 1, ["b'"]])).toBe("['a', 1, ['b\\'']]");
  });

  it('refuses values it cannot bind faithfully', () => {
    expect(() => literal(Number.NaN)).toThrow(/non-finite/);
    expect(() => literal(Number.POSITIVE_INFINITY)).toThrow(/non-finite/);
    expect(() => literal(new Date('nope'))).toThrow(/invalid Date/);
    expect(() => literal({} as never)).toThrow(/cannot bind/);
  });

  it('accepts only plain identifiers', () => {
    expect(literal(ident('cadenza.play_ticks'))).toBe('cadenza.play_ticks');
    for (const bad of ['a b', 'x;DROP TABLE y', '`x`', '1abc', 'a.b.c', ''])
      expect(() => ident(bad)).toThrow(/plain identifier/);
  });

  it('builds statements from a template, and joins fragments', () => {
    const where = join([ch`a = ${"x'"}`, ch`b > ${3}`], ' AND ');
    expect(ch`SELECT * FROM ${ident('t')} WHERE ${where}`.text).toBe(
      "SELECT * FROM t WHERE a = 'x\\'' AND b > 3",
    );
  });
});
