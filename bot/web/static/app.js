// The dashboard: draws the page the address names from the REST API.
//   /                  meetings (filters, live ones marked)
//   /meetings/ID       one meeting: class timeline, a lane per student, alerts; live while a bot is in it
//   /students/NAME     one student across meetings
//   /classes           open a class room (New class), its links, invite the bot (classes.js)
//   /bots              invite the bot, see and stop bots
//   /about             the model's evaluation report and plots

import { ApiError, download, follow, getBlob, getJson, getToken, sendJson, setToken, takeTokenFromLocation } from "./api.js";
import { classesView } from "./classes.js";
import { emptyNote, lanesChart, studentBars, tickLabel, timelineChart } from "./charts.js";
import { ALERT_LABELS, ATTENTION_ALERTS, alertKey, attentionAlertKey, attentionKey, clock, duration, el, meetingTitle, shadeKey, stateLegend, when } from "./dom.js";
import { liveNow } from "./live.js";
import { renderMarkdown } from "./markdown.js";
import { hasAttention, historyTable, shownStates, studentTable } from "./tables.js";

const view = document.getElementById("view");
const BUCKETS = ["5s", "10s", "30s", "1m", "5m"];
// After a live event, wait this long before reloading from storage: the writer commits in batches.
const REFRESH_DELAY_MS = 1500;

const meetingHref = (id) => `/meetings/${encodeURIComponent(id)}`;
const studentHref = (name) => `/students/${encodeURIComponent(name)}`;
const api = (path) => `/api/${path}`;

function show(...children) {
  view.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== false));
}

const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

function tokenForm(message) {
  const input = el("input", { type: "password", id: "token-input", autocomplete: "off", placeholder: "API token", size: 48 });
  const form = el(
    "form",
    { class: "token-form", onsubmit: (event) => { event.preventDefault(); setToken(input.value); location.reload(); } },
    el("h1", {}, "API token"),
    el("p", {}, message),
    el("p", {}, el("code", {}, "classpulse serve"), " shows the token once, on its first start; ", el("code", {}, "classpulse serve --new-token"), " makes a new one."),
    input,
    " ",
    el("button", { type: "submit" }, "Save"),
  );
  show(form);
  input.focus();
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    tokenForm(getToken() ? "The saved token was refused." : "Paste the API token to see the history.");
    return;
  }
  show(el("p", { class: "error", role: "alert" }, error.message || String(error)));
}

function exportButton(label, path, filename) {
  return el("button", { type: "button", class: "quiet", onclick: () => download(path, filename).catch(failed) }, label);
}

// -- meetings -----------------------------------------------------------------------------

async function meetingsView() {
  const query = new URLSearchParams(location.search);
  const filters = new URLSearchParams();
  for (const key of ["since", "until", "teacher", "room"]) if (query.get(key)) filters.set(key, query.get(key));
  const [{ meetings }, { bots }] = await Promise.all([getJson(api(`meetings?${filters}`)), getJson(api("bots"))]);
  const live = new Set(bots.filter((bot) => ["starting", "running", "leaving"].includes(bot.state)).map((bot) => bot.meeting_id));
  const field = (name, label, type = "text") =>
    el("label", {}, label, " ", el("input", { name, type, value: query.get(name) || "" }));
  const rows = meetings
    .slice()
    .reverse()
    .map((m) =>
      el(
        "tr",
        { "data-meeting": m.meeting_id },
        el("td", {}, el("a", { href: meetingHref(m.meeting_id) }, meetingTitle(m)), live.has(m.meeting_id) ? el("span", { class: "badge live" }, "live") : null),
        el("td", {}, when(m.started_at)),
        el("td", {}, m.ended_at ? duration((new Date(m.ended_at) - new Date(m.started_at)) / 1000) : "–"),
        el("td", {}, m.teacher || "–"),
        el("td", {}, m.room),
        el("td", { class: "number" }, m.num_participants),
      ),
    );
  show(
    el("h1", {}, "Meetings"),
    el("form", { class: "filters", method: "get" }, field("since", "From", "date"), field("until", "Before", "date"), field("teacher", "Teacher"), field("room", "Room"), el("button", { type: "submit" }, "Filter")),
    rows.length
      ? el(
          "table",
          { id: "meetings" },
          el("thead", {}, el("tr", {}, ["Meeting", "Started", "Length", "Teacher", "Room", "Students"].map((h) => el("th", {}, h)))),
          el("tbody", {}, rows),
        )
      : emptyNote("No meetings yet. Invite the bot from the Bots page."),
    el("p", {}, exportButton("Export CSV", api(`meetings?${filters}&format=csv`), "meetings.csv")),
  );
}

// -- one meeting --------------------------------------------------------------------------

