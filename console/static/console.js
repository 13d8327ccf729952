// The console's light JavaScript: live updates pushed by the server (server-sent events), presence on a ticket,
// suggested answers inserted into the reply. Every page works without it; this only keeps pages current.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const lang = document.documentElement.lang || "en";
  const TEXT = {
    en: { created: "New ticket", changed: "Updated", someoneReplying: " is writing a reply to this ticket.",
          confirmSend: " is writing a reply to this ticket right now. Send yours anyway?",
          claimed: "Another agent took this ticket.", newChat: "New chat waiting", chatFailed: "Not sent: " },
    fr: { created: "Nouveau dossier", changed: "Mis à jour", someoneReplying: " rédige une réponse à ce dossier.",
          confirmSend: " rédige une réponse à ce dossier en ce moment. Envoyer la vôtre quand même?",
          claimed: "Un autre agent a pris ce dossier.", newChat: "Nouveau clavardage en attente",
          chatFailed: "Non envoyé : " },
  }[lang === "fr" ? "fr" : "en"];

  function announce(message) {
    const region = document.getElementById("live-status");
    if (!region) return;
    region.textContent = message;
    clearTimeout(announce.timer);
    announce.timer = setTimeout(() => { region.textContent = ""; }, 6000);
  }

  function post(url, fields) {
    const form = new FormData();
    Object.entries(fields).forEach(([key, value]) => form.append(key, value));
    return fetch(url, { method: "POST", body: form, credentials: "same-origin",
                        headers: { "X-CSRFToken": csrf(), "X-Requested-With": "fetch" } });
  }

  // Runs fn at once; calls that come while it runs are folded into one more run after it (never two at once,
  // never a change left unseen).
  function coalesce(fn) {
    let running = false;
    let again = false;
    const run = async () => {
      if (running) { again = true; return; }
      running = true;
      try { await fn(); } catch (error) { /* the next event tries again */ }
      running = false;
      if (again) { again = false; run(); }
    };
    return run;
  }

  // A chat handed to the agent's team: said in the page's live region, and as a desktop notification when the
  // agent allowed them.
  function notifyChat(event) {
    const line = `${TEXT.newChat}: ${event.reference}`;
    announce(line);
    if (window.Notification && Notification.permission === "granted") new Notification(line);
  }
  if (window.Notification && Notification.permission === "default" && page !== "login") {
    document.addEventListener("click", () => Notification.requestPermission(), { once: true });
  }

  function listen(handlers) {
    if (!window.EventSource || page === "login") return;
    // From where the feed stood before the page was read: what changed in between comes first.
    const since = body.dataset.eventsSince;
    const source = new EventSource(/^\d+$/.test(since || "") ? `/events?since=${since}` : "/events");
    Object.entries(handlers).forEach(([kind, handler]) => {
      source.addEventListener(kind, (message) => handler(JSON.parse(message.data)));
    });
    window.addEventListener("pagehide", () => source.close());
  }

  // --- Worklists: the list and its counts follow every change of the agent's teams' tickets. -----------------
  if (page === "worklist") {
    const refresh = coalesce(async () => {
      const response = await fetch(body.dataset.rowsUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) return;
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      const before = new Set([...document.querySelectorAll("#rows tr[data-ticket]")].map((row) => row.dataset.ticket));
      document.getElementById("rows").replaceChildren(parsed.getElementById("fresh-rows").content.cloneNode(true));
      document.getElementById("counts").replaceChildren(parsed.getElementById("fresh-counts").content.cloneNode(true));
      document.querySelectorAll("#rows tr[data-ticket]").forEach((row) => {
        if (!before.has(row.dataset.ticket)) row.classList.add("fresh");
      });
    });
    listen({
      "ticket.created": (event) => {
        if (event.chat) notifyChat(event); else announce(`${TEXT.created}: ${event.reference}`);
        refresh();
      },
      "ticket.message": refresh,
      "ticket.changed": refresh,
    });
  }

  // --- A ticket: who else is here, what changed, suggested answers. -------------------------------------------
  if (page === "ticket") {
    const ticket = Number(body.dataset.ticket);
    const me = Number(body.dataset.me);
    const text = document.getElementById("reply-text") || document.getElementById("chat-text");
    const warning = document.getElementById("collision-warning");
    let state = "viewing";
    let idle = null;

    const tell = (next) => {
      state = next;
      return post(body.dataset.presenceUrl, { state: next });
    };
    tell("viewing");
    setInterval(() => tell(state), 15000);
    window.addEventListener("pagehide", () => {
      const form = new FormData();
      form.append("state", "gone");
      form.append("csrf_token", csrf());
      navigator.sendBeacon(body.dataset.presenceUrl, form);
    });
    if (text) {
      text.addEventListener("input", () => {
        if (state !== "replying") tell("replying");
        clearTimeout(idle);
        idle = setTimeout(() => { if (!text.value.trim()) tell("viewing"); }, 30000);
      });
    }

    const others = () => [...document.querySelectorAll("#presence .someone.replying")].map((p) => p.textContent.trim());
    const warn = () => {
      if (!warning) return;
      const replying = document.querySelectorAll("#presence .someone.replying");
      const assignee = document.getElementById("presence").dataset.assignee;
      if (replying.length) {
        warning.textContent = [...replying].map((p) => p.textContent.trim()).join(" · ");
        warning.hidden = false;
      } else if (assignee && Number(assignee) !== me) {
        warning.textContent = document.querySelector("#presence p").textContent.trim();
        warning.hidden = false;
      } else {
        warning.hidden = true;
      }
    };
    warn();

    const refresh = coalesce(async () => {
      const response = await fetch(body.dataset.liveUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      document.getElementById("live-parts").replaceChildren(...fresh.body.childNodes);
      warn();
    });
    const mine = (event) => event.ticket === ticket;
    const handlers = {
      "ticket.created": (event) => { if (event.chat) notifyChat(event); },
      "ticket.message": (event) => { if (mine(event)) { announce(TEXT.changed); refresh(); } },
      "ticket.changed": (event) => { if (mine(event)) { if (event.agent !== me) announce(TEXT.changed); refresh(); } },
      "ticket.presence": (event) => { if (mine(event) && event.agent !== me) refresh(); },
    };

    // A chat: new lines appended as they come, the customer typing, the agent's messages sent without leaving.
    const chat = document.getElementById("chat");
    if (chat) {
      const log = document.getElementById("chat-log");
      const typingLine = document.getElementById("chat-typing");
      const lastLine = () => Math.max(0, ...[...log.querySelectorAll("[data-id]")].map((line) => Number(line.dataset.id)));
      const append = (html) => {  // lines rendered by the server (escaped there), each once
        const fresh = new DOMParser().parseFromString(html, "text/html");
        fresh.querySelectorAll("[data-id]").forEach((line) => {
          if (!document.getElementById(line.id)) log.appendChild(document.adoptNode(line));
        });
        log.scrollTop = log.scrollHeight;
      };
      const more = coalesce(async () => {
        const response = await fetch(`${chat.dataset.linesUrl}?after=${lastLine()}`,
                                     { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
        if (response.ok) append(await response.text());
      });
      log.scrollTop = log.scrollHeight;
      let hideTyping = null;
      handlers["chat.message"] = (event) => {
        if (!mine(event)) return;
        typingLine.hidden = true;
        if (!(event.message <= lastLine())) more();  // (the agent's own message is on the page already)
      };
      handlers["chat.typing"] = (event) => {
        if (!mine(event) || event.sender !== "customer") return;
        typingLine.hidden = !event.typing;
        clearTimeout(hideTyping);
        hideTyping = setTimeout(() => { typingLine.hidden = true; }, 6000);
      };
      handlers["chat.state"] = (event) => {
        // Someone else took, handed back or ended the chat: the controls change with it.
        if (mine(event) && event.agent !== me && event.owner !== chat.dataset.state) window.location.reload();
      };
      const chatForm = document.getElementById("chat-form");
      const chatText = document.getElementById("chat-text");
      if (chatForm) {
        let told = 0;
        chatText.addEventListener("input", () => {
          if (chat.dataset.mine && Date.now() - told > 3000) { told = Date.now(); post(chat.dataset.typingUrl, { typing: "1" }); }
        });
        chatText.addEventListener("keydown", (key) => {
          if (key.key === "Enter" && !key.shiftKey) { key.preventDefault(); chatForm.requestSubmit(); }
        });
        chatForm.addEventListener("submit", async (submitted) => {
          submitted.preventDefault();
          const message = chatText.value.trim();
          if (!message) return;
          const response = await post(chatForm.action, { text: message, after: lastLine() });
          if (!response.ok) {
            announce(TEXT.chatFailed + ((await response.json().catch(() => ({}))).error || response.status));
            return;
          }
          chatText.value = "";
          told = 0;
          if (!chat.dataset.mine) { window.location.reload(); return; }  // writing took the chat: new controls
          append((await response.json()).lines || "");  // (with the lines before it the page lacked)
        });
      }
    }
    listen(handlers);

    const form = document.getElementById("reply-form");
    if (form) {
      form.addEventListener("submit", (submitted) => {
        const replying = others();
        if (replying.length && !form.querySelector('input[name="confirm"]')) {
          if (!window.confirm(replying.join(", ") + TEXT.confirmSend)) submitted.preventDefault();
        }
      });
    }

    document.querySelectorAll("button.insert").forEach((button) => {
      button.addEventListener("click", () => {
        if (!text) return;
        const answer = document.getElementById(button.dataset.answer).textContent.trim();
        const start = text.selectionStart ?? text.value.length;
        const end = text.selectionEnd ?? text.value.length;
        const before = text.value.slice(0, start);
        const separator = before && !before.endsWith("\n") ? "\n\n" : "";
        text.value = before + separator + answer + text.value.slice(end);
        text.focus();
        text.dispatchEvent(new Event("input"));
      });
    });
  }
})();
