import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

import { CHART_CONFIG } from './chart-theme.js';

/**
 * A Vega-Lite spec drawn to a standalone SVG string in Node: no DOM, no canvas, no network
 * (specs carry their data inline).
 */
export async function renderChartSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec, { config: CHART_CONFIG });
  const view = new View(parse(compiled.spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
