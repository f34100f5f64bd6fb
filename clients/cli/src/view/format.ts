// Small text formatting shared by every view.

export function percent(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** 75 → "1m 15s"; NaN or negative → "–". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** A bar of `width` cells filled to `done / total` (empty when total is 0). */
export function bar(done: number, total: number, width = 24): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const cells = fraction * width;
  const full = Math.floor(cells);
  const partial = cells - full >= 0.5 && full < width ? '▌' : '';
  return `[${'█'.repeat(full)}${partial}${' '.repeat(width - full - partial.length)}]`;
}

/** Rows as aligned columns (the first row is the header), two spaces apart. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length)))
        .join('  '),
    )
    .join('\n');
}
