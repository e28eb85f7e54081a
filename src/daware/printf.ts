/**
 * C's printf format language for JavaScript values: flags `- + space # 0`, width, precision, `*`,
 * length modifiers (hh h l ll L q j z Z t), conversions `d i u o x X c s f F e E g G p %`.
 * Floating-point output is the exact binary value rounded half-to-even, as glibc prints it.
 * JavaScript has one number type, so: signed conversions keep the value unless `hh`/`h` narrow it;
 * unsigned conversions of a negative value wrap at 32 bits (64 with `l`, `ll`, `j`, `z`, `t`, or when
 * the value does not fit an int). A missing argument counts as 0 (or a null string).
 */

const SPEC = /%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d*))?(hh|ll|[hlLqjzZt])?([diouxXcsfFeEgGp%])?/y;

interface Spec {
  left: boolean;
  plus: boolean;
  space: boolean;
  alt: boolean;
  zero: boolean;
  width: number;
  prec: number | undefined;
  len: string;
  conv: string;
}

/** Formats `fmt` with `args` as C's sprintf would. */
export function sprintf(fmt: string, ...args: unknown[]): string {
  let out = '';
  let argi = 0;
  const next = (): unknown => args[argi++];
  for (let i = 0; i < fmt.length;) {
    const pct = fmt.indexOf('%', i);
    if (pct < 0) {
      out += fmt.slice(i);
      break;
    }
    out += fmt.slice(i, pct);
    SPEC.lastIndex = pct;
    const m = SPEC.exec(fmt)!;
    i = SPEC.lastIndex;
    const [text, flags, w, p, len = '', conv] = m;
    if (conv === undefined) {
      out += text; // not a conversion C knows: printed as written, like glibc
      continue;
    }
    if (conv === '%') {
      out += '%';
      continue;
    }
    const s: Spec = {
      left: flags.includes('-'),
      plus: flags.includes('+'),
      space: flags.includes(' '),
      alt: flags.includes('#'),
      zero: flags.includes('0'),
      width: 0,
      prec: undefined,
      len,
      conv,
    };
    if (w === '*') {
      const v = Number(toInt(next()));
      if (v < 0) s.left = true;
      s.width = Math.abs(v);
    } else if (w !== undefined) s.width = Number(w);
    if (p === '*') {
      const v = Number(toInt(next()));
      s.prec = v < 0 ? undefined : v;
    } else if (p !== undefined) s.prec = p === '' ? 0 : Number(p);
    out += convert(s, next());
  }
  return out;
}

function convert(s: Spec, arg: unknown): string {
  switch (s.conv) {
    case 'd':
    case 'i':
      return integer(s, signedValue(toInt(arg), s.len), 10);
    case 'u':
      return integer(s, unsignedValue(toInt(arg), s.len), 10);
    case 'o':
      return integer(s, unsignedValue(toInt(arg), s.len), 8);
    case 'x':
    case 'X':
      return integer(s, unsignedValue(toInt(arg), s.len), 16);
    case 'c':
      return pad(s, typeof arg === 'string' ? ([...arg][0] ?? '') : String.fromCharCode(Number(BigInt.asUintN(8, toInt(arg)))));
    case 's':
      return pad(s, str(arg, s.prec));
    case 'p':
      return pointer(s, arg);
    default:
      return float(s, toFloat(arg));
  }
}

function toInt(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  const n = typeof v === 'number' ? v : Number(v ?? 0);
  return Number.isFinite(n) ? BigInt(Math.trunc(n)) : 0n;
}

function toFloat(v: unknown): number {
  return typeof v === 'number' ? v : Number(v ?? 0);
}

function signedValue(v: bigint, len: string): bigint {
  if (len === 'hh') return BigInt.asIntN(8, v);
  if (len === 'h') return BigInt.asIntN(16, v);
  return len === '' || len === 'L' ? v : BigInt.asIntN(64, v);
}

function unsignedValue(v: bigint, len: string): bigint {
  if (len === 'hh') return BigInt.asUintN(8, v);
  if (len === 'h') return BigInt.asUintN(16, v);
  if ((len === '' || len === 'L') && v >= -(2n ** 31n)) return v < 0n ? BigInt.asUintN(32, v) : v;
  return BigInt.asUintN(64, v);
}

/** Pads `body` to the field width with spaces (left or right). */
function pad(s: Spec, body: string): string {
  if (body.length >= s.width) return body;
  const fill = ' '.repeat(s.width - body.length);
  return s.left ? body + fill : fill + body;
}

/** Joins sign, prefix and digits, zero-filling between them when `0` applies. */
function field(s: Spec, sign: string, prefix: string, digits: string, zeroOk: boolean): string {
  if (s.zero && !s.left && zeroOk) {
    const room = s.width - sign.length - prefix.length;
    return sign + prefix + digits.padStart(room, '0');
  }
  return pad(s, sign + prefix + digits);
}

function signOf(s: Spec, negative: boolean): string {
  if (negative) return '-';
  if (s.plus) return '+';
  return s.space ? ' ' : '';
}

