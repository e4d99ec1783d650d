/**
 * Regular expressions for module paths (`--targets`, PEFT `target_modules` / `exclude_modules`)
 * matched in time linear in the path: the pattern is compiled to a Thompson NFA and simulated
 * state set by state set, so no pattern, however written (`(a|a)*b`, `(a+)+$`), can backtrack
 * exponentially the way JavaScript's own RegExp does. The pattern comes from a file a user may
 * have downloaded, so its cost must be bounded: at most `MAX_PATTERN` characters, counted
 * repetition up to `MAX_REPEAT`, and `MAX_STATES` NFA states; a match then costs at most
 * (path length + 1) × states steps.
 *
 * The syntax is the common subset of Python's `re` (what PEFT uses, `re.fullmatch`) and
 * JavaScript's: literals, `.`, classes `[a-z_]` / `[^…]`, `\d \w \s` and their negations, `\b \B`,
 * `^ $`, groups `( )`, `(?: )`, `(?P<name> )`, `(?<name> )`, alternation `|`, and the quantifiers
 * `* + ? {m} {m,} {m,n}` (lazy forms too: they match the same strings). Backreferences,
 * lookaround and inline flags are refused with a message saying so.
 */

/** A compiled pattern: `test` says whether it matches the whole string. */
export interface SafeRegex {
  readonly source: string;
  test(s: string): boolean;
}

export const MAX_PATTERN = 4096;
export const MAX_REPEAT = 1000;
export const MAX_STATES = 20_000;
/** Groups nested deeper than this are refused (the parser recurses once per group). */
export const MAX_NESTING = 100;

/** A pattern that is not valid, or uses syntax outside the supported subset. */
export class PatternError extends Error {
  override name = 'PatternError';
}

type CharTest = (c: number) => boolean;
type Assertion = '^' | '$' | 'b' | 'B';
type Ast =
  | { k: 'empty' }
  | { k: 'char'; test: CharTest }
  | { k: 'cat'; parts: Ast[] }
  | { k: 'alt'; alts: Ast[] }
  | { k: 'rep'; x: Ast; min: number; max: number }
  | { k: 'assert'; a: Assertion };

const code = (ch: string) => ch.codePointAt(0)!;
const isDigit: CharTest = (c) => c >= 48 && c <= 57;
const isWord: CharTest = (c) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isSpace: CharTest = (c) => c === 32 || (c >= 9 && c <= 13);
const not =
  (t: CharTest): CharTest =>
  (c) =>
    !t(c);

