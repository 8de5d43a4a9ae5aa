// The time-per-state tables of a meeting and of a student's meetings, and which states and
// attention columns a page shows: an attention-mode class reads no emotion (its samples are
// "present" or "no face"), so it gets no empty interested / bored / confused columns or legend
// entries; attention readings (the landmark face stage) add looking away / eyes closed.

import { STATE_LABELS, duration, el, percent } from "./dom.js";

const EMOTIONS = ["interested", "bored", "confused"];
export const ATTENTION = ["looking_away", "eyes_closed"];
const ATTENTION_LABELS = { looking_away: "Looking away", eyes_closed: "Eyes closed" };

const emotionSeconds = (s) => s.seconds_interested + s.seconds_bored + s.seconds_confused;

// The states worth a column or a legend entry, in the order of the charts' stacks.
export function shownStates(students) {
  const present = students.some((s) => s.seconds_present > 0);
  const emotions = !present || students.some((s) => emotionSeconds(s) > 0);
  return [...(emotions ? EMOTIONS : []), "no_face", ...(present ? ["present"] : [])];
}

// Whether any sample carries an attention reading (the Haar face stage reads none).
export function hasAttention(students) {
  return students.some((s) => s.num_attention_samples > 0);
}

// Time and share of the readings; "–" for a student without one.
function attentionCell(student, key, periodS) {
  if (!student.num_attention_samples) return el("td", { class: "number" }, "–");
  const seconds = student[`seconds_${key}`];
  const readS = student.num_attention_samples * periodS;
  return el("td", { class: "number", "data-attention": key }, `${duration(seconds)} (${percent(readS ? seconds / readS : 0)})`);
}

export function studentTable(students, { periodS, studentHref }) {
  if (!students.length) return el("p", { class: "empty" }, "No students in this meeting.");
  const states = shownStates(students);
  const attention = hasAttention(students) ? ATTENTION : [];
  return el(
    "table",
    { id: "time-per-state" },
    el("thead", {}, el("tr", {}, ["Student", ...states.map((s) => STATE_LABELS[s]), ...attention.map((k) => ATTENTION_LABELS[k]), "Alerts"].map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      students.map((s) =>
        el(
          "tr",
          { "data-student": s.display_name },
          el("td", {}, el("a", { href: studentHref(s.display_name) }, s.display_name), s.opted_out ? " (opted out)" : ""),
          states.map((state) => el("td", { class: "number" }, `${duration(s[`seconds_${state}`])} (${percent(s[`share_${state}`])})`)),
          attention.map((key) => attentionCell(s, key, periodS)),
          el("td", { class: "number" }, s.num_alerts),
        ),
      ),
    ),
  );
}

// A student's meetings: one row each; a meeting that read nothing of a kind shows "–" there.
export function historyTable(entries) {
  const students = entries.map((e) => e.student);
  const states = shownStates(students);
  const attention = hasAttention(students) ? ATTENTION : [];
  const stateCell = (student, state) => {
    const unread = EMOTIONS.includes(state) && student.seconds_present > 0 && !emotionSeconds(student);
    return el("td", { class: "number" }, unread ? "–" : duration(student[`seconds_${state}`]));
  };
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, ["Meeting", "Teacher", ...states.map((s) => STATE_LABELS[s]), ...attention.map((k) => ATTENTION_LABELS[k]), "Alerts"].map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      entries.map(({ meeting, student, href, label }) =>
        el(
          "tr",
          {},
          el("td", {}, el("a", { href }, label)),
          el("td", {}, meeting.teacher || "–"),
          states.map((state) => stateCell(student, state)),
          attention.map((key) => el("td", { class: "number" }, student.num_attention_samples ? duration(student[`seconds_${key}`]) : "–")),
          el("td", { class: "number" }, student.num_alerts),
        ),
      ),
    ),
  );
}
