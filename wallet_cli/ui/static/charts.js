// Small SVG charts of our own: bars (counts per label) and counts over time. No library.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function frame(figure, title, summary) {
    figure.replaceChildren();
    const cap = document.createElement("figcaption");
    cap.textContent = title;
    figure.append(cap);
    const svg = svgEl("svg", { role: "img", "aria-label": `${title}: ${summary}` });
    svg.append(svgEl("title", {}, `${title}: ${summary}`));
    figure.append(svg);
    return svg;
  }

  function empty(figure, title, words) {
    figure.replaceChildren();
    const cap = document.createElement("figcaption");
    cap.textContent = title;
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = words;
    figure.append(cap, p);
  }

  // Horizontal bars, largest first: items = [[label, count], ...].
  function bars(figure, title, items, emptyWords) {
    if (!items.length) return empty(figure, title, emptyWords);
    items = items.slice().sort((a, b) => b[1] - a[1]).slice(0, 12);
    const max = Math.max(...items.map((i) => i[1]));
    const row = 22, labelW = 150, width = 420, barW = width - labelW - 50;
    const svg = frame(figure, title, items.map((i) => `${i[0]} ${i[1]}`).join(", "));
    svg.setAttribute("viewBox", `0 0 ${width} ${items.length * row + 4}`);
    items.forEach(([label, count], n) => {
      const y = n * row + 2;
      const short = label.length > 24 ? label.slice(0, 23) + "…" : label;
      svg.append(svgEl("text", { x: labelW - 6, y: y + 14, "text-anchor": "end" }, short));
      const w = Math.max(2, (count / max) * barW);
      const bar = svgEl("rect", { class: "bar", x: labelW, y: y + 3, width: w, height: row - 6 });
      bar.append(svgEl("title", {}, `${label}: ${count}`));
      svg.append(bar);
      svg.append(svgEl("text", { x: labelW + w + 4, y: y + 14 }, String(count)));
    });
  }

  const STEPS = [[60, "minute"], [3600, "hour"], [86400, "day"], [7 * 86400, "week"]];

  // Counts per time bucket (the bucket grows with the span so there are at most ~40 columns).
  function overTime(figure, title, times, emptyWords) {
    if (!times.length) return empty(figure, title, emptyWords);
    const lo = Math.min(...times), hi = Math.max(...times);
    let step = STEPS[STEPS.length - 1];
    for (const s of STEPS) { if ((hi - lo) / s[0] <= 40) { step = s; break; } }
    const first = Math.floor(lo / step[0]);
    const n = Math.floor(hi / step[0]) - first + 1;
    const counts = new Array(n).fill(0);
    for (const t of times) counts[Math.floor(t / step[0]) - first] += 1;
    const max = Math.max(...counts);
    const width = 420, height = 160, left = 30, bottom = 24, colW = (width - left - 4) / n;
    const svg = frame(figure, `${title} (per ${step[1]})`,
      `${times.length} events from ${new Date(lo * 1000).toISOString()} to ${new Date(hi * 1000).toISOString()}`);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const plotH = height - bottom - 8;
    svg.append(svgEl("line", { class: "axis", x1: left, y1: 8 + plotH, x2: width - 2, y2: 8 + plotH }));
    svg.append(svgEl("text", { x: left - 4, y: 16, "text-anchor": "end" }, String(max)));
    svg.append(svgEl("text", { x: left - 4, y: 8 + plotH, "text-anchor": "end" }, "0"));
    counts.forEach((c, i) => {
      if (!c) return;
      const h = (c / max) * plotH;
      const start = new Date((first + i) * step[0] * 1000).toISOString().replace("T", " ").slice(0, 16);
      const bar = svgEl("rect", { class: "bar", x: left + i * colW + 1, y: 8 + plotH - h, width: Math.max(1, colW - 2), height: h });
      bar.append(svgEl("title", {}, `${start} UTC: ${c}`));
      svg.append(bar);
    });
    const fmt = (t) => new Date(t * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
    svg.append(svgEl("text", { x: left, y: height - 6 }, fmt(first * step[0])));
    svg.append(svgEl("text", { x: width - 4, y: height - 6, "text-anchor": "end" }, fmt(hi)));
  }

  window.DSCharts = { bars, overTime };
})();
