// The passkey ceremony: the one thing in the console that needs JavaScript.
(function () {
  "use strict";
  var button = document.getElementById("passkey");
  var status = document.getElementById("passkey-status");
  if (!button) { return; }

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": button.dataset.csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.error || button.dataset.failed); }
        return data;
      });
    });
  }
  function ids(list) {
    return (list || []).map(function (c) { return { type: c.type, id: toBytes(c.id) }; });
  }
  function serialize(cred) {
    var r = cred.response, response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) { response.userHandle = toText(r.userHandle); }
    }
    return {
      id: cred.id, rawId: toText(cred.rawId), type: cred.type, response: response,
      clientExtensionResults: cred.getClientExtensionResults(),
      authenticatorAttachment: cred.authenticatorAttachment || undefined
    };
  }

  button.addEventListener("click", function () {
    var base = button.dataset.base, create = button.dataset.mode === "create";
    button.disabled = true;
    status.textContent = "";
    post(base + "/options").then(function (options) {
      options.challenge = toBytes(options.challenge);
      if (create) {
        options.user.id = toBytes(options.user.id);
        options.excludeCredentials = ids(options.excludeCredentials);
        return navigator.credentials.create({ publicKey: options });
      }
      options.allowCredentials = ids(options.allowCredentials);
      return navigator.credentials.get({ publicKey: options });
    }).then(function (cred) {
      return post(base + "/verify", serialize(cred));
    }).then(function (done) {
      window.location.assign(done.next);
    }).catch(function (err) {
      status.textContent = (err && err.message && err.name === "Error") ? err.message : button.dataset.failed;
      button.disabled = false;
    });
  });
}());
