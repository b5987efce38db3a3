// walltrack-config console: progressive enhancement only. Every page works without this file; with it, pages
// follow the live stream (/events, the bots' own stream, signed in by the session cookie) and inputs say what
// is wrong with them as they are typed.
"use strict";

(function () {
  const status = document.getElementById("live-status");

  function say(text, stale) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("stale", Boolean(stale));
    status.hidden = !text;
  }

  // Fetch this page again and put its fresh [data-refresh] parts in place (forms being typed into are not touched).
  let refreshing = null;
  function refresh() {
    const parts = document.querySelectorAll("[data-refresh]");
    if (!parts.length || refreshing) return refreshing;
    refreshing = fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then((answer) => answer.ok ? answer.text() : Promise.reject(answer.status))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelectorAll("[data-refresh]");
        parts.forEach((part, i) => {
          if (fresh[i] && !part.contains(document.activeElement)) part.replaceChildren(...fresh[i].childNodes);
        });
        document.dispatchEvent(new CustomEvent("console:refreshed"));
      })
      .catch(() => {})
      .finally(() => { refreshing = null; });
    return refreshing;
  }

  function follow(url) {
    if (!window.EventSource) return;
    const source = new EventSource(url);
    source.addEventListener("change", (event) => {
      let change = {};
      try { change = JSON.parse(event.data); } catch (e) { return; }
      const watched = document.body.dataset.domain;
      say(`${change.domain}: “${change.name}” v${change.version} is live (by ${change.actor || "someone"})`);
      document.body.dataset.activation = String(change.activation || "");
      if (!watched || watched === change.domain) refresh();
      const stale = document.querySelector("[data-stale-on-change='" + change.domain + "']");
      if (stale) stale.hidden = false;
    });
    source.addEventListener("status", (event) => {
      let s = {};
      try { s = JSON.parse(event.data); } catch (e) { return; }
      say(s.connected ? "" : "The server lost the database: settings shown may be stale.", !s.connected);
      if (s.connected) refresh();
    });
    source.addEventListener("revoked", () => { source.close(); say("Your session ended: sign in again.", true); });
    source.addEventListener("resync", () => { source.close(); setTimeout(() => follow(url), 500); });
  }

  // Pages that show something catching up (the fleet after an activation) look again every few seconds.
  function poll() {
    const every = Number(document.body.dataset.pollSeconds || 0);
    if (every > 0) setInterval(refresh, every * 1000);
  }

  // Inline checks: the browser knows min, max and step (the database's rules, rendered into the inputs).
  function check(input) {
    const slot = document.getElementById(input.id + "-client-error");
    if (!slot) return;
    const bad = !input.validity.valid;  // not checkValidity(): it fires "invalid" again, which calls this: endless
    input.setAttribute("aria-invalid", bad ? "true" : "false");
    slot.textContent = bad ? input.validationMessage : "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const live = document.body.dataset.live;
    if (live) follow(live);
    poll();
    document.querySelectorAll("form.editor input, form.editor select").forEach((input) => {
      input.addEventListener("input", () => check(input));
      input.addEventListener("invalid", () => check(input));
    });
    document.querySelectorAll("[data-back]").forEach((link) => link.addEventListener("click", (event) => {
      if (history.length > 1) { event.preventDefault(); history.back(); }
    }));
    document.querySelectorAll("[data-add-tier]").forEach((button) => button.addEventListener("click", () => {
      const body = document.querySelector(button.dataset.addTier);
      const last = body && body.lastElementChild;
      if (!last) return;
      const row = last.cloneNode(true);
      const n = body.children.length;
      row.querySelectorAll("input").forEach((input) => {
        input.name = input.name.replace(/-\d+-/, `-${n}-`);
        input.id = input.id.replace(/-\d+-/, `-${n}-`);
        input.value = "";
      });
      row.querySelectorAll("label").forEach((label) => { label.htmlFor = label.htmlFor.replace(/-\d+-/, `-${n}-`); });
      body.appendChild(row);
      row.querySelector("input").focus();
    }));
  });
})();
