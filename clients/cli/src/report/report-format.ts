// How numbers and times read on the report page. Fixed locale and UTC, so a report renders the
// same on every machine.

const DASH = '—';

/** 0.8937 → "89.4%"; missing or not a number → "—". */
export function formatPercent(share: number | undefined, digits = 1): string {
  return share === undefined || !Number.isFinite(share) ? DASH : `${(share * 100).toFixed(digits)}%`;
}

/** Accuracy difference in percentage points, signed: 0.004 → "+0.4 pt". */
export function formatPointDelta(delta: number): string {
  if (!Number.isFinite(delta)) return DASH;
  const points = (delta * 100).toFixed(1);
  return `${delta >= 0 ? '+' : '−'}${points.replace('-', '')} pt`;
}

/** 12345 → "12,345". */
export function formatCount(count: number | undefined): string {
  return count === undefined || !Number.isFinite(count) ? DASH : count.toLocaleString('en-US');
}

/** ISO time → "2025-05-14 10:42:07 UTC"; text that is not a time is shown as given. */
export function formatTime(iso: string): string {
  const time = Date.parse(iso);
  if (!Number.isFinite(time)) return iso || DASH;
  return `${new Date(time).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** The time between two ISO times: "45 s", "12 min 3 s", "2 h 5 min". */
export function formatDuration(startIso: string, endIso: string): string {
  const milliseconds = Date.parse(endIso) - Date.parse(startIso);
  if (!Number.isFinite(milliseconds) || milliseconds < 0) return DASH;
  const seconds = Math.round(milliseconds / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