const CLASS_ESCAPES: Readonly<Record<string, CharTest>> = { d: isDigit, D: not(isDigit), w: isWord, W: not(isWord), s: isSpace, S: not(isSpace) };
const CHAR_ESCAPES: Readonly<Record<string, number>> = { n: 10, t: 9, r: 13, f: 12, v: 11, '0': 0 };

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly s: string) {}

  private fail(why: string): never {
    throw new PatternError(`${why} at position ${this.i}`);
  }

  private peek(): string | undefined {
    return this.s[this.i];
  }

  parse(): Ast {
    const ast = this.alt();
    if (this.i < this.s.length) this.fail(`unmatched ')'`);
    return ast;
  }

  private alt(): Ast {
    const alts = [this.cat()];
    while (this.peek() === '|') {
      this.i++;
      alts.push(this.cat());
    }
    return alts.length === 1 ? alts[0]! : { k: 'alt', alts };
  }

  private cat(): Ast {
    const parts: Ast[] = [];
    while (this.i < this.s.length && this.peek() !== '|' && this.peek() !== ')') parts.push(this.repeat());
    return parts.length === 0 ? { k: 'empty' } : parts.length === 1 ? parts[0]! : { k: 'cat', parts };
  }

  private repeat(): Ast {
    let x = this.atom();
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === '*') [min, max] = [0, Infinity];
      else if (c === '+') [min, max] = [1, Infinity];
      else if (c === '?') [min, max] = [0, 1];
      else if (c === '{' && /^\{\d+(,\d*)?\}/.test(this.s.slice(this.i))) {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.s.slice(this.i))!;
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) this.fail(`repetition {${m[1]}${m[2] ?? ''}} exceeds ${MAX_REPEAT}`);
        if (max < min) this.fail(`repetition {${m[1]}${m[2]}} has its bounds reversed`);
        this.i += m[0].length - 1;
      } else return x;
      if (x.k === 'assert') this.fail('nothing to repeat');
      this.i++;
      if (this.peek() === '?') this.i++; // lazy: the same strings match
      else if (this.peek() === '+') this.fail('possessive quantifiers are not supported');
      x = { k: 'rep', x, min, max };
    }
  }

  private atom(): Ast {
    const c = this.s[this.i++]!;
    switch (c) {
      case '(':
        return this.group();
      case '[':
        return { k: 'char', test: this.charClass() };
      case '.':
        return { k: 'char', test: (ch) => ch !== 10 };
      case '^':
        return { k: 'assert', a: '^' };
      case '$':
        return { k: 'assert', a: '$' };
      case '\\':
        return this.escape();
      case '*':
      case '+':
      case '?':
        return this.fail('nothing to repeat');
      default: {
        const cp = code(this.s.slice(this.i - 1));
        if (cp > 0xffff) this.i++;
        return { k: 'char', test: (ch) => ch === cp };
      }
    }
  }

  private group(): Ast {
    if (this.peek() === '?') {
      const rest = this.s.slice(this.i);
      const named = /^\?P?<[A-Za-z_][A-Za-z0-9_]*>/.exec(rest);
      if (rest.startsWith('?:')) this.i += 2;
      else if (named) this.i += named[0].length;
      else if (/^\?<?[=!]/.test(rest)) this.fail('lookahead and lookbehind are not supported');
      else if (rest.startsWith('?P=')) this.fail('backreferences are not supported');
      else this.fail(`'(${rest.slice(0, 3)}' (inline flags, atomic groups, conditionals) is not supported`);
    }
    if (++this.depth > MAX_NESTING) this.fail(`groups nested more than ${MAX_NESTING} deep`);
    const inner = this.alt();
    this.depth--;
    if (this.s[this.i++] !== ')') this.fail(`missing ')'`);
    return inner;
  }

  private escape(): Ast {
    const c = this.s[this.i++];
    if (c === undefined) this.fail('pattern ends with a lone backslash');
    if (c === 'b' || c === 'B') return { k: 'assert', a: c };
    if (c === 'A') return { k: 'assert', a: '^' };
    if (c === 'Z' || c === 'z') return { k: 'assert', a: '$' };
    if (/[1-9]/.test(c) || c === 'k') this.fail('backreferences are not supported');
    return { k: 'char', test: this.escapedChar(c) };
  }

  /** The character test of an escape (after the backslash), inside or outside a class. */
  private escapedChar(c: string): CharTest {
    const cls = CLASS_ESCAPES[c];
    if (cls) return cls;
    const lit = CHAR_ESCAPES[c];
    if (lit !== undefined) return (ch) => ch === lit;
    if (c === 'x' || c === 'u') {
      const n = c === 'x' ? 2 : 4;
      const hex = this.s.slice(this.i, this.i + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) this.fail(`'\\${c}' needs ${n} hex digits`);
      this.i += n;
      const cp = parseInt(hex, 16);
      return (ch) => ch === cp;
    }
    if (/[A-Za-z0-9]/.test(c)) this.fail(`unknown escape '\\${c}'`);
    const cp = code(c);
    return (ch) => ch === cp;
  }

  private charClass(): CharTest {
    let negate = false;
    if (this.peek() === '^') {
      negate = true;
      this.i++;
    }
    const items: CharTest[] = [];
    let first = true;
    for (;;) {
      if (this.i >= this.s.length) this.fail(`missing ']'`);
      let c = this.s[this.i++]!;
      if (c === ']' && !first) break;
      first = false;
      let lo: number | undefined;
      if (c === '\\') {
        const e = this.s[this.i++];
        if (e === undefined) this.fail('pattern ends with a lone backslash');
        const t = this.escapedChar(e);
        if (CLASS_ESCAPES[e] || this.peek() !== '-') {
          items.push(t);
          continue;
        }
        lo = e === 'x' || e === 'u' ? parseInt(this.s.slice(this.i - (e === 'x' ? 2 : 4), this.i), 16) : (CHAR_ESCAPES[e] ?? code(e));
      } else lo = code(c);
      if (this.peek() === '-' && this.s[this.i + 1] !== undefined && this.s[this.i + 1] !== ']') {
        this.i++;
        c = this.s[this.i++]!;
        let hi: number;
        if (c === '\\') {
          const e = this.s[this.i++];
          if (e === undefined || CLASS_ESCAPES[e]) this.fail('bad range in a character class');
          hi = CHAR_ESCAPES[e] ?? code(e);
        } else hi = code(c);
        if (hi < lo) this.fail('range out of order in a character class');
        const [a, b] = [lo, hi];
        items.push((ch) => ch >= a && ch <= b);
      } else {
        const v = lo;
        items.push((ch) => ch === v);
      }
    }
    const any: CharTest = (ch) => items.some((t) => t(ch));
    return negate ? not(any) : any;
  }
}

