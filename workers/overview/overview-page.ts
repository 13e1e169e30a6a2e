import type { LagSeries, OverviewData, RunView } from './overview-data.js';

/**
 * The overview page as one server-rendered HTML document: no build step, nothing loaded from
 * elsewhere (it must work on a machine without internet access). The CDC lag chart is inline SVG;
 * the one inline script only shows times in the browser's time zone and offers an auto-refresh.
 * Links to Bull Board are relative (`queue/<name>`), so the pair works behind a path prefix too.
 */
export function renderOverviewPage(data: OverviewData, nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rowsync overview</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header>
  <h1>rowsync overview</h1>
  <p class="meta">as of <time datetime="${esc(data.generatedAt)}">${esc(data.generatedAt)}</time> ·
    workers connected: <strong data-field="workers">${num(data.workers)}</strong> ·
    <a href="./" id="bull-board-link">Bull Board</a> · <a href="overview.json">JSON</a> ·
    <label><input type="checkbox" id="auto-refresh"> refresh every 15 s</label></p>
</header>
<main>
${pipelinesSection(data)}
${runsSection(data)}
${cdcSection(data)}
${deadLettersSection(data)}
${conflictsSection(data)}
${queuesSection(data)}
</main>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}

function pipelinesSection(data: OverviewData): string {
  const rows = data.pipelines.map(
    (pipeline) => `<tr data-pipeline="${esc(pipeline.name)}">
  <td data-field="name">${esc(pipeline.name)}</td>
  <td data-field="mode">${esc(pipeline.mode)}</td>
  <td data-field="route">${esc(pipeline.source)} → ${pipeline.targets.map(esc).join(', ')}</td>
  <td data-field="tables">${pipeline.tables ? pipeline.tables.map(esc).join(', ') : '<span class="dim">all with a primary key</span>'}</td>
  <td data-field="schedule">${pipeline.schedule ? `<code>${esc(pipeline.schedule)}</code>` : '<span class="dim">none</span>'}</td>
  <td data-field="cdc">${pipeline.cdc ? esc(pipeline.cdc) : '<span class="dim">off</span>'}</td>
  <td data-field="last-run">${pipeline.lastRun ? `<a href="${esc(pipeline.lastRun.board)}">${esc(pipeline.lastRun.runId)}</a> ${stateBadge(pipeline.lastRun.state)}` : '<span class="dim">none</span>'}</td>
</tr>`,
  );
  return section('pipelines', 'Pipelines', data.runs.board, 'reconcile-run queue', table(
    ['pipeline', 'mode', 'source → targets', 'tables', 'schedule', 'CDC', 'last run'],
    rows,
    'no pipelines configured',
  ));
}

const RUN_HEADINGS = [
  'run', 'pipeline', 'state', 'enqueued', 'chunks', 'rows compared', 'differences',
  'source rows', 'target rows', 'missing', 'extra', 'changed', 'inserted', 'updated', 'deleted', 'conflicts', 'duration',
];

function runsSection(data: OverviewData): string {
  return section('runs', 'Runs', data.runs.board, 'reconcile-run queue', `
<h3>Current</h3>
${table(RUN_HEADINGS, data.runs.current.map(runRow), 'no run in progress', 'runs-current')}
<h3>Recent</h3>
${table(RUN_HEADINGS, data.runs.recent.map(runRow), 'no finished run kept', 'runs-recent')}
<p class="note">missing: rows only the source has · extra: rows only the target has · changed: rows in both that differ ·
inserted / updated / deleted: what was written (a dry run: what would be).</p>`);
}

function runRow(run: RunView): string {
  const totals = run.totals;
  const figure = (field: keyof NonNullable<RunView['totals']>) =>
    `<td class="n" data-field="${field}"${totals ? ` data-value="${totals[field]}"` : ''}>${totals ? num(totals[field]) : '<span class="dim">–</span>'}</td>`;
  const progress = run.progress;
  return `<tr data-run="${esc(run.runId)}">
  <td data-field="run"><a href="${esc(run.board)}">${esc(run.runId)}</a>${run.dryRun ? ' <span class="badge">dry run</span>' : ''}</td>
  <td data-field="pipeline">${esc(run.pipeline)}</td>
  <td data-field="state">${stateBadge(run.state)}${run.error ? `<div class="error">${esc(run.error)}</div>` : ''}</td>
  <td data-field="enqueued"><time datetime="${esc(run.enqueuedAt)}">${esc(run.enqueuedAt)}</time></td>
  <td class="n" data-field="chunks">${num(progress.chunksDone)}/${num(progress.chunksPlanned)}</td>
  <td class="n" data-field="rowsCompared" data-value="${progress.rowsCompared}">${num(progress.rowsCompared)}</td>
  <td class="n" data-field="differences" data-value="${progress.differences}">${num(progress.differences)}</td>
  ${figure('sourceRows')}
  ${figure('targetRows')}
  ${figure('missing')}
  ${figure('extra')}
  ${figure('changed')}
  ${figure('inserted')}
  ${figure('updated')}
  ${figure('deleted')}
  ${figure('conflicts')}
  <td class="n" data-field="duration">${run.durationMs === undefined ? '<span class="dim">–</span>' : esc(duration(run.durationMs))}</td>
</tr>`;
}