function integer(s: Spec, v: bigint, base: number): string {
  const negative = v < 0n;
  let digits = (negative ? -v : v).toString(base);
  if (s.conv === 'X') digits = digits.toUpperCase();
  if (s.prec !== undefined) digits = s.prec === 0 && v === 0n ? '' : digits.padStart(s.prec, '0');
  if (s.alt && s.conv === 'o' && !digits.startsWith('0')) digits = '0' + digits;
  const prefix = s.alt && v !== 0n && (s.conv === 'x' || s.conv === 'X') ? `0${s.conv}` : '';
  const signed = s.conv === 'd' || s.conv === 'i';
  return field(s, signed ? signOf(s, negative) : '', prefix, digits, s.prec === undefined);
}

function str(arg: unknown, prec: number | undefined): string {
  // glibc prints a null string as "(null)" when the precision leaves room for it, else as nothing.
  const text = arg === null || arg === undefined ? (prec === undefined || prec >= 6 ? '(null)' : '') : String(arg);
  return prec === undefined ? text : text.slice(0, prec);
}

function pointer(s: Spec, arg: unknown): string {
  const v = arg === null || arg === undefined ? 0n : BigInt.asUintN(64, toInt(arg));
  return pad(s, v === 0n ? '(nil)' : `${signOf(s, false)}0x${v.toString(16)}`);
}

// ---- floating point: exact decimal expansion of the binary value with BigInt ----

/** A non-negative finite double as n / 10^scale, exactly. */
interface Exact {
  n: bigint;
  scale: number;
}

const POW5: bigint[] = [1n];
const POW10: bigint[] = [1n];
const pow = (table: bigint[], base: bigint, k: number): bigint => {
  while (table.length <= k) table.push(table[table.length - 1] * base);
  return table[k];
};

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);

function exactDecimal(x: number): Exact {
  if (x === 0) return { n: 0n, scale: 0 };
  F64[0] = x;
  const bits = U64[0];
  const expBits = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  let e = -1074;
  if (expBits !== 0) {
    mant |= 1n << 52n;
    e = expBits - 1075;
  }
  return e >= 0 ? { n: mant << BigInt(e), scale: 0 } : { n: mant * pow(POW5, 5n, -e), scale: -e };
}

/** n / 10^k rounded half to even (k < 0 multiplies). */
function roundShift(n: bigint, k: number): bigint {
  if (k <= 0) return n * pow(POW10, 10n, -k);
  const d = pow(POW10, 10n, k);
  const q = n / d;
  const twice = 2n * (n % d);
  return twice > d || (twice === d && (q & 1n) === 1n) ? q + 1n : q;
}

/** Fixed notation with `prec` decimals. */
function fixed({ n, scale }: Exact, prec: number, alt: boolean): string {
  const digits = roundShift(n, scale - prec)
    .toString()
    .padStart(prec + 1, '0');
  const int = digits.slice(0, digits.length - prec);
  const frac = digits.slice(digits.length - prec);
  return prec > 0 || alt ? `${int}.${frac}` : int;
}

/** The value rounded to `sig` significant digits: the digits and the decimal exponent of the first one. */
function significant({ n, scale }: Exact, sig: number): { digits: string; exp: number } {
  if (n === 0n) return { digits: '0'.repeat(sig), exp: 0 };
  const len = n.toString().length;
  let exp = len - 1 - scale;
  let digits = roundShift(n, len - sig).toString();
  if (digits.length > sig) {
    exp += 1; // rounding carried into a new digit (9.99 → 10.0)
    digits = digits.slice(0, sig);
  }
  return { digits, exp };
}

function exponential(x: Exact, prec: number, alt: boolean): string {
  const { digits, exp } = significant(x, prec + 1);
  const mant = prec > 0 || alt ? `${digits[0]}.${digits.slice(1)}` : digits[0];
  return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

function general(x: Exact, prec: number | undefined, alt: boolean): string {
  const p = prec === undefined ? 6 : prec === 0 ? 1 : prec;
  const { exp } = significant(x, p);
  const text = p > exp && exp >= -4 ? fixed(x, p - 1 - exp, alt) : exponential(x, p - 1, alt);
  if (alt || !text.includes('.')) return text;
  // Without '#', %g drops the fraction's trailing zeros, and the point when nothing follows it.
  const e = text.indexOf('e');
  const mant = e < 0 ? text : text.slice(0, e);
  return mant.replace(/0+$/, '').replace(/\.$/, '') + (e < 0 ? '' : text.slice(e));
}

function float(s: Spec, x: number): string {
  const negative = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  let body: string;
  if (Number.isNaN(x)) body = 'nan';
  else if (!Number.isFinite(x)) body = 'inf';
  else if (s.conv === 'f' || s.conv === 'F') body = fixed(exactDecimal(a), s.prec ?? 6, s.alt);
  else if (s.conv === 'e' || s.conv === 'E') body = exponential(exactDecimal(a), s.prec ?? 6, s.alt);
  else body = general(exactDecimal(a), s.prec, s.alt);
  if (s.conv === 'F' || s.conv === 'E' || s.conv === 'G') body = body.toUpperCase();
  return field(s, signOf(s, negative && !Number.isNaN(x)), '', body, Number.isFinite(x));
}