async function meetingView(id) {
  const chosen = new URLSearchParams(location.search).get("bucket");
  let bucket = chosen || "10s";
  const load = async () => {
    const page = await getJson(api(`meetings/${encodeURIComponent(id)}`));
    if (!chosen) bucket = autoBucket(page.meeting);
    const query = `bucket=${encodeURIComponent(bucket)}`;
    return [
      page,
      ...(await Promise.all([
        getJson(api(`meetings/${encodeURIComponent(id)}/timeline?${query}`)),
        getJson(api(`meetings/${encodeURIComponent(id)}/students?${query}`)),
        getJson(api(`meetings/${encodeURIComponent(id)}/alerts`)),
      ])),
    ];
  };
  let summary, timeline, lanes, alerts;
  for (;;) {
    try {
      [summary, timeline, lanes, alerts] = await load();
      break;
    } catch (error) {
      // A bot that is still joining has a meeting id before its meeting is stored: wait for it.
      if (!(error instanceof ApiError) || error.status !== 404 || !(await joining(id))) throw error;
      show(el("p", { class: "meta", id: "joining" }, "The bot is joining the meeting…"));
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  const meeting = summary.meeting;
  const started = new Date(meeting.started_at);
  const status = el("span", { id: "live-status", class: summary.live ? "badge live" : "badge" }, summary.live ? "live" : "ended");
  const sections = {
    timeline: el("div", { id: "timeline" }),
    lanes: el("div", { id: "lanes" }),
    alerts: el("ol", { id: "alerts", class: "alerts" }),
    table: el("div", { id: "students" }),
    classKey: el("div", { id: "class-key" }),
    lanesKey: el("div", { id: "lanes-key" }),
  };
  const now = liveNow();

  function draw() {
    const durationS = ((meeting.ended_at ? new Date(meeting.ended_at) : new Date()) - started) / 1000;
    const marks = alerts.alerts.map((a) => ({ ...a, offset_s: (new Date(a.t) - started) / 1000 }));
    sections.timeline.replaceChildren(
      timeline.buckets.length
        ? timelineChart(timeline.buckets, { bucketS: timeline.bucket_s, durationS, alerts: marks })
        : emptyNote("No samples yet."),
    );
    sections.lanes.replaceChildren(
      lanes.students.length
        ? lanesChart(lanes.students, { bucketS: lanes.bucket_s, durationS, studentHref })
        : emptyNote("No students yet."),
    );
    sections.alerts.replaceChildren(
      ...(alerts.alerts.length
        ? alerts.alerts.map((a) =>
            // The time since the start, as on the charts' axes; the clock time beside it.
            el("li", { class: a.kind }, el("time", { datetime: a.t }, tickLabel((new Date(a.t) - started) / 1000)), el("span", { class: "clock" }, clock(a.t)), " ", ATTENTION_ALERTS.includes(a.kind) ? el("span", { class: `alert-kind ${a.kind}` }, ALERT_LABELS[a.kind]) : "", a.text, a.delivered ? "" : " (not delivered)"),
          )
        : [el("li", { class: "empty" }, "No alerts.")]),
    );
    sections.table.replaceChildren(studentTable(summary.students, { periodS: meeting.sample_period_s, studentHref }));
    // Keys for what the charts draw: no emotion colours where none was read (the attention
    // mode), attention keys once a reading or an attention alert exists.
    const states = shownStates(summary.students);
    const readings = hasAttention(summary.students);
    const attentionAlerts = readings || alerts.alerts.some((a) => ATTENTION_ALERTS.includes(a.kind));
    const emotionAlerts = states.includes("interested") || alerts.alerts.some((a) => !ATTENTION_ALERTS.includes(a.kind));
    sections.classKey.replaceChildren(stateLegend(states, ...(emotionAlerts ? [alertKey()] : []), ...(attentionAlerts ? [attentionAlertKey()] : [])));
    sections.lanesKey.replaceChildren(stateLegend(states, shadeKey(states[0] === "no_face" ? "present" : states[0]), ...(readings ? [attentionKey()] : [])));
  }

  const heading = el("h1", {}, meetingTitle(meeting), " ", status);
  show(
    heading,
    el("p", { class: "meta" }, `${when(meeting.started_at)} · room ${meeting.room} · teacher ${meeting.teacher || "–"} · ${plural(meeting.num_participants, "student")}`),
    el(
      "p",
      { class: "controls" },
      "Bucket: ",
      BUCKETS.map((b) => (b === bucket ? el("strong", {}, b) : el("a", { href: `?bucket=${b}` }, b))).flatMap((node) => [node, " "]),
      " Export: ",
      exportButton("summary CSV", api(`meetings/${encodeURIComponent(id)}?format=csv`), `meeting-${id}.csv`),
      exportButton("timeline CSV", api(`meetings/${encodeURIComponent(id)}/timeline?bucket=${bucket}&format=csv`), `timeline-${id}.csv`),
      exportButton("alerts CSV", api(`meetings/${encodeURIComponent(id)}/alerts?format=csv`), `alerts-${id}.csv`),
      exportButton("JSON", api(`meetings/${encodeURIComponent(id)}`), `meeting-${id}.json`),
      " ",
      // The report is a page to keep and print: saved as a file (the token travels in a header).
      el("button", { type: "button", id: "report", title: "One printable HTML page: coverage, the class curve, a lane per student, alerts, the model's limits", onclick: () => download(api(`meetings/${encodeURIComponent(id)}/report`), `report-${id.slice(0, 8)}.html`).catch(failed) }, "Printable report"),
    ),
    el("section", {}, el("h2", {}, "The class"), sections.classKey, sections.timeline),
    summary.live ? el("section", {}, el("h2", {}, "Right now"), now.coverage, now.list) : null,
    el("section", {}, el("h2", {}, "Each student"), sections.lanesKey, sections.lanes),
    el("section", {}, el("h2", {}, "Alerts to the teacher"), sections.alerts),
    el("section", {}, el("h2", {}, "Time per state"), sections.table),
  );
  draw();
  if (!summary.live) return;

  let timer = null;
  const refresh = () => {
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        [summary, timeline, lanes, alerts] = await load();
        draw();
      } catch (error) {
        console.warn("refresh failed", error);
      }
    }, REFRESH_DELAY_MS);
  };
  // Events are the bot session's own: sample, state, coverage, alert, joined, left, opt_out, gap, ended.
  const onEvent = (name, data) => {
    if (now.onEvent(name, data)) {
      // "Right now" took it (sample, state, coverage, left, opt_out).
    } else if (name === "alert") {
      alerts.alerts.push({ t: new Date(data.t * 1000).toISOString(), kind: data.kind, text: data.text, delivered: data.delivered, display_name: data.student });
      draw();
    } else if (name === "ended" || name === "end") {
      status.textContent = "ended";
      status.className = "badge";
    }
    if (["sample", "state", "alert", "joined", "left", "opt_out", "ended"].includes(name)) refresh();
  };
  follow(api(`meetings/${encodeURIComponent(id)}/live`), onEvent).then(
    () => onEvent("end", {}),
    (error) => {
      status.textContent = "live feed lost";
      console.warn("live feed", error);
    },
  );
}