function cdcSection(data: OverviewData): string {
  const rows = data.cdc.streams.flatMap((stream) => {
    const head = `<td data-field="stream">${esc(stream.stream)}</td><td data-field="mode">${esc(stream.mode)}</td>
  <td data-field="reader">${stateBadge(stream.state)}${stream.stale ? ' <span class="badge warn">no report for over 30 s</span>' : ''}${stream.error ? `<div class="error">${esc(stream.error)}</div>` : ''}</td>`;
    if (stream.targets.length === 0) return [`<tr data-stream="${esc(stream.stream)}">${head}<td colspan="5" class="dim">no target streaming</td></tr>`];
    return stream.targets.map(
      (target) => `<tr data-stream="${esc(stream.stream)}" data-target="${esc(target.target)}">${head}
  <td data-field="target">${esc(target.target)}${target.detached ? ' <span class="badge warn">catching up</span>' : ''}</td>
  <td data-field="checkpoint"><code>${esc(target.checkpoint)}</code></td>
  <td class="n" data-field="lag" data-value="${target.lagMs}">${esc(duration(target.lagMs))}</td>
  <td class="n" data-field="queuedJobs">${num(target.queuedJobs)}</td>
  <td class="n" data-field="deadLetters">${num(target.deadLetters)}</td>
</tr>`,
    );
  });
  return section('cdc', 'Change-data-capture', data.cdc.board, 'cdc-batch queue', `
<h3>Lag over the last hour</h3>
${lagChart(data.cdc.lag.series, Date.parse(data.generatedAt), data.cdc.lag.windowMs)}
<p class="note">Source commit to now of the oldest change not yet applied, sampled every ${Math.round(data.cdc.lag.sampleEveryMs / 1000)} s by the streaming reader.</p>
<h3>Readers</h3>
${table(['stream', 'mode', 'reader', 'target', 'durable position', 'lag', 'queued jobs', 'dead letters'], rows, 'no reader has run', 'cdc-readers')}`);
}

function deadLettersSection(data: OverviewData): string {
  const letters = data.deadLetters;
  const perTarget = letters.perTarget.map(
    (entry) => `<li>${esc(entry.pipeline)} → ${esc(entry.target)}: <strong>${num(entry.count)}</strong></li>`,
  );
  const rows = letters.recent.map(
    (letter) => `<tr data-dead-letter="${esc(letter.id)}">
  <td data-field="id"><a href="${esc(letter.board)}">${esc(letter.id)}</a></td>
  <td data-field="route">${esc(letter.pipeline)} → ${esc(letter.target)}</td>
  <td class="n" data-field="keys">${num(letter.keys)}</td>
  <td data-field="at"><time datetime="${esc(letter.deadLetteredAt)}">${esc(letter.deadLetteredAt)}</time></td>
  <td data-field="error" class="error">${esc(letter.error)}</td>
</tr>`,
  );
  return section('dead-letters', 'Dead letters', letters.board, 'cdc-dead-letter queue', `
<p class="figures"><span>waiting: <strong data-field="dead-letters-total">${num(letters.total)}</strong></span>
<span>parked: <strong data-field="dead-letters-parked">${num(letters.parked)}</strong></span>
<span>being retried: <strong data-field="dead-letters-retrying">${num(letters.retrying)}</strong></span></p>
${perTarget.length ? `<ul class="per-target">${perTarget.join('')}</ul>` : ''}
${table(['job', 'pipeline → target', 'keys', 'dead-lettered', 'error'], rows, 'no dead letters', 'dead-letters-recent')}
<p class="note">Retry them in Bull Board (the queue's failed tab) or with <code>rowsync dlq retry</code>: their keys are synced again from the source as it is now.</p>`);
}

