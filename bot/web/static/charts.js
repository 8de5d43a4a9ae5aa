// Charts in plain SVG: the class timeline (stacked shares per bucket), one heat strip per student,
// and a student's meetings as stacked bars. Colours come from style.css through class names.

import { STATES, STATE_LABELS, el, percent, svg } from "./dom.js";

const WIDTH = 960;
const LEFT = 58;
const RIGHT = 16;
const PLOT = WIDTH - LEFT - RIGHT;
const TICK_STEPS_S = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

function timeTicks(span) {
  const step = TICK_STEPS_S.find((s) => span / s <= 10) || 3600 * Math.ceil(span / 36000);
  const ticks = [];
  for (let t = 0; t <= span + 1e-9; t += step) ticks.push(t);
  return ticks;
}

// Time since the class started, as on every time axis and in the alert list: 45 s, 1:30, 5 min.
export function tickLabel(seconds) {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  const minutes = Math.floor(whole / 60);
  const rest = whole % 60;
  if (minutes < 60) return rest ? `${minutes}:${String(rest).padStart(2, "0")}` : `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")}`;
}

function spanOf(items, bucketS, durationS) {
  const last = items.length ? items[items.length - 1].start_s + bucketS : 0;
  return Math.max(durationS || 0, last, bucketS, 1);
}

function xAxis(span, y, x0 = LEFT, width = PLOT) {
  return svg(
    "g",
    { class: "axis" },
    svg("line", { x1: x0, x2: x0 + width, y1: y, y2: y }),
    timeTicks(span).map((t) => {
      const x = x0 + (t / span) * width;
      // The last label ends at its tick so that it stays inside the chart.
      const anchor = x > x0 + width - 30 ? "end" : "middle";
      return svg(
        "g",
        {},
        svg("line", { x1: x, x2: x, y1: y, y2: y + 4 }),
        svg("text", { x, y: y + 16, "text-anchor": anchor }, tickLabel(t)),
      );
    }),
  );
}

// The class: per bucket a stacked bar of the shares of interested / bored / confused / no face,
// with the alerts as markers above it. `alerts` carry `offset_s` (seconds after the start).
export function timelineChart(buckets, { bucketS, durationS, alerts = [] }) {
  const height = 246;
  const top = 18;
  const plotHeight = height - top - 42;
  const span = spanOf(buckets, bucketS, durationS);
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    class: "chart timeline",
    role: "img",
    "aria-label": "Class engagement over time",
  });
  for (const share of [0, 0.5, 1]) {
    const y = top + plotHeight * (1 - share);
    chart.append(
      svg("line", { class: "grid", x1: LEFT, x2: WIDTH - RIGHT, y1: y, y2: y }),
      svg("text", { class: "axis-label", x: LEFT - 6, y: y + 4, "text-anchor": "end" }, percent(share)),
    );
  }
  const bars = svg("g", { class: "bars" });
  for (const bucket of buckets) {
    const x = LEFT + (bucket.start_s / span) * PLOT;
    const width = Math.max(1, (bucketS / span) * PLOT - 0.5);
    const group = svg("g", { "data-bucket": bucket.start_s });
    let y = top + plotHeight;
    for (const state of STATES) {
      const share = bucket[`share_${state}`];
      if (share <= 0) continue;
      const h = share * plotHeight;
      y -= h;
      group.append(
        svg(
          "rect",
          { class: `fill ${state}`, x, y, width, height: h },
          svg("title", {}, `${tickLabel(Math.round(bucket.start_s))}: ${STATE_LABELS[state]} ${percent(share)} of ${bucket.num_people} people`),
        ),
      );
    }
    bars.append(group);
  }
  chart.append(
    bars,
    xAxis(span, top + plotHeight),
    svg("text", { class: "axis-title", x: WIDTH - RIGHT, y: height - 1, "text-anchor": "end" }, "time since the class started"),
    svg("text", { class: "axis-title", x: -(top + plotHeight / 2), y: 10, transform: "rotate(-90)", "text-anchor": "middle" }, "share of the class"),
  );
  for (const alert of alerts) {
    const x = LEFT + (Math.min(alert.offset_s, span) / span) * PLOT;
    chart.append(
      svg(
        "path",
        { class: `alert-mark ${alert.kind}`, d: `M${x - 5},2 L${x + 5},2 L${x},${top - 4} Z` },
        svg("title", {}, `${tickLabel(Math.round(alert.offset_s))}: ${alert.text}`),
      ),
    );
  }
  return chart;
}

