// gorp web chat: one channel per browser (web:<id>, the id kept in
// localStorage), a WebSocket that replays what was missed and reconnects
// with backoff. Agent text is only ever set with textContent. Files (the 📎
// picker, paste, drag and drop) are uploaded to /api/files first and sent
// with the next message; a message's files show as images or download links.

"use strict";
(function () {
  const form = document.getElementById("send");
  const input = document.getElementById("text");
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const csrf = form.dataset.csrf;
  const picker = document.getElementById("files");
  const pendingList = document.getElementById("pending");
  // Uploaded files waiting for the next message: {name, media_type, sha256, size}.
  let pendingFiles = [];
  let uploading = 0;

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

  function line(text, classes) {
    const div = document.createElement("div");
    div.className = "msg " + classes;
    div.textContent = text;
    log.appendChild(div);
    div.scrollIntoView({ block: "end" });
    return div;
  }

  // A small Markdown subset (code fences, `code`, **bold**, *italic*,
  // [links](https://...)) built from DOM nodes: agent text is never parsed as HTML.
  const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*)|(\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\))/g;

  function inline(parent, text) {
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      let node;
      if (m[1]) { node = document.createElement("code"); node.textContent = m[1].slice(1, -1); }
      else if (m[2]) { node = document.createElement("strong"); node.textContent = m[2].slice(2, -2); }
      else if (m[3]) { node = document.createElement("em"); node.textContent = m[3].slice(1, -1); }
      else {
        node = document.createElement("a");
        node.href = m[6];
        node.rel = "noopener noreferrer";
        node.target = "_blank";
        node.textContent = m[5];
      }
      parent.appendChild(node);
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function renderMarkdown(parent, text) {
    parent.textContent = "";
    let code = null;
    const rows = text.split("\n");
    rows.forEach((row, i) => {
      if (row.trimStart().startsWith("```")) {
        if (code) { code = null; return; }
        const pre = document.createElement("pre");
        code = document.createElement("code");
        pre.appendChild(code);
        parent.appendChild(pre);
        return;
      }
      if (code) { code.textContent += (code.textContent ? "\n" : "") + row; return; }
      inline(parent, row);
      if (i < rows.length - 1) parent.appendChild(document.createTextNode("\n"));
    });
  }

  function showAnswer(div, who, text) {
    div.textContent = "";
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who + ": ";
    const body = document.createElement("span");
    renderMarkdown(body, text);
    div.appendChild(label);
    div.appendChild(body);
  }

  function sizeText(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MiB";
    if (bytes >= 1024) return Math.floor(bytes / 1024) + " KiB";
    return bytes + " bytes";
  }

  // A message's files: images inline, everything else as a download link.
  function showFiles(div, files) {
    for (const file of files || []) {
      const box = document.createElement("div");
      box.className = "file";
      const link = document.createElement("a");
      link.href = file.url;
      if (file.inline) {
        const image = document.createElement("img");
        image.src = file.url;
        image.alt = file.name;
        image.style.maxWidth = "24em";
        link.appendChild(image);
      } else {
        link.download = file.name;
        link.textContent = "\u{1F4CE} " + file.name + " (" + sizeText(file.size) + ")";
      }
      box.appendChild(link);
      div.appendChild(box);
    }
  }

  function showPending() {
    pendingList.textContent = "";
    for (const file of pendingFiles) {
      const chip = document.createElement("span");
      chip.className = "pending-file";
      chip.textContent = "\u{1F4CE} " + file.name + " (" + sizeText(file.size) + ") ";
      pendingList.appendChild(chip);
    }
    if (uploading > 0) pendingList.appendChild(document.createTextNode("uploading " + uploading + "…"));
  }

  async function upload(file) {
    uploading += 1;
    showPending();
    try {
      const query = new URLSearchParams({ name: file.name || "pasted", csrf: csrf });
      const type = file.type || "application/octet-stream";
      const reply = await fetch("/api/files?" + query, { method: "POST", body: file, headers: { "content-type": type } });
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

  function showPermission(div, permission) {
    if (!permission || permission.state !== "pending") return;
    for (const [label, word] of [["Approve", "!approve"], ["Deny", "!deny"]]) {
      const button = document.createElement("button");
      button.textContent = label;
      button.addEventListener("click", () => send(word + " " + permission.id));
      div.appendChild(document.createElement("br"));
      div.appendChild(button);
    }
  }

  function onResponse(frame) {
    if (frame.seq <= lastSeq()) return;
    localStorage.setItem(seqKey, String(frame.seq));
    let div = partial.get(frame.response_id);
    partial.delete(frame.response_id);
    const who = frame.dispatch ? "DISPATCH" : frame.session || "gorp";
    if (div) {
      div.className = "msg kind-" + frame.kind;
    } else {
      div = line("", "kind-" + frame.kind);
    }
    showAnswer(div, who, frame.text);
    showFiles(div, frame.attachments);
    showPermission(div, frame.permission);
  }

  const THINKING = "\u{1F4AD} thinking";

  // Answer text flows on; progress (tool calls, terminal output) gets its own
  // block, and an agent's thinking is folded away until opened.
  function onChunk(frame) {
    const div = partial.get(frame.response_id) || line("", "partial");
    partial.set(frame.response_id, div);
    if (!frame.progress) {
      div.appendChild(document.createTextNode(frame.text));
      return;
    }
    const thinking = frame.text.startsWith(THINKING);
    const block = document.createElement(thinking ? "details" : "div");
    block.className = "progress";
    if (thinking) {
      const summary = document.createElement("summary");
      summary.textContent = THINKING;
      block.appendChild(summary);
      block.appendChild(document.createTextNode(frame.text.slice(THINKING.length).replace(/^\n/, "")));
    } else {
      block.textContent = frame.text;
    }
    div.appendChild(block);
  }

  function onFrame(event) {
    let frame;
    try { frame = JSON.parse(event.data); } catch (_) { return; }
    if (frame.type === "response") onResponse(frame);
    else if (frame.type === "chunk") onChunk(frame);
    else if (frame.type === "caught_up") status.textContent = "connected as web:" + channel;
    else if (frame.type === "ack") {
      outbox.delete(frame.id);
      if (frame.status === "rejected") line("not sent: " + (frame.error || "rejected"), "kind-error");
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ channel: channel, csrf: csrf, after: String(lastSeq()) });
    socket = new WebSocket(scheme + "//" + location.host + "/ws?" + query);
    socket.addEventListener("open", () => {
      backoff = 500;
      // Resend what was not acknowledged; the server drops duplicates by id.
      for (const frame of outbox.values()) socket.send(JSON.stringify(frame));
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
    const mine = line(text, "me");
    showFiles(mine, (files || []).map((f) => ({ name: f.name, size: f.size, url: "/files/" + f.sha256 + "/" + encodeURIComponent(f.name), inline: /^image\/(png|jpeg|gif|webp)$/.test(f.media_type) })));
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  async function loadHistory() {
    try {
      const reply = await fetch("/api/history?channel=" + encodeURIComponent(channel));
      if (!reply.ok) return;
      const history = await reply.json();
      if (!history.session) return;
      line("— history of " + history.session + " —", "kind-notice");
      for (const m of history.messages) {
        const div = line((m.role === "user" ? m.author : history.session) + ": " + m.text, m.role === "user" ? "me" : "");
        showFiles(div, m.attachments);
      }
    } catch (_) { /* history is a convenience; the socket still works */ }
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
  loadHistory().then(connect);
})();
