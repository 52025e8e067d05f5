// charts.js: the dashboard's small charts, drawn as inline SVG (no library,
// nothing fetched). Each function fills an <svg> element it is given and
// sets an aria-label that says in words what the chart shows, so a screen
// reader gets the numbers a sighted reader sees.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function reset(svg, w, h, label) {
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('preserveAspectRatio', 'none');
}

/** bars draws values (numbers) as vertical bars, left to right. */
export function bars(svg, values, label) {
  const w = 300, h = 60;
  const max = Math.max(1, ...values);
  reset(svg, w, h, label + ` (peak ${max})`);
  const bw = w / Math.max(1, values.length);
  values.forEach((v, i) => {
    const bh = (v / max) * (h - 4);
    svg.append(el('rect', { x: i * bw + 0.5, y: h - bh, width: Math.max(0.5, bw - 1), height: bh, class: 'bar' }));
  });
  svg.append(el('line', { x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5, class: 'axis', 'vector-effect': 'non-scaling-stroke' }));
}

/** line draws points [{x, y}] (x increasing) as a step line. */
export function line(svg, points, label) {
  const w = 300, h = 80;
  if (points.length === 0) {
    reset(svg, w, h, label + ': no data');
    return { min: 0, max: 0 };
  }
  const xs = points.map(p => p.x), ys = points.map(p => p.y);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  // The range of the values, not from 0: a change of a few units on a
  // large balance must show.
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  reset(svg, w, h, `${label}: from ${ys[0]} to ${ys[ys.length - 1]} (min ${Math.min(...ys)}, max ${Math.max(...ys)})`);
  const sx = x => (x1 === x0 ? w : ((x - x0) / (x1 - x0)) * (w - 4) + 2);
  const sy = y => h - 4 - ((y - y0) / (y1 - y0)) * (h - 8);
  let d = `M${sx(points[0].x)},${sy(points[0].y)}`;
  for (let i = 1; i < points.length; i++) d += ` H${sx(points[i].x)} V${sy(points[i].y)}`;
  if (points.length === 1) d += ` H${w}`;
  svg.append(el('path', { d, class: 'line', 'vector-effect': 'non-scaling-stroke' }));
  // No text inside: the chart is stretched to its box, which would stretch
  // the glyphs; the caller writes the range beside it.
  return { min: Math.min(...ys), max: Math.max(...ys) };
}

/** hbars draws items [{label, value}] as labelled horizontal bars. */
export function hbars(svg, items, label, unit) {
  const rowH = 18, w = 300, h = Math.max(rowH, items.length * rowH);
  const max = Math.max(1, ...items.map(i => i.value));
  reset(svg, w, h, label + ': ' + items.map(i => `${i.label} ${i.value}${unit || ''}`).join(', '));
  svg.setAttribute('preserveAspectRatio', 'xMinYMin meet');
  items.forEach((it, i) => {
    const bw = (it.value / max) * (w - 130);
    svg.append(el('text', { x: 0, y: i * rowH + 13, class: 'tick' }, it.label.length > 20 ? it.label.slice(0, 19) + '…' : it.label));
    svg.append(el('rect', { x: 125, y: i * rowH + 3, width: Math.max(1, bw), height: rowH - 6, class: 'bar' }));
    svg.append(el('text', { x: 128 + bw, y: i * rowH + 13, class: 'tick' }, String(it.value)));
  });
}

/**
 * graph draws a directed flow graph: nodes [id] on a circle, edges
 * [{from, to, amount, kind}] as arrows whose width grows with the amount.
 */
export function graph(svg, nodes, edges, label) {
  const w = 600, h = 420, cx = w / 2, cy = h / 2, r = Math.min(w, h) / 2 - 50;
  reset(svg, w, h, label);
  svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
  const defs = el('defs');
  for (const k of ['scrip', 'quota']) {
    const m = el('marker', { id: 'arrow-' + k, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' });
    m.append(el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-' + k }));
    defs.append(m);
  }
  svg.append(defs);
  const pos = new Map();
  nodes.forEach((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, nodes.length) - Math.PI / 2;
    pos.set(n, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) });
  });
  const max = Math.max(1, ...edges.map(e => e.amount));
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b || a === b) continue;
    // Bend each edge to its right, so that a->b and b->a do not overlap.
    const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2, dx = b.x - a.x, dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const bend = 0.15 * len;
    const qx = mx - (dy / len) * bend, qy = my + (dx / len) * bend;
    const shrink = 14 / len; // stop short of the node's circle
    const ex = b.x - dx * shrink, ey = b.y - dy * shrink;
    const path = el('path', {
      d: `M${a.x},${a.y} Q${qx},${qy} ${ex},${ey}`,
      class: 'edge edge-' + e.kind,
      'stroke-width': 1 + 5 * Math.sqrt(e.amount / max),
      'marker-end': `url(#arrow-${e.kind})`,
    });
    path.append(el('title', {}, `${e.from} → ${e.to}: ${e.amount} ${e.unit || ''}`));
    svg.append(path);
  }
  for (const n of nodes) {
    const p = pos.get(n);
    const g = el('g', { class: 'node' });
    g.append(el('circle', { cx: p.x, cy: p.y, r: 10 }));
    g.append(el('text', { x: p.x, y: p.y + (p.y < cy ? -15 : 24), 'text-anchor': 'middle', class: 'tick' }, n));
    svg.append(g);
  }
}
