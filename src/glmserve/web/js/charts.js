// Stacked bar charts of daily sums, drawn by the vendored uPlot (vendor/uplot, MIT).
// Labels (model names, key names) reach the page through uPlot's legend, which sets textContent.

import uPlot from "../vendor/uplot/uPlot.esm.js";

export const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#64748b"];

// days: ["YYYY-MM-DD", ...] oldest first; groups: [{label, values: [per day]}]. Returns a destroy().
export function stackedBars(el, days, groups, { valueLabel = "" } = {}) {
  const n = groups.length;
  const x = days.map((_, i) => i);
  const cumulative = [];
  let running = days.map(() => 0);
  for (const group of groups) {
    running = running.map((sum, i) => sum + (group.values[i] || 0));
    cumulative.push(running);
  }
  // Tallest first: each later, shorter series is drawn over it, which stacks the colours.
  const order = groups.map((_, i) => n - 1 - i);
  const totals = groups.map((g) => g.values.reduce((a, b) => a + (b || 0), 0));
  const bars = uPlot.paths.bars({ size: [0.7, 56], align: 0 });
  const series = [
    { label: "day", value: (u, v) => (v === null || v === undefined ? `${days.length} days` : days[v] || "") },
    ...order.map((g) => ({
      label: groups[g].label,
      fill: PALETTE[g % PALETTE.length],
      stroke: PALETTE[g % PALETTE.length],
      width: 0,
      paths: bars,
      points: { show: false },
      // Hovering a day: that day's value; otherwise the whole period's.
      value: (u, v, s, idx) => (idx === null || idx === undefined ? totals[g] : groups[g].values[idx] || 0).toLocaleString("en-US"),
    })),
  ];
  const step = Math.max(1, Math.ceil(days.length / 10));
  const options = {
    width: Math.max(320, el.clientWidth),
    height: 240,
    scales: { x: { time: false, range: () => [-0.6, days.length - 0.4] }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
    axes: [
      {
        splits: () => x.filter((i) => (days.length - 1 - i) % step === 0),
        values: (u, splits) => splits.map((i) => (days[i] || "").slice(5)),
        grid: { show: false },
        stroke: "#64748b",
      },
      { stroke: "#64748b", grid: { stroke: "#e2e8f0" }, size: 60, label: valueLabel, labelSize: 20,
        values: (u, splits) => splits.map(compact) },
    ],
    legend: { live: true },
    cursor: { points: { show: false }, drag: { x: false, y: false } },
    series,
  };
  const plot = new uPlot(options, [x, ...order.map((g) => cumulative[g])], el);
  const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(320, el.clientWidth), height: 240 }));
  resize.observe(el);
  return () => {
    resize.disconnect();
    plot.destroy();
  };
}

function compact(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(v * 100) / 100);
}