function conflictsSection(data: OverviewData): string {
  const counts = (of: Readonly<Record<string, number>>) =>
    Object.entries(of).map(([name, count]) => `${esc(name)} ${num(count)}`).join(', ') || '<span class="dim">–</span>';
  const rows = data.conflicts.perTarget.map(
    (entry) => `<tr data-pipeline="${esc(entry.pipeline)}" data-target="${esc(entry.target)}">
  <td data-field="route">${esc(entry.pipeline)} → ${esc(entry.target)}</td>
  <td class="n" data-field="total">${num(entry.stats.total)}</td>
  <td class="n" data-field="pending">${num(entry.stats.pending)}</td>
  <td data-field="byKind">${counts(entry.stats.byKind)}</td>
  <td data-field="byOutcome">${counts(entry.stats.byOutcome)}</td>
  <td data-field="error">${entry.error ? `<span class="error">${esc(entry.error)}</span>` : ''}</td>
</tr>`,
  );
  const links = data.conflicts.board.map((entry) => `<a href="${esc(entry.board)}">${esc(entry.queue)}</a>`).join(' ');
  return `<section id="conflicts">
<h2>Conflicts</h2>
<p class="figures"><span>logged: <strong data-field="conflicts-total">${num(data.conflicts.total)}</strong></span>
<span>pending: <strong data-field="conflicts-pending">${num(data.conflicts.pending)}</strong></span></p>
${table(['pipeline → target', 'total', 'pending', 'by kind', 'by outcome', ''], rows, 'no pipelines', 'conflicts-per-target')}
<p class="note">Logged in each target database (<code>rowsync conflicts list</code>, settled with <code>rowsync conflicts resolve</code>),
by the jobs of these queues in Bull Board: <span class="board-links">${links}</span></p>
</section>`;
}

function queuesSection(data: OverviewData): string {
  const states = ['active', 'waiting', 'waiting-children', 'delayed', 'failed', 'completed'];
  const rows = data.queues.map(
    (queue) => `<tr data-queue="${esc(queue.queue)}">
  <td data-field="queue"><a href="${esc(queue.board)}">${esc(queue.queue)}</a></td>
  ${states.map((state) => `<td class="n" data-field="${state}">${num(queue.counts[state] ?? 0)}</td>`).join('')}
  <td class="n" data-field="workers">${num(queue.workers)}</td>
</tr>`,
  );
  return `<section id="queues">
<h2>Queues</h2>
${table(['queue', ...states, 'workers'], rows, 'no queues', 'queues-table')}
</section>`;
}

// ---------------------------------------------------------------------------------------------
// The lag chart

const CHART = { width: 760, height: 240, left: 60, right: 16, top: 14, bottom: 30 } as const;
const SERIES_COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4d7c0f', '#be185d'];

/** One polyline and one point per sample for each (stream, target), over the window ending now. */
export function lagChart(series: readonly LagSeries[], now: number, windowMs: number): string {
  const plotWidth = CHART.width - CHART.left - CHART.right;
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  const start = now - windowMs;
  const largest = Math.max(0, ...series.flatMap((entry) => entry.samples.map((sample) => sample.lagMs)));
  const ceiling = niceCeiling(Math.max(largest, 1000));
  const x = (at: number) => round(CHART.left + (Math.min(Math.max(at, start), now) - start) / windowMs * plotWidth);
  const y = (lagMs: number) => round(CHART.top + plotHeight - (Math.min(lagMs, ceiling) / ceiling) * plotHeight);

  const grid = [0, 0.5, 1].map((fraction) => {
    const value = ceiling * fraction;
    return `<line class="grid" x1="${CHART.left}" x2="${CHART.width - CHART.right}" y1="${y(value)}" y2="${y(value)}"/>` +
      `<text class="axis" x="${CHART.left - 6}" y="${y(value) + 4}" text-anchor="end">${value === 0 ? '0' : esc(duration(value))}</text>`;
  });
  const ticks = [60, 45, 30, 15, 0].map((minutesAgo) => {
    const at = now - minutesAgo * 60_000;
    return `<text class="axis" x="${x(at)}" y="${CHART.height - 10}" text-anchor="middle">${minutesAgo === 0 ? 'now' : `−${minutesAgo} min`}</text>`;
  });
  const lines = series.map((entry, index) => {
    const colour = SERIES_COLOURS[index % SERIES_COLOURS.length]!;
    const label = `${entry.stream} → ${entry.target}`;
    const points = entry.samples.map((sample) => `${x(sample.at)},${y(sample.lagMs)}`).join(' ');
    const dots = entry.samples.map(
      (sample) => `<circle class="lag-point" cx="${x(sample.at)}" cy="${y(sample.lagMs)}" r="2.5" fill="${colour}">` +
        `<title>${esc(label)}: ${esc(duration(sample.lagMs))} at ${esc(new Date(sample.at).toISOString())}</title></circle>`,
    );
    return `<g class="lag-series" data-stream="${esc(entry.stream)}" data-target="${esc(entry.target)}" data-points="${entry.samples.length}">` +
      (entry.samples.length > 1 ? `<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="1.5"/>` : '') +
      `${dots.join('')}</g>`;
  });
  const empty = series.every((entry) => entry.samples.length === 0)
    ? `<text class="axis" x="${CHART.left + plotWidth / 2}" y="${CHART.top + plotHeight / 2}" text-anchor="middle">no lag samples in the last hour</text>`
    : '';
  const legend = series.map((entry, index) => {
    const colour = SERIES_COLOURS[index % SERIES_COLOURS.length]!;
    const latest = entry.samples.at(-1);
    return `<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="${colour}"/></svg> ` +
      `${esc(entry.stream)} → ${esc(entry.target)}: ${entry.samples.length} sample(s)${latest ? `, latest ${esc(duration(latest.lagMs))}` : ''}</li>`;
  });
  return `<figure class="chart">
<svg id="cdc-lag-chart" viewBox="0 0 ${CHART.width} ${CHART.height}" width="${CHART.width}" height="${CHART.height}" role="img" aria-label="CDC lag over the last hour">
<rect class="plot" x="${CHART.left}" y="${CHART.top}" width="${plotWidth}" height="${plotHeight}"/>
${grid.join('\n')}
${ticks.join('\n')}
${lines.join('\n')}
${empty}
</svg>
${legend.length ? `<ul class="legend">${legend.join('')}</ul>` : ''}
</figure>`;
}

