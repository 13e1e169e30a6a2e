/**
 * What a binlog QUERY event means to a change stream. In ROW format a QUERY event is one of:
 * transaction framing (`BEGIN` - MariaDB's GTID event reaches a plain client as `BEGIN` -, `COMMIT`
 * after changes to non-transactional tables, `ROLLBACK`, XA steps), DDL (`ALTER TABLE`, `TRUNCATE`,
 * `DROP TABLE`, `RENAME TABLE`, `CREATE TABLE` ...), administrative statements, or comments (MariaDB
 * replaces the events a plain client does not understand - GTID lists, binlog checkpoints,
 * annotations - with `# Dummy event ...` comments). A session that switched itself to STATEMENT or
 * MIXED format also writes its DML here, as SQL text with no row images.
 *
 * Table names are read with a small tokenizer that knows MySQL's quoting and comments (backticks with
 * doubled backticks, ANSI double quotes, strings, `#`, `-- `, block comments, and the executable
 * comments `/*!50100 ... *\/` / `/*M!100100 ... *\/` whose content the server runs). It errs on the
 * side of naming a table: a table named by mistake costs a reconcile, a table missed loses changes.
 */

/** A table name as a statement writes it: `t`, `db`.`t`. */
export interface TableReference {
  readonly schema?: string;
  readonly table: string;
}

export type QueryEventMeaning =
  | { readonly kind: 'begin' }
  /** The end of a transaction (COMMIT; XA PREPARE / XA COMMIT, see `classifyQueryEvent`). */
  | { readonly kind: 'commit' }
  | { readonly kind: 'rollback' }
  /** Neither framing nor a change to any table (comments, savepoints, GRANT, FLUSH, ANALYZE ...). */
  | { readonly kind: 'none' }
  | {
      readonly kind: 'change';
      /** Tables whose rows may all be gone (TRUNCATE). */
      readonly truncated: readonly TableReference[];
      /** Tables whose definition or identity changed (ALTER, DROP, RENAME, CREATE, DROP of the PK index). */
      readonly altered: readonly TableReference[];
      /** Tables whose rows a statement-format DML statement changed (no row images to read keys from). */
      readonly rewritten: readonly TableReference[];
      /** DROP DATABASE / DROP SCHEMA. */
      readonly droppedDatabases: readonly string[];
    };

/**
 * XA: MariaDB 10.5+ writes an XA transaction's row events at `XA PREPARE` and a separate `XA COMMIT`
 * later. The keys are delivered at `XA PREPARE`; a sync that reads them before `XA COMMIT` reads the
 * old rows, and the (row-less) `XA COMMIT` brings no second notice. XA with binlog CDC is therefore
 * only eventually right after the next reconcile; ordinary transactions are not affected.
 */
export function classifyQueryEvent(sql: string): QueryEventMeaning {
  const tokens = tokenize(sql);
  const cursor = new Cursor(tokens);
  const first = cursor.word();
  switch (first) {
    case undefined:
      return NONE;
    case 'BEGIN':
      return { kind: 'begin' };
    case 'START':
      return cursor.peekWord() === 'TRANSACTION' ? { kind: 'begin' } : NONE;
    case 'COMMIT':
      return { kind: 'commit' };
    case 'ROLLBACK':
      return cursor.peekWord() === 'TO' || cursor.peekWords('WORK', 'TO') ? NONE : { kind: 'rollback' };
    case 'XA': {
      const step = cursor.word();
      if (step === 'START' || step === 'BEGIN') return { kind: 'begin' };
      if (step === 'PREPARE' || step === 'COMMIT') return { kind: 'commit' };
      if (step === 'ROLLBACK') return { kind: 'rollback' };
      return NONE;
    }
    case 'ALTER':
      return alterStatement(cursor);
    case 'TRUNCATE':
      cursor.acceptWord('TABLE');
      return change({ truncated: nameList(cursor, 1) });
    case 'DROP':
      return dropStatement(cursor);
    case 'RENAME':
      return renameStatement(cursor);
    case 'CREATE':
      return createStatement(cursor);
    case 'INSERT':
    case 'REPLACE':
    case 'UPDATE':
    case 'DELETE':
    case 'LOAD':
      // Statement-format DML: every name in it may be a changed table.
      return change({ rewritten: everyName(tokens) });
    default:
      return NONE;
  }
}

const NONE: QueryEventMeaning = { kind: 'none' };

function change(parts: {
  truncated?: TableReference[];
  altered?: TableReference[];
  rewritten?: TableReference[];
  droppedDatabases?: string[];
}): QueryEventMeaning {
  const meaning = {
    kind: 'change' as const,
    truncated: parts.truncated ?? [],
    altered: parts.altered ?? [],
    rewritten: parts.rewritten ?? [],
    droppedDatabases: parts.droppedDatabases ?? [],
  };
  const empty = meaning.truncated.length + meaning.altered.length + meaning.rewritten.length + meaning.droppedDatabases.length === 0;
  return empty ? NONE : meaning;
}

