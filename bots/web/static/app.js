/* Cercle web door: quick exit, joining, and the live chat. No libraries, no third parties. */
(function () {
  "use strict";
  var body = document.body;
  var KEY = "cercle.seat";
  var NOTES = "cercle.notes";

  function clearAll() {
    try { sessionStorage.clear(); } catch (e) { /* storage may be off */ }
    try { localStorage.clear(); } catch (e) { /* storage may be off */ }
  }

  // Quick exit: forget everything this page stored, then replace the page (no way back).
  var leaving = false;
  function quickExit(ev) {
    if (ev) { ev.preventDefault(); }
    if (leaving) { return; }
    leaving = true;
    clearAll();
    var main = document.getElementById("main");
    if (main) { main.textContent = ""; }
    document.title = "";
    // Again just before leaving: nothing the page does meanwhile may write anything back.
    var go = function () { clearAll(); location.replace(body.dataset.exit); };
    // Clears the cookie of the no-script mode, if any; leave even if it does not answer.
    var timer = setTimeout(go, 400);
    // The server answers the script with 204; should a redirect come, it is not followed.
    fetch("/c/exit", {
      method: "POST", keepalive: true, credentials: "same-origin", redirect: "manual"
    })
      .catch(function () { return null; })
      .then(function () { clearTimeout(timer); go(); });
  }
  var exitButton = document.getElementById("quick-exit");
  if (exitButton) { exitButton.addEventListener("click", quickExit); }
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { quickExit(ev); }
  });

  function post(url, data, token) {
    var headers = { "Content-Type": "application/x-www-form-urlencoded" };
    if (token) { headers.Authorization = "Bearer " + token; }
    return fetch(url, {
      method: "POST", headers: headers, body: new URLSearchParams(data).toString(),
      credentials: "same-origin", cache: "no-store"
    });
  }

  // Joining: the token goes to sessionStorage, or to localStorage only if asked for.
  var join = document.getElementById("join");
  if (join) {
    join.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var data = new FormData(join);
      data.set("mode", "js");
      data.set("agree", "1");  // the submit button is not part of FormData
      post(join.action, data).then(function (r) {
        if (!r.ok) { location.reload(); return null; }
        return r.json();
      }).then(function (seat) {
        if (!seat) { return; }
        clearAll();
        (data.get("remember") ? localStorage : sessionStorage).setItem(KEY, seat.token);
        location.replace("/c?l=" + encodeURIComponent(seat.lang));
      }).catch(function () { location.reload(); });
    });
  }

  // Times in the reader's own clock (the server wrote them in UTC).
  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString(document.documentElement.lang,
      { hour: "2-digit", minute: "2-digit" });
  }
  Array.prototype.forEach.call(document.querySelectorAll("#log time"), function (t) {
    t.textContent = clock(t.getAttribute("datetime")) || t.textContent;
  });

  if (body.dataset.page !== "chat" || body.dataset.mode === "cookie") { return; }

  var log = document.getElementById("log");
  var status = document.getElementById("status");
  var form = document.getElementById("send");
  var token = sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
  if (!token) {
    status.textContent = body.dataset.nothing;
    if (form) { form.hidden = true; }
    return;
  }
  var notes = [];
  var last = 0;
  var pending = {};  // copy id -> photos still loading: not acknowledged until shown

  function save() {
    if (leaving) { return; }  // the quick exit has cleared storage: keep it empty
    try { sessionStorage.setItem(NOTES, JSON.stringify(notes)); } catch (e) { /* full or off */ }
  }
  function item(note) {
    var el = document.createElement("p");
    el.className = note.kind;
    el.dataset.ref = note.ref;
    var meta = document.createElement("span");
    meta.className = "meta";
    var name = note.kind === "own" ? body.dataset.you : note.who;
    if (name) {
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = name;
      meta.appendChild(who);
      meta.appendChild(document.createTextNode(" "));
    }
    var time = document.createElement("time");
    time.setAttribute("datetime", note.at);
    time.textContent = clock(note.at);
    meta.appendChild(time);
    el.appendChild(meta);
    el.appendChild(document.createTextNode(" "));
    var text = document.createElement("span");
    text.className = "body";
    text.textContent = note.kind === "own" || !note.who ? note.text : note.body;  // never HTML
    el.appendChild(text);
    if (note.link && note.link.indexOf("https://") === 0) {
      // A video room's link: a button that opens it in a new tab, sending no referrer.
      var join = document.createElement("a");
      join.className = "video";
      join.href = note.link;
      join.target = "_blank";
      join.rel = "noopener noreferrer";
      join.textContent = body.dataset.joinVideo;
      el.appendChild(document.createTextNode(" "));
      el.appendChild(join);
    }
    return el;
  }
  function find(ref) {
    for (var i = 0; i < log.children.length; i++) {
      if (log.children[i].dataset.ref === ref) { return log.children[i]; }
    }
    return null;
  }
  // A photo is fetched with the seat's key (never a cookie), shown from a blob: address, and
  // only then may its copy be acknowledged (which wipes it on the server).
  function showPhotos(el, note) {
    var waits = [];
    (note.photos || []).forEach(function (i) {
      var holder = document.createElement("span");
      holder.className = "photo";
      el.appendChild(holder);
      pending[note.id] = (pending[note.id] || 0) + 1;
      waits.push(fetch("/c/photo/" + note.id + "/" + i, {
        headers: { Authorization: "Bearer " + token }, cache: "no-store", credentials: "omit"
      }).then(function (r) {
        if (!r.ok) { throw new Error("photo"); }
        return r.blob();
      }).then(function (blob) {
        var img = document.createElement("img");
        img.alt = body.dataset.photo;
        img.src = URL.createObjectURL(blob);
        holder.appendChild(img);
      }).catch(function () {
        holder.textContent = body.dataset.photoGone;
      }).then(function () {
        pending[note.id] -= 1;
        if (!pending[note.id]) { delete pending[note.id]; }
        ack();
      }));
    });
    return waits;
  }
  function apply(note) {
    if (note.id > last) { last = note.id; }
    if (note.kind === "message" || note.kind === "own") {
      if (find(note.ref)) { return; }  // already on the page (a reconnect sent it again)
      notes.push(note);
      var el = item(note);
      log.appendChild(el);
      showPhotos(el, note);
    } else if (note.kind === "edit") {
      var shown = find(note.target);
      if (shown) { shown.querySelector(".body").textContent = note.who ? note.body : note.text; }
      notes.forEach(function (n) {
        if (n.ref === note.target) { n.text = note.text; n.who = note.who; n.body = note.body; }
      });
    } else if (note.kind === "delete") {
      var gone = find(note.target);
      if (gone) { gone.remove(); }
      notes = notes.filter(function (n) { return n.ref !== note.target; });
    }
  }
  function prune() {
    var now = Date.now();
    notes = notes.filter(function (n) {
      if (Date.parse(n.expires) > now) { return true; }
      var shown = find(n.ref);
      if (shown) { shown.remove(); }
      return false;
    });
    save();
  }
  var kept = [];
  try { kept = JSON.parse(sessionStorage.getItem(NOTES) || "[]"); } catch (e) { kept = []; }
  kept.forEach(apply);  // what this tab already showed (never written to localStorage)
  prune();
  setInterval(prune, 5000);

  var ackTimer = null;
  var reader = null;
  function ack() {
    clearTimeout(ackTimer);
    if (!token) { return; }
    ackTimer = setTimeout(function () {
      if (!token) { return; }
      // Never past a copy whose photo is still loading: acknowledging wipes it.
      var upto = last;
      Object.keys(pending).forEach(function (id) { upto = Math.min(upto, Number(id) - 1); });
      if (upto <= 0) { return; }
      post("/c/ack", { upto: String(upto) }, token).then(function (r) {
        if (r.status === 401 || r.status === 410) { ended(); }
      }).catch(function () { return null; });
    }, 200);
  }
  // The seat is gone: no more calls of any kind, and the stream is closed.
  function ended() {
    clearAll();
    token = null;
    clearTimeout(ackTimer);
    if (reader) { reader.cancel().catch(function () { return null; }); reader = null; }
    status.textContent = body.dataset.ended;
    if (form) { form.hidden = true; }
  }

  // What the page learns of its seat: the timer in words, and the group's name if it chose
  // to show it.
  function seatLine(seat) {
    var line = document.getElementById("timer");
    if (line && seat.disappear) { line.textContent = seat.disappear; }
    var heading = document.getElementById("heading");
    if (heading && seat.name) { heading.textContent = seat.name; heading.className = ""; }
  }

  var wait = 1000;
  function connect() {
    if (!token) { return; }
    fetch("/c/events?after=" + last, {
      headers: { Authorization: "Bearer " + token }, cache: "no-store", credentials: "omit"
    }).then(function (r) {
      if (r.status === 401 || r.status === 410) { ended(); return null; }
      if (!r.ok || !r.body) { throw new Error("stream"); }
      status.textContent = "";
      wait = 1000;
      reader = r.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        if (!reader) { return null; }
        return reader.read().then(function (chunk) {
          if (chunk.done) { throw new Error("closed"); }
          buffer += decoder.decode(chunk.value, { stream: true });
          var events = buffer.split("\n\n");
          buffer = events.pop();
          var got = false;
          events.forEach(function (raw) {
            var kind = "message", data = "";
            raw.split("\n").forEach(function (line) {
              if (line.indexOf("event: ") === 0) { kind = line.slice(7); }
              if (line.indexOf("data: ") === 0) { data += line.slice(6); }
            });
            if (kind === "end") { ended(); return; }
            if (kind === "seat") { seatLine(JSON.parse(data)); return; }
            if (data && token) { apply(JSON.parse(data)); got = true; }
          });
          if (got) { save(); ack(); }
          return token ? pump() : null;
        });
      }
      return pump();
    }).catch(function () {
      if (!token) { return; }
      status.textContent = body.dataset.offline;
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 15000);
    });
  }
  connect();

  if (form) {
    var box = document.getElementById("text");
    var photoBox = document.getElementById("photo");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = box.value;
      var file = photoBox && photoBox.files.length ? photoBox.files[0] : null;
      if (!text.trim() && !file) { return; }
      if (file && file.size > Number(body.dataset.maxPhoto)) {
        status.textContent = body.dataset.tooBig;
        return;
      }
      var nonce = Array.prototype.map.call(crypto.getRandomValues(new Uint8Array(12)),
        function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      var sending;
      if (file) {
        var data = new FormData();
        data.set("text", text);
        data.set("nonce", nonce);
        data.set("photo", file, "photo");  // the file's own name never leaves the browser
        sending = fetch("/c/send", {
          method: "POST", headers: { Authorization: "Bearer " + token }, body: data,
          credentials: "same-origin", cache: "no-store"
        });
      } else {
        sending = post("/c/send", { text: text, nonce: nonce }, token);
      }
      sending.then(function (r) {
        if (r.status === 401 || r.status === 410) { ended(); return null; }
        if (!r.ok) {
          // A refused photo says why (too large, not a photo) in the member's language.
          return r.json().then(function (why) { status.textContent = why.error; },
            function () { throw new Error("send"); });
        }
        box.value = "";
        if (photoBox) { photoBox.value = ""; }
        status.textContent = "";
        return null;
      }).catch(function () { status.textContent = body.dataset.notSent; });
    });
    box.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
    });
  }
}());