// About 250 buckets at most across the meeting: a long class stays light to load and to draw
// (an hour of 30 students at 10 s is 1.6 MB of lanes; at 30 s, a third of it).
function autoBucket(meeting) {
  const end = meeting.ended_at ? new Date(meeting.ended_at) : new Date();
  const seconds = (end - new Date(meeting.started_at)) / 1000;
  return ["10s", "30s", "1m", "5m"].find((b, i) => seconds / [10, 30, 60, 300][i] <= 250) || "5m";
}

async function joining(meetingId) {
  const { bots } = await getJson(api("bots"));
  return bots.some((bot) => bot.meeting_id === meetingId && ["starting", "running"].includes(bot.state));
}

// -- one student --------------------------------------------------------------------------

async function studentView(name) {
  const history = await getJson(api(`students/${encodeURIComponent(name)}/history`));
  const entries = history.meetings
    .slice()
    .reverse()
    .map(({ meeting, student }) => ({ label: `${when(meeting.started_at)} · ${meetingTitle(meeting)}`, href: meetingHref(meeting.meeting_id), student, meeting }));
  show(
    el("h1", {}, name),
    el("p", { class: "meta" }, plural(entries.length, "meeting")),
    stateLegend(shownStates(entries.map((e) => e.student))),
    entries.length ? studentBars(entries) : emptyNote("No meetings in this period."),
    historyTable(entries),
    el("p", {}, exportButton("Export CSV", api(`students/${encodeURIComponent(name)}/history?format=csv`), "student.csv")),
  );
}

// -- bots ---------------------------------------------------------------------------------

