/**
 * Secret redaction for every text rowsync prints or logs: error messages, log lines, reports.
 *
 * A password is hidden where it stands as a password: the user-info of a URL
 * (`mysql://user:secret@host`), a `password=…` / `password: …` / `"password": "…"` pair, and
 * `IDENTIFIED BY '…'` / `PASSWORD '…'` in SQL. The password's value is not searched for elsewhere:
 * a common word that happens to equal it (the test servers' password is `rowsync`, also the
 * prefix of every test database) stays readable, and the drivers' own messages never contain the
 * password (MySQL says "using password: YES", PostgreSQL "password authentication failed").
 */

const URL_USER_INFO = /([a-z][a-z0-9+.-]*:\/\/)([^:/@\s]*):([^@\s/]*)@/gi;
/**
 * `password=x`, `password: x`, `"password":"x"`, `pwd=x`, `passwd=x`, `secret=x`, with or without quotes;
 * not MySQL's own "(using password: YES)", which says whether one was sent.
 */
const KEY_VALUE =
  /((?:["']?)(?:password|passwd|pwd|secret|token)(?:["']?)\s*[:=]\s*)(?!(?:YES|NO)\))("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&}'"]+)/gi;
const SQL_PASSWORD = /((?:IDENTIFIED\s+(?:WITH\s+\S+\s+)?BY|PASSWORD)\s+)('(?:[^'\\]|''|\\.)*')/gi;

const MASK = '***';

export function redactSecrets(text: string): string {
  return text
    .replace(URL_USER_INFO, (_match, scheme: string, user: string) => `${scheme}${user}:${MASK}@`)
    .replace(KEY_VALUE, (_match, key: string, value: string) => `${key}${quoted(value, MASK)}`)
    .replace(SQL_PASSWORD, (_match, keyword: string) => `${keyword}'${MASK}'`);
}

/** Keeps the quotes a redacted value had, so JSON stays JSON. */
function quoted(value: string, mask: string): string {
  const quote = value[0];
  return quote === '"' || quote === "'" ? `${quote}${mask}${quote}` : mask;
}
