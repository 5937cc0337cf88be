// The customer pickup screen: a chime when a number turns ready.
(function () {
  "use strict";
  if (!document.body.classList.contains("pickup")) { return; }
  var shown = null;
  var audio = null;
  function chime() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [660, 880].forEach(function (frequency, i) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.frequency.value = frequency;
        gain.gain.value = 0.25;
        osc.connect(gain); gain.connect(audio.destination);
        osc.start(audio.currentTime + i * 0.3); osc.stop(audio.currentTime + i * 0.3 + 0.4);
      });
    } catch (e) { /* no audio: the numbers still show */ }
  }
  function check() {
    var screen = document.getElementById("pickup");
    if (!screen) { return; }
    var ready = (screen.dataset.ready || "").split(",").filter(Boolean);
    if (shown !== null && ready.some(function (n) { return shown.indexOf(n) < 0; })) {
      chime();
      document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
    }
    shown = ready;
  }
  document.body.addEventListener("htmx:afterSwap", check);
  document.addEventListener("click", function () { if (audio) { audio.resume(); } });
  check();
})();

// Kitchen board: running timers, heartbeat, keys 1–9 to bump, a sound on new orders and VOIDs.
(function () {
  "use strict";
  if (!document.body.classList.contains("kitchen")) { return; }

  var lastOk = Date.now();
  var maxSeen = null;
  var audio = null;
  var soundWanted = true;

  function board() { return document.getElementById("board"); }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("#board .card").forEach(function (card) {
      var age = Math.max(0, Math.floor((now - Number(card.dataset.created)) / 1000));
      var timer = card.querySelector(".timer");
      if (timer) { timer.textContent = Math.floor(age / 60) + ":" + pad(age % 60); }
      var timing = (card.dataset.timing || "300 600").split(" ");  // warn and late, in seconds
      var warn = Number(timing[0]);
      var late = Number(timing[1]);
      card.classList.toggle("late", age >= late);
      card.classList.toggle("warn", age >= warn && age < late);
    });
    var seconds = Math.floor((now - lastOk) / 1000);
    var beat = document.getElementById("heartbeat");
    if (beat) {
      // The sentence comes translated from the template (data-template), with {seconds} to fill in.
      beat.textContent = (beat.dataset.template || "updated {seconds} s ago").replace("{seconds}", seconds);
      beat.classList.toggle("stale", seconds > 10);
    }
    var stale = document.getElementById("stale-banner");
    if (stale) { stale.hidden = seconds <= 10; }
  }

  function beep(frequency) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") {
        var banner = document.getElementById("sound-banner");
        if (banner) { banner.hidden = false; }
        return;
      }
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = frequency || 880;
      gain.gain.value = 0.2;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.25);
    } catch (e) { /* no audio: the board still updates */ }
  }

  function checkNew() {
    var b = board();
    if (!b) { return; }
    var top = Number(b.dataset.maxOrderId || 0);
    if (maxSeen !== null && top > maxSeen && soundWanted) { beep(); }
    maxSeen = Math.max(maxSeen || 0, top);
  }

  // The heartbeat measures the last successful poll, whatever it returned: a 204 ("nothing changed")
  // and a fresh board alike. beforeSwap fires on the polling element while it is still in the page
  // (an outerHTML swap detaches it before afterRequest could bubble up to here).
  function pollOk(event) {
    var d = event.detail || {};
    var elt = d.elt;
    var status = d.xhr ? d.xhr.status : 0;
    if (elt && elt.id === "board" && status >= 200 && status < 300) { lastOk = Date.now(); }
  }
  document.body.addEventListener("htmx:beforeSwap", pollOk);
  document.body.addEventListener("htmx:afterRequest", pollOk);
  document.body.addEventListener("htmx:afterSwap", function () { checkNew(); tick(); offScreen(); });

  // Each column scrolls on its own; a column with cards beyond its fold says how many, below and above.
  function offScreen() {
    var b = board();
    if (!b) { return; }
    var below = b.dataset.offTemplate || "{count} more";
    var above = b.dataset.offAboveTemplate || "{count} more";
    b.querySelectorAll(".column").forEach(function (column) {
      var list = column.querySelector(".column-cards");
      var note = column.querySelector(".off-screen-below");
      var noteAbove = column.querySelector(".off-screen-above");
      if (!list || !note) { return; }
      var box = list.getBoundingClientRect();
      var hidden = 0;
      var hiddenAbove = 0;
      list.querySelectorAll(".card").forEach(function (card) {
        var r = card.getBoundingClientRect();
        if (r.top >= box.bottom - 8) { hidden += 1; } else if (r.bottom <= box.top + 8) { hiddenAbove += 1; }
      });
      note.hidden = hidden === 0;
      note.textContent = below.replace("{count}", hidden);
      if (noteAbove) {
        noteAbove.hidden = hiddenAbove === 0;
        noteAbove.textContent = above.replace("{count}", hiddenAbove);
      }
    });
  }
  document.addEventListener("scroll", offScreen, true);
  window.addEventListener("resize", offScreen);

  // A VOID waiting for a cook: a low double tone every 4 s until someone acknowledges it.
  var lastVoidBeep = 0;
  function voidAlarm() {
    var b = board();
    if (!b || Number(b.dataset.voidPending || 0) === 0 || !soundWanted) { return; }
    if (Date.now() - lastVoidBeep < 4000) { return; }
    lastVoidBeep = Date.now();
    beep(440);
    setTimeout(function () { beep(330); }, 300);
  }

  document.addEventListener("click", function (event) {
    if (event.target && event.target.id === "enable-sound") {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      audio.resume().then(function () {
        var banner = document.getElementById("sound-banner");
        if (banner) { banner.hidden = true; }
        beep();
      });
    }
  });

  // A bump bar is a keyboard: keys 1–9 bump the n-th card (left to right, top to bottom).
  document.addEventListener("keydown", function (event) {
    if (event.target && (event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA")) { return; }
    var n = Number(event.key);
    if (n >= 1 && n <= 9) {
      var buttons = document.querySelectorAll("#board .card .bump");
      var button = buttons[n - 1];
      if (button) { event.preventDefault(); button.click(); }
    }
  });

  checkNew();
  // Probe the audio policy once so the "tap to enable sound" banner shows when needed.
  try {
    audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") { document.getElementById("sound-banner").hidden = false; }
  } catch (e) { soundWanted = false; }
  tick();
  offScreen();
  setInterval(function () { tick(); voidAlarm(); }, 1000);
})();
