// classpulse built-in room: join, camera, tiles, chat. Plain JS, no build step.
// Signalling: see bot/room/messages.py. One RTCPeerConnection to the server: a send-only video
// m-line (the camera, possibly without a track yet) and `welcome.tiles` receive-only ones; the
// server never renegotiates. Text from others is only ever set with textContent.
"use strict";

const config = JSON.parse(document.querySelector('meta[name="classpulse-room"]').content);
// The teacher link carries its token in the fragment (#teacher=…), never sent to the server in a
// request line or Referer. It is taken out of the address bar at once: not in the history, not on
// a screen shared with the class; this tab keeps it for a reload.
const teacherKey = `classpulse-teacher-${config.room}`;
const teacherToken =
  new URLSearchParams(location.hash.slice(1)).get("teacher") || sessionStorage.getItem(teacherKey);
if (teacherToken) sessionStorage.setItem(teacherKey, teacherToken);
if (location.hash) history.replaceState(null, "", location.pathname);
const $ = (id) => document.getElementById(id);

// What the page knows, readable by tests over the DevTools protocol.
// `log` is the page's own order of steps (the notice is shown before any camera is asked for);
// `received` the type of every server message (a student's page must never get a teacher's).
const state = (window.classpulse = {
  state: "idle", id: null, role: null, name: null,
  participants: [], tiles: {}, tileIds: {}, chat: [], alerts: [], botReplies: [], badges: {},
  coverage: null, log: [], received: [], closeCode: null, closeReason: null,
});

let socket = null;
let pc = null;
let cameraStream = null;
let sendTransceiver = null;
const tileViews = new Map(); // mid -> {figure, video, caption, badge}
const replyItems = []; // the list items of state.botReplies, in the same order

function setStatus(text, closed = false) {
  $("status").textContent = text;
  $("status").classList.toggle("closed", closed);
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

async function openCamera() {
  // The consent step: the notice (what the bot does, how to opt out) is on the join form, and
  // the camera is only asked for once that form was submitted with the camera box ticked.
  state.log.push("camera");
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({
      video: {width: {ideal: 640}, height: {ideal: 360}, frameRate: {ideal: 15, max: 15}}, audio: false,
    });
    $("self-video").srcObject = cameraStream;
    document.querySelector(".tile.self").hidden = false;
    return cameraStream.getVideoTracks()[0];
  } catch (error) {
    setStatus("camera unavailable: " + error.name);
    return null;
  }
}

function closeCamera() {
  if (cameraStream) cameraStream.getTracks().forEach((track) => track.stop());
  cameraStream = null;
  $("self-video").srcObject = null;
  document.querySelector(".tile.self").hidden = true;
}

