// The image of a course explorer, in the browser: a frame cache keyed by the controls' values.
//
// In a notebook or the Voila app (anywidget, `render`): when a control changes, the frame for the
// new values is shown at once if the kernel already sent it (it sends the current frame and, while
// a page shows the explorer, the frames next to it); else the old frame stays until the kernel's
// arrives. In a saved HTML file (`renderFile`): every frame is in the file, nothing runs a kernel.
// The key of a frame is the JSON of the controls' values in order, each number as round(v * 1e6)
// (course_utils/widgets.py builds the same key).

const SHARED = new WeakMap(); // model -> what every view of that explorer shares

function norm(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Math.floor(v * 1e6 + 0.5);
  if (typeof v === "boolean" || typeof v === "string") return v;
  if (Array.isArray(v)) return v.map(norm);
  return String(v);
}

function shared(model) {
  let s = SHARED.get(model);
  if (!s) {
    s = { cache: new Map(), views: new Set(), controls: [], shown: null, timer: null };
    s.ready = setUp(model, s);
    SHARED.set(model, s);
  }
  return s;
}

function currentKey(model, s) {
  const fields = model.get("fields");
  return JSON.stringify(s.controls.map((c, i) => norm(c.get(fields[i]))));
}

function showUrl(s, url, hit) {
  s.shown = url;
  for (const view of s.views) {
    if (view.img.getAttribute("src") !== url) view.img.setAttribute("src", url);
    view.el.dataset.hit = hit ? "1" : "0";
  }
}

function showCurrent(model, s) {
  const key = currentKey(model, s);
  for (const view of s.views) view.el.dataset.key = key;
  const url = s.cache.get(key);
  clearTimeout(s.timer);
  if (url) {
    showUrl(s, url, true);
    return;
  }
  for (const view of s.views) view.el.dataset.hit = "0";
  // the kernel sends this frame after its redraw; ask again if it never came (another page)
  s.timer = setTimeout(() => model.send({ type: "want", key }), 3000);
}

function pngUrl(data) {
  return URL.createObjectURL(new Blob([data], { type: "image/png" }));
}

async function setUp(model, s) {
  const manager = model.widget_manager;
  s.controls = await Promise.all(
    model.get("controls").map((ref) => manager.get_model(String(ref).replace(/^IPY_MODEL_/, ""))),
  );
  const fields = model.get("fields");
  s.controls.forEach((c, i) => c.on(`change:${fields[i]}`, () => showCurrent(model, s)));
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "clear") {
      for (const [, url] of s.cache) if (url !== s.shown) URL.revokeObjectURL(url);
      s.cache.clear();
    } else if (msg.type === "frame") {
      const url = pngUrl(buffers[0]);
      s.cache.set(msg.key, url);
      const key = currentKey(model, s);
      if (msg.key === key) {
        clearTimeout(s.timer);
        showUrl(s, url, false);
      } else if (msg.current && !s.cache.has(key)) {
        showUrl(s, url, false); // the kernel's latest view, until the asked-for one arrives
      }
    }
    if (msg.pending !== undefined) {
      for (const view of s.views) {
        view.el.dataset.prefetching = String(msg.pending);
        view.el.dataset.kernelKey = msg.now; // the values the kernel has drawn last
      }
    }
  });
}

async function render({ model, el }) {
  const s = shared(model);
  await s.ready;
  const img = document.createElement("img");
  img.className = "course-explorer-frame";
  img.alt = "the explorer's figure";
  img.style.cssText = "display:block;width:100%;height:auto";
  el.appendChild(img);
  const view = { img, el };
  s.views.add(view);
  const url = s.cache.get(currentKey(model, s));
  if (url) showUrl(s, url, true);
  else if (model.get("key") === currentKey(model, s) && model.get("frame").byteLength) {
    showUrl(s, pngUrl(model.get("frame")), false);
  }
  el.dataset.prefetching = "0";
  el.dataset.key = currentKey(model, s);
  model.send({ type: "ready", keys: [...s.cache.keys()] });
  return () => s.views.delete(view);
}

// A saved HTML file: plain controls from `data.controls`, frames from `data.frames`.
export function renderFile(root, data) {
  const img = root.querySelector("img");
  const picked = data.controls.map((c) => c.current);
  const show = () => {
    const key = data.controls
      .filter((c) => !c.fixed)
      .map((c) => picked[data.controls.indexOf(c)])
      .join(",");
    const frame = data.frames[key];
    if (frame) img.setAttribute("src", frame);
    root.querySelector(".course-missing").hidden = Boolean(frame);
  };
  const box = root.querySelector(".course-controls");
  data.controls.forEach((c, i) => {
    const label = document.createElement("label");
    label.className = "course-control";
    const name = document.createElement("span");
    name.textContent = `${c.description} `;
    label.appendChild(name);
    let input;
    const readout = document.createElement("span");
    readout.textContent = c.labels[c.current];
    if (c.kind === "range") {
      input = document.createElement("input");
      input.type = "range";
      input.min = 0;
      input.max = c.labels.length - 1;
      input.step = 1;
      input.value = c.current;
      input.addEventListener("input", () => {
        picked[i] = Number(input.value);
        readout.textContent = ` ${c.labels[picked[i]]}`;
        show();
      });
      readout.textContent = ` ${c.labels[c.current]}`;
    } else if (c.kind === "checkbox") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = c.current === 1;
      input.addEventListener("change", () => {
        picked[i] = input.checked ? 1 : 0;
        show();
      });
      readout.textContent = "";
    } else {
      input = document.createElement("select");
      c.labels.forEach((text, j) => {
        const option = document.createElement("option");
        option.value = j;
        option.textContent = text;
        input.appendChild(option);
      });
      input.value = c.current;
      input.addEventListener("change", () => {
        picked[i] = Number(input.value);
        show();
      });
      readout.textContent = "";
    }
    input.dataset.control = c.name;
    label.appendChild(input);
    label.appendChild(readout);
    if (c.fixed) {
      input.disabled = true;
      const note = document.createElement("small");
      note.textContent = " (fixed in this file)";
      label.appendChild(note);
    } else if (c.note) {
      const note = document.createElement("small");
      note.textContent = ` (${c.note})`;
      label.appendChild(note);
    }
    box.appendChild(label);
  });
  show();
}

export default { render };