// One lane per student: each bucket coloured by the student's most frequent state, stronger when
// that state filled more of the bucket.
export function lanesChart(lanes, { bucketS, durationS, studentHref }) {
  const label = 150;
  const row = 20;
  const plot = WIDTH - label - RIGHT;
  const allBuckets = lanes.flatMap((lane) => lane.buckets);
  const span = Math.max(spanOf([], bucketS, durationS), ...allBuckets.map((b) => b.start_s + bucketS));
  const height = lanes.length * row + 42;
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    class: "chart lanes",
    role: "img",
    "aria-label": "Each student's engagement over time",
  });
  lanes.forEach((lane, index) => {
    const y = index * row;
    const name = lane.display_name.length > 22 ? `${lane.display_name.slice(0, 21)}…` : lane.display_name;
    const group = svg("g", { class: "lane", "data-student": lane.display_name });
    group.append(
      svg(
        "a",
        { href: studentHref(lane.display_name) },
        svg("text", { class: "lane-name", x: label - 8, y: y + row / 2 + 4, "text-anchor": "end" }, name),
        svg("title", {}, lane.display_name),
      ),
      svg("rect", { class: "lane-back", x: label, y: y + 2, width: plot, height: row - 4 }),
    );
    for (const bucket of lane.buckets) {
      const share = bucket[`share_${bucket.state}`];
      group.append(
        svg(
          "rect",
          {
            class: `fill ${bucket.state}`,
            x: label + (bucket.start_s / span) * plot,
            y: y + 2,
            width: Math.max(1, (bucketS / span) * plot - 0.5),
            height: row - 4,
            "fill-opacity": (0.35 + 0.65 * share).toFixed(2),
          },
          svg("title", {}, `${lane.display_name}, ${tickLabel(Math.round(bucket.start_s))}: ${STATE_LABELS[bucket.state]} (${percent(share)})`),
        ),
      );
      group.append(...attentionStripes(lane, bucket, { x: label + (bucket.start_s / span) * plot, y, row, width: Math.max(1, (bucketS / span) * plot - 0.5) }));
    }
    if (lane.opted_out) {
      group.append(svg("text", { class: "axis-label", x: label + 6, y: y + row / 2 + 4 }, "opted out: nothing recorded"));
    }
    chart.append(group);
  });
  chart.append(
    xAxis(span, lanes.length * row + 2, label, plot),
    svg("text", { class: "axis-title", x: WIDTH - RIGHT, y: height - 1, "text-anchor": "end" }, "time since the class started"),
  );
  return chart;
}

// A student's meetings: one stacked bar of shares per meeting, labelled with its date and title.
export function studentBars(entries) {
  const label = 260;
  const row = 26;
  const plot = WIDTH - label - RIGHT;
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${entries.length * row + 4}`,
    class: "chart student-bars",
    role: "img",
    "aria-label": "Time in each state per meeting",
  });
  entries.forEach(({ label: text, href, student }, index) => {
    const y = index * row;
    const group = svg("g", { class: "meeting-bar" });
    group.append(svg("a", { href }, svg("text", { class: "lane-name", x: label - 8, y: y + row / 2 + 4, "text-anchor": "end" }, text)));
    let x = label;
    for (const state of STATES) {
      const share = student[`share_${state}`];
      if (share <= 0) continue;
      group.append(
        svg(
          "rect",
          { class: `fill ${state}`, x, y: y + 3, width: share * plot, height: row - 6 },
          svg("title", {}, `${STATE_LABELS[state]}: ${percent(share)}`),
        ),
      );
      x += share * plot;
    }
    if (!student.num_samples) group.append(svg("text", { class: "axis-label", x: label + 6, y: y + row / 2 + 4 }, "no samples"));
    chart.append(group);
  });
  return chart;
}

export function emptyNote(text) {
  return el("p", { class: "empty" }, text);
}

// A lane bucket's attention: a stripe along the top while the head was turned away, along the
// bottom while the eyes were closed, stronger the more of the bucket it filled (none without
// attention readings: the Haar face stage reads none).
function attentionStripes(lane, bucket, { x, y, row, width }) {
  const stripes = [];
  for (const [key, top, label] of [
    ["looking_away", y + 2, "looking away"],
    ["eyes_closed", y + row - 6, "eyes closed"],
  ]) {
    const share = bucket[`share_${key}`] || 0;
    if (share <= 0) continue;
    stripes.push(
      svg(
        "rect",
        { class: `attention ${key}`, x, y: top, width, height: 4, "fill-opacity": (0.35 + 0.65 * share).toFixed(2) },
        svg("title", {}, `${lane.display_name}, ${tickLabel(Math.round(bucket.start_s))}: ${label} (${percent(share)})`),
      ),
    );
  }
  return stripes;
}