/**
 * ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] t ...: t, plus the tables it renames to (`RENAME [TO|AS]
 * u`) and exchanges partitions with (`WITH TABLE u`).
 */
function alterStatement(cursor: Cursor): QueryEventMeaning {
  while (['ONLINE', 'OFFLINE', 'IGNORE'].some((modifier) => cursor.acceptWord(modifier))) {
    // ALTER [ONLINE | OFFLINE] [IGNORE] TABLE
  }
  if (!cursor.acceptWord('TABLE')) return NONE; // ALTER DATABASE/USER/VIEW/EVENT ... change no table rows
  acceptIfExists(cursor);
  const table = cursor.name();
  if (!table) return NONE;
  const altered = [table];
  while (!cursor.done()) {
    const word = cursor.word();
    if (word === 'RENAME') {
      if (['COLUMN', 'INDEX', 'KEY'].includes(cursor.peekWord() ?? '')) continue;
      if (!cursor.acceptWord('TO')) cursor.acceptWord('AS');
      const target = cursor.name();
      if (target) altered.push(target);
    } else if (word === 'WITH' && cursor.acceptWord('TABLE')) {
      const other = cursor.name();
      if (other) altered.push(other);
    } else if (word === undefined) {
      cursor.skip();
    }
  }
  return change({ altered });
}

/**
 * DROP [TEMPORARY] TABLE[S] [IF EXISTS] a, b ...; DROP DATABASE|SCHEMA [IF EXISTS] d; DROP INDEX
 * `PRIMARY` ON t. A temporary table is never the streamed base table (and ROW format logs its DROP
 * only as a safety `IF EXISTS`).
 */
function dropStatement(cursor: Cursor): QueryEventMeaning {
  if (cursor.acceptWord('TEMPORARY')) return NONE;
  if (cursor.acceptWord('TABLE') || cursor.acceptWord('TABLES')) {
    acceptIfExists(cursor);
    return change({ altered: nameList(cursor, Number.POSITIVE_INFINITY) });
  }
  if (cursor.acceptWord('DATABASE') || cursor.acceptWord('SCHEMA')) {
    acceptIfExists(cursor);
    const name = cursor.identifier();
    return name === undefined ? NONE : change({ droppedDatabases: [name] });
  }
  if (!cursor.acceptWord('ONLINE')) cursor.acceptWord('OFFLINE');
  if (cursor.acceptWord('INDEX')) {
    acceptIfExists(cursor);
    const index = cursor.identifier();
    // Only dropping the primary key changes what names a row; other indexes change nothing we read.
    if (index === undefined || index.toUpperCase() !== 'PRIMARY' || !cursor.acceptWord('ON')) return NONE;
    const table = cursor.name();
    return table ? change({ altered: [table] }) : NONE;
  }
  return NONE;
}

/** RENAME TABLE[S] [IF EXISTS] a [WAIT n | NOWAIT] TO b, c TO d ...: every name on either side. */
function renameStatement(cursor: Cursor): QueryEventMeaning {
  if (!cursor.acceptWord('TABLE') && !cursor.acceptWord('TABLES')) return NONE;
  const altered: TableReference[] = [];
  while (!cursor.done()) {
    acceptIfExists(cursor);
    if (cursor.acceptWord('WAIT')) {
      cursor.skip(); // its number of seconds
      continue;
    }
    if (cursor.acceptWord('NOWAIT') || cursor.acceptWord('TO') || cursor.acceptSymbol(',')) continue;
    const name = cursor.name();
    if (name) altered.push(name);
    else cursor.skip();
  }
  return change({ altered });
}

/**
 * CREATE [OR REPLACE] [TEMPORARY] TABLE [IF NOT EXISTS] t ...: t (a streamed name that now names a
 * new table). CREATE INDEX adds no primary key to an existing table (ALTER does), so it is ignored.
 */
function createStatement(cursor: Cursor): QueryEventMeaning {
  if (cursor.acceptWord('OR')) cursor.acceptWord('REPLACE');
  if (cursor.acceptWord('TEMPORARY')) return NONE;
  if (!cursor.acceptWord('TABLE')) return NONE;
  if (cursor.acceptWord('IF')) {
    cursor.acceptWord('NOT');
    cursor.acceptWord('EXISTS');
  }
  const table = cursor.name();
  return table ? change({ altered: [table] }) : NONE;
}

function acceptIfExists(cursor: Cursor): void {
  if (cursor.peekWords('IF', 'EXISTS')) {
    cursor.word();
    cursor.word();
  }
}

/** Up to `limit` comma-separated names (WAIT/NOWAIT/RESTRICT/CASCADE end the list). */
function nameList(cursor: Cursor, limit: number): TableReference[] {
  const names: TableReference[] = [];
  while (names.length < limit) {
    const name = cursor.name();
    if (!name) break;
    names.push(name);
    if (!cursor.acceptSymbol(',')) break;
  }
  return names;
}

