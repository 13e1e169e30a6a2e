/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for the metrics tests:
 * anything a scraper could choke on fails the parse, naming the line. Every sample must follow its
 * family's `# HELP` and `# TYPE` lines, a family appears once, and histogram samples are the
 * family's `_bucket` (with `le`), `_sum` and `_count`.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_sum`... for a histogram `x`). */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily & { help: string; type: MetricType }>();
  const helps = new Map<string, string>();
  let current: (MetricFamily & { samples: Sample[] }) | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, index) => {
    const at = `line ${index + 1} (${JSON.stringify(line.slice(0, 120))})`;
    if (line === '') return;
    if (line.startsWith('# HELP ')) {
      const match = /^# HELP (\S+) (.*)$/.exec(line);
      if (!match || !METRIC_NAME.test(match[1]!)) throw new Error(`${at}: malformed HELP`);
      if (helps.has(match[1]!)) throw new Error(`${at}: second HELP for ${match[1]}`);
      helps.set(match[1]!, match[2]!);
      return;
    }
    if (line.startsWith('# TYPE ')) {
      const match = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (!match || !METRIC_NAME.test(match[1]!) || !TYPES.has(match[2] as MetricType)) throw new Error(`${at}: malformed TYPE`);
      const name = match[1]!;
      if (families.has(name)) throw new Error(`${at}: family ${name} appears twice`);
      const help = helps.get(name);
      if (help === undefined) throw new Error(`${at}: TYPE of ${name} without a HELP before it`);
      current = { name, help, type: match[2] as MetricType, samples: [] };
      families.set(name, current);
      return;
    }
    if (line.startsWith('#')) return;
    const sample = parseSample(line, at);
    if (!current) throw new Error(`${at}: sample before any TYPE`);
    const allowed =
      current.type === 'histogram'
        ? [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`]
        : current.type === 'summary'
          ? [current.name, `${current.name}_sum`, `${current.name}_count`]
          : [current.name];
    if (!allowed.includes(sample.name)) throw new Error(`${at}: sample ${sample.name} is not of family ${current.name} (${current.type})`);
    if (sample.name.endsWith('_bucket') && current.type === 'histogram' && sample.labels.le === undefined) throw new Error(`${at}: bucket without le`);
    current.samples.push(sample);
  });
  return families;
}

function parseSample(line: string, at: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) throw new Error(`${at}: no metric name`);
  const name = nameMatch[0];
  let position = name.length;
  const labels: Record<string, string> = {};
  if (line[position] === '{') {
    position += 1;
    while (line[position] !== '}') {
      const labelMatch = /^([^=]*)="/.exec(line.slice(position));
      if (!labelMatch || !LABEL_NAME.test(labelMatch[1]!)) throw new Error(`${at}: malformed label at column ${position + 1}`);
      const labelName = labelMatch[1]!;
      if (labelName in labels) throw new Error(`${at}: label ${labelName} twice`);
      position += labelMatch[0].length;
      let value = '';
      for (;;) {
        const char = line[position];
        if (char === undefined) throw new Error(`${at}: unterminated label value`);
        position += 1;
        if (char === '"') break;
        if (char === '\\') {
          const escaped = line[position];
          position += 1;
          if (escaped === '\\') value += '\\';
          else if (escaped === '"') value += '"';
          else if (escaped === 'n') value += '\n';
          else throw new Error(`${at}: bad escape \\${escaped ?? ''} in a label value`);
        } else {
          value += char;
        }
      }
      labels[labelName] = value;
      if (line[position] === ',') position += 1;
      else if (line[position] !== '}') throw new Error(`${at}: expected , or } after label ${labelName}`);
    }
    position += 1;
  }
  const rest = line.slice(position);
  const valueMatch = /^ (\S+)(?: (-?\d+))?$/.exec(rest);
  if (!valueMatch) throw new Error(`${at}: expected ' value [timestamp]' after the labels`);
  const text = valueMatch[1]!;
  // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes `Nan`).
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(text);
  const value = special ? (/^nan$/i.test(special[2]!) ? NaN : special[1] === '-' ? -Infinity : Infinity) : Number(text);
  if (!special && (Number.isNaN(value) || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text))) throw new Error(`${at}: value ${text} is not a number`);
  return { name, labels, value };
}

/** The sum of a family's samples named `sample` whose labels include `labels`. */
export function sampleSum(families: Map<string, MetricFamily>, sample: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  for (const family of families.values()) {
    for (const entry of family.samples) {
      if (entry.name !== sample) continue;
      if (Object.entries(labels).every(([name, value]) => entry.labels[name] === value)) total += entry.value;
    }
  }
  return total;
}

/** The samples named `sample` (for assertions on which label sets exist). */
export function samplesOf(families: Map<string, MetricFamily>, sample: string): Sample[] {
  return [...families.values()].flatMap((family) => family.samples.filter((entry) => entry.name === sample));
}
