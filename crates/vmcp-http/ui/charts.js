// Small hand-written SVG charts (no library): stacked bars over time, a line over time, and
// grouped horizontal bars. Each is a <figure> with a caption, an accessible summary and its
// data as a table. They draw at the width of their container and redraw when it changes.
// Colours come from classes in app.css (the Content-Security-Policy allows no inline styles).
import { h, s } from './lib.js';

/** A round axis maximum whose quarters are round too; whole quarters for counts. */
const niceMax = (max, counts) => {
  if (!(max > 0)) return counts ? 4 : 1;
  if (counts && max <= 4) return 4;
  const step = max / 4;
  const p = 10 ** Math.floor(Math.log10(step));
  for (const m of [1, 2, 5, 10]) if (m * p >= step) return m * p * 4;
  return 40 * p;
};

function figure(title, summary, table, draw, testid) {
  const box = h('div.chart-box');
  const fig = h('figure.chart', { 'data-testid': testid },
    h('figcaption', title), box,
    table ? h('details.chart-data', h('summary', 'Data'), h('div.table-wrap', table)) : null);
  let last = 0;
  const render = () => {
    const w = Math.max(240, Math.floor(box.clientWidth || 600));
    if (w === last) return;
    last = w;
    box.replaceChildren(draw(w, title, summary));
  };
  const ro = new ResizeObserver(render);
  ro.observe(box);
  requestAnimationFrame(render);
  return fig;
}