async function botsView() {
  const list = el("div", { id: "bots" });
  const message = el("p", { class: "error", role: "alert" });
  const url = el("input", { name: "meeting_url", required: true, size: 60, placeholder: "janus+ws://HOST:8188/?room=1234" });
  const teacher = el("input", { name: "teacher", required: true, placeholder: "your name in the meeting" });
  const code = el("input", { name: "teacher_code", placeholder: "made for you when empty", autocomplete: "off" });
  const options = el("textarea", { name: "options", rows: 2, cols: 60, placeholder: "{} (options as JSON)" });
  const form = el(
    "form",
    {
      class: "invite",
      onsubmit: async (event) => {
        event.preventDefault();
        message.textContent = "";
        try {
          const parsed = options.value.trim() ? JSON.parse(options.value) : {};
          const body = { meeting_url: url.value, teacher: teacher.value, options: parsed };
          if (code.value.trim()) body.teacher_code = code.value.trim();
          await sendJson("POST", api("bots"), body);
          await drawBots();
        } catch (error) {
          message.textContent = error.message;
        }
      },
    },
    el("label", {}, "Meeting URL ", url),
    el("label", {}, "Teacher ", teacher),
    el("label", {}, "Teacher code ", code),
    el("label", {}, "Options ", options),
    el("button", { type: "submit" }, "Invite the bot"),
  );
  async function drawBots() {
    const { bots } = await getJson(api("bots"));
    list.replaceChildren(
      bots.length
        ? el(
            "table",
            {},
            el("thead", {}, el("tr", {}, ["Bot", "State", "Meeting", "Teacher", "Teacher code", "Started", "Alerts", ""].map((h) => el("th", {}, h)))),
            el(
              "tbody",
              {},
              bots.map((bot) =>
                el(
                  "tr",
                  { "data-bot": bot.id },
                  el("td", {}, bot.id),
                  el("td", {}, el("span", { class: `badge ${bot.state}` }, bot.state), bot.paused ? " (paused)" : "", bot.code ? " " : "", bot.code ? el("code", { class: "bot-code", title: "the stable code of GET /api/bots/{id} and the webhooks" }, bot.code) : "", bot.message || bot.error || bot.stop_reason ? ` ${bot.message || bot.error || bot.stop_reason}` : ""),
                  el("td", {}, bot.meeting_id ? el("a", { href: meetingHref(bot.meeting_id) }, bot.meeting_url) : bot.meeting_url),
                  el("td", {}, bot.teacher),
                  // The teacher whispers "!claim CODE" to the bot in the meeting chat.
                  el("td", { class: "teacher-code", title: "whisper !claim CODE to the bot" }, el("code", {}, bot.teacher_code || "")),
                  el("td", {}, when(bot.started_at)),
                  el("td", { class: "number" }, bot.num_alerts),
                  el("td", {}, ["starting", "running"].includes(bot.state) ? el("button", { type: "button", onclick: () => sendJson("DELETE", api(`bots/${encodeURIComponent(bot.id)}`)).then(drawBots, failed) }, "Leave") : ""),
                ),
              ),
            ),
          )
        : emptyNote("No bots running."),
    );
  }
  show(el("h1", {}, "Bots"), form, message, list);
  await drawBots();
  setInterval(() => drawBots().catch(() => {}), 3000);
}

// -- the model ----------------------------------------------------------------------------

async function aboutView() {
  const report = await getJson(api("model"));
  const images = el("div", { class: "plots" });
  const plots = new Map(report.files.filter((f) => f.media_type.startsWith("image/")).map((f) => [f.name, f]));
  const shown = new Set();
  // The report's images are its own plot files, fetched with the token (an <img src> cannot be).
  const plot = (name, alt) => {
    const img = el("img", { alt });
    getBlob(api(`model/files/${encodeURIComponent(name)}`)).then((blob) => { img.src = URL.createObjectURL(blob); }, () => img.replaceWith(alt));
    return img;
  };
  const inlineImage = (src, alt) => {
    if (!plots.has(src)) return null;
    shown.add(src);
    return plot(src, alt);
  };
  show(
    el("h1", {}, "About the model"),
    el("p", {}, "A CNN-LSTM reads each student's last seconds of 48×48 gray face crops and estimates interested, bored or confused. It is trained on facial-expression datasets, not on classrooms: treat it as a hint, never as a judgement of a student."),
    report.report
      ? el("article", { class: "report" }, renderMarkdown(report.report, { image: inlineImage }))
      : el("p", { class: "empty" }, `No evaluation report in ${report.report_dir || "the configured folder"}: run `, el("code", {}, "classpulse evaluate --output DIR"), " and set ", el("code", {}, "CLASSPULSE_MODEL_REPORT=DIR"), "."),
    images,
  );
  for (const name of plots.keys()) {
    if (!shown.has(name)) images.append(el("figure", {}, plot(name, name), el("figcaption", {}, name)));
  }
}

// -- routing ------------------------------------------------------------------------------

function route() {
  const path = location.pathname;
  let match;
  if ((match = /^\/meetings\/([^/]+)$/.exec(path))) return meetingView(decodeURIComponent(match[1]));
  if ((match = /^\/students\/([^/]+)$/.exec(path))) return studentView(decodeURIComponent(match[1]));
  if (path === "/classes") return classesView(show);
  if (path === "/bots") return botsView();
  if (path === "/about") return aboutView();
  return meetingsView();
}

takeTokenFromLocation();
document.getElementById("token-button").addEventListener("click", () => tokenForm("Paste a new API token."));
if (!getToken()) tokenForm("Paste the API token to see the history.");
else route().catch(failed);
