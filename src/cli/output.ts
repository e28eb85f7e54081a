/**
 * Printing data in the format a command was given: a table that fits the terminal (the default), JSON,
 * YAML, CSV, or with -q only the key of each item (names, tags), one a line, as `podman ps -q` does.
 */
import { fstatSync, writeSync } from 'node:fs';

export type Format = 'table' | 'json' | 'yaml' | 'csv';

type Cell = string | number | null | undefined;

/** How a value looks as a table and what its key is; JSON, YAML and CSV show the value itself. */
export interface View<R> {
  /** The table's (and CSV's) columns: header and cell; without them the rows' own keys. */
  columns?: [header: string, cell: (row: R) => Cell][];
  /** The table's text of a single value, instead of columns (e.g. status's two lines). */
  text?: (value: R) => string;
  /** What -q prints of a row; default its `name`, or the row itself when it is a string. */
  key?: (row: R) => Cell;
}

const cellText = (c: unknown): string => (c === null || c === undefined ? '-' : typeof c === 'object' ? JSON.stringify(c) : String(c));

/** The width each column gets so that the line fits `width`: the widest columns give way first, never below 8. */
export function fitWidths(natural: number[], width: number, gap = 2): number[] {
  const widths = [...natural];
  const total = () => widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1);
  while (total() > width) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest] <= 8) break;
    widths[widest] -= Math.min(widths[widest] - 8, total() - width);
  }
  return widths;
}

/** Rows as aligned text under a header line; cut to `width` (the terminal's) with "…" when given. */
export function tableText(header: string[], rows: Cell[][], width?: number): string {
  const cells = [header, ...rows.map((r) => r.map(cellText))];
  const natural = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const widths = width === undefined ? natural : fitWidths(natural, width);
  const fit = (c: string, w: number) => (c.length > w ? `${c.slice(0, w - 1)}…` : c);
  return cells
    .map(
      (r) =>
        r
          .map((c, i) => (i === r.length - 1 ? fit(c, widths[i]) : fit(c, widths[i]).padEnd(widths[i])))
          .join('  ')
          .trimEnd() + '\n',
    )
    .join('');
}

/** A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
const csvField = (c: Cell | unknown): string => {
  const t = c === null || c === undefined ? '' : typeof c === 'object' ? JSON.stringify(c) : String(c);
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
};

export class Output {
  constructor(
    readonly format: Format,
    readonly quiet: boolean,
    private readonly write: (s: string) => void = writeStdout,
  ) {}

  /** Prints a list (rows) or one value. */
  async print<R>(value: R | R[], view: View<R> = {}): Promise<void> {
    const rows = Array.isArray(value) ? value : [value];
    if (this.quiet) {
      const key = view.key ?? ((r: R) => (typeof r === 'object' && r !== null ? (r as { name?: Cell }).name : (r as Cell)));
      for (const r of rows) this.write(`${cellText(key(r))}\n`);
      return;
    }
    if (this.format === 'json') return this.write(JSON.stringify(value, null, 2) + '\n');
    if (this.format === 'yaml') {
      const { default: YAML } = await import('yaml'); // loaded by --format yaml alone; CommonJS under Node, so its default export
      return this.write(YAML.stringify(value));
    }
    const columns = view.columns ?? columnsOf(rows);
    if (this.format === 'csv') {
      const lines = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, cell]) => cell(r)))];
      return this.write(lines.map((l) => l.map(csvField).join(',') + '\r\n').join(''));
    }
    if (!Array.isArray(value) && view.text) return this.write(view.text(value));
    if (!view.columns && rows.every((r) => typeof r !== 'object' || r === null)) return this.write(rows.map((r) => `${cellText(r)}\n`).join('')); // a list of words: one a line
    const width = stdoutIsTerminal() ? process.stdout.columns : undefined;
    this.write(
      tableText(
        columns.map(([h]) => h),
        rows.map((r) => columns.map(([, cell]) => cell(r))),
        width,
      ),
    );
  }
}

/**
 * Writes to descriptor 1 without making process.stdout: that stream costs a CLI 2–9 ms of module
 * loading at every start. It writes the same way, since Node's stdout to a file or pipe is synchronous
 * on Linux. A descriptor someone left non-blocking (EAGAIN) gets the rest through process.stdout; a
 * reader that went away (EPIPE: `dre-app list | head -1`) ends the output, as it would for a C tool.
 */
export function writeStdout(s: string): void {
  if (viaStream) return void process.stdout.write(s); // after an EAGAIN: the rest in order, through the stream
  const buf = Buffer.from(s);
  for (let done = 0; done < buf.length;) {
    try {
      done += writeSync(1, buf, done);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') return;
      if (code !== 'EAGAIN') throw e;
      viaStream = true;
      process.stdout.write(buf.subarray(done));
      return;
    }
  }
}

let viaStream = false;

/** Character devices of major 1 (/dev/null, /dev/zero, /dev/full ...) are never terminals. */
const MEMORY_DEVICES_MAJOR = 1;

/**
 * Whether stdout is a terminal, asking process.stdout (which loads the stream modules: ≈ 2.5 ms) only
 * for a character device that may be one: not for a file, a pipe, or /dev/null.
 */
function stdoutIsTerminal(): boolean {
  const st = fstatSync(1);
  return st.isCharacterDevice() && Math.floor(st.rdev / 256) % 4096 !== MEMORY_DEVICES_MAJOR && process.stdout.isTTY === true;
}

/** Columns from the rows' own keys (a list of strings is one column, VALUE). */
function columnsOf<R>(rows: R[]): [string, (row: R) => Cell][] {
  if (rows.every((r) => typeof r !== 'object' || r === null)) return [['VALUE', (r) => r as Cell]];
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r as object)))];
  return keys.map((k) => [k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase(), (r) => (r as Record<string, Cell>)[k]]);
}

/**
 * Progress of long work on stderr: on a terminal one line redrawn in place (a bar when the fraction is
 * known), when piped one plain line per step, so logs and scripts read what a user saw. `done` ends it.
 */
export function progress(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
): { step(text: string, fraction?: number): void; done(text: string): void } {
  const tty = stream.isTTY === true;
  const width = () => Math.max(20, (stream.columns ?? 80) - 1);
  const line = (text: string, fraction?: number) => {
    const bar =
      fraction === undefined ? '' : ` [${'#'.repeat(Math.round(Math.min(1, Math.max(0, fraction)) * 20)).padEnd(20, '.')}] ${Math.round(fraction * 100)}%`;
    return `${label}:${bar} ${text}`;
  };
  return {
    step: (text, fraction) => {
      if (tty) stream.write(`\r\x1b[K${line(text, fraction).slice(0, width())}`);
      else stream.write(`${line(text, fraction)}\n`);
    },
    done: (text) => stream.write(`${tty ? '\r\x1b[K' : ''}${label}: ${text}\n`),
  };
}
