// sg3rt live page: draws the frame stream, shows the HUD, sends control changes. No dependencies.
"use strict";
(() => {
  const token = new URLSearchParams(location.search).get("token");
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const canvas = document.getElementById("frame");
  const ctx = canvas.getContext("2d");
  const hud = document.getElementById("hud");
  const message = document.getElementById("message");
  const recordButton = document.getElementById("record");
  const inputs = [...document.querySelectorAll("[data-key]")];
  // What a test (or the console) can read: frames drawn, the last frame's seq and controls version.
  const live = window.sg3rtLive = { frames: 0, seq: 0, version: 0, controls: {}, hello: null, errors: [] };
  let ws = null, stats = null, clientTimes = [], drawing = Promise.resolve();

  document.getElementById("snapshot").href = "snapshot.png" + query;

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "";
  }

  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  function parseSeeds(text) {  // "0-7,12" -> [0, 1, ..., 7, 12]
    const out = [];
    for (const part of text.split(",")) {
      const m = part.trim().match(/^(\d+)(?:\s*-\s*(\d+))?$/);
      if (!m) throw new Error("bad seed list " + JSON.stringify(text) + ": use 0-7,12");
      const a = +m[1], b = m[2] === undefined ? a : +m[2];
      if (b < a || b - a > 255) throw new Error("bad seed range " + part.trim());
      for (let s = a; s <= b; s++) out.push(s);
    }
    return out;
  }

  function formatSeeds(list) {  // [0..7, 12] -> "0-7,12"
    const parts = [];
    for (let i = 0; i < list.length; ) {
      let j = i;
      while (j + 1 < list.length && list[j + 1] === list[j] + 1) j++;
      parts.push(j > i ? list[i] + "-" + list[j] : String(list[i]));
      i = j + 1;
    }
    return parts.join(",");
  }

  function readInput(el) {
    const type = el.dataset.type;
    if (type === "bool") return el.checked;
    if (type === "str") return el.value;
    if (type === "seeds") return parseSeeds(el.value);
    if (type === "int?" && el.value.trim() === "") return null;
    const v = Number(el.value);
    if (el.value.trim() === "" || !Number.isFinite(v)) throw new Error(el.dataset.key + " needs a number");
    return type === "float" ? v : Math.round(v);
  }

  function showValue(el) {
    const out = el.parentElement.querySelector("output");
    if (out) out.textContent = el.value;
  }

  // Editing directions (sg3rt live --edit): one slider each, made from the hello message; they send the whole list.
  let editSliders = [];
  function buildEdits(labels, max) {
    const box = document.getElementById("edits");
    box.classList.toggle("hidden", labels.length === 0);
    editSliders = labels.map((text, k) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: -max, max: max, step: 0.1, value: 0 });
      input.dataset.edit = String(k);
      label.append(text.split("/").pop() + " ", input, document.createElement("output"));
      box.append(label);
      input.addEventListener("input", () => {
        showValue(input);
        send({ set: { edits: editSliders.map((el) => Number(el.value)) } });
      });
      return input;
    });
  }

  function fillControls(controls) {
    live.controls = controls;
    (controls.edits || []).forEach((v, k) => {
      const el = editSliders[k];
      if (el && el !== document.activeElement) { el.value = v; showValue(el); }
    });
    for (const el of inputs) {
      const v = controls[el.dataset.key];
      if (el === document.activeElement && el.type !== "range" && el.type !== "checkbox") continue;
      if (el.dataset.type === "bool") el.checked = !!v;
      else if (el.dataset.type === "seeds") el.value = formatSeeds(v);
      else el.value = v === null || v === undefined ? "" : v;
      showValue(el);
    }
  }

  // The mixed layers go as a pair: moving one end past the other moves both (one at a time would be refused).
  function mixRange(el) {
    const key = el.dataset.key;
    if (key !== "mix_from" && key !== "mix_to") return {};
    const other = key === "mix_from" ? "mix_to" : "mix_from";
    const v = readInput(el), w = readInput(document.querySelector(`[data-key=${other}]`));
    return { [other]: key === "mix_from" ? Math.max(v, w) : Math.min(v, w) };
  }

  // Picking a seed shows that seed: a running cubic walk (which ignores `seed`) gives way to the still image.
  const leaveWalk = () => (live.controls.walk === "cubic" ? { walk: "off" } : {});
  for (const el of inputs) {
    const changed = () => {
      showValue(el);
      try {
        const extra = el.dataset.key === "seed" ? leaveWalk() : {};
        send({ set: { ...mixRange(el), [el.dataset.key]: readInput(el), ...extra } });
      } catch (e) { say(e.message, true); }
    };
    el.addEventListener(el.type === "range" ? "input" : "change", changed);
  }
  for (const b of document.querySelectorAll("[data-do]")) b.addEventListener("click", () => {
    const extra = leaveWalk();
    if (extra.walk) send({ set: extra });
    send({ do: b.dataset.do });
  });
  recordButton.addEventListener("click", () => send({ do: recordButton.classList.contains("on") ? "stop" : "record" }));

  // A sound track (sg3rt live --audio): the page plays it from the first click (browsers block autoplay) and
  // follows the server's audio clock, which drives the reactions: a drift over AUDIO_DRIFT_S is corrected.
  const AUDIO_DRIFT_S = 0.15;
  let track = null;
  function setupAudio(a) {
    if (!a || track) return;
    track = new Audio(a.url + query);
    track.loop = true;
    track.preload = "auto";
    live.audio = { started: false, corrections: 0, drift: null };
    say("click anywhere to play the sound track");
    const start = () => {
      track.play().then(() => { live.audio.started = true; say(""); })
        .catch((e) => say("could not play the sound track: " + e.message, true));
    };
    document.addEventListener("click", start, { once: true });
  }

  function followAudio(s) {
    if (!track || !live.audio.started || s.audio_time === null || s.audio_time === undefined) return;
    if (live.controls.paused) { if (!track.paused) track.pause(); return; }
    if (track.paused) track.play().catch(() => {});
    const duration = live.hello.audio.duration;
    let drift = track.currentTime - s.audio_time;
    drift -= duration * Math.round(drift / duration);  // the track loops: 0.1 s past the end is 0.1 s ahead
    live.audio.drift = drift;
    if (Math.abs(drift) > AUDIO_DRIFT_S) { track.currentTime = s.audio_time; live.audio.corrections++; }
  }

  function onHello(h) {
    live.hello = h;
    canvas.width = h.size;
    canvas.height = h.height || h.size;  // a StyleGAN3 canvas (--size WxH) streams non-square frames
    document.getElementById("motion").classList.toggle("hidden", !h.stylegan3);
    document.getElementById("class-row").classList.toggle("hidden", h.c_dim === 0);
    for (const [key, [lo, hi]] of Object.entries(h.ranges || {})) {  // what the server accepts, nothing narrower
      const el = document.querySelector(`[data-key=${key}]`);
      if (el) { el.min = lo; el.max = hi; }
    }
    recordButton.disabled = !h.recording_enabled;
    if (editSliders.length === 0) buildEdits(h.edits || [], h.edit_max || 20);
    setupAudio(h.audio);
  }

  function onStats(s) {
    stats = s;
    followAudio(s);
    recordButton.classList.toggle("on", !!s.recording);
    recordButton.textContent = s.recording ? "■ stop recording" : "● record";
    const now = performance.now();
    clientTimes = clientTimes.filter((t) => now - t < 2000);
    const shown = clientTimes.length / 2;
    hud.textContent =
      `${s.fps.toFixed(1)} frames/s (server)  ${s.ms_per_frame.toFixed(1)} ms/frame\n` +
      `${shown.toFixed(1)} frames/s shown here\n` +
      `${s.backend} ${s.device} ${s.precision}  ${s.resolution}px` + (s.size !== s.resolution ? ` -> ${s.size}px` : "") + `\n` +
      `${s.clients} client${s.clients === 1 ? "" : "s"}` + (s.recording ? "  ● REC" : "") +
      (s.audio_time !== null && s.audio_time !== undefined ? `  ♪ ${s.audio_time.toFixed(1)} s` : "") +
      (s.error ? `\nrender loop stopped: ${s.error}` : "");
  }

  function onText(data) {
    const m = JSON.parse(data);
    if (m.type === "hello") onHello(m);
    else if (m.type === "state") fillControls(m.controls);
    else if (m.type === "stats") onStats(m);
    else if (m.type === "error") { live.errors.push(m.message); say(m.message, true); }
    else if (m.type === "ok") {
      say("");
      if (m.recording) say("recording " + m.recording);
      if (m.url) {
        const a = document.createElement("a");
        a.href = m.url + query; a.textContent = "download " + m.recorded; a.download = m.recorded;
        document.getElementById("recordings").prepend(a);
        say("recorded " + m.recorded);
      }
    }
  }

  function onFrame(buffer) {
    const view = new DataView(buffer);
    const seq = view.getUint32(0, true), version = view.getUint32(4, true);
    const blob = new Blob([buffer.slice(8)], { type: "image/jpeg" });
    drawing = drawing.then(() => createImageBitmap(blob)).then((bitmap) => {
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      live.frames++; live.seq = seq; live.version = version;
      clientTimes.push(performance.now());
      send({ ack: seq });  // the server sends the next frame only to pages that keep up
    }).catch((e) => { say("could not draw a frame: " + e, true); send({ ack: seq }); });
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${scheme}://${location.host}/ws${query}`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => say("");
    ws.onmessage = (e) => (typeof e.data === "string" ? onText(e.data) : onFrame(e.data));
    ws.onclose = (e) => {
      hud.textContent = e.code === 1008 ? "refused: wrong or missing ?token=" : "disconnected: retrying…";
      if (e.code !== 1008) setTimeout(connect, 1000);
    };
  }
  connect();
})();
