// The keyspot page: a clip in (file upload or microphone), POST /invocations, label out.
// A WAV file is sent as it is; anything else, and a recording, is decoded by
// WebAudio and sent as 16-bit mono WAV. The server resamples whatever rate it gets.
"use strict";

const $ = (id) => document.getElementById(id);
let info = { clip_seconds: 1, labels: [] };

function setStatus(text) { $("status").textContent = text; }

function showError(message) {
  $("error").textContent = message;
  $("result").hidden = true;
  document.body.dataset.state = "error";
}

function showPrediction(prediction) {
  $("error").textContent = "";
  $("label").textContent = prediction.label;
  const rows = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  const table = $("probabilities");
  table.replaceChildren();
  for (const [label, p] of rows) {
    const tr = table.insertRow();
    tr.dataset.label = label;
    tr.insertCell().textContent = label;
    const bar = tr.insertCell();
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bar.append(fill);
    const value = tr.insertCell();
    value.className = "value";
    value.textContent = p.toFixed(3);
  }
  $("result").hidden = false;
  document.body.dataset.state = "done";
}

async function classify(wav) {
  document.body.dataset.state = "busy";
  setStatus("listening…");
  try {
    const response = await fetch("/invocations", {
      method: "POST", headers: { "Content-Type": "audio/wav" }, body: wav,
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    showPrediction(answer.predictions[0]);
    setStatus("");
  } catch (err) {
    setStatus("");
    showError(err.message);
  }
}

// An AudioBuffer as a 16-bit mono PCM WAV file.
function encodeWav(buffer) {
  const n = buffer.length;
  const mono = new Float32Array(n);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) mono[i] += data[i] / buffer.numberOfChannels;
  }
  const out = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) out.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); out.setUint32(4, 36 + 2 * n, true); text(8, "WAVE");
  text(12, "fmt "); out.setUint32(16, 16, true); out.setUint16(20, 1, true); out.setUint16(22, 1, true);
  out.setUint32(24, buffer.sampleRate, true); out.setUint32(28, 2 * buffer.sampleRate, true);
  out.setUint16(32, 2, true); out.setUint16(34, 16, true);
  text(36, "data"); out.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) {
    const s = Math.max(-1, Math.min(1, mono[i]));
    out.setInt16(44 + 2 * i, Math.round(s < 0 ? s * 32768 : s * 32767), true);
  }
  return new Blob([out.buffer], { type: "audio/wav" });
}

async function toWav(blob) {
  const context = new AudioContext();
  try {
    return encodeWav(await context.decodeAudioData(await blob.arrayBuffer()));
  } finally {
    context.close();
  }
}

$("file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const isWav = /wav/i.test(file.type) || /\.wav$/i.test(file.name);
  try {
    await classify(isWav ? file : await toWav(file));
  } catch (err) {
    showError(`${file.name}: cannot decode this file in the browser (${err.message})`);
  }
  event.target.value = "";
});

$("record").addEventListener("click", async () => {
  const button = $("record");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    showError(`no microphone: ${err.message}`);
    return;
  }
  button.disabled = true;
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    button.disabled = false;
    try {
      await classify(await toWav(new Blob(chunks, { type: recorder.mimeType })));
    } catch (err) {
      showError(`cannot decode the recording (${err.message})`);
    }
  };
  // A little longer than the model's window, which the server centres on.
  const seconds = info.clip_seconds + 0.25;
  setStatus(`recording ${seconds.toFixed(1)} s…`);
  recorder.start();
  setTimeout(() => recorder.stop(), seconds * 1000);
});

fetch("/info").then((r) => r.json()).then((data) => {
  info = data;
  $("model").textContent = `${data.model} · ${data.labels.length} labels: ${data.labels.join(", ")}`;
  $("listen").hidden = !data.listening;
  document.body.dataset.ready = "true";
}).catch((err) => showError(`server not reachable: ${err.message}`));
