// Small DOM helpers. Text from the API (display names, titles, alert texts) is untrusted: it is
// only ever set as text or attribute values, never parsed as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attributes, children) {
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function el(tag, attributes, ...children) {
  return build(document.createElement(tag), attributes, children);
}

export function svg(tag, attributes, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attributes, children);
}

export const STATES = ["interested", "bored", "confused", "no_face", "present"];
// "present": a face in view where no emotion is read (a bot in the attention mode).
export const STATE_LABELS = { interested: "interested", bored: "bored", confused: "confused", no_face: "no face", present: "in view (attention mode)" };

export function percent(share) {
  return `${Math.round(share * 100)} %`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

export function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// The state colours, then any further keys (each an array of nodes and text).
export function legend(...keys) {
  return stateLegend(STATES, ...keys);
}

// The colours of `states` only (a page shows no key for a state it cannot draw), then the keys.
export function stateLegend(states, ...keys) {
  return el(
    "ul",
    { class: "legend" },
    states.map((state) => el("li", { "data-state": state }, el("span", { class: `swatch ${state}` }), STATE_LABELS[state])),
    keys.map((key) => el("li", {}, key)),
  );
}

// Alert kinds about attention (head turned away, eyes closed): their own colour and key.
export const ATTENTION_ALERTS = ["looked_away", "eyes_closed"];
export const ALERT_LABELS = { looked_away: "looked away", eyes_closed: "eyes closed" };

const alertMark = (kind) =>
  svg("svg", { class: "key-mark", viewBox: "0 0 10 8", width: 12, height: 10, "aria-hidden": "true" }, svg("path", { class: `alert-mark ${kind}`, d: "M0,0 L10,0 L5,8 Z" }));

// The class chart's alert markers: the same triangle as in the chart.
export function alertKey() {
  return [alertMark("confused"), alertMark("bored"), "alert to the teacher (confusion, boredom; point at it for its text)"];
}

// The attention alerts' markers and list tags.
export function attentionAlertKey() {
  return [alertMark("looked_away"), alertMark("eyes_closed"), "attention alert to the teacher (looked away, eyes closed; point at it for its text)"];
}

// The lanes' shading: a bucket's colour is stronger the more of it the state filled.
export function shadeKey(state = "interested") {
  return [el("span", { class: `swatch ${state} light` }), el("span", { class: `swatch ${state}` }), "lighter: the state held for less of the interval"];
}

// The lanes' attention stripes: head turned away along the top, eyes closed along the bottom.
export function attentionKey() {
  return [
    el("span", { class: "swatch stripe looking_away" }),
    "looking away (top stripe)",
    el("span", { class: "swatch stripe eyes_closed" }),
    "eyes closed (bottom stripe); stronger: more of the interval",
  ];
}

export function meetingTitle(meeting) {
  return meeting.title || `Room ${meeting.room}`;
}