async function join(event) {
  event.preventDefault();
  const name = $("name").value.trim();
  if (!name) return;
  localStorage.setItem("classpulse-name", name);
  $("join").disabled = true;
  state.state = "joining";
  setStatus("joining…");
  const track = $("camera").checked ? await openCamera() : null;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/rooms/${encodeURIComponent(config.room)}/ws`);
  socket.onopen = () => {
    const message = {type: "join", name};
    if (teacherToken) message.teacher = teacherToken;
    send(message);
  };
  socket.onmessage = (message) => {
    handle(JSON.parse(message.data), track).catch((error) => {
      console.error("classpulse:", error);
      setStatus("error: " + error.message, true);
      socket.close();
    });
  };
  socket.onclose = (closing) => {
    state.state = "closed";
    state.closeCode = closing.code;
    state.closeReason = closing.reason;
    setStatus(`disconnected (${closing.code}${closing.reason ? ": " + closing.reason : ""}) — reload to rejoin`, true);
    if (pc) pc.close();
    closeCamera();
  };
}

async function handle(message, track) {
  state.received.push(message.type);
  switch (message.type) {
    case "welcome": return welcome(message, track);
    case "answer": return pc.setRemoteDescription({type: "answer", sdp: message.sdp});
    case "participants": return showParticipants(message.participants);
    case "tiles": return showTiles(message.tiles);
    case "chat": return showChat(message);
    case "badge": return showBadge(message);
    case "coverage": return showCoverage(message);
    case "alert": return showAlert(message);
    default: console.warn("classpulse: unknown message", message.type);
  }
}

async function welcome(message, track) {
  Object.assign(state, {id: message.id, role: message.role, name: message.name, state: "joined"});
  $("lobby").hidden = true;
  $("classroom").hidden = false;
  $("role").hidden = false;
  $("role").textContent = message.role === "teacher" ? "teacher" : message.name;
  $("alerts-panel").hidden = message.role !== "teacher";
  $("bot-panel").hidden = message.role !== "teacher";
  $("coverage").hidden = message.role !== "teacher";
  pc = new RTCPeerConnection({iceServers: []});
  pc.onconnectionstatechange = () => {
    setStatus(`${state.name} · media ${pc.connectionState}`, pc.connectionState === "failed");
    if (pc.connectionState === "connected") state.state = "connected";
  };
  pc.ontrack = (event) => attachTile(event.transceiver.mid, event.track);
  sendTransceiver = pc.addTransceiver(track || "video", {direction: "sendonly"});
  for (let i = 0; i < message.tiles; i++) pc.addTransceiver("video", {direction: "recvonly"});
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringDone(pc);
  send({type: "offer", sdp: pc.localDescription.sdp});
  if (track) {
    await limitSending();
    send({type: "camera", on: true});
  }
  updateCameraButton();
}

function gatheringDone(connection) {
  // The server takes the offer whole (no trickle): wait for the candidates, briefly.
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    connection.addEventListener("icegatheringstatechange", () => {
      if (connection.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 2000);
  });
}

async function limitSending() {
  // The server decodes every camera: 640×360 at 15 fps is all the bot and the tiles need.
  const parameters = sendTransceiver.sender.getParameters();
  if (!parameters.encodings || !parameters.encodings.length) return;
  parameters.encodings[0].maxBitrate = 600000;
  parameters.encodings[0].maxFramerate = 15;
  try { await sendTransceiver.sender.setParameters(parameters); } catch (error) { /* not critical */ }
}

async function toggleCamera() {
  if (!sendTransceiver) return;
  if (cameraStream) {
    await sendTransceiver.sender.replaceTrack(null);
    closeCamera();
    send({type: "camera", on: false});
  } else {
    const track = await openCamera();
    if (track) {
      await sendTransceiver.sender.replaceTrack(track);
      await limitSending();
      send({type: "camera", on: true});
    }
  }
  updateCameraButton();
}

function updateCameraButton() {
  $("camera-toggle").textContent = cameraStream ? "Turn camera off" : "Turn camera on";
}

function attachTile(mid, track) {
  // A track may arrive after the `tiles` message that names it (the server sends the tiles as
  // soon as it has assigned them, often before this browser has applied the answer), and the
  // server sends no other until the assignment changes: so a new tile shows what is already
  // known about its slot, and `showTiles` updates the tiles that exist.
  const figure = document.createElement("figure");
  figure.className = "tile";
  const video = document.createElement("video");
  Object.assign(video, {autoplay: true, muted: true, playsInline: true});
  video.srcObject = new MediaStream([track]);
  const caption = document.createElement("figcaption");
  const badge = document.createElement("span");
  badge.className = "state-badge";
  badge.hidden = true;
  // Beside the badge: "looking away" / "eyes closed" while the live feed says so (teacher only).
  const attention = document.createElement("span");
  attention.className = "attention-marks";
  figure.append(video, badge, attention, caption);
  $("tiles").append(figure);
  const view = {figure, video, caption, badge, attention};
  tileViews.set(mid, view);
  showTile(mid, view);
}

function showTile(mid, view) {
  const name = Object.hasOwn(state.tiles, mid) ? state.tiles[mid] : null;
  view.caption.textContent = name ?? "";
  view.figure.hidden = name === null;
  // Only a teacher's page ever gets badges (the server sends them to teacher sockets only).
  const badge = Object.hasOwn(state.tileIds, mid) ? state.badges[state.tileIds[mid]] : undefined;
  view.badge.hidden = !badge;
  view.badge.className = "state-badge" + (badge ? " " + badge.state : "");
  view.badge.textContent = badge ? badge.state.replace("_", " ") : "";
  view.figure.dataset.state = badge ? badge.state : "";
  const marks = badge ? ["looking_away", "eyes_closed"].filter((key) => badge[key] === true) : [];
  view.figure.dataset.attention = marks.join(" ");
  view.attention.replaceChildren(...marks.map((key) => {
    const mark = document.createElement("span");
    mark.className = `attention-mark ${key}`;
    mark.textContent = key === "looking_away" ? "looking away" : "eyes closed";
    return mark;
  }));
}

function showTiles(tiles) {
  state.tiles = {};
  state.tileIds = {};
  for (const tile of tiles) {
    state.tiles[tile.mid] = tile.name;
    state.tileIds[tile.mid] = tile.id;
  }
  for (const [mid, view] of tileViews) showTile(mid, view);
}

function showBadge(message) {
  if (!message.id) return; // a face the room cannot place on a tile
  // The person's own name first: "Ana" wins over "Ana (2)", a second face on her camera.
  const current = state.badges[message.id];
  if (current && current.student !== message.student && message.student.endsWith(")")) return;
  if (message.state) state.badges[message.id] = message;
  else delete state.badges[message.id];
  for (const [mid, view] of tileViews) showTile(mid, view);
}

function showCoverage(message) {
  state.coverage = message;
  const line = $("coverage");
  const figure = document.createElement("strong");
  figure.textContent = `${message.visible} of ${message.total}`;
  line.replaceChildren(figure, " students visible (face readable by the bot)");
}

function timeOf(t) {
  return new Date(t * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

function showAlert(message) {
  // The bot whispered this alert a moment ago, and it went to the replies panel: move it.
  const index = state.botReplies.findIndex((reply) => reply.text.startsWith(message.text));
  if (index >= 0) {
    state.botReplies.splice(index, 1);
    replyItems.splice(index, 1)[0].remove();
  }
  state.alerts.push(message);
  const alert = document.createElement("li");
  alert.textContent = `${timeOf(message.t)} ${message.text}`;
  $("alerts").append(alert);
  alert.scrollIntoView({block: "nearest"});
}

function showParticipants(people) {
  state.participants = people;
  const list = $("people");
  list.replaceChildren();
  const select = $("chat-to");
  const chosen = select.value;
  select.replaceChildren(new Option("to everyone", ""));
  for (const person of people) {
    const item = document.createElement("li");
    item.textContent = person.name + (person.id === state.id ? " (you)" : "") + (person.camera ? " · camera" : "");
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = " " + person.role;
    item.append(role);
    list.append(item);
    if (person.id !== state.id) select.append(new Option("only to " + person.name, person.id));
  }
  select.value = [...select.options].some((option) => option.value === chosen) ? chosen : "";
}

function showChat(message) {
  const time = timeOf(message.t);
  if (state.role === "teacher" && message.whisper && message.from.role === "bot") {
    // Replies to the teacher's commands (and alerts until the feed names them): their own panel.
    const item = document.createElement("li");
    item.textContent = `${time} ${message.text}`;
    $("bot-replies").append(item);
    item.scrollIntoView({block: "nearest"});
    state.botReplies.push({text: message.text, t: message.t});
    replyItems.push(item);
    return;
  }
  state.chat.push(message);
  const item = document.createElement("li");
  const whom = message.whisper ? (message.from.id === state.id ? " (private)" : " (to you only)") : "";
  item.textContent = `${time} ${message.from.name}${whom}: ${message.text}`;
  item.classList.toggle("whisper", message.whisper);
  $("chat-log").append(item);
  item.scrollIntoView({block: "nearest"});
}

function sendChat(event) {
  event.preventDefault();
  const text = $("chat-text").value.trim();
  if (!text) return;
  const message = {type: "chat", text};
  if ($("chat-to").value) message.to = $("chat-to").value;
  send(message);
  $("chat-text").value = "";
}

$("name").value = (teacherToken && config.teacherName) || localStorage.getItem("classpulse-name") || "";
// Students tick the camera box themselves, under the notice; the teacher's link starts with it on.
$("camera").checked = Boolean(teacherToken);
if (!$("lobby").hidden) state.log.push("notice");
if (teacherToken && config.teacherName) $("name").readOnly = true;
$("join-form").addEventListener("submit", join);
$("chat-form").addEventListener("submit", sendChat);
$("camera-toggle").addEventListener("click", () => toggleCamera().catch((error) => setStatus("camera: " + error.message)));
