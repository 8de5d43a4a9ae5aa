// Classes: open a built-in class room ("New class"), its teacher and student links with copy
// buttons, invite the bot into it, close it. The room lives in `classpulse serve` (/api/rooms).

import { getJson, sendJson } from "./api.js";
import { el } from "./dom.js";

const api = (path) => `/api/${path}`;

function copyField(label, value, secret) {
  const input = el("input", { type: "text", readonly: true, value, size: 60, class: secret ? "secret-link" : "link" });
  const button = el("button", { type: "button", class: "quiet copy" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      input.select(); // no clipboard permission (plain http on another host): select for Ctrl-C
      document.execCommand("copy");
    }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return el("label", { class: "copy-field" }, label, " ", input, " ", button);
}

function roomCard(room, teacherName, redraw, message) {
  const invite = el("button", { type: "button", class: "invite-bot" }, "Invite the bot");
  invite.addEventListener("click", async () => {
    message.textContent = "";
    try {
      await sendJson("POST", api("bots"), { meeting_url: `builtin:${room.room}`, teacher: teacherName() });
      invite.textContent = "Bot invited (see Bots)";
      invite.disabled = true;
    } catch (error) {
      message.textContent = error.message;
    }
  });
  const close = el("button", { type: "button", class: "quiet" }, "Close the class");
  close.addEventListener("click", async () => {
    if (!confirm(`Close "${room.title}"? Everyone in it is disconnected and the bot leaves.`)) return;
    await sendJson("DELETE", api(`rooms/${encodeURIComponent(room.room)}`)).catch((error) => { message.textContent = error.message; });
    await redraw();
  });
  return el(
    "section",
    { class: "room", "data-room": room.room },
    el("h2", {}, room.title, " ", el("code", {}, `builtin:${room.room}`)),
    copyField("Your link (teacher, keep it secret)", room.teacher_url, true),
    copyField("Link for the students", room.student_url, false),
    el("p", {}, invite, " ", close),
  );
}

export async function classesView(show) {
  const list = el("div", { id: "rooms" });
  const message = el("p", { class: "error", role: "alert" });
  const title = el("input", { name: "title", required: true, maxlength: 200, size: 40, placeholder: "e.g. Math 7b" });
  const teacher = el("input", { name: "teacher", required: true, maxlength: 255, value: "Teacher", placeholder: "your name in the class" });
  const teacherName = () => teacher.value.trim() || "Teacher";
  async function drawRooms() {
    const { rooms } = await getJson(api("rooms"));
    list.replaceChildren(
      ...(rooms.length ? rooms.slice().reverse().map((room) => roomCard(room, teacherName, drawRooms, message)) : [el("p", { class: "empty" }, "No class is open.")]),
    );
  }
  const form = el(
    "form",
    {
      class: "new-class",
      onsubmit: async (event) => {
        event.preventDefault();
        message.textContent = "";
        try {
          await sendJson("POST", api("rooms"), { title: title.value });
          title.value = "";
          await drawRooms();
        } catch (error) {
          message.textContent = error.message;
        }
      },
    },
    el("label", {}, "Title ", title),
    el("label", {}, "Your name ", teacher),
    el("button", { type: "submit", id: "new-class" }, "New class"),
  );
  show(
    el("h1", {}, "Classes"),
    el("p", {}, "A class room served by this computer: open one, send the students their link, open yours, and invite the bot."),
    form,
    message,
    list,
  );
  await drawRooms();
}
