// Kitchen board: running timers, heartbeat, keys 1–9 to bump, a sound on new orders.
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
      card.classList.toggle("late", age >= Number(card.dataset.late));
      card.classList.toggle("warn", age >= Number(card.dataset.warn) && age < Number(card.dataset.late));
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

  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") {
        var banner = document.getElementById("sound-banner");
        if (banner) { banner.hidden = false; }
        return;
      }
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
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

  document.body.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.id === "board" && event.detail.successful) { lastOk = Date.now(); }
  });
  document.body.addEventListener("htmx:afterSwap", function () { checkNew(); tick(); });

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
      var cards = document.querySelectorAll("#board .card:not([disabled])");
      var card = cards[n - 1];
      if (card) { event.preventDefault(); card.click(); }
    }
  });

  checkNew();
  // Probe the audio policy once so the "tap to enable sound" banner shows when needed.
  try {
    audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") { document.getElementById("sound-banner").hidden = false; }
  } catch (e) { soundWanted = false; }
  tick();
  setInterval(tick, 1000);
})();
