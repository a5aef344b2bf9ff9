// The keyspot page's listening mode: the microphone as a stream through the
// board's chain. Samples at the model's rate go to POST /listen every
// SEND_MS; the server runs the frontend, the model and the recognizer (the
// generated firmware's parameters) and answers with the scores of each
// inference, the detections and the listener's state, which goes back with
// the next piece. Detections are listed as they come; the canvas scrolls
// the keyword scores of the last SHOWN_S seconds against the threshold.
"use strict";

const SEND_MS = 250;
const SHOWN_S = 10;
const listening = { on: false, stream: null, context: null, node: null, samples: [], state: null,
                    busy: false, timer: null, results: [], started: 0 };
const lid = (id) => document.getElementById(id);

function toInt16(samples, fromRate, toRate) {
  // Linear resampling where the browser would not run the context at the model's rate.
  const ratio = fromRate / toRate;
  const n = Math.floor(samples.length / ratio);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const x = i * ratio, k = Math.floor(x), f = x - k;
    const s = samples[k] * (1 - f) + (k + 1 < samples.length ? samples[k + 1] : samples[k]) * f;
    out[i] = Math.round(Math.max(-1, Math.min(1, s)) * 32767);
  }
  return out;
}

function showDetection(d) {
  const item = document.createElement("li");
  item.dataset.label = d.label;
  item.dataset.time = d.time_s;
  item.textContent = `${d.time_s.toFixed(2)} s  ${d.label}  ${d.score.toFixed(2)}`;
  lid("detections").prepend(item);
  lid("heard").textContent = d.label;
  document.body.dataset.detections = String(lid("detections").children.length);
}

function drawScores() {
  const canvas = lid("scores");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const labels = info.labels;
  const keywords = labels.map((label, i) => [label, i]).filter(([label]) => !label.startsWith("_"));
  const last = listening.results.length ? listening.results[listening.results.length - 1].time_ms : 0;
  const x = (t) => w - ((last - t) / (SHOWN_S * 1000)) * w;
  const y = (score) => h - (score / 255) * h;
  const threshold = info.recognizer ? info.recognizer.detection_threshold : 200;
  g.strokeStyle = "#b00020";
  g.setLineDash([4, 4]);
  g.beginPath(); g.moveTo(0, y(threshold)); g.lineTo(w, y(threshold)); g.stroke();
  g.setLineDash([]);
  keywords.forEach(([label, index], k) => {
    g.strokeStyle = `hsl(${(360 * k) / keywords.length}, 65%, 45%)`;
    g.beginPath();
    listening.results.forEach((r, j) => {
      const px = x(r.time_ms), py = y(r.scores[index]);
      if (j === 0) g.moveTo(px, py); else g.lineTo(px, py);
    });
    g.stroke();
  });
}

async function sendPiece() {
  if (listening.busy || !listening.context) return;
  const fromRate = listening.context.sampleRate;
  const take = listening.samples.splice(0, listening.samples.length);
  if (take.length === 0) return;
  listening.busy = true;
  // A piece answered after Stop (or after a new Listen) belongs to a session
  // that is over: its answer is dropped, so it cannot mark the page as
  // listening again or list a detection the user no longer asked for.
  const session = listening.context;
  const current = () => listening.on && listening.context === session;
  try {
    const pcm = toInt16(take, fromRate, info.sample_rate);
    const response = await fetch("/listen", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pcm, sample_rate: info.sample_rate, state: listening.state }),
    });
    const answer = await response.json();
    if (!current()) return;
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    listening.state = answer.state;
    listening.results.push(...answer.results);
    const oldest = answer.results.length ? answer.results[answer.results.length - 1].time_ms - SHOWN_S * 1000 : 0;
    while (listening.results.length && listening.results[0].time_ms < oldest) listening.results.shift();
    answer.detections.forEach(showDetection);
    drawScores();
    lid("clock").textContent = `${(listening.results.length ? listening.results[listening.results.length - 1].time_ms / 1000 : 0).toFixed(1)} s heard`;
    document.body.dataset.listening = "on";
  } catch (err) {
    if (!current()) return;
    stopListening();
    showError(`listening stopped: ${err.message}`);
  } finally {
    listening.busy = false;
  }
}

async function startListening() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(
      { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (err) {
    showError(`no microphone: ${err.message}`);
    return;
  }
  let context;
  try {
    context = new AudioContext({ sampleRate: info.sample_rate });
  } catch (err) {
    context = new AudioContext();   // resampled in toInt16 instead
  }
  await context.audioWorklet.addModule("/static/capture.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "keyspot-capture");
  node.port.onmessage = (event) => { for (const s of event.data) listening.samples.push(s); };
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);
  Object.assign(listening, { on: true, stream, context, node, samples: [], state: null, results: [] });
  listening.timer = setInterval(sendPiece, SEND_MS);
  lid("error").textContent = "";
  lid("listen").textContent = "Stop";
  lid("listening").hidden = false;
}

function stopListening() {
  clearInterval(listening.timer);
  if (listening.stream) listening.stream.getTracks().forEach((track) => track.stop());
  if (listening.context) listening.context.close();
  Object.assign(listening, { on: false, stream: null, context: null, node: null, timer: null });
  lid("listen").textContent = "Listen";
  document.body.dataset.listening = "off";
}

lid("listen").addEventListener("click", () => (listening.on ? stopListening() : startListening()));
