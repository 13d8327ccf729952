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
          claimed: "Another agent took this ticket." },
    fr: { created: "Nouveau dossier", changed: "Mis à jour", someoneReplying: " rédige une réponse à ce dossier.",
          confirmSend: " rédige une réponse à ce dossier en ce moment. Envoyer la vôtre quand même?",
          claimed: "Un autre agent a pris ce dossier." },
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

  function debounce(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  function listen(handlers) {
    if (!window.EventSource || page === "login") return;
    const source = new EventSource("/events");
    Object.entries(handlers).forEach(([kind, handler]) => {
      source.addEventListener(kind, (message) => handler(JSON.parse(message.data)));
    });
    window.addEventListener("pagehide", () => source.close());
  }

  // --- Worklists: the list and its counts follow every change of the agent's teams' tickets. -----------------
  if (page === "worklist") {
    const refresh = debounce(async () => {
      const response = await fetch(body.dataset.rowsUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) return;
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      const before = new Set([...document.querySelectorAll("#rows tr[data-ticket]")].map((row) => row.dataset.ticket));
      document.getElementById("rows").replaceChildren(parsed.getElementById("fresh-rows").content.cloneNode(true));
      document.getElementById("counts").replaceChildren(parsed.getElementById("fresh-counts").content.cloneNode(true));
      document.querySelectorAll("#rows tr[data-ticket]").forEach((row) => {
        if (!before.has(row.dataset.ticket)) row.classList.add("fresh");
      });
    }, 250);
    listen({
      "ticket.created": (event) => { announce(`${TEXT.created}: ${event.reference}`); refresh(); },
      "ticket.message": refresh,
      "ticket.changed": refresh,
    });
  }

  // --- A ticket: who else is here, what changed, suggested answers. -------------------------------------------
  if (page === "ticket") {
    const ticket = Number(body.dataset.ticket);
    const me = Number(body.dataset.me);
    const text = document.getElementById("reply-text");
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

    const refresh = debounce(async () => {
      const response = await fetch(body.dataset.liveUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      document.getElementById("live-parts").replaceChildren(...fresh.body.childNodes);
      warn();
    }, 200);
    const mine = (event) => event.ticket === ticket;
    listen({
      "ticket.message": (event) => { if (mine(event)) { announce(TEXT.changed); refresh(); } },
      "ticket.changed": (event) => { if (mine(event)) { if (event.agent !== me) announce(TEXT.changed); refresh(); } },
      "ticket.presence": (event) => { if (mine(event) && event.agent !== me) refresh(); },
    });

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