type State = { op: 'char'; test: CharTest; next: number } | { op: 'split'; a: number; b: number } | { op: 'assert'; a: Assertion; next: number } | { op: 'match' };

/** Builds the NFA backwards: each fragment is compiled with the state that follows it. */
class Compiler {
  readonly states: State[] = [{ op: 'match' }];

  private push(s: State): number {
    if (this.states.length >= MAX_STATES) throw new PatternError(`the pattern is too large (more than ${MAX_STATES} states once its repetitions are expanded)`);
    this.states.push(s);
    return this.states.length - 1;
  }

  compile(ast: Ast, next: number): number {
    switch (ast.k) {
      case 'empty':
        return next;
      case 'char':
        return this.push({ op: 'char', test: ast.test, next });
      case 'assert':
        return this.push({ op: 'assert', a: ast.a, next });
      case 'cat': {
        let at = next;
        for (let i = ast.parts.length - 1; i >= 0; i--) at = this.compile(ast.parts[i]!, at);
        return at;
      }
      case 'alt': {
        let at = this.compile(ast.alts[ast.alts.length - 1]!, next);
        for (let i = ast.alts.length - 2; i >= 0; i--) {
          const first = this.compile(ast.alts[i]!, next);
          at = this.push({ op: 'split', a: first, b: at });
        }
        return at;
      }
      case 'rep': {
        let at = next;
        if (ast.max === Infinity) {
          const loop = this.push({ op: 'split', a: -1, b: next });
          (this.states[loop] as { a: number }).a = this.compile(ast.x, loop);
          at = loop;
        } else {
          for (let i = 0; i < ast.max - ast.min; i++) at = this.push({ op: 'split', a: this.compile(ast.x, at), b: next });
        }
        for (let i = 0; i < ast.min; i++) at = this.compile(ast.x, at);
        return at;
      }
    }
  }
}

function holds(a: Assertion, chars: readonly number[], pos: number): boolean {
  switch (a) {
    case '^':
      return pos === 0;
    case '$':
      return pos === chars.length;
    case 'b':
    case 'B': {
      const before = pos > 0 && isWord(chars[pos - 1]!);
      const after = pos < chars.length && isWord(chars[pos]!);
      return (before !== after) === (a === 'b');
    }
  }
}

/**
 * Compiles `source` for full-string matching in linear time (see the module comment).
 *
 * @throws PatternError for invalid or unsupported syntax, or a pattern past the size bounds
 */
export function compileSafeRegex(source: string): SafeRegex {
  if (source.length > MAX_PATTERN) throw new PatternError(`the pattern is longer than ${MAX_PATTERN} characters`);
  const ast = new Parser(source).parse();
  const compiler = new Compiler();
  const start = compiler.compile(ast, 0);
  const states = compiler.states;
  return {
    source,
    test(s: string): boolean {
      const chars = Array.from(s, code);
      const mark = new Int32Array(states.length).fill(-1);
      let current: number[] = [];
      const stack: number[] = [];
      // Adds `from` and every state reachable from it without reading a character at `pos`.
      const add = (list: number[], from: number, pos: number) => {
        stack.push(from);
        while (stack.length) {
          const i = stack.pop()!;
          if (mark[i] === pos) continue;
          mark[i] = pos;
          const st = states[i]!;
          if (st.op === 'split') stack.push(st.b, st.a);
          else if (st.op === 'assert') {
            if (holds(st.a, chars, pos)) stack.push(st.next);
          } else list.push(i);
        }
      };
      add(current, start, 0);
      for (let pos = 0; pos < chars.length; pos++) {
        const next: number[] = [];
        const c = chars[pos]!;
        for (const i of current) {
          const st = states[i]!;
          if (st.op === 'char' && st.test(c)) add(next, st.next, pos + 1);
        }
        if (next.length === 0) return false;
        current = next;
      }
      return current.some((i) => states[i]!.op === 'match');
    },
  };
}