/** The smallest 1, 2 or 5 × 10^k milliseconds at or above `value`. */
function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

const round = (value: number) => Math.round(value * 10) / 10;

// ---------------------------------------------------------------------------------------------
// Helpers

function section(id: string, title: string, board: string, boardLabel: string, body: string): string {
  return `<section id="${id}">
<h2>${esc(title)} <a class="board-link" href="${esc(board)}">${esc(boardLabel)} in Bull Board</a></h2>
${body}
</section>`;
}

function table(headings: readonly string[], rows: readonly string[], empty: string, id?: string): string {
  return `<table${id ? ` id="${id}"` : ''}>
<thead><tr>${headings.map((heading) => `<th>${esc(heading)}</th>`).join('')}</tr></thead>
<tbody>${rows.length ? rows.join('\n') : `<tr class="empty"><td colspan="${headings.length}">${esc(empty)}</td></tr>`}</tbody>
</table>`;
}

function stateBadge(state: string): string {
  const kind = state === 'failed' || state === 'failing' ? 'bad' : state === 'completed' || state === 'streaming' ? 'good' : 'info';
  return `<span class="badge ${kind}">${esc(state)}</span>`;
}

/** Integers with thousands separators, fixed to en-US so the page reads the same everywhere. */
export function num(value: number): string {
  return value.toLocaleString('en-US');
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(0)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

function esc(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

const STYLE = `
:root { color-scheme: light; --border: #d4d4d8; --dim: #71717a; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 24px 48px; color: #18181b; }
header { border-bottom: 1px solid var(--border); margin-bottom: 8px; }
h1 { font-size: 22px; margin: 16px 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 14px; margin: 14px 0 6px; color: #3f3f46; }
.meta, .note, .dim { color: var(--dim); }
a { color: #1d4ed8; }
.board-link { font-size: 13px; font-weight: normal; margin-left: 10px; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { border-bottom: 1px solid var(--border); padding: 4px 8px; text-align: left; vertical-align: top; }
th { font-weight: 600; background: #f4f4f5; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.empty td { color: var(--dim); font-style: italic; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; background: #e4e4e7; }
.badge.good { background: #dcfce7; color: #166534; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.badge.info { background: #dbeafe; color: #1e40af; }
.badge.warn { background: #fef3c7; color: #92400e; }
.error { color: #b91c1c; font-size: 12px; max-width: 40em; overflow-wrap: anywhere; }
.figures span { margin-right: 18px; }
.chart { margin: 0; }
.chart .plot { fill: #fafafa; stroke: var(--border); }
.chart .grid { stroke: #e4e4e7; }
.chart .axis { font-size: 11px; fill: var(--dim); }
.legend { list-style: none; padding: 0; margin: 4px 0; }
.legend li { display: inline-block; margin-right: 16px; }
.board-links a { margin-right: 8px; }
code { font-size: 12px; }
`;

/** Local times, and an opt-in auto-refresh remembered by the browser. */
const SCRIPT = `
for (const element of document.querySelectorAll('time[datetime]')) {
  const at = new Date(element.getAttribute('datetime'));
  if (!Number.isNaN(at.getTime())) { element.title = element.getAttribute('datetime'); element.textContent = at.toLocaleString(); }
}
const refresh = document.getElementById('auto-refresh');
const remembered = 'rowsync-overview-refresh';
let timer;
const arm = () => { clearTimeout(timer); if (refresh.checked) timer = setTimeout(() => location.reload(), 15000); };
try { refresh.checked = localStorage.getItem(remembered) === '1'; } catch { /* storage disabled */ }
refresh.addEventListener('change', () => { try { localStorage.setItem(remembered, refresh.checked ? '1' : '0'); } catch { /* storage disabled */ } arm(); });
arm();
`;
