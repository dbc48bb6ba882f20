// gorp web chat: how messages look. Builds DOM nodes; the only HTML it
// parses is the answer HTML gorpd rendered and sanitised (see markdown.rs:
// raw HTML escaped, only http(s)/mailto links), inert in a <template> and
// cleaned again to an allowlist before it is shown; everything else is set
// with textContent. Loaded before chat.js (served together as /static/chat.js).

"use strict";
const gorpRender = (function () {
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A few token classes for fenced code with a language: comments, strings,
  // numbers and common keywords. Built from text nodes, never from HTML.
  const TOKENS = /(\/\/[^\n]*|\/\*[\s\S]*?\*\/|#[^\n]*)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)|(\b\d[\d_.]*\b)|(\b(?:fn|let|mut|const|static|if|else|elif|for|while|loop|return|match|use|mod|pub|struct|enum|impl|trait|async|await|def|class|import|from|function|var|true|false|null|None|True|False|self|in|of|new|try|catch|except|raise|yield|with|as|type|interface|where|break|continue|package|func|go|defer)\b)/g;
  const HASH_COMMENTS = /^(python|py|sh|bash|shell|zsh|toml|yaml|yml|ruby|rb|perl|r|dockerfile|make|makefile|conf|ini)$/;

  function highlight(code) {
    const language = (code.className.match(/language-([\w+-]+)/) || [])[1];
    if (!language) return;
    const hashComments = HASH_COMMENTS.test(language.toLowerCase());
    const text = code.textContent;
    code.textContent = "";
    let last = 0;
    for (const m of text.matchAll(TOKENS)) {
      if (m[1] && m[1].startsWith("#") && !hashComments) continue;
      if (m.index > last) code.appendChild(document.createTextNode(text.slice(last, m.index)));
      const kind = m[1] ? "comment" : m[2] ? "string" : m[3] ? "number" : "keyword";
      code.appendChild(element("span", "hl-" + kind, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) code.appendChild(document.createTextNode(text.slice(last)));
  }

  // What answer HTML may hold: the elements pulldown-cmark writes for
  // Markdown, each with the attributes it may carry. gorpd already escapes
  // raw HTML and drops unsafe links; this is the second fence.
  const ALLOWED = {
    P: [], BR: [], STRONG: [], EM: [], DEL: [], CODE: ["class"], PRE: [], BLOCKQUOTE: [], HR: [],
    H1: [], H2: [], H3: [], H4: [], H5: [], H6: [], UL: [], OL: ["start"], LI: [],
    TABLE: [], THEAD: [], TBODY: [], TR: [], TH: ["style"], TD: ["style"],
    INPUT: ["type", "checked", "disabled"], A: ["href", "rel", "target"],
  };
  const SAFE_VALUES = {
    href: /^(https?:|mailto:)/i, style: /^text-align: (left|center|right)$/, type: /^checkbox$/,
    class: /^language-[\w+-]+$/, rel: /^noopener noreferrer$/, target: /^_blank$/,
  };

  function clean(node) {
    for (const child of Array.from(node.children)) {
      const allowed = ALLOWED[child.tagName];
      if (!allowed) {
        child.replaceWith(document.createTextNode(child.textContent));
        continue;
      }
      for (const attribute of Array.from(child.attributes)) {
        const pattern = SAFE_VALUES[attribute.name];
        if (!allowed.includes(attribute.name) || (pattern && !pattern.test(attribute.value))) {
          child.removeAttribute(attribute.name);
        }
      }
      clean(child);
    }
  }

  // An answer's HTML as gorpd rendered it: parsed inert in a <template> (no
  // script runs, nothing loads), cleaned to the allowed elements, then shown.
  function renderedBody(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    clean(template.content);
    const body = element("div", "body");
    body.appendChild(template.content);
    body.querySelectorAll("pre code").forEach(highlight);
    // A code block that scrolls sideways can be scrolled from the keyboard.
    body.querySelectorAll("pre").forEach((pre) => { pre.tabIndex = 0; });
    return body;
  }

  function whoLabel(who, kind) {
    const extra = kind === "error" ? " · error" : kind === "notice" ? " · notice" : "";
    return element("span", "who", who + extra);
  }

  function sizeText(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MiB";
    if (bytes >= 1024) return Math.floor(bytes / 1024) + " KiB";
    return bytes + " bytes";
  }

  // A message's files: images inline, everything else as a download link.
  function showFiles(div, files) {
    for (const file of files || []) {
      const box = element("div", "file");
      const link = document.createElement("a");
      link.href = file.url;
      if (file.inline) {
        const image = document.createElement("img");
        image.src = file.url;
        image.alt = file.name;
        link.appendChild(image);
      } else {
        link.download = file.name;
        link.textContent = "\u{1F4CE} " + file.name + " (" + sizeText(file.size) + ")";
      }
      box.appendChild(link);
      div.appendChild(box);
    }
  }

  // Approve / Deny buttons for a pending permission request; a click hands
  // the command to `answer` and disables them all.
  function permissionActions(permission, answer) {
    if (!permission || permission.state !== "pending") return null;
    const actions = element("div", "actions");
    actions.setAttribute("role", "group");
    actions.setAttribute("aria-label", "Answer permission request " + permission.id);
    const choices = [["Approve", "!approve", "approve"], ["Deny", "!deny", "deny"]];
    if ((permission.options || []).some((o) => o.kind === "allow_always")) {
      choices.splice(1, 0, ["Approve always", "!approve", "approve-always"]);
    }
    for (const [label, word, className] of choices) {
      const button = element("button", className, label);
      button.type = "button";
      button.addEventListener("click", () => {
        actions.querySelectorAll("button").forEach((b) => { b.disabled = true; });
        answer(word + " " + permission.id + (className === "approve-always" ? " always" : ""));
      });
      actions.appendChild(button);
    }
    return actions;
  }

  function marked(text, needle) {
    const span = document.createElement("span");
    const lower = text.toLowerCase();
    const target = needle.toLowerCase();
    let from = 0;
    for (let at = lower.indexOf(target); target && at >= 0; at = lower.indexOf(target, from)) {
      span.appendChild(document.createTextNode(text.slice(from, at)));
      span.appendChild(element("mark", "", text.slice(at, at + target.length)));
      from = at + target.length;
    }
    span.appendChild(document.createTextNode(text.slice(from)));
    return span;
  }

  return { element, highlight, renderedBody, whoLabel, sizeText, showFiles, permissionActions, marked };
})();
