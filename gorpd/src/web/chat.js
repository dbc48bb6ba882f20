// gorp web chat. One channel per browser (web:<id>, the id kept in
// localStorage, so every tab of a browser is the same channel), a WebSocket
// that replays what was missed and reconnects with backoff, and beside it the
// session list: switching binds the channel to another session, creating and
// deleting go through /api/sessions with the CSRF token. The socket's
// "sessions_changed" frames reload the list, so every tab follows a switch
// made in another.
//
// Answers arrive as server-rendered, sanitised HTML (`html`); everything else
// (streamed chunks, your own messages, search results) is only ever set with
// textContent. A streamed answer grows in place under a "working" line, its
// progress (tool calls, plan steps, thinking) folded in a "steps" list.
// Files (the 📎 picker, paste, drag and drop) are uploaded to /api/files
// first and sent with the next message.

"use strict";
(function () {
  const { element, renderedBody, whoLabel, sizeText, showFiles, permissionActions, marked } = gorpRender;
  const $ = (id) => document.getElementById(id);
  const form = $("send");
  const input = $("text");
  const log = $("log");
  const status = $("status");
  const csrf = form.dataset.csrf;
  const picker = $("files");
  const pendingList = $("pending");
  const list = $("session-list");
  const title = $("title");
  const stateBadge = $("state");
  const searchForm = $("search");
  const query = $("query");
  const results = $("results");
  const deleteButton = $("delete-session");
  const sidebar = $("sessions");
  const sidebarToggle = $("show-sessions");
  const THINKING = "\u{1F4AD} thinking";
  const STATE_WORDS = { idle: "idle", working: "working…", waiting: "waiting for approval", error: "last turn failed" };

  // Uploaded files waiting for the next message: {name, media_type, sha256, size}.
  let pendingFiles = [];
  let uploading = 0;
  // The session this channel is bound to ("" for DISPATCH), as last shown.
  let view = null;
  let sessions = [];

  function channelId() {
    let id = localStorage.getItem("gorp-channel");
    if (!id) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem("gorp-channel", id);
    }
    return id;
  }
  const channel = channelId();
  const seqKey = "gorp-seq-" + channel;
  const lastSeq = () => Number(localStorage.getItem(seqKey) || 0);
  const partial = new Map();
  const outbox = new Map();
  let socket = null;
  let backoff = 500;

  // ---- messages -------------------------------------------------------

  function line(text, classes) {
    const div = element("div", "msg " + classes, text);
    log.appendChild(div);
    div.scrollIntoView({ block: "end" });
    return div;
  }

  // What happened here just now (your messages, answers, answers streaming)
  // stays in view when the session changes under it: typing `!join x` shows
  // x's history with the answer to the `!join` below it.
  const CARRY_MS = 10000;
  const recent = [];
  function remember(div) {
    recent.push({ at: Date.now(), div: div });
    while (recent.length > 0 && recent[0].at < Date.now() - CARRY_MS) recent.shift();
    return div;
  }

  function onResponse(frame) {
    if (frame.seq <= lastSeq()) return;
    localStorage.setItem(seqKey, String(frame.seq));
    let div = partial.get(frame.response_id);
    partial.delete(frame.response_id);
    const steps = div ? div.querySelector(".steps") : null;
    if (!div) div = remember(line("", ""));
    div.dataset.text = frame.text;
    div.className = "msg kind-" + frame.kind;
    div.removeAttribute("aria-busy");
    div.textContent = "";
    div.appendChild(whoLabel(frame.dispatch ? "DISPATCH" : frame.session || "gorp", frame.kind));
    if (steps) div.appendChild(steps);
    div.appendChild(renderedBody(frame.html));
    showFiles(div, frame.attachments);
    const actions = permissionActions(frame.permission, send);
    if (actions) div.appendChild(actions);
    div.scrollIntoView({ block: "end" });
  }

  // The answer being streamed: a "working" line, its steps folded, its text growing.
  function streaming(frame) {
    let div = partial.get(frame.response_id);
    if (div) return div;
    div = remember(line("", "partial"));
    div.setAttribute("aria-busy", "true");
    div.appendChild(whoLabel(view || "gorp"));
    div.appendChild(element("span", "working", "working…"));
    const steps = element("details", "steps");
    steps.hidden = true;
    steps.appendChild(element("summary", "", "0 steps"));
    div.appendChild(steps);
    div.appendChild(element("div", "stream"));
    partial.set(frame.response_id, div);
    showState("working");
    return div;
  }

  function onChunk(frame) {
    const div = streaming(frame);
    if (!frame.progress) {
      div.querySelector(".stream").appendChild(document.createTextNode(frame.text));
      div.scrollIntoView({ block: "end" });
      return;
    }
    const steps = div.querySelector(".steps");
    const thinking = frame.text.startsWith(THINKING);
    const text = thinking ? frame.text.slice(THINKING.length).replace(/^\n/, "") : frame.text;
    steps.appendChild(element("div", "progress" + (thinking ? " thinking" : ""), thinking ? THINKING + ": " + text : text));
    steps.hidden = false;
    const count = steps.querySelectorAll(".progress").length;
    steps.querySelector("summary").textContent = count + (count === 1 ? " step" : " steps");
  }

  function onFrame(event) {
    let frame;
    try { frame = JSON.parse(event.data); } catch (_) { return; }
    if (frame.type === "response") onResponse(frame);
    else if (frame.type === "chunk") onChunk(frame);
    else if (frame.type === "sessions_changed") scheduleRefresh();
    else if (frame.type === "caught_up") {
      status.textContent = "connected";
      status.title = "this browser is channel web:" + channel;
    }
    else if (frame.type === "ack") {
      outbox.delete(frame.id);
      if (frame.status === "rejected") line("not sent: " + (frame.error || "rejected"), "kind-error");
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ channel: channel, csrf: csrf, after: String(lastSeq()) });
    socket = new WebSocket(scheme + "//" + location.host + "/ws?" + params);
    socket.addEventListener("open", () => {
      backoff = 500;
      // Resend what was not acknowledged; the server drops duplicates by id.
      for (const frame of outbox.values()) socket.send(JSON.stringify(frame));
      scheduleRefresh();
    });
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", () => {
      status.textContent = "disconnected; reconnecting…";
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    });
  }

  function send(text, files) {
    const id = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
    const attachments = (files || []).map((f) => ({ name: f.name, media_type: f.media_type, sha256: f.sha256 }));
    const frame = { type: "send", text: text, id: id, attachments: attachments };
    outbox.set(frame.id, frame);
    const mine = remember(line(text, "me"));
    mine.dataset.text = text;
    showFiles(mine, (files || []).map((f) => ({ name: f.name, size: f.size, url: "/files/" + f.sha256 + "/" + encodeURIComponent(f.name), inline: /^image\/(png|jpeg|gif|webp)$/.test(f.media_type) })));
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  // Shows the bound session's history, then what happened just now.
  async function loadHistory() {
    log.textContent = "";
    let history = { session: null, messages: [] };
    try {
      const reply = await fetch("/api/history?channel=" + encodeURIComponent(channel));
      if (reply.ok) history = await reply.json();
    } catch (_) { /* history is a convenience; the socket still works */ }
    // Taken after the fetch: what arrived while it ran comes along too.
    const carried = recent.filter((r) => r.at >= Date.now() - CARRY_MS).map((r) => r.div);
    log.textContent = "";
    if (!history.session) {
      line("Not in a session: messages go to DISPATCH. Pick or create a session, or type !help.", "kind-notice");
    }
    showHistory(history);
    // What the history already holds is shown once, as it was live (with its buttons).
    const fromHistory = Array.from(log.children);
    for (const div of carried) {
      const twin = fromHistory.find((node) => node.isConnected && node.dataset.text === div.dataset.text);
      if (div.dataset.text !== undefined && twin) twin.remove();
      log.appendChild(div);
    }
    // An answer still streaming out of view starts afresh with its next chunk.
    for (const [id, div] of partial) if (!log.contains(div)) partial.delete(id);
    if (log.lastElementChild) log.lastElementChild.scrollIntoView({ block: "end" });
  }

  function showHistory(history) {
    for (const m of history.messages) {
      let div;
      if (m.role === "user") {
        div = line("", "me");
        div.appendChild(element("span", "who", m.author));
        div.appendChild(document.createTextNode(m.text));
        showFiles(div, m.attachments);
      } else {
        const kind = m.role === "assistant" ? "complete" : m.role;
        div = line("", "kind-" + kind);
        div.appendChild(whoLabel(history.session, kind));
        div.appendChild(renderedBody(m.html));
        showFiles(div, m.attachments);
      }
      div.dataset.text = m.text;
    }
  }

  // ---- the session list -----------------------------------------------

  const readKey = (name) => "gorp-read-" + name;

  function unread(session) {
    const read = localStorage.getItem(readKey(session.name));
    if (read === null || session.name === view) {
      localStorage.setItem(readKey(session.name), String(session.messages));
      return 0;
    }
    return Math.max(0, session.messages - Number(read));
  }

  function sessionButton(name, label, state, count, last) {
    const button = element("button", "session");
    button.type = "button";
    button.dataset.name = name;
    if (name === (view || "")) button.setAttribute("aria-current", "true");
    const top = element("span", "top");
    top.appendChild(element("span", "name", label));
    if (state) top.appendChild(element("span", "state state-" + state, STATE_WORDS[state] || state));
    if (count > 0) {
      const badge = element("span", "unread", String(count));
      badge.setAttribute("aria-label", count + " unread");
      top.appendChild(badge);
    }
    button.appendChild(top);
    if (last) button.appendChild(element("span", "last", (last.role === "user" ? last.author + ": " : "") + last.text));
    button.addEventListener("click", () => switchTo(name));
    const item = document.createElement("li");
    item.appendChild(button);
    return item;
  }

  function showList() {
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.name : null;
    const items = [sessionButton("", "DISPATCH", null, 0, null)];
    for (const s of sessions) items.push(sessionButton(s.name, s.name, s.state, unread(s), s.last));
    list.replaceChildren(...items);
    // A keyboard user moving through the list keeps their place when it is redrawn.
    if (focused !== null && focused !== undefined) {
      const again = Array.from(list.querySelectorAll("button")).find((b) => b.dataset.name === focused);
      if (again) again.focus();
    }
  }

  function showState(state) {
    stateBadge.className = state ? "state state-" + state : "state";
    stateBadge.textContent = state ? STATE_WORDS[state] || state : "";
  }

  async function showView(name) {
    const changed = name !== view;
    view = name;
    title.textContent = name || "DISPATCH";
    document.title = (name || "DISPATCH") + " · gorp";
    searchForm.hidden = !name;
    deleteButton.hidden = !name;
    disarmDelete();
    if (changed) {
      closeResults();
      await loadHistory();
    }
  }

  let defaultAgent = "";
  function fillAgents(agents, configured) {
    defaultAgent = configured;
    const select = $("new-agent");
    if (select.options.length === agents.length) return;
    select.replaceChildren(...agents.map((agent) => {
      const option = element("option", "", agent);
      option.value = agent;
      option.selected = agent === configured;
      return option;
    }));
  }

  async function refreshSessions() {
    let data;
    try {
      const reply = await fetch("/api/sessions?channel=" + encodeURIComponent(channel));
      if (!reply.ok) return;
      data = await reply.json();
    } catch (_) { return; }
    sessions = data.sessions;
    fillAgents(data.agents, data.default_agent);
    await showView(data.bound || "");
    showList();
    const current = sessions.find((s) => s.name === view);
    if (!partialRunning()) showState(current ? current.state : null);
  }

  const partialRunning = () => partial.size > 0;

  let refreshTimer = null;
  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; refreshSessions(); }, 150);
  }

  // POSTs a form with the CSRF token; resolves to the reply's JSON or throws its error text.
  async function post(path, fields) {
    const body = new URLSearchParams(Object.assign({ csrf: csrf }, fields));
    const reply = await fetch(path, { method: "POST", body: body });
    if (!reply.ok) throw new Error((await reply.text()).trim() || reply.statusText);
    return reply.json();
  }

  async function switchTo(name) {
    closeSidebar();
    if (name === view) return;
    // Picked here: nothing of the session left behind comes along, and what
    // it showed counts as read (the list learns its latest size first).
    recent.length = 0;
    await refreshSessions();
    try {
      await (name ? post("/api/bind", { channel: channel, session: name }) : post("/api/unbind", { channel: channel }));
    } catch (error) {
      line("could not switch: " + error.message, "kind-error");
    }
    await refreshSessions();
    input.focus();
  }

  $("new-session").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("new-name");
    const error = $("new-error");
    error.textContent = "";
    try {
      await post("/api/sessions", { channel: channel, name: name.value.trim(), agent: $("new-agent").value });
      name.value = "";
      $("new-agent").value = defaultAgent;
      closeSidebar();
      recent.length = 0;
      await refreshSessions();
      input.focus();
    } catch (e) {
      error.textContent = e.message;
    }
  });

  // Deleting takes two clicks: the first arms the button for a few seconds.
  let disarmTimer = null;
  function disarmDelete() {
    clearTimeout(disarmTimer);
    deleteButton.textContent = "Delete";
    delete deleteButton.dataset.armed;
  }
  deleteButton.addEventListener("click", async () => {
    if (!deleteButton.dataset.armed) {
      deleteButton.dataset.armed = "1";
      deleteButton.textContent = "Delete " + view + "?";
      disarmTimer = setTimeout(disarmDelete, 4000);
      return;
    }
    const name = view;
    disarmDelete();
    try {
      await post("/api/sessions/" + encodeURIComponent(name) + "/delete", {});
    } catch (error) {
      line("could not delete " + name + ": " + error.message, "kind-error");
    }
    await refreshSessions();
  });

  function closeSidebar() {
    sidebar.classList.remove("open");
    sidebarToggle.setAttribute("aria-expanded", "false");
  }
  sidebarToggle.addEventListener("click", () => {
    const open = sidebar.classList.toggle("open");
    sidebarToggle.setAttribute("aria-expanded", String(open));
    if (open) (list.querySelector("[aria-current]") || list.querySelector("button")).focus();
  });

  // ---- search ---------------------------------------------------------

  function closeResults() {
    results.hidden = true;
    $("result-list").textContent = "";
  }

  searchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const needle = query.value.trim();
    const found = $("result-list");
    found.textContent = "";
    results.hidden = false;
    try {
      const params = new URLSearchParams({ session: view, q: needle });
      const reply = await fetch("/api/search?" + params);
      if (!reply.ok) throw new Error((await reply.text()).trim());
      const data = await reply.json();
      $("results-heading").textContent = data.results.length + " found for “" + needle + "”";
      for (const r of data.results) {
        const item = document.createElement("li");
        item.appendChild(element("span", "when", new Date(r.at).toLocaleString() + " · " + (r.role === "user" ? r.author : view)));
        item.appendChild(marked(r.text, needle));
        found.appendChild(item);
      }
    } catch (error) {
      $("results-heading").textContent = "Search failed: " + error.message;
    }
  });
  $("close-results").addEventListener("click", () => { closeResults(); input.focus(); });

  // ---- keyboard -------------------------------------------------------

  function typing(target) {
    return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      const names = [""].concat(sessions.map((s) => s.name));
      const at = names.indexOf(view || "");
      const step = event.key === "ArrowDown" ? 1 : -1;
      switchTo(names[(at + step + names.length) % names.length]);
    } else if (((event.ctrlKey || event.metaKey) && event.key === "k") || (event.key === "/" && !typing(event.target))) {
      if (searchForm.hidden) return;
      event.preventDefault();
      query.focus();
      query.select();
    } else if (event.key === "Escape") {
      closeResults();
      closeSidebar();
      input.focus();
    }
  });

  // ---- composer and files ---------------------------------------------

  function showPending() {
    pendingList.textContent = "";
    for (const file of pendingFiles) {
      pendingList.appendChild(element("span", "pending-file", "\u{1F4CE} " + file.name + " (" + sizeText(file.size) + ") "));
    }
    if (uploading > 0) pendingList.appendChild(document.createTextNode("uploading " + uploading + "…"));
  }

  async function upload(file) {
    uploading += 1;
    showPending();
    try {
      const params = new URLSearchParams({ name: file.name || "pasted", csrf: csrf });
      const type = file.type || "application/octet-stream";
      const reply = await fetch("/api/files?" + params, { method: "POST", body: file, headers: { "content-type": type } });
      if (!reply.ok) {
        line("not attached: " + (file.name || "pasted") + ": " + (await reply.text()).trim(), "kind-error");
        return;
      }
      pendingFiles.push(await reply.json());
    } catch (error) {
      line("not attached: " + (file.name || "pasted") + ": " + error, "kind-error");
    } finally {
      uploading -= 1;
      showPending();
    }
  }

  function uploadAll(files) {
    for (const file of files) upload(file);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (uploading > 0) { line("wait for the uploads to finish", "kind-notice"); return; }
    if (text || pendingFiles.length > 0) send(text, pendingFiles);
    pendingFiles = [];
    showPending();
    input.value = "";
  });
  picker.addEventListener("change", () => { uploadAll(picker.files); picker.value = ""; });
  document.addEventListener("paste", (event) => {
    const files = event.clipboardData ? Array.from(event.clipboardData.files) : [];
    if (files.length > 0) { event.preventDefault(); uploadAll(files); }
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer) uploadAll(event.dataTransfer.files);
  });
  // Another tab read a session: its unread count here follows.
  window.addEventListener("storage", (event) => { if (event.key && event.key.startsWith("gorp-read-")) showList(); });
  // A fallback for state changes the activity feed does not report.
  setInterval(() => { if (!document.hidden) refreshSessions(); }, 15000);
  refreshSessions().then(connect);
})();
