// The billing chat widget. One tag on any page: <script src="http://…/widget/widget.js" defer></script>, with
// optional data-token (the Billing Portal identity token) and data-lang ("fr"). It builds its panel inside one
// container at the end of the body (every class name starts with bw-), talks to the server it was loaded from
// (JSON, the conversation key in X-Chat-Key) and follows the conversation live with server-sent events.
// No framework, no build step, nothing loaded from anywhere but that server.
"use strict";

(function () {
  // With defer, currentScript is still this tag while the script runs; it is gone once we wait for anything.
  const script = document.currentScript;
  if (!script || window.BillingChat) return;  // the tag twice on a page: the first copy is the widget

  // widget.js is served at <base>/widget/widget.js, the API lives at <base>/chat/…
  const BASE = new URL("../", script.src);
  const STYLESHEET = new URL("widget.css", script.src);
  const KEY_ITEM = "billing-chat-key";    // localStorage: the conversation survives reloads, shared by tabs
  const LANG_ITEM = "billing-chat-lang";  // localStorage: the language the customer chose with the switch
  const OPEN_ITEM = "billing-chat-open";  // sessionStorage: the panel reopens as it was, in this tab only
  const TYPING_EVERY_MS = 3000;
  const AGENT_TYPING_MS = 15000;  // a lost "typing: false" must not leave the line up for ever
  const MAX_DELAY_MS = 15000;
  const MAX_BUSY_TRIES = 10;  // an assistant busy for this many of its Retry-After delays is treated as down

  const TEXT = {
    en: {
      title: "Billing support",
      launcher: "Chat with us",
      unread: "new message",
      log: "Conversation with billing support",
      box: "Your message",
      send: "Send",
      close: "Close the chat window",
      otherLanguage: "Français",
      bot: "Assistant",
      you: "You",
      agentFallback: "Agent",
      withAgent: (name) => (name ? `Agent: ${name}` : "You are chatting with an agent"),
      queue: "Waiting for an agent…",
      typing: "Agent is typing…",
      sending: "Sending…",
      reconnecting: "Reconnecting…",
      retrying: "Your message could not be sent. Trying again…",
      busy: "Many customers are writing right now: your message is kept, trying again in a moment…",
      failed: "Something went wrong. Please try again.",
      ended: "The conversation has ended.",
      ratingPrompt: "How did we do?",
      stars: (count) => (count === 1 ? "1 star" : `${count} stars`),
      comment: "Comment (optional)",
      rate: "Send my rating",
      chooseStars: "Please choose from 1 to 5 stars.",
      ratingFailed: "Your rating could not be sent. Please try again.",
      thanks: "Thanks for your rating!",
      restart: "Start a new conversation",
    },
    fr: {
      title: "Soutien à la facturation",
      launcher: "Clavarder avec nous",
      unread: "nouveau message",
      log: "Conversation avec le soutien à la facturation",
      box: "Votre message",
      send: "Envoyer",
      close: "Fermer la fenêtre de clavardage",
      otherLanguage: "English",
      bot: "Assistant",
      you: "Vous",
      agentFallback: "Agent",
      withAgent: (name) => (name ? `Agent : ${name}` : "Vous clavardez avec un agent"),
      queue: "En attente d'un agent…",
      typing: "L'agent écrit…",
      sending: "Envoi…",
      reconnecting: "Reconnexion…",
      retrying: "Votre message n'a pas pu être envoyé. Nouvel essai…",
      busy: "Beaucoup de clients écrivent en ce moment : votre message est gardé, nouvel essai sous peu…",
      failed: "Une erreur est survenue. Veuillez réessayer.",
      ended: "La conversation est terminée.",
      ratingPrompt: "Comment était notre service?",
      stars: (count) => (count === 1 ? "1 étoile" : `${count} étoiles`),
      comment: "Commentaire (facultatif)",
      rate: "Envoyer mon évaluation",
      chooseStars: "Veuillez choisir de 1 à 5 étoiles.",
      ratingFailed: "Votre évaluation n'a pas pu être envoyée. Veuillez réessayer.",
      thanks: "Merci pour votre évaluation!",
      restart: "Commencer une nouvelle conversation",
    },
  };
  const asLanguage = (code) => (String(code || "").toLowerCase().startsWith("fr") ? "fr" : "en");
  const other = (language) => (language === "fr" ? "en" : "fr");

  // --- Small helpers. -----------------------------------------------------------------------------------------
  const local = () => window.localStorage;
  const session = () => window.sessionStorage;

  function recall(storage, name) {
    try { return storage().getItem(name); } catch { return null; }  // storage off: this page only
  }

  function remember(storage, name, value) {
    try {
      if (value === null) storage().removeItem(name); else storage().setItem(name, value);
    } catch { /* storage off (private mode, sandboxed frame): the widget still works for this page */ }
  }

  const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
  /** A server's Retry-After (seconds) in milliseconds, within 1 s and MAX_DELAY_MS. */
  const retryDelay = (seconds) => Math.min(Math.max(Number(seconds) || 2, 1) * 1000, MAX_DELAY_MS);

  function parse(json) {
    try { return JSON.parse(json); } catch { return null; }
  }

  // Elements are built, never parsed: text given as children becomes text nodes, whatever it contains.
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children);
    return node;
  }

  function newClientId() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();  // only on https and localhost
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // Web and email addresses in a message become links. The text is split around them and every piece is a text
  // node, so nothing a customer, an agent or the bot wrote is ever read as HTML.
  const ADDRESS = /\bhttps?:\/\/[^\s<>"']+|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;

  function linkify(text) {
    const pieces = [];
    let from = 0;
    for (const match of text.matchAll(ADDRESS)) {
      let address = match[0];
      if (address.startsWith("http")) {
        // The sentence's punctuation after an address is not part of it; a ")" is, if the address opened one.
        address = address.replace(/[.,;:!?]+$/, "");
        if (address.endsWith(")") && !address.includes("(")) address = address.replace(/[).,;:!?]+$/, "");
      }
      const at = match.index;
      pieces.push(text.slice(from, at));
      if (address.startsWith("http")) {
        pieces.push(el("a", { href: address, target: "_blank", rel: "noopener" }, address));
      } else {
        pieces.push(el("a", { href: `mailto:${address}` }, address));  // no new tab: it would stay empty
      }
      from = at + address.length;
    }
    pieces.push(text.slice(from));
    return pieces.filter((piece) => piece !== "");
  }

  // --- State. -------------------------------------------------------------------------------------------------
  let lang = asLanguage(recall(local, LANG_ITEM) || script.dataset.lang || document.documentElement.lang);
  let key = recall(local, KEY_ITEM);
  let conversation = null;       // the last conversation object from the server
  let lastId = 0;                // the highest message id shown
  const shown = new Map();       // message id → message: every message once, whichever way it came
  const chosen = new Set();      // ids of the bot messages whose buttons were used
  const t = () => TEXT[lang];
  const identityToken = () => script.dataset.token
    || (window.BillingPortal && window.BillingPortal.identityToken) || null;

  // --- The interface. -----------------------------------------------------------------------------------------
  const labels = [];  // [node, attribute or null for its text, key of TEXT or function of TEXT], redone on a switch

  function label(node, attribute, name) {
    labels.push([node, attribute, name]);
    return node;
  }

  function applyLabel([node, attribute, name]) {
    const value = typeof name === "function" ? name(t()) : t()[name];
    if (attribute) node.setAttribute(attribute, value); else node.textContent = value;
  }

  const root = el("div", { class: "bw-root", hidden: true });
  const unreadText = el("span", { class: "bw-visually-hidden" });  // empty unless unread: the launcher reads as it is
  const unread = el("span", { class: "bw-unread", hidden: true }, unreadText);
  const launcher = el("button", { type: "button", class: "bw-launcher", "aria-expanded": "false",
                                  "aria-controls": "bw-panel" },
                      label(el("span", { class: "bw-launcher-text" }), null, "launcher"), unread);
  const title = label(el("h2", { id: "bw-title", class: "bw-title" }), null, "title");
  const status = el("p", { class: "bw-status", hidden: true });
  const langButton = el("button", { type: "button", class: "bw-lang" });
  const closeButton = label(el("button", { type: "button", class: "bw-close" }, "×"), "aria-label", "close");
  label(closeButton, "title", "close");
  const log = label(el("div", { class: "bw-log", role: "log", "aria-live": "polite" }), "aria-label", "log");
  const typingLine = el("p", { class: "bw-typing", "aria-live": "polite" });
  const connectionLine = el("p", { class: "bw-connection", role: "status" });
  const alertLine = el("p", { class: "bw-alert", role: "alert" });

  const stars = [1, 2, 3, 4, 5].map((count) => {
    const input = label(el("input", { type: "radio", name: "stars", value: String(count), id: `bw-star-${count}`,
                                       class: "bw-star-input" }),
                        "aria-label", (text) => text.stars(count));
    const star = el("label", { for: `bw-star-${count}`, class: "bw-star", "data-stars": String(count) },
                    el("span", { "aria-hidden": "true" }, "★"));
    return [input, star];
  });
  // Each radio lies, transparent, over its star: a click on either (or a test's check()) picks it.
  const starSlots = stars.map((pair) => el("span", { class: "bw-star-slot" }, ...pair));
  const comment = el("textarea", { id: "bw-comment", class: "bw-comment", name: "comment", rows: "2",
                                   maxlength: "2000" });
  const rateButton = label(el("button", { type: "submit", class: "bw-rate" }), null, "rate");
  const rating = el("form", { class: "bw-rating", novalidate: true },
                    el("fieldset", { class: "bw-stars" },
                       label(el("legend", { class: "bw-rating-prompt" }), null, "ratingPrompt"), ...starSlots),
                    label(el("label", { for: "bw-comment", class: "bw-comment-label" }), null, "comment"),
                    comment, rateButton);
  const thanks = label(el("p", { class: "bw-thanks", hidden: true, tabindex: "-1" }), null, "thanks");
  const restartButton = label(el("button", { type: "button", class: "bw-restart" }), null, "restart");
  const ended = el("div", { class: "bw-ended", hidden: true },
                   label(el("p", { class: "bw-ended-notice" }), null, "ended"), rating, thanks, restartButton);

  const box = el("textarea", { id: "bw-box", class: "bw-box", name: "text", rows: "2", maxlength: "4000",
                               autocomplete: "off" });
  const sendButton = label(el("button", { type: "submit", class: "bw-send" }), null, "send");
  const composer = el("form", { class: "bw-composer", novalidate: true },
                      label(el("label", { for: "bw-box", class: "bw-visually-hidden" }), null, "box"), box, sendButton);

  const panel = el("section", { id: "bw-panel", class: "bw-panel", role: "dialog", "aria-labelledby": "bw-title",
                                hidden: true },
                   el("header", { class: "bw-header" },
                      el("div", { class: "bw-heading" }, title, status),
                      el("div", { class: "bw-tools" }, langButton, closeButton)),
                   log, typingLine, connectionLine, alertLine, ended, composer);
  root.append(launcher, panel);

  // --- Language. ----------------------------------------------------------------------------------------------
  function setLanguage(next, { keep = true, tellServer = true } = {}) {
    lang = asLanguage(next);
    root.lang = lang;
    if (keep) remember(local, LANG_ITEM, lang);
    labels.forEach(applyLabel);
    langButton.textContent = other(lang).toUpperCase();
    langButton.lang = other(lang);
    langButton.setAttribute("aria-label", t().otherLanguage);
    langButton.title = t().otherLanguage;
    log.querySelectorAll(".bw-msg").forEach(labelRow);
    renderStatus();
    if (agentTyping) typingLine.textContent = t().typing;
    setUnread(!unread.hidden);
    if (tellServer) updateConversation();
  }

  // --- Messages. ----------------------------------------------------------------------------------------------
  const KINDS = new Set(["customer", "bot", "agent", "system"]);

  function authorOf(message) {
    if (message.from === "customer") return t().you;
    if (message.from === "bot") return t().bot;
    if (message.from === "agent") return message.agent || t().agentFallback;
    return "";
  }

  function formatTime(at) {
    const date = new Date(at);
    if (!at || Number.isNaN(date.getTime())) return "";
    return date.toLocaleTimeString(lang === "fr" ? "fr-CA" : "en-CA", { hour: "numeric", minute: "2-digit" });
  }

  function labelRow(row) {
    const message = row.dataset.id ? shown.get(Number(row.dataset.id)) : { from: "customer" };
    const author = row.querySelector(".bw-author");
    const time = row.querySelector(".bw-time");
    if (author) author.textContent = authorOf(message);
    if (time) time.textContent = row.dataset.pending ? t().sending : formatTime(message.at);
  }

  function renderMessage(message) {
    const from = KINDS.has(message.from) ? message.from : "system";
    const row = el("div", { class: `bw-msg bw-from-${from}`, "data-id": String(message.id), "data-from": from });
    if (from !== "system") {
      row.append(el("div", { class: "bw-meta" }, el("span", { class: "bw-author" }),
                    el("time", { class: "bw-time", datetime: message.at || null })));
    }
    row.append(el("div", { class: "bw-text" }, ...linkify(String(message.text ?? ""))));
    const buttons = Array.isArray(message.buttons) ? message.buttons.filter((button) => button && button.title) : [];
    if (buttons.length) {
      row.append(el("div", { class: "bw-choices" }, ...buttons.map((button) => {
        const choice = el("button", { type: "button", class: "bw-choice" }, String(button.title));
        choice.addEventListener("click", () => choose(message.id, String(button.title), button.payload));
        return choice;
      })));
    }
    labelRow(row);
    return row;
  }

  function renderPending(text) {
    const row = el("div", { class: "bw-msg bw-from-customer bw-pending", "data-from": "customer", "data-pending": "1" },
                   el("div", { class: "bw-meta" }, el("span", { class: "bw-author" }), el("span", { class: "bw-time" })),
                   el("div", { class: "bw-text" }, ...linkify(text)));
    labelRow(row);
    return row;
  }

  const isAtEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 60;
  const scrollToEnd = () => { log.scrollTop = log.scrollHeight; };

  /** Shows the messages not shown yet, in id order, before the customer's messages still being sent. */
  function addMessages(messages, { quiet = false } = {}) {
    const wasAtEnd = isAtEnd();
    let added = false;
    let fresh = false;
    const valid = (Array.isArray(messages) ? messages : []).filter((message) => message && Number.isFinite(message.id));
    for (const message of valid.sort((a, b) => a.id - b.id)) {
      if (shown.has(message.id)) continue;
      shown.set(message.id, message);
      lastId = Math.max(lastId, message.id);
      if (message.from === "customer") dropPendingLike(message.text);
      if (message.from === "agent") setTyping(false);
      const later = [...log.children].find((row) => row.dataset.pending || Number(row.dataset.id) > message.id);
      log.insertBefore(renderMessage(message), later || null);
      added = true;
      fresh = fresh || message.from !== "customer";
    }
    if (!added) return;
    refreshChoices();
    if (wasAtEnd) scrollToEnd();
    if (fresh && !quiet && panel.hidden) setUnread(true);
  }

  function dropPendingLike(text) {
    const twin = [...log.querySelectorAll(".bw-pending")].find((row) => row.dataset.text === String(text ?? "").trim());
    if (twin) twin.remove();
  }

  // A bot message's buttons work until one was clicked, the customer answered otherwise, or the chat ended.
  function refreshChoices() {
    const closed = Boolean(conversation && conversation.state === "closed");
    let answered = false;
    for (const row of [...log.querySelectorAll(".bw-msg")].reverse()) {
      if (row.dataset.from === "customer") answered = true;
      const used = chosen.has(Number(row.dataset.id));
      row.querySelectorAll(".bw-choice").forEach((choice) => { choice.disabled = closed || answered || used; });
    }
  }

  function choose(messageId, title, payload) {
    chosen.add(messageId);
    refreshChoices();
    box.focus();
    queueSend(title, typeof payload === "string" && payload ? payload : null);
  }

  // --- Header, notices, typing. -------------------------------------------------------------------------------
  function renderStatus() {
    const state = conversation && conversation.state;
    status.textContent = state === "agent" ? t().withAgent(conversation.agent) : state === "queue" ? t().queue : "";
    status.hidden = !status.textContent;
  }

  function showAlert(message) {
    if (alertLine.textContent !== message) alertLine.textContent = message;
  }

  function showConnection(trouble) {
    const message = trouble ? t().reconnecting : "";
    if (connectionLine.textContent !== message) connectionLine.textContent = message;
  }

  let agentTyping = false;
  let typingTimer = null;

  function setTyping(on) {
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => setTyping(false), AGENT_TYPING_MS);
    if (on === agentTyping) return;  // the live region speaks on changes only
    agentTyping = on;
    typingLine.textContent = on ? t().typing : "";
  }

  function setUnread(on) {
    unread.hidden = !on;
    unreadText.textContent = on ? `, ${t().unread}` : "";
    if (on) root.dataset.unread = "1"; else delete root.dataset.unread;
  }

  // --- The server. --------------------------------------------------------------------------------------------
  /** One JSON request to the chat API; resolves to {ok, status, data}; rejects only when the network failed. */
  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (key) headers["X-Chat-Key"] = key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(new URL(path, BASE), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", cache: "no-store",  // the key is the credential: no cookie of the host page goes along
    });
    const data = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, data };
  }

  const messageOf = (result) => (result && result.data && typeof result.data.message === "string"
    ? result.data.message : t().failed);

  let starting = null;

  /** The conversation of the stored key (resumed, its language and token updated) or a new one. */
  async function startConversation() {
    const asked = key;
    const result = await call("POST", "chat/conversations", { language: lang, token: identityToken() });
    if (key !== asked) return startConversation();  // another tab or a restart changed the key meanwhile
    if (!result.ok || !result.data || !result.data.key || !result.data.conversation) throw new Error(messageOf(result));
    adopt(result.data);
  }

  function ensureConversation() {
    if (key && conversation) return Promise.resolve();
    if (!starting) starting = startConversation().finally(() => { starting = null; });
    return starting;
  }

  let beginning = null;

  /** ensureConversation until it works, with the same backoff as the sends; never rejects. */
  function begin() {
    if (!beginning) {
      beginning = (async () => {
        for (let delay = 1000; ; delay = Math.min(delay * 2, MAX_DELAY_MS)) {
          try {
            await ensureConversation();
            showConnection(false);
            return;
          } catch {
            showConnection(true);
            await sleep(delay);
          }
        }
      })().finally(() => { beginning = null; });
    }
    return beginning;
  }

  function updateConversation() {
    // The server answers in the interface's language from now on; not vital: every resume carries it again.
    if (!key || !conversation || conversation.state === "closed" || starting) return;
    startConversation().catch(() => {});
  }

  function adopt(data) {
    if (data.key !== key) {
      forgetConversation();
      key = data.key;
      remember(local, KEY_ITEM, key);
    }
    addMessages(data.messages, { quiet: true });
    setConversation(data.conversation);
    root.dataset.ready = "1";
  }

  function setConversation(next) {
    if (!next || !next.state) return;
    const wasClosed = Boolean(conversation && conversation.state === "closed");
    const wasAtEnd = isAtEnd();  // the ended notice and the rating take room from the log: keep its end in view
    conversation = next;
    root.dataset.state = next.state;
    renderStatus();
    const closed = next.state === "closed";
    const focusInComposer = composer.contains(document.activeElement);
    composer.hidden = closed;
    ended.hidden = !closed;
    renderEnded();
    if (closed) {
      setTyping(false);
      disconnect();
      showConnection(false);
      if (!wasClosed && focusInComposer) focusInside();
    } else if (!stream) {
      connect();
    }
    if (next.state !== "agent") setTyping(false);
    refreshChoices();
    if (wasAtEnd) scrollToEnd();
  }

  function renderEnded() {
    const rated = Boolean(conversation && conversation.rated);
    rating.hidden = rated;
    thanks.hidden = !rated;
  }

  /** Forgets what is shown of the current conversation (not the stored key, not the messages being sent). */
  function forgetConversation() {
    disconnect();
    showConnection(false);
    conversation = null;
    lastId = 0;
    shown.clear();
    chosen.clear();
    log.querySelectorAll(".bw-msg:not(.bw-pending)").forEach((row) => row.remove());
    delete root.dataset.state;
    renderStatus();
    setTyping(false);
    rating.reset();
    paintStars();
    ended.hidden = true;
    composer.hidden = false;
  }

  function startOver() {
    forgetConversation();
    key = null;
    remember(local, KEY_ITEM, null);
    if (!panel.hidden) begin();
  }

  let catching = null;

  /** Fetches what the stream may have missed; an unknown key (the server forgot it) starts over. */
  function catchUp() {
    if (!key) return Promise.resolve();
    if (!catching) {
      const asked = key;
      catching = (async () => {
        try {
          const result = await call("GET", `chat/messages?after=${lastId}`);
          if (key !== asked) return;
          if (result.status === 401) { startOver(); return; }
          if (!result.ok || !result.data) return;
          addMessages(result.data.messages);
          setConversation(result.data.conversation);
        } catch { /* the network: the stream's reconnection calls again */ }
      })().finally(() => { catching = null; });
    }
    return catching;
  }

  // --- The live stream. ---------------------------------------------------------------------------------------
  let stream = null;
  let streamTimer = null;
  let streamDelay = 1000;

  function connect() {
    disconnect();
    if (!key || !window.EventSource || (conversation && conversation.state === "closed")) return;
    const url = new URL("chat/events", BASE);
    url.searchParams.set("key", key);  // EventSource cannot send headers
    url.searchParams.set("after", String(lastId));
    const source = new EventSource(url);
    stream = source;
    const on = (kind, handler) => source.addEventListener(kind, (event) => {
      const data = parse(event.data);
      if (stream === source && data) handler(data);
    });
    source.addEventListener("open", () => {
      if (stream !== source) return;
      streamDelay = 1000;
      showConnection(false);
      catchUp();  // what happened while the stream was down
    });
    source.addEventListener("error", () => {
      if (stream !== source) return;
      showConnection(true);
      if (source.readyState !== EventSource.CLOSED) return;  // the browser reconnects by itself
      // Refused for good (an unknown key, a server error): catch up, which notices an unknown key, then retry.
      stream = null;
      streamTimer = setTimeout(async () => {
        await catchUp();
        if (!stream) connect();
      }, streamDelay);
      streamDelay = Math.min(streamDelay * 2, MAX_DELAY_MS);
    });
    on("message", (message) => addMessages([message]));
    on("typing", (typing) => { if (typing.from === "agent") setTyping(Boolean(typing.typing)); });
    on("state", (next) => setConversation(next));
  }

  function disconnect() {
    clearTimeout(streamTimer);
    if (stream) stream.close();
    stream = null;
  }

  // --- Sending. -----------------------------------------------------------------------------------------------
  const outbox = [];  // {text, payload, clientId, row, settle}: sent one at a time, in order
  let delivering = false;

  function queueSend(text, payload = null) {
    const clean = String(text ?? "").trim();
    if (!clean) return Promise.resolve(false);
    stopTyping();
    const row = renderPending(clean);
    row.dataset.text = clean;
    log.append(row);
    scrollToEnd();
    refreshChoices();
    return new Promise((settle) => {
      outbox.push({ text: clean, payload, clientId: newClientId(), row, settle });
      if (!delivering) drain();
    });
  }

  async function drain() {
    delivering = true;
    while (outbox.length) {
      const item = outbox[0];
      item.settle(await deliver(item));
      outbox.shift();
    }
    delivering = false;
  }

  /** Sends one message until the server has it; the same client_id every time, so the server keeps it once. */
  async function deliver(item) {
    let busyTries = 0;
    for (let delay = 1000; ; delay = Math.min(delay * 2, MAX_DELAY_MS)) {
      let result = null;
      let asked = null;
      try {
        await ensureConversation();
        asked = key;
        const body = { text: item.text, client_id: item.clientId };
        if (item.payload) body.payload = item.payload;
        if (item.resend) body.resend = true;
        result = await call("POST", "chat/messages", body);
      } catch { result = null; }
      if (result && result.ok) {
        item.row.remove();
        showAlert("");
        if (key === asked && result.data) {
          addMessages(result.data.messages);
          setConversation(result.data.conversation);
        }
        return true;
      }
      if (result && result.status === 401) {
        startOver();  // the server forgot the key: the message goes to a new conversation
      } else if (result && result.status === 503 && result.data && result.data.error === "bot_busy"
                 && busyTries < MAX_BUSY_TRIES) {
        // The assistant is overloaded and never took the message (kept on the server): ask it again after the
        // delay the server gave, for the same stored message.
        busyTries += 1;
        item.resend = true;
        item.row.remove();
        catchUp();
        showAlert(t().busy);
        await sleep(retryDelay(result.data.retry_after));
        continue;
      } else if (result && result.status === 503) {
        item.row.remove();  // the bot is down, but the message is stored: fetch it back as it was kept
        showAlert(messageOf(result));
        catchUp();
        return true;
      } else if (result && result.status >= 400 && result.status < 500) {
        item.row.remove();
        if (!item.payload) box.value = box.value ? `${item.text}\n${box.value}` : item.text;  // keep the draft
        showAlert(messageOf(result));
        refreshChoices();
        return false;
      } else {
        showAlert(t().retrying);  // the network or the server is down: the same message again, later
      }
      await sleep(delay);
    }
  }

  // The customer typing: "true" at most every few seconds, "false" when the box is emptied or the message sent.
  let typingToldAt = 0;
  let typingTold = false;

  function tellTyping(typing) {
    call("POST", "chat/typing", { typing }).catch(() => {});  // a hint: one lost is no harm
  }

  function stopTyping() {
    if (!typingTold) return;
    typingTold = false;
    typingToldAt = 0;
    if (key) tellTyping(false);
  }

  // --- The panel. ---------------------------------------------------------------------------------------------
  function focusInside() {
    if (conversation && conversation.state === "closed") {
      const target = !rating.hidden ? (rating.querySelector("input:checked") || stars[0][0]) : restartButton;
      target.focus();
    } else {
      box.focus();
    }
  }

  function openPanel(focus = true) {
    panel.hidden = false;
    launcher.hidden = true;
    launcher.setAttribute("aria-expanded", "true");
    root.dataset.open = "1";
    remember(session, OPEN_ITEM, "1");
    setUnread(false);
    scrollToEnd();
    if (!key || !conversation) begin();
    if (focus) focusInside();
  }

  function closePanel() {
    const hadFocus = panel.contains(document.activeElement);
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    root.dataset.open = "0";
    remember(session, OPEN_ITEM, "0");
    if (hadFocus) launcher.focus();
  }

  function paintStars() {
    const picked = Number(rating.elements.stars.value || 0);
    stars.forEach(([, star], index) => star.classList.toggle("bw-on", index < picked));
  }

  // --- Wiring. ------------------------------------------------------------------------------------------------
  launcher.addEventListener("click", () => openPanel());
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); closePanel(); }
  });
  langButton.addEventListener("click", () => setLanguage(other(lang)));

  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  box.addEventListener("input", () => {
    if (!key || !conversation || conversation.state === "closed") return;
    if (!box.value.trim()) { stopTyping(); return; }
    if (Date.now() - typingToldAt < TYPING_EVERY_MS) return;
    typingToldAt = Date.now();
    typingTold = true;
    tellTyping(true);
  });
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = box.value;
    if (!text.trim()) return;
    box.value = "";
    queueSend(text);
    box.focus();
  });

  rating.addEventListener("change", () => { paintStars(); showAlert(""); });
  rating.addEventListener("submit", async (event) => {
    event.preventDefault();
    const picked = Number(rating.elements.stars.value || 0);
    if (!picked) {
      showAlert(t().chooseStars);
      stars[0][0].focus();
      return;
    }
    rateButton.disabled = true;
    let result = null;
    try {
      result = await call("POST", "chat/rating", { stars: picked, comment: comment.value.trim() });
    } catch { result = null; }
    rateButton.disabled = false;
    if (!result || !result.ok) {
      showAlert(result ? messageOf(result) : t().ratingFailed);
      return;
    }
    showAlert("");
    conversation = { ...conversation, rated: true };
    renderEnded();
    thanks.focus();
  });
  restartButton.addEventListener("click", () => {
    startOver();
    box.focus();
    begin();
  });

  window.addEventListener("storage", (event) => {
    // Another tab started or resumed a conversation: this one follows it. (A key removed is a new one coming.)
    if (event.key === KEY_ITEM && event.newValue && event.newValue !== key) {
      forgetConversation();
      key = event.newValue;
      begin();
    }
    if (event.key === LANG_ITEM && event.newValue && asLanguage(event.newValue) !== lang) {
      setLanguage(event.newValue, { keep: false, tellServer: false });
    }
  });
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", (event) => { if (event.persisted && conversation) connect(); });

  window.BillingChat = Object.freeze({
    /** Opens the panel (starting a conversation if there is none) and moves the focus to the message box. */
    open: () => openPanel(),
    /** Closes the panel; the conversation goes on. */
    close: closePanel,
    /** Opens the panel and sends text as the customer; resolves to true once the server has it. */
    send: (text) => { openPanel(false); return queueSend(text); },
  });

  // --- Start. -------------------------------------------------------------------------------------------------
  function start() {
    setLanguage(lang, { keep: false, tellServer: false });
    const stylesheet = el("link", { rel: "stylesheet", href: STYLESHEET.href });
    const reveal = () => { root.hidden = false; };  // unstyled, the widget would flash across the page
    stylesheet.addEventListener("load", reveal);
    stylesheet.addEventListener("error", reveal);
    document.head.append(stylesheet);
    document.body.append(root);
    const wasOpen = recall(session, OPEN_ITEM) === "1";
    if (key) {
      begin().then(() => { if (wasOpen && shown.size && panel.hidden) openPanel(false); });
    }
  }

  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