/** Every identifier or qualified name in a statement (keywords included: matching is by the caller). */
function everyName(tokens: readonly Token[]): TableReference[] {
  const cursor = new Cursor(tokens);
  const names: TableReference[] = [];
  while (!cursor.done()) {
    const name = cursor.name();
    if (name) names.push(name);
    else cursor.skip();
  }
  return names;
}

// ------------------------------------------------------------------------------------------------
// tokens

interface Token {
  /** word: bare word or identifier; quoted: `quoted` or "quoted" identifier; string; symbol. */
  readonly kind: 'word' | 'quoted' | 'string' | 'symbol';
  readonly text: string;
}

const WORD_CHAR = /[\p{L}\p{N}_$\u0080-\uffff]/u;

/** MySQL tokens, comments dropped, executable comments opened. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  let executableCommentOpen = false;
  while (index < sql.length) {
    const char = sql[index]!;
    const next = sql[index + 1];
    if (/\s/.test(char)) {
      index += 1;
    } else if (char === '#' || (char === '-' && next === '-' && (index + 2 >= sql.length || /\s/.test(sql[index + 2]!)))) {
      const end = sql.indexOf('\n', index);
      index = end === -1 ? sql.length : end + 1;
    } else if (char === '/' && next === '*') {
      const executable = /^\/\*M?!(\d{5,6})?/.exec(sql.slice(index, index + 10));
      if (executable && !executableCommentOpen) {
        // The server runs the content of /*!NNNNN ... */ (MySQL) and /*M!NNNNNN ... */ (MariaDB).
        executableCommentOpen = true;
        index += executable[0].length;
      } else {
        const end = sql.indexOf('*/', index + 2);
        index = end === -1 ? sql.length : end + 2;
      }
    } else if (char === '*' && next === '/' && executableCommentOpen) {
      executableCommentOpen = false;
      index += 2;
    } else if (char === '`' || char === '"' || char === "'") {
      const [text, end] = readQuoted(sql, index, char);
      tokens.push({ kind: char === "'" ? 'string' : 'quoted', text });
      index = end;
    } else if (WORD_CHAR.test(char)) {
      let end = index + 1;
      while (end < sql.length && WORD_CHAR.test(sql[end]!)) end += 1;
      tokens.push({ kind: 'word', text: sql.slice(index, end) });
      index = end;
    } else {
      tokens.push({ kind: 'symbol', text: char });
      index += 1;
    }
  }
  return tokens;
}

/** A quoted token from `start` (the opening quote): doubled quotes, and backslash escapes in strings. */
function readQuoted(sql: string, start: number, quote: string): [string, number] {
  let text = '';
  let index = start + 1;
  while (index < sql.length) {
    const char = sql[index]!;
    if (char === quote) {
      if (sql[index + 1] === quote) {
        text += quote;
        index += 2;
        continue;
      }
      return [text, index + 1];
    }
    if (char === '\\' && quote !== '`' && index + 1 < sql.length) {
      text += sql[index + 1];
      index += 2;
      continue;
    }
    text += char;
    index += 1;
  }
  return [text, sql.length];
}

class Cursor {
  private index = 0;
  constructor(private readonly tokens: readonly Token[]) {}

  done(): boolean {
    return this.index >= this.tokens.length;
  }

  skip(): void {
    this.index += 1;
  }

  /** The next token as an upper-case keyword when it is a bare word (consumed), else undefined (not consumed). */
  word(): string | undefined {
    const token = this.tokens[this.index];
    if (token?.kind !== 'word') return undefined;
    this.index += 1;
    return token.text.toUpperCase();
  }

  peekWord(offset = 0): string | undefined {
    const token = this.tokens[this.index + offset];
    return token?.kind === 'word' ? token.text.toUpperCase() : undefined;
  }

  peekWords(...words: string[]): boolean {
    return words.every((word, offset) => this.peekWord(offset) === word);
  }

  acceptWord(word: string): boolean {
    if (this.peekWord() !== word) return false;
    this.index += 1;
    return true;
  }

  acceptSymbol(symbol: string): boolean {
    const token = this.tokens[this.index];
    if (token?.kind !== 'symbol' || token.text !== symbol) return false;
    this.index += 1;
    return true;
  }

  /** A bare or quoted identifier. */
  identifier(): string | undefined {
    const token = this.tokens[this.index];
    if (token?.kind !== 'word' && token?.kind !== 'quoted') return undefined;
    this.index += 1;
    return token.text;
  }

  /** `name` or `schema.name`. */
  name(): TableReference | undefined {
    const first = this.identifier();
    if (first === undefined) return undefined;
    if (!this.acceptSymbol('.')) return { table: first };
    const second = this.identifier();
    return second === undefined ? { table: first } : { schema: first, table: second };
  }
}
