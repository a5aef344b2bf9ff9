// AudioWorklet of the keyspot page's listening mode: hands every block of
// microphone samples, mixed to mono, to the page (listen.js).
"use strict";

class KeyspotCapture extends AudioWorkletProcessor {
  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const n = channels[0].length;
      const mono = new Float32Array(n);
      for (const channel of channels) {
        for (let i = 0; i < n; i++) mono[i] += channel[i] / channels.length;
      }
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true;
  }
}

registerProcessor("keyspot-capture", KeyspotCapture);
