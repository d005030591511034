// Raw outputs of a run page: one gzip-compressed JSON list per page (a run's trials print nearly the
// same text, so it packs ~8x), unpacked in the browser the first time a trial's output is opened.
"use strict";
let rawOutputs = null;

async function loadRawOutputs() {
  if (rawOutputs === null) {
    const packed = document.getElementById("raw-outputs").textContent.trim();
    const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    rawOutputs = JSON.parse(await new Response(stream).text());
  }
  return rawOutputs;
}

for (const details of document.querySelectorAll("details.raw")) {
  details.addEventListener("toggle", async () => {
    const pre = details.querySelector("pre");
    if (!details.open || pre.dataset.loaded) return;
    const outputs = await loadRawOutputs();
    pre.textContent = outputs[Number(details.dataset.trial)];  // text, never markup
    pre.dataset.loaded = "1";
  });
}
