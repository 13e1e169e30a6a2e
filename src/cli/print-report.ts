import type { RunReport } from '../reconcile/report.js';

/** The human form of a run report (the `--json` form is the report object itself). */
export function formatReport(report: RunReport): string {
  const header = ['table', 'target', 'source rows', 'target rows', 'chunks', 'differing', 'missing', 'extra', 'changed', 'inserted', 'updated', 'deleted', 'conflicts'];
  const rows = report.tables.map((table) => [
    table.table, table.target, table.sourceRows, table.targetRows, table.chunks, table.chunksDiffering, table.missing, table.extra,
    table.changed, table.inserted, table.updated, table.deleted, table.conflicts,
  ].map(String));
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  const lines = [
    `run ${report.runId} (pipeline ${report.pipeline})${report.dryRun ? ' DRY RUN: nothing was written' : ''}: ${report.status} in ${(report.durationMs / 1000).toFixed(1)} s`,
    line(header),
    ...rows.map(line),
  ];
  for (const table of report.tables) {
    const both = table.bidirectional;
    if (!both) continue;
    const conflicts = Object.entries(both.conflicts).map(([outcome, count]) => `${outcome} ${count}`).join(', ') || 'none';
    lines.push(
      `${table.table} <-> ${table.target}: changed on A ${both.changedOnA}, on B ${both.changedOnB}; deleted on A ${both.deletedOnA}, ` +
        `on B ${both.deletedOnB}; written to A ${both.writtenToA}, to B ${both.writtenToB}; conflicts: ${conflicts}`,
    );
  }
  for (const table of report.tables) for (const error of table.errors) lines.push(`error: ${table.table} -> ${table.target}: ${error}`);
  return `${lines.join('\n')}\n`;
}