function svgRoot(w, hgt, title, summary) {
  return s('svg', { width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-label': `${title}: ${summary}` },
    s('title', {}, title), s('desc', {}, summary));
}

function dataTable(head, rows) {
  return h('table.data', h('thead', h('tr', head.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', rows.map((r) => h('tr', r.map((x, i) => (i ? h('td', x) : h('th', { scope: 'row' }, x)))))));
}

function yAxis(g, max, fmt, left, top, plotH, plotW) {
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    g.append(s('line', { x1: left, x2: left + plotW, y1: y, y2: y, class: i ? 'grid' : 'axis' }),
      s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, fmt((max * i) / 4)));
  }
}

function xLabels(g, buckets, left, step, top, fmtT) {
  const every = Math.max(1, Math.ceil(buckets.length / Math.max(2, Math.floor((step * buckets.length) / 70))));
  buckets.forEach((b, i) => {
    if (i % every) return;
    g.append(s('text', { x: left + step * i + step / 2, y: top, 'text-anchor': 'middle', class: 'tick' }, fmtT(b.t0)));
  });
}

/**
 * Stacked bars over time. buckets: [{t0, t1, ok, failed}]; fmtT(Date) labels the x axis.
 */
export function timeBars(title, buckets, fmtT) {
  const total = buckets.reduce((a, b) => a + b.ok + b.failed, 0);
  const failed = buckets.reduce((a, b) => a + b.failed, 0);
  const summary = `${total} operations in ${buckets.length} intervals, ${failed} failed`;
  const table = dataTable(['from', 'ok', 'failed'], buckets.map((b) => [fmtT(b.t0, true), b.ok, b.failed]));
  return figure(title, summary, table, (w) => {
    const H = 200;
    const left = 44;
    const top = 10;
    const plotW = w - left - 8;
    const plotH = H - top - 30;
    const max = niceMax(Math.max(1, ...buckets.map((b) => b.ok + b.failed)), true);
    const svg = svgRoot(w, H, title, summary);
    const g = s('g');
    yAxis(g, max, (v) => String(Math.round(v)), left, top, plotH, plotW);
    const step = plotW / Math.max(1, buckets.length);
    const bw = Math.max(1, step * 0.72);
    buckets.forEach((b, i) => {
      const x = left + step * i + (step - bw) / 2;
      const hOk = (plotH * b.ok) / max;
      const hErr = (plotH * b.failed) / max;
      const tip = `${fmtT(b.t0, true)}: ${b.ok} ok, ${b.failed} failed`;
      const col = s('g', { class: 'bar', 'data-count': b.ok + b.failed }, s('title', {}, tip));
      if (b.ok) col.append(s('rect', { x, y: top + plotH - hOk, width: bw, height: hOk, class: 'c-ok' }));
      if (b.failed) col.append(s('rect', { x, y: top + plotH - hOk - hErr, width: bw, height: hErr, class: 'c-err' }));
      // A transparent full-height target so that the tooltip is easy to reach.
      col.append(s('rect', { x: left + step * i, y: top, width: step, height: plotH, class: 'hit' }));
      g.append(col);
    });
    xLabels(g, buckets, left, step, H - 10, fmtT);
    svg.append(g, legend(w, [['c-ok', 'ok'], ['c-err', 'failed']]));
    return svg;
  }, 'chart-calls');
}

function legend(w, items) {
  const g = s('g', { class: 'legend' });
  let x = w - 8;
  for (const [cls, label] of [...items].reverse()) {
    const tw = label.length * 6.5 + 18;
    x -= tw;
    g.append(s('rect', { x, y: 2, width: 10, height: 10, class: cls }), s('text', { x: x + 14, y: 11, class: 'tick' }, label));
  }
  return g;
}

/** A line over time. points: [{t0, value|null}]; fmtV formats values. */
export function timeLine(title, points, fmtT, fmtV, cls = 'c-line', testid) {
  const vals = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const summary = vals.length ? `from ${fmtV(Math.min(...vals))} to ${fmtV(Math.max(...vals))}` : 'no data';
  const table = dataTable(['from', title], points.map((p) => [fmtT(p.t0, true), p.value === null ? '–' : fmtV(p.value)]));
  return figure(title, summary, table, (w) => {
    const H = 160;
    const left = 52;
    const top = 10;
    const plotW = w - left - 8;
    const plotH = H - top - 30;
    const max = niceMax(Math.max(...vals, 0));
    const svg = svgRoot(w, H, title, summary);
    const g = s('g');
    yAxis(g, max, fmtV, left, top, plotH, plotW);
    const step = plotW / Math.max(1, points.length);
    let d = '';
    let pen = false;
    points.forEach((p, i) => {
      if (p.value === null || p.value === undefined) { pen = false; return; }
      const x = left + step * i + step / 2;
      const y = top + plotH - (plotH * p.value) / max;
      d += `${pen ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
      pen = true;
      g.append(s('circle', { cx: x, cy: y, r: 3, class: cls }, s('title', {}, `${fmtT(p.t0, true)}: ${fmtV(p.value)}`)));
    });
    if (d) g.prepend(s('path', { d, class: `line ${cls}` }));
    xLabels(g, points, left, step, H - 10, fmtT);
    svg.append(g);
    return svg;
  }, testid);
}

/**
 * Horizontal bars, grouped: rows [{label, values: [..]}], series [[cls, name]]; fmtV formats.
 */
export function hBars(title, rows, series, fmtV, testid) {
  const summary = rows.length ? rows.map((r) => `${r.label}: ${r.values.map((v, i) => `${series[i][1]} ${fmtV(v)}`).join(', ')}`).join('; ') : 'no data';
  const table = dataTable(['', ...series.map((x) => x[1])], rows.map((r) => [r.label, ...r.values.map(fmtV)]));
  return figure(title, summary, table, (w) => {
    const barH = 12;
    const gap = 10;
    const groupH = series.length * (barH + 2) + gap;
    const narrow = w < 480;
    const labelW = narrow ? 0 : Math.min(200, Math.floor(w * 0.32));
    const labelLine = narrow ? 16 : 0;
    const top = series.length > 1 ? 18 : 4;
    const H = Math.max(40, top + rows.length * (groupH + labelLine) + 4);
    const plotW = w - labelW - 70;
    const max = Math.max(...rows.flatMap((r) => r.values.filter((v) => v !== null)), 0) || 1;
    const svg = svgRoot(w, H, title, summary);
    if (!rows.length) {
      svg.append(s('text', { x: 8, y: 24, class: 'tick' }, 'No data for these filters'));
      return svg;
    }
    rows.forEach((r, i) => {
      const y0 = top + i * (groupH + labelLine);
      const label = r.label.length > 38 ? `${r.label.slice(0, 36)}…` : r.label;
      svg.append(s('text', { x: narrow ? 0 : labelW - 6, y: y0 + (narrow ? 11 : (series.length * (barH + 2)) / 2 + 4), 'text-anchor': narrow ? 'start' : 'end', class: 'label' }, s('title', {}, r.label), label));
      r.values.forEach((v, j) => {
        const y = y0 + labelLine + j * (barH + 2);
        const bw = !v ? 0 : Math.max(1, (plotW * v) / max);
        svg.append(s('rect', { x: labelW, y, width: bw, height: barH, class: series[j][0] }, s('title', {}, `${r.label}, ${series[j][1]}: ${fmtV(v)}`)));
        if (v || series.length === 1) svg.append(s('text', { x: labelW + bw + 4, y: y + barH - 2, class: 'tick' }, fmtV(v)));
      });
    });
    if (series.length > 1) svg.append(legend(w, series));
    return svg;
  }, testid);
}
