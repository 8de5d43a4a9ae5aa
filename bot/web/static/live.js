// The live meeting page's "Right now": coverage, and one item per student with the state badge
// and, from the live feed's `attention` object, how long the head has been turned away and the
// eyes closed. Events are the bot session's own (bot/session_analysis.py): a "sample" carries
// `attention` ({yaw, pitch, eyes_open, looking_away, looking_away_s, eyes_closed_s, perclos}) or
// null when the face stage read no landmarks; a "state" event carries none.

import { STATE_LABELS, clock, duration, el, percent } from "./dom.js";

export function stateBadge(state) {
  return el("span", { class: `badge ${state}` }, STATE_LABELS[state] || state);
}

// The attention chips of one student now: none without a reading or without a face.
export function attentionChips(attention, state) {
  if (!attention || state === "no_face") return [];
  const chips = [];
  const awayS = Number(attention.looking_away_s) || 0;
  const closedS = Number(attention.eyes_closed_s) || 0;
  if (attention.looking_away || awayS > 0) {
    chips.push(
      el(
        "span",
        { class: "attn looking_away", "data-seconds": awayS, title: `head turned away (yaw ${attention.yaw}°, pitch ${attention.pitch}°)` },
        `looking away ${duration(awayS)}`,
      ),
    );
  }
  if (attention.eyes_open === false || closedS > 0) {
    const perclos = typeof attention.perclos === "number" ? `; closed ${percent(attention.perclos)} of the last minute` : "";
    chips.push(el("span", { class: "attn eyes_closed", "data-seconds": closedS, title: `eyes closed${perclos}` }, `eyes closed ${duration(closedS)}`));
  }
  return chips;
}

// The panel and what it does with each event; `onEvent` answers whether it used the event.
export function liveNow() {
  const list = el("ul", { id: "live-now", class: "live-now", "data-events": 0 });
  // "12 of 15 visible": students with a usable face now; camera off or no face are not, opted out not counted.
  const coverage = el("p", { id: "coverage", class: "coverage", title: "Students whose face the bot can read now; a camera that is off or shows no face is not visible; students who opted out are not counted." }, "Visible: waiting for the bot…");
  const students = new Map(); // name → {item, attention}

  const set = (name, state, t, attention) => {
    let entry = students.get(name);
    if (!entry) {
      entry = { item: el("li", { "data-student": name }), attention: null };
      students.set(name, entry);
      list.append(entry.item);
    }
    // A sample says what attention is now (null: no reading); a state change leaves it as it was.
    if (attention !== undefined) entry.attention = attention;
    if (state === "no_face") entry.attention = null;
    const chips = attentionChips(entry.attention, state);
    entry.item.setAttribute("data-state", state);
    entry.item.setAttribute("data-attention", chips.map((chip) => chip.classList[1]).join(" "));
    entry.item.replaceChildren(el("span", { class: "name" }, name), " ", stateBadge(state), ...chips, el("time", {}, clock(new Date(t * 1000).toISOString())));
  };

  const onEvent = (name, data) => {
    list.setAttribute("data-events", Number(list.getAttribute("data-events")) + 1);
    if (name === "sample") set(data.student, data.state, data.t, data.attention ?? null);
    else if (name === "state") set(data.student, data.state, data.t, undefined);
    else if (name === "coverage") {
      coverage.replaceChildren(el("strong", {}, `${data.visible} of ${data.total}`), " students visible");
      coverage.dataset.visible = data.visible;
      coverage.dataset.total = data.total;
    } else if (name === "left") students.get(data.student)?.item.setAttribute("data-state", "left");
    else if (name === "opt_out") {
      students.get(data.student)?.item.remove();
      students.delete(data.student);
    } else return false;
    return true;
  };
  return { list, coverage, onEvent };
}
