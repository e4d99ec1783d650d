/**
 * The linear-time module-path matcher agrees with JavaScript's RegExp (full match) on every
 * pattern of the supported syntax: a table of the forms PEFT configs use, and 3,000 seeded random
 * patterns over module-path alphabets; refuses the syntax it does not support; and decides the
 * classic exponential patterns without backtracking.
 */
import { describe, expect, it } from 'vitest';
import { compileSafeRegex, MAX_REPEAT, MAX_STATES, PatternError } from '../../src/util/safe-regex.ts';
import { Random } from '../../src/util/random.ts';

const PATHS = [
  'bert.encoder.layer.0.attention.self.query',
  'bert.encoder.layer.11.attention.self.value',
  'model.layers.3.mlp.down_proj',
  'transformer.h.0.attn.c_attn',
  'classifier',
  '',
  'a',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab',
  'q_proj',
  'decoder.block.2.layer.0.SelfAttention.q',
];

const js = (p: string) => new RegExp(`^(?:${p})$`);

describe('compileSafeRegex', () => {
  const table = [
    '.*\\.(query|value)',
    '.*layer\\.0.*(query|value)',
    '^classifier$',
    '.*decoder.*(SelfAttention|EncDecAttention).*(q|k|v|o)$',
    'model\\.layers\\.\\d+\\.mlp\\.(up|down|gate)_proj',
    '.*\\.h\\.[0-9]{1,2}\\.attn\\.c_attn',
    '[a-z]+(\\.[a-z_0-9]+)*',
    '[^.]+',
    '(?:bert|model)\\..*',
    '(?P<x>bert)\\..*query',
    '.*\\bquery',
    '.*\\Bery',
    'a{0,3}b?',
    'a{2,}b',
    '(a|ab)(c|bcd)(d*)',
    '.*?query',
    '[\\w.]+',
    '\\x61+b',
    '[-a]+',
    'a|',
    '()',
  ];
  for (const p of table) {
    it(`agrees with RegExp on ${p}`, () => {
      const re = compileSafeRegex(p.replace('(?P<', '(?<'));
      const ref = js(p.replace('(?P<', '(?<'));
      for (const s of PATHS) expect(re.test(s), `${p} on '${s}'`).toBe(ref.test(s));
    });
  }

  it('agrees with RegExp on 3,000 random patterns over module-path alphabets', () => {
    const rng = new Random(1234);
    const atoms = ['a', 'b', '.', '\\.', '[ab]', '[^a]', '\\d', '\\w', 'q', '_', '0', '1'];
    const gen = (depth: number): string => {
      const n = 1 + Math.floor(rng.next() * 3);
      let out = '';
      for (let i = 0; i < n; i++) {
        const r = rng.next();
        let atom = r < 0.2 && depth < 3 ? `(${gen(depth + 1)}${rng.next() < 0.4 ? `|${gen(depth + 1)}` : ''})` : atoms[Math.floor(rng.next() * atoms.length)]!;
        const q = rng.next();
        if (q < 0.15) atom += '*';
        else if (q < 0.25) atom += '+';
        else if (q < 0.32) atom += '?';
        else if (q < 0.37) atom += `{${Math.floor(rng.next() * 3)},${2 + Math.floor(rng.next() * 2)}}`;
        out += atom;
      }
      return out;
    };
    // Short strings only: RegExp itself, the reference, backtracks exponentially on long ones.
    const strings = ['', 'a', 'ab', 'aab', 'a.b', 'q_0', 'ba1', 'abab.q', 'aaaa', 'b0_q.a', 'q.a1_b', 'layer.0.q'];
    let matched = 0;
    for (let i = 0; i < 3000; i++) {
      const p = gen(0);
      const re = compileSafeRegex(p);
      const ref = js(p);
      for (const s of strings) {
        const want = ref.test(s);
        expect(re.test(s), `${p} on '${s}'`).toBe(want);
        if (want) matched++;
      }
    }
    expect(matched).toBeGreaterThan(1000); // the corpus exercises matches, not only misses
  });

  it('decides exponential-backtracking patterns in one pass', () => {
    const s = 'bert.encoder.layer.0.attention.self.query'.repeat(20);
    for (const p of ['(([a-z0-9]+\\.?)+)+X', '(a|a)*b', '(.*)*X', '(\\w+\\.?)*\\d{5}$', '((a*)*)*b']) {
      expect(compileSafeRegex(p).test(s)).toBe(false);
      expect(compileSafeRegex(p).test('a'.repeat(5000))).toBe(false);
    }
  }, 20_000);

  const refused: Array<[string, RegExp]> = [
    ['(?=a)a', /lookahead and lookbehind are not supported/],
    ['(?<!a)b', /lookahead and lookbehind are not supported/],
    ['(a)\\1', /backreferences are not supported/],
    ['(?P<n>a)(?P=n)', /backreferences are not supported/],
    ['(?i)query', /inline flags, atomic groups, conditionals/],
    ['a++', /possessive quantifiers are not supported/],
    ['(query', /missing '\)'/],
    ['query)', /unmatched '\)'/],
    ['[abc', /missing '\]'/],
    ['*a', /nothing to repeat/],
    ['\\q', /unknown escape/],
    ['[z-a]', /range out of order/],
    [`a{${MAX_REPEAT + 1}}`, /exceeds 1000/],
    ['a{3,1}', /bounds reversed/],
    ['((((a{1000}){1000}){1000}){1000})', new RegExp(`more than ${MAX_STATES} states`)],
    ['('.repeat(200) + ')'.repeat(200), /nested more than 100 deep/],
    ['a'.repeat(5000), /longer than 4096 characters/],
  ];
  for (const [p, why] of refused) {
    it(`refuses ${p.length > 40 ? `${p.slice(0, 40)}…` : p}`, () => {
      expect(() => compileSafeRegex(p)).toThrow(PatternError);
      expect(() => compileSafeRegex(p)).toThrow(why);
    });
  }
});
